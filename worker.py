"""The worker: runs workflows and database activities, and the BaseLinker calls
on their own task queue, paced to the account's budget. `python worker.py`
until SIGTERM/SIGINT."""

import asyncio
import signal
from dataclasses import dataclass

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.backfill import Backfiller
from activities.documents import OrderDocuments
from activities.journal import JournalReader, Ledger
from activities.orders import OrderSnapshots, OrderStore
from baselinker.budget import RequestBudget
from baselinker.client import BaseLinkerClient
from core.db import create_pool
from core.log import configure_logging
from core.settings import Settings, get_settings
from core.temporal import connect
from workflows.backfill import Backfill
from workflows.journal import JournalPoller
from workflows.orders import OrderEvent

log = structlog.get_logger(__name__)

#: Workflows kept in memory between tasks; bounds the worker's footprint.
MAX_CACHED_WORKFLOWS = 500
#: Concurrent database steps, of each kind (activities and OrderEvent's local
#: ones); beyond the pool's size they wait for a connection.
MAX_DATABASE_ACTIVITIES = 20


@dataclass(frozen=True)
class Queues:
    """Task queue names, defined once per deployment (tests use their own)."""

    orders: str
    baselinker: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "Queues":
        """The deployment's queues."""
        return cls(
            orders=settings.task_queue, baselinker=settings.baselinker_task_queue
        )


def build_workers(
    client: Client,
    pool: asyncpg.Pool,
    baselinker: BaseLinkerClient,
    queues: Queues,
    requests_per_minute: int,
) -> list[Worker]:
    """One worker per task queue, sharing the pool and the BaseLinker client;
    the client's calls keep to `requests_per_minute` across every worker."""
    baselinker.pace_with(
        RequestBudget(pool, baselinker.account, requests_per_minute).wait_turn
    )
    ledger, store = Ledger(pool), OrderStore(pool)
    reader, snapshots = JournalReader(baselinker), OrderSnapshots(pool, baselinker)
    documents = OrderDocuments(pool, baselinker)
    backfiller = Backfiller(pool, baselinker)
    orders = Worker(
        client,
        task_queue=queues.orders,
        workflows=[JournalPoller, OrderEvent, Backfill],
        activities=[
            ledger.load_cursor,
            ledger.save_cursor,
            ledger.record_journal,
            store.process_order_event,
            store.record_event_failure,
            backfiller.start_backfill,
            backfiller.finish_backfill,
        ],
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        max_concurrent_activities=MAX_DATABASE_ACTIVITIES,
        max_concurrent_local_activities=MAX_DATABASE_ACTIVITIES,
    )
    api = Worker(
        client,
        task_queue=queues.baselinker,
        activities=[
            reader.fetch_journal,
            snapshots.fetch_orders_page,
            snapshots.refresh_statuses,
            documents.sync_order_documents,
            documents.fetch_documents_page,
            documents.fetch_documents_since,
            documents.fetch_package_statuses,
            backfiller.backfill_orders_page,
        ],
        # The budget itself is kept by RequestBudget, across every worker.
        max_concurrent_activities=4,
    )
    return [orders, api]


async def run_workers(workers: list[Worker], stop: asyncio.Event) -> None:
    """Run the workers until `stop` is set, then let in-flight tasks finish."""
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.run())
        await stop.wait()
        await asyncio.gather(*(worker.shutdown() for worker in workers))


def baselinker_client(settings: Settings, url: str, token: str) -> BaseLinkerClient:
    """The BaseLinker client the settings describe, for a given endpoint."""
    return BaseLinkerClient(
        url,
        token,
        timeout=settings.baselinker_timeout_seconds,
        block_timezone=settings.baselinker_block_timezone,
    )


async def main() -> None:
    """Run a worker against the configured Temporal, database and BaseLinker."""
    settings = get_settings()
    configure_logging(settings)
    if settings.baselinker_token is None or settings.database_url is None:
        msg = (
            "worker.py needs DATABASE_URL and BASELINKER_TOKEN; `make dev` runs locally"
        )
        raise SystemExit(msg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    client = await connect(settings.temporal_address, settings.temporal_namespace)
    pool = await create_pool(settings.database_url, settings.database_pool_size)
    api = baselinker_client(
        settings, settings.baselinker_url, settings.baselinker_token.get_secret_value()
    )
    workers = build_workers(
        client,
        pool,
        api,
        Queues.from_settings(settings),
        settings.baselinker_requests_per_minute,
    )
    log.info("worker_started", task_queue=settings.task_queue)
    try:
        await run_workers(workers, stop)
    finally:
        await api.aclose()
        await pool.close()
    log.info("worker_stopped")


if __name__ == "__main__":
    asyncio.run(main())
