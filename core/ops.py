"""Operator-level actions shared by the CLI, the tests and the benchmarks."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from core.ids import poller_workflow_id
from core.workspaces import find_workspace_id, workspace_id
from workflows.journal import JournalPoller, PollerInput

LEDGER_STATUSES = ("pending", "processing", "completed", "failed", "ignored")


async def ensure_poller(
    client: Client,
    *,
    workspace: str,
    task_queue: str,
    baselinker_task_queue: str,
    poll_interval_seconds: float,
) -> WorkflowHandle[Any, Any]:
    """Start the workspace's poller unless it already runs (then a no-op)."""
    return await client.start_workflow(
        JournalPoller.run,
        PollerInput(
            workspace=workspace,
            baselinker_task_queue=baselinker_task_queue,
            poll_interval_seconds=poll_interval_seconds,
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
    }


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
