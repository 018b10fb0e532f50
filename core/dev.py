"""`make dev`: the whole system in the foreground, on embedded defaults."""

import asyncio
import contextlib
import fcntl
import signal
from collections.abc import Iterator

import asyncpg
import structlog
from rich.console import Console

from core.db import create_pool
from core.devstack import local_database, local_temporal
from core.ops import ensure_poller
from core.settings import Settings
from core.stack import reachable
from core.workspaces import workspace_id
from simulators.baselinker import BaseLinkerSimulator
from worker import Queues, baselinker_client, build_workers, run_workers

log = structlog.get_logger(__name__)

#: Orders the simulated shop already has when `make dev` starts.
DEV_INITIAL_ORDERS = 20
#: With the simulator a newcomer should see events flow within seconds.
DEV_SIMULATOR_POLL_INTERVAL = 5.0


#: What a second local system must move so that it shares nothing.
OWN_STACK = "DATA_DIR, TEMPORAL_ADDRESS, TEMPORAL_UI_PORT and SIMULATOR_PORT"


class DevInUseError(RuntimeError):
    """Another `make dev` owns the data directory, or a port it needs."""


@contextlib.contextmanager
def dev_lock(settings: Settings) -> Iterator[None]:
    """Hold DATA_DIR for this `make dev`; a second one on it stops at once.

    Two on one DATA_DIR would share its database and workspace while each
    plays its own simulated shop, and mix their data.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "dev.lock", "w") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            msg = (
                f"another `make dev` is running on {settings.data_dir}: stop it, "
                f"or give this one its own {OWN_STACK}"
            )
            raise DevInUseError(msg) from None
        yield


async def run_dev(settings: Settings) -> None:
    """Start everything that is not running, then run until SIGINT/SIGTERM."""
    with dev_lock(settings):
        await _run_stack(settings)


async def _run_stack(settings: Settings) -> None:
    port = settings.simulator_port
    if settings.baselinker_token is None and await reachable(f"127.0.0.1:{port}"):
        msg = (
            f"port {port} is in use: is `make dev` already running? "
            f"(a second one needs its own {OWN_STACK})"
        )
        raise DevInUseError(msg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with local_database(settings) as url, local_temporal(settings) as temporal:
        pool = await create_pool(url, settings.database_pool_size)
        simulator: BaseLinkerSimulator | None = None
        live: asyncio.Task[None] | None = None
        if settings.baselinker_token is None:
            simulator = await _start_simulator(settings, pool)
            live = asyncio.create_task(simulator.run_live())
            api = baselinker_client(settings, simulator.url, simulator.token)
            interval = min(settings.poll_interval_seconds, DEV_SIMULATOR_POLL_INTERVAL)
        else:
            token = settings.baselinker_token.get_secret_value()
            api = baselinker_client(settings, settings.baselinker_url, token)
            interval = settings.poll_interval_seconds
        workers = build_workers(
            temporal.client,
            pool,
            api,
            Queues.from_settings(settings),
            settings.baselinker_requests_per_minute,
        )
        handle = await ensure_poller(
            temporal.client,
            workspace=settings.workspace,
            task_queue=settings.task_queue,
            baselinker_task_queue=settings.baselinker_task_queue,
            poll_interval_seconds=interval,
            initial_backfill_days=settings.initial_backfill_days,
            idle_max_seconds=settings.poll_idle_max_seconds,
        )
        _banner(settings, url, temporal.web_ui, simulator, handle.id)
        try:
            await run_workers(workers, stop)
        finally:
            if live is not None:
                live.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await live
            if simulator is not None:
                await simulator.stop()
            await api.aclose()
            await pool.close()
    log.info("dev_stopped")


async def _start_simulator(
    settings: Settings, pool: asyncpg.Pool
) -> BaseLinkerSimulator:
    """The simulated shop, numbering on from what the database has already seen."""
    simulator = BaseLinkerSimulator(token="dev-token", seed=settings.simulator_seed)
    ws = await workspace_id(pool, settings.workspace)
    seen = await pool.fetchrow(
        """
        SELECT
            (SELECT max(event_log_id) FROM event_queue WHERE workspace_id = $1)
                AS log_id,
            (SELECT max(order_id_base) FROM orders WHERE workspace_id = $1)
                AS order_id,
            (SELECT max(l.order_product_id) FROM orders_products l
             JOIN orders o ON o.id = l.order_id WHERE o.workspace_id = $1)
                AS order_product_id
        """,
        ws,
    )
    simulator.account.continue_after(
        log_id=seen["log_id"] or 0,
        order_id=seen["order_id"] or 0,
        order_product_id=seen["order_product_id"] or 0,
    )
    await simulator.start(port=settings.simulator_port)
    simulator.seed_scenario(orders=DEV_INITIAL_ORDERS, span_seconds=600)
    return simulator


def _banner(
    settings: Settings,
    database_url: str,
    web_ui: str | None,
    simulator: BaseLinkerSimulator | None,
    poller_id: str,
) -> None:
    console = Console(stderr=True, soft_wrap=True)
    console.rule("baselinker-temporal is running")
    if web_ui is not None:
        console.print(f"Temporal Web UI  {web_ui}")
    else:
        console.print(f"Temporal         {settings.temporal_address} (already running)")
    console.print(f"Poller           {poller_id}")
    console.print(f"Database         {database_url}")
    if simulator is not None:
        console.print(f"BaseLinker       simulator at {simulator.url} (live shop)")
    else:
        console.print(f"BaseLinker       {settings.baselinker_url}")
    console.print("Ctrl-C stops everything.")
