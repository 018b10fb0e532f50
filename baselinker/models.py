"""Typed models of BaseLinker replies: lenient about the API's type drift at the
edge, strict and immutable inside the pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

CENT = Decimal("0.01")

EVENT_NAMES: dict[int, str] = {
    1: "order_created",
    2: "dof_downloaded",
    3: "payment_received",
    4: "order_removed",
    5: "orders_merged",
    6: "order_split",
    7: "invoice_issued",
    8: "receipt_issued",
    9: "package_created",
    10: "package_deleted",
    11: "delivery_data_edited",
    12: "product_added",
    13: "product_edited",
    14: "product_removed",
    15: "buyer_blacklisted",
    16: "order_data_edited",
    17: "order_copied",
    18: "status_changed",
    19: "invoice_deleted",
    20: "receipt_deleted",
    21: "invoice_data_edited",
    22: "package_status_changed",
}

_TRUE_WORDS = frozenset({"1", "true"})
_FALSE_WORDS = frozenset({"0", "false", ""})


def event_name(log_type: int) -> str:
    """Return the snake_case name of a journal `log_type`, or `event_<n>`."""
    return EVENT_NAMES.get(log_type, f"event_{log_type}")


# --- coercion functions behind the annotated types -------------------------------


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _to_decimal(value: object) -> Decimal:
    """Read a number sent as int, float or string ("12.50", "12,50", "1.234,56")."""
    # bool is an int subclass; a flag where a number belongs is a bug upstream.
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # Through str so 19.9 becomes Decimal("19.9"), not its binary expansion.
        number = Decimal(str(value))
    elif isinstance(value, str):
        number = _decimal_from_text(value)
    else:
        raise ValueError(f"expected a number, got {value!r}")
    if not number.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _decimal_from_text(text: str) -> Decimal:
    cleaned = text.strip().replace(" ", "")
    if "," in cleaned and "." in cleaned:
        # Whichever separator comes last is the decimal one; the other groups.
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None


def _to_int(value: object) -> int:
    number = _to_decimal(value)
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def _lenient_int(value: object) -> int:
    if _is_blank(value):
        raise ValueError("a whole number is required, got nothing")
    return _to_int(value)


def _optional_int(value: object) -> int | None:
    return None if _is_blank(value) else _to_int(value)


def _optional_id(value: object) -> int | None:
    number = _optional_int(value)
    return None if number == 0 else number


def _lenient_decimal(value: object) -> Decimal:
    return Decimal(0) if _is_blank(value) else _to_decimal(value)


def _optional_decimal(value: object) -> Decimal | None:
    return None if _is_blank(value) else _to_decimal(value)


def _money(value: object) -> Decimal:
    return _lenient_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ValueError(f"not a flag: {value!r}")


def _datetime(value: object) -> datetime | None:
    """Read unix seconds (int, float or digits) or an ISO string; 0 means none."""
    if _is_blank(value):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and not _looks_numeric(value):
        # Our own JSON dumps (e.g. through Temporal) carry ISO 8601 text.
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not a unix time or ISO date: {value!r}") from None
    else:
        seconds = _to_decimal(value)
        if seconds == 0:
            return None
        if seconds < 0:
            raise ValueError(f"negative unix time: {value!r}")
        try:
            moment = datetime.fromtimestamp(float(seconds), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"unix time out of range: {value!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _required_datetime(value: object) -> datetime:
    moment = _datetime(value)
    if moment is None:
        raise ValueError(f"a date is required, got {value!r}")
    return moment


def _looks_numeric(text: str) -> bool:
    try:
        _decimal_from_text(text)
    except ValueError:
        return False
    return True


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"expected text, got {value!r}")


def _extra_fields(value: object) -> dict[str, str]:
    # PHP encodes an empty associative array as [] rather than {}.
    if _is_blank(value) or value == []:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected an object of extra fields, got {value!r}")
    return {str(key): _extra_field_value(item) for key, item in value.items()}


def _extra_field_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | None):
        # File or multi-choice fields and odd scalars: keep them as stable JSON.
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return _text(value)


def _item_list(value: object) -> object:
    # Same PHP quirk the other way round: a list with gaps arrives as an object.
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    return value


# --- annotated types ----------------------------------------------------------

LenientInt = Annotated[int, BeforeValidator(_lenient_int)]
"""Whole number from int, "12", 12.0 or "12.0"; blank is an error."""

OptionalInt = Annotated[int | None, BeforeValidator(_optional_int)]
"""Whole number, or None for "" / None; 0 stays 0."""

OptionalId = Annotated[int | None, BeforeValidator(_optional_id)]
"""Reference to another record: "" / None / 0 all mean "none"."""

Quantity = Annotated[int, BeforeValidator(_lenient_int), Field(ge=0)]
"""Non-negative whole number of units."""

LenientDecimal = Annotated[Decimal, BeforeValidator(_lenient_decimal)]
"""Exact number, unrounded; blank is 0."""

OptionalDecimal = Annotated[Decimal | None, BeforeValidator(_optional_decimal)]
"""Exact number, or None when blank."""

Money = Annotated[Decimal, BeforeValidator(_money)]
"""Amount quantised to cents (half up) from "12.50", 12.5, "12,50"; blank is 0."""

Flag = Annotated[bool, BeforeValidator(_flag)]
"""Boolean from "0"/"1", 0/1, true/false (any case); blank or None is False."""

UnixTime = Annotated[datetime | None, BeforeValidator(_datetime)]
"""UTC-aware moment from unix seconds; 0 / "" / None mean none."""

Timestamp = Annotated[datetime, BeforeValidator(_required_datetime)]
"""UTC-aware moment that must be present."""

Text = Annotated[str, BeforeValidator(_text)]
"""Stripped string; None is "" and numbers become their digits."""

ExtraFields = Annotated[dict[str, str], BeforeValidator(_extra_fields)]
"""Custom extra fields keyed by their numeric id as a string."""


# --- models ---------------------------------------------------------------------

_MODEL_CONFIG = ConfigDict(extra="ignore", frozen=True)


class JournalEntry(BaseModel):
    """One event of `getJournalList`."""

    model_config = _MODEL_CONFIG

    log_id: LenientInt
    log_type: LenientInt
    order_id: OptionalId = None
    object_id: OptionalId = None
    date: Timestamp

    @property
    def event_name(self) -> str:
        """Snake_case name of this event's type."""
        return event_name(self.log_type)


class OrderLine(BaseModel):
    """One product line of an order; `price_brutto` is per unit, tax included."""

    model_config = _MODEL_CONFIG

    order_product_id: LenientInt
    product_id: Text = ""
    variant_id: Text = ""
    name: Text = ""
    sku: Text = ""
    ean: Text = ""
    price_brutto: Money
    tax_rate: LenientDecimal = Decimal(0)
    quantity: Quantity
    weight: OptionalDecimal = None
    storage: Text = ""
    storage_id: OptionalInt = None
    attributes: Text = ""
    location: Text = ""
    warehouse_id: OptionalId = None
    bundle_id: OptionalId = None

    @property
    def gross_revenue(self) -> Decimal:
        """Unit price times quantity, in cents."""
        return (self.price_brutto * self.quantity).quantize(CENT, ROUND_HALF_UP)


class Order(BaseModel):
    """One order of `getOrders`, with its product lines."""

    model_config = _MODEL_CONFIG

    order_id: LenientInt
    shop_order_id: OptionalId = None
    external_order_id: Text = ""
    order_source: Text = ""
    order_source_id: OptionalId = None
    order_status_id: OptionalId = None
    confirmed: Flag = False
    date_add: UnixTime = None
    date_confirmed: UnixTime = None
    date_in_status: UnixTime = None
    user_login: Text = ""
    phone: Text = ""
    email: Text = ""
    user_comments: Text = ""
    admin_comments: Text = ""
    currency: Text = ""
    payment_method: Text = ""
    payment_method_cod: Flag = False
    payment_done: Money = Decimal("0.00")
    delivery_method: Text = ""
    delivery_price: Money = Decimal("0.00")
    delivery_fullname: Text = ""
    delivery_company: Text = ""
    delivery_address: Text = ""
    delivery_city: Text = ""
    delivery_state: Text = ""
    delivery_postcode: Text = ""
    delivery_country_code: Text = ""
    invoice_fullname: Text = ""
    invoice_company: Text = ""
    invoice_nip: Text = ""
    invoice_address: Text = ""
    invoice_city: Text = ""
    invoice_state: Text = ""
    invoice_postcode: Text = ""
    invoice_country_code: Text = ""
    want_invoice: Flag = False
    extra_field_1: Text = ""
    extra_field_2: Text = ""
    custom_extra_fields: ExtraFields = Field(default_factory=dict)
    products: Annotated[list[OrderLine], BeforeValidator(_item_list)] = Field(
        default_factory=list
    )

    @property
    def products_total(self) -> Decimal:
        """Sum of every line's gross revenue."""
        return _sum_money(line.gross_revenue for line in self.products)

    @property
    def total(self) -> Decimal:
        """Products plus delivery; BaseLinker itself sends no order total."""
        return self.products_total + self.delivery_price

    @property
    def buyer_name(self) -> str:
        """Invoice name, else delivery name, else the marketplace login."""
        return self.invoice_fullname or self.delivery_fullname or self.user_login


class OrderStatus(BaseModel):
    """One status of `getOrderStatusList`."""

    model_config = _MODEL_CONFIG

    id: LenientInt
    name: Text = ""
    name_for_customer: Text = ""
    color: Text = ""


class Invoice(BaseModel):
    """One invoice of `getInvoices`."""

    model_config = _MODEL_CONFIG

    invoice_id: LenientInt
    order_id: LenientInt
    series_id: OptionalId = None
    type: Text = ""
    number: Text = ""
    date_add: UnixTime = None
    date_sell: UnixTime = None
    date_pay_to: UnixTime = None
    currency: Text = ""
    total_price_brutto: Money = Decimal("0.00")
    total_price_netto: Money = Decimal("0.00")
    invoice_fullname: Text = ""
    invoice_company: Text = ""
    invoice_nip: Text = ""

    @property
    def buyer_name(self) -> str:
        """The company when there is one, else the person."""
        return self.invoice_company or self.invoice_fullname


class ReceiptLine(BaseModel):
    """One product line of a receipt."""

    model_config = _MODEL_CONFIG

    name: Text = ""
    price_brutto: Money = Decimal("0.00")
    quantity: Quantity = 0


class Receipt(BaseModel):
    """One receipt of `getReceipt` / `getReceipts`."""

    model_config = _MODEL_CONFIG

    receipt_id: LenientInt
    order_id: LenientInt
    series_id: OptionalId = None
    receipt_full_nr: Text = ""
    date_add: UnixTime = None
    payment_method: Text = ""
    nip: Text = ""
    products: Annotated[list[ReceiptLine], BeforeValidator(_item_list)] = Field(
        default_factory=list
    )

    @property
    def total(self) -> Decimal:
        """Sum of unit price times quantity."""
        return _sum_money(
            (line.price_brutto * line.quantity).quantize(CENT, ROUND_HALF_UP)
            for line in self.products
        )


class Package(BaseModel):
    """One shipment of `getOrderPackages`."""

    model_config = _MODEL_CONFIG

    package_id: LenientInt
    courier_code: Text = ""
    courier_package_nr: Text = ""
    courier_inner_number: Text = ""
    tracking_status: OptionalInt = None
    tracking_status_date: UnixTime = None
    tracking_url: Text = ""


def _sum_money(amounts: Iterable[Decimal]) -> Decimal:
    return sum(amounts, start=Decimal("0.00"))


def parse_order(raw: dict[str, Any]) -> Order:
    """Parse one order; raises `pydantic.ValidationError` naming the bad field."""
    return Order.model_validate(raw)


def parse_journal(raw: list[dict[str, Any]]) -> list[JournalEntry]:
    """Parse a `logs` list; raises `pydantic.ValidationError` on a bad entry."""
    return [JournalEntry.model_validate(entry) for entry in raw]


def validation_reason(error: ValidationError) -> str:
    """Say in one line which fields failed and why, for the ledger's last error."""
    problems = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"]) or "<root>"
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}")
    return "; ".join(problems)
