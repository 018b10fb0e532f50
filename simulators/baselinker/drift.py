"""Type drift: loosen canonical reply values into the mixed types BaseLinker sends.

Ids and dates arrive as int or str, flags as "0"/"1"/0/1/true, money as "12.50"
or 12.5, zero ids sometimes as "", an empty custom_extra_fields as PHP's [].
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

ID_FIELDS = frozenset(
    {
        "id",
        "log_id",
        "log_type",
        "object_id",
        "order_id",
        "order_product_id",
        "order_source_id",
        "order_status_id",
        "product_id",
        "shop_order_id",
        "storage_id",
        "variant_id",
        "warehouse_id",
        "bundle_id",
        "invoice_id",
        "receipt_id",
        "package_id",
        "series_id",
        "sub_id",
        "month",
        "year",
        "correcting_to_invoice_id",
        "tracking_status",
        "tracking_delivery_days",
    }
)
# Ids that mean "none" when zero and then may come as "".
OPTIONAL_ID_FIELDS = frozenset(
    {
        "object_id",
        "order_source_id",
        "shop_order_id",
        "storage_id",
        "variant_id",
        "warehouse_id",
        "bundle_id",
        "correcting_to_invoice_id",
    }
)
DATE_FIELDS = frozenset(
    {
        "date",
        "date_add",
        "date_confirmed",
        "date_in_status",
        "date_sell",
        "date_pay_to",
        "tracking_status_date",
    }
)
FLAG_FIELDS = frozenset(
    {
        "confirmed",
        "payment_method_cod",
        "want_invoice",
        "pick_state",
        "pack_state",
        "correcting_items",
    }
)
MONEY_FIELDS = frozenset(
    {
        "payment_done",
        "delivery_price",
        "price_brutto",
        "price_netto",
        "total_price_brutto",
        "total_price_netto",
    }
)
NUMBER_FIELDS = frozenset({"quantity", "tax_rate", "weight"})


def apply_drift(payload: Any, rng: random.Random) -> Any:
    """Return a copy of a reply body with every known field's type loosened.

    Unknown keys and plain text pass through unchanged; `status` is never touched.
    """
    if isinstance(payload, list):
        return [apply_drift(item, rng) for item in payload]
    if not isinstance(payload, dict):
        return payload
    result: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, dict | list):
            value = apply_drift(value, rng)
            if key == "custom_extra_fields" and not value and rng.random() < 0.5:
                value = []
        else:
            value = _drift_value(key, value, rng)
        result[key] = value
    return result


def _drift_value(key: str, value: Any, rng: random.Random) -> Any:
    if key in FLAG_FIELDS:
        on = bool(value)
        return rng.choice(["1", 1, True] if on else ["0", 0, False])
    if key in MONEY_FIELDS:
        return rng.choice([value, float(Decimal(value))])
    if key in ID_FIELDS or key in DATE_FIELDS:
        if value == 0 and key in OPTIONAL_ID_FIELDS:
            return rng.choice([0, "0", ""])
        return rng.choice([value, str(value)])
    if key in NUMBER_FIELDS:
        if isinstance(value, float) and value.is_integer():
            return rng.choice([value, int(value), str(int(value))])
        return rng.choice([value, str(value)])
    return value
