"""The workflow and activity `bench/server.py` times a capped task queue with."""

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow


@activity.defn
async def touch(index: int) -> int:
    """Does nothing: only the wait before it runs is measured."""
    return index


class PacedInput(BaseModel):
    """Where the activity runs, and how many times."""

    task_queue: str
    calls: int


@workflow.defn
class OncePerSecond:
    """Calls `touch` once a second; returns each call's seconds, as seen here."""

    @workflow.run
    async def run(self, params: PacedInput) -> list[float]:
        waits: list[float] = []
        for index in range(params.calls):
            began = workflow.now()
            await workflow.execute_activity(
                touch,
                index,
                task_queue=params.task_queue,
                start_to_close_timeout=timedelta(seconds=30),
            )
            waits.append((workflow.now() - began).total_seconds())
            await workflow.sleep(1)
        return waits
