"""Email over SMTP (``aiosmtplib``): STARTTLS or implicit TLS, optional AUTH.

The rendered subject, text and HTML become one ``multipart/alternative`` message with
``Message-ID``, ``Date`` and ``References`` (so firing, resolved and escalation of one group
thread together). SMTP replies decide retries like HTTP statuses do elsewhere: 4xx is
temporary, 5xx permanent (a refused password will not improve), connection failures and
timeouts temporary. The password never appears in an error.
"""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib

from responder.config.channels import ChannelSpec, EmailSettings
from responder.errors import PermanentError, TemporaryError
from responder.notify.base import scrub
from responder.notify.render import Message


def build_email(body: dict[str, Any]) -> EmailMessage:
    """The MIME message for a rendered email body (subject, text, html?, from, to)."""
    msg = EmailMessage()
    msg["Subject"] = body["subject"]
    msg["From"] = body["from"]
    msg["To"] = ", ".join(body["to"])
    msg["Date"] = formatdate(usegmt=True)
    domain = str(body["from"]).rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid("alert-responder", domain=domain)
    if body.get("references"):
        msg["References"] = body["references"]
        msg["In-Reply-To"] = body["references"]
    msg["Auto-Submitted"] = "auto-generated"   # RFC 3834: no vacation replies, please
    msg.set_content(body["text"])
    if body.get("html"):
        msg.add_alternative(body["html"], subtype="html")
    return msg


class EmailSender:
    def __init__(self, spec: ChannelSpec) -> None:
        assert isinstance(spec.settings, EmailSettings)
        self.name = spec.name
        self.settings = spec.settings
        self._tls_context: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"EmailSender({self.name!r})"

    def _context(self) -> ssl.SSLContext:
        if self._tls_context is None:
            s = self.settings
            context = ssl.create_default_context(
                cafile=str(s.ca_file) if s.ca_file is not None else None)
            if s.insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls_context = context
        return self._tls_context

    async def send(self, message: Message) -> None:
        s = self.settings
        what = f"email channel {self.name}"
        secrets = [s.password]
        tls = s.tls or s.starttls
        try:
            await aiosmtplib.send(
                build_email(message.body), hostname=s.host, port=s.port,
                username=s.username,
                password=s.password.reveal() if s.password is not None else None,
                use_tls=s.tls, start_tls=s.starttls and not s.tls,
                tls_context=self._context() if tls else None, timeout=s.timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.recipient}: {r.code} {scrub(r.message, secrets)}"
                               for r in exc.recipients)
            if any(400 <= c < 500 for c in codes):
                raise TemporaryError(f"{what}: recipients refused: {detail}") from None
            raise PermanentError(f"{what}: recipients refused: {detail}") from None
        except aiosmtplib.SMTPResponseException as exc:
            text = f"{what}: SMTP {exc.code} {scrub(exc.message, secrets)}"
            if 400 <= exc.code < 500 or exc.code < 0:
                raise TemporaryError(text) from None
            raise PermanentError(text) from None
        except aiosmtplib.SMTPException as exc:
            reason = scrub(str(exc), secrets) or type(exc).__name__
            if isinstance(exc, aiosmtplib.SMTPNotSupported) or type(exc) is \
                    aiosmtplib.SMTPException:
                # aiosmtplib raises the bare class when the server lacks STARTTLS or AUTH:
                # a configuration mismatch that no retry fixes.
                raise PermanentError(f"{what}: {reason}") from None
            raise TemporaryError(f"{what}: {reason}") from None
        except (OSError, ssl.SSLError) as exc:
            reason = scrub(str(exc), secrets) or type(exc).__name__
            raise TemporaryError(f"{what}: {reason}") from None
