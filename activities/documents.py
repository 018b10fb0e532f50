"""Order documents: invoices, receipts and packages, fetched per order from
BaseLinker and kept in their own tables (deleted ones are marked, not dropped)."""

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.baselinker import baselinker_errors
from baselinker.client import BaseLinkerClient
from baselinker.models import Invoice, Package, Receipt, validation_reason
from core.identity import parse_tax_id
from core.workspaces import workspace_id

DocumentKind = Literal["invoices", "receipts", "packages"]
INVALID_DOCUMENT_DATA = "InvalidDocumentData"

#: The documents a journal type changes.
DOCUMENTS_BY_TYPE: dict[int, tuple[DocumentKind, ...]] = {
    4: ("invoices", "receipts"),  # "order/invoice/receipt removed"
    7: ("invoices",),
    19: ("invoices",),
    21: ("invoices",),
    8: ("receipts",),
    20: ("receipts",),
    9: ("packages",),
    10: ("packages",),
    22: ("packages",),
}


class DocumentsRequest(BaseModel):
    """Bring one order's documents of one kind up to BaseLinker's state."""

    workspace: str
    kind: DocumentKind
    order_id: int
    as_of_log_id: int


class DocumentsResult(BaseModel):
    """How many live documents the order has now."""

    live: int


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
            raw = await self._fetch(req.kind, req.order_id)
        try:
            rows = [_ROW_BUILDERS[req.kind](item) for item in raw]
        except ValidationError as err:
            raise ApplicationError(
                f"unreadable {req.kind}: {validation_reason(err)}",
                type=INVALID_DOCUMENT_DATA,
                non_retryable=True,
            ) from err
        ws = await workspace_id(self._pool, req.workspace)
        async with self._pool.acquire() as conn, conn.transaction():
            await _store(conn, ws, req, rows, asked_at)
        return DocumentsResult(live=len(rows))

    async def _fetch(self, kind: DocumentKind, order_id: int) -> list[dict[str, Any]]:
        if kind == "invoices":
            return await self._client.invoices(order_id)
        if kind == "receipts":
            receipt = await self._client.receipt(order_id)
            return [] if receipt is None else [receipt]
        return [
            {**item, "order_id": order_id}
            for item in await self._client.order_packages(order_id)
        ]


def _invoice_row(raw: dict[str, Any]) -> tuple[int, tuple[Any, ...], dict[str, Any]]:
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
    return invoice.invoice_id, columns, raw


def _receipt_row(raw: dict[str, Any]) -> tuple[int, tuple[Any, ...], dict[str, Any]]:
    receipt = Receipt.model_validate(raw)
    columns = (
        receipt.receipt_full_nr,
        receipt.series_id,
        receipt.date_add,
        receipt.payment_method,
        receipt.nip or None,
        receipt.total,
    )
    return receipt.receipt_id, columns, raw


def _package_row(raw: dict[str, Any]) -> tuple[int, tuple[Any, ...], dict[str, Any]]:
    package = Package.model_validate(raw)
    columns = (
        package.courier_code,
        package.courier_package_nr,
        package.courier_inner_number or None,
        package.tracking_status,
        package.tracking_status_date,
        package.tracking_url or None,
    )
    return package.package_id, columns, raw


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


async def _store(
    conn: asyncpg.Connection,
    ws: UUID,
    req: DocumentsRequest,
    rows: list[tuple[int, tuple[Any, ...], dict[str, Any]]],
    asked_at: datetime,
) -> None:
    """Upsert the live documents, mark the order's others deleted, note the sync.

    Every write is guarded by the time the question was asked, so a slower,
    older reply never undoes a newer one.
    """
    # Table and column names come from _TABLES, never from input.
    table, id_column, columns = _TABLES[req.kind]
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
            fetched_at = EXCLUDED.fetched_at, deleted_at = NULL, {updates}
        WHERE t.fetched_at <= EXCLUDED.fetched_at
        """,
        [
            (ws, doc_id, req.order_id, raw, asked_at, *cols)
            for doc_id, cols, raw in rows
        ],
    )
    await conn.execute(
        f"""
        UPDATE {table} SET deleted_at = $4, fetched_at = $4
        WHERE workspace_id = $1 AND order_id_base = $2
          AND NOT ({id_column} = ANY($3::bigint[]))
          AND deleted_at IS NULL AND fetched_at <= $4
        """,
        ws,
        req.order_id,
        [doc_id for doc_id, _, _ in rows],
        asked_at,
    )
    await conn.execute(
        """
        INSERT INTO order_document_syncs AS s (workspace_id, kind, order_id_base,
            as_of_log_id, fetched_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (workspace_id, kind, order_id_base) DO UPDATE SET
            as_of_log_id = GREATEST(s.as_of_log_id, EXCLUDED.as_of_log_id),
            fetched_at = GREATEST(s.fetched_at, EXCLUDED.fetched_at)
        """,
        ws,
        req.kind,
        req.order_id,
        req.as_of_log_id,
        asked_at,
    )
