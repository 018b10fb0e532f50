"""The BaseLinker simulator over real HTTP on loopback: protocol, limits, scenario."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from simulators.baselinker import (
    Account,
    BaseLinkerSimulator,
    Clock,
    Order,
    OrderLine,
    Player,
    generate_scenario,
    play,
    scenario_journal_types,
)
from simulators.baselinker.state import FIRST_LOG_ID, FIRST_ORDER_ID

TOKEN = "sim-token"
DAY = 24 * 3600
BLOCK_MESSAGE = re.compile(
    r"^Query limit exceeded, token blocked until "
    r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})$"
)

SimFactory = Callable[..., Awaitable[BaseLinkerSimulator]]


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    """Start simulators on free loopback ports; stop them all afterwards."""
    started: list[BaseLinkerSimulator] = []

    async def start(**options: Any) -> BaseLinkerSimulator:
        options.setdefault("drift", False)
        sim = BaseLinkerSimulator(**options)
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: SimFactory) -> BaseLinkerSimulator:
    """A simulator with canonical types, so replies compare with the truth."""
    return await make_sim()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the test."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def call(
    http: httpx.AsyncClient,
    sim: BaseLinkerSimulator,
    method: str,
    parameters: dict[str, Any] | None = None,
    token: str | None = TOKEN,
) -> dict[str, Any]:
    """One connector.php request; every reply is HTTP 200 with a JSON body."""
    data = {"method": method}
    if parameters is not None:
        data["parameters"] = json.dumps(parameters)
    headers = {} if token is None else {"X-BLToken": token}
    response = await http.post(sim.url, data=data, headers=headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def new_order(email: str = "maria.silva@gmail.com", confirmed: bool = True) -> Order:
    """A one-line order ready for Account.create_order."""
    line = OrderLine(
        product_id=3201001,
        name="Creatina 300g",
        price_brutto=Decimal("99.90"),
        quantity=2,
    )
    return Order(products=[line], email=email, confirmed=confirmed)


def same_meaning(wire: Any, canonical: Any) -> bool:
    """Whether a drifted wire value says what the canonical value says."""
    if isinstance(canonical, dict):
        if not canonical and wire == []:
            return True
        return wire.keys() == canonical.keys() and all(
            same_meaning(wire[key], value) for key, value in canonical.items()
        )
    if isinstance(canonical, list):
        return len(wire) == len(canonical) and all(
            same_meaning(w, c) for w, c in zip(wire, canonical, strict=True)
        )
    if isinstance(canonical, bool):
        return wire in (True, 1, "1") if canonical else wire in (False, 0, "0")
    if isinstance(canonical, int):
        return wire in (canonical, str(canonical)) or (canonical == 0 and wire == "")
    if isinstance(canonical, float):
        return float(wire) == canonical
    if isinstance(wire, float):
        return Decimal(str(wire)) == Decimal(canonical)
    return bool(wire == canonical)


async def test_envelope_success_and_bad_token(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """A good call is status SUCCESS with its fields; a bad or missing token is
    ERROR_BAD_TOKEN in the body of an HTTP 200."""
    ok = await call(http, sim, "getOrderStatusList")
    assert ok["status"] == "SUCCESS"
    assert {s["id"] for s in ok["statuses"]} >= set(range(1001, 1008))
    assert {"id", "name", "name_for_customer", "color"} == set(ok["statuses"][0])
    assert "Em separação" in {s["name"] for s in ok["statuses"]}

    for token in ("wrong", None):
        bad = await call(http, sim, "getOrderStatusList", token=token)
        assert bad == {
            "status": "ERROR",
            "error_code": "ERROR_BAD_TOKEN",
            "error_message": "Invalid user token",
        }


async def test_unknown_method_and_bad_parameters(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """An unknown method is ERROR_UNKNOWN_METHOD; parameters that are not JSON or
    carry a wrong type are ERROR_PARAMETERS."""
    unknown = await call(http, sim, "getEverything")
    assert unknown["status"] == "ERROR"
    assert unknown["error_code"] == "ERROR_UNKNOWN_METHOD"

    response = await http.post(
        sim.url,
        data={"method": "getOrders", "parameters": "{not json"},
        headers={"X-BLToken": TOKEN},
    )
    assert response.json()["error_code"] == "ERROR_PARAMETERS"

    wrong_type = await call(http, sim, "getOrders", {"order_id": "abc"})
    assert wrong_type["error_code"] == "ERROR_PARAMETERS"
    no_cursor = await call(http, sim, "getJournalList", {})
    assert no_cursor["error_code"] == "ERROR_PARAMETERS"


async def test_journal_cursor_is_inclusive(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """getJournalList returns entries from last_log_id on, that one included."""
    for _ in range(3):
        sim.account.create_order(new_order())

    reply = await call(http, sim, "getJournalList", {"last_log_id": FIRST_LOG_ID + 1})

    assert [log["log_id"] for log in reply["logs"]] == [
        FIRST_LOG_ID + 1,
        FIRST_LOG_ID + 2,
    ]
    assert reply["logs"][0] == {
        "log_id": FIRST_LOG_ID + 1,
        "log_type": 1,
        "order_id": FIRST_ORDER_ID + 1,
        "object_id": 0,
        "date": sim.account.journal[1].date,
    }


async def test_journal_pages_hold_at_most_100_ascending(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """A journal page holds at most 100 entries in ascending log_id order."""
    for _ in range(250):
        sim.account.add_journal_entry(18, FIRST_ORDER_ID, 1003)

    first = await call(http, sim, "getJournalList", {"last_log_id": 0})
    last_seen = first["logs"][-1]["log_id"]
    second = await call(http, sim, "getJournalList", {"last_log_id": last_seen + 1})

    ids = [log["log_id"] for log in first["logs"]]
    assert ids == list(range(FIRST_LOG_ID, FIRST_LOG_ID + 100))
    assert len(second["logs"]) == 100
    assert second["logs"][0]["log_id"] == last_seen + 1


async def test_journal_filters_by_type_and_order(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """logs_types and order_id narrow the journal to matching entries."""
    first = sim.account.create_order(new_order())
    second = sim.account.create_order(new_order())
    sim.account.add_payment(first, Decimal("199.80"))
    sim.account.change_status(second, 1003)

    payments = await call(
        http, sim, "getJournalList", {"last_log_id": 0, "logs_types": [3]}
    )
    of_second = await call(
        http, sim, "getJournalList", {"last_log_id": 0, "order_id": second}
    )

    assert [(log["log_type"], log["order_id"]) for log in payments["logs"]] == [
        (3, first)
    ]
    assert [(log["log_type"], log["object_id"]) for log in of_second["logs"]] == [
        (1, 0),
        (18, 1003),
    ]


async def test_journal_keeps_three_days(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Entries older than 3 days of the simulator clock are no longer returned."""
    now = sim.clock.now()
    sim.account.add_journal_entry(1, FIRST_ORDER_ID, at=now - 3 * DAY - 10)
    kept = sim.account.add_journal_entry(1, FIRST_ORDER_ID + 1, at=now - 3 * DAY + 60)

    before = await call(http, sim, "getJournalList", {"last_log_id": 0})
    sim.clock.advance(120)
    after = await call(http, sim, "getJournalList", {"last_log_id": 0})

    assert [log["log_id"] for log in before["logs"]] == [kept]
    assert after["logs"] == []


async def test_journal_switched_off_returns_nothing(
    make_sim: SimFactory, http: httpx.AsyncClient
) -> None:
    """With the journal not enabled for the account, getJournalList is empty."""
    sim = await make_sim(journal_enabled=False)
    sim.account.create_order(new_order())

    reply = await call(http, sim, "getJournalList", {"last_log_id": 0})

    assert reply == {"status": "SUCCESS", "logs": []}


async def test_get_orders_by_id_and_id_from(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """order_id picks one order; id_from pages ascending by id, 100 at most."""
    ids = [sim.account.create_order(new_order()) for _ in range(120)]

    one = await call(http, sim, "getOrders", {"order_id": ids[7]})
    page = await call(http, sim, "getOrders", {"id_from": ids[5]})
    rest = await call(http, sim, "getOrders", {"id_from": ids[105]})

    assert one["orders"] == [sim.truth()[ids[7]]]
    assert [o["order_id"] for o in page["orders"]] == ids[5:105]
    assert [o["order_id"] for o in rest["orders"]] == ids[105:]


async def test_get_orders_by_confirmation_date(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """date_confirmed_from keeps orders confirmed at or after it, ascending by
    confirmation date, whatever their ids."""
    base = sim.clock.now() - 3600
    late = sim.account.create_order(new_order(), at=base + 1000)
    early = sim.account.create_order(new_order(), at=base + 500)
    middle = sim.account.create_order(new_order(), at=base + 800)

    reply = await call(http, sim, "getOrders", {"date_confirmed_from": int(base + 600)})

    assert [o["order_id"] for o in reply["orders"]] == [middle, late]
    assert early not in {o["order_id"] for o in reply["orders"]}


async def test_unconfirmed_orders_only_on_request(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Unconfirmed orders are left out unless get_unconfirmed_orders is true,
    and a status change confirms them."""
    pending = sim.account.create_order(new_order(confirmed=False))

    default = await call(http, sim, "getOrders", {"order_id": pending})
    asked = await call(
        http, sim, "getOrders", {"order_id": pending, "get_unconfirmed_orders": True}
    )
    sim.account.change_status(pending, 1003)
    moved = await call(http, sim, "getOrders", {"order_id": pending})

    assert default["orders"] == []
    assert asked["orders"][0]["confirmed"] is False
    assert asked["orders"][0]["date_confirmed"] == 0
    assert moved["orders"][0]["confirmed"] is True
    assert moved["orders"][0]["date_confirmed"] > 0


async def test_get_orders_by_email_status_and_date(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """filter_email ignores case, status_id and date_from filter as named."""
    old = sim.account.create_order(new_order("Ana@Uol.com.br"), at=sim.clock.now() - 99)
    new = sim.account.create_order(new_order("joao@gmail.com"))
    sim.account.change_status(new, 1002)

    by_email = await call(http, sim, "getOrders", {"filter_email": "ana@uol.com.br"})
    by_status = await call(http, sim, "getOrders", {"status_id": 1002})
    by_date = await call(
        http, sim, "getOrders", {"date_from": int(sim.clock.now()) - 10}
    )

    assert [o["order_id"] for o in by_email["orders"]] == [old]
    assert [o["order_id"] for o in by_status["orders"]] == [new]
    assert [o["order_id"] for o in by_date["orders"]] == [new]


async def test_rate_limit_blocks_then_lifts(
    make_sim: SimFactory, http: httpx.AsyncClient
) -> None:
    """Over the budget the token is blocked for 60 s of clock, the message names
    the end in Warsaw time, and blocked replies are counted."""
    sim = await make_sim(requests_per_minute=3)
    for _ in range(3):
        assert (await call(http, sim, "getOrderStatusList"))["status"] == "SUCCESS"

    before = sim.clock.now()
    over = await call(http, sim, "getOrderStatusList")
    sim.clock.advance(59)
    still = await call(http, sim, "getOrderStatusList")
    sim.clock.advance(2)
    lifted = await call(http, sim, "getOrderStatusList")

    assert over["error_code"] == "ERROR_BLOCKED_TOKEN"
    match = BLOCK_MESSAGE.match(over["error_message"])
    assert match is not None
    warsaw = ZoneInfo("Europe/Warsaw")
    ends = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=warsaw)
    assert before + 60 <= ends.timestamp() <= before + 62
    assert still["error_code"] == "ERROR_BLOCKED_TOKEN"
    assert lifted["status"] == "SUCCESS"
    assert sim.blocked == 2


async def test_drift_loosens_types_but_keeps_meaning(
    make_sim: SimFactory, http: httpx.AsyncClient
) -> None:
    """With drift on, ids, flags and money arrive in mixed types that still say
    what the truth says."""
    sim = await make_sim(drift=True, seed=3)
    sim.seed_scenario(seed=3, orders=40)

    reply = await call(http, sim, "getOrders", {"get_unconfirmed_orders": True})
    journal = await call(http, sim, "getJournalList", {"last_log_id": 0})

    orders = reply["orders"]
    truth = sim.truth()
    for wire in orders:
        assert same_meaning(wire, truth[int(wire["order_id"])])
    assert {type(o["order_id"]) for o in orders} == {int, str}
    assert {type(o["confirmed"]) for o in orders} >= {str, int}
    assert float in {type(o["delivery_price"]) for o in orders}
    assert str in {type(log["log_id"]) for log in journal["logs"]}
    assert all(value is not None for o in orders for value in o.values())


async def test_no_drift_sends_the_truth(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """With drift off, getOrders returns exactly the canonical truth."""
    sim.seed_scenario(seed=3, orders=40)

    reply = await call(http, sim, "getOrders", {"get_unconfirmed_orders": True})

    assert {o["order_id"]: o for o in reply["orders"]} == sim.truth()
    assert all(isinstance(o["order_id"], int) for o in reply["orders"])


def test_scenario_is_deterministic() -> None:
    """The same seed gives the same actions and the same truth; another differs."""
    start = 1_750_000_000.0
    truths = []
    for seed in (11, 11, 12):
        account = Account(Clock())
        play(account, generate_scenario(seed, 60, start, anomalies=True))
        truths.append(account.truth())

    assert generate_scenario(11, 60, start) == generate_scenario(11, 60, start)
    assert truths[0] == truths[1]
    assert truths[0] != truths[2]


def test_scenario_payments_match_order_totals() -> None:
    """Limited to creations, payments and moves, paid orders paid exactly
    sum(price x qty) + delivery; most orders are paid; lines and quantities
    stay in range; some clients come back."""
    clock = Clock()
    account = Account(clock)
    play(account, generate_scenario(5, 300, clock.now() - 3600, types={1, 3, 18}))
    truth = account.truth()

    paid = 0
    for order in truth.values():
        lines = sum(
            Decimal(p["price_brutto"]) * p["quantity"] for p in order["products"]
        )
        if order["payment_done"] != "0.00":
            paid += 1
            total = lines + Decimal(order["delivery_price"])
            assert Decimal(order["payment_done"]) == total
        assert 1 <= len(order["products"]) <= 30
        assert all(1 <= p["quantity"] <= 5 for p in order["products"])
    emails = [o["email"].strip().lower() for o in truth.values() if o["email"]]
    assert len(truth) == 300
    assert 0.7 < paid / len(truth) < 0.9
    assert len(set(emails)) < len(emails)
    assert all(log.log_type in (1, 3, 18) for log in account.journal)


def test_scenario_anomalies() -> None:
    """With anomalies, the journal holds an order 0 entry, an unknown type and
    the creation of an order that no longer exists."""
    clock = Clock()
    account = Account(clock)
    created = play(
        account, generate_scenario(9, 50, clock.now() - 3600, anomalies=True)
    )
    truth = account.truth()

    assert any(log.order_id == 0 for log in account.journal)
    assert any(log.log_type == 99 for log in account.journal)
    assert any(order_id not in truth for order_id in created)


def test_numbering_continues_after_seen_ids() -> None:
    """continue_after makes new ids follow ones seen before and never go back."""
    account = Account(Clock())
    account.continue_after(log_id=9_000_500, order_id=7_000_200, order_product_id=5)

    order_id = account.create_order(new_order())

    assert order_id == 7_000_201
    assert account.last_log_id == 9_000_501
    assert account.orders[order_id].products[0].order_product_id == 40_000_001


async def test_calls_are_counted(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Every request is counted by method name, errors included, and the
    counts show in /_sim/stats."""
    await call(http, sim, "getOrders")
    await call(http, sim, "getOrders")
    await call(http, sim, "getJournalList", {"last_log_id": 0})
    await call(http, sim, "getOrders", token="wrong")
    await call(http, sim, "nope")

    stats = (await http.get(sim.url.replace("connector.php", "_sim/stats"))).json()

    expected = {"getOrders": 3, "getJournalList": 1, "nope": 1}
    assert sim.calls == expected
    assert sim.total_calls == 5
    assert stats["calls"] == expected
    assert stats["total"] == 5
    assert stats["blocked"] == 0


async def test_control_endpoints(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """/_sim/seed plays a scenario (limited to the journal types asked for),
    /_sim/truth shows it keyed by id, /_sim/clock moves time, and a bad body
    is a 400."""
    base = sim.url.replace("/connector.php", "/_sim")

    seed = {"seed": 7, "orders": 20, "types": [3, 18]}
    seeded = (await http.post(f"{base}/seed", json=seed)).json()
    truth = (await http.get(f"{base}/truth")).json()
    before = sim.clock.now()
    moved = (await http.post(f"{base}/clock", json={"advance": 3600})).json()
    bad = await http.post(f"{base}/clock", json={"advance": "soon"})

    assert seeded["orders"] == 20
    assert {entry.log_type for entry in sim.account.journal} <= {1, 3, 18}
    assert seeded["last_log_id"] == sim.account.last_log_id
    assert truth == {str(k): v for k, v in sim.truth().items()}
    assert moved["now"] >= before + 3600
    assert bad.status_code == 400


async def test_live_shop_plays_actions(sim: BaseLinkerSimulator) -> None:
    """run_live keeps adding orders and their follow-ups until cancelled."""
    live = asyncio.create_task(sim.run_live(interval=(0.001, 0.002)))
    await asyncio.sleep(0.3)
    live.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await live

    assert len(sim.account.orders) >= 3
    assert len(sim.account.journal) > len(sim.account.orders)


async def test_standalone_serves_and_stops_on_sigterm(http: httpx.AsyncClient) -> None:
    """`python -m simulators.baselinker` prints its URL, serves seeded orders and
    exits cleanly on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.baselinker",
        "--port",
        "0",
        "--orders",
        "5",
        "--no-drift",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()

    response = await http.post(
        url, data={"method": "getOrders"}, headers={"X-BLToken": TOKEN}
    )
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 10)

    assert url.startswith("http://127.0.0.1:")
    assert len(response.json()["orders"]) == 5
    assert code == 0


# Every journal type: documents, parcels, lines, order data and order links.


def taxed_order(email: str = "ana.costa@gmail.com") -> Order:
    """A two-line order with tax rates and a delivery price, for documents."""
    lines = [
        OrderLine(
            product_id=3201001,
            name="Whey Protein 900g",
            price_brutto=Decimal("123.00"),
            quantity=2,
            sku="SUP-001",
            ean="7891234000012",
            tax_rate=23.0,
        ),
        OrderLine(
            product_id=3201005,
            name="Ômega 3",
            price_brutto=Decimal("59.90"),
            quantity=1,
            sku="SUP-005",
            tax_rate=0.0,
        ),
    ]
    return Order(
        products=lines,
        email=email,
        payment_method="PIX",
        delivery_method="Correios SEDEX",
        delivery_price=Decimal("25.00"),
        delivery_fullname="Ana Costa",
        delivery_address="Rua Augusta, 120",
        delivery_city="São Paulo",
        delivery_postcode="01304-000",
        invoice_nip="529.982.247-25",
    )


async def logs_of(
    http: httpx.AsyncClient, sim: BaseLinkerSimulator, order_id: int
) -> list[tuple[int, int]]:
    """(log_type, object_id) of an order's journal entries, oldest first."""
    reply = await call(
        http, sim, "getJournalList", {"last_log_id": 0, "order_id": order_id}
    )
    return [(log["log_type"], log["object_id"]) for log in reply["logs"]]


async def order_on_wire(
    http: httpx.AsyncClient, sim: BaseLinkerSimulator, order_id: int
) -> dict[str, Any] | None:
    """The order as getOrders returns it, or None when it is not returned."""
    reply = await call(http, sim, "getOrders", {"order_id": order_id})
    orders: list[dict[str, Any]] = reply["orders"]
    return orders[0] if orders else None


async def test_invoice_issue_edit_delete(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """An invoice (ids from 600001) copies the order's lines plus delivery with
    netto from the tax rate; issuing, editing and deleting write types 7, 21
    and 19 with the invoice as object; a deleted one is no longer listed."""
    order_id = sim.account.create_order(taxed_order())

    invoice_id = sim.account.issue_invoice(order_id)
    issued = await call(http, sim, "getInvoices", {"order_id": order_id})
    sim.account.edit_invoice(invoice_id, changes={"invoice_address": "Rua B, 9"})
    edited = await call(http, sim, "getInvoices", {"invoice_id": invoice_id})
    sim.account.delete_invoice(invoice_id)
    deleted = await call(http, sim, "getInvoices", {"order_id": order_id})

    assert invoice_id == 600_001
    (invoice,) = issued["invoices"]
    assert invoice["invoice_id"] == invoice_id
    assert invoice["type"] == "normal"
    assert re.fullmatch(r"FV 1/\d{1,2}/\d{4}", invoice["number"])
    assert invoice["number"] == f"FV 1/{invoice['month']}/{invoice['year']}"
    assert invoice["total_price_brutto"] == "330.90"
    assert invoice["total_price_netto"] == "284.90"
    assert invoice["invoice_fullname"] == "Ana Costa"
    assert invoice["invoice_nip"] == "529.982.247-25"
    assert [i["price_netto"] for i in invoice["items"]] == ["100.00", "59.90", "25.00"]
    assert set(invoice["items"][0]) == {
        "name", "sku", "ean", "price_brutto", "price_netto", "tax_rate", "quantity"
    }  # fmt: skip
    assert edited["invoices"][0]["invoice_address"] == "Rua B, 9"
    assert deleted["invoices"] == []
    assert (await logs_of(http, sim, order_id))[1:] == [
        (7, invoice_id),
        (21, invoice_id),
        (19, invoice_id),
    ]


async def test_invoice_numbers_count_per_month(sim: BaseLinkerSimulator) -> None:
    """Invoice numbers restart at 1 each month and count up within it."""
    order_id = sim.account.create_order(taxed_order())
    january = datetime(2026, 1, 20, 12, tzinfo=ZoneInfo("America/Sao_Paulo"))

    numbers = [
        sim.account.invoices[sim.account.issue_invoice(order_id, at=at)].number
        for at in (
            january.timestamp(),
            january.timestamp() + 60,
            january.timestamp() + 20 * DAY,
        )
    ]

    assert numbers == ["FV 1/1/2026", "FV 2/1/2026", "FV 1/2/2026"]


async def test_get_invoices_filters(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """getInvoices filters by invoice_id, order_id, id_from, date_from and
    series_id, and pages ascending by id, 100 at most."""
    now = sim.clock.now()
    first = sim.account.create_order(taxed_order())
    second = sim.account.create_order(taxed_order())
    old = sim.account.issue_invoice(first, at=now - 600)
    ids = [sim.account.issue_invoice(second) for _ in range(104)]

    async def listed(**params: Any) -> list[int]:
        reply = await call(http, sim, "getInvoices", params)
        return [invoice["invoice_id"] for invoice in reply["invoices"]]

    assert await listed() == [old, *ids[:99]]
    assert await listed(id_from=ids[50]) == ids[50:]
    assert await listed(invoice_id=ids[3]) == [ids[3]]
    assert await listed(order_id=first) == [old]
    assert (await listed(date_from=int(now) - 10))[0] == ids[0]
    assert await listed(series_id=1015, order_id=first) == [old]
    assert await listed(series_id=1) == []


async def test_receipts_issue_delete_and_filters(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Receipts (ids from 800001, numbered like "1/11/2026/P") write types 8
    and 20; getReceipts filters by id_from, date_from, date_to and series_id
    and leaves deleted ones out."""
    now = sim.clock.now()
    order_id = sim.account.create_order(taxed_order())
    early = sim.account.issue_receipt(order_id, at=now - 600)
    late = sim.account.issue_receipt(order_id)
    gone = sim.account.issue_receipt(order_id)
    sim.account.delete_receipt(gone)

    async def listed(**params: Any) -> list[int]:
        reply = await call(http, sim, "getReceipts", params)
        return [receipt["receipt_id"] for receipt in reply["receipts"]]

    everything = await call(http, sim, "getReceipts", {})
    receipt = everything["receipts"][0]
    assert early == 800_001
    assert await listed() == [early, late]
    assert await listed(id_from=late) == [late]
    assert await listed(date_from=int(now) - 10) == [late]
    assert await listed(date_to=int(now) - 10) == [early]
    assert await listed(series_id=2030) == [early, late]
    assert await listed(series_id=1) == []
    assert receipt["receipt_full_nr"] == (
        f"{receipt['sub_id']}/{receipt['month']}/{receipt['year']}/P"
    )
    assert receipt["nip"] == "529.982.247-25"
    assert [p["price_brutto"] for p in receipt["products"]] == [
        "123.00",
        "59.90",
        "25.00",
    ]
    assert (await logs_of(http, sim, order_id))[1:] == [
        (8, early),
        (8, late),
        (8, gone),
        (20, gone),
    ]


async def test_get_receipt_by_id_or_order(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """getReceipt gives the newest live receipt at the envelope's top level, by
    receipt_id or order_id; none is ERROR_RECEIPT_NOT_FOUND; neither parameter
    is ERROR_PARAMETERS."""
    order_id = sim.account.create_order(taxed_order())
    other = sim.account.create_order(taxed_order())
    older = sim.account.issue_receipt(order_id)
    newer = sim.account.issue_receipt(order_id)
    sim.account.delete_receipt(newer)

    by_order = await call(http, sim, "getReceipt", {"order_id": order_id})
    by_id = await call(http, sim, "getReceipt", {"receipt_id": older})
    deleted = await call(http, sim, "getReceipt", {"receipt_id": newer})
    none = await call(http, sim, "getReceipt", {"order_id": other})
    neither = await call(http, sim, "getReceipt", {})

    assert by_order == {"status": "SUCCESS", **sim.account.receipts[older].to_dict()}
    assert by_id == by_order
    not_found = {
        "status": "ERROR",
        "error_code": "ERROR_RECEIPT_NOT_FOUND",
        "error_message": "Receipt not found",
    }
    assert deleted == not_found
    assert none == not_found
    assert neither["error_code"] == "ERROR_PARAMETERS"


async def test_packages_create_track_delete(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """A package (ids from 300001) gets a courier tracking number; creating,
    tracking and deleting write types 9, 22 and 10 with the package as
    object; getOrderPackages shows the newest status and omits deleted ones."""
    order_id = sim.account.create_order(taxed_order())
    correios = sim.account.create_package(order_id)
    jadlog = sim.account.create_package(order_id, "jadlog")
    sim.account.set_package_status(correios, 2)
    sim.account.set_package_status(correios, 5)
    listed = await call(http, sim, "getOrderPackages", {"order_id": order_id})
    sim.account.delete_package(jadlog)
    after = await call(http, sim, "getOrderPackages", {"order_id": order_id})
    missing = await call(http, sim, "getOrderPackages", {})

    assert correios == 300_001
    first, second = listed["packages"]
    assert set(first) == {
        "package_id", "courier_package_nr", "courier_inner_number",
        "courier_code", "courier_other_name", "tracking_status_date",
        "tracking_delivery_days", "tracking_status", "package_type",
        "tracking_url",
    }  # fmt: skip
    assert re.fullmatch(r"[A-Z]{2}\d{9}BR", first["courier_package_nr"])
    assert first["courier_package_nr"] in first["tracking_url"]
    assert (first["courier_code"], first["tracking_status"]) == ("correios", 5)
    assert (second["courier_code"], second["tracking_status"]) == ("jadlog", 1)
    assert [p["package_id"] for p in after["packages"]] == [correios]
    assert missing["error_code"] == "ERROR_PARAMETERS"
    assert (await logs_of(http, sim, order_id))[1:] == [
        (9, correios),
        (9, jadlog),
        (22, correios),
        (22, correios),
        (10, jadlog),
    ]
    with pytest.raises(ValueError, match="courier"):
        sim.account.create_package(order_id, "dhl")
    with pytest.raises(ValueError, match="tracking status"):
        sim.account.set_package_status(correios, 12)


async def test_order_shows_its_newest_package_tracking_number(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """getOrders fills delivery_package_module and delivery_package_nr from the
    order's newest live package, and empties them when none is left."""
    order_id = sim.account.create_order(taxed_order())
    before = await order_on_wire(http, sim, order_id)
    correios = sim.account.create_package(order_id)
    jadlog = sim.account.create_package(order_id, "jadlog")
    both = await order_on_wire(http, sim, order_id)
    jadlog_nr = sim.account.packages[jadlog].courier_package_nr
    correios_nr = sim.account.packages[correios].courier_package_nr
    sim.account.delete_package(jadlog)
    one = await order_on_wire(http, sim, order_id)
    sim.account.delete_package(correios)
    none = await order_on_wire(http, sim, order_id)

    def shown(order: dict[str, Any] | None) -> tuple[str, str]:
        assert order is not None
        return order["delivery_package_module"], order["delivery_package_nr"]

    assert shown(before) == ("", "")
    assert shown(both) == ("jadlog", jadlog_nr)
    assert shown(one) == ("correios", correios_nr)
    assert shown(none) == ("", "")


async def test_packages_status_history(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """getCourierPackagesStatusHistory lists each package's steps keyed by its
    id; unknown ids are left out; a missing list or one over 100 ids is
    ERROR_PARAMETERS."""
    order_id = sim.account.create_order(taxed_order())
    package_id = sim.account.create_package(order_id, "loggi")
    for status in (2, 11, 4):
        sim.account.set_package_status(package_id, status)

    reply = await call(
        http,
        sim,
        "getCourierPackagesStatusHistory",
        {"package_ids": [package_id, 999]},
    )
    too_many = await call(
        http, sim, "getCourierPackagesStatusHistory", {"package_ids": [1] * 101}
    )
    missing = await call(http, sim, "getCourierPackagesStatusHistory", {})

    history = reply["packages_history"]
    assert list(history) == [str(package_id)]
    steps = history[str(package_id)]
    assert [step["tracking_status"] for step in steps] == [1, 2, 11, 4]
    assert steps[-1]["courier_status_code"] == "out_for_delivery"
    assert set(steps[0]) == {
        "tracking_status_date",
        "courier_status_code",
        "tracking_status",
    }
    assert too_many["error_code"] == "ERROR_PARAMETERS"
    assert missing["error_code"] == "ERROR_PARAMETERS"


async def test_product_lines_added_edited_removed(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Adding, editing and removing a line write types 12 and 13 with object 0
    and 14 with the removed line, and getOrders shows the lines as changed."""
    order_id = sim.account.create_order(taxed_order())
    first = sim.account.orders[order_id].products[0].order_product_id
    extra = OrderLine(
        product_id=3201010,
        name="Glutamina 300g",
        price_brutto=Decimal("79.90"),
        quantity=1,
    )

    added = sim.account.add_product(order_id, extra)
    sim.account.edit_product(order_id, added, quantity=3, price_brutto=Decimal("70"))
    sim.account.remove_product(order_id, first)
    wire = await order_on_wire(http, sim, order_id)

    assert wire is not None
    lines = {p["order_product_id"]: p for p in wire["products"]}
    assert first not in lines
    assert (lines[added]["quantity"], lines[added]["price_brutto"]) == (3, "70.00")
    assert (await logs_of(http, sim, order_id))[1:] == [(12, 0), (13, 0), (14, first)]
    with pytest.raises(KeyError):
        sim.account.edit_product(order_id, first, quantity=1)
    with pytest.raises(ValueError, match="quantity"):
        sim.account.edit_product(order_id, added, quantity=0)


async def test_order_data_edits_dof_and_blacklist(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Delivery and order data edits (types 11, 16) change getOrders; the DOF
    download (2) and blacklisting (15) change no order data."""
    order_id = sim.account.create_order(taxed_order())

    sim.account.edit_delivery(order_id, changes={"delivery_city": "Campinas"})
    sim.account.edit_order_data(order_id, changes={"invoice_nip": "52998224725"})
    before = await order_on_wire(http, sim, order_id)
    sim.account.download_dof(order_id)
    sim.account.blacklist_buyer(order_id)
    sim.account.edit_delivery(order_id)
    after = await order_on_wire(http, sim, order_id)

    assert before is not None and after is not None
    assert before["delivery_city"] == "Campinas"
    assert before["invoice_nip"] == "52998224725"
    assert after["delivery_address"] != before["delivery_address"]
    assert (await logs_of(http, sim, order_id))[1:] == [
        (11, 0),
        (16, 0),
        (2, 0),
        (15, 0),
        (11, 0),
    ]
    assert sim.full_truth()["blacklisted_order_ids"] == [order_id]
    with pytest.raises(ValueError, match="cannot be edited"):
        sim.account.edit_order_data(order_id, changes={"order_id": "1"})


async def test_removed_order_is_gone_but_keeps_documents(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Removal writes type 4 with object 0; getOrders no longer returns the
    order, its invoice stays, and further mutations on it raise KeyError."""
    order_id = sim.account.create_order(taxed_order())
    invoice_id = sim.account.issue_invoice(order_id)

    sim.account.remove_order(order_id)
    invoices = await call(http, sim, "getInvoices", {"order_id": order_id})

    assert await order_on_wire(http, sim, order_id) is None
    assert [i["invoice_id"] for i in invoices["invoices"]] == [invoice_id]
    assert (await logs_of(http, sim, order_id))[-1] == (4, 0)
    assert sim.full_truth()["removed_order_ids"] == [order_id]
    with pytest.raises(KeyError):
        sim.account.change_status(order_id, 1003)
    with pytest.raises(KeyError):
        sim.account.issue_receipt(order_id)


async def test_merge_moves_lines_to_the_survivor(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Merging writes type 5 on the survivor with the merged order as object;
    the merged lines join the survivor under new ids and the merged order is
    gone; an order with documents cannot be merged away."""
    survivor = sim.account.create_order(taxed_order())
    merged = sim.account.create_order(new_order("ana.costa@gmail.com"))
    old_line = sim.account.orders[merged].products[0].order_product_id
    invoiced = sim.account.create_order(taxed_order())
    sim.account.issue_invoice(invoiced)

    sim.account.merge_orders(survivor, merged)
    wire = await order_on_wire(http, sim, survivor)

    assert wire is not None
    assert [p["name"] for p in wire["products"]][-1] == "Creatina 300g"
    assert old_line not in {p["order_product_id"] for p in wire["products"]}
    assert await order_on_wire(http, sim, merged) is None
    assert (await logs_of(http, sim, survivor))[-1] == (5, merged)
    assert sim.full_truth()["merged"] == {merged: survivor}
    with pytest.raises(ValueError, match="documents"):
        sim.account.merge_orders(survivor, invoiced)
    with pytest.raises(KeyError):
        sim.account.merge_orders(survivor, merged)


async def test_split_moves_lines_to_a_new_order(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Splitting writes type 6 on the original with the new order as object;
    the chosen lines move to a new order of the same buyer, which has no
    journal entry of its own; a split must leave a line behind."""
    order_id = sim.account.create_order(taxed_order())
    first, second = (p.order_product_id for p in sim.account.orders[order_id].products)

    new_id = sim.account.split_order(order_id, [second])
    original = await order_on_wire(http, sim, order_id)
    split = await order_on_wire(http, sim, new_id)

    assert original is not None and split is not None
    assert [p["order_product_id"] for p in original["products"]] == [first]
    assert [p["name"] for p in split["products"]] == ["Ômega 3"]
    assert split["products"][0]["order_product_id"] != second
    assert (split["email"], split["invoice_nip"]) == (
        original["email"],
        original["invoice_nip"],
    )
    assert split["payment_done"] == "0.00"
    assert (await logs_of(http, sim, order_id))[-1] == (6, new_id)
    assert await logs_of(http, sim, new_id) == []
    assert sim.full_truth()["splits"] == {new_id: order_id}
    with pytest.raises(ValueError, match="at least one line"):
        sim.account.split_order(order_id, [first])
    with pytest.raises(ValueError, match="not all on"):
        sim.account.split_order(order_id, [first, 1])


async def test_copy_makes_a_new_unpaid_order(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """Copying writes type 17 on the original with the copy as object; the copy
    has the buyer and the lines under new ids, is unpaid, and has no journal
    entry of its own."""
    order_id = sim.account.create_order(taxed_order())
    sim.account.add_payment(order_id, Decimal("330.90"))

    copy_id = sim.account.copy_order(order_id)
    original = await order_on_wire(http, sim, order_id)
    copy = await order_on_wire(http, sim, copy_id)

    assert original is not None and copy is not None
    assert copy["email"] == original["email"]
    assert [p["name"] for p in copy["products"]] == [
        p["name"] for p in original["products"]
    ]
    original_lines = {p["order_product_id"] for p in original["products"]}
    assert original_lines.isdisjoint(p["order_product_id"] for p in copy["products"])
    assert copy["payment_done"] == "0.00"
    assert (await logs_of(http, sim, order_id))[-1] == (17, copy_id)
    assert await logs_of(http, sim, copy_id) == []
    assert sim.full_truth()["copies"] == {copy_id: order_id}


async def test_journal_disorder_shuffles_and_repeats(
    make_sim: SimFactory, http: httpx.AsyncClient
) -> None:
    """With journal disorder on, a page holds the same entries as without (at
    most 100 distinct, from the cursor on) but shuffled, some of them twice."""
    sim = await make_sim(journal_disorder=True, seed=4)
    for _ in range(250):
        sim.account.add_journal_entry(18, FIRST_ORDER_ID, 1003)
    cursor = FIRST_LOG_ID + 20
    expected = [e.log_id for e in sim.account.query_journal(cursor)]

    async def read_page() -> list[int]:
        reply = await call(http, sim, "getJournalList", {"last_log_id": cursor})
        return [log["log_id"] for log in reply["logs"]]

    pages = [await read_page() for _ in range(3)]
    sim.journal_disorder = False
    ordered = await read_page()

    assert len(expected) == 100
    for page in pages:
        assert set(page) == set(expected)
        assert page != sorted(page)
        assert 100 < len(page) < 140
    assert pages[0] != pages[1]
    assert ordered == expected


def test_scenario_covers_every_journal_type() -> None:
    """300 orders of the full mix write every journal type 1..21 (22 too, when
    parcels move), and play without skipping a single action."""
    clock = Clock()
    actions = generate_scenario(1, 300, clock.now() - 3600)
    account = Account(clock)
    player = Player(account)
    for action in actions:
        player.apply(action)

    played = {entry.log_type for entry in account.journal}
    assert scenario_journal_types(actions) >= set(range(1, 22))
    assert played >= set(range(1, 22))
    assert player.skipped == 0


def test_scenario_types_limit_what_is_generated() -> None:
    """types keeps only the named journal types (1 always); limited to 1, 3 and
    18, the orders, payments and moves are those of the full mix, but for the
    moves of orders the full mix merges away before they move."""
    start = 1_750_000_000.0
    limited = generate_scenario(9, 80, start, types={3, 18})
    full = generate_scenario(9, 80, start)
    invoices_only = generate_scenario(9, 80, start, types=[7])

    merged = {a.other for a in full if a.kind == "merge_orders"}
    assert merged
    assert scenario_journal_types(limited) == {1, 3, 18}
    assert scenario_journal_types(invoices_only) == {1, 7}
    core = [a for a in full if a.kind in ("create_order", "payment", "status")]
    assert [a for a in limited if not (a.kind == "status" and a.ref in merged)] == core


def test_full_scenario_is_deterministic() -> None:
    """The same seed plays to the same full truth (documents and links
    included); another seed differs."""
    start = 1_750_000_000.0
    truths = []
    for seed in (21, 21, 22):
        account = Account(Clock())
        play(account, generate_scenario(seed, 150, start, anomalies=True))
        truths.append(account.full_truth())

    assert truths[0] == truths[1]
    assert truths[0] != truths[2]
    assert truths[0]["invoices"] and truths[0]["packages"]


def test_full_truth_leaves_out_what_only_expired_entries_tell() -> None:
    """With observable_from, full truth keeps the links, blacklistings and
    packages of removed orders that a backfill from that moment can still
    learn, and drops those only older journal entries told."""
    account = Account(clock=Clock())
    now = account.clock.now()
    old, recent = now - 5 * DAY, now - DAY
    orders = [account.create_order(taxed_order(), at=old) for _ in range(6)]
    old_copy = account.copy_order(orders[0], at=old + 60)
    new_copy = account.copy_order(orders[1], at=recent)
    account.merge_orders(orders[2], orders[3], at=old + 60)
    account.blacklist_buyer(orders[4], at=old + 60)
    account.blacklist_buyer(orders[5], at=recent)
    kept_package = account.create_package(orders[0], at=old + 60)
    lost_package = account.create_package(orders[1], at=old + 60)
    account.remove_order(orders[1], at=recent)

    everything = account.full_truth()
    observable = account.full_truth(observable_from=now - 3 * DAY)

    assert everything["copies"] == {old_copy: orders[0], new_copy: orders[1]}
    assert observable["copies"] == {new_copy: orders[1]}
    assert everything["merged"] == {orders[3]: orders[2]}
    assert observable["merged"] == {}
    assert everything["blacklisted_order_ids"] == [orders[4], orders[5]]
    assert observable["blacklisted_order_ids"] == [orders[5]]
    assert set(everything["packages"]) == {kept_package, lost_package}
    assert set(observable["packages"]) == {kept_package}
    assert observable["orders"] == everything["orders"]


async def test_full_truth_is_consistent(
    sim: BaseLinkerSimulator, http: httpx.AsyncClient
) -> None:
    """After a full scenario, documents belong to existing or removed orders,
    deleted ids are absent from the live maps, merged, removed and linked
    orders agree with the orders, and /_sim/full_truth serves the same."""
    sim.seed_scenario(seed=1, orders=300)
    full = sim.full_truth()
    orders = set(full["orders"])
    removed = set(full["removed_order_ids"])

    for kind in ("invoices", "receipts", "packages"):
        owners = {document["order_id"] for document in full[kind].values()}
        assert owners <= orders | removed, kind
        deleted = set(full[f"deleted_{kind[:-1]}_ids"])
        assert deleted and deleted.isdisjoint(full[kind]), kind
    assert full["merged"] and set(full["merged"]).isdisjoint(orders | removed)
    assert set(full["merged"].values()) <= orders | removed
    assert full["splits"] and set(full["splits"]) <= orders | removed
    assert full["copies"] and set(full["copies"]) <= orders | removed
    assert removed and removed.isdisjoint(orders)
    assert set(full["blacklisted_order_ids"]) <= orders | removed
    assert all(
        re.fullmatch(r"FV \d+/\d+/\d{4}", i["number"])
        for i in full["invoices"].values()
    )

    served = (
        await http.get(sim.url.replace("connector.php", "_sim/full_truth"))
    ).json()
    assert served["orders"] == {str(k): v for k, v in full["orders"].items()}
    assert served["invoices"] == {str(k): v for k, v in full["invoices"].items()}
    assert served["merged"] == {str(k): v for k, v in full["merged"].items()}
    assert served["removed_order_ids"] == full["removed_order_ids"]


async def test_drift_on_documents_keeps_meaning(
    make_sim: SimFactory, http: httpx.AsyncClient
) -> None:
    """With drift on, invoices, receipts and packages arrive in mixed types that
    still say what the full truth says."""
    sim = await make_sim(drift=True, seed=5)
    sim.seed_scenario(seed=5, orders=60)
    full = sim.full_truth()
    package_id, package = next(iter(full["packages"].items()))

    invoices = await call(http, sim, "getInvoices", {})
    receipts = await call(http, sim, "getReceipts", {})
    packages = await call(
        http, sim, "getOrderPackages", {"order_id": package["order_id"]}
    )

    assert invoices["invoices"] and receipts["receipts"]
    for wire in invoices["invoices"]:
        assert same_meaning(wire, full["invoices"][int(wire["invoice_id"])])
    for wire in receipts["receipts"]:
        assert same_meaning(wire, full["receipts"][int(wire["receipt_id"])])
    types = {type(i["invoice_id"]) for i in invoices["invoices"]}
    assert types == {int, str}
    mine = [p for p in packages["packages"] if int(p["package_id"]) == package_id]
    assert same_meaning(mine[0], sim.account.packages[package_id].to_dict())
