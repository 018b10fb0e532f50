"""Operator commands: run the whole system locally, start or steer the poller,
show its status, and run the demo. `python starter.py --help` lists them."""

import asyncio
import json
import sys
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.table import Table

from core.db import create_pool
from core.devstack import local_database
from core.ids import poller_workflow_id
from core.log import configure_logging
from core.ops import ensure_poller, sync_status
from core.settings import Settings, get_settings
from core.stack import reachable
from core.temporal import connect

app = typer.Typer(no_args_is_help=True, add_completion=False)
console = Console()
log = structlog.get_logger(__name__)

Workspace = Annotated[
    str | None, typer.Option(help="Workspace slug (default: WORKSPACE).")
]


def _settings(workspace: str | None = None) -> Settings:
    settings = get_settings()
    configure_logging(settings)
    if workspace:
        settings = settings.model_copy(update={"workspace": workspace})
    return settings


@app.command()
def poll(workspace: Workspace = None) -> None:
    """Ensure the workspace's journal poller runs (a no-op when it does)."""
    settings = _settings(workspace)

    async def run() -> None:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        handle = await ensure_poller(
            client,
            workspace=settings.workspace,
            task_queue=settings.task_queue,
            baselinker_task_queue=settings.baselinker_task_queue,
            poll_interval_seconds=settings.poll_interval_seconds,
        )
        console.print(f"poller running: [bold]{handle.id}[/]")

    asyncio.run(run())


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


def _signal_poller(workspace: str | None, name: str, *args: Any) -> None:
    settings = _settings(workspace)

    async def run() -> None:
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        handle = client.get_workflow_handle(poller_workflow_id(settings.workspace))
        await handle.signal(name, *args)
        console.print(f"{name} sent to {handle.id}")

    asyncio.run(run())


@app.command()
def status(
    workspace: Workspace = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Cursor, last sync, lag, pause state and ledger counts."""
    settings = _settings(workspace)

    async def run() -> dict[str, Any]:
        async with local_database(settings) as url:
            pool = await create_pool(url, 2)
            try:
                report = await sync_status(pool, settings.workspace)
            finally:
                await pool.close()
        report["poller"] = await _poller_state(settings)
        return report

    report = asyncio.run(run())
    if as_json:
        print(json.dumps(report, default=str))
        return
    table = Table(show_header=False, box=None)
    for key, value in report.items():
        table.add_row(key, str(value))
    console.print(table)
    if report["paused"]:
        console.print(f"[bold red]Polling is paused:[/] {report['pause_reason']}")


async def _poller_state(settings: Settings) -> str:
    if not await reachable(settings.temporal_address):
        return f"Temporal not reachable at {settings.temporal_address}"
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    handle = client.get_workflow_handle(poller_workflow_id(settings.workspace))
    try:
        description = await handle.describe()
    except Exception as err:
        return f"not running ({type(err).__name__})"
    return description.status.name if description.status else "unknown"


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, max=20000)] = 200,
    seed: Annotated[int, typer.Option()] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Seed a simulated shop, process its journal, compare with its truth."""
    from core.demo import run_demo

    settings = _settings()
    report = asyncio.run(run_demo(settings, orders, seed))
    if as_json:
        print(json.dumps(report))
    else:
        table = Table("figure", "value")
        for key, value in report.items():
            table.add_row(key, str(value))
        console.print(table)
    if report["mismatches"] or report["failed"]:
        sys.exit(1)


@app.command()
def dev() -> None:
    """Run everything locally in the foreground until Ctrl-C."""
    from core.dev import run_dev

    asyncio.run(run_dev(_settings()))


if __name__ == "__main__":
    app()
