"""The processes a bench run starts and watches: the pipeline worker as a child
process, its memory sampled, and the CPU each part of the stack spends."""

import asyncio
import contextlib
import ctypes
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from core.settings import PROJECT_ROOT
from core.stack import installed_binary

#: How often the worker's resident memory is read.
RSS_EVERY_SECONDS = 0.2
#: How long a worker may take to poll its task queues after it starts.
WORKER_READY_TIMEOUT = 60.0
#: How long a worker may take to stop after SIGTERM before it is killed.
WORKER_STOP_TIMEOUT = 20.0
#: prctl option that signals a child when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1
MB = 1024 * 1024


def _die_with_parent() -> None:
    # Runs in the child before exec: a bench killed outright takes it along.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerProcess:
    """`python worker.py` as a child process, its output in a log file."""

    def __init__(self, env: Mapping[str, str], log_file: Path) -> None:
        self._env = dict(env)
        self._log_file = log_file
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        """The worker's process id."""
        assert self._process is not None
        return self._process.pid

    async def start(self) -> None:
        """Start the worker in its own session (Ctrl-C reaches only the bench,
        which stops the worker in order)."""
        with open(self._log_file, "ab") as output:  # noqa: ASYNC230 - tiny, once
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(PROJECT_ROOT / "worker.py"),
                cwd=PROJECT_ROOT,
                env=self._env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    async def wait_ready(
        self, client: Client, workflow_queues: list[str], activity_queues: list[str]
    ) -> None:
        """Wait until the worker polls every one of its task queues."""
        wanted = [(q, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW) for q in workflow_queues]
        wanted += [(q, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for q in activity_queues]
        async with asyncio.timeout(WORKER_READY_TIMEOUT):
            while True:
                if self._process is None or self._process.returncode is not None:
                    msg = f"worker exited early; its log ends:\n{self.log_tail()}"
                    raise RuntimeError(msg)
                polled = [await _has_pollers(client, q, kind) for q, kind in wanted]
                if all(polled):
                    return
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """SIGTERM (the worker finishes in-flight tasks), then SIGKILL if slow."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WORKER_STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the worker wrote."""
        if not self._log_file.exists():
            return ""
        text = self._log_file.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


async def _has_pollers(client: Client, queue: str, kind: "TaskQueueType.V") -> bool:
    reply = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue),
            task_queue_type=kind,
        )
    )
    return len(reply.pollers) > 0


@dataclass
class RssSampler:
    """Samples one process's resident memory; peak overall and per phase."""

    pid: int
    peak_mb: float = 0.0
    phase_peak_mb: float = 0.0
    last_mb: float = 0.0
    samples: int = 0
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    async def run(self) -> None:
        """Sample until cancelled or the process is gone."""
        process = psutil.Process(self.pid)
        while True:
            try:
                rss = process.memory_info().rss / MB
            except psutil.Error:
                return
            self.last_mb = rss
            self.peak_mb = max(self.peak_mb, rss)
            self.phase_peak_mb = max(self.phase_peak_mb, rss)
            self.samples += 1
            await asyncio.sleep(RSS_EVERY_SECONDS)

    def end_phase(self, name: str) -> None:
        """Record the phase's last and peak RSS, and start the next phase."""
        with contextlib.suppress(psutil.Error):
            self.last_mb = psutil.Process(self.pid).memory_info().rss / MB
        self.phases[name] = {
            "end_mb": round(self.last_mb, 1),
            "peak_mb": round(max(self.phase_peak_mb, self.last_mb), 1),
        }
        self.phase_peak_mb = 0.0


def process_cpu_seconds(process: psutil.Process, with_descendants: bool) -> float:
    """CPU seconds a process has used; with its descendants, live and reaped."""
    try:
        times = process.cpu_times()
        total = times.user + times.system
        if not with_descendants:
            return total
        total += times.children_user + times.children_system
        children = process.children(recursive=True)
    except psutil.Error:
        return 0.0
    for child in children:
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return total


@dataclass(frozen=True)
class Watched:
    """A process whose CPU the bench accounts for."""

    process: psutil.Process
    with_descendants: bool


class CpuMeter:
    """CPU seconds per part of the stack, and the whole machine's, per phase."""

    def __init__(self, parts: Mapping[str, Watched]) -> None:
        self._parts = dict(parts)
        self._before = self._read()

    def _read(self) -> dict[str, float]:
        reading = {
            name: process_cpu_seconds(part.process, part.with_descendants)
            for name, part in self._parts.items()
        }
        machine = psutil.cpu_times()
        idle = machine.idle + getattr(machine, "iowait", 0.0)
        reading["machine_busy"] = sum(machine) - idle
        reading["machine_total"] = sum(machine)
        return reading

    def phase(self) -> dict[str, float]:
        """CPU seconds since the previous phase ended, and how busy the machine
        was: `others_s` is what processes outside this bench used meanwhile."""
        now = self._read()
        spent = {name: now[name] - self._before[name] for name in now}
        self._before = now
        ours = sum(spent[name] for name in self._parts)
        report = {f"{name}_s": round(spent[name], 1) for name in self._parts}
        report["others_s"] = round(max(spent["machine_busy"] - ours, 0.0), 1)
        total = spent["machine_total"]
        busy = 100 * spent["machine_busy"] / total if total else 0.0
        report["machine_busy_pct"] = round(busy, 1)
        return report


def find_postmaster(pgdata: Path) -> psutil.Process | None:
    """The embedded server's main process: `postgres -D <pgdata>`."""
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata) in cmdline:
            return process
    return None


def find_child(name: str, argument: str) -> psutil.Process | None:
    """This process's child named `name` whose command line has `argument`."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.name() == name and argument in child.cmdline():
                return child
    return None


def machine_info(
    postgres_version: str, embedded: bool, load_at_start: tuple[float, ...]
) -> dict[str, object]:
    """What the figures ran on; the load average says whether it was quiet."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    temporal = subprocess.run(
        [installed_binary("temporal"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "temporal_cli": temporal,
        "postgresql": postgres_version,
        "database_embedded": embedded,
        "load_average_at_start": [round(x, 2) for x in load_at_start],
    }
