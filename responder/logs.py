"""The service's own log: text for people, or one JSON object a line for log pipelines.

``log: {format: text|json, level: info}`` in the config picks them (``--log-level``
overrides the level). Both carry the time in RFC 3339 with its zone, the level, the
logger and the message; in JSON, fields passed as ``extra={...}`` follow as keys of the
object (a text line's message already says them in words). Loki, Elasticsearch and Cloud
Logging read the JSON lines as they are.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any, TextIO

# Everything a LogRecord has by itself; any other attribute came in through ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}


def timestamp(record: logging.LogRecord) -> str:
    """RFC 3339 with milliseconds and the local zone (``2026-11-28T10:21:40.118+00:00``)."""
    return datetime.fromtimestamp(record.created).astimezone().isoformat(
        timespec="milliseconds")


# Log pipelines refuse or split longer lines (Loki's default limit is 256 KB); a 1 MB label
# must not make a 1 MB line. Only a line past MAX_LINE is rebuilt, with every text in it cut
# at CLIP characters.
MAX_LINE = 64 * 1024
CLIP = 4096


def clip(value: Any) -> Any:
    """``value`` with every string longer than ``CLIP`` cut, saying how much was cut."""
    if isinstance(value, str):
        if len(value) <= CLIP:
            return value
        return f"{value[:CLIP]}… ({len(value) - CLIP} characters cut)"
    if isinstance(value, dict):
        return {clip(k): clip(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clip(v) for v in value]
    return value


def message_of(record: logging.LogRecord) -> str:
    """The record's message; past ``MAX_LINE``, made again from its arguments cut."""
    message = record.getMessage()
    if len(message) <= MAX_LINE:
        return message
    if isinstance(record.args, tuple) and record.args:
        try:
            message = str(record.msg) % tuple(clip(a) for a in record.args)
        except (TypeError, ValueError):
            pass
    return str(clip(message)) if len(message) > MAX_LINE else message


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``time level logger: message``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{timestamp(record)} {record.levelname.lower()} {record.name}: " \
               f"{message_of(record)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time``, ``level``, ``logger``, ``message``, then fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": timestamp(record), "level": record.levelname.lower(),
                               "logger": record.name, "message": message_of(record)}
        for key, value in fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        line = json.dumps(out, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(line) > MAX_LINE:
            line = json.dumps(clip(json.loads(line)), ensure_ascii=False, separators=(",", ":"))
        return line


def setup_logging(fmt: str = "text", level: str = "info", stream: TextIO | None = None) -> None:
    """Send every record to ``stream`` (stdout) in ``fmt`` at ``level`` and above.

    Neither format shows the caller's file and line, the thread or the process: records
    are made without looking them up (logging's documented optimisations; a ``log``
    channel writes a record for every notification)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The PostgreSQL journal reports a lost database itself, without the pool's retries.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
