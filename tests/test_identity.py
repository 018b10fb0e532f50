"""Client identity: tax ids, e-mails and phones normalise to one stable key."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from baselinker.models import parse_order
from core.identity import (
    ClientIdentity,
    TaxId,
    identify_client,
    identity_for_order,
    is_mobile,
    normalize_email,
    normalize_phone,
    parse_tax_id,
    whatsapp_number,
)

VALID_CPF = "52998224725"
VALID_CNPJ = "11222333000181"
MOBILE = "+5511987654321"
LANDLINE = "+551134567890"


def cpf_check_digits(base: str) -> str:
    """Compute a CPF's two check digits independently of the library."""
    digits = [int(char) for char in base]
    for _ in range(2):
        weights = range(len(digits) + 1, 1, -1)
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        digits.append(0 if remainder < 2 else 11 - remainder)
    return "".join(str(d) for d in digits[-2:])


# --- tax ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["529.982.247-25", "52998224725", " 529 982 247 25 ", "CPF: 529.982.247-25"]
)
def test_valid_cpf_parses_formatted_or_not(raw: str) -> None:
    """A valid CPF reads the same with or without punctuation or a label."""
    assert parse_tax_id(raw) == TaxId(kind="cpf", digits=VALID_CPF)


@pytest.mark.parametrize("raw", ["11.222.333/0001-81", "11222333000181"])
def test_valid_cnpj_parses_formatted_or_not(raw: str) -> None:
    """A valid CNPJ reads the same with or without punctuation."""
    assert parse_tax_id(raw) == TaxId(kind="cnpj", digits=VALID_CNPJ)


@pytest.mark.parametrize(
    "raw",
    [
        "529.982.247-24",  # wrong check digit
        "52998224735",  # wrong check digit
        "11.222.333/0001-80",  # wrong check digit
        "111.111.111-11",  # repeated digits pass the arithmetic
        "00000000000",
        "11.111.111/1111-11",
        "5299822472",  # 10 digits: the library would pad it with a zero
        "529982247250",  # 12 digits
        "1122233300018",  # 13 digits
        "(11) 98765-4321",  # a phone number is not a tax id
        "529x982x247x25",
        "",
        "   ",
        None,
    ],
)
def test_invalid_tax_ids_are_none(raw: str | None) -> None:
    """Wrong check digits, repeated digits, wrong lengths and junk are refused."""
    assert parse_tax_id(raw) is None


@given(
    base=st.text(alphabet="0123456789", min_size=9, max_size=9),
    separators=st.lists(
        st.sampled_from(["", ".", "-", " ", "/", ". ", " - "]), min_size=3, max_size=3
    ),
    padding=st.sampled_from(["", " ", "  \t"]),
)
def test_any_punctuation_of_a_valid_cpf_gives_the_same_tax_id(
    base: str, separators: list[str], padding: str
) -> None:
    """However a valid CPF is punctuated, it parses to the same TaxId."""
    digits = base + cpf_check_digits(base)
    assume(len(set(digits)) > 1)
    formatted = (
        f"{padding}{digits[:3]}{separators[0]}{digits[3:6]}{separators[1]}"
        f"{digits[6:9]}{separators[2]}{digits[9:]}{padding}"
    )

    assert parse_tax_id(formatted) == TaxId(kind="cpf", digits=digits)


# --- e-mail --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["maria@x.com", " Maria@X.com ", "MARIA@X.COM\n", "\tmaria@x.COM"]
)
def test_email_is_stripped_and_lower_cased(raw: str) -> None:
    """Case and surrounding spaces do not change an e-mail."""
    assert normalize_email(raw) == "maria@x.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "  ",
        None,
        "maria",
        "maria@x",
        "maria@@x.com",
        "ma ria@x.com",
        "@x.com",
        "maria@x.",
        "a@b@c.com",
    ],
)
def test_malformed_email_is_none(raw: str | None) -> None:
    """Addresses without one @, a dotted domain or with spaces are refused."""
    assert normalize_email(raw) is None


# --- phones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "(11) 98765-4321",
        "+55 11 98765-4321",
        "11987654321",
        "5511987654321",
        "+5511987654321",
        "011 98765 4321",  # trunk prefix 0
        "0 15 11 98765 4321",  # trunk prefix 0 and carrier code 15
        "(11) 8765-4321",  # mobile from before the ninth digit
    ],
)
def test_brazilian_mobile_forms_normalise_to_e164(raw: str) -> None:
    """Every usual way of writing a Brazilian mobile gives the same E.164."""
    assert normalize_phone(raw) == MOBILE


@pytest.mark.parametrize("raw", ["(11) 3456-7890", "+55 11 3456-7890", "1134567890"])
def test_landline_normalises_to_e164(raw: str) -> None:
    """Landlines are valid phones too (and keep their eight digits)."""
    assert normalize_phone(raw) == LANDLINE


@pytest.mark.parametrize(
    "raw",
    ["", "  ", None, "123", "abc", "98765-4321", "(11) 1234-5678", "+55 00 98765-4321"],
)
def test_invalid_phone_is_none(raw: str | None) -> None:
    """Too short, letters, no area code or impossible numbers are refused."""
    assert normalize_phone(raw) is None


def test_foreign_number_keeps_its_country() -> None:
    """A number with another country code stays in that country."""
    assert normalize_phone("+1 650 253 0000") == "+16502530000"


def test_default_region_reads_local_numbers() -> None:
    """A local number is read in the region given."""
    assert normalize_phone("912 345 678", default_region="PT") == "+351912345678"


def test_mobile_and_landline_are_told_apart() -> None:
    """Only mobiles count as mobile (they are the ones WhatsApp can reach)."""
    assert is_mobile(MOBILE) is True
    assert is_mobile(LANDLINE) is False
    assert is_mobile("not a phone") is False


def test_whatsapp_number_is_digits_with_country_code() -> None:
    """The WhatsApp gateway gets digits only, country code first."""
    assert whatsapp_number(MOBILE) == "5511987654321"


@pytest.mark.parametrize("raw", ["11987654321", "+55 11 98765-4321", ""])
def test_whatsapp_number_refuses_non_e164(raw: str) -> None:
    """Only a normalised E.164 number can be sent to."""
    with pytest.raises(ValueError, match=r"E\.164"):
        whatsapp_number(raw)


# --- identity ------------------------------------------------------------------------


def test_valid_cpf_wins_over_email_and_phone() -> None:
    """A valid CPF is the key even when e-mail and phone are present."""
    identity = identify_client(
        tax_id_candidates=["529.982.247-25"],
        email=" Maria@X.com",
        phone="(11) 98765-4321",
    )

    assert identity == ClientIdentity(
        key=f"cpf:{VALID_CPF}",
        tax_id=TaxId(kind="cpf", digits=VALID_CPF),
        email="maria@x.com",
        phone=MOBILE,
        raw_tax_id="529.982.247-25",
        raw_email=" Maria@X.com",
        raw_phone="(11) 98765-4321",
    )


def test_cnpj_is_a_key_too() -> None:
    """A company buyer is keyed by its CNPJ."""
    identity = identify_client(
        tax_id_candidates=["11.222.333/0001-81"], email="", phone=""
    )

    assert identity is not None
    assert identity.key == f"cnpj:{VALID_CNPJ}"


def test_first_valid_candidate_wins() -> None:
    """Candidates are tried in order; invalid and blank ones are skipped."""
    identity = identify_client(
        tax_id_candidates=["", "Entregar à tarde", "529.982.247-24", VALID_CNPJ],
        email="maria@x.com",
        phone="",
    )

    assert identity is not None
    assert identity.key == f"cnpj:{VALID_CNPJ}"
    assert identity.raw_tax_id == VALID_CNPJ


def test_invalid_cpf_falls_back_to_email_and_keeps_raw() -> None:
    """A mistyped CPF is not trusted: the e-mail is the key, the CPF kept raw."""
    identity = identify_client(
        tax_id_candidates=["529.982.247-24"], email="maria@x.com", phone=""
    )

    assert identity is not None
    assert identity.key == "email:maria@x.com"
    assert identity.tax_id is None
    assert identity.raw_tax_id == "529.982.247-24"


@pytest.mark.parametrize("email", ["maria@x.com", " MARIA@X.COM ", "Maria@x.Com\n"])
def test_email_variants_give_the_same_key(email: str) -> None:
    """The same address written differently identifies the same client."""
    identity = identify_client(tax_id_candidates=[], email=email, phone="")

    assert identity is not None
    assert identity.key == "email:maria@x.com"
    assert identity.raw_email == email


def test_phone_only_client() -> None:
    """Without tax id or e-mail, the E.164 phone is the key."""
    identity = identify_client(
        tax_id_candidates=[""], email="not-an-email", phone="011 98765 4321"
    )

    assert identity is not None
    assert identity.key == f"phone:{MOBILE}"
    assert identity.email is None
    assert identity.raw_email == "not-an-email"


@pytest.mark.parametrize(
    ("candidates", "email", "phone"),
    [
        ([], "", ""),
        (["", "abc", "111.111.111-11"], "nope", "123"),
        ([None], None, None),
    ],
)
def test_nothing_usable_gives_none(
    candidates: list[str | None], email: str | None, phone: str | None
) -> None:
    """With no valid tax id, e-mail or phone there is no identity."""
    assert (
        identify_client(tax_id_candidates=candidates, email=email, phone=phone) is None
    )


def order(**fields: Any) -> dict[str, Any]:
    return {"order_id": 1, "products": []} | fields


def test_identity_for_order_finds_cpf_in_extra_fields() -> None:
    """An order's CPF may sit in an extra field when invoice_nip is empty."""
    parsed = parse_order(
        order(invoice_nip="", extra_field_2=VALID_CPF, email="ana@x.com")
    )

    identity = identity_for_order(parsed)

    assert identity is not None
    assert identity.key == f"cpf:{VALID_CPF}"
    assert identity.email == "ana@x.com"


def test_identity_for_order_reads_custom_fields_by_field_id() -> None:
    """Custom extra fields are tried by ascending numeric id."""
    parsed = parse_order(
        order(custom_extra_fields={"12": VALID_CNPJ, "9": VALID_CPF, "3": "obs"})
    )

    identity = identity_for_order(parsed)

    assert identity is not None
    assert identity.key == f"cpf:{VALID_CPF}"


def test_identity_for_order_prefers_invoice_nip() -> None:
    """invoice_nip, the field meant for it, is tried before extra fields."""
    parsed = parse_order(
        order(invoice_nip="11.222.333/0001-81", extra_field_1=VALID_CPF)
    )

    identity = identity_for_order(parsed)

    assert identity is not None
    assert identity.key == f"cnpj:{VALID_CNPJ}"


def test_identity_for_order_reads_phone_in_delivery_country() -> None:
    """A local phone on an order shipped abroad is read in that country."""
    parsed = parse_order(order(phone="912 345 678", delivery_country_code="pt"))

    identity = identity_for_order(parsed)

    assert identity is not None
    assert identity.key == "phone:+351912345678"


def test_identity_for_order_without_contact_data_is_none() -> None:
    """An order with no usable contact data has no identity."""
    assert identity_for_order(parse_order(order(email="", phone=""))) is None
