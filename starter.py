"""Operator commands: run the whole system locally, start, steer or stop the
poller, show its status, and run the demo. `python starter.py --help` lists them."""

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import Client
from temporalio.service import RPCError

from core.db import create_pool
from core.devstack import local_database
from core.ids import poller_workflow_id
from core.log import configure_logging
from core.ops import (
    LEDGER_STATUSES,
    backfill_progress,
    ensure_poller,
    list_events,
    retry_events,
    start_backfill,
    sync_status,
)
from core.settings import WORKSPACE_PATTERN, Settings, get_settings
from core.stack import reachable
from core.temporal import connect

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()
errors = Console(stderr=True)
T = TypeVar("T")


def _check_workspace(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(WORKSPACE_PATTERN, value):
        msg = "lower-case letters, digits, '-' and '_' only (at most 63)"
        raise typer.BadParameter(msg)
    return value


Workspace = Annotated[
    str | None,
    typer.Option(
        help="Workspace slug (default: WORKSPACE).", callback=_check_workspace
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _settings(workspace: str | None = None) -> Settings:
    """The environment's settings; a configuration mistake is one clear line."""
    try:
        settings = get_settings()
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}"
            for e in err.errors()
        )
        raise _fail(f"bad configuration: {problems}", 2) from None
    configure_logging(settings)
    if workspace:
        settings = settings.model_copy(update={"workspace": workspace})
    return settings


async def _temporal(settings: Settings) -> Client:
    try:
        return await connect(settings.temporal_address, settings.temporal_namespace)
    except RuntimeError:
        msg = (
            f"Temporal not reachable at {settings.temporal_address} "
            "(start it with `make dev`, or set TEMPORAL_ADDRESS)"
        )
        raise _fail(msg) from None


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(main())


@app.command()
def poll(workspace: Workspace = None) -> None:
    """Ensure the workspace's journal poller runs (a no-op when it does)."""
    settings = _settings(workspace)

    async def main() -> None:
        handle = await ensure_poller(
            await _temporal(settings),
            workspace=settings.workspace,
            task_queue=settings.task_queue,
            baselinker_task_queue=settings.baselinker_task_queue,
            poll_interval_seconds=settings.poll_interval_seconds,
            initial_backfill_days=settings.initial_backfill_days,
            idle_max_seconds=settings.poll_idle_max_seconds,
        )
        console.print(f"poller running: [bold]{handle.id}[/]")

    _run(main)


@app.command()
def pause(
    workspace: Workspace = None,
    reason: Annotated[
        str, typer.Option(help="Shown in status.")
    ] = "paused by operator",
) -> None:
    """Pause the poller after its current batch."""
    _signal_poller(workspace, "pause", reason)


@app.command()
def resume(workspace: Workspace = None) -> None:
    """Resume a paused poller (after fixing BASELINKER_TOKEN, for instance)."""
    _signal_poller(workspace, "resume")


@app.command()
def stop(workspace: Workspace = None) -> None:
    """Stop the workspace's poller for good (`poll` starts it again)."""
    settings = _settings(workspace)

    async def main() -> None:
        client = await _temporal(settings)
        handle = client.get_workflow_handle(poller_workflow_id(settings.workspace))
        try:
            await handle.terminate("stopped by operator")
        except RPCError as err:
            raise _fail(f"{handle.id}: {err.message}") from None
        console.print(f"stopped {handle.id}")

    _run(main)


def _signal_poller(workspace: str | None, name: str, *args: Any) -> None:
    settings = _settings(workspace)

    async def main() -> None:
        client = await _temporal(settings)
        handle = client.get_workflow_handle(poller_workflow_id(settings.workspace))
        try:
            await handle.signal(name, *args)
        except RPCError as err:
            raise _fail(f"{handle.id}: {err.message}") from None
        console.print(f"{name} sent to {handle.id}")

    _run(main)


@app.command()
def status(workspace: Workspace = None, as_json: AsJson = False) -> None:
    """Cursor, last sync, lag, pause state and ledger counts (reads only)."""
    settings = _settings(workspace)

    async def main() -> dict[str, Any]:
        async with _database(settings) as pool:
            try:
                report = await sync_status(pool, settings.workspace)
            except LookupError as err:
                raise _fail(str(err)) from None
            except asyncpg.UndefinedTableError:
                raise _fail("the database has no schema yet: run `make dev`") from None
        report["poller"] = await _poller_state(settings)
        return report

    report = _run(main)
    if as_json:
        print(json.dumps(report, default=str))
        return
    table = Table(show_header=False, box=None)
    for key, value in report.items():
        table.add_row(key, _shown(value))
    console.print(table)
    if report["paused"]:
        console.print(f"[bold red]Polling is paused:[/] {report['pause_reason']}")


def _shown(value: Any) -> str:
    """A status figure as a person reads it: times in ISO form, nested
    figures as `key=value` pairs."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dict):
        return ", ".join(f"{k}={_shown(v)}" for k, v in value.items())
    return str(value)


async def _poller_state(settings: Settings) -> str:
    if not await reachable(settings.temporal_address):
        return f"Temporal not reachable at {settings.temporal_address}"
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    handle = client.get_workflow_handle(poller_workflow_id(settings.workspace))
    try:
        description = await handle.describe()
    except RPCError as err:
        return f"not running ({err.message})"
    return description.status.name if description.status else "unknown"


@app.command()
def events(
    workspace: Workspace = None,
    status: Annotated[
        str | None,
        typer.Option(help="pending, processing, completed, failed or ignored."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    as_json: AsJson = False,
) -> None:
    """The ledger: what happened to each journal entry, newest first."""
    if status is not None and status not in LEDGER_STATUSES:
        raise _fail(f"--status must be one of {', '.join(LEDGER_STATUSES)}", 2)
    settings = _settings(workspace)

    async def main() -> list[dict[str, Any]]:
        async with _database(settings) as pool:
            return await list_events(pool, settings.workspace, status, limit)

    rows = _run(main)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("log_id", "type", "order", "status", "attempts", "reason")
    for row in rows:
        table.add_row(
            str(row["log_id"]),
            f"{row['type']} {row['name']}",
            str(row["order_id"] or ""),
            row["status"],
            str(row["attempts"]),
            row["reason"] or "",
        )
    console.print(table)


@app.command()
def retry(
    log_ids: Annotated[list[int] | None, typer.Argument(help="Ledger log ids.")] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every failed entry.")
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Run entries again through Temporal, with fresh data from BaseLinker."""
    if bool(log_ids) == failed:
        raise _fail("name log ids, or pass --failed (not both)", 2)
    settings = _settings(workspace)

    async def main() -> list[tuple[int, str]]:
        client = await _temporal(settings)
        async with _database(settings) as pool:
            return await retry_events(
                client,
                pool,
                workspace=settings.workspace,
                log_ids=None if failed else log_ids,
                task_queue=settings.task_queue,
                baselinker_task_queue=settings.baselinker_task_queue,
            )

    outcomes = _run(main)
    if not outcomes:
        console.print("nothing to retry")
    for log_id, outcome in outcomes:
        console.print(f"{log_id}: {outcome}")
    if any(outcome.startswith(("failed", "not found")) for _, outcome in outcomes):
        raise typer.Exit(1)


@app.command()
def backfill(
    since: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First day (UTC).")
    ],
    workspace: Workspace = None,
) -> None:
    """Sync every order since a date with getOrders (no customer messages for
    old orders), with a progress bar; a running backfill is followed, not
    started twice."""
    settings = _settings(workspace)
    start = since.replace(tzinfo=UTC)
    if start > datetime.now(UTC):
        raise _fail(f"--since {since.date()} is in the future", 2)

    async def main() -> dict[str, Any]:
        client = await _temporal(settings)
        handle = await start_backfill(
            client,
            workspace=settings.workspace,
            since=start,
            task_queue=settings.task_queue,
            baselinker_task_queue=settings.baselinker_task_queue,
        )
        async with _database(settings) as pool:
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("starting", total=None)
                done = asyncio.create_task(handle.result())
                while not done.done():
                    row = await backfill_progress(pool, handle.id)
                    bar.update(task, description=_describe_backfill(row))
                    await asyncio.wait({done}, timeout=1.0)
                row = await backfill_progress(pool, handle.id)
                bar.update(task, description=_describe_backfill(row))
            done.result()
            return row

    row = _run(main)
    console.print(
        f"backfill done: {row['orders_synced']} orders synced, "
        f"{row['orders_failed']} unreadable"
    )
    if row["orders_failed"]:
        console.print(f"[yellow]{row['last_error']}[/]")


def _describe_backfill(row: dict[str, Any]) -> str:
    if not row:
        return "starting"
    return (
        f"{row['pages']} pages, {row['orders_synced']} orders synced, "
        f"{row['orders_failed']} unreadable"
    )


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the configured (or embedded) database; reads only."""
    async with local_database(settings, migrate_schema=False) as url:
        try:
            pool = await create_pool(url, 4)
        except (OSError, asyncpg.PostgresError) as err:
            raise _fail(f"cannot connect to the database: {err}") from None
        try:
            yield pool
        finally:
            await pool.close()


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=20000)] = 200,
    seed: Annotated[int, typer.Option()] = 7,
    offline_days: Annotated[
        float,
        typer.Option(min=0, max=30, help="Start with a cursor this many days old."),
    ] = 0.0,
    as_json: AsJson = False,
) -> None:
    """Seed a simulated shop, process its journal, compare with its truth."""
    from core.demo import run_demo

    settings = _settings()
    report = _run(lambda: run_demo(settings, orders, seed, offline_days))
    if as_json:
        print(json.dumps(report))
    else:
        table = Table("figure", "value")
        for key, value in report.items():
            table.add_row(key, str(value))
        console.print(table)
    if report["mismatches"] or report["failed"]:
        raise typer.Exit(1)


@app.command()
def dev() -> None:
    """Run everything locally in the foreground until Ctrl-C."""
    from core.dev import DevInUseError, run_dev

    settings = _settings()
    try:
        _run(lambda: run_dev(settings))
    except DevInUseError as err:
        raise _fail(str(err)) from None


if __name__ == "__main__":
    app()
