"""Start what is not running: the database, Temporal and BaseLinker (or its
simulator), for `make dev`, the demo and the benchmarks."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from temporalio.client import Client

from core.db import migrate
from core.settings import Settings
from core.stack import TemporalDevServer, reachable, start_embedded_postgres
from core.temporal import connect

log = structlog.get_logger(__name__)


@asynccontextmanager
async def local_database(
    settings: Settings, *, migrate_schema: bool = True
) -> AsyncIterator[str]:
    """DATABASE_URL, or the embedded server under the data dir; migrated unless
    the caller only reads."""
    url = settings.database_url
    if url is None:
        url = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
        log.debug("embedded_postgres_ready", data_dir=str(settings.data_dir))
    if migrate_schema:
        report = await asyncio.to_thread(migrate, url)
        for line in report.splitlines():
            log.info("migration", detail=line)
    yield url


@dataclass
class TemporalHandle:
    """A connected client, and the Web UI address when we started the server."""

    client: Client
    web_ui: str | None


@asynccontextmanager
async def local_temporal(settings: Settings) -> AsyncIterator[TemporalHandle]:
    """The configured Temporal, or a dev server with Web UI started for us."""
    address = settings.temporal_address
    if await reachable(address):
        yield TemporalHandle(await connect(address, settings.temporal_namespace), None)
        return
    port = int(address.rpartition(":")[2])
    server = TemporalDevServer(
        port=port,
        ui_port=settings.temporal_ui_port,
        db_file=(settings.data_dir / "temporal.db").resolve(),
        log_file=(settings.data_dir / "temporal.log").resolve(),
    )
    log.info("temporal_dev_server_starting", address=address)
    client = await server.start()
    try:
        yield TemporalHandle(client, f"http://localhost:{settings.temporal_ui_port}")
    finally:
        await server.stop()
