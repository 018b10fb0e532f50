"""Workflow ids, one helper each, so a duplicate start is refused by the server."""

POLLER_PREFIX = "journal-poller"
ORDER_EVENT_PREFIX = "order-event"


def poller_workflow_id(workspace: str) -> str:
    """The one JournalPoller of a workspace."""
    return f"{POLLER_PREFIX}/{workspace}"


def order_event_workflow_id(workspace: str, log_id: int) -> str:
    """The OrderEvent child that processes one journal entry."""
    return f"{ORDER_EVENT_PREFIX}/{workspace}/{log_id}"


def parse_order_event_workflow_id(workflow_id: str) -> tuple[str, int]:
    """Inverse of `order_event_workflow_id`: (workspace, log_id)."""
    prefix, workspace, log_id = workflow_id.split("/")
    if prefix != ORDER_EVENT_PREFIX:
        msg = f"not an order-event workflow id: {workflow_id!r}"
        raise ValueError(msg)
    return workspace, int(log_id)
