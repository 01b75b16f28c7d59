"""What every sender shares: the protocol, the factory, the delivery backoff, one HTTP POST.

A sender delivers one already-rendered ``Message`` and says how it went in the only
vocabulary the outbox understands: return (delivered), ``TemporaryError(delay)`` (try
again; ``delay`` is the upstream's Retry-After) or ``PermanentError`` (give up, use the
fallback). HTTP answers are judged by ``responder.errors.classify_http_status``, the one
retry-or-not decision of the project. Error messages never carry credentials: URLs are
never quoted, and anything an upstream echoes back is scrubbed of the channel's secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import aiohttp

from responder.config.channels import ChannelSpec, Secret
from responder.errors import PermanentError, TemporaryError, classify_http_status
from responder.notify.render import Message
from responder.redact import Redactor

USER_AGENT = "alert-responder"
_MAX_ERROR_TEXT = 300


class Sender(Protocol):
    async def send(self, message: Message) -> None:
        """Deliver ``message``; raise TemporaryError or PermanentError when not delivered."""


def build_senders(channels: Mapping[str, ChannelSpec],
                  session: aiohttp.ClientSession) -> dict[str, Sender]:
    """One sender per channel; HTTP senders share ``session`` (owned by the caller)."""
    # Imported here: the sender modules use this module's helpers.
    from responder.notify.email import EmailSender
    from responder.notify.log import LogSender
    from responder.notify.pagerduty import PagerDutySender
    from responder.notify.slack import SlackSender
    from responder.notify.webhook import WebhookSender

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


def delivery_backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0,
                     retry_after: float | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): doubling from ``base`` up to
    ``cap``; an upstream's Retry-After wins, as Slack and PagerDuty ask."""
    if retry_after is not None:
        return max(0.0, retry_after)
    exponent = min(max(attempt, 1) - 1, 62)
    return float(min(cap, base * (2 ** exponent)))


def scrub(text: str, secrets: Iterable[Secret | str | None]) -> str:
    """``text`` with every secret, and every part of one, replaced (``responder.redact``),
    cut to a length fit for an error."""
    redactor = Redactor(s.reveal() if isinstance(s, Secret) else s for s in secrets)
    text = redactor.scrub(" ".join(text.split()))
    return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "…"


def with_message(error: Exception, message: str) -> Exception:
    """The same verdict as ``error`` (and its delay) with a message that says more."""
    if isinstance(error, TemporaryError):
        return TemporaryError(message, error.delay)
    return PermanentError(message)


async def post(session: aiohttp.ClientSession, url: str, data: bytes,
               headers: Mapping[str, str], *, seconds: float,
               what: str) -> tuple[int, str, str | None]:
    """POST ``data``; the status, the start of the body and Retry-After.

    Network failures and timeouts are TemporaryError; a URL aiohttp cannot use is a
    PermanentError. ``what`` names the channel in messages; the URL never appears.
    """
    try:
        async with session.post(
            url, data=data, headers={"User-Agent": USER_AGENT, **headers},
            timeout=aiohttp.ClientTimeout(total=seconds), allow_redirects=False,
        ) as response:
            body = await response.content.read(4096)
            return (response.status, body.decode("utf-8", errors="replace"),
                    response.headers.get("Retry-After"))
    except TimeoutError:
        raise TemporaryError(f"{what}: no answer within {seconds:g}s") from None
    except (aiohttp.InvalidURL, ValueError):
        raise PermanentError(f"{what}: the configured URL is not usable") from None
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        raise TemporaryError(f"{what}: cannot connect: {reason}") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise TemporaryError(f"{what}: {type(exc).__name__}") from None


def judge(what: str, status: int, text: str, retry_after: str | None,
          secrets: Iterable[Secret | str | None] = ()) -> None:
    """Raise what ``status`` means (success returns), quoting the upstream's answer."""
    error = classify_http_status(status, retry_after)
    if error is None:
        return
    detail = scrub(text, secrets)
    raise with_message(error, f"{what}: HTTP {status}" + (f": {detail}" if detail else ""))
