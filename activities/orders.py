"""Order activities: snapshots from BaseLinker, and their upsert into PostgreSQL."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.baselinker import baselinker_errors
from activities.documents import (
    DELETIONS,
    DOCUMENTS_BY_TYPE,
    DocumentKind,
    delete_document,
)
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
    #: Fetch fresh data before applying (an operator's retry).
    refetch: bool = False


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


Outcome = Literal["completed", "ignored", "needs"]
NeedKind = Literal["snapshot", "statuses", "invoices", "receipts", "packages"]


class Need(BaseModel):
    """Data an entry needs from BaseLinker before it can be applied."""

    kind: NeedKind
    order_id: int | None = None
    #: The document the entry names, where it must be fetched by id.
    doc_id: int | None = None


class ProcessResult(BaseModel):
    """What processing an entry did, or what it still needs first."""

    outcome: Outcome
    reason: str | None = None
    needs: list[Need] = []
    client_id: UUID | None = None
    new_client: bool = False
    new_order: bool = False
    #: Live packages of the order after a package event: where shipment
    #: tracking starts.
    package_ids: list[int] = []


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
        """Bring the entry's order (and what it names) to BaseLinker's state,
        do the entry type's own step, and close the ledger row, atomically."""
        event = req.event
        entry = event.entry
        order_id = entry.order_id
        assert order_id is not None, "entries without an order are ignored"
        ws = await workspace_id(self._pool, event.workspace)
        await self._mark_processing(ws, entry)

        related = _related_order(entry)
        snapshots = await self._snapshots(ws, [order_id, *filter(None, [related])])
        kinds = DOCUMENTS_BY_TYPE.get(entry.log_type, ())
        needs = [
            Need(kind="snapshot", order_id=o)
            for o, snap in snapshots.items()
            if snap is None or snap["as_of_log_id"] < entry.log_id
        ]
        # Documents outlive their order (BaseLinker keeps a removed order's
        # invoices), so they are fetched whether the order is returned or not.
        needs += await self._document_needs(ws, entry, kinds)
        if needs:
            return ProcessResult(outcome="needs", needs=needs)
        main = snapshots[order_id]
        assert main is not None
        orders = {
            o: _parse(snap["payload"])
            for o, snap in snapshots.items()
            if snap and snap["found"]
        }
        names = await status_names(self._pool, ws, orders.values())
        if names is None:
            if not req.statuses_refreshed:
                return ProcessResult(outcome="needs", needs=[Need(kind="statuses")])
            names = {}
        if not main["found"]:
            # A split-off order or a copy outlives its removed original.
            other = orders.get(related) if related is not None else None
            return await self._order_gone(ws, entry, main, other, snapshots, names)
        async with self._pool.acquire() as conn, conn.transaction():
            applied = await apply_order(
                conn, ws, orders[order_id], main, names, _claim_for(entry)
            )
            if related is not None and related in orders:
                await _apply_related(conn, ws, entry, orders[related], snapshots, names)
            await _type_step(conn, ws, entry, applied)
            package_ids = (
                await _live_packages(conn, ws, order_id) if "packages" in kinds else []
            )
            await _close_in(conn, ws, entry.log_id, "completed", None)
        return ProcessResult(
            outcome="completed",
            client_id=applied.client_id,
            new_client=applied.new_client,
            new_order=applied.new_order,
            package_ids=package_ids,
            reason=None if applied.client_id else "order has no usable contact data",
        )

    async def _mark_processing(self, ws: UUID, entry: JournalEntry) -> None:
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

    async def _snapshots(
        self, ws: UUID, order_ids: list[int]
    ) -> dict[int, asyncpg.Record | None]:
        rows = await self._pool.fetch(
            """
            SELECT order_id_base, found, payload, as_of_log_id, fetched_at
            FROM order_snapshots
            WHERE workspace_id = $1 AND order_id_base = ANY($2::bigint[])
            """,
            ws,
            order_ids,
        )
        by_id = {r["order_id_base"]: r for r in rows}
        return {o: by_id.get(o) for o in order_ids}

    async def _document_needs(
        self, ws: UUID, entry: JournalEntry, kinds: tuple[DocumentKind, ...]
    ) -> list[Need]:
        order_id = entry.order_id
        if not kinds:
            return []
        fresh = {
            r["kind"]
            for r in await self._pool.fetch(
                """
                SELECT kind FROM order_document_syncs
                WHERE workspace_id = $1 AND order_id_base = $2
                  AND kind = ANY($3::text[]) AND as_of_log_id >= $4
                """,
                ws,
                order_id,
                list(kinds),
                entry.log_id,
            )
        }
        return [
            Need(kind=kind, order_id=order_id, doc_id=document_id(entry, kind))
            for kind in kinds
            if kind not in fresh
        ]

    async def _order_gone(
        self,
        ws: UUID,
        entry: JournalEntry,
        snapshot: asyncpg.Record,
        related: Order | None,
        snapshots: dict[int, asyncpg.Record | None],
        names: dict[int, str],
    ) -> ProcessResult:
        """BaseLinker no longer returns the order: keep its row, marked removed,
        and still sync the order the entry names (a split-off order, a copy)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if related is not None:
                await _apply_related(conn, ws, entry, related, snapshots, names)
            marked = await conn.fetchval(
                """
                UPDATE orders SET removed_at = COALESCE(removed_at, $3),
                    snapshot_at = $3, updated_at = NOW()
                WHERE workspace_id = $1 AND order_id_base = $2
                  AND (snapshot_at IS NULL OR snapshot_at <= $3)
                RETURNING id
                """,
                ws,
                entry.order_id,
                snapshot["fetched_at"],
            )
            exists = marked is not None or await conn.fetchval(
                """
                SELECT true FROM orders
                WHERE workspace_id = $1 AND order_id_base = $2
                """,
                ws,
                entry.order_id,
            )
            if exists or related is not None:
                await _close_in(conn, ws, entry.log_id, "completed", None)
                return ProcessResult(
                    outcome="completed",
                    reason=f"order {entry.order_id} is gone: marked removed",
                )
            reason = f"order {entry.order_id} is no longer returned by BaseLinker"
            await _close_in(conn, ws, entry.log_id, "ignored", reason)
        return ProcessResult(outcome="ignored", reason=reason)

    @activity.defn
    async def record_event_failure(self, report: FailureReport) -> None:
        """Ledger an entry as failed, with the reason an operator will read."""
        ws = await workspace_id(self._pool, report.workspace)
        await self._close(ws, report.log_id, "failed", report.reason)

    async def _close(
        self, ws: UUID, log_id: int, status: str, reason: str | None
    ) -> None:
        async with self._pool.acquire() as conn:
            await _close_in(conn, ws, log_id, status, reason)


async def status_names(
    db: asyncpg.Pool | asyncpg.Connection, ws: UUID, orders: Iterable[Order]
) -> dict[int, str] | None:
    """Names of the orders' statuses, or None when one is not cached yet."""
    wanted = {o.order_status_id for o in orders if o.order_status_id is not None}
    rows = await db.fetch(
        """
        SELECT status_id, name FROM order_statuses
        WHERE workspace_id = $1 AND status_id = ANY($2::int[])
        """,
        ws,
        list(wanted),
    )
    names = {r["status_id"]: r["name"] for r in rows}
    return names if wanted <= names.keys() else None


#: Journal types whose object_id names another order to sync with this one.
RELATED_ORDER_TYPES = frozenset({6, 17})
SPLIT, COPIED, MERGED, BLACKLISTED, RECEIPT_ISSUED = 6, 17, 5, 15, 8


def document_id(entry: JournalEntry, kind: DocumentKind) -> int | None:
    """The receipt a receipt entry names: fetched by id, since BaseLinker's
    per-order receipt call shows only the newest. Other kinds go by order."""
    if kind == "receipts" and entry.log_type == RECEIPT_ISSUED:
        return entry.object_id
    return None


def _related_order(entry: JournalEntry) -> int | None:
    """The split-off order or the copy that the entry names, if any."""
    if entry.log_type in RELATED_ORDER_TYPES:
        return entry.object_id
    return None


@dataclass(frozen=True)
class AppliedOrder:
    """What applying one order snapshot changed."""

    order_uuid: UUID | None
    client_id: UUID | None
    new_client: bool
    new_order: bool


@dataclass(frozen=True)
class Claim:
    """Who claims an order's one-time reactions, and whether they are muted.

    The owner is the journal entry and the workflow processing it: a retried
    activity is still the owner, a duplicate delivery of the entry is not.
    """

    log_id: int
    workflow_id: str | None = None
    suppressed: str | None = None


async def apply_order(
    conn: asyncpg.Connection,
    ws: UUID,
    order: Order,
    snapshot: Mapping[str, Any],
    names: dict[int, str],
    claim: Claim | None,
) -> AppliedOrder:
    """Upsert client, order, products and lines; claim the one-time reactions
    (unless `claim` is None: then they are left to the order's journal events).

    `snapshot` carries the reply the order came from: `payload`, `fetched_at`.
    """
    identity = identity_for_order(order)
    client_id = (
        (await _upsert_client(conn, ws, order, identity))[0] if identity else None
    )
    status_name = names.get(order.order_status_id or 0)
    order_uuid, _ = await _upsert_order(
        conn, ws, order, client_id, status_name, snapshot
    )
    if order_uuid is not None:
        products = await _upsert_products(conn, ws, order.products)
        await _replace_lines(conn, order_uuid, order, products)
    if claim is None:
        return AppliedOrder(order_uuid, client_id, new_client=False, new_order=False)
    if claim.suppressed is None:
        origin = await _origin(conn, ws, order.order_id)
        claim = replace(claim, suppressed=origin) if origin else claim
    new_order = await _claim(conn, ws, "new_order", str(order.order_id), claim)
    new_client = identity is not None and await _claim(
        conn, ws, "new_client", identity.key, claim
    )
    return AppliedOrder(order_uuid, client_id, new_client, new_order)


async def _origin(conn: asyncpg.Connection, ws: UUID, order_id: int) -> str | None:
    """Whether a ledgered entry split the order off or copied it, as a muting
    reason: its own entries may run before the one that names it."""
    row = await conn.fetchrow(
        """
        SELECT event_type, order_id FROM event_queue
        WHERE workspace_id = $1 AND object_id = $2 AND event_type IN (6, 17)
        ORDER BY event_log_id LIMIT 1
        """,
        ws,
        order_id,
    )
    if row is None:
        return None
    link = "split_from" if row["event_type"] == SPLIT else "copied_from"
    return f"{link} {row['order_id']}"


async def _apply_related(
    conn: asyncpg.Connection,
    ws: UUID,
    entry: JournalEntry,
    order: Order,
    snapshots: dict[int, asyncpg.Record | None],
    names: dict[int, str],
) -> None:
    """Sync the split-off order or the copy, linked to the entry's order.

    Neither is a new purchase: their one-time reactions are claimed as
    suppressed, so no welcome or upsell message follows from them.
    """
    snapshot = snapshots[order.order_id]
    assert snapshot is not None
    link = "split_from" if entry.log_type == SPLIT else "copied_from"
    claim = replace(_claim_for(entry), suppressed=f"{link} {entry.order_id}")
    await apply_order(conn, ws, order, snapshot, names, claim)
    await conn.execute(
        f"""
        UPDATE orders SET {link}_order_id_base = $3
        WHERE workspace_id = $1 AND order_id_base = $2
        """,  # the column is one of two fixed names above
        ws,
        order.order_id,
        entry.order_id,
    )


async def _type_step(
    conn: asyncpg.Connection, ws: UUID, entry: JournalEntry, applied: AppliedOrder
) -> None:
    """What an entry type does beyond bringing its order up to date."""
    if entry.log_type == MERGED and entry.object_id is not None:
        # The absorbed order keeps its row (history matters), linked to this one.
        await conn.execute(
            """
            UPDATE orders SET merged_into_order_id_base = $3,
                removed_at = COALESCE(removed_at, NOW()), updated_at = NOW()
            WHERE workspace_id = $1 AND order_id_base = $2
            """,
            ws,
            entry.object_id,
            entry.order_id,
        )
    elif entry.log_type in DELETIONS and entry.object_id is not None:
        await delete_document(conn, ws, DELETIONS[entry.log_type], entry.object_id)
    elif entry.log_type == BLACKLISTED and applied.client_id is not None:
        await conn.execute(
            """
            UPDATE clients SET blacklisted_at = COALESCE(blacklisted_at, NOW()),
                updated_at = NOW()
            WHERE id = $1
            """,
            applied.client_id,
        )


async def _claim(
    conn: asyncpg.Connection, ws: UUID, kind: str, subject: str, claim: Claim
) -> bool:
    """Whether this entry owns the one-time reaction (idempotent on retries)."""
    await conn.execute(
        """
        INSERT INTO reactions (workspace_id, kind, subject, owner_log_id,
            owner_workflow_id, suppressed_reason)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (workspace_id, kind, subject) DO NOTHING
        """,
        ws,
        kind,
        subject,
        claim.log_id,
        claim.workflow_id,
        claim.suppressed,
    )
    row = await conn.fetchrow(
        """
        SELECT owner_log_id, owner_workflow_id, suppressed_reason FROM reactions
        WHERE workspace_id = $1 AND kind = $2 AND subject = $3
        """,
        ws,
        kind,
        subject,
    )
    owner = (row["owner_log_id"], row["owner_workflow_id"])
    return owner == (claim.log_id, claim.workflow_id) and not row["suppressed_reason"]


def _claim_for(entry: JournalEntry) -> Claim:
    return Claim(log_id=entry.log_id, workflow_id=activity.info().workflow_id)


async def _live_packages(
    conn: asyncpg.Connection, ws: UUID, order_id: int
) -> list[int]:
    rows = await conn.fetch(
        """
        SELECT package_id FROM packages
        WHERE workspace_id = $1 AND order_id_base = $2 AND deleted_at IS NULL
        ORDER BY package_id
        """,
        ws,
        order_id,
    )
    return [r["package_id"] for r in rows]


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
    snapshot: Mapping[str, Any],
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
            removed_at = NULL,
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
