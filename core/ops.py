"""Operator-level actions shared by the CLI, the tests and the benchmarks."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from activities.orders import OrderEventInput
from baselinker.models import JournalEntry
from core import search_attributes
from core.ids import backfill_workflow_id, order_event_workflow_id, poller_workflow_id
from core.search_attributes import order_event_search_attributes
from core.workspaces import find_workspace_id, workspace_id
from workflows.backfill import Backfill, BackfillInput
from workflows.journal import JOURNAL_RETENTION, JournalPoller, PollerInput
from workflows.orders import OrderEvent

LEDGER_STATUSES = ("pending", "processing", "completed", "failed", "ignored")
#: The outcome of a named log id that cannot be retried.
NOT_RETRIED = "not found: no ledger entry with an order under that log id"


async def ensure_poller(
    client: Client,
    *,
    workspace: str,
    task_queue: str,
    baselinker_task_queue: str,
    poll_interval_seconds: float,
    initial_backfill_days: float = 0.0,
    idle_max_seconds: float | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start the workspace's poller unless it already runs (then a no-op).

    With `idle_max_seconds`, an idle journal is polled less and less often,
    up to that rest; None keeps the interval whatever the journal holds.
    """
    return await client.start_workflow(
        JournalPoller.run,
        PollerInput(
            workspace=workspace,
            baselinker_task_queue=baselinker_task_queue,
            poll_interval_seconds=poll_interval_seconds,
            initial_backfill_days=initial_backfill_days,
            idle_max_seconds=idle_max_seconds,
        ),
        id=poller_workflow_id(workspace),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def ledger_counts(pool: asyncpg.Pool, workspace: str) -> dict[str, int]:
    """How many journal entries sit in each ledger status."""
    counts = dict.fromkeys(LEDGER_STATUSES, 0)
    ws = await find_workspace_id(pool, workspace)
    if ws is None:
        return counts
    rows = await pool.fetch(
        """
        SELECT status, count(*) AS n FROM event_queue
        WHERE workspace_id = $1 GROUP BY status
        """,
        ws,
    )
    counts.update({r["status"]: r["n"] for r in rows})
    return counts


async def sync_status(pool: asyncpg.Pool, workspace: str) -> dict[str, Any]:
    """Cursor, last sync, lag and ledger counts of a workspace."""
    ws = await find_workspace_id(pool, workspace)
    if ws is None:
        msg = f"workspace {workspace!r} has never been synced here"
        raise LookupError(msg)
    state = await pool.fetchrow(
        """
        SELECT last_log_id, last_sync_at, paused, pause_reason, last_batch_size
        FROM baselinker_sync_state WHERE workspace_id = $1
        """,
        ws,
    )
    newest_open = await pool.fetchval(
        """
        SELECT min(event_date) FROM event_queue
        WHERE workspace_id = $1 AND status IN ('pending', 'processing')
        """,
        ws,
    )
    now = datetime.now(UTC)
    last_sync = state["last_sync_at"] if state else None
    return {
        "workspace": workspace,
        "cursor": state["last_log_id"] if state else 0,
        "last_sync_at": last_sync.isoformat() if last_sync else None,
        "seconds_since_sync": (now - last_sync).total_seconds() if last_sync else None,
        "lag_seconds": (now - newest_open).total_seconds() if newest_open else 0.0,
        "paused": bool(state["paused"]) if state else False,
        "pause_reason": state["pause_reason"] if state else None,
        "ledger": await ledger_counts(pool, workspace),
        "backfill": await _latest_backfill(pool, ws),
    }


async def _latest_backfill(pool: asyncpg.Pool, ws: Any) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        """
        SELECT since, pages, orders_synced, orders_failed, finished_at IS NOT NULL
            AS finished
        FROM backfills WHERE workspace_id = $1 ORDER BY started_at DESC LIMIT 1
        """,
        ws,
    )
    return dict(row) if row else None


async def wait_drained(
    pool: asyncpg.Pool, workspace: str, last_log_id: int, seconds: float
) -> dict[str, int]:
    """Wait until the cursor reached `last_log_id` and no entry is open."""
    deadline = asyncio.get_running_loop().time() + seconds
    ws = await workspace_id(pool, workspace)
    while True:
        cursor = await pool.fetchval(
            "SELECT last_log_id FROM baselinker_sync_state WHERE workspace_id = $1",
            ws,
        )
        counts = await ledger_counts(pool, workspace)
        if (cursor or 0) >= last_log_id and not (
            counts["pending"] or counts["processing"]
        ):
            return counts
        if asyncio.get_running_loop().time() > deadline:
            msg = f"not drained after {seconds:.0f}s: cursor {cursor}, {counts}"
            raise TimeoutError(msg)
        await asyncio.sleep(0.25)


async def list_events(
    pool: asyncpg.Pool, workspace: str, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Ledger rows, newest first: each event's story for an operator."""
    ws = await find_workspace_id(pool, workspace)
    if ws is None:
        return []
    rows = await pool.fetch(
        """
        SELECT event_log_id AS log_id, event_type AS type, event_name AS name,
            order_id, status, retry_count AS attempts,
            COALESCE(error_message, ignore_reason) AS reason, event_date,
            processed_at,
            EXTRACT(EPOCH FROM processed_at - started_at) AS processing_seconds,
            workflow_id
        FROM event_queue
        WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY event_log_id DESC LIMIT $3
        """,
        ws,
        status,
        limit,
    )
    return [dict(r) for r in rows]


async def retry_events(
    client: Client,
    pool: asyncpg.Pool,
    *,
    workspace: str,
    log_ids: list[int] | None,
    task_queue: str,
    baselinker_task_queue: str,
) -> list[tuple[int, str]]:
    """Run ledger entries again through Temporal (all failed ones when
    `log_ids` is None), with fresh data from BaseLinker; (log_id, outcome).
    A named log id the ledger lacks (or that names no order) is an outcome
    starting with "not found"."""
    ws = await find_workspace_id(pool, workspace)
    if ws is None:
        return [(log_id, NOT_RETRIED) for log_id in log_ids or []]
    rows = await pool.fetch(
        """
        SELECT event_log_id, payload FROM event_queue
        WHERE workspace_id = $1 AND order_id IS NOT NULL
          AND CASE WHEN $2::bigint[] IS NULL THEN status = 'failed'
                   ELSE event_log_id = ANY($2::bigint[]) END
        ORDER BY event_log_id
        """,
        ws,
        log_ids,
    )
    outcomes = await asyncio.gather(
        *(
            _retry_one(
                client, pool, ws, workspace, r, task_queue, baselinker_task_queue
            )
            for r in rows
        )
    )
    found = {r["event_log_id"] for r in rows}
    missing = [(i, NOT_RETRIED) for i in log_ids or [] if i not in found]
    return sorted([*outcomes, *missing])


async def _retry_one(
    client: Client,
    pool: asyncpg.Pool,
    ws: Any,
    workspace: str,
    row: asyncpg.Record,
    task_queue: str,
    baselinker_task_queue: str,
) -> tuple[int, str]:
    entry = JournalEntry.model_validate(row["payload"])
    await pool.execute(
        """
        UPDATE event_queue SET status = 'pending', error_message = NULL,
            processed_at = NULL, updated_at = NOW()
        WHERE workspace_id = $1 AND event_log_id = $2
        """,
        ws,
        entry.log_id,
    )
    try:
        result = await client.execute_workflow(
            OrderEvent.run,
            OrderEventInput(
                workspace=workspace,
                entry=entry,
                baselinker_task_queue=baselinker_task_queue,
                refetch=True,
            ),
            id=order_event_workflow_id(workspace, entry.log_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=order_event_search_attributes(workspace, entry),
        )
    except WorkflowFailureError as err:
        cause = err.cause
        return entry.log_id, f"failed: {getattr(cause, 'message', cause)}"
    return entry.log_id, result.outcome


async def start_backfill(
    client: Client,
    *,
    workspace: str,
    since: datetime,
    task_queue: str,
    baselinker_task_queue: str,
) -> WorkflowHandle[Any, Any]:
    """Start a Backfill from `since` (or find the one already running)."""
    return await client.start_workflow(
        Backfill.run,
        BackfillInput(
            workspace=workspace,
            baselinker_task_queue=baselinker_task_queue,
            since=since,
            journal_window_start=datetime.now(UTC) - JOURNAL_RETENTION,
        ),
        id=backfill_workflow_id(workspace, int(since.timestamp())),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(search_attributes.WORKSPACE, workspace)]
        ),
    )


async def backfill_progress(pool: asyncpg.Pool, workflow_id: str) -> dict[str, Any]:
    """Pages, orders synced and failed so far, and whether it finished."""
    row = await pool.fetchrow(
        """
        SELECT since, started_at, finished_at, pages, orders_synced,
            orders_failed, last_error
        FROM backfills WHERE workflow_id = $1
        """,
        workflow_id,
    )
    return dict(row) if row else {}
