"""Order documents: invoices, receipts and packages, kept in their own tables
(deleted ones are marked, never dropped). A batch fetches them by id, 100 per
call, where BaseLinker allows it; a single entry fetches its order's."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.baselinker import baselinker_errors
from baselinker.client import BaseLinkerClient
from baselinker.models import Invoice, OptionalInt, Package, Receipt, UnixTime
from baselinker.models import validation_reason as reason_of
from core.identity import parse_tax_id
from core.workspaces import workspace_id

DocumentKind = Literal["invoices", "receipts", "packages"]
INVALID_DOCUMENT_DATA = "InvalidDocumentData"
#: getInvoices and getReceipts return at most this many; status history takes
#: at most this many package ids.
DOCUMENTS_PAGE_SIZE = 100

#: The documents a journal type needs fetched. Deletions (19, 20, 10) need no
#: call: the entry names the deleted document.
DOCUMENTS_BY_TYPE: dict[int, tuple[DocumentKind, ...]] = {
    4: ("invoices", "receipts"),  # "order/invoice/receipt removed"
    7: ("invoices",),
    21: ("invoices",),
    8: ("receipts",),
    9: ("packages",),
    22: ("packages",),
}
#: Kinds whose per-order call lists every live document of the order, so one
#: missing from the reply was deleted. getReceipt returns only the newest
#: receipt: older ones are deleted only by their own journal entry.
WHOLE_ORDER_REPLIES: frozenset[DocumentKind] = frozenset({"invoices", "packages"})
#: Journal types that delete the document named by their object_id.
DELETIONS: dict[int, DocumentKind] = {19: "invoices", 20: "receipts", 10: "packages"}


class DocRef(BaseModel):
    """A document named by a journal entry, and its order."""

    order_id: int
    doc_id: int


class DocumentsRequest(BaseModel):
    """Bring one order's documents of one kind up to BaseLinker's state."""

    workspace: str
    kind: DocumentKind
    order_id: int
    as_of_log_id: int
    #: The receipt the entry names: getReceipt by order returns only the newest.
    doc_id: int | None = None


class DocumentsResult(BaseModel):
    """How many live documents the order has now."""

    live: int


class DocumentsPageRequest(BaseModel):
    """One id_from page of invoices or receipts covering `wanted`."""

    workspace: str
    kind: Literal["invoices", "receipts"]
    id_from: int
    wanted: list[DocRef]
    as_of_log_id: int


class PackageStatusRequest(BaseModel):
    """Tracking statuses of up to 100 packages."""

    workspace: str
    wanted: list[DocRef]
    as_of_log_id: int
    #: Packages the journal just announced, not stored yet; their orders'
    #: snapshots, fetched after the journal, show their courier and number.
    new: list[DocRef] = []


class DocumentsSinceRequest(BaseModel):
    """One id_from page of the invoices or receipts issued since a date."""

    workspace: str
    backfill_id: str
    kind: Literal["invoices", "receipts"]
    date_from: int
    id_from: int = 0


class DocumentsSinceResult(BaseModel):
    """How many documents the page stored, and where the next one starts."""

    stored: int
    next_id_from: int | None = None


class PageResult(BaseModel):
    """What a page left for the next call, or for each entry to fetch itself."""

    remaining: list[DocRef] = []
    unresolved_orders: list[int] = []


class OrderDocuments:
    """BaseLinker-side document activities (task queue `baselinker-api`)."""

    def __init__(self, pool: asyncpg.Pool, client: BaseLinkerClient) -> None:
        self._pool = pool
        self._client = client

    @activity.defn
    async def sync_order_documents(self, req: DocumentsRequest) -> DocumentsResult:
        """One BaseLinker call; the order's rows of that kind follow its reply."""
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            raw = await self._fetch_for_order(req.kind, req.order_id, req.doc_id)
        rows = _rows(req.kind, raw)
        ws = await workspace_id(self._pool, req.workspace)
        async with self._pool.acquire() as conn, conn.transaction():
            await _upsert(conn, ws, req.kind, rows, asked_at)
            if req.kind in WHOLE_ORDER_REPLIES:
                await _delete_others(conn, ws, req, [r[0] for r in rows], asked_at)
            await _mark_synced(conn, ws, req.kind, [req.order_id], req.as_of_log_id)
        return DocumentsResult(live=len(rows))

    @activity.defn
    async def fetch_documents_page(self, req: DocumentsPageRequest) -> PageResult:
        """One id_from call; stores what it returns, marks what it should have."""
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            if req.kind == "invoices":
                raw = await self._client.invoices_from(req.id_from)
            else:
                raw = await self._client.receipts_from(req.id_from)
        rows = _rows(req.kind, raw)
        returned = {r[0] for r in rows}
        horizon = (
            max(returned) if len(raw) >= DOCUMENTS_PAGE_SIZE and returned else None
        )
        covered = [r for r in req.wanted if horizon is None or r.doc_id <= horizon]
        gone = [r.doc_id for r in covered if r.doc_id not in returned]
        ws = await workspace_id(self._pool, req.workspace)
        async with self._pool.acquire() as conn, conn.transaction():
            await _upsert(conn, ws, req.kind, rows, asked_at)
            await _mark_deleted(conn, ws, req.kind, gone)
            await _mark_synced(
                conn, ws, req.kind, _orders_of(covered), req.as_of_log_id
            )
        return PageResult(remaining=[r for r in req.wanted if r not in covered])

    @activity.defn
    async def fetch_documents_since(
        self, req: DocumentsSinceRequest
    ) -> DocumentsSinceResult:
        """One call for a backfill: the documents issued since a date, stored.

        An unreadable document is named in the backfill's progress row and
        skipped, so one bad document does not stop a catch-up. Documents
        deleted before the backfill left no trace to read.
        """
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            if req.kind == "invoices":
                raw = await self._client.invoices_from(req.id_from, req.date_from)
            else:
                raw = await self._client.receipts_from(req.id_from, req.date_from)
        rows: list[Row] = []
        unreadable: list[str] = []
        for item in raw:
            try:
                rows.append(_ROW_BUILDERS[req.kind](item))
            except ValidationError as err:
                unreadable.append(
                    f"{req.kind} {_raw_id(req.kind, item)}: {reason_of(err)}"
                )
        ws = await workspace_id(self._pool, req.workspace)
        async with self._pool.acquire() as conn, conn.transaction():
            await _upsert(conn, ws, req.kind, rows, asked_at)
            await conn.execute(
                """
                UPDATE backfills SET pages = pages + 1,
                    last_error = COALESCE($2, last_error)
                WHERE workflow_id = $1
                """,
                req.backfill_id,
                "; ".join(unreadable) or None,
            )
        ids = [_raw_id(req.kind, item) for item in raw]
        full = len(raw) >= DOCUMENTS_PAGE_SIZE
        return DocumentsSinceResult(
            stored=len(rows), next_id_from=max(ids) + 1 if full else None
        )

    @activity.defn
    async def fetch_package_statuses(self, req: PackageStatusRequest) -> PageResult:
        """One status-history call for up to 100 packages.

        A new package is stored from its order's snapshot when that shows it
        unambiguously; any other package not stored yet leaves its order to
        fetch the whole list for itself.
        """
        refs = [*req.wanted, *req.new]
        ids = [r.doc_id for r in refs]
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            histories = await self._client.package_histories(ids)
        latest = {int(k): _latest(v) for k, v in histories.items() if v}
        ws = await workspace_id(self._pool, req.workspace)
        async with self._pool.acquire() as conn, conn.transaction():
            known = {
                r["package_id"]
                for r in await conn.fetch(
                    """
                    SELECT package_id FROM packages
                    WHERE workspace_id = $1 AND package_id = ANY($2::bigint[])
                    """,
                    ws,
                    ids,
                )
            }
            adopted = [
                row
                for ref in req.new
                if ref.doc_id not in known and ref.doc_id in latest
                for row in await _package_from_snapshot(
                    conn, ws, ref, latest[ref.doc_id], req.as_of_log_id
                )
            ]
            await _upsert(conn, ws, "packages", adopted, asked_at)
            known |= {row[0] for row in adopted}
            await conn.executemany(
                """
                UPDATE packages SET tracking_status = $3, tracking_status_date = $4,
                    fetched_at = $5
                WHERE workspace_id = $1 AND package_id = $2 AND fetched_at <= $5
                """,
                [
                    (ws, p, s.status, s.date, asked_at)
                    for p, s in latest.items()
                    if p in known
                ],
            )
            unresolved = _orders_of(r for r in refs if r.doc_id not in known)
            resolved = [o for o in _orders_of(refs) if o not in unresolved]
            await _mark_synced(conn, ws, "packages", resolved, req.as_of_log_id)
        return PageResult(unresolved_orders=unresolved)

    async def _fetch_for_order(
        self, kind: DocumentKind, order_id: int, doc_id: int | None
    ) -> list[dict[str, Any]]:
        if kind == "invoices":
            return await self._client.invoices(order_id)
        if kind == "receipts":
            if doc_id is not None:
                receipt = await self._client.receipt(receipt_id=doc_id)
            else:
                receipt = await self._client.receipt(order_id=order_id)
            return [] if receipt is None else [receipt]
        return [
            {**item, "order_id": order_id}
            for item in await self._client.order_packages(order_id)
        ]


async def delete_document(
    conn: asyncpg.Connection, ws: UUID, kind: DocumentKind, doc_id: int
) -> None:
    """Mark one document deleted, as a deletion entry says (no call needed)."""
    await _mark_deleted(conn, ws, kind, [doc_id])


class _Status(BaseModel):
    """One step of a package's tracking history."""

    status: OptionalInt = None
    date: UnixTime = None


def _latest(history: list[dict[str, Any]]) -> _Status:
    """The newest step; among steps of the same second, the last one listed."""
    steps = [
        _Status(status=h.get("tracking_status"), date=h.get("tracking_status_date"))
        for h in history
    ]
    never = datetime.min.replace(tzinfo=UTC)
    newest = max(range(len(steps)), key=lambda i: (steps[i].date or never, i))
    return steps[newest]


def _orders_of(refs: Iterable[DocRef]) -> list[int]:
    return sorted({r.order_id for r in refs})


Row = tuple[int, int, tuple[Any, ...], dict[str, Any]]


def _raw_id(kind: Literal["invoices", "receipts"], item: dict[str, Any]) -> int:
    """A document's id as the page's position, however it was written."""
    value = str(item.get("invoice_id" if kind == "invoices" else "receipt_id"))
    return int(value) if value.strip().isdigit() else 0


def _rows(kind: DocumentKind, raw: list[dict[str, Any]]) -> list[Row]:
    try:
        return [_ROW_BUILDERS[kind](item) for item in raw]
    except ValidationError as err:
        raise ApplicationError(
            f"unreadable {kind}: {reason_of(err)}",
            type=INVALID_DOCUMENT_DATA,
            non_retryable=True,
        ) from err


def _invoice_row(raw: dict[str, Any]) -> Row:
    invoice = Invoice.model_validate(raw)
    tax_id = parse_tax_id(invoice.invoice_nip)
    columns = (
        invoice.number,
        invoice.type,
        invoice.series_id,
        invoice.date_add,
        invoice.date_sell,
        invoice.date_pay_to,
        invoice.currency,
        invoice.total_price_brutto,
        invoice.total_price_netto,
        invoice.buyer_name,
        invoice.invoice_nip or None,
        tax_id.digits if tax_id else None,
    )
    return invoice.invoice_id, invoice.order_id, columns, raw


def _receipt_row(raw: dict[str, Any]) -> Row:
    receipt = Receipt.model_validate(raw)
    columns = (
        receipt.receipt_full_nr,
        receipt.series_id,
        receipt.date_add,
        receipt.payment_method,
        receipt.nip or None,
        receipt.total,
    )
    return receipt.receipt_id, receipt.order_id, columns, raw


def _package_row(raw: dict[str, Any]) -> Row:
    package = Package.model_validate(raw)
    columns = (
        package.courier_code,
        package.courier_package_nr,
        package.courier_inner_number or None,
        package.tracking_status,
        package.tracking_status_date,
        package.tracking_url or None,
    )
    return package.package_id, int(raw["order_id"]), columns, raw


_ROW_BUILDERS = {
    "invoices": _invoice_row,
    "receipts": _receipt_row,
    "packages": _package_row,
}

#: Per kind: the table, its id column, and the columns a row builder fills.
_TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "invoices": (
        "invoices",
        "invoice_id",
        (
            "number",
            "type",
            "series_id",
            "date_add",
            "date_sell",
            "date_pay_to",
            "currency",
            "total_price_brutto",
            "total_price_netto",
            "buyer_name",
            "buyer_tax_id_raw",
            "buyer_tax_id",
        ),
    ),
    "receipts": (
        "receipts",
        "receipt_id",
        (
            "receipt_full_nr",
            "series_id",
            "date_add",
            "payment_method",
            "nip",
            "total_price_brutto",
        ),
    ),
    "packages": (
        "packages",
        "package_id",
        (
            "courier_code",
            "courier_package_nr",
            "courier_inner_number",
            "tracking_status",
            "tracking_status_date",
            "tracking_url",
        ),
    ),
}


async def _package_from_snapshot(
    conn: asyncpg.Connection,
    ws: UUID,
    ref: DocRef,
    status: _Status,
    as_of_log_id: int,
) -> list[Row]:
    """The new package's row, as its order's snapshot shows it; none when the
    snapshot is older than the batch, shows no number, or shows a number
    another live package of the order already has (a package created since:
    the order then fetches its whole list)."""
    snapshot = await conn.fetchrow(
        """
        SELECT payload FROM order_snapshots
        WHERE workspace_id = $1 AND order_id_base = $2 AND found
          AND as_of_log_id >= $3
        """,
        ws,
        ref.order_id,
        as_of_log_id,
    )
    if snapshot is None:
        return []
    courier = str(snapshot["payload"].get("delivery_package_module") or "").strip()
    number = str(snapshot["payload"].get("delivery_package_nr") or "").strip()
    if not number:
        return []
    taken = await conn.fetchval(
        """
        SELECT true FROM packages
        WHERE workspace_id = $1 AND order_id_base = $2 AND package_id <> $3
          AND deleted_at IS NULL AND courier_package_nr = $4
        """,
        ws,
        ref.order_id,
        ref.doc_id,
        number,
    )
    if taken:
        return []
    raw = {
        "package_id": ref.doc_id,
        "order_id": ref.order_id,
        "courier_code": courier,
        "courier_package_nr": number,
        "source": "getOrders delivery_package_module/delivery_package_nr",
    }
    columns = (courier, number, None, status.status, status.date, None)
    return [(ref.doc_id, ref.order_id, columns, raw)]


async def _upsert(
    conn: asyncpg.Connection,
    ws: UUID,
    kind: DocumentKind,
    rows: list[Row],
    asked_at: datetime,
) -> None:
    """Store live documents; a slower, older reply never undoes a newer one.

    BaseLinker never brings a deleted document back, so `deleted_at` stays.
    """
    # Table and column names come from _TABLES, never from input.
    table, id_column, columns = _TABLES[kind]
    names = ", ".join(columns)
    placeholders = ", ".join(f"${i}" for i in range(6, 6 + len(columns)))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
    await conn.executemany(
        f"""
        INSERT INTO {table} AS t (workspace_id, {id_column}, order_id_base,
            payload, fetched_at, {names})
        VALUES ($1, $2, $3, $4, $5, {placeholders})
        ON CONFLICT (workspace_id, {id_column}) DO UPDATE SET
            order_id_base = EXCLUDED.order_id_base, payload = EXCLUDED.payload,
            fetched_at = EXCLUDED.fetched_at, {updates}
        WHERE t.fetched_at <= EXCLUDED.fetched_at
        """,
        [
            (ws, doc_id, order, raw, asked_at, *cols)
            for doc_id, order, cols, raw in rows
        ],
    )


async def _delete_others(
    conn: asyncpg.Connection,
    ws: UUID,
    req: DocumentsRequest,
    live: list[int],
    asked_at: datetime,
) -> None:
    """The order's documents missing from a whole-order reply are deleted."""
    table, id_column, _ = _TABLES[req.kind]
    await conn.execute(
        f"""
        UPDATE {table} SET deleted_at = $4
        WHERE workspace_id = $1 AND order_id_base = $2
          AND NOT ({id_column} = ANY($3::bigint[]))
          AND deleted_at IS NULL AND fetched_at <= $4
        """,
        ws,
        req.order_id,
        live,
        asked_at,
    )


async def _mark_deleted(
    conn: asyncpg.Connection, ws: UUID, kind: DocumentKind, doc_ids: list[int]
) -> None:
    table, id_column, _ = _TABLES[kind]
    await conn.execute(
        f"""
        UPDATE {table} SET deleted_at = COALESCE(deleted_at, NOW())
        WHERE workspace_id = $1 AND {id_column} = ANY($2::bigint[])
        """,
        ws,
        doc_ids,
    )


async def _mark_synced(
    conn: asyncpg.Connection,
    ws: UUID,
    kind: DocumentKind,
    order_ids: list[int],
    as_of_log_id: int,
) -> None:
    """Record that these orders' documents reflect every entry up to the id."""
    await conn.executemany(
        """
        INSERT INTO order_document_syncs AS s (workspace_id, kind, order_id_base,
            as_of_log_id, fetched_at)
        VALUES ($1, $2, $3, $4, NOW())
        ON CONFLICT (workspace_id, kind, order_id_base) DO UPDATE SET
            as_of_log_id = GREATEST(s.as_of_log_id, EXCLUDED.as_of_log_id),
            fetched_at = NOW()
        """,
        [(ws, kind, order_id, as_of_log_id) for order_id in order_ids],
    )
