"""`python bench/pipeline.py --orders N [--json]`: drain a backlog of N orders,
set its rate against the server's own ceiling, follow a live shop, and count
what the naive poller would spend. Prints figures, asserts none."""

import sys
from pathlib import Path

# `python bench/pipeline.py` puts bench/ on the path, not the project.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError

from bench.ceiling import measure_ceiling
from bench.naive import count_naive_calls
from bench.processes import (
    CpuMeter,
    RssSampler,
    Watched,
    WorkerProcess,
    find_child,
    find_postmaster,
    machine_info,
)
from core.db import create_pool, migrate
from core.ids import poller_workflow_id
from core.log import configure_logging
from core.ops import ensure_poller, ledger_counts, wait_drained
from core.settings import Settings
from core.stack import TemporalDevServer, free_port, start_embedded_postgres
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from simulators.baselinker import BaseLinkerSimulator
from worker import Queues

#: The seeded shop's orders span its last hour.
BACKLOG_SPAN_SECONDS = 3600.0
#: The worker's share of the account's 100 requests a minute.
WORKER_REQUESTS_PER_MINUTE = 90
#: A busy shop: one action (most write a journal entry) every 0.5-1.5 s.
LIVE_INTERVAL = (0.5, 1.5)
#: How often a long phase says how far it got (on stderr).
PROGRESS_EVERY_SECONDS = 10.0
#: How often the steady phase looks for journal entries the shop just wrote.
APPEND_WATCH_SECONDS = 0.05

errors = Console(stderr=True)


@dataclass(frozen=True)
class Options:
    """What one bench run does."""

    orders: int
    poll_interval: float
    steady_seconds: float
    seed: int
    timeout: float


@dataclass
class Stack:
    """Everything a run started, on loopback, in this process or beside it."""

    client: Client
    pool: asyncpg.Pool
    embedded: bool
    postgres_version: str
    simulator: BaseLinkerSimulator
    worker: WorkerProcess
    rss: RssSampler
    cpu: CpuMeter
    workspace: str
    queues: Queues


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def bench_database(
    settings: Settings, scratch: Path
) -> AsyncIterator[tuple[str, bool]]:
    """A fresh, migrated database on DATABASE_URL's server or on an embedded
    one under `scratch`; dropped afterwards. Yields (url, embedded)."""
    server = settings.database_url
    embedded = server is None
    if server is None:
        server = await asyncio.to_thread(start_embedded_postgres, scratch)
    name = f"blt_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(server, name)
        await asyncio.to_thread(migrate, url)
        yield url, embedded
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def open_stack(exits: AsyncExitStack, settings: Settings, scratch: Path) -> Stack:
    """Start database, Temporal, simulator and worker; `exits` stops them."""
    url, embedded = await exits.enter_async_context(bench_database(settings, scratch))

    server = TemporalDevServer(
        port=free_port(), ui_port=free_port(), log_file=scratch / "temporal.log"
    )
    exits.push_async_callback(server.stop)
    client = await server.start()

    simulator = BaseLinkerSimulator(token=f"bench-{uuid.uuid4().hex[:8]}")
    await simulator.start()
    exits.push_async_callback(simulator.stop)

    pool = await create_pool(url)
    exits.push_async_callback(pool.close)
    version = await pool.fetchval("SHOW server_version")

    suffix = uuid.uuid4().hex[:8]
    queues = Queues(orders=f"bench-orders-{suffix}", baselinker=f"bench-bl-{suffix}")
    worker = WorkerProcess(
        {
            **os.environ,
            "DATABASE_URL": url,
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_NAMESPACE": client.namespace,
            "BASELINKER_URL": simulator.url,
            "BASELINKER_TOKEN": simulator.token,
            "TASK_QUEUE": queues.orders,
            "BASELINKER_TASK_QUEUE": queues.baselinker,
            "BASELINKER_REQUESTS_PER_MINUTE": str(WORKER_REQUESTS_PER_MINUTE),
            "LOG_LEVEL": "WARNING",
        },
        scratch / "worker.log",
    )
    exits.push_async_callback(worker.stop)
    await worker.start()
    await worker.wait_ready(client, [queues.orders], [queues.orders, queues.baselinker])

    rss = RssSampler(worker.pid)
    sampling = asyncio.create_task(rss.run())
    exits.push_async_callback(_cancel, sampling)

    return Stack(
        client=client,
        pool=pool,
        embedded=embedded,
        postgres_version=version,
        simulator=simulator,
        worker=worker,
        rss=rss,
        cpu=CpuMeter(_watched(worker.pid, server.port, scratch, embedded)),
        workspace=f"bench-{suffix}",
        queues=queues,
    )


def _watched(
    worker_pid: int, temporal_port: int, scratch: Path, embedded: bool
) -> dict[str, Watched]:
    """The processes whose CPU each phase reports."""
    parts = {
        "worker": Watched(psutil.Process(worker_pid), with_descendants=True),
        # The simulator, the ceiling's worker and the naive reader live here.
        "bench": Watched(psutil.Process(), with_descendants=False),
    }
    temporal = find_child("temporal", str(temporal_port))
    if temporal is not None:
        parts["temporal"] = Watched(temporal, with_descendants=True)
    postmaster = find_postmaster((scratch / "postgres").resolve())
    if embedded and postmaster is not None:
        parts["postgres"] = Watched(postmaster, with_descendants=True)
    return parts


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@asynccontextmanager
async def progress(phase: str, stack: Stack) -> AsyncIterator[None]:
    """A line on stderr every few seconds while a phase runs."""
    started = time.monotonic()

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_SECONDS)
            counts = await ledger_counts(stack.pool, stack.workspace)
            done = counts["completed"] + counts["failed"] + counts["ignored"]
            errors.print(
                f"{phase}: {time.monotonic() - started:.0f}s, "
                f"{done}/{sum(counts.values())} ledger rows closed, "
                f"{stack.simulator.total_calls} BaseLinker calls, "
                f"worker {stack.rss.last_mb:.0f} MB",
                highlight=False,
            )

    task = asyncio.create_task(report())
    try:
        yield
    finally:
        await _cancel(task)


def _calls_since(
    simulator: BaseLinkerSimulator, before: Counter[str]
) -> dict[str, int]:
    spent = simulator.calls - before
    return dict(sorted(spent.items()))


async def backlog_phase(stack: Stack, options: Options) -> dict[str, Any]:
    """Drain N orders' journal, waiting before the poller starts."""
    simulator, pool = stack.simulator, stack.pool
    calls, blocked = Counter(simulator.calls), simulator.blocked
    stack.rss.end_phase("ready")
    stack.cpu.phase()

    started = time.time()
    await ensure_poller(
        stack.client,
        workspace=stack.workspace,
        task_queue=stack.queues.orders,
        baselinker_task_queue=stack.queues.baselinker,
        poll_interval_seconds=options.poll_interval,
        initial_backfill_days=0,
    )
    async with progress("backlog", stack):
        counts = await wait_drained(
            pool, stack.workspace, simulator.account.last_log_id, options.timeout
        )
    spent = _calls_since(simulator, calls)
    blocked_now = simulator.blocked
    stack.rss.end_phase("backlog")
    cpu = stack.cpu.phase()

    ws = await workspace_id(pool, stack.workspace)
    events, last_closed = await pool.fetchrow(
        """
        SELECT count(*), EXTRACT(EPOCH FROM max(processed_at))::float8
        FROM event_queue WHERE workspace_id = $1
        """,
        ws,
    )
    # The last ledger row's close time, not when the bench next looked.
    seconds = last_closed - started
    mismatches = await compare_with_truth(
        pool, stack.workspace, simulator.truth(), simulator.full_truth()
    )
    total_calls = sum(spent.values())
    return {
        "events": events,
        "journal_entries": len(simulator.account.journal),
        "backlog_seconds": round(seconds, 2),
        "backlog_events_per_s": round(events / seconds, 2),
        "backlog_calls": total_calls,
        "backlog_calls_per_event": round(total_calls / events, 4),
        "backlog_calls_by_method": spent,
        "backlog_budget_floor_s": round(
            total_calls / (WORKER_REQUESTS_PER_MINUTE / 60), 1
        ),
        "backlog_blocked_tokens": blocked_now - blocked,
        "mismatches": len(mismatches),
        "mismatch_examples": mismatches[:5],
        "backlog_failed": counts["failed"],
        "backlog_ignored": counts["ignored"],
        "backlog_cpu": cpu,
    }


async def ceiling_phase(stack: Stack, options: Options, events: int) -> dict[str, Any]:
    """Empty children for as many events, started as the poller starts them."""
    async with asyncio.timeout(options.timeout):
        result = await measure_ceiling(stack.client, events)
    stack.rss.end_phase("ceiling")
    return {
        "ceiling_children": result.children,
        "ceiling_seconds": round(result.seconds, 2),
        "ceiling_events_per_s": round(result.per_second, 2),
        "ceiling_cpu": stack.cpu.phase(),
    }


async def steady_phase(stack: Stack, options: Options) -> dict[str, Any]:
    """A live shop for a while, then drained; freshness of what it wrote."""
    simulator, pool = stack.simulator, stack.pool
    boundary = simulator.account.last_log_id
    calls, blocked = Counter(simulator.calls), simulator.blocked
    appended: dict[int, float] = {}
    watching = asyncio.create_task(_watch_appends(simulator, appended))
    live = asyncio.create_task(simulator.run_live(interval=LIVE_INTERVAL))
    try:
        async with progress("steady", stack):
            await asyncio.sleep(options.steady_seconds)
            await _cancel(live)
            counts = await wait_drained(
                pool, stack.workspace, simulator.account.last_log_id, options.timeout
            )
    finally:
        await _cancel(live)
        await _cancel(watching)
    spent = _calls_since(simulator, calls)
    stack.rss.end_phase("steady")
    cpu = stack.cpu.phase()

    ws = await workspace_id(pool, stack.workspace)
    rows = await pool.fetch(
        """
        SELECT event_log_id, status,
            EXTRACT(EPOCH FROM event_date)::float8 AS dated,
            EXTRACT(EPOCH FROM created_at)::float8 AS ledgered,
            EXTRACT(EPOCH FROM started_at)::float8 AS started,
            EXTRACT(EPOCH FROM processed_at)::float8 AS closed
        FROM event_queue WHERE workspace_id = $1 AND event_log_id > $2
        """,
        ws,
        boundary,
    )
    completed = [r for r in rows if r["status"] == "completed"]
    fresh = [r["closed"] - r["dated"] for r in completed]
    exact = [
        r["closed"] - appended[r["event_log_id"]]
        for r in completed
        if r["event_log_id"] in appended
    ]
    timed = [r for r in completed if r["event_log_id"] in appended and r["started"]]
    stages = {
        "to_ledger": [r["ledgered"] - appended[r["event_log_id"]] for r in timed],
        "to_start": [r["started"] - r["ledgered"] for r in timed],
        "to_close": [r["closed"] - r["started"] for r in timed],
    }
    mismatches = await compare_with_truth(
        pool, stack.workspace, simulator.truth(), simulator.full_truth()
    )
    total_calls = sum(spent.values())
    return {
        "steady_events": len(rows),
        "steady_completed": len(completed),
        "steady_calls": total_calls,
        "steady_calls_per_event": round(total_calls / len(rows), 4) if rows else None,
        "steady_calls_by_method": spent,
        "steady_blocked_tokens": simulator.blocked - blocked,
        "steady_failed": counts["failed"],
        "steady_mismatches": len(mismatches),
        **_spread("freshness", fresh),
        **_spread("freshness_from_append", exact),
        # Where the time goes: the entry appears, the poller ledgers it (after
        # its journal read), its OrderEvent starts processing, and closes it.
        "freshness_stages": {
            key: figure
            for stage, values in stages.items()
            for key, figure in _spread(stage, values).items()
        },
        "steady_cpu": cpu,
    }


async def _watch_appends(
    simulator: BaseLinkerSimulator, seen: dict[int, float]
) -> None:
    """When each new journal entry appeared, to the tens of milliseconds.

    The journal's `date` is whole seconds, so freshness from it reads up to a
    second long; this is the same figure without the rounding.
    """
    last = simulator.account.last_log_id
    while True:
        await asyncio.sleep(APPEND_WATCH_SECONDS)
        newest = simulator.account.last_log_id
        now = time.time()
        for log_id in range(last + 1, newest + 1):
            seen[log_id] = now
        last = newest


def _spread(name: str, values: list[float]) -> dict[str, float | None]:
    if not values:
        return {f"{name}_p50_s": None, f"{name}_p95_s": None, f"{name}_max_s": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        f"{name}_p50_s": round(statistics.median(ordered), 2),
        f"{name}_p95_s": round(p95, 2),
        f"{name}_max_s": round(ordered[-1], 2),
    }


async def run_bench(options: Options, settings: Settings) -> dict[str, Any]:
    """Every phase on one stack; the stack is gone when this returns."""
    load_at_start = os.getloadavg()
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="blt-bench-"))
    # Registered before the embedded server, so it runs after the server stops.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    stack: Stack | None = None
    try:
        async with AsyncExitStack() as exits:
            stack = await open_stack(exits, settings, scratch)
            exits.push_async_callback(_stop_poller, stack)
            stack.simulator.seed_scenario(
                seed=options.seed,
                orders=options.orders,
                span_seconds=BACKLOG_SPAN_SECONDS,
            )
            backlog = await backlog_phase(stack, options)
            ceiling = await ceiling_phase(stack, options, backlog["events"])
            steady = await steady_phase(stack, options)
            counts = await ledger_counts(stack.pool, stack.workspace)
            naive = await count_naive_calls(
                options.orders, options.seed, BACKLOG_SPAN_SECONDS
            )
            stack.rss.end_phase("naive")
            naive_cpu = stack.cpu.phase()
            peak, samples, phases = (
                stack.rss.peak_mb,
                stack.rss.samples,
                stack.rss.phases,
            )
            blocked = stack.simulator.blocked
            machine = machine_info(
                stack.postgres_version, stack.embedded, load_at_start
            )
    except BaseException:
        if stack is not None:
            tail = stack.worker.log_tail()
            errors.print(f"worker log (last lines):\n{tail}", highlight=False)
        raise
    pipeline_rate = backlog["backlog_events_per_s"]
    ceiling_rate = ceiling["ceiling_events_per_s"]
    return {
        "orders": options.orders,
        "events": backlog["events"],
        "poll_interval_s": options.poll_interval,
        "backlog_seconds": backlog["backlog_seconds"],
        "backlog_events_per_s": pipeline_rate,
        "backlog_calls_per_event": backlog["backlog_calls_per_event"],
        "ceiling_events_per_s": ceiling_rate,
        "ceiling_ratio": round(pipeline_rate / ceiling_rate, 3)
        if ceiling_rate
        else None,
        "steady_events": steady["steady_events"],
        "steady_calls_per_event": steady["steady_calls_per_event"],
        "freshness_p50_s": steady["freshness_p50_s"],
        "freshness_p95_s": steady["freshness_p95_s"],
        "freshness_max_s": steady["freshness_max_s"],
        "naive_calls_per_event": round(naive.calls_per_event, 4),
        "blocked_tokens": blocked,
        "worker_peak_rss_mb": round(peak, 1),
        "mismatches": backlog["mismatches"],
        "failed": counts["failed"],
        **{k: v for k, v in backlog.items() if k not in _TOP},
        **{k: v for k, v in ceiling.items() if k not in _TOP},
        **{k: v for k, v in steady.items() if k not in _TOP},
        "naive_events": naive.events,
        "naive_calls": naive.total_calls,
        "naive_calls_by_method": naive.calls,
        "naive_cpu": naive_cpu,
        "worker_rss_mb": phases,
        "worker_rss_samples": samples,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine,
    }


#: Figures the report lists first; the phases' own keys follow.
_TOP = frozenset(
    {
        "events",
        "backlog_seconds",
        "backlog_events_per_s",
        "backlog_calls_per_event",
        "ceiling_events_per_s",
        "steady_events",
        "steady_calls_per_event",
        "freshness_p50_s",
        "freshness_p95_s",
        "freshness_max_s",
        "mismatches",
    }
)


async def _stop_poller(stack: Stack) -> None:
    """The poller first, so the worker stops with nothing left to start."""
    handle = stack.client.get_workflow_handle(poller_workflow_id(stack.workspace))
    with contextlib.suppress(RPCError):
        await handle.terminate("bench finished")


def print_table(report: dict[str, Any]) -> None:
    """The report as a two-column table; nested figures one per row."""
    table = Table("figure", "value")
    for key, value in report.items():
        if isinstance(value, dict):
            for inner, figure in value.items():
                table.add_row(f"{key}.{inner}", _shown(figure))
        else:
            table.add_row(key, _shown(value))
    Console().print(table)


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _run(main: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run the bench; SIGTERM stops it as cleanly as Ctrl-C does."""

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await main()

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        errors.print("interrupted; everything the bench started is stopped")
        raise typer.Exit(130) from None
    except asyncio.CancelledError:
        errors.print("terminated; everything the bench started is stopped")
        raise typer.Exit(143) from None


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders in the backlog.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    poll_interval: Annotated[
        float, typer.Option(min=0.1, help="The poller's rest between polls, s.")
    ] = 2.0,
    steady_seconds: Annotated[
        float, typer.Option(min=0, help="How long the live shop plays, s.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="The simulated shop's seed.")] = 7,
    timeout: Annotated[
        float, typer.Option(min=1, help="Longest wait of any phase, s.")
    ] = 3600.0,
) -> None:
    """Backlog, ceiling, steady state and naive reference, in one run."""
    settings = Settings(log_level="WARNING")
    configure_logging(settings)
    options = Options(orders, poll_interval, steady_seconds, seed, timeout)
    report = _run(lambda: run_bench(options, settings))
    if as_json:
        print(json.dumps(report))
    else:
        print_table(report)


if __name__ == "__main__":
    typer.run(main)
