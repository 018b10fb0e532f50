"""A faithful local stand-in for BaseLinker's API and a shop that feeds it."""

from simulators.baselinker.documents import Invoice, Package, Receipt
from simulators.baselinker.scenario import (
    Action,
    Player,
    generate_scenario,
    live_actions,
    play,
    scenario_journal_types,
)
from simulators.baselinker.server import BaseLinkerSimulator
from simulators.baselinker.state import (
    Account,
    Clock,
    JournalEntry,
    Order,
    OrderLine,
    Status,
)

__all__ = [
    "Account",
    "Action",
    "BaseLinkerSimulator",
    "Clock",
    "Invoice",
    "JournalEntry",
    "Order",
    "OrderLine",
    "Package",
    "Player",
    "Receipt",
    "Status",
    "generate_scenario",
    "live_actions",
    "play",
    "scenario_journal_types",
]
