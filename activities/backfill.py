"""Backfill activities: page `getOrders` by date and upsert every order, for
the days the journal no longer holds."""

from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ValidationError
from temporalio import activity

from activities.baselinker import baselinker_errors
from activities.orders import ORDERS_PAGE_SIZE, Claim, apply_order, status_names
from baselinker.client import BaseLinkerClient
from baselinker.models import Order
from core.workspaces import workspace_id

#: Reactions of orders older than the journal window are claimed muted: a
#: catch-up must not greet a client for a purchase made weeks ago.
BACKFILL_SUPPRESSED = "backfill of an old order"

Pass = Literal["confirmed", "unconfirmed", "invoices", "receipts", "done"]


class BackfillPageRequest(BaseModel):
    """One getOrders page of a backfill pass."""

    workspace: str
    backfill_id: str
    since: datetime
    journal_window_start: datetime
    pass_: Pass = "confirmed"
    date_confirmed_from: int | None = None
    id_from: int | None = None
    #: Orders the previous page already synced in its last second.
    seen_order_ids: list[int] = []


class BackfillPageResult(BaseModel):
    """Where the pass goes on from, or that it is done."""

    synced: int
    failed: int
    full: bool
    next_date_confirmed_from: int | None = None
    next_id_from: int | None = None
    next_seen_order_ids: list[int] = []
    #: Orders of the page older than the journal that carry a tracking
    #: number: they have packages no journal entry will bring.
    with_packages: list[int] = []


class BackfillProgress(BaseModel):
    """Start or finish a backfill's progress row."""

    workspace: str
    backfill_id: str
    since: datetime
    error: str | None = None


class Backfiller:
    """Backfill activities; pages run on the BaseLinker task queue."""

    def __init__(self, pool: asyncpg.Pool, client: BaseLinkerClient) -> None:
        self._pool = pool
        self._client = client

    @activity.defn
    async def backfill_orders_page(
        self, req: BackfillPageRequest
    ) -> BackfillPageResult:
        """One getOrders call; every order in it is upserted at once."""
        asked_at = datetime.now(UTC)
        with baselinker_errors():
            raw = await self._client.orders(**_filters(req))
        if req.pass_ == "unconfirmed":
            wanted = [item for item in raw if not _confirmed(item)]
        else:
            seen = set(req.seen_order_ids)
            wanted = [item for item in raw if _order_id(item) not in seen]
        ws = await workspace_id(self._pool, req.workspace)
        orders: list[tuple[Order, dict[str, Any]]] = []
        failed: list[str] = []
        for item in wanted:
            try:
                orders.append((Order.model_validate(item), item))
            except ValidationError as err:
                failed.append(
                    f"order {item.get('order_id')}: {err.error_count()} bad fields"
                )
        names = await status_names(self._pool, ws, [o for o, _ in orders]) or {}
        old = {
            order.order_id
            for order, _ in orders
            if order.date_add is None or order.date_add < req.journal_window_start
        }
        async with self._pool.acquire() as conn, conn.transaction():
            for order, item in orders:
                snapshot = {"payload": item, "fetched_at": asked_at}
                await _store_snapshot(conn, ws, order.order_id, item, asked_at)
                claim = (
                    Claim(log_id=0, suppressed=BACKFILL_SUPPRESSED)
                    if order.order_id in old
                    else None
                )
                await apply_order(conn, ws, order, snapshot, names, claim)
            await conn.execute(
                """
                UPDATE backfills SET pages = pages + 1,
                    orders_synced = orders_synced + $2,
                    orders_failed = orders_failed + $3,
                    last_error = COALESCE($4, last_error)
                WHERE workflow_id = $1
                """,
                req.backfill_id,
                len(orders),
                len(failed),
                "; ".join(failed) or None,
            )
        result = _next(req, raw, len(orders), len(failed))
        # Newer orders' packages come with their journal entries.
        result.with_packages = [
            order.order_id
            for order, item in orders
            if order.order_id in old
            and str(item.get("delivery_package_nr") or "").strip()
        ]
        return result

    @activity.defn
    async def start_backfill(self, progress: BackfillProgress) -> None:
        """Open (or reopen) the backfill's progress row."""
        ws = await workspace_id(self._pool, progress.workspace)
        await self._pool.execute(
            """
            INSERT INTO backfills (workflow_id, workspace_id, since)
            VALUES ($1, $2, $3)
            ON CONFLICT (workflow_id) DO UPDATE SET started_at = NOW(),
                finished_at = NULL, pages = 0, orders_synced = 0,
                orders_failed = 0, last_error = NULL
            """,
            progress.backfill_id,
            ws,
            progress.since,
        )

    @activity.defn
    async def finish_backfill(self, progress: BackfillProgress) -> None:
        """Close the progress row."""
        await self._pool.execute(
            """
            UPDATE backfills SET finished_at = NOW(),
                last_error = COALESCE($2, last_error)
            WHERE workflow_id = $1
            """,
            progress.backfill_id,
            progress.error,
        )


def _filters(req: BackfillPageRequest) -> dict[str, Any]:
    if req.pass_ == "confirmed":
        start = req.date_confirmed_from or int(req.since.timestamp())
        return {"date_confirmed_from": start}
    return {
        "date_from": int(req.since.timestamp()),
        "id_from": req.id_from or 0,
        "get_unconfirmed_orders": True,
    }


def _confirmed(item: dict[str, Any]) -> bool:
    return str(item.get("confirmed", "")).strip().lower() in {"1", "true"}


def _order_id(item: dict[str, Any]) -> int:
    return int(str(item.get("order_id") or 0))


def _confirmed_at(item: dict[str, Any]) -> int:
    return int(str(item.get("date_confirmed") or 0))


def _next(
    req: BackfillPageRequest, raw: list[dict[str, Any]], synced: int, failed: int
) -> BackfillPageResult:
    """Where the next page starts: after the last date, or the last id."""
    full = len(raw) >= ORDERS_PAGE_SIZE
    result = BackfillPageResult(synced=synced, failed=failed, full=full)
    if not full or not raw:
        return result
    if req.pass_ == "confirmed":
        # The next page starts at the last second again, not one past it: the
        # page may have ended halfway through orders confirmed in that second.
        # The ones already synced are skipped. Only a page that is one second
        # throughout must step past it to make progress.
        last = max(_confirmed_at(item) for item in raw)
        start = req.date_confirmed_from or int(req.since.timestamp())
        if last > start:
            result.next_date_confirmed_from = last
            result.next_seen_order_ids = [
                _order_id(item) for item in raw if _confirmed_at(item) == last
            ]
        else:
            result.next_date_confirmed_from = last + 1
    else:
        result.next_id_from = max(_order_id(item) for item in raw) + 1
    return result


async def _store_snapshot(
    conn: asyncpg.Connection,
    ws: Any,
    order_id: int,
    payload: dict[str, Any],
    fetched_at: datetime,
) -> None:
    # as_of_log_id 0: a backfill cannot say which journal entries it covers,
    # so later entries of the order still fetch their own snapshot.
    await conn.execute(
        """
        INSERT INTO order_snapshots AS s (workspace_id, order_id_base, found,
            payload, as_of_log_id, fetched_at)
        VALUES ($1, $2, true, $3, 0, $4)
        ON CONFLICT (workspace_id, order_id_base) DO UPDATE SET
            found = true, payload = EXCLUDED.payload, fetched_at = EXCLUDED.fetched_at
        WHERE s.fetched_at <= EXCLUDED.fetched_at
        """,
        ws,
        order_id,
        payload,
        fetched_at,
    )
