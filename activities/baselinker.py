"""How BaseLinker failures reach Temporal's retry machinery."""

from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.exceptions import ApplicationError

from baselinker.client import BaseLinkerError, TokenBlockedError, TokenInvalidError

TOKEN_INVALID = "BaseLinkerTokenInvalid"
TOKEN_BLOCKED = "BaseLinkerTokenBlocked"
API_ERROR = "BaseLinkerError"


@contextmanager
def baselinker_errors() -> Iterator[None]:
    """Translate client errors into ApplicationErrors with the right retry intent.

    A bad token is permanent (the poller pauses on it); a block is retried when
    it ends, not on the usual backoff; other API errors retry as usual.
    """
    try:
        yield
    except TokenInvalidError as err:
        raise ApplicationError(
            f"BaseLinker rejected the token ({err.code}): {err.message}",
            type=TOKEN_INVALID,
            non_retryable=True,
        ) from err
    except TokenBlockedError as err:
        raise ApplicationError(
            f"BaseLinker token blocked until {err.until.isoformat()}",
            type=TOKEN_BLOCKED,
            next_retry_delay=err.wait(),
        ) from err
    except BaseLinkerError as err:
        raise ApplicationError(str(err), type=API_ERROR) from err
