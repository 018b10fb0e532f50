"""Seeded scenarios for a Brazilian supplements and cosmetics shop on BaseLinker.

A scenario is a time-sorted list of actions; play() applies them to an Account.
After the sale an order may get documents, parcels, edits, a merge, a split...
each action writes the journal entry BaseLinker would (see KIND_LOG_TYPES).
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from simulators.baselinker.state import CENT, Account, Clock, Order, OrderLine

ActionKind = Literal[
    "create_order",
    "payment",
    "status",
    "journal_entry",
    "forget_order",
    "download_dof",
    "remove_order",
    "merge_orders",
    "split_order",
    "issue_invoice",
    "issue_receipt",
    "create_package",
    "delete_package",
    "edit_delivery",
    "add_product",
    "edit_product",
    "remove_product",
    "blacklist_buyer",
    "edit_order_data",
    "copy_order",
    "delete_invoice",
    "delete_receipt",
    "edit_invoice",
    "package_status",
]
# The journal type each kind of action writes; a journal_entry writes its own
# log_type and forget_order writes none.
KIND_LOG_TYPES: dict[str, int] = {
    "create_order": 1,
    "download_dof": 2,
    "payment": 3,
    "remove_order": 4,
    "merge_orders": 5,
    "split_order": 6,
    "issue_invoice": 7,
    "issue_receipt": 8,
    "create_package": 9,
    "delete_package": 10,
    "edit_delivery": 11,
    "add_product": 12,
    "edit_product": 13,
    "remove_product": 14,
    "blacklist_buyer": 15,
    "edit_order_data": 16,
    "copy_order": 17,
    "status": 18,
    "delete_invoice": 19,
    "delete_receipt": 20,
    "edit_invoice": 21,
    "package_status": 22,
}

REPEAT_CLIENT_SHARE = 0.35
NO_CONTACT_SHARE = 0.02
COMPANY_SHARE = 0.08
UNCONFIRMED_SHARE = 0.10
PAID_SHARE = 0.80
LIVE_FOLLOW_UP_SHARE = 0.65
LIVE_RECENT_ORDERS = 20
LIVE_FIRST_REF = 1_000_000
# Anomalies: unknown type, orphan entry (order 0), order gone without a trace.
UNKNOWN_LOG_TYPE = 99
ORPHAN_LOG_TYPE = 16
PAID_PATH = (1003, 1004, 1005, 1006)
CANCELLED = 1007

# After the sale, shares of all orders (documents go to paid orders only).
DOF_SHARE = 0.05
LINE_EDIT_SHARE = 0.10
DELIVERY_EDIT_SHARE = 0.10
ORDER_DATA_EDIT_SHARE = 0.05
COPY_SHARE = 0.02
BLACKLIST_SHARE = 0.01
REMOVAL_SHARE = 0.02
MERGE_SHARE = 0.02
INVOICE_SHARE = 0.40
RECEIPT_SHARE = 0.20
PACKAGE_SHARE = 0.50
# Only orders of two lines or more (about 60%) can be split; 2% of all orders.
SPLIT_SHARE_OF_MULTI_LINE = 0.02 / 0.6
# Shares of the documents issued.
INVOICE_EDIT_SHARE = 0.20
DOCUMENT_DELETE_SHARE = 0.05
PACKAGE_REDO_SHARE = 0.6
PACKAGE_UNTRACKED_SHARE = 0.2
# A second order of the same buyer this recent may be merged into the first.
MERGE_WINDOW_SECONDS = 2 * 24 * 3600
COURIER_WEIGHTS = {"correios": 6, "jadlog": 2, "loggi": 2}
# Tracking status paths a parcel takes, with how often each happens.
TRACKING_PATHS: tuple[tuple[tuple[int, ...], int], ...] = (
    ((2, 11, 4, 5), 75),
    ((2, 11, 4, 3, 4, 5), 10),
    ((2, 11, 8, 5), 7),
    ((2, 11, 3, 6), 4),
    ((2, 9), 2),
    ((10,), 2),
)
INVOICE_NOTES = (
    "Nota referente ao pedido {}",
    "Pedido {} - entrega única",
    "Documento emitido conforme pedido {}",
)
ADDRESS_COMPLEMENTS = ("Casa 2", "Fundos", "Bloco B", "Sala 304", "Loja 1")


@dataclass(frozen=True, slots=True)
class Product:
    """A catalog item the shop sells."""

    product_id: int
    sku: str
    ean: str
    name: str
    price: Decimal
    weight: float
    location: str


@dataclass(frozen=True, slots=True)
class Action:
    """One thing that happens to the account at unix time `at`.

    `ref` names a scenario order by its index, so a scenario can be played into
    an account that already has orders; None means order_id 0.
    """

    at: float
    kind: ActionKind
    ref: int | None = None
    order: Order | None = None
    amount: Decimal = Decimal("0.00")
    status_id: int = 0
    log_type: int = 0
    object_id: int = 0
    # merge_orders: the ref of the order merged into `ref`.
    other: int | None = None
    # A line by its place in the scenario order: the draft's lines first, then
    # the added ones; line_nos for a split.
    line_no: int = 0
    line_nos: tuple[int, ...] = ()
    line: OrderLine | None = None
    quantity: int | None = None
    price_brutto: Decimal | None = None
    # An invoice, receipt or package by its scenario-wide number.
    doc: int = 0
    changes: dict[str, str] = field(default_factory=dict)
    courier_code: str = ""
    tracking_status: int = 0

    @property
    def log_type_written(self) -> int | None:
        """The journal type this action writes, None for forget_order."""
        if self.kind == "journal_entry":
            return self.log_type
        return KIND_LOG_TYPES.get(self.kind)


@dataclass(slots=True)
class Client:
    """A buyer as the shop knows them; each order writes their data its own way."""

    first_name: str
    last_name: str
    email: str
    ddd: str
    phone: str
    mobile: bool
    cpf: str
    company: str
    cnpj: str
    city: tuple[str, str, str, int, int]
    address: str
    postcode: str
    anonymous: bool = False
    orders: int = field(default=0)

    @property
    def full_name(self) -> str:
        """Name as printed on a label."""
        return f"{self.first_name} {self.last_name}"


FIRST_NAMES = (
    "João", "Maria", "José", "Ana", "Conceição", "Ângela", "Antônio", "Luíza",
    "Sérgio", "Fábio", "Márcia", "Lúcia", "Inês", "Thiago", "Gabriel", "Letícia",
    "Patrícia", "Débora", "Cláudia", "Vitória", "Júlio", "André", "Mônica",
    "Íris", "Beatriz", "Camila", "Rafael", "Lucas", "Fernanda", "Joaquim",
    "Raimundo", "Francisca", "Benedito", "Aparecida", "Tânia", "Caio",
)  # fmt: skip
LAST_NAMES = (
    "Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Ferreira",
    "Costa", "Rodrigues", "Almeida", "Nascimento", "Araújo", "Gonçalves",
    "Ribeiro", "Carvalho", "Gomes", "Martins", "Rocha", "da Conceição",
    "Magalhães", "Simões", "Brandão", "Assunção", "de Jesus", "Guimarães",
)  # fmt: skip
# City, state, area code (DDD), CEP range as its first five digits.
CITIES: tuple[tuple[str, str, str, int, int], ...] = (
    ("São Paulo", "SP", "11", 1000, 5999),
    ("Rio de Janeiro", "RJ", "21", 20000, 23799),
    ("Belo Horizonte", "MG", "31", 30000, 31999),
    ("Salvador", "BA", "71", 40000, 42599),
    ("Fortaleza", "CE", "85", 60000, 61599),
    ("Curitiba", "PR", "41", 80000, 82999),
    ("Porto Alegre", "RS", "51", 90000, 91999),
    ("Recife", "PE", "81", 50000, 52999),
    ("Brasília", "DF", "61", 70000, 72799),
    ("Goiânia", "GO", "62", 74000, 74899),
    ("Manaus", "AM", "92", 69000, 69099),
    ("Belém", "PA", "91", 66000, 66999),
    ("Florianópolis", "SC", "48", 88000, 88099),
    ("Vitória", "ES", "27", 29000, 29099),
    ("Campinas", "SP", "19", 13000, 13139),
    ("Niterói", "RJ", "21", 24000, 24399),
    ("São Luís", "MA", "98", 65000, 65109),
    ("Maceió", "AL", "82", 57000, 57099),
    ("João Pessoa", "PB", "83", 58000, 58099),
    ("Ribeirão Preto", "SP", "16", 14000, 14114),
)
STREETS = (
    "Rua Augusta", "Avenida Paulista", "Rua das Flores", "Travessa São José",
    "Avenida Brasil", "Rua Sete de Setembro", "Rua Dom Pedro II",
    "Avenida Getúlio Vargas", "Rua XV de Novembro", "Rua da Consolação",
    "Alameda Santos", "Rua Barão de Itapetininga", "Avenida Afonso Pena",
)  # fmt: skip
NEIGHBOURHOODS = (
    "Centro", "Jardim América", "Vila Mariana", "Boa Viagem", "Savassi",
    "Batel", "Moinhos de Vento", "Meireles", "Copacabana", "Pituba",
)  # fmt: skip
EMAIL_DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "hotmail.com", "outlook.com",
    "yahoo.com.br", "uol.com.br", "bol.com.br", "terra.com.br",
)  # fmt: skip
COMPANY_SUFFIXES = ("Ltda", "ME", "EIRELI", "S.A.")
COMPANY_WORDS = (
    "Academia Corpo Ativo", "Farmácia Bem Estar", "Studio Beleza Pura",
    "Empório Natural", "Clínica Vida Leve", "Mercadinho São Jorge",
)  # fmt: skip

# name, price in BRL, weight in kg
_CATALOG_ROWS: tuple[tuple[str, str, float], ...] = (
    ("Whey Protein Concentrado 900g Baunilha", "139.90", 1.0),
    ("Whey Protein Isolado 900g Chocolate", "189.90", 1.0),
    ("Creatina Monohidratada 300g", "99.90", 0.35),
    ("Colágeno Hidrolisado 250g Limão", "69.90", 0.3),
    ("Ômega 3 1000mg 120 cápsulas", "59.90", 0.2),
    ("Vitamina D3 2000UI 60 cápsulas", "29.90", 0.08),
    ("Multivitamínico A-Z 90 cápsulas", "44.90", 0.12),
    ("BCAA 2:1:1 120 cápsulas", "54.90", 0.15),
    ("Pré-Treino Explosão 300g Frutas Vermelhas", "119.90", 0.35),
    ("Glutamina 300g", "79.90", 0.35),
    ("Cafeína 200mg 60 cápsulas", "24.90", 0.06),
    ("Magnésio Dimalato 60 cápsulas", "39.90", 0.1),
    ("Vitamina C 1000mg 60 cápsulas", "27.90", 0.08),
    ("Biotina 45 cápsulas", "34.90", 0.06),
    ("Termogênico Queima Total 60 cápsulas", "64.90", 0.1),
    ("Zinco Quelato 60 cápsulas", "22.90", 0.06),
    ("Coenzima Q10 100mg 60 cápsulas", "89.90", 0.08),
    ("Própolis Verde Extrato 30ml", "32.90", 0.09),
    ("Spirulina 500mg 120 tabletes", "42.90", 0.12),
    ("Albumina 500g", "49.90", 0.55),
    ("Barra de Proteína Chocolate caixa com 12", "84.90", 0.75),
    ("Pasta de Amendoim Integral 1kg", "36.90", 1.05),
    ("Sérum Vitamina C 30ml", "79.90", 0.07),
    ("Protetor Solar Facial FPS 50 60g", "59.90", 0.09),
    ("Hidratante Facial Ácido Hialurônico 50g", "69.90", 0.08),
    ("Shampoo Antiqueda 300ml", "39.90", 0.34),
    ("Condicionador Reconstrução 300ml", "39.90", 0.34),
    ("Máscara Capilar Hidratação 500g", "54.90", 0.55),
    ("Óleo de Argan 60ml", "44.90", 0.09),
    ("Creme para Mãos Karité 75g", "24.90", 0.09),
    ("Água Micelar 200ml", "34.90", 0.23),
    ("Sabonete Facial Argila Verde 150ml", "29.90", 0.18),
    ("Esfoliante Corporal Café 200g", "37.90", 0.23),
    ("Desodorante Natural Sem Alumínio 55ml", "32.90", 0.08),
    ("Batom Matte Rosa Nude", "27.90", 0.03),
    ("Base Líquida FPS 15 30ml", "64.90", 0.06),
    ("Máscara de Cílios à Prova d'Água", "49.90", 0.03),
    ("Tônico Facial Niacinamida 120ml", "46.90", 0.14),
    ("Gel Redutor de Medidas 250g", "58.90", 0.28),
    ("Kit Skincare Rotina Completa", "229.90", 0.6),
)
SUPPLEMENT_ROWS = 22

PAYMENT_METHODS = (
    ("PIX", False), ("PIX", False), ("PIX", False), ("Cartão de crédito", False),
    ("Cartão de crédito", False), ("Boleto bancário", False),
    ("Pagamento na entrega", True),
)  # fmt: skip
# delivery method, lowest and highest price in BRL
SHOP_DELIVERY = (
    ("Correios SEDEX", 22, 49),
    ("Correios PAC", 14, 29),
    ("Jadlog .Package", 16, 35),
    ("Loggi", 9, 19),
    ("Frete grátis", 0, 0),
    ("Retirada na loja", 0, 0),
)
SOURCES = (
    ("shop", 1024, "Loja Virtual"),
    ("mercadolivre", 2051, "Mercado Livre"),
    ("amazon", 3077, "Amazon BR"),
    ("personal", 0, ""),
    ("allegro", 4010, "Allegro"),
)
SOURCE_WEIGHTS = (55, 20, 10, 10, 5)
USER_COMMENTS = (
    "Por favor, entregar na portaria.",
    "Deixar com o vizinho do 12 se não tiver ninguém.",
    "É presente, não mandar nota dentro da caixa!",
    "Entregar após as 18h.",
    "Quero trocar o sabor para chocolate, se possível.",
)
ORIGINS = ("Instagram", "Google", "Indicação", "TikTok", "WhatsApp")
PICKUP_POINT = ("LOJA-SP-01", "Loja Pinheiros", "Rua dos Pinheiros, 870", "05422-001")


def _ean13(base: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(base))
    return base + str((10 - total % 10) % 10)


def _build_catalog() -> tuple[Product, ...]:
    products = []
    for index, (name, price, weight) in enumerate(_CATALOG_ROWS):
        supplement = index < SUPPLEMENT_ROWS
        products.append(
            Product(
                product_id=3_201_001 + index,
                sku=f"{'SUP' if supplement else 'COS'}-{index + 1:03d}",
                ean=_ean13(f"7891234{index + 1:05d}"),
                name=name,
                price=Decimal(price),
                weight=weight,
                location=f"{'A' if supplement else 'B'}-{index // 8 + 1:02d}-"
                f"{index % 8 + 1:02d}",
            )
        )
    return tuple(products)


CATALOG: tuple[Product, ...] = _build_catalog()


def cpf_check_digits(base: str) -> str:
    """The two check digits of a CPF whose first nine digits are `base`."""
    digits = [int(d) for d in base]
    for _ in range(2):
        weight = len(digits) + 1
        remainder = sum(d * (weight - i) for i, d in enumerate(digits)) % 11
        digits.append(0 if remainder < 2 else 11 - remainder)
    return f"{digits[-2]}{digits[-1]}"


def cnpj_check_digits(base: str) -> str:
    """The two check digits of a CNPJ whose first twelve digits are `base`."""
    digits = [int(d) for d in base]
    for _ in range(2):
        weights = [*range(len(digits) - 7, 1, -1), *range(9, 1, -1)]
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        digits.append(0 if remainder < 2 else 11 - remainder)
    return f"{digits[-2]}{digits[-1]}"


def _format_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"


def _format_cnpj(cnpj: str) -> str:
    return f"{cnpj[:2]}.{cnpj[2:5]}.{cnpj[5:8]}/{cnpj[8:12]}-{cnpj[12:]}"


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


class ClientPool:
    """The shop's buyers; about a third of orders come from someone seen before."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clients: list[Client] = []
        self._emails: set[str] = set()

    def next_client(self) -> Client:
        """The buyer of the next order: a returning client, a new one, or nobody."""
        rng = self.rng
        if self.clients and rng.random() < REPEAT_CLIENT_SHARE:
            client = rng.choice(self.clients)
        else:
            client = self._new_client()
            if rng.random() < NO_CONTACT_SHARE:
                client.anonymous = True
                client.company = client.cnpj = ""
            else:
                self.clients.append(client)
        client.orders += 1
        return client

    def _new_client(self) -> Client:
        rng = self.rng
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        city = rng.choice(CITIES)
        mobile = rng.random() < 0.9
        phone = (
            "9" + _digits(rng, 8) if mobile else rng.choice("2345") + _digits(rng, 7)
        )
        cpf = ""
        while not cpf or len(set(cpf)) == 1:
            base = _digits(rng, 9)
            cpf = base + cpf_check_digits(base)
        company = cnpj = ""
        if rng.random() < COMPANY_SHARE:
            company = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"
            base = _digits(rng, 8) + "0001"
            cnpj = base + cnpj_check_digits(base)
        cep = rng.randint(city[3], city[4])
        return Client(
            first_name=first,
            last_name=last,
            email=self._unique_email(first, last),
            ddd=city[2],
            phone=phone,
            mobile=mobile,
            cpf=cpf,
            company=company,
            cnpj=cnpj,
            city=city,
            address=f"{rng.choice(STREETS)}, {rng.randint(1, 3000)}"
            + (f" - Apto {rng.randint(11, 184)}" if rng.random() < 0.4 else "")
            + f" - {rng.choice(NEIGHBOURHOODS)}",
            postcode=f"{cep:05d}-{rng.randint(0, 999):03d}",
        )

    def _unique_email(self, first: str, last: str) -> str:
        rng = self.rng
        first_part = _ascii(first).lower()
        last_part = _ascii(last).lower().replace(" ", "")
        local = rng.choice(
            [
                f"{first_part}.{last_part}",
                f"{first_part}{last_part}",
                f"{first_part}_{last_part}{rng.randint(1, 99)}",
            ]
        )
        email = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
        while email in self._emails:
            email = f"{local}{rng.randint(1, 999)}@{email.split('@')[1]}"
        self._emails.add(email)
        return email


def _email_as_typed(rng: random.Random, client: Client) -> str:
    if client.orders == 1 or rng.random() < 0.5:
        return client.email
    local, domain = client.email.split("@")
    return rng.choice(
        [
            ".".join(p.capitalize() for p in local.split("."))
            + "@"
            + domain.capitalize(),
            f" {client.email} ",
            client.email.upper(),
            f"{client.email} ",
        ]
    )


def _phone_as_typed(rng: random.Random, client: Client) -> str:
    if rng.random() < 0.05:
        return ""
    ddd, number = client.ddd, client.phone
    head, tail = number[:-4], number[-4:]
    if not client.mobile:
        return rng.choice([f"({ddd}) {head}-{tail}", f"{ddd}{number}"])
    return rng.choice(
        [
            f"({ddd}) {head}-{tail}",
            f"+55 {ddd} {head}-{tail}",
            f"{ddd}{number}",
            f"55{ddd}{number}",
            f"0{ddd} {head} {tail}",
        ]
    )


def _tax_ids(rng: random.Random, client: Client) -> tuple[str, str]:
    """(invoice_nip, extra_field_1) as this order happens to carry them."""
    if client.cnpj:
        cnpj = client.cnpj
        return (_format_cnpj(cnpj) if rng.random() < 0.7 else cnpj), ""
    roll = rng.random()
    cpf = client.cpf
    if roll < 0.50:
        return _format_cpf(cpf), ""
    if roll < 0.65:
        return cpf, ""
    if roll < 0.72:
        wrong = cpf[:-1] + str((int(cpf[-1]) + rng.randint(1, 9)) % 10)
        return rng.choice([_format_cpf(wrong), wrong]), ""
    if roll < 0.80:
        return "", _format_cpf(cpf)
    return "", ""


def _line_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.85:
        return rng.choices((1, 2, 3, 4), weights=(45, 28, 16, 11))[0]
    if roll < 0.97:
        return rng.randint(5, 10)
    return rng.randint(11, 30)


def _lines(rng: random.Random, source: str) -> list[OrderLine]:
    markup = Decimal("1.10") if source in ("mercadolivre", "amazon") else Decimal(1)
    lines: list[OrderLine] = []
    for _ in range(_line_count(rng)):
        if lines and rng.random() < 0.05:
            product = next(p for p in CATALOG if p.product_id == lines[-1].product_id)
        else:
            product = rng.choice(CATALOG)
        lines.append(
            OrderLine(
                product_id=product.product_id,
                name=product.name,
                price_brutto=(product.price * markup).quantize(CENT),
                quantity=rng.choices((1, 2, 3, 4, 5), weights=(60, 22, 9, 5, 4))[0],
                sku=product.sku,
                ean=product.ean,
                location=product.location,
                warehouse_id=rng.choice((206, 207)),
                auction_id=f"MLB{_digits(rng, 10)}" if source == "mercadolivre" else "",
                weight=product.weight,
            )
        )
    return lines


def draft_order(rng: random.Random, client: Client, ref: int) -> Order:
    """A new order from `client`, before the account gives it ids and dates."""
    source, source_id, source_info = rng.choices(SOURCES, weights=SOURCE_WEIGHTS)[0]
    order = Order(
        products=_lines(rng, source),
        order_source=source,
        order_source_id=source_id,
        order_source_info=source_info,
        order_status_id=rng.choice((1001, 1002)),
        confirmed=rng.random() >= UNCONFIRMED_SHARE,
        delivery_fullname=client.full_name,
        delivery_address=client.address,
        delivery_city=client.city[0],
        delivery_state=client.city[1],
        delivery_postcode=client.postcode,
    )
    _set_channel(rng, order, client, ref)
    _set_delivery(rng, order)
    if not client.anonymous:
        order.email = _email_as_typed(rng, client)
        order.phone = _phone_as_typed(rng, client)
        order.invoice_nip, order.extra_field_1 = _tax_ids(rng, client)
    if client.company:
        order.invoice_company = client.company
        order.delivery_company = client.company if rng.random() < 0.5 else ""
        order.want_invoice = True
    elif order.invoice_nip:
        order.want_invoice = rng.random() < 0.2
    if order.want_invoice or order.invoice_nip:
        order.invoice_fullname = client.full_name
        order.invoice_address = client.address
        order.invoice_city = client.city[0]
        order.invoice_state = client.city[1]
        order.invoice_postcode = client.postcode
        order.invoice_country_code = "BR"
    _set_notes(rng, order)
    return order


def _set_channel(rng: random.Random, order: Order, client: Client, ref: int) -> None:
    nickname = _ascii(client.first_name + client.last_name).replace(" ", "")
    method, cod = rng.choice(PAYMENT_METHODS)
    order.payment_method, order.payment_method_cod = method, cod
    if order.order_source == "shop":
        order.shop_order_id = 100_000 + ref
        order.external_order_id = str(order.shop_order_id)
    elif order.order_source == "mercadolivre":
        order.external_order_id = "2000" + _digits(rng, 12)
        order.user_login = f"{nickname.upper()}{rng.randint(10, 9999)}"
        order.payment_method, order.payment_method_cod = "Mercado Pago", False
    elif order.order_source == "amazon":
        order.external_order_id = (
            f"{_digits(rng, 3)}-{_digits(rng, 7)}-{_digits(rng, 7)}"
        )
        order.payment_method, order.payment_method_cod = "Amazon Pay", False
    elif order.order_source == "allegro":
        order.external_order_id = _digits(rng, 10)
        order.user_login = nickname.lower()
    else:
        order.admin_comments = "Venda pelo WhatsApp"


def _set_delivery(rng: random.Random, order: Order) -> None:
    if order.order_source == "mercadolivre":
        method, low, high = "Mercado Envios", 0, 25
    elif order.order_source == "amazon":
        method, low, high = "Amazon Logística", 0, 20
    else:
        method, low, high = rng.choice(SHOP_DELIVERY)
    order.delivery_method = method
    order.delivery_price = Decimal(rng.randint(low * 100, high * 100)) / 100
    if method == "Retirada na loja":
        point_id, name, address, postcode = PICKUP_POINT
        order.delivery_point_id = point_id
        order.delivery_point_name = name
        order.delivery_point_address = address
        order.delivery_point_postcode = postcode
        order.delivery_point_city = "São Paulo"


def _set_notes(rng: random.Random, order: Order) -> None:
    if rng.random() < 0.15:
        order.user_comments = rng.choice(USER_COMMENTS)
    if rng.random() < 0.1:
        order.extra_field_2 = "Embalagem para presente"
    if rng.random() < 0.25:
        order.custom_extra_fields["1254"] = rng.choice(ORIGINS)
        if rng.random() < 0.4:
            order.custom_extra_fields["1255"] = "PRIMEIRA10"


def _later(rng: random.Random, at: float, end: float, low: float, high: float) -> float:
    """A moment `low`-`high` seconds after `at`, squeezed in before `end`."""
    delay = rng.uniform(low, high)
    if at + delay > end:
        delay = max(0.0, end - at) * rng.random()
    return at + delay


def plan_order(
    rng: random.Random, client: Client, ref: int, at: float, end: float
) -> list[Action]:
    """An order's life: creation, usually a payment, then one to three moves."""
    order = draft_order(rng, client, ref)
    actions = [Action(at, "create_order", ref, order=order)]
    paid = rng.random() < PAID_SHARE
    if paid:
        at = _later(rng, at, end, 120, 900)
        actions.append(Action(at, "payment", ref, amount=order.total()))
        path: tuple[int, ...] = PAID_PATH
    elif order.order_status_id == 1001:
        path = (1002, CANCELLED)
    else:
        path = (CANCELLED,)
    for status_id in path[: rng.randint(1, min(3, len(path)))]:
        at = _later(rng, at, end, 300, 3600)
        actions.append(Action(at, "status", ref, status_id=status_id))
    return actions


class AfterSale:
    """Plans what happens to orders once sold: documents, parcels, edits, merges.

    It draws from its own generator, so the orders themselves, their payments
    and moves are the same whatever after-sale kinds are allowed.
    """

    def __init__(self, seed: int, allowed: frozenset[int] | None = None) -> None:
        self.rng = random.Random(f"{seed}/after-sale")
        self.allowed = allowed
        self._docs = itertools.count(1)
        self._recent: dict[str, list[tuple[int, float]]] = {}
        self._closed: set[int] = set()
        self._merges_owed = 0

    def next_doc(self) -> int:
        """A new scenario-wide number for an invoice, receipt or package."""
        return next(self._docs)

    def close(self, ref: int) -> None:
        """The order will be gone; later orders are not merged into it."""
        self._closed.add(ref)

    def plan(
        self, ref: int, client: Client, planned: list[Action], end: float
    ) -> list[Action]:
        """The order's whole life: `planned` (creation, payment, moves) and after.

        A buyer's second order may instead be merged into their first before
        it moves on, when merges are allowed.
        """
        rng = self.rng
        created = planned[0]
        if created.order is None:
            raise ValueError("a plan starts with the order's creation")
        partner = self._merge_partner(client, created.at)
        self._recent.setdefault(client.email, []).append((ref, created.at))
        if rng.random() < MERGE_SHARE:
            self._merges_owed += 1
        if partner is not None and self._merges_owed and self._allows(5):
            self._merges_owed -= 1
            self.close(ref)
            kept = [a for a in planned if a.kind in ("create_order", "payment")]
            at = _later(rng, kept[-1].at, end, 300, 3600)
            return [*kept, Action(at, "merge_orders", partner, other=ref)]
        paid = any(action.kind == "payment" for action in planned)
        life = _OrderLife(self, ref, client, created.order, planned[-1].at, end)
        return planned + life.plan(paid)

    def _allows(self, log_type: int) -> bool:
        return self.allowed is None or log_type in self.allowed

    def _merge_partner(self, client: Client, at: float) -> int | None:
        for ref, created in reversed(self._recent.get(client.email, [])):
            if created < at - MERGE_WINDOW_SECONDS:
                return None
            if ref not in self._closed:
                return ref
        return None


class _OrderLife:
    """One order's after-sale steps, each a little later than the one before."""

    def __init__(
        self,
        planner: AfterSale,
        ref: int,
        client: Client,
        order: Order,
        at: float,
        end: float,
    ) -> None:
        self.planner = planner
        self.rng = planner.rng
        self.ref = ref
        self.client = client
        self.order = order
        self.at = at
        self.end = end
        self.actions: list[Action] = []
        self.lines = {n: line for n, line in enumerate(order.products)}
        self.next_line = len(order.products)

    def then(
        self, kind: ActionKind, low: float = 120, high: float = 3600, **fields: Any
    ) -> None:
        """Add a step `low`-`high` seconds after the previous one."""
        self.at = _later(self.rng, self.at, self.end, low, high)
        self.actions.append(Action(self.at, kind, self.ref, **fields))

    def plan(self, paid: bool) -> list[Action]:
        """Every after-sale step of the order, in the order they happen."""
        rng = self.rng
        if rng.random() < DOF_SHARE:
            self.then("download_dof", 30, 900)
        if rng.random() < LINE_EDIT_SHARE:
            for _ in range(rng.randint(1, 2)):
                self._edit_lines()
        if rng.random() < DELIVERY_EDIT_SHARE:
            self.then("edit_delivery", changes=_delivery_changes(rng, self.client))
        if rng.random() < ORDER_DATA_EDIT_SHARE:
            self.then("edit_order_data", changes=_order_data_changes(rng, self.client))
        if len(self.lines) > 1 and rng.random() < SPLIT_SHARE_OF_MULTI_LINE:
            moved = sorted(
                rng.sample(sorted(self.lines), rng.randint(1, len(self.lines) - 1))
            )
            for n in moved:
                del self.lines[n]
            self.then("split_order", line_nos=tuple(moved))
        if rng.random() < COPY_SHARE:
            self.then("copy_order")
        if paid and rng.random() < INVOICE_SHARE / PAID_SHARE:
            self._invoice()
        if paid and rng.random() < RECEIPT_SHARE / PAID_SHARE:
            self._receipt()
        if paid and rng.random() < PACKAGE_SHARE / PAID_SHARE:
            self._package()
        if rng.random() < BLACKLIST_SHARE:
            self.then("blacklist_buyer")
        if rng.random() < REMOVAL_SHARE:
            self.then("remove_order")
            self.planner.close(self.ref)
        return self.actions

    def _edit_lines(self) -> None:
        rng = self.rng
        kinds = ["add_product", "edit_product"]
        if len(self.lines) > 1:
            kinds.append("remove_product")
        kind = rng.choice(kinds)
        if kind == "add_product":
            product = rng.choice(CATALOG)
            line = OrderLine(
                product_id=product.product_id,
                name=product.name,
                price_brutto=product.price,
                quantity=rng.randint(1, 2),
                sku=product.sku,
                ean=product.ean,
                location=product.location,
                warehouse_id=rng.choice((206, 207)),
                weight=product.weight,
            )
            self.lines[self.next_line] = line
            self.then("add_product", line=line, line_no=self.next_line)
            self.next_line += 1
        elif kind == "edit_product":
            n = rng.choice(sorted(self.lines))
            if rng.random() < 0.7:
                self.then("edit_product", line_no=n, quantity=rng.randint(1, 5))
            else:
                discounted = (self.lines[n].price_brutto * Decimal("0.9")).quantize(
                    CENT
                )
                self.then("edit_product", line_no=n, price_brutto=discounted)
        else:
            n = rng.choice(sorted(self.lines))
            del self.lines[n]
            self.then("remove_product", line_no=n)

    def _invoice(self) -> None:
        rng = self.rng
        doc = self.planner.next_doc()
        self.then("issue_invoice", 300, 7200, doc=doc)
        if rng.random() < INVOICE_EDIT_SHARE:
            if rng.random() < 0.5:
                note = rng.choice(INVOICE_NOTES).format(self.ref + 1)
                changes = {"additional_info": note}
            else:
                complement = rng.choice(ADDRESS_COMPLEMENTS)
                changes = {"invoice_address": f"{self.client.address} - {complement}"}
            self.then("edit_invoice", doc=doc, changes=changes)
        if rng.random() < DOCUMENT_DELETE_SHARE:
            self.then("delete_invoice", doc=doc)

    def _receipt(self) -> None:
        doc = self.planner.next_doc()
        self.then("issue_receipt", 60, 1800, doc=doc)
        if self.rng.random() < DOCUMENT_DELETE_SHARE:
            self.then("delete_receipt", doc=doc)

    def _package(self) -> None:
        rng = self.rng
        method = self.order.delivery_method
        if method == "Retirada na loja":
            return
        courier = next((c for c in COURIER_WEIGHTS if c in method.lower()), None)
        if courier is None:
            couriers = list(COURIER_WEIGHTS)
            courier = rng.choices(couriers, weights=list(COURIER_WEIGHTS.values()))[0]
        doc = self.planner.next_doc()
        self.then("create_package", 600, 14400, doc=doc, courier_code=courier)
        if rng.random() < DOCUMENT_DELETE_SHARE:
            self.then("delete_package", 60, 1800, doc=doc)
            if rng.random() >= PACKAGE_REDO_SHARE:
                return
            doc = self.planner.next_doc()
            self.then("create_package", 60, 1800, doc=doc, courier_code=courier)
        if rng.random() < PACKAGE_UNTRACKED_SHARE:
            return
        paths = [path for path, _ in TRACKING_PATHS]
        weights = [weight for _, weight in TRACKING_PATHS]
        path = rng.choices(paths, weights=weights)[0]
        for status in path[: rng.randint(1, len(path))]:
            self.then("package_status", 1800, 86400, doc=doc, tracking_status=status)


def _delivery_changes(rng: random.Random, client: Client) -> dict[str, str]:
    """The buyer corrects the address, sometimes moves city or changes phone."""
    city = rng.choice(CITIES) if rng.random() < 0.2 else client.city
    cep = rng.randint(city[3], city[4])
    changes = {
        "delivery_address": f"{rng.choice(STREETS)}, {rng.randint(1, 3000)}"
        f" - {rng.choice(NEIGHBOURHOODS)}",
        "delivery_city": city[0],
        "delivery_state": city[1],
        "delivery_postcode": f"{cep:05d}-{rng.randint(0, 999):03d}",
    }
    if rng.random() < 0.3:
        changes["phone"] = f"({city[2]}) 9{_digits(rng, 4)}-{_digits(rng, 4)}"
    return changes


def _order_data_changes(rng: random.Random, client: Client) -> dict[str, str]:
    """Staff fix the email, fill in the tax number or note the buyer's wish."""
    roll = rng.random()
    if client.anonymous or roll < 0.4:
        return {"user_comments": rng.choice(USER_COMMENTS)}
    if roll < 0.7:
        return {"email": client.email}
    if client.cnpj:
        return {"invoice_nip": _format_cnpj(client.cnpj)}
    return {"invoice_nip": _format_cpf(client.cpf)}


def _allowed_types(types: Iterable[int] | None) -> frozenset[int] | None:
    return None if types is None else frozenset(types) | {1}


def _keep(action: Action, allowed: frozenset[int] | None) -> bool:
    """Whether an action of a scenario limited to `allowed` journal types stays.

    Anomalies (forget_order, raw journal entries) are asked for on their own.
    """
    if allowed is None or action.kind in ("forget_order", "journal_entry"):
        return True
    return action.log_type_written in allowed


def generate_scenario(
    seed: int,
    orders: int,
    start: float,
    span_seconds: float = 3600,
    anomalies: bool = False,
    types: Iterable[int] | None = None,
) -> list[Action]:
    """Every action of `orders` orders created between start and start + span.

    Follow-ups stay inside the span too. The same seed gives the same actions.
    `types` keeps only actions writing those journal types (1 always); a step
    whose prerequisite was left out (an invoice edit without its invoice) is
    skipped when played.
    """
    rng = random.Random(seed)
    pool = ClientPool(rng)
    allowed = _allowed_types(types)
    after = AfterSale(seed, allowed)
    end = start + span_seconds
    created = sorted(rng.uniform(start, end) for _ in range(orders))
    anomaly_count = max(1, orders // 100) if anomalies and orders else 0
    forgotten = set(rng.sample(range(orders), anomaly_count))
    actions: list[Action] = []
    for ref, at in enumerate(created):
        client = pool.next_client()
        planned = plan_order(rng, client, ref, at, end)
        if ref in forgotten:
            gone_at = _later(rng, at, end, 30, 600)
            planned = [planned[0], Action(gone_at, "forget_order", ref)]
        else:
            planned = after.plan(ref, client, planned, end)
        actions.extend(a for a in planned if _keep(a, allowed))
    kept = [ref for ref in range(orders) if ref not in forgotten]
    for _ in range(anomaly_count):
        at = rng.uniform(start, end)
        actions.append(Action(at, "journal_entry", None, log_type=ORPHAN_LOG_TYPE))
        if kept:
            ref = rng.choice(kept)
            at = _later(rng, created[ref], end, 1, 600)
            actions.append(
                Action(at, "journal_entry", ref, log_type=UNKNOWN_LOG_TYPE, object_id=1)
            )
    actions.sort(key=lambda action: action.at)
    return actions


def scenario_journal_types(actions: Iterable[Action]) -> set[int]:
    """The journal types a scenario's actions write when played."""
    types = {action.log_type_written for action in actions}
    return {log_type for log_type in types if log_type is not None}


class Player:
    """Applies actions to an account, mapping scenario refs to real ids.

    Orders made by splits and copies get no ref; `skipped` counts the actions
    left out because their order, line or document was gone or never made.
    """

    def __init__(self, account: Account) -> None:
        self.account = account
        self.order_ids: dict[int, int] = {}
        self.line_ids: dict[tuple[int, int], int] = {}
        self.invoice_ids: dict[int, int] = {}
        self.receipt_ids: dict[int, int] = {}
        self.package_ids: dict[int, int] = {}
        self.skipped = 0

    def apply(self, action: Action) -> None:
        """Apply one action; follow-ups of an order that is gone are skipped."""
        account = self.account
        if action.kind == "create_order":
            if action.order is None or action.ref is None:
                raise ValueError("a create_order action needs an order and a ref")
            created = account.create_order(action.order, action.at)
            self.order_ids[action.ref] = created
            for n, line in enumerate(account.orders[created].products):
                self.line_ids[action.ref, n] = line.order_product_id
            return
        if action.kind == "journal_entry":
            about = 0 if action.ref is None else self.order_ids.get(action.ref, 0)
            account.add_journal_entry(
                action.log_type, about, action.object_id, action.at
            )
            return
        order_id = self.order_ids.get(action.ref) if action.ref is not None else None
        if order_id is None or order_id not in account.orders:
            self.skipped += 1
            return
        try:
            self._mutate(action, order_id)
        except (KeyError, ValueError):
            self.skipped += 1

    def _mutate(self, action: Action, order_id: int) -> None:
        account, at, ref = self.account, action.at, action.ref
        match action.kind:
            case "payment":
                account.add_payment(order_id, action.amount, at)
            case "status":
                account.change_status(order_id, action.status_id, at)
            case "forget_order":
                account.forget_order(order_id)
            case "download_dof":
                account.download_dof(order_id, at)
            case "add_product":
                if action.line is None:
                    raise ValueError("an add_product action needs a line")
                added = account.add_product(order_id, action.line, at)
                self.line_ids[self._ref(ref), action.line_no] = added
            case "edit_product":
                line_id = self.line_ids[self._ref(ref), action.line_no]
                account.edit_product(
                    order_id, line_id, action.quantity, action.price_brutto, at
                )
            case "remove_product":
                line_id = self.line_ids[self._ref(ref), action.line_no]
                account.remove_product(order_id, line_id, at)
            case "edit_delivery":
                account.edit_delivery(order_id, at, action.changes)
            case "edit_order_data":
                account.edit_order_data(order_id, at, action.changes)
            case "issue_invoice":
                self.invoice_ids[action.doc] = account.issue_invoice(order_id, at)
            case "edit_invoice":
                account.edit_invoice(self.invoice_ids[action.doc], at, action.changes)
            case "delete_invoice":
                account.delete_invoice(self.invoice_ids[action.doc], at)
            case "issue_receipt":
                self.receipt_ids[action.doc] = account.issue_receipt(order_id, at)
            case "delete_receipt":
                account.delete_receipt(self.receipt_ids[action.doc], at)
            case "create_package":
                package_id = account.create_package(order_id, action.courier_code, at)
                self.package_ids[action.doc] = package_id
            case "delete_package":
                account.delete_package(self.package_ids[action.doc], at)
            case "package_status":
                package_id = self.package_ids[action.doc]
                account.set_package_status(package_id, action.tracking_status, at)
            case "remove_order":
                account.remove_order(order_id, at)
            case "merge_orders":
                merged = self.order_ids[self._ref(action.other)]
                account.merge_orders(order_id, merged, at)
            case "split_order":
                lines = [self.line_ids[self._ref(ref), n] for n in action.line_nos]
                account.split_order(order_id, lines, at)
            case "copy_order":
                account.copy_order(order_id, at)
            case "blacklist_buyer":
                account.blacklist_buyer(order_id, at)
            case _:
                # Not ValueError: a kind nobody handles is a bug, never a skip.
                raise TypeError(f"unknown action kind {action.kind!r}")

    @staticmethod
    def _ref(ref: int | None) -> int:
        if ref is None:
            raise KeyError("the action names no order")
        return ref


def play(account: Account, actions: Iterable[Action]) -> list[int]:
    """Apply every action in order; return the ids of the orders created."""
    player = Player(account)
    for action in actions:
        player.apply(action)
    return list(player.order_ids.values())


def live_actions(
    seed: int, clock: Clock, types: Iterable[int] | None = None
) -> Iterator[Action]:
    """Endless shop life: new orders, and follow-ups on recent ones.

    Each action is stamped with the clock's time when it is drawn; `types`
    limits the journal types as in generate_scenario.
    """
    rng = random.Random(seed)
    pool = ClientPool(rng)
    allowed = _allowed_types(types)
    after = AfterSale(seed, allowed)
    pending: dict[int, deque[Action]] = {}
    ref = LIVE_FIRST_REF
    while True:
        now = clock.now()
        if pending and rng.random() < LIVE_FOLLOW_UP_SHARE:
            target = rng.choice(list(pending))
            action = pending[target].popleft()
            if not pending[target]:
                del pending[target]
            yield dataclasses.replace(action, at=now)
            continue
        client = pool.next_client()
        planned = plan_order(rng, client, ref, now, now + 3600)
        planned = after.plan(ref, client, planned, now + 3600)
        pending[ref] = deque(a for a in planned[1:] if _keep(a, allowed))
        if not pending[ref]:
            del pending[ref]
        while len(pending) > LIVE_RECENT_ORDERS:
            del pending[next(iter(pending))]
        ref += 1
        yield planned[0]
