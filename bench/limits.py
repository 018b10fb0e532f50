"""Workflows and the activity `bench/server.py` measures the dev server with."""

import asyncio
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.ceiling import CeilingInput, start_ceiling_child

#: Children started together by a wave.
WAVE = 100


@workflow.defn
class WaveParent:
    """Starts its run's children in waves, each awaited before the next."""

    @workflow.run
    async def run(self, params: CeilingInput) -> None:
        end = min(params.started + params.batch, params.total)
        for first in range(params.started, end, WAVE):
            last = min(first + WAVE, end)
            await asyncio.gather(
                *(start_ceiling_child(params.run, i) for i in range(first, last))
            )

        if end < params.total:
            workflow.continue_as_new(params.model_copy(update={"started": end}))


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
