"""`python bench/server.py [--json]`: two limits of the Temporal dev server that
shaped the poller, measured on a fresh in-memory server. Prints figures,
asserts none.

- Children per second when one parent run starts 100, or 1,000 at once, or
  1,000 in waves of 100 (what the poller does while backlogged).
- How long an activity waits on a task queue capped server-side at 1.5 a
  second (BaseLinker's budget) when it is called once a second, against an
  uncapped queue.
"""

import sys
from pathlib import Path

# `python bench/server.py` puts bench/ on the path, not the project.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncio
import json
import statistics
import time
import uuid
from typing import Annotated, Any

import typer
from temporalio.client import Client
from temporalio.worker import Worker

from bench.ceiling import CeilingChild, CeilingInput, CeilingParent, wait_completed
from bench.limits import OncePerSecond, PacedInput, touch
from core.stack import TemporalDevServer, free_port

#: Children each way of starting them runs.
CHILDREN = 2000
#: BaseLinker's 90 requests a minute, as a task-queue cap.
CAPPED_PER_SECOND = 1.5
#: Calls per queue, one a second.
CALLS = 8


async def children_per_second(
    client: Client, per_run: int, wave: int | None = None
) -> float:
    """Empty children started and completed per second, `per_run` per run,
    `wave` at a time (all at once when None)."""
    run = uuid.uuid4().hex[:8]
    queue = f"bench-server-{run}"
    query = (
        f"TaskQueue = '{queue}' AND WorkflowType = 'CeilingChild' "
        "AND ExecutionStatus = 'Completed'"
    )
    async with Worker(
        client, task_queue=queue, workflows=[CeilingParent, CeilingChild]
    ):
        started = time.monotonic()
        await client.start_workflow(
            CeilingParent.run,
            CeilingInput(run=run, total=CHILDREN, batch=per_run, wave=wave),
            id=f"bench-server/{run}",
            task_queue=queue,
        )
        await wait_completed(client, query, CHILDREN)
    return round(CHILDREN / (time.monotonic() - started), 1)


async def activity_seconds(client: Client, capped: bool) -> list[float]:
    """Each call's time on a queue with or without the server-side cap."""
    run = uuid.uuid4().hex[:8]
    async with (
        Worker(client, task_queue=f"w-{run}", workflows=[OncePerSecond]),
        Worker(
            client,
            task_queue=f"a-{run}",
            activities=[touch],
            max_task_queue_activities_per_second=CAPPED_PER_SECOND if capped else None,
        ),
    ):
        waits: list[float] = await client.execute_workflow(
            OncePerSecond.run,
            PacedInput(task_queue=f"a-{run}", calls=CALLS),
            id=f"bench-server-paced/{run}",
            task_queue=f"w-{run}",
        )
    return [round(w, 2) for w in waits]


async def measure() -> dict[str, Any]:
    """Every figure, on one fresh server."""
    server = TemporalDevServer(port=free_port(), ui_port=free_port())
    client = await server.start()
    try:
        capped = await activity_seconds(client, capped=True)
        uncapped = await activity_seconds(client, capped=False)
        return {
            "children": CHILDREN,
            "children_per_s_100_per_run": await children_per_second(client, 100),
            "children_per_s_1000_at_once": await children_per_second(client, 1000),
            "children_per_s_1000_in_waves_of_100": await children_per_second(
                client, 1000, wave=100
            ),
            "activity_s_capped_1_5_per_s": capped,
            "activity_s_capped_median": statistics.median(capped),
            "activity_s_uncapped": uncapped,
            "activity_s_uncapped_median": statistics.median(uncapped),
        }
    finally:
        await server.stop()


def main(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """Children per second by how they are started; capped-queue waits."""
    report = asyncio.run(measure())
    if as_json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:40} {value}")


if __name__ == "__main__":
    typer.run(main)
