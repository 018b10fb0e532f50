"""The naive reference: the original note's poller, one getOrders per journal
entry, against its own simulated account; only its calls are counted."""

import asyncio
from dataclasses import dataclass
from typing import Any

from baselinker.client import BaseLinkerClient
from simulators.baselinker import BaseLinkerSimulator

#: No meaningful limit: the reference is about how many calls, not how fast.
NAIVE_REQUESTS_PER_MINUTE = 10_000_000
#: Order fetches in flight at once; only the wall time depends on it.
NAIVE_CONCURRENCY = 8
#: getJournalList returns at most this many entries.
JOURNAL_PAGE_SIZE = 100


@dataclass(frozen=True)
class NaiveResult:
    """Entries read and the calls the account served for them, by method."""

    events: int
    calls: dict[str, int]

    @property
    def total_calls(self) -> int:
        """Every request the account served."""
        return sum(self.calls.values())

    @property
    def calls_per_event(self) -> float:
        """Requests per journal entry."""
        return self.total_calls / self.events if self.events else 0.0


async def count_naive_calls(orders: int, seed: int, span_seconds: float) -> NaiveResult:
    """Seed an account like the pipeline's and read all of it the naive way."""
    simulator = BaseLinkerSimulator(
        token="bench-naive", requests_per_minute=NAIVE_REQUESTS_PER_MINUTE, seed=seed
    )
    await simulator.start()
    api = BaseLinkerClient(simulator.url, simulator.token)
    try:
        simulator.seed_scenario(orders=orders, span_seconds=span_seconds)
        events = await _read_journal_naively(api)
    finally:
        await api.aclose()
        await simulator.stop()
    return NaiveResult(events, dict(simulator.calls))


async def _read_journal_naively(api: BaseLinkerClient) -> int:
    """Page the journal from the start; fetch each entry's order on its own."""
    gate = asyncio.Semaphore(NAIVE_CONCURRENCY)

    async def fetch(order_id: Any) -> None:
        async with gate:
            await api.orders(order_id=int(order_id or 0))

    cursor, events = 0, 0
    while True:
        page = await api.journal(cursor)
        fresh = [e for e in page if int(e["log_id"]) > cursor]
        await asyncio.gather(*(fetch(e["order_id"]) for e in fresh))
        events += len(fresh)
        if fresh:
            cursor = max(int(e["log_id"]) for e in fresh)
        if len(page) < JOURNAL_PAGE_SIZE:
            return events
