"""Recorded histories still replay: workflow changes must not break running
executions (guard them with `workflow.patched` when they would)."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.journal import JournalPoller
from workflows.orders import OrderEvent

HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize(
    ("name", "workflow_id"),
    [
        ("journal_poller.json", "journal-poller/replay"),
        ("order_event.json", "order-event/replay/0"),
    ],
)
async def test_recorded_history_replays(name: str, workflow_id: str) -> None:
    """A poller batch and an order event recorded earlier replay without error."""
    history = WorkflowHistory.from_json(workflow_id, (HISTORIES / name).read_text())
    replayer = Replayer(
        workflows=[JournalPoller, OrderEvent], data_converter=pydantic_data_converter
    )

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None
