"""Retry policies and timeouts, named once with the reason for each."""

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities.baselinker import TOKEN_INVALID
from activities.orders import INVALID_ORDER_DATA

#: A BaseLinker call is one HTTP request; a minute covers a slow reply.
BASELINKER_CALL_TIMEOUT = timedelta(seconds=60)
#: Transient API and network errors retry with backoff, for about an hour in
#: all; a blocked token retries when its block ends (the error says when).
BASELINKER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=30,
    non_retryable_error_types=[TOKEN_INVALID],
)
#: Database work is short; a minute means the database is in trouble.
DATABASE_TIMEOUT = timedelta(seconds=60)
#: Database outages retry for about twenty minutes before the event is ledgered
#: as failed; unreadable order data never gets better by retrying.
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=25,
    non_retryable_error_types=[INVALID_ORDER_DATA],
)
#: Recording a failure must land eventually, whatever else is wrong.
LEDGER_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
