"""The server's own ceiling: how fast it starts and finishes empty children when
a parent starts them the way the journal poller does, a batch at a time."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activities.journal import JOURNAL_PAGE_SIZE
    from core import search_attributes as sa

#: How often the bench asks the server how many children have completed.
COUNT_EVERY_SECONDS = 0.25


class CeilingInput(BaseModel):
    """One parent run: children `started` .. `started + batch` of `total`."""

    run: str
    total: int
    started: int = 0
    batch: int = JOURNAL_PAGE_SIZE
    #: Children started together, each wave awaited; None: the whole batch.
    wave: int | None = None


@workflow.defn
class CeilingChild:
    """An OrderEvent with nothing to do."""

    @workflow.run
    async def run(self, index: int) -> None:
        return None


@workflow.defn
class CeilingParent:
    """Starts one batch of children (in waves, if asked), then continues as
    new."""

    @workflow.run
    async def run(self, params: CeilingInput) -> None:
        end = min(params.started + params.batch, params.total)
        wave = params.wave or max(1, end - params.started)
        for first in range(params.started, end, wave):
            last = min(first + wave, end)
            await asyncio.gather(
                *(start_ceiling_child(params.run, i) for i in range(first, last))
            )

        if end < params.total:
            workflow.continue_as_new(params.model_copy(update={"started": end}))


async def start_ceiling_child(run: str, index: int) -> None:
    """Start one empty child from inside a parent workflow.

    The poller's start options, search attributes included: indexing them is
    part of what the server does per child.
    """
    await workflow.start_child_workflow(
        CeilingChild.run,
        index,
        id=child_workflow_id(run, index),
        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.WORKSPACE, f"bench-ceiling-{run}"),
                SearchAttributePair(sa.JOURNAL_LOG_TYPE, 0),
                SearchAttributePair(sa.JOURNAL_EVENT, "ceiling"),
                SearchAttributePair(sa.BASELINKER_ORDER_ID, index),
            ]
        ),
    )


def child_workflow_id(run: str, index: int) -> str:
    """One ceiling child of one bench run."""
    return f"bench-ceiling/{run}/{index}"


@dataclass(frozen=True)
class CeilingResult:
    """How many children completed, and how long after the parent's start."""

    children: int
    seconds: float

    @property
    def per_second(self) -> float:
        """Children started and completed per second."""
        return self.children / self.seconds if self.seconds > 0 else 0.0


async def measure_ceiling(client: Client, children: int) -> CeilingResult:
    """Run `children` empty children through a parent on a fresh task queue,
    with a worker in this process; time until the last one closed."""
    run = uuid.uuid4().hex[:8]
    queue = f"bench-ceiling-{run}"
    query = (
        f"TaskQueue = '{queue}' AND WorkflowType = 'CeilingChild' "
        "AND ExecutionStatus = 'Completed'"
    )
    worker = Worker(client, task_queue=queue, workflows=[CeilingParent, CeilingChild])
    async with worker:
        started = datetime.now(UTC)
        await client.start_workflow(
            CeilingParent.run,
            CeilingInput(run=run, total=children),
            id=f"bench-ceiling/{run}",
            task_queue=queue,
        )
        await wait_completed(client, query, children)
    # The count is polled; the close times say exactly when the last one ended.
    closed = [
        execution.close_time
        async for execution in client.list_workflows(query)
        if execution.close_time is not None
    ]
    return CeilingResult(len(closed), (max(closed) - started).total_seconds())


async def wait_completed(client: Client, query: str, children: int) -> None:
    """Return once `query` counts `children` executions."""
    while True:
        completed = (await client.count_workflows(query)).count
        if completed >= children:
            return
        await asyncio.sleep(COUNT_EVERY_SECONDS)
