"""OrderEvent: bring one journal entry's order into the database."""

import asyncio
from typing import Any

from temporalio import workflow
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


@workflow.defn
class OrderEvent:
    """Processes one journal entry: snapshot, upsert, ledger.

    The parent prefetches snapshots and documents for its whole batch, so most
    runs are a single database activity; whatever is missing or stale is
    fetched here, one BaseLinker call per need.
    """

    @workflow.run
    async def run(self, event: OrderEventInput) -> ProcessResult:
        try:
            return await self._process(event)
        except ActivityError as err:
            reason = _reason(err)
            await workflow.execute_activity_method(
                OrderStore.record_event_failure,
                FailureReport(
                    workspace=event.workspace, log_id=event.entry.log_id, reason=reason
                ),
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=LEDGER_RETRY,
            )
            raise ApplicationError(reason, non_retryable=True) from err

    async def _process(self, event: OrderEventInput) -> ProcessResult:
        request = ProcessRequest(event=event)
        if event.refetch:
            await asyncio.gather(*(self._fetch(event, n) for n in _everything(event)))
        for _ in range(MAX_ROUNDS):
            result = await workflow.execute_activity_method(
                OrderStore.process_order_event,
                request,
                start_to_close_timeout=DATABASE_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )
            if result.outcome != "needs":
                return result
            await asyncio.gather(*(self._fetch(event, need) for need in result.needs))
            if any(need.kind == "statuses" for need in result.needs):
                request = ProcessRequest(event=event, statuses_refreshed=True)
        msg = f"order {event.entry.order_id} still lacks data after {MAX_ROUNDS} rounds"
        raise ApplicationError(msg, non_retryable=True)

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


def _reason(err: ActivityError) -> str:
    """The activity's own message, written for the ledger's reader."""
    cause = err.cause
    return cause.message if isinstance(cause, FailureError) else str(err)
