"""Who a client is: a valid CPF/CNPJ first, then the e-mail, then the phone.
Normalised values make the key; the raw values travel along for people to read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from validate_docbr import CNPJ, CPF

from baselinker.models import Order

TaxIdKind = Literal["cpf", "cnpj"]

_CPF = CPF()
_CNPJ = CNPJ()

# A label the buyer may have typed in a free-text field ("CPF: 123...").
_TAX_ID_LABEL = re.compile(r"^\s*(?:cpf|cnpj)\s*[:#-]?\s*", re.IGNORECASE)
# Only the punctuation tax ids are written with; anything else (parentheses,
# "+", letters) means the text is something else, such as a phone number.
_TAX_ID_SHAPE = re.compile(r"[\d.\-/\s]+")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_E164_SHAPE = re.compile(r"\+[1-9]\d{6,14}")
_MOBILE_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
)


@dataclass(frozen=True)
class TaxId:
    """A Brazilian tax number whose check digits are valid."""

    kind: TaxIdKind
    digits: str

    @property
    def key(self) -> str:
        """Identity key such as `cpf:12345678909`."""
        return f"{self.kind}:{self.digits}"


@dataclass(frozen=True)
class ClientIdentity:
    """How a client is recognised, with the normalised and the raw contact data."""

    key: str
    tax_id: TaxId | None
    email: str | None
    phone: str | None
    raw_tax_id: str | None
    raw_email: str | None
    raw_phone: str | None


def parse_tax_id(raw: str | None) -> TaxId | None:
    """Read a CPF (11 digits) or CNPJ (14 digits), formatted or not; None if invalid.

    Sequences of one repeated digit pass the check-digit arithmetic but are not
    real numbers, so they are refused too.
    """
    if raw is None:
        return None
    text = _TAX_ID_LABEL.sub("", raw, count=1).strip()
    if not _TAX_ID_SHAPE.fullmatch(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(set(digits)) == 1:
        return None
    # Check the length here: the CPF validator pads short input with zeros.
    if len(digits) == 11 and _CPF.validate(digits):
        return TaxId("cpf", digits)
    if len(digits) == 14 and _CNPJ.validate(digits):
        return TaxId("cnpj", digits)
    return None


def normalize_email(raw: str | None) -> str | None:
    """Strip and lower-case an e-mail address; None unless it has a plausible shape."""
    if raw is None:
        return None
    email = raw.strip().lower()
    if not _EMAIL_SHAPE.fullmatch(email):
        return None
    return email


def normalize_phone(raw: str | None, default_region: str = "BR") -> str | None:
    """Return a valid phone number in E.164 (`+5511987654321`), else None.

    Numbers without a country code are read as `default_region`; Brazilian
    trunk and carrier prefixes (`0`, `0 15`) are dropped, and an old 8-digit
    mobile number gets its ninth digit.
    """
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        mobile = _with_ninth_digit(number)
        if mobile is None or not phonenumbers.is_valid_number(mobile):
            return None
        number = mobile
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _with_ninth_digit(
    number: phonenumbers.PhoneNumber,
) -> phonenumbers.PhoneNumber | None:
    # Brazil added a leading 9 to every mobile number by 2016; older records
    # still hold 8 digits after the area code. Landlines start with 2-5, so a
    # subscriber number starting with 6-9 can only be such a mobile.
    national = str(number.national_number)
    if number.country_code != 55 or len(national) != 10 or national[2] not in "6789":
        return None
    return phonenumbers.PhoneNumber(
        country_code=55, national_number=int(f"{national[:2]}9{national[2:]}")
    )


def is_mobile(e164: str) -> bool:
    """Tell whether an E.164 number is a mobile one (so it can have WhatsApp)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) in _MOBILE_TYPES


def whatsapp_number(e164: str) -> str:
    """Digits with country code, as the WhatsApp gateway wants (`5511987654321`).

    Raises ValueError when `e164` is not in E.164 form.
    """
    if not _E164_SHAPE.fullmatch(e164):
        message = f"not an E.164 phone number: {e164!r}"
        raise ValueError(message)
    return e164.removeprefix("+")


def identify_client(
    *,
    tax_id_candidates: Iterable[str | None],
    email: str | None,
    phone: str | None,
    default_region: str = "BR",
) -> ClientIdentity | None:
    """Identify a client by the first valid tax id, else e-mail, else phone.

    `raw_tax_id` is the candidate the tax id came from or, when none is valid,
    the first non-blank candidate, so a mistyped CPF stays visible. Returns
    None when there is nothing to recognise the client by.
    """
    candidates = [raw.strip() for raw in tax_id_candidates if raw and raw.strip()]
    tax_id, raw_tax_id = None, candidates[0] if candidates else None
    for candidate in candidates:
        tax_id = parse_tax_id(candidate)
        if tax_id is not None:
            raw_tax_id = candidate
            break

    normal_email = normalize_email(email)
    normal_phone = normalize_phone(phone, default_region)
    key = _identity_key(tax_id, normal_email, normal_phone)
    if key is None:
        return None

    return ClientIdentity(
        key=key,
        tax_id=tax_id,
        email=normal_email,
        phone=normal_phone,
        raw_tax_id=raw_tax_id,
        raw_email=_raw(email),
        raw_phone=_raw(phone),
    )


def identity_for_order(order: Order) -> ClientIdentity | None:
    """Identify an order's buyer from its tax, e-mail and phone fields.

    Tax id candidates, in order: `invoice_nip`, `extra_field_1`,
    `extra_field_2`, then custom extra fields by ascending field id. A phone
    without country code is read in the delivery (else invoice) country.
    """
    custom = sorted(order.custom_extra_fields.items(), key=_field_id_order)
    candidates = [
        order.invoice_nip,
        order.extra_field_1,
        order.extra_field_2,
        *(value for _, value in custom),
    ]
    return identify_client(
        tax_id_candidates=candidates,
        email=order.email,
        phone=order.phone,
        default_region=_order_region(order),
    )


def _identity_key(
    tax_id: TaxId | None, email: str | None, phone: str | None
) -> str | None:
    if tax_id is not None:
        return tax_id.key
    if email is not None:
        return f"email:{email}"
    if phone is not None:
        return f"phone:{phone}"
    return None


def _order_region(order: Order) -> str:
    # A local-format phone is read in the buyer's country, when we know it.
    for code in (order.delivery_country_code, order.invoice_country_code):
        if code.upper() in phonenumbers.SUPPORTED_REGIONS:
            return code.upper()
    return "BR"


def _raw(value: str | None) -> str | None:
    return value if value and value.strip() else None


def _field_id_order(item: tuple[str, str]) -> tuple[int, str]:
    # Numeric ids sort as numbers ("9" before "12"); anything else after them.
    field_id = item[0]
    return (int(field_id), "") if field_id.isdigit() else (1 << 62, field_id)
