"""In-memory BaseLinker account: clock, orders, journal, statuses and rate limit.

Everything here is typed and canonical; the wire's loose types live in drift.py.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

FIRST_ORDER_ID = 7_000_001
FIRST_ORDER_PRODUCT_ID = 40_000_001
FIRST_LOG_ID = 9_000_001

JOURNAL_RETENTION_SECONDS = 3 * 24 * 3600
PAGE_SIZE = 100
RATE_WINDOW_SECONDS = 60.0

LOG_ORDER_CREATED = 1
LOG_PAYMENT = 3
LOG_STATUS_CHANGED = 18

CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """Format an amount the canonical way: two decimals, as a string."""
    return str(value.quantize(CENT))


class Clock:
    """Simulated unix time: real time plus an offset that tests can move."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        """Current simulated unix time in seconds."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move simulated time forward by `seconds` (backwards if negative)."""
        self.offset += seconds

    def set(self, unix: float) -> None:
        """Make simulated time read `unix` now and keep running from there."""
        self.offset = unix - time.time()


@dataclass(frozen=True, slots=True)
class Status:
    """One entry of getOrderStatusList."""

    id: int
    name: str
    name_for_customer: str
    color: str


DEFAULT_STATUSES: tuple[Status, ...] = (
    Status(1001, "Novo", "Pedido recebido", "#3498db"),
    Status(1002, "Aguardando pagamento", "Aguardando pagamento", "#f1c40f"),
    Status(1003, "Pago", "Pagamento aprovado", "#2ecc71"),
    Status(1004, "Em separação", "Pedido em preparação", "#9b59b6"),
    Status(1005, "Enviado", "Pedido enviado", "#e67e22"),
    Status(1006, "Entregue", "Pedido entregue", "#27ae60"),
    Status(1007, "Cancelado", "Pedido cancelado", "#e74c3c"),
)


@dataclass(slots=True)
class OrderLine:
    """One product line of an order; price_brutto is per unit."""

    product_id: int
    name: str
    price_brutto: Decimal
    quantity: int
    sku: str = ""
    ean: str = ""
    storage: str = "db"
    storage_id: int = 0
    order_product_id: int = 0
    variant_id: int = 0
    attributes: str = ""
    location: str = ""
    warehouse_id: int = 0
    auction_id: str = ""
    tax_rate: float = 0.0
    weight: float = 0.0
    bundle_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The line as getOrders returns it, with canonical types."""
        return {
            "storage": self.storage,
            "storage_id": self.storage_id,
            "order_product_id": self.order_product_id,
            "product_id": self.product_id,
            "variant_id": self.variant_id,
            "name": self.name,
            "attributes": self.attributes,
            "sku": self.sku,
            "ean": self.ean,
            "location": self.location,
            "warehouse_id": self.warehouse_id,
            "auction_id": self.auction_id,
            "price_brutto": money(self.price_brutto),
            "tax_rate": self.tax_rate,
            "quantity": self.quantity,
            "weight": self.weight,
            "bundle_id": self.bundle_id,
        }


@dataclass(slots=True)
class Order:
    """An order with every field getOrders returns; empty text is "", never None.

    Build one with order_id 0 and hand it to Account.create_order, which assigns
    ids and dates.
    """

    products: list[OrderLine] = field(default_factory=list)
    order_id: int = 0
    shop_order_id: int = 0
    external_order_id: str = ""
    order_source: str = "shop"
    order_source_id: int = 0
    order_source_info: str = ""
    order_status_id: int = 1001
    confirmed: bool = True
    date_add: int = 0
    date_confirmed: int = 0
    date_in_status: int = 0
    user_login: str = ""
    phone: str = ""
    email: str = ""
    user_comments: str = ""
    admin_comments: str = ""
    currency: str = "BRL"
    payment_method: str = ""
    payment_method_cod: bool = False
    payment_done: Decimal = Decimal("0.00")
    delivery_method: str = ""
    delivery_price: Decimal = Decimal("0.00")
    delivery_package_module: str = ""
    delivery_package_nr: str = ""
    delivery_fullname: str = ""
    delivery_company: str = ""
    delivery_address: str = ""
    delivery_city: str = ""
    delivery_state: str = ""
    delivery_postcode: str = ""
    delivery_country_code: str = "BR"
    delivery_point_id: str = ""
    delivery_point_name: str = ""
    delivery_point_address: str = ""
    delivery_point_postcode: str = ""
    delivery_point_city: str = ""
    invoice_fullname: str = ""
    invoice_company: str = ""
    invoice_nip: str = ""
    invoice_address: str = ""
    invoice_city: str = ""
    invoice_state: str = ""
    invoice_postcode: str = ""
    invoice_country_code: str = ""
    want_invoice: bool = False
    extra_field_1: str = ""
    extra_field_2: str = ""
    custom_extra_fields: dict[str, str] = field(default_factory=dict)
    order_page: str = ""
    pick_state: int = 0
    pack_state: int = 0

    def total(self) -> Decimal:
        """What the buyer owes: lines at unit price times quantity, plus delivery."""
        lines = sum(
            (line.price_brutto * line.quantity for line in self.products), Decimal(0)
        )
        return (lines + self.delivery_price).quantize(CENT)

    def to_dict(self) -> dict[str, Any]:
        """The order as getOrders returns it, with canonical types."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "products":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                value = money(value)
            elif isinstance(value, dict):
                value = dict(value)
            result[f.name] = value
        result["products"] = [line.to_dict() for line in self.products]
        return result


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One getJournalList log; object_id's meaning depends on log_type."""

    log_id: int
    log_type: int
    order_id: int
    object_id: int
    date: int

    def to_dict(self) -> dict[str, Any]:
        """The entry as getJournalList returns it."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """getOrders filters; None means the filter is not applied."""

    order_id: int | None = None
    id_from: int | None = None
    date_from: int | None = None
    date_confirmed_from: int | None = None
    status_id: int | None = None
    filter_email: str | None = None
    get_unconfirmed_orders: bool = False


class Account:
    """One BaseLinker account: orders, their journal and the status list.

    Every mutation writes its journal entry like BaseLinker does, dated `at`
    (unix seconds) or the clock's now.
    """

    def __init__(self, clock: Clock, statuses: Iterable[Status] = DEFAULT_STATUSES):
        self.clock = clock
        self.orders: dict[int, Order] = {}
        self.journal: list[JournalEntry] = []
        self.statuses: list[Status] = list(statuses)
        self._next_order_id = FIRST_ORDER_ID
        self._next_order_product_id = FIRST_ORDER_PRODUCT_ID
        self._next_log_id = FIRST_LOG_ID

    @property
    def last_log_id(self) -> int:
        """The newest journal log_id, or 0 when the journal is empty."""
        return self.journal[-1].log_id if self.journal else 0

    def continue_after(
        self, *, log_id: int = 0, order_id: int = 0, order_product_id: int = 0
    ) -> None:
        """Number new entries, orders and lines after ids already seen elsewhere.

        A restarted simulator has an empty memory while a database downstream
        still holds its earlier ids; numbering never moves backwards.
        """
        self._next_log_id = max(self._next_log_id, log_id + 1)
        self._next_order_id = max(self._next_order_id, order_id + 1)
        self._next_order_product_id = max(
            self._next_order_product_id, order_product_id + 1
        )

    def _date(self, at: float | None) -> int:
        return int(self.clock.now() if at is None else at)

    def add_journal_entry(
        self, log_type: int, order_id: int, object_id: int = 0, at: float | None = None
    ) -> int:
        """Append a raw journal entry (any type, any order id) and return its log_id."""
        entry = JournalEntry(
            self._next_log_id, log_type, order_id, object_id, self._date(at)
        )
        self._next_log_id += 1
        self.journal.append(entry)
        return entry.log_id

    def create_order(self, order: Order, at: float | None = None) -> int:
        """Store a copy of `order` with fresh ids and dates; return its order_id.

        An unconfirmed order keeps date_confirmed 0 until a status change.
        """
        date = self._date(at)
        order_id = self._next_order_id
        self._next_order_id += 1
        lines = []
        for line in order.products:
            lines.append(
                dataclasses.replace(line, order_product_id=self._next_order_product_id)
            )
            self._next_order_product_id += 1
        stored = dataclasses.replace(
            order,
            order_id=order_id,
            products=lines,
            custom_extra_fields=dict(order.custom_extra_fields),
            date_add=date,
            date_confirmed=date if order.confirmed else 0,
            date_in_status=date,
            order_page=order.order_page or _order_page(order_id),
        )
        self.orders[order_id] = stored
        self.add_journal_entry(LOG_ORDER_CREATED, order_id, 0, date)
        return order_id

    def add_payment(
        self, order_id: int, amount: Decimal, at: float | None = None
    ) -> int:
        """Record a payment on the order; return the journal log_id."""
        order = self.orders[order_id]
        order.payment_done = (order.payment_done + amount).quantize(CENT)
        return self.add_journal_entry(LOG_PAYMENT, order_id, 0, at)

    def change_status(
        self, order_id: int, status_id: int, at: float | None = None
    ) -> int:
        """Move the order to `status_id`; return the journal log_id.

        An unconfirmed order becomes confirmed here: in the shop this plays, a
        person confirms an order by moving it on.
        """
        if all(status.id != status_id for status in self.statuses):
            raise ValueError(f"unknown status id {status_id}")
        order = self.orders[order_id]
        date = self._date(at)
        order.order_status_id = status_id
        order.date_in_status = date
        if not order.confirmed:
            order.confirmed = True
            order.date_confirmed = date
        return self.add_journal_entry(LOG_STATUS_CHANGED, order_id, status_id, date)

    def forget_order(self, order_id: int) -> None:
        """Delete the order without a journal entry, as data loss upstream would."""
        del self.orders[order_id]

    def truth(self) -> dict[int, dict[str, Any]]:
        """Canonical snapshot of every existing order, keyed by order_id."""
        return {order_id: order.to_dict() for order_id, order in self.orders.items()}

    def query_journal(
        self,
        last_log_id: int,
        logs_types: list[int] | None = None,
        order_id: int | None = None,
    ) -> list[JournalEntry]:
        """getJournalList: entries from last_log_id on (inclusive), oldest first.

        Only entries dated within the retention window are kept, at most a page.
        """
        oldest = self.clock.now() - JOURNAL_RETENTION_SECONDS
        start = bisect.bisect_left(self.journal, last_log_id, key=_log_id)
        result: list[JournalEntry] = []
        for entry in self.journal[start:]:
            if entry.date < oldest:
                continue
            if logs_types is not None and entry.log_type not in logs_types:
                continue
            if order_id is not None and entry.order_id != order_id:
                continue
            result.append(entry)
            if len(result) == PAGE_SIZE:
                break
        return result

    def query_orders(self, query: OrderQuery) -> list[Order]:
        """getOrders: at most a page of orders matching every given filter.

        With id_from the page is ascending by order_id; with date_confirmed_from
        it is ascending by date_confirmed, then order_id; otherwise by order_id.
        """
        email = query.filter_email.casefold() if query.filter_email else None
        if query.order_id is not None:
            one = self.orders.get(query.order_id)
            candidates = [] if one is None else [one]
        else:
            candidates = list(self.orders.values())
        found = []
        for order in candidates:
            if not order.confirmed and not query.get_unconfirmed_orders:
                continue
            if query.id_from is not None and order.order_id < query.id_from:
                continue
            if query.date_from is not None and order.date_add < query.date_from:
                continue
            if query.date_confirmed_from is not None and (
                not order.confirmed or order.date_confirmed < query.date_confirmed_from
            ):
                continue
            if query.status_id is not None and order.order_status_id != query.status_id:
                continue
            if email is not None and order.email.casefold() != email:
                continue
            found.append(order)
        if query.id_from is None and query.date_confirmed_from is not None:
            found.sort(key=lambda order: (order.date_confirmed, order.order_id))
        else:
            found.sort(key=lambda order: order.order_id)
        return found[:PAGE_SIZE]


def _log_id(entry: JournalEntry) -> int:
    return entry.log_id


def _order_page(order_id: int) -> str:
    digest = hashlib.sha1(str(order_id).encode()).hexdigest()[:12]
    return f"https://orders-e.baselinker.com/{order_id}/{digest}/"


class RateLimiter:
    """Per-token request budget over a rolling window of the simulated clock.

    The request that goes over the budget starts a block; every request until it
    ends is refused, and refused requests do not extend it.
    """

    def __init__(self, clock: Clock, requests_per_minute: int = 100) -> None:
        self.clock = clock
        self.requests_per_minute = requests_per_minute
        self._served: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def check(self, token: str) -> float | None:
        """Admit one request; return None, or the unix time its block ends."""
        now = self.clock.now()
        until = self._blocked_until.get(token)
        if until is not None and now < until:
            return until
        served = self._served.setdefault(token, deque())
        while served and served[0] <= now - RATE_WINDOW_SECONDS:
            served.popleft()
        if len(served) >= self.requests_per_minute:
            # Whole seconds, so the end named in the message is exact: a client
            # that waits until that time is admitted.
            until = float(math.ceil(now + RATE_WINDOW_SECONDS))
            self._blocked_until[token] = until
            served.clear()
            return until
        served.append(now)
        return None
