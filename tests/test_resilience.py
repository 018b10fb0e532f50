"""Replays, duplicates, restarts and continue-as-new leave the data as one
delivery of each journal entry would."""

import asyncio
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus

from core.ids import order_event_workflow_id, poller_workflow_id
from core.ops import ledger_counts
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from tests.conftest import (
    Pipeline,
    eventually,
    ledger_rows,
    order_event_runs,
    poller_state,
)
from workflows.journal import JournalPoller

#: Every row a workspace owns in the tables the pipeline writes, by table.
WORKSPACE_TABLES = {
    "clients": "SELECT * FROM clients WHERE workspace_id = $1 ORDER BY id",
    "products": "SELECT * FROM products WHERE workspace_id = $1 ORDER BY id",
    "orders": "SELECT * FROM orders WHERE workspace_id = $1 ORDER BY id",
    "orders_products": """
        SELECT l.* FROM orders_products l JOIN orders o ON o.id = l.order_id
        WHERE o.workspace_id = $1 ORDER BY l.id
    """,
    "event_queue": """
        SELECT * FROM event_queue WHERE workspace_id = $1 ORDER BY event_log_id
    """,
    "order_snapshots": """
        SELECT * FROM order_snapshots WHERE workspace_id = $1
        ORDER BY order_id_base
    """,
}

Rows = dict[str, list[dict[str, Any]]]


async def workspace_rows(pool: asyncpg.Pool, workspace: str) -> Rows:
    """Every column of every row the workspace owns, table by table."""
    ws = await workspace_id(pool, workspace)
    return {
        table: [dict(r) for r in await pool.fetch(query, ws)]
        for table, query in WORKSPACE_TABLES.items()
    }


def row_changes(before: Rows, after: Rows) -> list[str]:
    """`table.column` for every column that changed, plus rows added or lost."""
    changes: set[str] = set()
    for table, old_rows in before.items():
        new_rows = after[table]
        if len(old_rows) != len(new_rows):
            changes.add(f"{table}: {len(old_rows)} rows became {len(new_rows)}")
            continue
        for old, new in zip(old_rows, new_rows, strict=True):
            changes.update(f"{table}.{col}" for col in old if old[col] != new[col])
    return sorted(changes)


async def sync_cursor(p: Pipeline) -> int:
    """`baselinker_sync_state.last_log_id` of the pipeline's workspace."""
    ws = await workspace_id(p.pool, p.workspace)
    cursor: int = await p.pool.fetchval(
        "SELECT last_log_id FROM baselinker_sync_state WHERE workspace_id = $1", ws
    )
    return cursor


async def latest_run_ids(p: Pipeline, workflow_ids: list[str]) -> dict[str, str]:
    """The newest run of each workflow id; describe reads the server's own state,
    not the eventually consistent visibility store."""
    described = await asyncio.gather(
        *(p.client.get_workflow_handle(w).describe() for w in workflow_ids)
    )
    return {d.id: d.run_id for d in described}


async def wait_poller_idle(p: Pipeline, seconds: float = 30) -> None:
    """Wait until the poller run has no activity or workflow task in flight, so it
    sits in its interval wait, where a signal is handled at once."""
    handle = p.client.get_workflow_handle(poller_workflow_id(p.workspace))

    async def idle() -> bool | None:
        raw = (await handle.describe()).raw_description
        busy = raw.pending_activities or raw.HasField("pending_workflow_task")
        return None if busy else True

    await eventually(idle, seconds, "the poller to rest between batches")


async def test_rereading_the_journal_from_zero_changes_nothing(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new poller that re-reads the whole journal from cursor 0 writes no row
    and starts no OrderEvent: every entry is already ledgered and owned."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=20)
    first = await pipeline.start_poller()
    await pipeline.drain()
    await wait_poller_idle(pipeline)
    head = sim.account.last_log_id
    ledger = await ledger_rows(pipeline)
    started = [r["workflow_id"] for r in ledger.values() if r["workflow_id"]]
    assert len(started) == len(sim.account.journal)
    runs_before = await order_event_runs(pipeline, len(started))
    before = await workspace_rows(pipeline.pool, pipeline.workspace)
    described_before = await latest_run_ids(pipeline, started)

    poller = pipeline.client.get_workflow_handle(poller_workflow_id(pipeline.workspace))
    await poller.terminate("re-read the journal from the start")
    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    await pipeline.pool.execute(
        "UPDATE baselinker_sync_state SET last_log_id = 0 WHERE workspace_id = $1",
        ws,
    )
    asked_from: list[int] = []
    query_journal = sim.account.query_journal

    def recording(last_log_id: int, *args: Any, **kwargs: Any) -> list[Any]:
        asked_from.append(last_log_id)
        return query_journal(last_log_id, *args, **kwargs)

    monkeypatch.setattr(sim.account, "query_journal", recording)
    second = await pipeline.start_poller()
    assert second.first_execution_run_id != first.first_execution_run_id

    async def reread() -> bool | None:
        state = await poller_state(pipeline)
        at_head = state is not None and state.cursor == head
        return True if at_head and await sync_cursor(pipeline) == head else None

    await eventually(reread, 60, "the new poller to re-read up to the head")
    assert asked_from[0] == 0

    after = await workspace_rows(pipeline.pool, pipeline.workspace)
    assert row_changes(before, after) == []
    assert after == before
    assert await latest_run_ids(pipeline, started) == described_before
    assert await order_event_runs(pipeline, len(started)) == runs_before


async def test_a_journal_entry_delivered_twice_creates_one_order(
    pipeline: Pipeline,
) -> None:
    """The same log_id twice in one journal page gives one ledger row, one
    OrderEvent and one order: the ledger and the workflow id dedupe it."""
    sim = pipeline.simulator
    account = sim.account
    sim.seed_scenario(orders=3, types={1, 3, 18})
    distinct = [e.log_id for e in account.journal]
    # Every entry delivered twice, side by side, as a replayed page would.
    account.journal[:] = [e for entry in account.journal for e in (entry, entry)]
    assert len(account.journal) == 2 * len(distinct)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    assert counts["completed"] == len(distinct)
    assert sum(counts.values()) == len(distinct)
    assert list(await ledger_rows(pipeline)) == distinct
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    orders = await pipeline.pool.fetchval(
        "SELECT count(*) FROM orders WHERE workspace_id = $1", ws
    )
    assert orders == len(truth) == 3
    runs = await order_event_runs(pipeline, len(distinct))
    expected_ids = {order_event_workflow_id(pipeline.workspace, i) for i in distinct}
    assert set(runs) == expected_ids
    assert all(len(run_ids) == 1 for run_ids in runs.values()), runs


async def test_a_worker_restarted_mid_batch_loses_nothing(pipeline: Pipeline) -> None:
    """Workers shut down while a backlog is half processed, then started again,
    finish it with every order right and no entry failed or processed twice."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=100)
    total = len(sim.account.journal)
    await pipeline.start_poller()

    async def partly_done() -> bool | None:
        counts = await ledger_counts(pipeline.pool, pipeline.workspace)
        return True if counts["completed"] >= 40 else None

    await eventually(partly_done, 60, "the first OrderEvents to complete")
    await pipeline.stop_workers()
    midway = await ledger_counts(pipeline.pool, pipeline.workspace)
    assert 40 <= midway["completed"] < total

    pipeline.start_workers()
    counts = await pipeline.drain()

    assert counts["failed"] == 0
    assert counts["completed"] + counts["ignored"] == total
    truth, full = sim.truth(), sim.full_truth()
    assert (
        await compare_with_truth(pipeline.pool, pipeline.workspace, truth, full) == []
    )
    # Every entry with an order ran one OrderEvent (those whose order was gone
    # ended ignored); entries without one started none.
    started = [r for r in (await ledger_rows(pipeline)).values() if r["workflow_id"]]
    runs = await order_event_runs(pipeline, len(started), seconds=60)
    assert len(runs) == len(started)
    assert all(len(run_ids) == 1 for run_ids in runs.values())


async def test_continue_as_new_keeps_the_cursor(pipeline: Pipeline) -> None:
    """After a batch of several full journal pages, a poll_now makes the poller
    continue as new with its cursor at the journal's head; the next poll_now
    then processes exactly the entries added since, and nothing earlier again."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=40)
    assert len(sim.account.journal) > 100
    # A long interval: only the signals can make the later polls happen in time.
    first = await pipeline.start_poller(interval=120)
    await pipeline.drain()
    await wait_poller_idle(pipeline)
    poller = pipeline.client.get_workflow_handle(poller_workflow_id(pipeline.workspace))
    await poller.signal(JournalPoller.poll_now)

    async def continued() -> str | None:
        run_id = (await poller.describe()).run_id
        return run_id if run_id != first.result_run_id else None

    await eventually(continued, 30, "the poller to continue as new")
    await wait_poller_idle(pipeline)
    described = await poller.describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    state = await poller.query(JournalPoller.state)
    head = sim.account.last_log_id
    assert state.cursor == head == await sync_cursor(pipeline)
    assert state.batches >= 1
    assert not state.paused
    before = await ledger_rows(pipeline)

    new_orders = sim.seed_scenario(seed=202, orders=3, span_seconds=60)
    new_log_ids = [e.log_id for e in sim.account.journal if e.log_id > head]
    await poller.signal(JournalPoller.poll_now)
    counts = await pipeline.drain(seconds=30)

    after = await ledger_rows(pipeline)
    assert len(new_orders) == 3
    assert sorted(set(after) - set(before)) == new_log_ids
    assert len(after) == len(before) + len(new_log_ids)
    assert counts["completed"] == len(after)
    unchanged = ("status", "processed_at", "updated_at", "retry_count")
    assert all(
        [after[i][col] for col in unchanged] == [old[col] for col in unchanged]
        for i, old in before.items()
    )
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
    runs = await order_event_runs(pipeline, len(after))
    assert len(runs) == len(after)


async def test_search_attributes_find_an_orders_workflows(pipeline: Pipeline) -> None:
    """OrderEvents carry BaseLinkerOrderId, JournalLogType, JournalEvent and
    Workspace, so Web UI queries find an order's or a workspace's events."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=8)
    await pipeline.start_poller()
    await pipeline.drain()
    journal = sim.account.journal
    ws = pipeline.workspace
    by_order: dict[int, set[str]] = {}
    for entry in journal:
        wf_id = order_event_workflow_id(ws, entry.log_id)
        by_order.setdefault(entry.order_id, set()).add(wf_id)
    order_id, expected = max(by_order.items(), key=lambda item: len(item[1]))
    assert len(expected) >= 2
    payments = {
        order_event_workflow_id(ws, e.log_id) for e in journal if e.log_type == 3
    }
    assert payments

    async def listed(query: str, want: set[str]) -> set[str] | None:
        found = {w.id async for w in pipeline.client.list_workflows(query)}
        return found if want <= found else None

    async def find(query: str, want: set[str]) -> set[str]:
        return await eventually(lambda: listed(query, want), 30, query)

    # Order ids repeat across tests' simulators: the workspace tells them apart.
    assert expected <= await find(f"BaseLinkerOrderId = {order_id}", expected)
    mine = f"BaseLinkerOrderId = {order_id} AND Workspace = '{ws}'"
    assert await find(mine, expected) == expected
    paid = f"JournalLogType = 3 AND Workspace = '{ws}'"
    assert await find(paid, payments) == payments
    named = f"JournalEvent = 'payment_received' AND Workspace = '{ws}'"
    assert await find(named, payments) == payments
    everything = {order_event_workflow_id(ws, e.log_id) for e in journal}
    assert await find(f"Workspace = '{ws}'", everything) == everything


async def test_poll_now_sent_during_a_batch_is_not_lost(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll_now signal that arrives while a batch is being read still makes the
    poller read again at once: an order created after the page was read and
    signalled for is processed without waiting out the (long) interval."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=2, types={1, 3, 18})
    await pipeline.start_poller(interval=120)
    await pipeline.drain()
    await wait_poller_idle(pipeline)
    poller = pipeline.client.get_workflow_handle(poller_workflow_id(pipeline.workspace))
    query_journal = sim.account.query_journal
    signals: list[asyncio.Task[None]] = []

    def late_order(last_log_id: int, *args: Any, **kwargs: Any) -> list[Any]:
        # The page is read first; the shop then gets an order and an operator
        # asks for a poll while the poller is still busy with this batch.
        page = query_journal(last_log_id, *args, **kwargs)
        if not signals:
            sim.seed_scenario(seed=303, orders=1, span_seconds=1, types={1, 3, 18})
            signals.append(asyncio.create_task(poller.signal(JournalPoller.poll_now)))
        return page

    monkeypatch.setattr(sim.account, "query_journal", late_order)
    await poller.signal(JournalPoller.poll_now)

    async def signalled() -> bool | None:
        return True if signals and signals[0].done() else None

    await eventually(signalled, 20, "a journal read and the signal sent during it")
    await signals[0]
    counts = await pipeline.drain(seconds=10)

    assert counts["completed"] == len(sim.account.journal)
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
