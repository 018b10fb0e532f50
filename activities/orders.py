"""Order activities: snapshots from BaseLinker, and their upsert into PostgreSQL."""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.baselinker import baselinker_errors
from baselinker.client import BaseLinkerClient
from baselinker.models import (
    JournalEntry,
    Order,
    OrderLine,
    OrderStatus,
    validation_reason,
)
from core.identity import ClientIdentity, identity_for_order
from core.workspaces import workspace_id

#: getOrders returns at most this many orders per call.
ORDERS_PAGE_SIZE = 100
INVALID_ORDER_DATA = "InvalidOrderData"


class OrderEventInput(BaseModel):
    """One journal entry to process, and where BaseLinker calls go."""

    workspace: str
    entry: JournalEntry
    baselinker_task_queue: str


class OrdersPageRequest(BaseModel):
    """Fetch orders from `id_from` upwards to cover the `wanted` ids."""

    workspace: str
    id_from: int
    wanted: list[int]
    as_of_log_id: int


class OrdersPageResult(BaseModel):
    """Which wanted orders one getOrders call did not reach yet."""

    remaining: list[int]
    stored: int
    missing: list[int]


class ProcessRequest(BaseModel):
    """Apply the stored snapshot of an entry's order."""

    event: OrderEventInput
    statuses_refreshed: bool = False


Outcome = Literal["completed", "ignored", "needs_snapshot", "needs_statuses"]


class ProcessResult(BaseModel):
    """What processing an entry did, or what it still needs first."""

    outcome: Outcome
    reason: str | None = None
    client_id: UUID | None = None
    new_client: bool = False
    new_order: bool = False


class FailureReport(BaseModel):
    """Why an entry could not be processed."""

    workspace: str
    log_id: int
    reason: str


def split_page(
    wanted: list[int], returned: list[int], full: bool
) -> tuple[list[int], list[int]]:
    """(missing, remaining) wanted ids after one id_from page.

    Orders come back in ascending id; a wanted id below the last one returned,
    or anywhere when the page was not full, would have been in it.
    """
    seen = set(returned)
    horizon = max(returned) if full and returned else None
    missing = [o for o in wanted if o not in seen and (horizon is None or o < horizon)]
    remaining = [o for o in wanted if horizon is not None and o > horizon]
    return missing, remaining


class OrderSnapshots:
    """BaseLinker-side order activities (task queue `baselinker-api`)."""

    def __init__(self, pool: asyncpg.Pool, client: BaseLinkerClient) -> None:
        self._pool = pool
        self._client = client

    @activity.defn
    async def fetch_orders_page(self, req: OrdersPageRequest) -> OrdersPageResult:
        """One getOrders call by `id_from`; store every order it returns."""
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            raw = await self._client.orders(
                id_from=req.id_from, get_unconfirmed_orders=True
            )
        returned: dict[int, dict[str, Any]] = {}
        for item in raw:
            order_id = _order_id(item)
            if order_id is not None:
                returned[order_id] = item
        missing, remaining = split_page(
            sorted(req.wanted), sorted(returned), len(raw) >= ORDERS_PAGE_SIZE
        )
        ws = await workspace_id(self._pool, req.workspace)
        rows: list[tuple[Any, ...]] = [
            (ws, o, True, item, req.as_of_log_id, asked_at)
            for o, item in returned.items()
        ]
        rows += [(ws, o, False, None, req.as_of_log_id, asked_at) for o in missing]
        await self._pool.executemany(
            """
            INSERT INTO order_snapshots AS s (workspace_id, order_id_base, found,
                payload, as_of_log_id, fetched_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (workspace_id, order_id_base) DO UPDATE SET
                found = EXCLUDED.found,
                payload = EXCLUDED.payload,
                as_of_log_id = GREATEST(s.as_of_log_id, EXCLUDED.as_of_log_id),
                fetched_at = EXCLUDED.fetched_at
            WHERE s.fetched_at <= EXCLUDED.fetched_at
            """,
            rows,
        )
        return OrdersPageResult(remaining=remaining, stored=len(rows), missing=missing)

    @activity.defn
    async def refresh_statuses(self, workspace: str) -> int:
        """Cache getOrderStatusList; orders carry only the status id."""
        with baselinker_errors():
            raw = await self._client.order_statuses()
        statuses = [OrderStatus.model_validate(item) for item in raw]
        ws = await workspace_id(self._pool, workspace)
        await self._pool.executemany(
            """
            INSERT INTO order_statuses (workspace_id, status_id, name,
                name_for_customer, color, fetched_at)
            VALUES ($1, $2, $3, $4, $5, NOW())
            ON CONFLICT (workspace_id, status_id) DO UPDATE SET
                name = EXCLUDED.name,
                name_for_customer = EXCLUDED.name_for_customer,
                color = EXCLUDED.color,
                fetched_at = NOW()
            """,
            [(ws, s.id, s.name, s.name_for_customer, s.color) for s in statuses],
        )
        return len(statuses)


class OrderStore:
    """Database-side order activities: upsert client, order, products, lines."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def process_order_event(self, req: ProcessRequest) -> ProcessResult:
        """Bring the order's rows to its stored snapshot and close the entry."""
        event = req.event
        entry = event.entry
        assert entry.order_id is not None, "entries without an order are ignored"
        ws = await workspace_id(self._pool, event.workspace)
        info = activity.info()
        await self._pool.execute(
            """
            UPDATE event_queue SET status = 'processing', retry_count = $3,
                started_at = COALESCE(started_at, NOW()), workflow_id = $4,
                updated_at = NOW()
            WHERE workspace_id = $1 AND event_log_id = $2
            """,
            ws,
            entry.log_id,
            info.attempt,
            info.workflow_id,
        )
        snapshot = await self._pool.fetchrow(
            """
            SELECT found, payload, as_of_log_id, fetched_at FROM order_snapshots
            WHERE workspace_id = $1 AND order_id_base = $2
            """,
            ws,
            entry.order_id,
        )
        if snapshot is None or snapshot["as_of_log_id"] < entry.log_id:
            return ProcessResult(outcome="needs_snapshot")
        if not snapshot["found"]:
            reason = f"order {entry.order_id} is no longer returned by BaseLinker"
            await self._close(ws, entry.log_id, "ignored", reason)
            return ProcessResult(outcome="ignored", reason=reason)
        order = _parse(snapshot["payload"])
        status_name = await self._status_name(ws, order.order_status_id)
        if status_name is None and not req.statuses_refreshed:
            return ProcessResult(outcome="needs_statuses")
        async with self._pool.acquire() as conn, conn.transaction():
            identity = identity_for_order(order)
            client_id, new_client = (
                await _upsert_client(conn, ws, order, identity)
                if identity
                else (None, False)
            )
            order_uuid, new_order = await _upsert_order(
                conn, ws, order, client_id, status_name, snapshot
            )
            if order_uuid is not None:
                products = await _upsert_products(conn, ws, order.products)
                await _replace_lines(conn, order_uuid, order, products)
            await _close_in(conn, ws, entry.log_id, "completed", None)
        return ProcessResult(
            outcome="completed",
            client_id=client_id,
            new_client=new_client,
            new_order=new_order,
            reason=None if identity else "order has no usable contact data",
        )

    @activity.defn
    async def record_event_failure(self, report: FailureReport) -> None:
        """Ledger an entry as failed, with the reason an operator will read."""
        ws = await workspace_id(self._pool, report.workspace)
        await self._close(ws, report.log_id, "failed", report.reason)

    async def _status_name(self, ws: UUID, status_id: int | None) -> str | None:
        if status_id is None:
            return ""
        name: str | None = await self._pool.fetchval(
            """
            SELECT name FROM order_statuses
            WHERE workspace_id = $1 AND status_id = $2
            """,
            ws,
            status_id,
        )
        return name

    async def _close(
        self, ws: UUID, log_id: int, status: str, reason: str | None
    ) -> None:
        async with self._pool.acquire() as conn:
            await _close_in(conn, ws, log_id, status, reason)


def _order_id(item: dict[str, Any]) -> int | None:
    try:
        return int(str(item.get("order_id", "")).strip())
    except ValueError:
        return None


def _parse(payload: dict[str, Any]) -> Order:
    try:
        return Order.model_validate(payload)
    except ValidationError as err:
        raise ApplicationError(
            f"unreadable order data: {validation_reason(err)}",
            type=INVALID_ORDER_DATA,
            non_retryable=True,
        ) from err


async def _close_in(
    conn: asyncpg.Connection, ws: UUID, log_id: int, status: str, reason: str | None
) -> None:
    await conn.execute(
        """
        UPDATE event_queue SET status = $3,
            error_message = CASE WHEN $3 = 'failed' THEN $4 END,
            ignore_reason = CASE WHEN $3 = 'ignored' THEN $4 END,
            processed_at = NOW(), updated_at = NOW()
        WHERE workspace_id = $1 AND event_log_id = $2
        """,
        ws,
        log_id,
        status,
        reason,
    )


async def _upsert_client(
    conn: asyncpg.Connection, ws: UUID, order: Order, identity: ClientIdentity
) -> tuple[UUID, bool]:
    row = await conn.fetchrow(
        """
        INSERT INTO clients AS c (workspace_id, identity_key, name, email, phone,
            cpf, tax_id_kind, email_raw, phone_raw, tax_id_raw, first_order_at,
            last_order_at, metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11,
            '{"source": "baselinker"}'::jsonb)
        ON CONFLICT (workspace_id, identity_key) DO UPDATE SET
            name = COALESCE(NULLIF(EXCLUDED.name, ''), c.name),
            email = COALESCE(EXCLUDED.email, c.email),
            phone = COALESCE(EXCLUDED.phone, c.phone),
            cpf = COALESCE(EXCLUDED.cpf, c.cpf),
            tax_id_kind = COALESCE(EXCLUDED.tax_id_kind, c.tax_id_kind),
            email_raw = COALESCE(NULLIF(EXCLUDED.email_raw, ''), c.email_raw),
            phone_raw = COALESCE(NULLIF(EXCLUDED.phone_raw, ''), c.phone_raw),
            tax_id_raw = COALESCE(NULLIF(EXCLUDED.tax_id_raw, ''), c.tax_id_raw),
            first_order_at = LEAST(c.first_order_at, EXCLUDED.first_order_at),
            last_order_at = GREATEST(c.last_order_at, EXCLUDED.last_order_at),
            updated_at = NOW()
        RETURNING id, (xmax = 0) AS inserted
        """,
        ws,
        identity.key,
        order.buyer_name,
        identity.email,
        identity.phone,
        identity.tax_id.digits if identity.tax_id else None,
        identity.tax_id.kind if identity.tax_id else None,
        identity.raw_email,
        identity.raw_phone,
        identity.raw_tax_id,
        order.date_add,
    )
    return row["id"], row["inserted"]


async def _upsert_order(
    conn: asyncpg.Connection,
    ws: UUID,
    order: Order,
    client_id: UUID | None,
    status_name: str | None,
    snapshot: asyncpg.Record,
) -> tuple[UUID | None, bool]:
    """Upsert the order unless a newer snapshot is already applied.

    Returns (order row id, inserted); the id is None when the stored row is
    newer, so its lines stay as they are.
    """
    row = await conn.fetchrow(
        """
        INSERT INTO orders AS o (workspace_id, client_id, external_id,
            order_id_base, total_amount, status, status_id, order_date,
            canal_venda, confirmed, date_confirmed, date_in_status, currency,
            payment_done, delivery_price, buyer_email_raw, buyer_phone_raw,
            buyer_tax_id_raw, snapshot_at, metadata)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
            $15, $16, $17, $18, $19, jsonb_build_object('baselinker_data', $20::jsonb))
        ON CONFLICT (workspace_id, order_id_base) DO UPDATE SET
            client_id = EXCLUDED.client_id,
            total_amount = EXCLUDED.total_amount,
            status = EXCLUDED.status,
            status_id = EXCLUDED.status_id,
            order_date = EXCLUDED.order_date,
            canal_venda = EXCLUDED.canal_venda,
            confirmed = EXCLUDED.confirmed,
            date_confirmed = EXCLUDED.date_confirmed,
            date_in_status = EXCLUDED.date_in_status,
            currency = EXCLUDED.currency,
            payment_done = EXCLUDED.payment_done,
            delivery_price = EXCLUDED.delivery_price,
            buyer_email_raw = EXCLUDED.buyer_email_raw,
            buyer_phone_raw = EXCLUDED.buyer_phone_raw,
            buyer_tax_id_raw = EXCLUDED.buyer_tax_id_raw,
            snapshot_at = EXCLUDED.snapshot_at,
            metadata = o.metadata || EXCLUDED.metadata,
            updated_at = NOW()
        WHERE o.snapshot_at IS NULL OR o.snapshot_at <= EXCLUDED.snapshot_at
        RETURNING id, (xmax = 0) AS inserted
        """,
        ws,
        client_id,
        str(order.order_id),
        order.order_id,
        order.total,
        status_name or None,
        order.order_status_id,
        order.date_add,
        order.order_source,
        order.confirmed,
        order.date_confirmed,
        order.date_in_status,
        order.currency,
        order.payment_done,
        order.delivery_price,
        order.email,
        order.phone,
        order.invoice_nip,
        snapshot["fetched_at"],
        snapshot["payload"],
    )
    if row is None:
        return None, False
    return row["id"], row["inserted"]


def product_key(line: OrderLine) -> str:
    """The natural key of a catalogue product seen on an order line."""
    if line.sku:
        return f"sku:{line.sku}"
    if line.product_id and line.product_id != "0":
        return f"bl:{line.product_id}"
    return f"name:{line.name.strip().lower()}"


async def _upsert_products(
    conn: asyncpg.Connection, ws: UUID, lines: list[OrderLine]
) -> dict[str, UUID]:
    # One row per key, in key order, so concurrent orders lock alike.
    by_key = {product_key(line): line for line in lines}
    keys = sorted(by_key)
    rows = await conn.fetch(
        """
        INSERT INTO products AS p (workspace_id, product_key, name, sku,
            bl_product_id, ean, last_price)
        SELECT $1, k, n, NULLIF(s, ''), NULLIF(b, ''), NULLIF(e, ''), pr
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::numeric[]) AS t(k, n, s, b, e, pr)
        ON CONFLICT (workspace_id, product_key) DO UPDATE SET
            name = EXCLUDED.name,
            bl_product_id = COALESCE(EXCLUDED.bl_product_id, p.bl_product_id),
            ean = COALESCE(EXCLUDED.ean, p.ean),
            last_price = EXCLUDED.last_price,
            updated_at = NOW()
        RETURNING id, product_key
        """,
        ws,
        keys,
        [by_key[k].name for k in keys],
        [by_key[k].sku for k in keys],
        [by_key[k].product_id for k in keys],
        [by_key[k].ean for k in keys],
        [by_key[k].price_brutto for k in keys],
    )
    return {r["product_key"]: r["id"] for r in rows}


async def _replace_lines(
    conn: asyncpg.Connection, order_uuid: UUID, order: Order, products: dict[str, UUID]
) -> None:
    """Make the order's lines exactly the snapshot's, keyed by order_product_id."""
    lines = order.products
    await conn.execute(
        """
        DELETE FROM orders_products
        WHERE order_id = $1 AND NOT (order_product_id = ANY($2::bigint[]))
        """,
        order_uuid,
        [line.order_product_id for line in lines],
    )
    await conn.executemany(
        """
        INSERT INTO orders_products AS l (order_id, order_base_id, product_id,
            order_product_id, nome_produto, sku, bl_product_id, variant_id, ean,
            quantidade_produtos, preco_unitario, receita_bruta, tax_rate)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (order_id, order_product_id) DO UPDATE SET
            product_id = EXCLUDED.product_id,
            nome_produto = EXCLUDED.nome_produto,
            sku = EXCLUDED.sku,
            bl_product_id = EXCLUDED.bl_product_id,
            variant_id = EXCLUDED.variant_id,
            ean = EXCLUDED.ean,
            quantidade_produtos = EXCLUDED.quantidade_produtos,
            preco_unitario = EXCLUDED.preco_unitario,
            receita_bruta = EXCLUDED.receita_bruta,
            tax_rate = EXCLUDED.tax_rate
        """,
        [
            (
                order_uuid,
                order.order_id,
                products[product_key(line)],
                line.order_product_id,
                line.name,
                line.sku or None,
                line.product_id or None,
                line.variant_id or None,
                line.ean or None,
                line.quantity,
                line.price_brutto,
                line.gross_revenue,
                line.tax_rate,
            )
            for line in lines
        ],
    )
