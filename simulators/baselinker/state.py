"""In-memory BaseLinker account: clock, orders, documents, journal and rate limit.

Everything here is typed and canonical; the wire's loose types live in drift.py.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import math
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from simulators.baselinker.amounts import CENT, money
from simulators.baselinker.documents import (
    COURIERS,
    EDITABLE_INVOICE_FIELDS,
    TRACKING_LABEL_CREATED,
    DocumentItem,
    Invoice,
    Package,
    Receipt,
)

FIRST_ORDER_ID = 7_000_001
FIRST_ORDER_PRODUCT_ID = 40_000_001
FIRST_LOG_ID = 9_000_001
FIRST_INVOICE_ID = 600_001
FIRST_RECEIPT_ID = 800_001
FIRST_PACKAGE_ID = 300_001

JOURNAL_RETENTION_SECONDS = 3 * 24 * 3600
PAGE_SIZE = 100
RATE_WINDOW_SECONDS = 60.0

LOG_ORDER_CREATED = 1
LOG_DOF_DOWNLOADED = 2
LOG_PAYMENT = 3
LOG_ORDER_REMOVED = 4
LOG_ORDERS_MERGED = 5
LOG_ORDER_SPLIT = 6
LOG_INVOICE_ISSUED = 7
LOG_RECEIPT_ISSUED = 8
LOG_PACKAGE_CREATED = 9
LOG_PACKAGE_DELETED = 10
LOG_DELIVERY_EDITED = 11
LOG_PRODUCT_ADDED = 12
LOG_PRODUCT_EDITED = 13
LOG_PRODUCT_REMOVED = 14
LOG_BUYER_BLACKLISTED = 15
LOG_ORDER_DATA_EDITED = 16
LOG_ORDER_COPIED = 17
LOG_STATUS_CHANGED = 18
LOG_INVOICE_DELETED = 19
LOG_RECEIPT_DELETED = 20
LOG_INVOICE_EDITED = 21
LOG_PACKAGE_STATUS_CHANGED = 22

# Documents are numbered per calendar month of the shop's own time zone.
SHOP_TIMEZONE = ZoneInfo("America/Sao_Paulo")
PAY_TO_SECONDS = 7 * 24 * 3600
DELIVERY_FIELDS = frozenset(
    {
        "delivery_fullname",
        "delivery_company",
        "delivery_address",
        "delivery_city",
        "delivery_state",
        "delivery_postcode",
        "delivery_country_code",
        "phone",
    }
)
ORDER_DATA_FIELDS = frozenset(
    {
        "email",
        "phone",
        "user_login",
        "user_comments",
        "admin_comments",
        "invoice_fullname",
        "invoice_company",
        "invoice_nip",
        "invoice_address",
        "invoice_city",
        "invoice_state",
        "invoice_postcode",
        "invoice_country_code",
        "extra_field_1",
        "extra_field_2",
    }
)


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


@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """getInvoices filters; None means the filter is not applied."""

    invoice_id: int | None = None
    order_id: int | None = None
    id_from: int | None = None
    date_from: int | None = None
    series_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReceiptQuery:
    """getReceipts filters; None means the filter is not applied."""

    series_id: int | None = None
    id_from: int | None = None
    date_from: int | None = None
    date_to: int | None = None


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
        self.invoices: dict[int, Invoice] = {}
        self.receipts: dict[int, Receipt] = {}
        self.packages: dict[int, Package] = {}
        self.deleted_invoice_ids: list[int] = []
        self.deleted_receipt_ids: list[int] = []
        self.deleted_package_ids: list[int] = []
        self.removed_order_ids: list[int] = []
        self.merged: dict[int, int] = {}
        self.splits: dict[int, int] = {}
        self.copies: dict[int, int] = {}
        self.blacklisted_order_ids: list[int] = []
        self._next_order_id = FIRST_ORDER_ID
        self._next_order_product_id = FIRST_ORDER_PRODUCT_ID
        self._next_log_id = FIRST_LOG_ID
        self._next_invoice_id = FIRST_INVOICE_ID
        self._next_receipt_id = FIRST_RECEIPT_ID
        self._next_package_id = FIRST_PACKAGE_ID
        self._invoice_numbers: dict[tuple[int, int], int] = {}
        self._receipt_numbers: dict[tuple[int, int], int] = {}

    @property
    def last_log_id(self) -> int:
        """The newest journal log_id, or 0 when the journal is empty."""
        return self.journal[-1].log_id if self.journal else 0

    def continue_after(
        self,
        *,
        log_id: int = 0,
        order_id: int = 0,
        order_product_id: int = 0,
        invoice_id: int = 0,
        receipt_id: int = 0,
        package_id: int = 0,
    ) -> None:
        """Number new entries, orders, lines and documents after ids seen elsewhere.

        A restarted simulator has an empty memory while a database downstream
        still holds its earlier ids; numbering never moves backwards.
        """
        self._next_log_id = max(self._next_log_id, log_id + 1)
        self._next_order_id = max(self._next_order_id, order_id + 1)
        self._next_order_product_id = max(
            self._next_order_product_id, order_product_id + 1
        )
        self._next_invoice_id = max(self._next_invoice_id, invoice_id + 1)
        self._next_receipt_id = max(self._next_receipt_id, receipt_id + 1)
        self._next_package_id = max(self._next_package_id, package_id + 1)

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
        stored = dataclasses.replace(
            order,
            order_id=order_id,
            products=self._numbered(order.products),
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

    def download_dof(self, order_id: int, at: float | None = None) -> int:
        """The buyer downloads the delivery-options form; no data changes."""
        self._existing(order_id)
        return self.add_journal_entry(LOG_DOF_DOWNLOADED, order_id, 0, at)

    def add_product(
        self, order_id: int, line: OrderLine, at: float | None = None
    ) -> int:
        """Add a copy of `line` to the order; return its new order_product_id."""
        order = self.orders[order_id]
        (added,) = self._numbered([line])
        order.products.append(added)
        self.add_journal_entry(LOG_PRODUCT_ADDED, order_id, 0, at)
        return added.order_product_id

    def edit_product(
        self,
        order_id: int,
        order_product_id: int,
        quantity: int | None = None,
        price_brutto: Decimal | None = None,
        at: float | None = None,
    ) -> int:
        """Change a line's quantity and/or unit price; return the journal log_id."""
        line = _line(self.orders[order_id], order_product_id)
        if quantity is not None:
            if quantity < 1:
                raise ValueError(f"quantity must be at least 1, not {quantity}")
            line.quantity = quantity
        if price_brutto is not None:
            line.price_brutto = price_brutto.quantize(CENT)
        return self.add_journal_entry(LOG_PRODUCT_EDITED, order_id, 0, at)

    def remove_product(
        self, order_id: int, order_product_id: int, at: float | None = None
    ) -> int:
        """Take a line off the order; return the journal log_id."""
        order = self.orders[order_id]
        order.products.remove(_line(order, order_product_id))
        return self.add_journal_entry(
            LOG_PRODUCT_REMOVED, order_id, order_product_id, at
        )

    def edit_delivery(
        self,
        order_id: int,
        at: float | None = None,
        changes: Mapping[str, str] | None = None,
    ) -> int:
        """Change delivery data (address, city, postcode, phone...).

        Without `changes`, the street number and the postcode's last digits
        change, as when a buyer corrects a typo.
        """
        order = self.orders[order_id]
        if changes is None:
            rng = random.Random(f"{order_id}/{self._next_log_id}")
            street = order.delivery_address.split(",")[0] or "Rua Principal"
            prefix = order.delivery_postcode[:5] or "01000"
            changes = {
                "delivery_address": f"{street}, {rng.randint(1, 2999)}",
                "delivery_postcode": f"{prefix}-{rng.randint(0, 999):03d}",
            }
        _apply(order, changes, DELIVERY_FIELDS)
        return self.add_journal_entry(LOG_DELIVERY_EDITED, order_id, 0, at)

    def edit_order_data(
        self,
        order_id: int,
        at: float | None = None,
        changes: Mapping[str, str] | None = None,
    ) -> int:
        """Change buyer or invoice data (email, invoice_nip, comments...).

        Without `changes`, the staff notes a check in admin_comments.
        """
        order = self.orders[order_id]
        if changes is None:
            changes = {"admin_comments": f"Dados conferidos (#{self._next_log_id})"}
        _apply(order, changes, ORDER_DATA_FIELDS)
        return self.add_journal_entry(LOG_ORDER_DATA_EDITED, order_id, 0, at)

    def issue_invoice(self, order_id: int, at: float | None = None) -> int:
        """Invoice the order as it is now, lines plus delivery; return invoice_id.

        Buyer data comes from the invoice block, or the delivery block when the
        order has no invoice name.
        """
        order = self.orders[order_id]
        date = self._date(at)
        sub_id, month, year = _next_number(self._invoice_numbers, date)
        invoiced = bool(order.invoice_fullname or order.invoice_company)
        invoice = Invoice(
            invoice_id=self._next_invoice_id,
            order_id=order_id,
            sub_id=sub_id,
            month=month,
            year=year,
            date_add=date,
            date_sell=order.date_add,
            date_pay_to=(
                date if order.payment_done >= order.total() else date + PAY_TO_SECONDS
            ),
            currency=order.currency,
            payment=order.payment_method,
            invoice_fullname=(
                order.invoice_fullname if invoiced else order.delivery_fullname
            ),
            invoice_company=(
                order.invoice_company if invoiced else order.delivery_company
            ),
            invoice_nip=order.invoice_nip,
            invoice_address=(
                order.invoice_address if invoiced else order.delivery_address
            ),
            invoice_postcode=(
                order.invoice_postcode if invoiced else order.delivery_postcode
            ),
            invoice_city=order.invoice_city if invoiced else order.delivery_city,
            invoice_country_code=(
                order.invoice_country_code or order.delivery_country_code or "BR"
            ),
            items=_document_items(order),
        )
        self._next_invoice_id += 1
        self.invoices[invoice.invoice_id] = invoice
        self.add_journal_entry(LOG_INVOICE_ISSUED, order_id, invoice.invoice_id, date)
        return invoice.invoice_id

    def edit_invoice(
        self,
        invoice_id: int,
        at: float | None = None,
        changes: Mapping[str, str] | None = None,
    ) -> int:
        """Change an invoice's buyer data or additional_info; return the log_id.

        Without `changes`, additional_info gets a note.
        """
        invoice = self.invoices[invoice_id]
        if changes is None:
            changes = {"additional_info": f"Pedido {invoice.order_id}"}
        _apply(invoice, changes, EDITABLE_INVOICE_FIELDS)
        return self.add_journal_entry(
            LOG_INVOICE_EDITED, invoice.order_id, invoice_id, at
        )

    def delete_invoice(self, invoice_id: int, at: float | None = None) -> int:
        """Delete an invoice; getInvoices no longer returns it."""
        invoice = self.invoices.pop(invoice_id)
        self.deleted_invoice_ids.append(invoice_id)
        return self.add_journal_entry(
            LOG_INVOICE_DELETED, invoice.order_id, invoice_id, at
        )

    def issue_receipt(self, order_id: int, at: float | None = None) -> int:
        """Issue a fiscal receipt for the order as it is now; return receipt_id."""
        order = self.orders[order_id]
        date = self._date(at)
        sub_id, month, year = _next_number(self._receipt_numbers, date)
        receipt = Receipt(
            receipt_id=self._next_receipt_id,
            order_id=order_id,
            sub_id=sub_id,
            month=month,
            year=year,
            date_add=date,
            payment_method=order.payment_method,
            nip=order.invoice_nip,
            products=_document_items(order),
        )
        self._next_receipt_id += 1
        self.receipts[receipt.receipt_id] = receipt
        self.add_journal_entry(LOG_RECEIPT_ISSUED, order_id, receipt.receipt_id, date)
        return receipt.receipt_id

    def delete_receipt(self, receipt_id: int, at: float | None = None) -> int:
        """Delete a receipt; getReceipts and getReceipt no longer return it."""
        receipt = self.receipts.pop(receipt_id)
        self.deleted_receipt_ids.append(receipt_id)
        return self.add_journal_entry(
            LOG_RECEIPT_DELETED, receipt.order_id, receipt_id, at
        )

    def create_package(
        self, order_id: int, courier_code: str = "correios", at: float | None = None
    ) -> int:
        """Create a courier package (label printed) for the order; return its id."""
        if courier_code not in COURIERS:
            raise ValueError(f"unknown courier {courier_code!r}")
        self._existing(order_id)
        date = self._date(at)
        package_id = self._next_package_id
        self._next_package_id += 1
        package = Package(
            package_id=package_id,
            order_id=order_id,
            courier_code=courier_code,
            courier_package_nr=COURIERS[courier_code].tracking_number(package_id),
            history=[],
        )
        package.track(date, TRACKING_LABEL_CREATED)
        self.packages[package_id] = package
        self._show_tracking_number(order_id)
        self.add_journal_entry(LOG_PACKAGE_CREATED, order_id, package_id, date)
        return package_id

    def delete_package(self, package_id: int, at: float | None = None) -> int:
        """Delete a package; getOrderPackages no longer returns it."""
        package = self.packages.pop(package_id)
        self.deleted_package_ids.append(package_id)
        self._show_tracking_number(package.order_id)
        return self.add_journal_entry(
            LOG_PACKAGE_DELETED, package.order_id, package_id, at
        )

    def _show_tracking_number(self, order_id: int) -> None:
        """The order shows its newest live package's courier and number, as
        BaseLinker fills `delivery_package_module` and `delivery_package_nr`."""
        order = self.orders.get(order_id)
        if order is None:
            return
        live = [p for p in self.packages.values() if p.order_id == order_id]
        newest = max(live, key=lambda p: p.package_id, default=None)
        order.delivery_package_module = newest.courier_code if newest else ""
        order.delivery_package_nr = newest.courier_package_nr if newest else ""

    def set_package_status(
        self, package_id: int, tracking_status: int, at: float | None = None
    ) -> int:
        """Record the courier's new tracking status; return the journal log_id."""
        package = self.packages[package_id]
        date = self._date(at)
        package.track(date, tracking_status)
        return self.add_journal_entry(
            LOG_PACKAGE_STATUS_CHANGED, package.order_id, package_id, date
        )

    def remove_order(self, order_id: int, at: float | None = None) -> int:
        """Remove the order; getOrders no longer returns it. Documents stay."""
        del self.orders[order_id]
        self.removed_order_ids.append(order_id)
        return self.add_journal_entry(LOG_ORDER_REMOVED, order_id, 0, at)

    def merge_orders(
        self, survivor_id: int, merged_id: int, at: float | None = None
    ) -> int:
        """Merge one order into another; return the journal log_id.

        The merged order's lines join the survivor under new order_product_ids
        and its payments add up; the merged order is gone. An order with live
        invoices, receipts or packages cannot be merged away.
        """
        if survivor_id == merged_id:
            raise ValueError("an order cannot be merged into itself")
        survivor = self.orders[survivor_id]
        merged = self.orders[merged_id]
        if self._has_documents(merged_id):
            raise ValueError(f"order {merged_id} has documents and cannot be merged")
        survivor.products.extend(self._numbered(merged.products))
        survivor.payment_done = (survivor.payment_done + merged.payment_done).quantize(
            CENT
        )
        del self.orders[merged_id]
        self.merged[merged_id] = survivor_id
        return self.add_journal_entry(LOG_ORDERS_MERGED, survivor_id, merged_id, at)

    def split_order(
        self, order_id: int, order_product_ids: list[int], at: float | None = None
    ) -> int:
        """Move some lines to a new order of the same buyer; return its id.

        The lines get new order_product_ids; payment and delivery price stay
        with the original, which keeps at least one line. Only the original
        gets a journal entry.
        """
        order = self.orders[order_id]
        wanted = set(order_product_ids)
        moving = [line for line in order.products if line.order_product_id in wanted]
        if not moving or len(moving) != len(order_product_ids):
            raise ValueError(f"lines {order_product_ids} are not all on {order_id}")
        if len(moving) == len(order.products):
            raise ValueError("a split must leave at least one line on the order")
        date = self._date(at)
        order.products = [line for line in order.products if line not in moving]
        new_id = self._store_new(
            order,
            date,
            products=self._numbered(moving),
            payment_done=Decimal("0.00"),
            delivery_price=Decimal("0.00"),
        )
        self.splits[new_id] = order_id
        self.add_journal_entry(LOG_ORDER_SPLIT, order_id, new_id, date)
        return new_id

    def copy_order(self, order_id: int, at: float | None = None) -> int:
        """Copy the order into a new, unpaid, manual one; return the copy's id.

        Only the original gets a journal entry.
        """
        order = self.orders[order_id]
        date = self._date(at)
        copy_id = self._store_new(
            order,
            date,
            products=self._numbered(order.products),
            payment_done=Decimal("0.00"),
            order_status_id=self.statuses[0].id,
            confirmed=True,
            order_source="personal",
            order_source_id=0,
            order_source_info="",
            shop_order_id=0,
            external_order_id="",
            admin_comments=f"Cópia do pedido {order_id}",
        )
        self.copies[copy_id] = order_id
        self.add_journal_entry(LOG_ORDER_COPIED, order_id, copy_id, date)
        return copy_id

    def blacklist_buyer(self, order_id: int, at: float | None = None) -> int:
        """Put the order's buyer on the blacklist; return the journal log_id."""
        self._existing(order_id)
        if order_id not in self.blacklisted_order_ids:
            self.blacklisted_order_ids.append(order_id)
        return self.add_journal_entry(LOG_BUYER_BLACKLISTED, order_id, 0, at)

    def _existing(self, order_id: int) -> Order:
        """The order, or KeyError when it does not exist (any more)."""
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError(f"no order {order_id}")
        return order

    def _numbered(self, lines: Iterable[OrderLine]) -> list[OrderLine]:
        """Copies of `lines` with fresh order_product_ids."""
        numbered = []
        for line in lines:
            numbered.append(
                dataclasses.replace(line, order_product_id=self._next_order_product_id)
            )
            self._next_order_product_id += 1
        return numbered

    def _store_new(self, source: Order, date: int, **changes: Any) -> int:
        """Store a new order made from `source` with `changes`; no journal entry."""
        order_id = self._next_order_id
        self._next_order_id += 1
        stored = dataclasses.replace(
            source,
            order_id=order_id,
            custom_extra_fields=dict(source.custom_extra_fields),
            date_add=date,
            date_confirmed=date if changes.get("confirmed", source.confirmed) else 0,
            date_in_status=date,
            order_page=_order_page(order_id),
            **changes,
        )
        self.orders[order_id] = stored
        return order_id

    def _has_documents(self, order_id: int) -> bool:
        owners = [invoice.order_id for invoice in self.invoices.values()]
        owners += [receipt.order_id for receipt in self.receipts.values()]
        owners += [package.order_id for package in self.packages.values()]
        return order_id in owners

    def truth(self) -> dict[int, dict[str, Any]]:
        """Canonical snapshot of every existing order, keyed by order_id."""
        return {order_id: order.to_dict() for order_id, order in self.orders.items()}

    def full_truth(self, observable_from: float | None = None) -> dict[str, Any]:
        """Canonical snapshot of orders, documents, packages and order links.

        With `observable_from`, links and blacklistings made only by journal
        entries older than that are left out: the API shows them nowhere else,
        so a shop that catches up by backfill cannot know them. So are the
        packages of removed orders created before then: only their order
        leads to them.
        """
        packages = {i: pkg.truth() for i, pkg in self.packages.items()}
        links = {
            "merged": dict(self.merged),
            "splits": dict(self.splits),
            "copies": dict(self.copies),
            "blacklisted_order_ids": sorted(self.blacklisted_order_ids),
        }
        if observable_from is not None:
            links = self._observable(links, observable_from)
            created = {
                e.object_id: e.date
                for e in self.journal
                if e.log_type == LOG_PACKAGE_CREATED
            }
            packages = {
                i: truth
                for i, truth in packages.items()
                if self.packages[i].order_id in self.orders
                or created.get(i, 0) >= observable_from
            }
        return {
            "orders": self.truth(),
            "invoices": {i: inv.to_dict() for i, inv in self.invoices.items()},
            "deleted_invoice_ids": sorted(self.deleted_invoice_ids),
            "receipts": {i: rec.to_dict() for i, rec in self.receipts.items()},
            "deleted_receipt_ids": sorted(self.deleted_receipt_ids),
            "packages": packages,
            "deleted_package_ids": sorted(self.deleted_package_ids),
            "removed_order_ids": sorted(self.removed_order_ids),
            **links,
        }

    def _observable(self, links: dict[str, Any], since: float) -> dict[str, Any]:
        """`links` without what only expired journal entries tell."""
        kinds = {
            LOG_ORDERS_MERGED: "merged",
            LOG_ORDER_SPLIT: "splits",
            LOG_ORDER_COPIED: "copies",
        }
        seen: dict[str, set[int]] = {kind: set() for kind in kinds.values()}
        blacklisted: set[int] = set()
        for entry in self.journal:
            if entry.date < since:
                continue
            if entry.log_type in kinds:
                seen[kinds[entry.log_type]].add(entry.object_id)
            elif entry.log_type == LOG_BUYER_BLACKLISTED:
                blacklisted.add(entry.order_id)
        observable: dict[str, Any] = {
            kind: {k: v for k, v in links[kind].items() if k in seen[kind]}
            for kind in kinds.values()
        }
        observable["blacklisted_order_ids"] = [
            o for o in links["blacklisted_order_ids"] if o in blacklisted
        ]
        return observable

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

    def query_invoices(self, query: InvoiceQuery) -> list[Invoice]:
        """getInvoices: at most a page of live invoices, ascending by id."""
        found = [
            invoice
            for invoice_id, invoice in sorted(self.invoices.items())
            if (query.invoice_id is None or invoice_id == query.invoice_id)
            and (query.order_id is None or invoice.order_id == query.order_id)
            and (query.id_from is None or invoice_id >= query.id_from)
            and (query.date_from is None or invoice.date_add >= query.date_from)
            and (query.series_id is None or invoice.series_id == query.series_id)
        ]
        return found[:PAGE_SIZE]

    def query_receipts(self, query: ReceiptQuery) -> list[Receipt]:
        """getReceipts: at most a page of live receipts, ascending by id."""
        found = [
            receipt
            for receipt_id, receipt in sorted(self.receipts.items())
            if (query.series_id is None or receipt.series_id == query.series_id)
            and (query.id_from is None or receipt_id >= query.id_from)
            and (query.date_from is None or receipt.date_add >= query.date_from)
            and (query.date_to is None or receipt.date_add <= query.date_to)
        ]
        return found[:PAGE_SIZE]

    def find_receipt(
        self, receipt_id: int | None = None, order_id: int | None = None
    ) -> Receipt | None:
        """getReceipt: the newest live receipt with that id and/or of that order."""
        found = [
            receipt
            for receipt in self.receipts.values()
            if (receipt_id is None or receipt.receipt_id == receipt_id)
            and (order_id is None or receipt.order_id == order_id)
        ]
        return max(found, key=lambda receipt: receipt.receipt_id, default=None)

    def order_packages(self, order_id: int) -> list[Package]:
        """getOrderPackages: the order's live packages, oldest first."""
        return [
            package
            for _, package in sorted(self.packages.items())
            if package.order_id == order_id
        ]


def _log_id(entry: JournalEntry) -> int:
    return entry.log_id


def _line(order: Order, order_product_id: int) -> OrderLine:
    for line in order.products:
        if line.order_product_id == order_product_id:
            return line
    raise KeyError(f"no line {order_product_id} on order {order.order_id}")


def _apply(
    target: Order | Invoice, changes: Mapping[str, str], allowed: frozenset[str]
) -> None:
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"fields that cannot be edited here: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(target, name, value)


def _next_number(
    counters: dict[tuple[int, int], int], date: int
) -> tuple[int, int, int]:
    """(sub_id, month, year) of the next document of `date`'s month."""
    day = datetime.fromtimestamp(date, SHOP_TIMEZONE)
    key = (day.year, day.month)
    counters[key] = counters.get(key, 0) + 1
    return counters[key], day.month, day.year


def _document_items(order: Order) -> list[DocumentItem]:
    """The order's lines, and its delivery when it costs something."""
    items = [
        DocumentItem(
            line.name,
            line.sku,
            line.ean,
            line.price_brutto,
            line.tax_rate,
            line.quantity,
        )
        for line in order.products
    ]
    if order.delivery_price > 0:
        name = order.delivery_method or "Frete"
        items.append(DocumentItem(name, "", "", order.delivery_price, 0.0, 1))
    return items


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
