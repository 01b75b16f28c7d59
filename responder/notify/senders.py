"""The factory: one sender per configured channel, by its type.

Its own module so that the imports point one way: this module imports every sender
module, and they import only ``base`` (the protocol and the HTTP helpers).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from responder.config.channels import ChannelSpec
from responder.notify.base import Sender
from responder.notify.email import EmailSender
from responder.notify.log import LogSender
from responder.notify.pagerduty import PagerDutySender
from responder.notify.slack import SlackSender
from responder.notify.webhook import WebhookSender


def build_senders(channels: Mapping[str, ChannelSpec],
                  session: aiohttp.ClientSession) -> dict[str, Sender]:
    """One sender per channel; HTTP senders share ``session`` (owned by the caller)."""
    senders: dict[str, Sender] = {}
    for name, spec in channels.items():
        if spec.type == "slack":
            senders[name] = SlackSender(spec, session)
        elif spec.type == "pagerduty":
            senders[name] = PagerDutySender(spec, session)
        elif spec.type == "webhook":
            senders[name] = WebhookSender(spec, session)
        elif spec.type == "email":
            senders[name] = EmailSender(spec)
        else:
            senders[name] = LogSender(spec)
    return senders
