"""A real SMTP server for the email tests: aiosmtpd on 127.0.0.1, STARTTLS or implicit TLS,
AUTH only over TLS, certificates from a throwaway ``trustme`` CA.

aiosmtpd's ``SMTP`` protocol is served from the test's own event loop with
``loop.create_server`` on port 0 (its threaded ``Controller`` needs a fixed port and
probes it before returning), so each test gets a free port and no thread to stop.
Accepted messages are parsed into ``email.message.EmailMessage`` in ``messages``;
``reply_to_data`` scripts the DATA answer (``"451 4.3.0 try later"``) to test retries.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """A CA the client trusts (``ca_file``) and the server's context for 127.0.0.1."""

    ca_file: Path
    server_context: ssl.SSLContext


def tls_files(directory: Path) -> TLSFiles:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = directory / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TLSFiles(ca_file, context)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = field(repr=False)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        if self.server.reply_to_data:
            return self.server.reply_to_data.pop(0)
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.server.messages.append(Received(
            str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw))
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer:
    """``tls="starttls"`` (STARTTLS required), ``"implicit"`` (SMTPS) or ``None`` (plain)."""

    def __init__(self, tls: TLSFiles | None = None, *, mode: str | None = "starttls",
                 users: dict[str, str] | None = None) -> None:
        self.tls = tls
        self.mode = mode if tls is not None else None
        self.users = users or {}
        self.messages: list[Received] = []
        self.reply_to_data: list[str] = []
        self.logins: list[tuple[str, bool]] = []   # (username, accepted)
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    def _authenticate(self, smtp: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        ok = self.users.get(user) == password
        self.logins.append((user, ok))
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=True) if ok else AuthResult(success=False, handled=False)

    def _protocol(self) -> SMTP:
        starttls = self.mode == "starttls"
        with warnings.catch_warnings():
            # "AUTH without requiring TLS": over SMTPS the whole session is TLS.
            warnings.simplefilter("ignore", UserWarning)
            return self._smtp(starttls)

    def _smtp(self, starttls: bool) -> SMTP:
        return SMTP(
            _Handler(self), hostname="smtp.test",
            tls_context=self.tls.server_context if starttls and self.tls else None,
            require_starttls=starttls,
            authenticator=self._authenticate if self.users else None,
            # aiosmtpd only knows TLS it negotiated itself (STARTTLS); SMTPS is TLS anyway.
            auth_required=bool(self.users), auth_require_tls=starttls)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ssl_context = self.tls.server_context if self.mode == "implicit" and self.tls else None
        self._server = await loop.create_server(self._protocol, "127.0.0.1", self.port,
                                                ssl=ssl_context)   # a restart keeps the port
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
