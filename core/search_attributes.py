"""Custom search attributes that let Temporal Web UI find an order's workflows."""

from temporalio.common import SearchAttributeKey

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
