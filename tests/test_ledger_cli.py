"""The operator's CLI on the ledger: list entries, retry failed ones once their
cause is fixed, and show a backfill's progress in `status`."""

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import starter
from core.ids import order_event_workflow_id
from core.ops import NOT_RETRIED
from core.settings import get_settings
from core.verify import compare_with_truth
from simulators.baselinker import Order, OrderLine
from tests.conftest import Pipeline, ledger_rows

UNREADABLE = "unreadable order data: products.0.quantity: not a number: 'abc'"


@pytest.fixture
def cli_env(
    pipeline: Pipeline, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The CLI's settings point at the pipeline's database, Temporal and queues."""
    env = {
        "WORKSPACE": pipeline.workspace,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": pipeline.client.service_client.config.target_host,
        "TASK_QUEUE": pipeline.queues.orders,
        "BASELINKER_TASK_QUEUE": pipeline.queues.baselinker,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The CLI would point this process's logging at CliRunner's captured
    # streams, which are closed once each command returns.
    monkeypatch.setattr(starter, "configure_logging", lambda settings: None)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def cli(*args: str) -> Result:
    """Run `starter.py ARGS`; in a thread, as it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, starter.app, list(args))


def one_line_order(email: str) -> Order:
    """A confirmed order of two tubs of creatine."""
    line = OrderLine(
        product_id=3_201_003,
        name="Creatina Monohidratada 300g",
        price_brutto=Decimal("99.90"),
        quantity=2,
        sku="SUP-003",
    )
    return Order(products=[line], email=email, delivery_price=Decimal("19.90"))


def unreadable_order(p: Pipeline, email: str) -> int:
    """An order whose line quantity reaches the wire as "abc"."""
    account = p.simulator.account
    order_id = account.create_order(one_line_order(email))
    account.orders[order_id].products[0].quantity = "abc"  # type: ignore[assignment]
    return order_id


def fix_order(p: Pipeline, order_id: int) -> None:
    """Make the order readable again, as fixing it in BaseLinker would."""
    p.simulator.account.orders[order_id].products[0].quantity = 2


async def log_id_of(p: Pipeline, order_id: int) -> int:
    """The ledger's (only) entry for the order."""
    (log_id,) = [
        log_id
        for log_id, row in (await ledger_rows(p)).items()
        if row["order_id"] == order_id
    ]
    return log_id


async def statuses(p: Pipeline) -> dict[int, str]:
    """Ledger status by log_id."""
    return {log_id: row["status"] for log_id, row in (await ledger_rows(p)).items()}


async def test_events_lists_failed_entries_with_reason_and_attempts(
    pipeline: Pipeline, cli_env: None
) -> None:
    """`events --status failed --json` lists exactly the failed entry, with the
    reason an operator reads and its attempts; an unknown status exits 2 with
    the statuses it accepts."""
    good = pipeline.simulator.account.create_order(one_line_order("bom@example.com"))
    bad = unreadable_order(pipeline, "ruim@example.com")
    await pipeline.start_poller()
    await pipeline.drain()
    bad_log_id = await log_id_of(pipeline, bad)

    listed = await cli("events", "--status", "failed", "--json")

    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.stdout)
    assert entry["log_id"] == bad_log_id
    assert entry["order_id"] == bad
    assert (entry["type"], entry["name"]) == (1, "order_created")
    assert entry["status"] == "failed"
    assert entry["reason"] == UNREADABLE
    assert entry["attempts"] == 1
    assert entry["workflow_id"] == order_event_workflow_id(
        pipeline.workspace, bad_log_id
    )
    everything = await cli("events", "--json")
    assert everything.exit_code == 0, everything.output
    rows: list[dict[str, Any]] = json.loads(everything.stdout)
    assert [r["order_id"] for r in rows] == [bad, good]
    assert [r["status"] for r in rows] == ["failed", "completed"]

    bogus = await cli("events", "--status", "bogus")

    assert bogus.exit_code == 2
    assert bogus.stdout == ""
    assert " ".join(bogus.stderr.split()) == (
        "error: --status must be one of pending, processing, completed, failed, ignored"
    )


async def test_retry_reruns_failed_entries_once_their_cause_is_fixed(
    pipeline: Pipeline, cli_env: None
) -> None:
    """`retry LOG_ID` runs one failed entry again with fresh data and it ends
    completed; `retry --failed` runs every failed one, exiting 1 while one
    still fails and 0 once all complete; naming neither (or both) exits 2."""
    account = pipeline.simulator.account
    account.create_order(one_line_order("bom@example.com"))
    first = unreadable_order(pipeline, "primeiro@example.com")
    second = unreadable_order(pipeline, "segundo@example.com")
    await pipeline.start_poller()
    await pipeline.drain()
    first_log, second_log = (
        await log_id_of(pipeline, first),
        await log_id_of(pipeline, second),
    )
    assert list((await statuses(pipeline)).values()).count("failed") == 2

    neither = await cli("retry")
    both = await cli("retry", str(first_log), "--failed")
    assert (neither.exit_code, both.exit_code) == (2, 2)
    assert "name log ids, or pass --failed (not both)" in neither.stderr
    unknown = await cli("retry", "999999999")
    assert unknown.exit_code == 1
    assert unknown.stdout.strip() == f"999999999: {NOT_RETRIED}"
    assert list((await statuses(pipeline)).values()).count("failed") == 2

    fix_order(pipeline, first)
    one = await cli("retry", str(first_log))

    assert one.exit_code == 0, one.output
    assert one.stdout.strip() == f"{first_log}: completed"
    ledger = await ledger_rows(pipeline)
    assert ledger[first_log]["status"] == "completed"
    assert ledger[first_log]["error_message"] is None
    assert ledger[second_log]["status"] == "failed"

    still_broken = await cli("retry", "--failed")

    assert still_broken.exit_code == 1
    assert still_broken.stdout.strip() == f"{second_log}: failed: {UNREADABLE}"
    ledger = await ledger_rows(pipeline)
    assert ledger[second_log]["status"] == "failed"
    assert ledger[second_log]["error_message"] == UNREADABLE

    fix_order(pipeline, second)
    rest = await cli("retry", "--failed")

    assert rest.exit_code == 0, rest.output
    assert rest.stdout.strip() == f"{second_log}: completed"
    assert set((await statuses(pipeline)).values()) == {"completed"}
    truth = pipeline.simulator.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []


async def test_status_shows_the_latest_backfill(
    pipeline: Pipeline, cli_env: None
) -> None:
    """After `backfill --since DAY`, `status --json` reports that backfill: its
    start, pages, orders synced and unreadable, and that it finished."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=20, types={1, 3, 18})
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    backfilled = await cli("backfill", "--since", day)

    assert backfilled.exit_code == 0, backfilled.output
    synced = len(sim.truth())
    assert f"backfill done: {synced} orders synced, 0 unreadable" in backfilled.stdout
    status = await cli("status", "--json")
    assert status.exit_code == 0, status.output
    report = json.loads(status.stdout)
    assert report["workspace"] == pipeline.workspace
    assert report["backfill"] == {
        "since": f"{day} 00:00:00+00:00",
        "pages": 4,  # confirmed and unconfirmed orders, invoices, receipts
        "orders_synced": synced,
        "orders_failed": 0,
        "finished": True,
    }
    assert set(report["ledger"].values()) == {0}
    assert report["poller"].startswith("not running")
    table = await cli("status")
    assert f"since={day} 00:00:00+00:00, pages=4" in table.stdout
    assert "datetime.datetime(" not in table.stdout
    assert (
        await compare_with_truth(pipeline.pool, pipeline.workspace, sim.truth()) == []
    )
