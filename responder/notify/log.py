"""The log channel: one structured JSON line per notification through ``logging``.

The embedded default channel, so a fresh install shows what it would have sent. It never
blocks on the network and never fails: a logging error is logging's business.
"""

from __future__ import annotations

import logging

import msgspec

from responder.config.channels import ChannelSpec
from responder.notify.render import Message

LOGGER = "responder.notify"
_encode = msgspec.json.Encoder(enc_hook=str).encode   # compact, UTF-8 as is


class LogSender:
    def __init__(self, spec: ChannelSpec, logger: logging.Logger | None = None) -> None:
        self.name = spec.name
        self.logger = logger or logging.getLogger(LOGGER)

    def __repr__(self) -> str:
        return f"LogSender({self.name!r})"

    async def send(self, message: Message) -> None:
        line = _encode({"notification": self.name, **message.body}).decode()
        self.logger.info("%s", line)
