"""Journal activities: read BaseLinker's journal, keep the ledger and the cursor."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ValidationError
from temporalio import activity

from activities.baselinker import baselinker_errors
from activities.documents import DOCUMENTS_BY_TYPE, DocRef, DocumentKind
from activities.orders import RELATED_ORDER_TYPES
from baselinker.client import BaseLinkerClient
from baselinker.models import EVENT_NAMES, JournalEntry, event_name, validation_reason
from core.workspaces import workspace_id

log = structlog.get_logger(__name__)

#: Journal types the order pipeline processes: every documented one. Any other
#: type is ledgered as ignored with its number.
HANDLED_TYPES = frozenset(EVENT_NAMES)
#: getJournalList returns at most this many entries; a full page means more wait.
JOURNAL_PAGE_SIZE = 100
#: How old the cached status list may be before a batch refreshes it.
STATUS_LIST_MAX_AGE = timedelta(hours=1)


class UnreadableEntry(BaseModel):
    """A journal entry whose fields could not be parsed."""

    log_id: int
    log_type: int
    order_id: int | None
    reason: str
    payload: dict[str, Any]


class JournalPage(BaseModel):
    """New journal entries after the cursor, in log order."""

    workspace: str
    entries: list[JournalEntry]
    unreadable: list[UnreadableEntry] = []
    full: bool


class DocumentFetch(BaseModel):
    """One order's documents of one kind, to fetch for a batch."""

    kind: DocumentKind
    order_id: int


class DocumentPlan(BaseModel):
    """How a batch fetches the documents its entries name, in few calls."""

    #: Invoices and receipts by id, 100 per call.
    invoices: list[DocRef] = []
    receipts: list[DocRef] = []
    #: Tracking statuses of known packages, 100 per call.
    package_statuses: list[DocRef] = []
    #: Packages created in the batch, one per order: their order's snapshot
    #: shows courier and number, so they join the status calls.
    new_packages: list[DocRef] = []
    #: What can only be fetched order by order (new packages, removals).
    per_order: list[DocumentFetch] = []


class RecordedBatch(BaseModel):
    """What the ledger says is left to do for a batch."""

    to_process: list[JournalEntry]
    prefetch_order_ids: list[int]
    documents: DocumentPlan = DocumentPlan()
    statuses_stale: bool


class SyncState(BaseModel):
    """The poller's position, mirrored into `baselinker_sync_state`."""

    workspace: str
    cursor: int
    batch_size: int = 0
    paused: bool = False
    pause_reason: str | None = None
    #: When the journal was last read successfully; None before the first read.
    last_polled_at: datetime | None = None


def _first_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def read_page(workspace: str, raw: list[dict[str, Any]], cursor: int) -> JournalPage:
    """Parse a raw journal page, dropping entries at or below the cursor."""
    entries: list[JournalEntry] = []
    unreadable: list[UnreadableEntry] = []
    for item in raw:
        log_id = _first_int(item.get("log_id"))
        if log_id is None or log_id <= cursor:
            if log_id is None:
                log.warning("journal_entry_without_log_id", payload=item)
            continue
        try:
            entries.append(JournalEntry.model_validate(item))
        except ValidationError as err:
            unreadable.append(
                UnreadableEntry(
                    log_id=log_id,
                    log_type=_first_int(item.get("log_type")) or 0,
                    order_id=_first_int(item.get("order_id")),
                    reason=f"unreadable journal entry: {validation_reason(err)}",
                    payload=item,
                )
            )
    entries.sort(key=lambda e: e.log_id)
    return JournalPage(
        workspace=workspace,
        entries=entries,
        unreadable=unreadable,
        full=len(raw) >= JOURNAL_PAGE_SIZE,
    )


def ignore_reason(entry: JournalEntry) -> str | None:
    """Why an entry needs no processing, or None when it does."""
    if entry.log_type not in HANDLED_TYPES:
        return f"unknown event type {entry.log_type}"
    if entry.order_id is None:
        return "journal entry carries no order id"
    return None


class JournalReader:
    """BaseLinker-side journal activities (task queue `baselinker-api`)."""

    def __init__(self, client: BaseLinkerClient) -> None:
        self._client = client

    @activity.defn
    async def fetch_journal(self, state: SyncState) -> JournalPage:
        """One getJournalList call from the cursor."""
        with baselinker_errors():
            raw = await self._client.journal(state.cursor)
        return read_page(state.workspace, raw, state.cursor)


class Ledger:
    """Database-side journal activities: the `event_queue` ledger and cursor."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn
    async def load_cursor(self, workspace: str) -> SyncState:
        """The stored position of a workspace's poller (0 when new)."""
        ws = await workspace_id(self._pool, workspace)
        row = await self._pool.fetchrow(
            """
            SELECT last_log_id, paused, pause_reason, last_polled_at
            FROM baselinker_sync_state WHERE workspace_id = $1
            """,
            ws,
        )
        if row is None:
            return SyncState(workspace=workspace, cursor=0)
        return SyncState(
            workspace=workspace,
            cursor=row["last_log_id"] or 0,
            paused=bool(row["paused"]),
            pause_reason=row["pause_reason"],
            last_polled_at=row["last_polled_at"],
        )

    @activity.defn
    async def save_cursor(self, state: SyncState) -> None:
        """Mirror the poller's position into `baselinker_sync_state`."""
        ws = await workspace_id(self._pool, state.workspace)
        await self._pool.execute(
            """
            INSERT INTO baselinker_sync_state AS s (workspace_id, last_log_id,
                last_sync_at, is_syncing, paused, pause_reason, last_batch_size,
                last_polled_at)
            VALUES ($1, $2, NOW(), false, $3, $4, $5, $6)
            ON CONFLICT (workspace_id) DO UPDATE SET
                last_log_id = GREATEST(s.last_log_id, EXCLUDED.last_log_id),
                last_sync_at = NOW(),
                paused = EXCLUDED.paused,
                pause_reason = EXCLUDED.pause_reason,
                last_batch_size = EXCLUDED.last_batch_size,
                last_polled_at = GREATEST(s.last_polled_at, EXCLUDED.last_polled_at)
            """,
            ws,
            state.cursor,
            state.paused,
            state.pause_reason,
            state.batch_size,
            state.last_polled_at,
        )

    @activity.defn
    async def record_journal(self, page: JournalPage) -> RecordedBatch:
        """Ledger every entry once; say which still need an OrderEvent."""
        ws = await workspace_id(self._pool, page.workspace)
        rows = [_ledger_row(ws, entry) for entry in page.entries]
        rows += [_unreadable_row(ws, item) for item in page.unreadable]
        log_ids = [entry.log_id for entry in page.entries]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                """
                INSERT INTO event_queue (workspace_id, event_log_id, event_type,
                    event_name, order_id, object_id, event_date, payload, status,
                    ignore_reason, error_message, processed_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                    CASE WHEN $9 = 'pending' THEN NULL ELSE NOW() END)
                ON CONFLICT (workspace_id, event_log_id) DO NOTHING
                """,
                rows,
            )
            open_ids = {
                r["event_log_id"]
                for r in await conn.fetch(
                    """
                    SELECT event_log_id FROM event_queue
                    WHERE workspace_id = $1 AND event_log_id = ANY($2::bigint[])
                      AND status IN ('pending', 'processing')
                    """,
                    ws,
                    log_ids,
                )
            }
            to_process = [e for e in page.entries if e.log_id in open_ids]
            prefetch = await _orders_needing_snapshot(conn, ws, to_process)
            documents = await _documents_needing_sync(conn, ws, to_process)
            statuses_at = await conn.fetchval(
                "SELECT min(fetched_at) FROM order_statuses WHERE workspace_id = $1",
                ws,
            )
        stale = statuses_at is None or (
            datetime.now(UTC) - statuses_at > STATUS_LIST_MAX_AGE
        )
        return RecordedBatch(
            to_process=to_process,
            prefetch_order_ids=prefetch,
            documents=documents,
            statuses_stale=bool(to_process) and stale,
        )


def _ledger_row(ws: Any, entry: JournalEntry) -> tuple[Any, ...]:
    reason = ignore_reason(entry)
    return (
        ws,
        entry.log_id,
        entry.log_type,
        entry.event_name,
        entry.order_id,
        entry.object_id,
        entry.date,
        entry.model_dump(mode="json"),
        "pending" if reason is None else "ignored",
        reason,
        None,
    )


def _unreadable_row(ws: Any, item: UnreadableEntry) -> tuple[Any, ...]:
    return (
        ws,
        item.log_id,
        item.log_type,
        event_name(item.log_type),
        item.order_id,
        None,
        None,
        item.payload,
        "failed",
        None,
        item.reason,
    )


async def _orders_needing_snapshot(
    conn: asyncpg.Connection, ws: Any, entries: list[JournalEntry]
) -> list[int]:
    """Orders whose stored snapshot is older than their newest entry here."""
    newest: dict[int, int] = {}
    for entry in entries:
        related = entry.object_id if entry.log_type in RELATED_ORDER_TYPES else None
        for order_id in filter(None, (entry.order_id, related)):
            newest[order_id] = max(newest.get(order_id, 0), entry.log_id)
    if not newest:
        return []
    fresh = await conn.fetch(
        """
        SELECT order_id_base, as_of_log_id FROM order_snapshots
        WHERE workspace_id = $1 AND order_id_base = ANY($2::bigint[])
        """,
        ws,
        list(newest),
    )
    as_of = {r["order_id_base"]: r["as_of_log_id"] for r in fresh}
    return sorted(o for o, log_id in newest.items() if as_of.get(o, 0) < log_id)


async def _documents_needing_sync(
    conn: asyncpg.Connection, ws: Any, entries: list[JournalEntry]
) -> DocumentPlan:
    """What the batch must fetch so that its entries find their documents."""
    needs = [
        e for e in entries if e.order_id is not None and e.log_type in DOCUMENTS_BY_TYPE
    ]
    if not needs:
        return DocumentPlan()
    synced = await conn.fetch(
        """
        SELECT kind, order_id_base, as_of_log_id FROM order_document_syncs
        WHERE workspace_id = $1 AND order_id_base = ANY($2::bigint[])
        """,
        ws,
        list({e.order_id for e in needs}),
    )
    as_of = {(r["kind"], r["order_id_base"]): r["as_of_log_id"] for r in synced}
    plan = DocumentPlan()
    per_order: set[tuple[DocumentKind, int]] = set()
    statuses: dict[int, DocRef] = {}
    created: dict[int, list[DocRef]] = {}
    for entry in needs:
        assert entry.order_id is not None
        for kind in DOCUMENTS_BY_TYPE[entry.log_type]:
            if as_of.get((kind, entry.order_id), 0) >= entry.log_id:
                continue
            ref = (
                DocRef(order_id=entry.order_id, doc_id=entry.object_id)
                if entry.object_id is not None
                else None
            )
            if ref is not None and entry.log_type in (7, 21):
                plan.invoices.append(ref)
            elif ref is not None and entry.log_type == 8:
                plan.receipts.append(ref)
            elif ref is not None and entry.log_type == 22:
                statuses[ref.doc_id] = ref
            elif ref is not None and entry.log_type == 9:
                created.setdefault(entry.order_id, []).append(ref)
            else:
                per_order.add((kind, entry.order_id))
    for order_id, refs in created.items():
        # The order shows only its newest package: two new ones need the list.
        if len(refs) == 1 and ("packages", order_id) not in per_order:
            plan.new_packages.append(refs[0])
        else:
            per_order.add(("packages", order_id))
    listed = {order_id for kind, order_id in per_order if kind == "packages"}
    plan.package_statuses = [r for r in statuses.values() if r.order_id not in listed]
    plan.per_order = [
        DocumentFetch(kind=kind, order_id=order_id)
        for kind, order_id in sorted(per_order)
    ]
    return plan
