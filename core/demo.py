"""The demo: seed a simulated shop, process its whole journal, check the result."""

import asyncio
import contextlib
import time
import uuid
from typing import Any

import asyncpg
import structlog
from temporalio.service import RPCError

from core.db import create_pool
from core.devstack import local_database, local_temporal
from core.ids import poller_workflow_id
from core.ops import ensure_poller, ledger_counts, wait_drained
from core.settings import Settings
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from simulators.baselinker import BaseLinkerSimulator
from worker import Queues, baselinker_client, build_workers
from workflows.journal import JOURNAL_RETENTION

log = structlog.get_logger(__name__)

#: The demo polls fast: it measures the pipeline, not the resting interval.
DEMO_POLL_INTERVAL = 1.0
#: A shop's last hour, unless the demo plays an outage.
DEMO_SPAN_SECONDS = 3600.0
#: How often a running demo says how far it got.
PROGRESS_EVERY_SECONDS = 10.0
#: Long enough for thousands of orders at the account's request budget.
DEMO_TIMEOUT_SECONDS = 1800


async def run_demo(
    settings: Settings, orders: int, seed: int, offline_days: float = 0.0
) -> dict[str, Any]:
    """Run a fresh workspace against a fresh simulator; return the report.

    With `offline_days`, the shop's orders span that many days and the
    workspace starts with a cursor that old: the journal (3 days) no longer
    has the start, so the poller must catch up through a Backfill.
    """
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:8]
    workspace = f"demo-{suffix}"
    queues = Queues(orders=f"demo-orders-{suffix}", baselinker=f"demo-bl-{suffix}")
    simulator = BaseLinkerSimulator(token=f"demo-{suffix}", seed=seed)
    async with local_database(settings) as url, local_temporal(settings) as temporal:
        pool = await create_pool(url, settings.database_pool_size)
        await simulator.start()
        span = offline_days * 86400 * 0.99 if offline_days else DEMO_SPAN_SECONDS
        simulator.seed_scenario(orders=orders, span_seconds=span)
        if offline_days:
            await _cursor_from_days_ago(pool, workspace, offline_days)
        api = baselinker_client(settings, simulator.url, simulator.token)
        workers = build_workers(
            temporal.client, pool, api, queues, settings.baselinker_requests_per_minute
        )
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            await ensure_poller(
                temporal.client,
                workspace=workspace,
                task_queue=queues.orders,
                baselinker_task_queue=queues.baselinker,
                poll_interval_seconds=DEMO_POLL_INTERVAL,
                initial_backfill_days=settings.initial_backfill_days,
            )
            progress = asyncio.create_task(_report_progress(pool, workspace))
            try:
                counts = await wait_drained(
                    pool, workspace, simulator.account.last_log_id, DEMO_TIMEOUT_SECONDS
                )
            finally:
                progress.cancel()
            wall = time.monotonic() - started
            retained = simulator.clock.now() - JOURNAL_RETENTION.total_seconds()
            mismatches = await compare_with_truth(
                pool, workspace, simulator.truth(), simulator.full_truth(retained)
            )
            report = {
                "workspace": workspace,
                "events": sum(e.date >= retained for e in simulator.account.journal),
                "events_expired": sum(
                    e.date < retained for e in simulator.account.journal
                ),
                "processed": counts["completed"],
                "failed": counts["failed"],
                "ignored": counts["ignored"],
                **await _row_counts(pool, workspace),
                "by_type": await _by_type(pool, workspace),
                "backfilled_orders": await _backfilled(pool, workspace),
                "mismatches": len(mismatches),
                "mismatch_examples": mismatches[:10],
                "baselinker_calls": simulator.total_calls,
                "blocked_tokens": simulator.blocked,
                "wall_seconds": round(wall, 2),
            }
        finally:
            handle = temporal.client.get_workflow_handle(poller_workflow_id(workspace))
            with contextlib.suppress(RPCError):
                await handle.terminate("demo finished")
            await asyncio.gather(*(w.shutdown() for w in workers))
            await asyncio.gather(*tasks, return_exceptions=True)
            await api.aclose()
            await simulator.stop()
            await pool.close()
    return report


async def _report_progress(pool: asyncpg.Pool, workspace: str) -> None:
    """A log line every few seconds, so a long demo visibly moves."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)
        log.info(
            "demo_progress", workspace=workspace, **await ledger_counts(pool, workspace)
        )


async def _cursor_from_days_ago(
    pool: asyncpg.Pool, workspace: str, days: float
) -> None:
    """As if the poller last read the journal `days` ago and has been off since."""
    ws = await workspace_id(pool, workspace)
    await pool.execute(
        """
        INSERT INTO baselinker_sync_state (workspace_id, last_log_id, last_polled_at)
        VALUES ($1, 0, NOW() - make_interval(secs => $2))
        """,
        ws,
        days * 86400,
    )


async def _by_type(pool: asyncpg.Pool, workspace: str) -> dict[str, int]:
    ws = await workspace_id(pool, workspace)
    rows = await pool.fetch(
        """
        SELECT event_type, event_name, count(*) AS n FROM event_queue
        WHERE workspace_id = $1 GROUP BY event_type, event_name ORDER BY event_type
        """,
        ws,
    )
    return {f"{r['event_type']} {r['event_name']}": r["n"] for r in rows}


async def _backfilled(pool: asyncpg.Pool, workspace: str) -> int:
    ws = await workspace_id(pool, workspace)
    synced: int = await pool.fetchval(
        "SELECT COALESCE(sum(orders_synced), 0) FROM backfills WHERE workspace_id = $1",
        ws,
    )
    return synced


async def _row_counts(pool: asyncpg.Pool, workspace: str) -> dict[str, int]:
    ws = await workspace_id(pool, workspace)
    row = await pool.fetchrow(
        """
        SELECT
            (SELECT count(*) FROM orders WHERE workspace_id = $1) AS orders,
            (SELECT count(*) FROM clients WHERE workspace_id = $1) AS clients,
            (SELECT count(*) FROM orders_products l JOIN orders o ON o.id = l.order_id
             WHERE o.workspace_id = $1) AS order_lines
        """,
        ws,
    )
    return dict(row)
