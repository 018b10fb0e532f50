"""A faithful local stand-in for BaseLinker's API and a shop that feeds it."""

from simulators.baselinker.scenario import (
    Action,
    Player,
    generate_scenario,
    live_actions,
    play,
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
    "JournalEntry",
    "Order",
    "OrderLine",
    "Player",
    "Status",
    "generate_scenario",
    "live_actions",
    "play",
]
