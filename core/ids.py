"""Workflow ids, one helper each, so a duplicate start is refused by the server."""

POLLER_PREFIX = "journal-poller"
ORDER_EVENT_PREFIX = "order-event"
BACKFILL_PREFIX = "backfill"


def poller_workflow_id(workspace: str) -> str:
    """The one JournalPoller of a workspace."""
    return f"{POLLER_PREFIX}/{workspace}"


def order_event_workflow_id(workspace: str, log_id: int) -> str:
    """The OrderEvent child that processes one journal entry."""
    return f"{ORDER_EVENT_PREFIX}/{workspace}/{log_id}"


def backfill_workflow_id(workspace: str, since_unix: int) -> str:
    """The Backfill that syncs a workspace's orders from `since_unix` on."""
    return f"{BACKFILL_PREFIX}/{workspace}/{since_unix}"


def parse_order_event_workflow_id(workflow_id: str) -> tuple[str, int]:
    """Inverse of `order_event_workflow_id`: (workspace, log_id)."""
    prefix, workspace, log_id = workflow_id.split("/")
    if prefix != ORDER_EVENT_PREFIX:
        msg = f"not an order-event workflow id: {workflow_id!r}"
        raise ValueError(msg)
    return workspace, int(log_id)
