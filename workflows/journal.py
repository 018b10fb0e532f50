"""JournalPoller: follow a workspace's BaseLinker journal, one batch per run."""

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from activities.baselinker import TOKEN_INVALID
    from activities.documents import (
        DOCUMENTS_PAGE_SIZE,
        DocRef,
        DocumentsPageRequest,
        DocumentsRequest,
        OrderDocuments,
        PackageStatusRequest,
    )
    from activities.journal import (
        JournalPage,
        JournalReader,
        Ledger,
        RecordedBatch,
        SyncState,
    )
    from activities.orders import OrderEventInput, OrderSnapshots, OrdersPageRequest
    from baselinker.models import JournalEntry
    from core import search_attributes as sa
    from core.ids import backfill_workflow_id, order_event_workflow_id
    from workflows.backfill import Backfill, BackfillInput
    from workflows.orders import OrderEvent
    from workflows.policies import (
        BASELINKER_CALL_TIMEOUT,
        BASELINKER_RETRY,
        DATABASE_RETRY,
        DATABASE_TIMEOUT,
    )


#: How long BaseLinker keeps journal entries.
JOURNAL_RETENTION = timedelta(days=3)
#: Start a backfill this much before the journal could have lost anything.
GAP_MARGIN = timedelta(hours=1)
#: Executions started before gap detection existed replay without it.
GAP_BACKFILL_PATCH = "journal-gap-backfill"
#: Journal pages (100 entries each) one batch may read while backlogged.
MAX_PAGES_PER_BATCH = 10
#: Executions that read one page per batch replay that way.
MULTI_PAGE_PATCH = "multi-page-batches"
#: Executions that rested a full interval after every batch, prefetched
#: documents before orders and started a batch's children all at once replay
#: that way.
BATCH_PACING_PATCH = "batch-pacing"
#: Children started together, awaited before the next wave starts.
CHILD_START_WAVE = 100
#: Empty polls in a row before the rest starts to grow.
IDLE_POLLS_BEFORE_BACKOFF = 3
#: How much longer each further empty poll rests, up to the idle maximum.
IDLE_BACKOFF_FACTOR = 1.5


class PollerInput(BaseModel):
    """Everything a poller run needs; carried across continue-as-new."""

    workspace: str
    baselinker_task_queue: str
    poll_interval_seconds: float = 30.0
    #: None on the very first run: the stored cursor is loaded then.
    cursor: int | None = None
    paused: bool = False
    pause_reason: str | None = None
    batches: int = 0
    #: When the journal was last read; a long silence means a gap to backfill.
    last_polled_at: datetime | None = None
    #: On a first start, how many days of history to backfill (0: none).
    initial_backfill_days: float = 0.0
    #: Longest rest while the journal stays empty; None keeps the interval.
    idle_max_seconds: float | None = None
    #: Polls in a row that found nothing new.
    idle_polls: int = 0


class PollerState(BaseModel):
    """What the `state` query answers."""

    workspace: str
    cursor: int
    paused: bool
    pause_reason: str | None
    batches: int
    last_batch_size: int
    polling: bool
    last_polled_at: datetime | None = None
    backfilling: bool = False


@workflow.defn
class JournalPoller:
    """Reads one journal batch, hands each entry to an OrderEvent, then rests.

    Every run handles one batch and continues as new, so the history stays
    short however long the poller lives; the cursor travels in the input.
    """

    @workflow.init
    def __init__(self, params: PollerInput) -> None:
        self._poll_now = False
        self._pacing = False
        self._paused = params.paused
        self._pause_reason = params.pause_reason
        self._state = PollerState(
            workspace=params.workspace,
            cursor=params.cursor or 0,
            paused=params.paused,
            pause_reason=params.pause_reason,
            batches=params.batches,
            last_batch_size=0,
            polling=False,
            last_polled_at=params.last_polled_at,
        )

    @workflow.run
    async def run(self, params: PollerInput) -> None:
        self._pacing = workflow.patched(BATCH_PACING_PATCH)
        cursor = params.cursor
        if cursor is None:
            stored = await workflow.execute_activity_method(
                Ledger.load_cursor,
                params.workspace,
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )
            cursor = stored.cursor
            self._state.cursor = cursor
            self._state.last_polled_at = stored.last_polled_at
            if stored.paused:
                self._paused, self._pause_reason = True, stored.pause_reason

        if not self._paused and workflow.patched(GAP_BACKFILL_PATCH):
            since = self._gap_start(params, cursor)
            if since is not None:
                await self._backfill(params, since)

        if self._paused:
            await self._save(params, cursor, 0)
            await workflow.wait_condition(lambda: not self._paused)

        full = False
        batch_size = 0
        idle_polls = params.idle_polls
        batch_started = workflow.now()
        if not self._paused:
            # Cleared before the batch, so a poll_now that arrives during it
            # wakes the next wait instead of being lost.
            self._poll_now = False
            self._state.polling = True
            cursor, batch_size, full = await self._poll_once(params, cursor)
            self._state.polling = False
            idle_polls = idle_polls + 1 if batch_size == 0 else 0
        await self._save(params, cursor, batch_size)

        rest = timedelta(seconds=params.poll_interval_seconds)
        if self._pacing:
            rest = rest_before_next_poll(
                params, idle_polls, workflow.now() - batch_started
            )
        if not full and rest > timedelta(0):
            # The rest running out is the normal way to wake up.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._poll_now, timeout=rest)

        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            params.model_copy(
                update={
                    "cursor": cursor,
                    "paused": self._paused,
                    "pause_reason": self._pause_reason,
                    "batches": params.batches + 1,
                    "last_polled_at": self._state.last_polled_at,
                    "idle_polls": idle_polls,
                }
            )
        )

    @workflow.signal
    def poll_now(self) -> None:
        """Poll again at once instead of waiting out the interval."""
        self._poll_now = True

    @workflow.signal
    def pause(self, reason: str) -> None:
        """Stop polling after the current batch, until `resume`."""
        self._paused, self._pause_reason = True, reason or "paused by operator"

    @workflow.signal
    def resume(self) -> None:
        """Resume polling (after fixing the token, for instance)."""
        self._paused, self._pause_reason = False, None
        self._poll_now = True

    @workflow.query
    def state(self) -> PollerState:
        """Cursor, pause state and batch counts."""
        return self._state.model_copy(
            update={"paused": self._paused, "pause_reason": self._pause_reason}
        )

    async def _poll_once(
        self, params: PollerInput, cursor: int
    ) -> tuple[int, int, bool]:
        """One batch: returns (new cursor, entries read, whether the page was full).

        While pages come back full (a backlog), up to MAX_PAGES_PER_BATCH are
        read first: one batch then fetches each order once for all its
        entries, which is what spares the account's request budget.
        """
        pages = MAX_PAGES_PER_BATCH if workflow.patched(MULTI_PAGE_PATCH) else 1
        try:
            page = await self._read_journal(params, cursor, pages)
        except ActivityError as err:
            if not _is_token_invalid(err):
                raise
            self._paused = True
            self._pause_reason = _message(err)
            workflow.logger.error(
                "BaseLinker rejected the token; polling paused until resume",
                extra={"workspace": params.workspace, "reason": self._pause_reason},
            )
            return cursor, 0, False
        self._state.last_polled_at = workflow.now()
        if not page.entries and not page.unreadable:
            return cursor, 0, page.full

        batch: RecordedBatch = await workflow.execute_activity_method(
            Ledger.record_journal,
            page,
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )

        newest = max(
            [e.log_id for e in page.entries] + [u.log_id for u in page.unreadable]
        )
        await self._prefetch(params, batch, newest)

        if self._pacing:
            # The server starts waves of 100 children more than twice as fast
            # as a thousand at once (bench/server.py).
            entries = batch.to_process
            for start in range(0, len(entries), CHILD_START_WAVE):
                wave = entries[start : start + CHILD_START_WAVE]
                await asyncio.gather(*(self._start_child(params, e) for e in wave))
        else:
            await asyncio.gather(
                *(self._start_child(params, e) for e in batch.to_process)
            )

        size = len(page.entries) + len(page.unreadable)
        self._state_after(newest, size)
        return newest, size, page.full

    async def _read_journal(
        self, params: PollerInput, cursor: int, pages: int
    ) -> JournalPage:
        """Up to `pages` journal pages from the cursor, as one page."""
        page: JournalPage = await self._fetch_journal(params, cursor)
        for _ in range(pages - 1):
            if not page.full:
                break
            newest = max(
                [e.log_id for e in page.entries] + [u.log_id for u in page.unreadable],
                default=cursor,
            )
            more = await self._fetch_journal(params, newest)
            page = JournalPage(
                workspace=page.workspace,
                entries=page.entries + more.entries,
                unreadable=page.unreadable + more.unreadable,
                full=more.full,
            )
        return page

    async def _fetch_journal(self, params: PollerInput, cursor: int) -> JournalPage:
        page: JournalPage = await workflow.execute_activity_method(
            JournalReader.fetch_journal,
            SyncState(workspace=params.workspace, cursor=cursor),
            task_queue=params.baselinker_task_queue,
            start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
            retry_policy=BASELINKER_RETRY,
        )
        return page

    async def _prefetch(
        self, params: PollerInput, batch: RecordedBatch, newest: int
    ) -> None:
        """Fetch what the batch's entries need in as few calls as ids allow.

        Best effort: whatever fails here, each OrderEvent fetches for itself
        and fails alone, with its reason in the ledger.
        """
        if batch.statuses_stale:
            await workflow.execute_activity_method(
                OrderSnapshots.refresh_statuses,
                params.workspace,
                task_queue=params.baselinker_task_queue,
                start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                retry_policy=BASELINKER_RETRY,
            )
        wanted = sorted(batch.prefetch_order_ids)
        if self._pacing:
            # Together: the request budget spaces them, their round trips
            # overlap. Package statuses wait for the orders: a new package's
            # courier and number come from its order's fresh snapshot.
            documents = self._document_calls(params, batch, newest, packages=False)
            then_packages = self._orders_then_packages(params, batch, wanted, newest)
            fetched = await asyncio.gather(
                *documents, then_packages, return_exceptions=True
            )
        else:
            documents = self._document_calls(params, batch, newest, packages=True)
            fetched = await asyncio.gather(*documents, return_exceptions=True)
            await self._prefetch_orders(params, wanted, newest)
        failures = [f for f in fetched if isinstance(f, BaseException)]
        if failures:
            workflow.logger.warning(
                "document prefetch failed; events will fetch for themselves",
                extra={"workspace": params.workspace, "failed": len(failures)},
            )

    async def _orders_then_packages(
        self, params: PollerInput, batch: RecordedBatch, wanted: list[int], newest: int
    ) -> None:
        """Order snapshots first, then every package status call of the batch."""
        await self._prefetch_orders(params, wanted, newest)
        plan = batch.documents
        await asyncio.gather(
            *self._package_status_calls(
                params, plan.package_statuses, plan.new_packages, newest
            )
        )

    async def _prefetch_orders(
        self, params: PollerInput, wanted: list[int], newest: int
    ) -> None:
        """id_from pages until every wanted order's snapshot is stored."""
        while wanted:
            try:
                result = await workflow.execute_activity_method(
                    OrderSnapshots.fetch_orders_page,
                    OrdersPageRequest(
                        workspace=params.workspace,
                        id_from=wanted[0],
                        wanted=wanted,
                        as_of_log_id=newest,
                    ),
                    task_queue=params.baselinker_task_queue,
                    start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                    retry_policy=BASELINKER_RETRY,
                )
            except ActivityError:
                workflow.logger.warning(
                    "order prefetch failed; events will fetch for themselves",
                    extra={"workspace": params.workspace},
                )
                return
            wanted = result.remaining

    def _gap_start(self, params: PollerInput, cursor: int) -> datetime | None:
        """Where a backfill must start, or None when the journal has it all.

        The journal keeps 3 days: a poller silent for (almost) that long, or
        a first start on an account with history, would miss orders.
        """
        now = workflow.now()
        last = self._state.last_polled_at
        if last is None:
            if cursor == 0 and params.initial_backfill_days > 0:
                return now - timedelta(days=params.initial_backfill_days)
            return None
        if now - last > JOURNAL_RETENTION - GAP_MARGIN:
            return last - GAP_MARGIN
        return None

    async def _backfill(self, params: PollerInput, since: datetime) -> None:
        """Run a Backfill from `since` and wait for it; pause if it fails."""
        self._state.backfilling = True
        since_unix = int(since.timestamp())
        try:
            await workflow.execute_child_workflow(
                Backfill.run,
                BackfillInput(
                    workspace=params.workspace,
                    baselinker_task_queue=params.baselinker_task_queue,
                    since=since,
                    journal_window_start=workflow.now() - JOURNAL_RETENTION,
                ),
                id=backfill_workflow_id(params.workspace, since_unix),
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(sa.WORKSPACE, params.workspace)]
                ),
            )
        except WorkflowAlreadyStartedError:
            # The same backfill started by an operator is already running.
            pass
        except ChildWorkflowError as err:
            self._paused = True
            self._pause_reason = (
                f"backfill since {since.isoformat()} failed ({_root_cause(err)}); run "
                f"`starter.py backfill --since {since.date()}`, then `resume`"
            )
            workflow.logger.error(
                "backfill failed; polling paused",
                extra={"workspace": params.workspace, "reason": self._pause_reason},
            )
        # Whatever the outcome, the gap is dealt with: do not trigger it again.
        self._state.last_polled_at = workflow.now()
        self._state.backfilling = False

    def _document_calls(
        self, params: PollerInput, batch: RecordedBatch, newest: int, packages: bool
    ) -> list[Awaitable[Any]]:
        """The calls that fetch the batch's documents, to run together; with
        `packages`, the package status calls too."""
        plan = batch.documents
        options: dict[str, Any] = {
            "task_queue": params.baselinker_task_queue,
            "start_to_close_timeout": BASELINKER_CALL_TIMEOUT,
            "retry_policy": BASELINKER_RETRY,
        }
        calls: list[Awaitable[Any]] = [
            self._document_pages(params, "invoices", plan.invoices, newest, options),
            self._document_pages(params, "receipts", plan.receipts, newest, options),
        ]
        if packages:
            calls += self._package_status_calls(
                params, plan.package_statuses, [], newest
            )
        calls += [
            workflow.execute_activity_method(
                OrderDocuments.sync_order_documents,
                DocumentsRequest(
                    workspace=params.workspace,
                    kind=fetch.kind,
                    order_id=fetch.order_id,
                    as_of_log_id=newest,
                ),
                **options,
            )
            for fetch in plan.per_order
        ]
        return calls

    def _package_status_calls(
        self,
        params: PollerInput,
        known: list[DocRef],
        new: list[DocRef],
        newest: int,
    ) -> list[Awaitable[Any]]:
        """One status-history call per 100 packages, known ones first."""
        refs = [(r, False) for r in known] + [(r, True) for r in new]
        chunks = [
            refs[start : start + DOCUMENTS_PAGE_SIZE]
            for start in range(0, len(refs), DOCUMENTS_PAGE_SIZE)
        ]
        return [
            workflow.execute_activity_method(
                OrderDocuments.fetch_package_statuses,
                PackageStatusRequest(
                    workspace=params.workspace,
                    wanted=[r for r, is_new in chunk if not is_new],
                    new=[r for r, is_new in chunk if is_new],
                    as_of_log_id=newest,
                ),
                task_queue=params.baselinker_task_queue,
                start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                retry_policy=BASELINKER_RETRY,
            )
            for chunk in chunks
        ]

    async def _document_pages(
        self,
        params: PollerInput,
        kind: Literal["invoices", "receipts"],
        wanted: list[DocRef],
        newest: int,
        options: dict[str, Any],
    ) -> None:
        """id_from pages until every wanted invoice (or receipt) is covered."""
        remaining = sorted(wanted, key=lambda r: r.doc_id)
        while remaining:
            page = await workflow.execute_activity_method(
                OrderDocuments.fetch_documents_page,
                DocumentsPageRequest(
                    workspace=params.workspace,
                    kind=kind,
                    id_from=remaining[0].doc_id,
                    wanted=remaining,
                    as_of_log_id=newest,
                ),
                **options,
            )
            remaining = page.remaining

    async def _start_child(self, params: PollerInput, entry: JournalEntry) -> None:
        assert entry.order_id is not None
        # The same entry seen again (a re-read or a replayed batch): the first
        # OrderEvent owns it, and the server refuses the duplicate start.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                OrderEvent.run,
                OrderEventInput(
                    workspace=params.workspace,
                    entry=entry,
                    baselinker_task_queue=params.baselinker_task_queue,
                ),
                id=order_event_workflow_id(params.workspace, entry.log_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=sa.order_event_search_attributes(
                    params.workspace, entry
                ),
            )

    def _state_after(self, cursor: int, size: int) -> None:
        self._state.cursor = cursor
        self._state.last_batch_size = size

    async def _save(self, params: PollerInput, cursor: int, size: int) -> None:
        await workflow.execute_activity_method(
            Ledger.save_cursor,
            SyncState(
                workspace=params.workspace,
                cursor=cursor,
                batch_size=size,
                paused=self._paused,
                pause_reason=self._pause_reason,
                last_polled_at=self._state.last_polled_at,
            ),
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )


def rest_before_next_poll(
    params: PollerInput, idle_polls: int, spent: timedelta
) -> timedelta:
    """How long to rest after a batch that took `spent`.

    Polls start an interval apart, so the batch's own time is not added to
    the wait; while the journal stays empty the interval grows towards the
    idle maximum, sparing the account's budget.
    """
    interval = params.poll_interval_seconds
    extra = idle_polls - IDLE_POLLS_BEFORE_BACKOFF
    if params.idle_max_seconds is not None and extra > 0:
        longest = max(interval, params.idle_max_seconds)
        interval = min(interval * IDLE_BACKOFF_FACTOR**extra, longest)
    return max(timedelta(0), timedelta(seconds=interval) - spent)


def _message(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, FailureError) else str(err)


def _is_token_invalid(err: ActivityError) -> bool:
    cause = err.cause
    return isinstance(cause, ApplicationError) and cause.type == TOKEN_INVALID


def _root_cause(err: BaseException) -> str:
    """The innermost message of a failure chain: what actually went wrong."""
    while err.__cause__ is not None:
        err = err.__cause__
    return str(err)
