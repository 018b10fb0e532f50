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
    generate_scenario,
    play,
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
    """Paid orders paid exactly sum(price x qty) + delivery; most orders are paid;
    lines and quantities stay in range; some clients come back."""
    clock = Clock()
    account = Account(clock)
    play(account, generate_scenario(5, 300, clock.now() - 3600))
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
    """/_sim/seed plays a scenario, /_sim/truth shows it keyed by id, /_sim/clock
    moves time, and a bad body is a 400."""
    base = sim.url.replace("/connector.php", "/_sim")

    seeded = (await http.post(f"{base}/seed", json={"seed": 7, "orders": 20})).json()
    truth = (await http.get(f"{base}/truth")).json()
    before = sim.clock.now()
    moved = (await http.post(f"{base}/clock", json={"advance": 3600})).json()
    bad = await http.post(f"{base}/clock", json={"advance": "soon"})

    assert seeded["orders"] == 20
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
