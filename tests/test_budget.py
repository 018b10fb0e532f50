"""The request budget: every worker on one database takes evenly spaced slots
for the same account, so together they keep to the account's rate."""

import asyncio
import time
import uuid

import asyncpg

from baselinker.budget import RequestBudget, account_key

#: 600 a minute: one slot every 0.1 s.
PER_MINUTE = 600
SPACING = 60 / PER_MINUTE


async def test_two_workers_share_one_accounts_slots(pool: asyncpg.Pool) -> None:
    """Ten calls from two workers of one account take ten slots 0.1 s apart:
    the last cannot go before 0.9 s have passed, and calls wait for slots."""
    account = account_key(f"token-{uuid.uuid4().hex}")
    workers = [RequestBudget(pool, account, PER_MINUTE) for _ in range(2)]
    started = time.monotonic()

    waits = await asyncio.gather(*(workers[i % 2].wait_turn() for i in range(10)))

    assert time.monotonic() - started >= 9 * SPACING
    assert max(waits) > 0


async def test_accounts_do_not_wait_for_each_other(pool: asyncpg.Pool) -> None:
    """Another token's calls take their own slots: five accounts' first calls
    all go at once."""
    budgets = [
        RequestBudget(pool, account_key(f"token-{uuid.uuid4().hex}"), PER_MINUTE)
        for _ in range(5)
    ]

    waits = await asyncio.gather(*(b.wait_turn() for b in budgets))

    assert waits == [0.0] * 5


def test_the_account_key_does_not_hold_the_token() -> None:
    """What is stored names the account without its token."""
    key = account_key("secret-token-123")

    assert "secret" not in key and len(key) == 32
    assert key == account_key("secret-token-123") != account_key("other")
