"""Invoices, receipts and courier packages an account issues for its orders.

Each is typed and canonical here; to_dict gives the shape BaseLinker's API sends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulators.baselinker.amounts import CENT, money

INVOICE_SERIES_ID = 1015
RECEIPT_SERIES_ID = 2030
INVOICE_PREFIX = "FV"
RECEIPT_POSTFIX = "P"
SELLER = (
    "Vida Leve Suplementos e Cosméticos Ltda\n"
    "CNPJ 34.091.277/0001-99\n"
    "Rua Teodoro Sampaio, 1020 - Pinheiros\n"
    "05406-050 São Paulo - SP"
)
ISSUER = "Equipe Vida Leve"
COUNTRY_NAMES = {"BR": "Brasil", "PT": "Portugal", "PL": "Polska"}

TRACKING_STATUSES: dict[int, str] = {
    0: "unknown",
    1: "courier label created",
    2: "shipped",
    3: "not delivered",
    4: "out for delivery",
    5: "delivered",
    6: "return",
    7: "aviso",
    8: "waiting at point",
    9: "lost",
    10: "canceled",
    11: "on the way",
}
TRACKING_DELIVERED = 5
TRACKING_LABEL_CREATED = 1
DAY_SECONDS = 24 * 3600

# Each courier's own event code for a BaseLinker tracking status.
_CORREIOS_CODES = {
    0: "", 1: "PAR", 2: "PO", 3: "BDI", 4: "OEC", 5: "BDE", 6: "BDR",
    7: "LDI", 8: "LDI", 9: "EXT", 10: "CAN", 11: "RO",
}  # fmt: skip
_JADLOG_CODES = {
    0: "", 1: "EMISSAO", 2: "COLETADO", 3: "INSUCESSO", 4: "EM ROTA",
    5: "ENTREGUE", 6: "DEVOLVIDO", 7: "AVISO", 8: "AGUARDANDO RETIRADA",
    9: "EXTRAVIADO", 10: "CANCELADO", 11: "TRANSFERENCIA",
}  # fmt: skip
_LOGGI_CODES = {
    0: "", 1: "label_created", 2: "picked_up", 3: "delivery_failed",
    4: "out_for_delivery", 5: "delivered", 6: "returned", 7: "notice_left",
    8: "awaiting_pickup", 9: "lost", 10: "cancelled", 11: "in_transit",
}  # fmt: skip


def _number_digits(package_id: int, count: int) -> str:
    digest = hashlib.sha256(f"package/{package_id}".encode()).hexdigest()
    return str(int(digest, 16) % 10**count).zfill(count)


def _s10_check_digit(digits: str) -> str:
    """The UPU S10 check digit Correios puts after the eight serial digits."""
    total = sum(
        int(d) * w for d, w in zip(digits, (8, 6, 4, 2, 3, 5, 9, 7), strict=True)
    )
    check = 11 - total % 11
    return "0" if check == 10 else "5" if check == 11 else str(check)


def _correios_number(package_id: int) -> str:
    serial = _number_digits(package_id, 8)
    prefix = ("QB", "OY", "NX", "AA", "BR")[package_id % 5]
    return f"{prefix}{serial}{_s10_check_digit(serial)}BR"


def _jadlog_number(package_id: int) -> str:
    return "1" + _number_digits(package_id, 13)


def _loggi_number(package_id: int) -> str:
    return "LG" + _number_digits(package_id, 10)


@dataclass(frozen=True, slots=True)
class Courier:
    """A carrier the shop ships with: its codes, tracking numbers and page."""

    code: str
    status_codes: dict[int, str]
    url: str
    number: Callable[[int], str]

    def tracking_number(self, package_id: int) -> str:
        """The tracking number the courier hands out for this package."""
        return self.number(package_id)


COURIERS: dict[str, Courier] = {
    "correios": Courier(
        "correios",
        _CORREIOS_CODES,
        "https://rastreamento.correios.com.br/app/index.php?objetos={}",
        _correios_number,
    ),
    "jadlog": Courier(
        "jadlog",
        _JADLOG_CODES,
        "https://www.jadlog.com.br/jadlog/tracking?cte={}",
        _jadlog_number,
    ),
    "loggi": Courier(
        "loggi", _LOGGI_CODES, "https://www.loggi.com/rastreador/{}", _loggi_number
    ),
}


@dataclass(frozen=True, slots=True)
class DocumentItem:
    """One line of an invoice or receipt; price_brutto is per unit."""

    name: str
    sku: str
    ean: str
    price_brutto: Decimal
    tax_rate: float
    quantity: int

    @property
    def price_netto(self) -> Decimal:
        """Unit price without tax, from the tax rate in percent."""
        rate = Decimal(str(self.tax_rate)) / 100
        return (self.price_brutto / (1 + rate)).quantize(CENT)

    def to_dict(self) -> dict[str, Any]:
        """The item as getInvoices returns it."""
        return {
            "name": self.name,
            "sku": self.sku,
            "ean": self.ean,
            "price_brutto": money(self.price_brutto),
            "price_netto": money(self.price_netto),
            "tax_rate": self.tax_rate,
            "quantity": self.quantity,
        }


# Invoice fields edit_invoice may change.
EDITABLE_INVOICE_FIELDS = frozenset(
    {
        "additional_info",
        "invoice_fullname",
        "invoice_company",
        "invoice_nip",
        "invoice_address",
        "invoice_postcode",
        "invoice_city",
    }
)


@dataclass(slots=True)
class Invoice:
    """An issued invoice: buyer data and items copied from the order at issue."""

    invoice_id: int
    order_id: int
    sub_id: int
    month: int
    year: int
    date_add: int
    date_sell: int
    date_pay_to: int
    currency: str
    payment: str
    invoice_fullname: str
    invoice_company: str
    invoice_nip: str
    invoice_address: str
    invoice_postcode: str
    invoice_city: str
    invoice_country_code: str
    items: list[DocumentItem] = field(default_factory=list)
    series_id: int = INVOICE_SERIES_ID
    additional_info: str = ""

    @property
    def number(self) -> str:
        """The printed number, like "FV 12/11/2026"."""
        return f"{INVOICE_PREFIX} {self.sub_id}/{self.month}/{self.year}"

    def to_dict(self) -> dict[str, Any]:
        """The invoice as getInvoices returns it, with canonical types."""
        brutto = sum((i.price_brutto * i.quantity for i in self.items), Decimal(0))
        netto = sum((i.price_netto * i.quantity for i in self.items), Decimal(0))
        code = self.invoice_country_code
        return {
            "invoice_id": self.invoice_id,
            "order_id": self.order_id,
            "series_id": self.series_id,
            "type": "normal",
            "number": self.number,
            "sub_id": self.sub_id,
            "month": self.month,
            "year": self.year,
            "postfix": "",
            "date_add": self.date_add,
            "date_sell": self.date_sell,
            "date_pay_to": self.date_pay_to,
            "currency": self.currency,
            "total_price_brutto": money(brutto),
            "total_price_netto": money(netto),
            "payment": self.payment,
            "additional_info": self.additional_info,
            "invoice_fullname": self.invoice_fullname,
            "invoice_company": self.invoice_company,
            "invoice_nip": self.invoice_nip,
            "invoice_address": self.invoice_address,
            "invoice_postcode": self.invoice_postcode,
            "invoice_city": self.invoice_city,
            "invoice_country": COUNTRY_NAMES.get(code, code),
            "invoice_country_code": code,
            "seller": SELLER,
            "issuer": ISSUER,
            "correcting_to_invoice_id": 0,
            "correcting_reason": "",
            "correcting_items": False,
            "external_invoice_number": "",
            "exchange_currency": "",
            "exchange_rate": "",
            "exchange_date": "",
            "exchange_info": "",
            "items": [item.to_dict() for item in self.items],
        }


@dataclass(slots=True)
class Receipt:
    """An issued fiscal receipt: items copied from the order at issue."""

    receipt_id: int
    order_id: int
    sub_id: int
    month: int
    year: int
    date_add: int
    payment_method: str
    nip: str
    products: list[DocumentItem] = field(default_factory=list)
    series_id: int = RECEIPT_SERIES_ID

    @property
    def receipt_full_nr(self) -> str:
        """The printed number, like "12/11/2026/P"."""
        return f"{self.sub_id}/{self.month}/{self.year}/{RECEIPT_POSTFIX}"

    def to_dict(self) -> dict[str, Any]:
        """The receipt as getReceipts and getReceipt return it."""
        return {
            "receipt_id": self.receipt_id,
            "series_id": self.series_id,
            "receipt_full_nr": self.receipt_full_nr,
            "year": self.year,
            "month": self.month,
            "sub_id": self.sub_id,
            "order_id": self.order_id,
            "date_add": self.date_add,
            "payment_method": self.payment_method,
            "nip": self.nip,
            "products": [
                {
                    "name": item.name,
                    "price_brutto": money(item.price_brutto),
                    "tax_rate": item.tax_rate,
                    "quantity": item.quantity,
                    "sku": item.sku,
                    "ean": item.ean,
                }
                for item in self.products
            ],
        }


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One step of a package's tracking history."""

    date: int
    tracking_status: int
    courier_status_code: str

    def to_dict(self) -> dict[str, Any]:
        """The step as getCourierPackagesStatusHistory returns it."""
        return {
            "tracking_status_date": self.date,
            "courier_status_code": self.courier_status_code,
            "tracking_status": self.tracking_status,
        }


@dataclass(slots=True)
class Package:
    """A courier package of an order, with its tracking history (never empty)."""

    package_id: int
    order_id: int
    courier_code: str
    courier_package_nr: str
    history: list[TrackingEvent]

    @property
    def courier(self) -> Courier:
        """The courier carrying it."""
        return COURIERS[self.courier_code]

    @property
    def tracking_status(self) -> int:
        """The newest tracking status."""
        return self.history[-1].tracking_status

    def track(self, date: int, tracking_status: int) -> None:
        """Record a new tracking status reported by the courier."""
        if tracking_status not in TRACKING_STATUSES:
            raise ValueError(f"unknown tracking status {tracking_status}")
        code = self.courier.status_codes[tracking_status]
        self.history.append(TrackingEvent(date, tracking_status, code))

    def delivery_days(self) -> int:
        """Whole days from the label to delivery; 0 until delivered."""
        if self.tracking_status != TRACKING_DELIVERED:
            return 0
        return (self.history[-1].date - self.history[0].date) // DAY_SECONDS

    def to_dict(self) -> dict[str, Any]:
        """The package as getOrderPackages returns it."""
        return {
            "package_id": self.package_id,
            "courier_package_nr": self.courier_package_nr,
            "courier_inner_number": "",
            "courier_code": self.courier_code,
            "courier_other_name": "",
            "tracking_status_date": self.history[-1].date,
            "tracking_delivery_days": self.delivery_days(),
            "tracking_status": self.tracking_status,
            "package_type": "package",
            "tracking_url": self.courier.url.format(self.courier_package_nr),
        }

    def truth(self) -> dict[str, Any]:
        """What full_truth keeps of the package."""
        return {
            "order_id": self.order_id,
            "courier_code": self.courier_code,
            "courier_package_nr": self.courier_package_nr,
            "tracking_status": self.tracking_status,
        }
