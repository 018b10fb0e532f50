"""Backfill: orders the journal no longer holds are synced with getOrders, once,
with no customer reaction for old purchases, and its failure stops the poller."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from activities.backfill import BACKFILL_SUPPRESSED
from baselinker.client import BaseLinkerClient
from core.ids import poller_workflow_id
from core.ops import backfill_progress, start_backfill
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from simulators.baselinker import Order, OrderLine
from tests.conftest import Pipeline, eventually, ledger_rows, poller_state
from workflows.backfill import BackfillInput, BackfillResult
from workflows.journal import JOURNAL_RETENTION, JournalPoller

DAY = 86400.0
#: getOrders' page size: the backfill turns a page after this many orders.
PAGE = 100


async def last_polled_days_ago(p: Pipeline, days: float) -> None:
    """As if the poller last read the journal `days` ago, at cursor 0."""
    ws = await workspace_id(p.pool, p.workspace)
    await p.pool.execute(
        """
        INSERT INTO baselinker_sync_state (workspace_id, last_log_id, last_polled_at)
        VALUES ($1, 0, NOW() - make_interval(secs => $2))
        """,
        ws,
        days * DAY,
    )


async def backfill_executions(
    p: Pipeline, expected: int, seconds: float = 30
) -> dict[str, WorkflowExecutionStatus | None]:
    """The workspace's Backfill executions by id and status, once visibility
    (eventually consistent) lists `expected` of them."""
    query = f"WorkflowId STARTS_WITH 'backfill/{p.workspace}/'"

    async def listed() -> dict[str, WorkflowExecutionStatus | None] | None:
        found = {e.id: e.status async for e in p.client.list_workflows(query)}
        return found if len(found) >= expected else None

    return await eventually(listed, seconds, f"{expected} Backfill executions")


async def closed_status(
    handle: WorkflowHandle[Any, Any], seconds: float = 30
) -> WorkflowExecutionStatus:
    """The execution's status once it is no longer running."""

    async def closed() -> WorkflowExecutionStatus | None:
        status = (await handle.describe()).status
        return None if status in (None, WorkflowExecutionStatus.RUNNING) else status

    return await eventually(closed, seconds, f"{handle.id} to close")


async def backfill_rows(p: Pipeline) -> list[dict[str, Any]]:
    """The workspace's `backfills` progress rows, oldest first."""
    ws = await workspace_id(p.pool, p.workspace)
    rows = await p.pool.fetch(
        "SELECT * FROM backfills WHERE workspace_id = $1 ORDER BY started_at", ws
    )
    return [dict(r) for r in rows]


async def started_with(p: Pipeline, workflow_id: str) -> BackfillInput:
    """The input a Backfill execution was started with, from its history."""
    history = await p.client.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (params,) = await p.client.data_converter.decode(
        started.input.payloads, [BackfillInput]
    )
    assert isinstance(params, BackfillInput)
    return params


async def new_order_reactions(p: Pipeline) -> dict[int, dict[str, Any]]:
    """The one-time new-order reactions by order id."""
    ws = await workspace_id(p.pool, p.workspace)
    rows = await p.pool.fetch(
        """
        SELECT subject, owner_log_id, suppressed_reason FROM reactions
        WHERE workspace_id = $1 AND kind = 'new_order'
        """,
        ws,
    )
    return {int(r["subject"]): dict(r) for r in rows}


async def operator_backfill(
    p: Pipeline, since: datetime
) -> WorkflowHandle[Any, BackfillResult]:
    """`start_backfill` as the CLI calls it, on the pipeline's queues."""
    return await start_backfill(
        p.client,
        workspace=p.workspace,
        since=since,
        task_queue=p.queues.orders,
        baselinker_task_queue=p.queues.baselinker,
    )


async def swap_token(p: Pipeline, token: str) -> None:
    """Restart the workers with a BaseLinker client that sends `token`."""
    await p.stop_workers()
    await p.api.aclose()
    p.api = BaseLinkerClient(p.simulator.url, token)
    p.start_workers()


async def backfill_pause_reason(p: Pipeline) -> str:
    """Start a poller whose first run backfills one day, and return the reason
    it pauses with once that Backfill failed."""
    await p.start_poller(initial_backfill_days=1)

    async def paused() -> str | None:
        state = await poller_state(p)
        return state.pause_reason if state is not None and state.paused else None

    reason = await eventually(paused, 30, "the poller to pause")
    (backfill_id, _), *others = (await backfill_executions(p, 1)).items()
    assert others == []
    backfill = p.client.get_workflow_handle(backfill_id)
    assert await closed_status(backfill) == WorkflowExecutionStatus.FAILED
    return reason


def plain_order(email: str) -> Order:
    """A confirmed one-line order."""
    line = OrderLine(
        product_id=3_201_003,
        name="Creatina Monohidratada 300g",
        price_brutto=Decimal("99.90"),
        quantity=1,
        sku="SUP-003",
    )
    return Order(products=[line], email=email, delivery_price=Decimal("19.90"))


async def test_journal_gap_is_backfilled_then_the_journal_followed(
    pipeline: Pipeline,
) -> None:
    """A poller last run 5 days ago, facing a journal that keeps 3, first runs
    a Backfill child from before the gap and then reads the journal: the
    database ends equal to BaseLinker with nothing failed, reactions of orders
    older than the journal are claimed suppressed, and newer ones are owned by
    their journal entries."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=40, span_seconds=5 * DAY)
    retained_from = sim.clock.now() - JOURNAL_RETENTION.total_seconds()
    retained = {e.log_id for e in sim.account.journal if e.date >= retained_from}
    assert len(retained) < len(sim.account.journal)
    await last_polled_days_ago(pipeline, 5)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    (backfill_id, status), *others = (await backfill_executions(pipeline, 1)).items()
    assert others == []
    assert status == WorkflowExecutionStatus.COMPLETED
    progress = await backfill_progress(pipeline.pool, backfill_id)
    assert progress["finished_at"] is not None
    assert progress["orders_synced"] > 0
    assert progress["orders_failed"] == 0
    ledger = await ledger_rows(pipeline)
    assert set(ledger) == retained
    assert progress["finished_at"] <= min(r["created_at"] for r in ledger.values())
    assert counts["failed"] == 0
    truth, full = sim.truth(), sim.full_truth(observable_from=retained_from)
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []

    window = (await started_with(pipeline, backfill_id)).journal_window_start
    # The workflow's and the simulator's clocks read `now` a moment apart.
    assert window.timestamp() == pytest.approx(retained_from, abs=120)
    reactions = await new_order_reactions(pipeline)
    old = [o for o, raw in truth.items() if raw["date_add"] < window.timestamp()]
    new = [o for o in truth if o not in old]
    assert old
    assert new
    for order_id in old:
        assert reactions[order_id]["suppressed_reason"] == BACKFILL_SUPPRESSED
        assert reactions[order_id]["owner_log_id"] == 0
    for order_id in new:
        assert reactions[order_id]["owner_log_id"] in ledger
        assert reactions[order_id]["suppressed_reason"] != BACKFILL_SUPPRESSED

    # Documents of the backfilled days match too, and so do the links and
    # flags the API can still show (those only expired entries told are gone).
    assert (
        await compare_with_truth(pipeline.pool, pipeline.workspace, truth, full) == []
    )


async def test_first_start_backfills_once(pipeline: Pipeline) -> None:
    """A first start with no cursor and initial_backfill_days > 0 runs one
    Backfill; later runs of the poller (continue-as-new) and a restarted
    poller run none."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=15, types={1, 3, 18})
    first = await pipeline.start_poller(initial_backfill_days=2)
    await pipeline.drain()

    async def runs_after(batches: int) -> bool | None:
        state = await poller_state(pipeline)
        return True if state is not None and state.batches >= batches else None

    await eventually(lambda: runs_after(3), 30, "three poller runs")
    (backfill_id, status), *others = (await backfill_executions(pipeline, 1)).items()
    assert others == []
    assert status == WorkflowExecutionStatus.COMPLETED
    rows = await backfill_rows(pipeline)
    assert [r["workflow_id"] for r in rows] == [backfill_id]
    assert rows[0]["orders_synced"] == len(sim.truth())
    since = rows[0]["since"]
    assert timedelta(days=2) - timedelta(minutes=2) < datetime.now(UTC) - since
    assert datetime.now(UTC) - since < timedelta(days=2) + timedelta(minutes=2)

    await first.terminate("restart the poller")
    await pipeline.start_poller(initial_backfill_days=2)
    sim.seed_scenario(seed=404, orders=2, span_seconds=1, types={1})
    await pipeline.drain()
    await eventually(lambda: runs_after(2), 30, "two runs of the new poller")

    assert [r["workflow_id"] for r in await backfill_rows(pipeline)] == [backfill_id]
    assert list(await backfill_executions(pipeline, 1)) == [backfill_id]
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []


async def test_operator_backfill_counts_progress_and_never_runs_twice(
    pipeline: Pipeline,
) -> None:
    """`start_backfill` since a date pages getOrders, counting pages and orders
    in its progress row until it finishes; starting it again with the same
    date while it runs joins the running one instead of starting another."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=130, types={1, 3, 18})
    truth = sim.truth()
    confirmed = sum(1 for raw in truth.values() if raw["confirmed"])
    since = datetime.now(UTC) - timedelta(days=1)
    # Without workers the Backfill stays running, waiting for its first task.
    await pipeline.stop_workers()

    first = await operator_backfill(pipeline, since)
    again = await operator_backfill(pipeline, since)

    assert again.id == first.id
    assert again.first_execution_run_id == first.first_execution_run_id
    assert (await first.describe()).status == WorkflowExecutionStatus.RUNNING
    assert list(await backfill_executions(pipeline, 1)) == [first.id]
    pipeline.start_workers()
    result: BackfillResult = await first.result()
    assert result == BackfillResult(synced=len(truth), failed=0)
    progress = await backfill_progress(pipeline.pool, first.id)
    assert progress["since"] == since
    assert progress["finished_at"] is not None
    assert progress["orders_synced"] == len(truth)
    assert progress["orders_failed"] == 0
    # The confirmed pass by date, then every order by id for the unconfirmed
    # ones, then invoices and receipts (none here) since the date: each pass
    # ends on its first page that is not full.
    orders_pages = confirmed // PAGE + 1 + len(truth) // PAGE + 1
    assert progress["pages"] == orders_pages + 2
    assert [r["workflow_id"] for r in await backfill_rows(pipeline)] == [first.id]
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []


async def test_orders_confirmed_in_the_same_second_across_a_page_are_all_synced(
    pipeline: Pipeline,
) -> None:
    """Two orders confirmed in the same second, one closing a full getOrders
    page and one opening the next, are both backfilled."""
    account = pipeline.simulator.account
    start = pipeline.simulator.clock.now() - 3600
    for n in range(PAGE - 1):
        account.create_order(plain_order(f"cliente{n}@example.com"), at=start + n)
    same_second = start + PAGE
    closing = account.create_order(plain_order("fecha@example.com"), at=same_second)
    opening = account.create_order(plain_order("abre@example.com"), at=same_second)

    handle = await operator_backfill(pipeline, datetime.fromtimestamp(start - 60, UTC))
    result: BackfillResult = await handle.result()

    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    stored = await pipeline.pool.fetch(
        """
        SELECT order_id_base FROM orders
        WHERE workspace_id = $1 AND order_id_base = ANY($2::bigint[])
        """,
        ws,
        [closing, opening],
    )
    assert sorted(r["order_id_base"] for r in stored) == [closing, opening]
    assert result.failed == 0
    truth = pipeline.simulator.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []


async def test_failed_backfill_pauses_the_poller_with_the_way_out(
    pipeline: Pipeline,
) -> None:
    """A Backfill that fails (its token is rejected) pauses the poller before
    it reads the journal, with a reason naming the backfill and the commands
    that fix it; following them (a good token, the named backfill, resume)
    syncs the shop."""
    sim = pipeline.simulator
    sim.seed_scenario(orders=10, types={1, 3, 18})
    await swap_token(pipeline, "not-the-token")

    reason = await backfill_pause_reason(pipeline)

    assert reason.startswith("backfill since ")
    command = re.search(r"`starter\.py backfill --since (\d{4}-\d{2}-\d{2})`", reason)
    assert command is not None
    assert reason.endswith("then `resume`")
    ws = await workspace_id(pipeline.pool, pipeline.workspace)

    async def stored_pause() -> str | None:
        row = await pipeline.pool.fetchrow(
            "SELECT paused, pause_reason FROM baselinker_sync_state"
            " WHERE workspace_id = $1",
            ws,
        )
        return row["pause_reason"] if row is not None and row["paused"] else None

    assert await eventually(stored_pause, 30, "the pause to be saved") == reason
    assert sim.calls["getJournalList"] == 0
    assert await ledger_rows(pipeline) == {}

    await swap_token(pipeline, sim.token)
    since = datetime.strptime(command.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    rerun = await operator_backfill(pipeline, since)
    assert (await rerun.result()).synced == len(sim.truth())
    poller = pipeline.client.get_workflow_handle(poller_workflow_id(pipeline.workspace))
    await poller.signal(JournalPoller.resume)
    counts = await pipeline.drain()

    assert counts["failed"] == 0
    assert counts["completed"] == len(sim.account.journal)
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []


async def test_backfill_pause_reason_names_the_rejected_token(
    pipeline: Pipeline,
) -> None:
    """When a Backfill fails because BaseLinker rejects the token, the pause
    reason says so, as the poller's own token pause does: rerunning the
    backfill without fixing the token would fail again."""
    await swap_token(pipeline, "not-the-token")

    reason = await backfill_pause_reason(pipeline)

    assert "token" in reason.lower()
