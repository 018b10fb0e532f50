"""Seeded scenarios for a Brazilian supplements and cosmetics shop on BaseLinker.

A scenario is a time-sorted list of actions; play() applies them to an Account.
"""

from __future__ import annotations

import dataclasses
import random
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from simulators.baselinker.state import CENT, Account, Clock, Order, OrderLine

ActionKind = Literal[
    "create_order", "payment", "status", "journal_entry", "forget_order"
]

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


def generate_scenario(
    seed: int,
    orders: int,
    start: float,
    span_seconds: float = 3600,
    anomalies: bool = False,
) -> list[Action]:
    """Every action of `orders` orders created between start and start + span.

    Follow-ups stay inside the span too. The same seed gives the same actions.
    """
    rng = random.Random(seed)
    pool = ClientPool(rng)
    end = start + span_seconds
    created = sorted(rng.uniform(start, end) for _ in range(orders))
    anomaly_count = max(1, orders // 100) if anomalies and orders else 0
    forgotten = set(rng.sample(range(orders), anomaly_count))
    actions: list[Action] = []
    for ref, at in enumerate(created):
        planned = plan_order(rng, pool.next_client(), ref, at, end)
        if ref in forgotten:
            gone_at = _later(rng, at, end, 30, 600)
            planned = [planned[0], Action(gone_at, "forget_order", ref)]
        actions.extend(planned)
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


class Player:
    """Applies actions to an account, mapping scenario refs to real order ids."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.order_ids: dict[int, int] = {}

    def apply(self, action: Action) -> None:
        """Apply one action; follow-ups of an order that is gone are skipped."""
        account = self.account
        if action.kind == "create_order":
            if action.order is None or action.ref is None:
                raise ValueError("a create_order action needs an order and a ref")
            self.order_ids[action.ref] = account.create_order(action.order, action.at)
            return
        if action.kind == "journal_entry":
            about = 0 if action.ref is None else self.order_ids.get(action.ref, 0)
            account.add_journal_entry(
                action.log_type, about, action.object_id, action.at
            )
            return
        order_id = self.order_ids.get(action.ref) if action.ref is not None else None
        if order_id is None or order_id not in account.orders:
            return
        if action.kind == "payment":
            account.add_payment(order_id, action.amount, action.at)
        elif action.kind == "status":
            account.change_status(order_id, action.status_id, action.at)
        elif action.kind == "forget_order":
            account.forget_order(order_id)


def play(account: Account, actions: Iterable[Action]) -> list[int]:
    """Apply every action in order; return the ids of the orders created."""
    player = Player(account)
    for action in actions:
        player.apply(action)
    return list(player.order_ids.values())


def live_actions(seed: int, clock: Clock) -> Iterator[Action]:
    """Endless shop life: new orders, and payments and moves on recent ones.

    Each action is stamped with the clock's time when it is drawn.
    """
    rng = random.Random(seed)
    pool = ClientPool(rng)
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
        planned = plan_order(rng, pool.next_client(), ref, now, now + 3600)
        pending[ref] = deque(planned[1:])
        while len(pending) > LIVE_RECENT_ORDERS:
            del pending[next(iter(pending))]
        ref += 1
        yield planned[0]
