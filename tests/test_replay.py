"""Recorded histories still replay: workflow changes must not break running
executions (guard them with `workflow.patched` when they would)."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.backfill import Backfill
from workflows.journal import JournalPoller
from workflows.orders import OrderEvent

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    ("name", "workflow_id"),
    [
        # Recorded before gap backfill and documents existed: replays thanks to
        # workflow.patched in the poller.
        ("journal_poller.json", "journal-poller/replay"),
        ("order_event.json", "order-event/replay/0"),
        # A first start that backfilled, then followed the journal.
        ("journal_poller_backfill.json", "journal-poller/replay2"),
        ("backfill.json", "backfill/replay2/0"),
        ("order_event_invoice.json", "order-event/replay2/0"),
        # Paced batches (children in waves, rests from the poll's start) and
        # OrderEvents whose database steps are local activities.
        ("journal_poller_paced.json", "journal-poller/replay3"),
        ("order_event_local.json", "order-event/replay3/9000045"),
    ],
)
async def test_recorded_history_replays(name: str, workflow_id: str) -> None:
    """Histories recorded by earlier versions replay on today's code."""
    history = WorkflowHistory.from_json(workflow_id, (HISTORIES / name).read_text())
    replayer = Replayer(
        workflows=[JournalPoller, OrderEvent, Backfill],
        data_converter=pydantic_data_converter,
    )

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None
