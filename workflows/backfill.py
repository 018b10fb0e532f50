"""Backfill: sync every order since a date, for days the journal no longer has."""

import asyncio
from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.backfill import (
        Backfiller,
        BackfillPageRequest,
        BackfillProgress,
    )
    from activities.documents import (
        INVALID_DOCUMENT_DATA,
        DocumentsRequest,
        DocumentsSinceRequest,
        OrderDocuments,
    )
    from activities.orders import OrderSnapshots
    from workflows.policies import (
        BASELINKER_CALL_TIMEOUT,
        BASELINKER_RETRY,
        DATABASE_RETRY,
        DATABASE_TIMEOUT,
    )

#: Pages per run before continuing as new, to keep each history short.
PAGES_PER_RUN = 50
#: Backfills also fetch the invoices, receipts and packages of their days.
BACKFILL_DOCUMENTS = "backfill-documents"


class BackfillInput(BaseModel):
    """Where a backfill stands; carried across continue-as-new."""

    workspace: str
    baselinker_task_queue: str
    since: datetime
    #: Orders added before this are old: their reactions are claimed muted.
    journal_window_start: datetime
    page: BackfillPageRequest | None = None
    synced: int = 0
    failed: int = 0


class BackfillResult(BaseModel):
    """How many orders the backfill synced, and how many it could not read."""

    synced: int
    failed: int


@workflow.defn
class Backfill:
    """Pages getOrders by confirmation date, then unconfirmed orders by id,
    then the invoices and receipts issued since the date.

    Each page is one BaseLinker call on the rate-capped queue and one
    transaction; an order with a tracking number also gets its packages
    fetched. Progress is kept in the `backfills` table for `status`.
    """

    @workflow.run
    async def run(self, params: BackfillInput) -> BackfillResult:
        backfill_id = workflow.info().workflow_id
        progress = BackfillProgress(
            workspace=params.workspace, backfill_id=backfill_id, since=params.since
        )
        page = params.page
        if page is None:
            await self._begin(params, progress)
            page = BackfillPageRequest(
                workspace=params.workspace,
                backfill_id=backfill_id,
                since=params.since,
                journal_window_start=params.journal_window_start,
            )

        synced, failed = params.synced, params.failed
        for _ in range(PAGES_PER_RUN):
            if page.pass_ in ("invoices", "receipts"):
                page = await self._documents_page(params, page)
                continue
            if page.pass_ == "done":
                await self._finish(progress)
                return BackfillResult(synced=synced, failed=failed)
            result = await workflow.execute_activity_method(
                Backfiller.backfill_orders_page,
                page,
                task_queue=params.baselinker_task_queue,
                start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                retry_policy=BASELINKER_RETRY,
            )
            synced, failed = synced + result.synced, failed + result.failed
            if result.with_packages and workflow.patched(BACKFILL_DOCUMENTS):
                failed += await self._packages(params, result.with_packages)
            if result.full:
                page = page.model_copy(
                    update={
                        "date_confirmed_from": result.next_date_confirmed_from,
                        "id_from": result.next_id_from,
                        "seen_order_ids": result.next_seen_order_ids,
                    }
                )
            elif page.pass_ == "confirmed":
                page = page.model_copy(update={"pass_": "unconfirmed", "id_from": 0})
            elif workflow.patched(BACKFILL_DOCUMENTS):
                page = page.model_copy(update={"pass_": "invoices", "id_from": 0})
            else:
                await self._finish(progress)
                return BackfillResult(synced=synced, failed=failed)

        workflow.continue_as_new(
            params.model_copy(update={"page": page, "synced": synced, "failed": failed})
        )

    async def _documents_page(
        self, params: BackfillInput, page: BackfillPageRequest
    ) -> BackfillPageRequest:
        """One page of invoices or receipts; the page that follows it."""
        kind = "invoices" if page.pass_ == "invoices" else "receipts"
        result = await workflow.execute_activity_method(
            OrderDocuments.fetch_documents_since,
            DocumentsSinceRequest(
                workspace=params.workspace,
                backfill_id=page.backfill_id,
                kind=kind,
                date_from=int(params.since.timestamp()),
                id_from=page.id_from or 0,
            ),
            task_queue=params.baselinker_task_queue,
            start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
            retry_policy=BASELINKER_RETRY,
        )
        if result.next_id_from is not None:
            return page.model_copy(update={"id_from": result.next_id_from})
        following = "receipts" if kind == "invoices" else "done"
        return page.model_copy(update={"pass_": following, "id_from": 0})

    async def _packages(self, params: BackfillInput, order_ids: list[int]) -> int:
        """Each order's packages, one call per order, together on the capped
        queue (BaseLinker has no bulk package list); how many were unreadable."""
        outcomes = await asyncio.gather(
            *(self._order_packages(params, order_id) for order_id in order_ids)
        )
        return outcomes.count(False)

    async def _order_packages(self, params: BackfillInput, order_id: int) -> bool:
        try:
            await workflow.execute_activity_method(
                OrderDocuments.sync_order_documents,
                DocumentsRequest(
                    workspace=params.workspace,
                    kind="packages",
                    order_id=order_id,
                    as_of_log_id=0,
                ),
                task_queue=params.baselinker_task_queue,
                start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                retry_policy=BASELINKER_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if not (
                isinstance(cause, ApplicationError)
                and cause.type == INVALID_DOCUMENT_DATA
            ):
                raise
            workflow.logger.warning(
                "unreadable packages skipped",
                extra={"order_id": order_id, "reason": cause.message},
            )
            return False
        return True

    async def _finish(self, progress: BackfillProgress) -> None:
        await workflow.execute_activity_method(
            Backfiller.finish_backfill,
            progress,
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )

    async def _begin(self, params: BackfillInput, progress: BackfillProgress) -> None:
        await workflow.execute_activity_method(
            Backfiller.start_backfill,
            progress,
            start_to_close_timeout=DATABASE_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        # Status names come from their own call; orders carry only the id.
        await workflow.execute_activity_method(
            OrderSnapshots.refresh_statuses,
            params.workspace,
            task_queue=params.baselinker_task_queue,
            start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
            retry_policy=BASELINKER_RETRY,
        )
