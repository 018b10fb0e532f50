"""Backfill: sync every order since a date, for days the journal no longer has."""

from datetime import datetime

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.backfill import (
        Backfiller,
        BackfillPageRequest,
        BackfillProgress,
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
    """Pages getOrders by confirmation date, then unconfirmed orders by id.

    Each page is one BaseLinker call on the rate-capped queue and one
    transaction; progress is kept in the `backfills` table for `status`.
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
            result = await workflow.execute_activity_method(
                Backfiller.backfill_orders_page,
                page,
                task_queue=params.baselinker_task_queue,
                start_to_close_timeout=BASELINKER_CALL_TIMEOUT,
                retry_policy=BASELINKER_RETRY,
            )
            synced, failed = synced + result.synced, failed + result.failed
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
            else:
                await workflow.execute_activity_method(
                    Backfiller.finish_backfill,
                    progress,
                    start_to_close_timeout=DATABASE_TIMEOUT,
                    retry_policy=DATABASE_RETRY,
                )
                return BackfillResult(synced=synced, failed=failed)

        workflow.continue_as_new(
            params.model_copy(update={"page": page, "synced": synced, "failed": failed})
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
