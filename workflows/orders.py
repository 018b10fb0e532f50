"""OrderEvent: bring one journal entry's order into the database."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.documents import (
        DOCUMENTS_BY_TYPE,
        DocumentsRequest,
        OrderDocuments,
    )
    from activities.orders import (
        RELATED_ORDER_TYPES,
        FailureReport,
        Need,
        OrderEventInput,
        OrderSnapshots,
        OrdersPageRequest,
        OrderStore,
        ProcessRequest,
        ProcessResult,
        document_id,
    )
    from workflows.policies import (
        BASELINKER_CALL_TIMEOUT,
        BASELINKER_RETRY,
        DATABASE_RETRY,
        DATABASE_TIMEOUT,
        LEDGER_RETRY,
    )

#: A fresh snapshot and a status list are each fetched at most once per run.
MAX_ROUNDS = 3
#: Executions that ran their database steps as regular activities replay so.
LOCAL_DATABASE_PATCH = "local-database-steps"

Request = TypeVar("Request")
Result = TypeVar("Result")


@workflow.defn
class OrderEvent:
    """Processes one journal entry: snapshot, upsert, ledger.

    The parent prefetches snapshots and documents for its whole batch, so most
    runs are a single database activity; whatever is missing or stale is
    fetched here, one BaseLinker call per need.
    """

    def __init__(self) -> None:
        self._local = False

    @workflow.run
    async def run(self, event: OrderEventInput) -> ProcessResult:
        self._local = workflow.patched(LOCAL_DATABASE_PATCH)
        try:
            return await self._process(event)
        # A local activity's failure arrives as its own ApplicationError, and
        # so does this workflow's own "still lacks data".
        except (ActivityError, ApplicationError) as err:
            if isinstance(err, ApplicationError) and not self._local:
                raise  # how executions before local steps ended; replay keeps it
            reason = _reason(err)
            await self._database(
                OrderStore.record_event_failure,
                FailureReport(
                    workspace=event.workspace, log_id=event.entry.log_id, reason=reason
                ),
                LEDGER_RETRY,
            )
            raise ApplicationError(reason, non_retryable=True) from err

    async def _process(self, event: OrderEventInput) -> ProcessResult:
        request = ProcessRequest(event=event)
        if event.refetch:
            await asyncio.gather(*(self._fetch(event, n) for n in _everything(event)))
        for _ in range(MAX_ROUNDS):
            result = await self._database(
                OrderStore.process_order_event, request, DATABASE_RETRY
            )
            if result.outcome != "needs":
                return result
            await asyncio.gather(*(self._fetch(event, need) for need in result.needs))
            if any(need.kind == "statuses" for need in result.needs):
                request = ProcessRequest(event=event, statuses_refreshed=True)
        msg = f"order {event.entry.order_id} still lacks data after {MAX_ROUNDS} rounds"
        raise ApplicationError(msg, non_retryable=True)

    async def _database(
        self,
        step: Callable[[OrderStore, Request], Awaitable[Result]],
        request: Request,
        retry: RetryPolicy,
    ) -> Result:
        """A database step, run by the worker that runs this workflow.

        As a local activity it costs the server no task of its own: most
        events then take one workflow task, which is what a backlog drain
        spends the server on.
        """
        if self._local:
            return await workflow.execute_local_activity_method(
                step,
                request,
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=retry,
            )
        return await workflow.execute_activity_method(
            step, request, start_to_close_timeout=DATABASE_TIMEOUT, retry_policy=retry
        )

    async def _fetch(self, event: OrderEventInput, need: Need) -> None:
        """One BaseLinker call that stores what the entry still needs."""
        options: dict[str, Any] = {
            "task_queue": event.baselinker_task_queue,
            "start_to_close_timeout": BASELINKER_CALL_TIMEOUT,
            "retry_policy": BASELINKER_RETRY,
        }
        log_id = event.entry.log_id
        if need.kind == "statuses":
            await workflow.execute_activity_method(
                OrderSnapshots.refresh_statuses, event.workspace, **options
            )
            return
        assert need.order_id is not None
        if need.kind == "snapshot":
            page = OrdersPageRequest(
                workspace=event.workspace,
                id_from=need.order_id,
                wanted=[need.order_id],
                as_of_log_id=log_id,
            )
            await workflow.execute_activity_method(
                OrderSnapshots.fetch_orders_page, page, **options
            )
            return
        documents = DocumentsRequest(
            workspace=event.workspace,
            kind=need.kind,
            order_id=need.order_id,
            as_of_log_id=log_id,
            doc_id=need.doc_id,
        )
        await workflow.execute_activity_method(
            OrderDocuments.sync_order_documents, documents, **options
        )


def _everything(event: OrderEventInput) -> list[Need]:
    """All BaseLinker data an entry reads, for a retry with fresh data."""
    entry = event.entry
    assert entry.order_id is not None
    needs = [Need(kind="snapshot", order_id=entry.order_id)]
    if entry.log_type in RELATED_ORDER_TYPES and entry.object_id is not None:
        needs.append(Need(kind="snapshot", order_id=entry.object_id))
    needs += [
        Need(kind=kind, order_id=entry.order_id, doc_id=document_id(entry, kind))
        for kind in DOCUMENTS_BY_TYPE.get(entry.log_type, ())
    ]
    return needs


def _reason(err: ActivityError | ApplicationError) -> str:
    """The activity's own message, written for the ledger's reader."""
    if isinstance(err, ApplicationError):
        return err.message
    cause = err.cause
    return cause.message if isinstance(cause, FailureError) else str(err)
