"""End to end: journal entries from the simulator become rows in PostgreSQL."""

from core.ops import ledger_counts
from core.verify import compare_with_truth
from tests.conftest import Pipeline


async def test_small_scenario_matches_baselinker(pipeline: Pipeline) -> None:
    """Every order of a small shop lands with its client, lines, status and total."""
    pipeline.simulator.seed_scenario(orders=25)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    assert counts["failed"] == 0
    assert counts["completed"] == len(pipeline.simulator.account.journal)
    truth = pipeline.simulator.truth()
    assert len(truth) == 25
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
    assert await ledger_counts(pipeline.pool, pipeline.workspace) == counts
