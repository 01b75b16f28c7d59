"""What every sender shares: the protocol, one HTTP POST and how its answer is judged.

A sender delivers one already-rendered ``Message`` and says how it went in the only
vocabulary the outbox understands: return (delivered), ``TemporaryError(delay)`` (try
again; ``delay`` is the upstream's Retry-After) or ``PermanentError`` (give up, use the
fallback). HTTP answers are judged by ``responder.errors.classify_http_status``, the one
retry-or-not decision of the project. Error messages never carry credentials: URLs are
never quoted, and anything an upstream echoes back is scrubbed of the channel's secrets.
The sender modules import this one; ``senders`` imports them (no cycle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

import aiohttp

from responder.config.channels import Secret
from responder.errors import PermanentError, TemporaryError, classify_http_status
from responder.notify.render import Message
from responder.redact import Redactor

USER_AGENT = "alert-responder"
_MAX_ERROR_TEXT = 300


class Sender(Protocol):
    async def send(self, message: Message) -> None:
        """Deliver ``message``; raise TemporaryError or PermanentError when not delivered."""


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
