"""The account's request budget, shared by every worker through PostgreSQL."""

import asyncio
import hashlib

import asyncpg


def account_key(token: str) -> str:
    """Names an account without keeping its token: a short hash of it."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class RequestBudget:
    """Hands out request slots at most `per_minute` a minute, evenly spaced.

    Every worker of a deployment shares one database, so one row per account
    paces them all together: a call waits for its slot instead of spending
    the account's budget and meeting ERROR_BLOCKED_TOKEN. Temporal's own
    task-queue rate limit holds calls made once a second, under its cap of
    1.5 a second, for 0.66 s in the median and up to 1.7 s (`bench/server.py`),
    which costs freshness; a slot here costs one query.
    """

    def __init__(self, pool: asyncpg.Pool, account: str, per_minute: int) -> None:
        self._pool = pool
        self._account = account
        self._spacing = 60.0 / per_minute

    async def wait_turn(self) -> float:
        """Take the next free slot and sleep until it comes; the seconds slept."""
        wait: float = await self._pool.fetchval(
            """
            INSERT INTO baselinker_budget AS b (account, next_slot_at)
            VALUES ($1, clock_timestamp() + make_interval(secs => $2))
            ON CONFLICT (account) DO UPDATE SET next_slot_at =
                GREATEST(b.next_slot_at, clock_timestamp())
                + make_interval(secs => $2)
            RETURNING EXTRACT(EPOCH FROM next_slot_at - clock_timestamp())::float8
                - $2
            """,
            self._account,
            self._spacing,
        )
        if wait <= 0:
            return 0.0
        await asyncio.sleep(wait)
        return wait
