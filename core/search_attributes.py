"""Custom search attributes that let Temporal Web UI find an order's workflows."""

from typing import Any

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from baselinker.models import JournalEntry

WORKSPACE = SearchAttributeKey.for_keyword("Workspace")
BASELINKER_ORDER_ID = SearchAttributeKey.for_int("BaseLinkerOrderId")
JOURNAL_LOG_TYPE = SearchAttributeKey.for_int("JournalLogType")
JOURNAL_EVENT = SearchAttributeKey.for_keyword("JournalEvent")

ALL = (WORKSPACE, BASELINKER_ORDER_ID, JOURNAL_LOG_TYPE, JOURNAL_EVENT)


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register them."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int"}
    flags: list[str] = []
    for key in ALL:
        flags += [
            "--search-attribute",
            f"{key.name}={kinds[key.indexed_value_type.name]}",
        ]
    return flags


def order_event_search_attributes(
    workspace: str, entry: JournalEntry
) -> TypedSearchAttributes:
    """What an OrderEvent is found by: workspace, order id, event type."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(WORKSPACE, workspace),
        SearchAttributePair(JOURNAL_LOG_TYPE, entry.log_type),
        SearchAttributePair(JOURNAL_EVENT, entry.event_name),
    ]
    if entry.order_id is not None:
        pairs.append(SearchAttributePair(BASELINKER_ORDER_ID, entry.order_id))
    return TypedSearchAttributes(pairs)
