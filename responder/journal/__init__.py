"""The journal: one interface (``base.Journal``) in the product's vocabulary, its records,
and the backends behind it (``sqlite.SqliteJournal``). Nothing outside this package
writes SQL or holds a connection."""

from responder.journal.base import BreakerChange, Journal
from responder.journal.records import (
    MAX_ID,
    Approval,
    Attempt,
    Breaker,
    DecidedDelivery,
    DecidedReceipt,
    DeliveryResult,
    Event,
    FinishedDelivery,
    JournalFull,
    JournalOpenError,
    JournalUnavailable,
    JournalVersionError,
    OutboxItem,
    OutboxMessage,
    OutboxUpdate,
    Pause,
    PendingDelivery,
    Receipt,
    journal_id,
)
from responder.journal.sqlite import SqliteJournal

__all__ = [
    "MAX_ID",
    "Approval",
    "Attempt",
    "Breaker",
    "BreakerChange",
    "DecidedDelivery",
    "DecidedReceipt",
    "DeliveryResult",
    "Event",
    "FinishedDelivery",
    "Journal",
    "JournalFull",
    "JournalOpenError",
    "JournalUnavailable",
    "JournalVersionError",
    "OutboxItem",
    "OutboxMessage",
    "OutboxUpdate",
    "Pause",
    "PendingDelivery",
    "Receipt",
    "SqliteJournal",
    "journal_id",
]
