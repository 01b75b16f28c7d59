"""The journal: one interface (``base.Journal``) in the product's vocabulary, its records,
and the backends behind it (``sqlite.SqliteJournal``). Nothing outside this package
writes SQL or holds a connection."""

from responder.journal.base import BreakerChange, Journal
from responder.journal.records import (
    Approval,
    Attempt,
    Breaker,
    DecidedDelivery,
    DecidedReceipt,
    DeliveryResult,
    Event,
    JournalFull,
    JournalUnavailable,
    JournalVersionError,
    OutboxItem,
    OutboxMessage,
    Pause,
    PendingDelivery,
    Receipt,
)
from responder.journal.sqlite import SqliteJournal

__all__ = [
    "Approval", "Attempt", "Breaker", "BreakerChange", "DecidedDelivery", "DecidedReceipt",
    "DeliveryResult", "Event", "Journal",
    "JournalFull", "JournalUnavailable", "JournalVersionError", "OutboxItem", "OutboxMessage",
    "Pause", "PendingDelivery", "Receipt", "SqliteJournal",
]
