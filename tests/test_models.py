"""BaseLinker models: every drift form the API sends parses to one strict value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from baselinker.models import (
    EVENT_NAMES,
    Flag,
    JournalEntry,
    LenientInt,
    Money,
    OptionalId,
    OptionalInt,
    Order,
    OrderLine,
    OrderStatus,
    Text,
    Timestamp,
    UnixTime,
    event_name,
    parse_journal,
    parse_order,
    validation_reason,
)

NOV_14_2023 = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def line(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "order_product_id": "77",
        "product_id": "1001",
        "name": "Whey 900g",
        "price_brutto": "19.90",
        "tax_rate": "0",
        "quantity": "1",
    }
    return raw | overrides


def order(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"order_id": "12345", "products": [line()]}
    return raw | overrides


# --- annotated types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(7, 7), ("7", 7), (" 7 ", 7), (7.0, 7), ("7.0", 7), (Decimal(7), 7), (0, 0)],
)
def test_lenient_int_accepts_int_drift(raw: object, expected: int) -> None:
    """Whole numbers sent as int, string or integral float all read the same."""
    assert TypeAdapter(LenientInt).validate_python(raw) == expected


@pytest.mark.parametrize("raw", ["", None, "abc", "7.5", 7.5, True, [], "1e999x"])
def test_lenient_int_rejects_blank_fractional_and_junk(raw: object) -> None:
    """A required whole number refuses blanks, fractions, flags and words."""
    with pytest.raises(ValidationError):
        TypeAdapter(LenientInt).validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("", None), (None, None), ("0", 0), (0, 0), ("12", 12)]
)
def test_optional_int_keeps_zero_and_blanks_to_none(
    raw: object, expected: int | None
) -> None:
    """An optional number is None only when blank; 0 is a real value."""
    assert TypeAdapter(OptionalInt).validate_python(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", None), (None, None), ("0", None), (0, None), ("12", 12), (12, 12)],
)
def test_optional_id_treats_zero_as_none(raw: object, expected: int | None) -> None:
    """A reference id of 0 means "no record", like a blank."""
    assert TypeAdapter(OptionalId).validate_python(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.50", "12.50"),
        ("12.5", "12.50"),
        (12.5, "12.50"),
        (12, "12.00"),
        ("12,50", "12.50"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        (" 7 ", "7.00"),
        ("", "0.00"),
        (None, "0.00"),
        (19.9, "19.90"),
        ("0.005", "0.01"),
        ("-3.10", "-3.10"),
    ],
)
def test_money_reads_every_drift_form_to_cents(raw: object, expected: str) -> None:
    """Money from strings (dot or comma), floats and blanks is exact, in cents."""
    value = TypeAdapter(Money).validate_python(raw)

    assert value == Decimal(expected)
    assert str(value) == expected


@pytest.mark.parametrize("raw", ["n/a", "12.50 BRL", "nan", "Infinity", True, {}])
def test_money_rejects_what_is_not_an_amount(raw: object) -> None:
    """Words, units, NaN, infinities and flags are not money."""
    with pytest.raises(ValidationError):
        TypeAdapter(Money).validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("0", False),
        (1, True),
        (0, False),
        (True, True),
        (False, False),
        ("true", True),
        ("False", False),
        ("", False),
        (None, False),
    ],
)
def test_flag_reads_every_drift_form(raw: object, expected: bool) -> None:
    """Flags arrive as "0"/"1", 0/1, booleans, words or blanks."""
    assert TypeAdapter(Flag).validate_python(raw) is expected


@pytest.mark.parametrize("raw", ["2", 2, "yes", "maybe", 1.5])
def test_flag_rejects_other_values(raw: object) -> None:
    """A value that is not clearly on or off is an error, not a guess."""
    with pytest.raises(ValidationError):
        TypeAdapter(Flag).validate_python(raw)


@pytest.mark.parametrize(
    "raw",
    [1700000000, "1700000000", 1700000000.0, "2023-11-14T22:13:20Z", NOV_14_2023],
)
def test_unix_time_is_utc_aware(raw: object) -> None:
    """Unix seconds as int, string or float (and our own ISO dumps) give UTC."""
    moment = TypeAdapter(UnixTime).validate_python(raw)

    assert moment == NOV_14_2023
    assert moment is not None
    assert moment.tzinfo is UTC


@pytest.mark.parametrize("raw", [0, "0", "", None])
def test_unix_time_zero_or_blank_is_none(raw: object) -> None:
    """BaseLinker writes 0 or "" for a date that has not happened."""
    assert TypeAdapter(UnixTime).validate_python(raw) is None


def test_unix_time_naive_datetime_is_taken_as_utc() -> None:
    """A naive datetime is read as UTC rather than the machine's local zone."""
    moment = TypeAdapter(UnixTime).validate_python(datetime(2023, 11, 14, 22, 13, 20))

    assert moment == NOV_14_2023


@pytest.mark.parametrize("raw", ["yesterday", -5, "99999999999999999999"])
def test_unix_time_rejects_junk(raw: object) -> None:
    """Unreadable, negative or out-of-range dates are errors."""
    with pytest.raises(ValidationError):
        TypeAdapter(UnixTime).validate_python(raw)


@pytest.mark.parametrize("raw", [0, "", None])
def test_timestamp_is_required(raw: object) -> None:
    """A required date refuses the "no date" forms."""
    with pytest.raises(ValidationError):
        TypeAdapter(Timestamp).validate_python(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, ""), ("", ""), ("  Maria  ", "Maria"), (123, "123"), ("SKU-1", "SKU-1")],
)
def test_text_strips_and_fills_none(raw: object, expected: str) -> None:
    """Text is always a stripped string; None is empty and numbers are digits."""
    assert TypeAdapter(Text).validate_python(raw) == expected


def test_text_rejects_structures() -> None:
    """An object where text belongs is an error, not its repr."""
    with pytest.raises(ValidationError):
        TypeAdapter(Text).validate_python({"a": 1})


# --- unparseable values name their field -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"), [("quantity", "abc"), ("price_brutto", "n/a")]
)
def test_unparseable_line_value_names_the_field(field: str, value: str) -> None:
    """A bad line value fails the order with the field's path in the message."""
    with pytest.raises(ValidationError, match=rf"products\.0\.{field}") as caught:
        parse_order(order(products=[line(**{field: value})]))

    assert validation_reason(caught.value).startswith(f"products.0.{field}: ")
    assert value in validation_reason(caught.value)


def test_negative_quantity_is_rejected() -> None:
    """Quantity must be zero or more."""
    with pytest.raises(ValidationError, match=r"products\.0\.quantity"):
        parse_order(order(products=[line(quantity="-1")]))


def test_missing_required_line_fields_are_rejected() -> None:
    """A line without price or quantity fails rather than defaulting to zero."""
    raw = line()
    del raw["price_brutto"], raw["quantity"]

    with pytest.raises(ValidationError) as caught:
        parse_order(order(products=[raw]))

    reason = validation_reason(caught.value)
    assert "products.0.price_brutto" in reason
    assert "products.0.quantity" in reason


def test_validation_reason_is_one_line_per_order() -> None:
    """The ledger's reason lists every failing field on one line."""
    with pytest.raises(ValidationError) as caught:
        parse_order({"order_id": "x", "payment_done": "n/a"})

    reason = validation_reason(caught.value)
    assert "\n" not in reason
    assert reason.startswith("order_id: ")
    assert "payment_done: not a number: 'n/a'" in reason


# --- journal -------------------------------------------------------------------------


def test_journal_entry_parses_string_fields() -> None:
    """Journal fields sent as strings become ints and a UTC date."""
    entry = JournalEntry.model_validate(
        {
            "log_id": "900",
            "log_type": "18",
            "order_id": "12345",
            "object_id": "4",
            "date": "1700000000",
        }
    )

    assert entry == JournalEntry(
        log_id=900, log_type=18, order_id=12345, object_id=4, date=NOV_14_2023
    )
    assert entry.event_name == "status_changed"


@pytest.mark.parametrize("blank", ["", 0, "0", None])
def test_journal_entry_blank_ids_are_none(blank: object) -> None:
    """order_id and object_id of "" or 0 carry nothing and become None."""
    raw = {"log_id": 1, "log_type": 13, "order_id": blank, "object_id": blank}

    entry = JournalEntry.model_validate(raw | {"date": 1700000000})

    assert entry.order_id is None
    assert entry.object_id is None


def test_journal_entry_without_optional_ids() -> None:
    """Absent order_id and object_id are None too."""
    entry = JournalEntry.model_validate({"log_id": 1, "log_type": 1, "date": 1})

    assert entry.order_id is None
    assert entry.object_id is None


def test_event_names_cover_every_documented_type() -> None:
    """Types 1..22 all have a name; an unknown type still gets one."""
    assert sorted(EVENT_NAMES) == list(range(1, 23))
    assert event_name(1) == "order_created"
    assert event_name(22) == "package_status_changed"
    assert event_name(99) == "event_99"


def test_unknown_journal_type_parses() -> None:
    """An unknown log_type is recorded, not a parse failure."""
    (entry,) = parse_journal([{"log_id": 5, "log_type": 40, "date": 1700000000}])

    assert entry.event_name == "event_40"


def test_parse_journal_rejects_a_bad_entry() -> None:
    """A journal entry without a usable log_id is an error, never skipped."""
    with pytest.raises(ValidationError, match="log_id"):
        parse_journal([{"log_id": "", "log_type": 1, "date": 1700000000}])


# --- orders --------------------------------------------------------------------------


def test_order_parses_drifting_fields() -> None:
    """A realistic drifting order reads into strict types."""
    parsed = parse_order(
        order(
            shop_order_id=0,
            order_status_id="3",
            confirmed="1",
            date_add=1700000000,
            date_confirmed="0",
            date_in_status="",
            email=" Maria@Example.com ",
            payment_method_cod="0",
            payment_done="59,70",
            delivery_price=10,
            want_invoice=1,
            invoice_nip="529.982.247-25",
            unexpected_new_field="ignored",
        )
    )

    assert parsed.order_id == 12345
    assert parsed.shop_order_id is None
    assert parsed.order_status_id == 3
    assert parsed.confirmed is True
    assert parsed.date_add == NOV_14_2023
    assert parsed.date_confirmed is None
    assert parsed.date_in_status is None
    assert parsed.email == "Maria@Example.com"
    assert parsed.payment_method_cod is False
    assert parsed.payment_done == Decimal("59.70")
    assert parsed.delivery_price == Decimal("10.00")
    assert parsed.want_invoice is True
    assert parsed.invoice_nip == "529.982.247-25"


def test_order_missing_fields_take_defaults() -> None:
    """Absent optional fields read as empty text, zero money, False and None."""
    parsed = parse_order({"order_id": 1})

    assert parsed.phone == ""
    assert parsed.delivery_price == Decimal("0.00")
    assert parsed.confirmed is False
    assert parsed.date_add is None
    assert parsed.products == []
    assert parsed.custom_extra_fields == {}


def test_order_is_frozen() -> None:
    """Parsed orders cannot be changed by later steps."""
    parsed = parse_order(order())

    with pytest.raises(ValidationError):
        parsed.order_id = 2


def test_order_line_parses_optional_fields() -> None:
    """Line weight, warehouse and bundle ids read blank or 0 as None."""
    parsed = OrderLine.model_validate(
        line(weight="", warehouse_id="0", bundle_id="", storage_id="0", variant_id=0)
    )

    assert parsed.weight is None
    assert parsed.warehouse_id is None
    assert parsed.bundle_id is None
    assert parsed.storage_id == 0
    assert parsed.variant_id == "0"
    assert OrderLine.model_validate(line(weight="0.9")).weight == Decimal("0.9")


def test_tax_rate_keeps_special_negative_codes() -> None:
    """BaseLinker's exempt codes (-1, -0.02) stay exact, not rounded to cents."""
    exempt = OrderLine.model_validate(line(tax_rate="-0.02"))
    blank = OrderLine.model_validate(line(tax_rate=""))

    assert exempt.tax_rate == Decimal("-0.02")
    assert blank.tax_rate == 0


@pytest.mark.parametrize("empty", [[], {}, None, ""])
def test_empty_custom_extra_fields_is_empty_dict(empty: object) -> None:
    """PHP's empty array `[]` (or a blank) means no custom extra fields."""
    assert parse_order(order(custom_extra_fields=empty)).custom_extra_fields == {}


def test_custom_extra_fields_keep_string_keys_and_values() -> None:
    """Custom fields stay keyed by their numeric id as a string, values as text."""
    parsed = parse_order(order(custom_extra_fields={"12": "x", 13: 7, "14": None}))

    assert parsed.custom_extra_fields == {"12": "x", "13": "7", "14": ""}


def test_custom_extra_field_object_is_kept_as_json() -> None:
    """A structured value (a file field) is kept as JSON text, not dropped."""
    parsed = parse_order(
        order(custom_extra_fields={"5": {"url": "https://x/f.pdf", "title": "NF"}})
    )

    assert parsed.custom_extra_fields == {
        "5": '{"title": "NF", "url": "https://x/f.pdf"}'
    }


def test_products_sent_as_object_become_a_list() -> None:
    """A PHP list with gaps arrives as an object; its values are the lines."""
    parsed = parse_order(order(products={"0": line(), "2": line(order_product_id=9)}))

    assert [item.order_product_id for item in parsed.products] == [77, 9]


def test_totals_are_exact_decimals() -> None:
    """Total is sum(price x quantity) + delivery, exact: 3 x 19.90 is 59.70."""
    parsed = parse_order(
        order(
            delivery_price="15.5",
            products=[
                line(price_brutto="19.90", quantity="3"),
                line(order_product_id=78, price_brutto=0.1, quantity=3),
            ],
        )
    )

    assert parsed.products[0].gross_revenue == Decimal("59.70")
    assert parsed.products[1].gross_revenue == Decimal("0.30")
    assert parsed.products_total == Decimal("60.00")
    assert parsed.total == Decimal("75.50")
    assert str(parsed.total) == "75.50"


def test_order_without_products_totals_delivery_only() -> None:
    """An order with no lines totals just its delivery price."""
    parsed = parse_order({"order_id": 1, "delivery_price": "9.99", "products": []})

    assert parsed.products_total == Decimal("0.00")
    assert parsed.total == Decimal("9.99")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"invoice_fullname": "Ana", "delivery_fullname": "Bia"}, "Ana"),
        ({"delivery_fullname": "Bia", "user_login": "bia77"}, "Bia"),
        ({"user_login": "bia77"}, "bia77"),
        ({}, ""),
    ],
)
def test_buyer_name_prefers_invoice_then_delivery_then_login(
    names: dict[str, str], expected: str
) -> None:
    """The buyer's name comes from the invoice, the delivery, then the login."""
    assert parse_order(order(**names)).buyer_name == expected


def test_order_survives_a_json_round_trip() -> None:
    """Dumped to JSON (as Temporal does) and read back, an order is unchanged."""
    parsed = parse_order(
        order(
            date_add=1700000000,
            delivery_price="12.5",
            custom_extra_fields={"3": "x"},
            products=[line(weight="1.25", tax_rate="-0.02")],
        )
    )

    assert Order.model_validate_json(parsed.model_dump_json()) == parsed


def test_order_status_parses() -> None:
    """Status ids may be strings; names and colours are text."""
    status = OrderStatus.model_validate(
        {"id": "7", "name": "Enviado", "name_for_customer": None, "color": "#00FF00"}
    )

    assert status == OrderStatus(
        id=7, name="Enviado", name_for_customer="", color="#00FF00"
    )


@given(
    units=st.integers(min_value=0, max_value=10**12),
    cents=st.integers(min_value=0, max_value=99),
)
def test_money_string_round_trips_exactly(units: int, cents: int) -> None:
    """Any "%d.%02d" amount reads back to exactly the same text."""
    text = f"{units}.{cents:02d}"

    money = TypeAdapter(Money)

    assert str(money.validate_python(text)) == text
    assert str(money.validate_python(text.replace(".", ","))) == text
