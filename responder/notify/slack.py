"""Slack incoming webhooks: POST the rendered Block Kit JSON to the channel's secret URL.

Slack answers 200 ``ok``; errors are plain-text codes (400 ``invalid_payload``, 403
``invalid_token``, 404 ``no_service``, 410 ``channel_is_archived``: permanent) or 429 with
``Retry-After`` and 5xx (temporary). The URL is the credential: it is never logged or
quoted in an error.
"""

from __future__ import annotations

import json

import aiohttp

from responder.config.channels import ChannelSpec, SlackSettings
from responder.notify.base import judge, post
from responder.notify.render import Message


class SlackSender:
    def __init__(self, spec: ChannelSpec, session: aiohttp.ClientSession) -> None:
        assert isinstance(spec.settings, SlackSettings)
        self.name = spec.name
        self.settings = spec.settings
        self.session = session

    def __repr__(self) -> str:
        return f"SlackSender({self.name!r})"

    async def send(self, message: Message) -> None:
        what = f"slack channel {self.name}"
        data = json.dumps(message.body, ensure_ascii=False).encode()
        status, text, retry_after = await post(
            self.session, self.settings.url.reveal(), data,
            {"Content-Type": "application/json; charset=utf-8"},
            seconds=self.settings.timeout, what=what)
        judge(what, status, text, retry_after, [self.settings.url])
