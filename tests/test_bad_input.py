"""Bad input ends as a ledger row with a status and a reason; the poller keeps
going and later good orders still land."""

import asyncio
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from activities.baselinker import TOKEN_BLOCKED, baselinker_errors
from baselinker.client import BaseLinkerClient, TokenBlockedError
from core.ids import order_event_workflow_id, poller_workflow_id
from core.verify import compare_with_truth
from core.workspaces import workspace_id
from simulators.baselinker import BaseLinkerSimulator, Order, OrderLine
from tests.conftest import Pipeline, eventually, ledger_rows, poller_state

WARSAW = ZoneInfo("Europe/Warsaw")
BLOCK_END = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})")


def shop_order(
    email: str = "", phone: str = "", invoice_nip: str = "", quantity: int = 2
) -> Order:
    """A one-line shop order with the given contact data."""
    return Order(
        products=[
            OrderLine(
                product_id=3_201_003,
                name="Creatina Monohidratada 300g",
                price_brutto=Decimal("99.90"),
                quantity=quantity,
                sku="SUP-003",
            )
        ],
        email=email,
        phone=phone,
        invoice_nip=invoice_nip,
        delivery_fullname="Ana Souza",
        delivery_price=Decimal("19.90"),
    )


def good_truth(p: Pipeline, *excluded: int) -> dict[int, dict[str, Any]]:
    """BaseLinker's orders except those the test made unreadable on purpose."""
    return {o: raw for o, raw in p.simulator.truth().items() if o not in excluded}


async def assert_later_order_lands(p: Pipeline, *excluded: int) -> None:
    """A good order created after the bad input is processed like any other."""
    p.simulator.account.create_order(shop_order(email="depois@example.com"))
    await p.drain(seconds=30)
    assert await compare_with_truth(p.pool, p.workspace, good_truth(p, *excluded)) == []


async def test_entry_without_order_id_is_ignored(pipeline: Pipeline) -> None:
    """An order-created entry that names order 0 is ledgered `ignored` with a
    reason about the missing order id, and starts no OrderEvent."""
    account = pipeline.simulator.account
    account.create_order(shop_order(email="antes@example.com"))
    orphan = account.add_journal_entry(1, 0, 0)
    account.create_order(shop_order(email="junto@example.com"))
    await pipeline.start_poller()

    counts = await pipeline.drain()

    ledger = await ledger_rows(pipeline)
    assert ledger[orphan]["status"] == "ignored"
    assert "order id" in ledger[orphan]["ignore_reason"]
    assert ledger[orphan]["order_id"] is None
    assert ledger[orphan]["workflow_id"] is None
    assert counts == {**counts, "ignored": 1, "failed": 0, "completed": 2}
    await assert_later_order_lands(pipeline)


async def test_unknown_log_type_is_ignored_with_its_type(pipeline: Pipeline) -> None:
    """A journal type the docs do not list (99) is ledgered `ignored` with a
    reason naming the type; the order's other entries are processed."""
    account = pipeline.simulator.account
    order_id = account.create_order(shop_order(email="tipo@example.com"))
    unknown = account.add_journal_entry(99, order_id, 1)
    await pipeline.start_poller()

    counts = await pipeline.drain()

    ledger = await ledger_rows(pipeline)
    assert ledger[unknown]["status"] == "ignored"
    assert "99" in ledger[unknown]["ignore_reason"]
    assert ledger[unknown]["event_type"] == 99
    assert ledger[unknown]["order_id"] == order_id
    assert counts == {**counts, "ignored": 1, "failed": 0, "completed": 1}
    await assert_later_order_lands(pipeline)


async def test_order_gone_from_baselinker_is_ignored(pipeline: Pipeline) -> None:
    """An entry whose order getOrders no longer returns is ledgered `ignored`
    ("no longer returned") and leaves no order row behind."""
    account = pipeline.simulator.account
    kept = account.create_order(shop_order(email="fica@example.com"))
    gone = account.create_order(shop_order(email="some@example.com"))
    account.forget_order(gone)
    await pipeline.start_poller()

    await pipeline.drain()

    by_order = {r["order_id"]: r for r in (await ledger_rows(pipeline)).values()}
    assert by_order[gone]["status"] == "ignored"
    assert "no longer returned" in by_order[gone]["ignore_reason"]
    assert by_order[kept]["status"] == "completed"
    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    stored = await pipeline.pool.fetch(
        "SELECT order_id_base FROM orders WHERE workspace_id = $1", ws
    )
    assert [r["order_id_base"] for r in stored] == [kept]
    await assert_later_order_lands(pipeline)


async def test_unparseable_order_fails_alone(pipeline: Pipeline) -> None:
    """An order whose line quantity is "abc" on the wire is ledgered `failed`
    with a one-line reason naming the field, its OrderEvent fails in Temporal,
    and the other orders of the same batch complete."""
    account = pipeline.simulator.account
    before = account.create_order(shop_order(email="um@example.com"))
    bad = account.create_order(shop_order(email="ruim@example.com"))
    after = account.create_order(shop_order(email="dois@example.com"))
    account.orders[bad].products[0].quantity = "abc"  # type: ignore[assignment]
    await pipeline.start_poller()

    counts = await pipeline.drain()

    by_order = {r["order_id"]: r for r in (await ledger_rows(pipeline)).values()}
    failed = by_order[bad]
    assert failed["status"] == "failed"
    assert "products.0.quantity" in failed["error_message"]
    assert by_order[before]["status"] == by_order[after]["status"] == "completed"
    assert counts == {**counts, "failed": 1, "completed": 2}
    handle = pipeline.client.get_workflow_handle(
        order_event_workflow_id(pipeline.workspace, failed["event_log_id"])
    )

    async def closed() -> WorkflowExecutionStatus | None:
        status = (await handle.describe()).status
        return None if status == WorkflowExecutionStatus.RUNNING else status

    assert await eventually(closed, 30, "the OrderEvent to close") == (
        WorkflowExecutionStatus.FAILED
    )
    await assert_later_order_lands(pipeline, bad)
    # One line naming the field and the value, as validation_reason words it
    # for the ledger's reader, not pydantic's multi-line report.
    assert failed["error_message"] == (
        "unreadable order data: products.0.quantity: not a number: 'abc'"
    )


async def test_client_identity_falls_back_and_may_be_absent(
    pipeline: Pipeline,
) -> None:
    """A CPF with wrong check digits is not trusted: the client is known by
    e-mail and the raw CPF kept. An order with no contact data at all lands
    without a client and its entry is still `completed`."""
    account = pipeline.simulator.account
    by_email = account.create_order(
        shop_order(email=" Ana.Souza@Example.com ", invoice_nip="123.456.789-00")
    )
    anonymous = account.create_order(shop_order())
    await pipeline.start_poller()

    counts = await pipeline.drain()

    assert counts == {**counts, "failed": 0, "completed": 2}
    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    rows = {
        r["order_id_base"]: r
        for r in await pipeline.pool.fetch(
            """
            SELECT o.order_id_base, o.client_id, c.identity_key, c.cpf,
                c.tax_id_raw, c.email
            FROM orders o LEFT JOIN clients c ON c.id = o.client_id
            WHERE o.workspace_id = $1
            """,
            ws,
        )
    }
    assert rows[by_email]["identity_key"] == "email:ana.souza@example.com"
    assert rows[by_email]["email"] == "ana.souza@example.com"
    assert rows[by_email]["cpf"] is None
    assert rows[by_email]["tax_id_raw"] == "123.456.789-00"
    assert rows[anonymous]["client_id"] is None
    truth = pipeline.simulator.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
    await assert_later_order_lands(pipeline)


async def test_invalid_token_pauses_the_poller(pipeline: Pipeline) -> None:
    """A token BaseLinker rejects pauses the poller with a reason naming the
    token, mirrored in baselinker_sync_state, and no retries hit the API."""
    await pipeline.stop_workers()
    await pipeline.api.aclose()
    pipeline.api = BaseLinkerClient(pipeline.simulator.url, "not-the-token")
    pipeline.start_workers()
    pipeline.simulator.seed_scenario(orders=3)
    await pipeline.start_poller(interval=0.5)

    async def parked() -> bool | None:
        # The run after the pause has saved it and waits for `resume`.
        state = await poller_state(pipeline)
        return True if state is not None and state.batches >= 1 else None

    await eventually(parked, 30, "the poller to continue as new, paused")
    state = await poller_state(pipeline)
    assert state is not None
    assert state.paused
    assert state.pause_reason is not None
    assert "token" in state.pause_reason.lower()
    ws = await workspace_id(pipeline.pool, pipeline.workspace)
    stored = await pipeline.pool.fetchrow(
        """
        SELECT paused, pause_reason, last_log_id FROM baselinker_sync_state
        WHERE workspace_id = $1
        """,
        ws,
    )
    assert stored["paused"] is True
    assert stored["pause_reason"] == state.pause_reason
    assert stored["last_log_id"] == 0
    # An observation window of four poll intervals: a paused poller calls nothing.
    calls = pipeline.simulator.total_calls
    await asyncio.sleep(2)
    assert pipeline.simulator.total_calls == calls == 1
    description = await pipeline.client.get_workflow_handle(
        poller_workflow_id(pipeline.workspace)
    ).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert (await ledger_rows(pipeline)) == {}


async def test_blocked_token_names_its_end_in_warsaw_time() -> None:
    """Over the budget, the client raises TokenBlockedError whose `until` is the
    message's local Warsaw time in UTC, and the activity layer asks Temporal to
    retry only once the block ends."""
    async with BaseLinkerSimulator(token="budget", requests_per_minute=2) as sim:
        client = BaseLinkerClient(sim.url, sim.token)
        await client.order_statuses()
        await client.order_statuses()
        with pytest.raises(TokenBlockedError) as caught:
            await client.journal(0)
        await client.aclose()
    blocked = caught.value
    match = BLOCK_END.search(blocked.message)
    assert match is not None
    local = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
    assert blocked.until == local.replace(tzinfo=WARSAW)
    assert blocked.until.utcoffset() == timedelta(0)
    expected_end = sim.clock.now() + 60
    assert abs(blocked.until.timestamp() - expected_end) <= 2
    assert timedelta(seconds=55) <= blocked.wait() <= timedelta(seconds=61)
    with pytest.raises(ApplicationError) as translated, baselinker_errors():
        raise blocked
    assert translated.value.type == TOKEN_BLOCKED
    assert not translated.value.non_retryable
    delay = translated.value.next_retry_delay
    assert delay is not None
    assert timedelta(seconds=55) <= delay <= timedelta(seconds=61)


async def test_rate_limited_pipeline_finishes_once_blocks_lift(
    pipeline: Pipeline,
) -> None:
    """With a budget of 2 requests a minute the pipeline is blocked again and
    again, waits each block out, and still processes every entry once."""
    sim = pipeline.simulator
    sim.limiter.requests_per_minute = 2
    # The simulated clock runs an hour behind, so each block's end is already
    # past for the worker (it retries after a second) while the simulator
    # refuses until the test moves its clock past the block.
    sim.clock.advance(-3600)
    sim.seed_scenario(orders=30)

    async def lift_blocks() -> None:
        seen = 0
        while True:
            if sim.blocked > seen:
                seen = sim.blocked
                sim.clock.advance(61)
            await asyncio.sleep(0.1)

    lifter = asyncio.create_task(lift_blocks())
    try:
        await pipeline.start_poller()
        counts = await pipeline.drain(seconds=50)
    finally:
        lifter.cancel()

    assert sim.blocked >= 2
    assert counts["failed"] == 0
    assert counts["completed"] == len(sim.account.journal)
    truth = sim.truth()
    assert await compare_with_truth(pipeline.pool, pipeline.workspace, truth) == []
