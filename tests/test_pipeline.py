"""End to end: journal entries from the simulator become rows in PostgreSQL."""

from core.ops import ledger_counts
from core.verify import compare_with_truth
from tests.conftest import Pipeline


async def test_small_scenario_matches_baselinker(pipeline: Pipeline) -> None:
    """Every order of a small shop, with every kind of journal event, lands with
    its client, lines, status, total, documents and links."""
    pipeline.simulator.seed_scenario(orders=40)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    journal = pipeline.simulator.account.journal
    assert counts["failed"] == 0
    assert counts["completed"] + counts["ignored"] == len(journal)
    truth = pipeline.simulator.truth()
    full = pipeline.simulator.full_truth()
    assert len(truth) + len(full["removed_order_ids"]) + len(
        full["merged"]
    ) == 40 + len(full["splits"]) + len(full["copies"])
    assert (
        await compare_with_truth(pipeline.pool, pipeline.workspace, truth, full) == []
    )
    assert await ledger_counts(pipeline.pool, pipeline.workspace) == counts
