"""``responder.yaml``: the service's own settings, parsed strictly into frozen specs.

Runbooks, patterns and templates are referenced here and loaded by ``responder.load`` so
that one reload builds everything or nothing. Secrets are read from ``*_file`` once, at
load, and kept out of every ``repr``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from responder.config.analysis import AnalysisSpec, parse_analysis
from responder.config.channels import ChannelSpec, parse_channels
from responder.config.postgres import PostgresSpec, parse_postgres
from responder.config.reader import Section, origin_of
from responder.config.yamlmarks import load_file
from responder.errors import ConfigError, ConfigErrors, Origin

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")

DEFAULT_LISTEN = "127.0.0.1:9095"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
DEFAULT_RESERVE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A person (or their tool) allowed the console, ``ctl`` and the operator API; ``name``
    is what the audit log records as ``by``."""

    name: str
    bearer_token: str | None = field(default=None, repr=False)
    basic_username: str | None = None
    basic_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class AuthSpec:
    bearer_token: str | None = field(default=None, repr=False)
    basic_username: str | None = None
    basic_password: str | None = field(default=None, repr=False)
    operators: tuple[OperatorSpec, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.basic_username or self.operators)


@dataclass(frozen=True, slots=True)
class ArgoSpec:
    server: str | None
    token: str | None = field(repr=False)
    ca_file: Path | None
    insecure_skip_verify: bool
    timeout: float
    ui_url: str | None


@dataclass(frozen=True, slots=True)
class KubeSpec:
    kubeconfig: Path | None
    context: str | None


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """How long a client may take to send a request, and how many may wait idle."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 75.0
    max_idle_connections: int = 256


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    base_dir: Path
    host: str
    port: int
    auth: AuthSpec
    insecure_allow_unauthenticated: bool
    dry_run: bool
    state_path: Path
    rules: tuple[str, ...]
    patterns: tuple[str, ...]
    templates: Path
    alert_rules: tuple[str, ...]
    argo: ArgoSpec | None
    kubernetes: KubeSpec | None
    channels: dict[str, ChannelSpec]
    max_body_bytes: int
    dashboard_url: str | None
    state_retention: float = 7 * 86400.0   # seconds; finished work older than this is deleted
    postgres: PostgresSpec | None = None
    log_format: str = "text"
    log_level: str = "info"
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    http: HttpLimits = HttpLimits()
    state_reserve_bytes: int = DEFAULT_RESERVE_BYTES   # disk kept for webhooks (SQLite)
    # Where ``rules``, ``patterns`` and ``templates`` are written (file:line), for errors
    # about what they name.
    origins: dict[str, Origin] = field(default_factory=dict)

    def display(self, path: Path) -> str:
        """A path as an operator wants to read it: relative to the config's directory."""
        try:
            return str(path.relative_to(self.base_dir))
        except ValueError:
            return str(path)


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``); an empty host is every address."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen: expected host:port, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: Path) -> Config:
    """Parse ``path``; raises ConfigErrors with every problem as ``path:line: message``."""
    path = path.expanduser()
    shown = str(path)
    base_dir = path.resolve().parent
    data = load_file_errors(path, shown)
    errors: list[ConfigError] = []
    root = Section(data if data is not None else {}, errors, origin=Origin(shown, 1),
                   base_dir=base_dir)

    listen = root.str("listen", DEFAULT_LISTEN)
    host, port = "127.0.0.1", 9095
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        root.error(root.at("listen"), str(exc))

    auth = AuthSpec()
    auth_section = root.section("auth")
    if auth_section is not None:
        token, username, password = _credentials(auth_section)
        if token and username:
            auth_section.error(auth_section.origin, "auth: give bearer_token or basic_auth, not both")
        if token is not None and not token:
            auth_section.error(auth_section.at("bearer_token_file"), "auth: bearer token is empty")
        operators = _parse_operators(auth_section)
        auth = AuthSpec(token or None, username, password, operators)
        auth_section.finish()
    insecure = root.bool("insecure_allow_unauthenticated", False)
    if not is_loopback(host) and not auth.enabled and not insecure:
        root.error(root.at("listen"),
                   f"listen: {listen} is not a loopback address; configure auth "
                   "(bearer_token_file or basic_auth) or set insecure_allow_unauthenticated: true")

    log_format, log_level = "text", "info"
    log_section = root.section("log")
    if log_section is not None:
        log_format = log_section.choice("format", FORMATS, "text")
        log_level = log_section.choice("level", LEVELS, "info")
        log_section.finish()

    dry_run = root.bool("dry_run", False)
    state = root.section("state")
    state_path = base_dir / "responder-state.db"
    postgres: PostgresSpec | None = None
    state_retention = 7 * 86400.0
    reserve_bytes = DEFAULT_RESERVE_BYTES
    if state is not None:
        state_path = state.path("path", state_path)
        reserve_bytes = state.int("reserve_bytes", DEFAULT_RESERVE_BYTES, minimum=0)
        state_retention = _retention(state)
        pg_section = state.section("postgres")
        if pg_section is not None:
            postgres = parse_postgres(pg_section)
            if state.has("path"):
                state.error(state.at("postgres"), "state: give path (SQLite) or postgres, not both")
        state.finish()

    rules = tuple(root.str_list("rules", ["rules/runbooks/*.yaml"]))
    patterns = tuple(root.str_list("patterns", ["rules/patterns.yaml"]))
    templates = root.path("templates", str(base_dir / "templates"))
    alert_rules = tuple(root.str_list("alert_rules", []))

    argo: ArgoSpec | None = None
    argo_section = root.section("argo")
    if argo_section is not None:
        server = argo_section.str("server", None)
        if server is not None and not server.startswith(("http://", "https://")):
            argo_section.error(argo_section.at("server"),
                               "argo.server: expected an http:// or https:// URL")
        ui_url = argo_section.str("ui_url", None)
        argo = ArgoSpec(
            server=server.rstrip("/") if server else None,
            token=argo_section.secret("token"),
            ca_file=argo_section.path("ca_file", None),
            insecure_skip_verify=argo_section.bool("insecure_skip_verify", False),
            timeout=argo_section.duration("timeout", 10.0, positive=True),
            ui_url=ui_url.rstrip("/") if ui_url else None,
        )
        argo_section.finish()

    kube: KubeSpec | None = None
    kube_section = root.section("kubernetes")
    if kube_section is not None:
        kube = KubeSpec(kube_section.path("kubeconfig", None), kube_section.str("context", None))
        kube_section.finish()

    channels = parse_channels(root.section("channels"))
    analysis = parse_analysis(root.section("analysis"))

    max_body = DEFAULT_MAX_BODY
    dashboard_url: str | None = None
    http = HttpLimits()
    limits = root.section("limits")
    if limits is not None:
        max_body = limits.int("max_body_bytes", DEFAULT_MAX_BODY, minimum=1024)
        http = HttpLimits(
            header_timeout=limits.duration("header_timeout", http.header_timeout, positive=True),
            body_timeout=limits.duration("body_timeout", http.body_timeout, positive=True),
            idle_timeout=limits.duration("idle_timeout", http.idle_timeout, positive=True),
            max_idle_connections=limits.int("max_idle_connections",
                                            http.max_idle_connections, minimum=1))
        limits.finish()
    links = root.section("links")
    if links is not None:
        dashboard_url = links.str("dashboard", None)
        links.finish()
    root.finish()
    if errors:
        raise ConfigErrors(errors)
    return Config(
        path=path, base_dir=base_dir, host=host, port=port, auth=auth,
        insecure_allow_unauthenticated=insecure, dry_run=dry_run, state_path=state_path,
        origins={key: root.at(key) or Origin(shown, 1)
                 for key in ("rules", "patterns", "templates")},
        rules=rules, patterns=patterns, templates=templates, alert_rules=alert_rules, argo=argo,
        kubernetes=kube,
        channels=channels, max_body_bytes=max_body, dashboard_url=dashboard_url,
        state_retention=state_retention, postgres=postgres,
        log_format=log_format, log_level=log_level, analysis=analysis, http=http,
        state_reserve_bytes=reserve_bytes,
    )


def _credentials(sec: Section) -> tuple[str | None, str | None, str | None]:
    """``bearer_token(_file)`` and ``basic_auth: {username, password(_file)}`` of a section."""
    token = sec.secret("bearer_token")
    username = password = None
    basic = sec.section("basic_auth")
    if basic is not None:
        username = basic.str("username")
        password = basic.secret("password", required=True)
        if username is not None and not username.strip():
            basic.error(basic.at("username"), f"{basic.name('username')}: the username is empty")
        basic.finish()
    return token, username, password


def _parse_operators(auth: Section) -> tuple[OperatorSpec, ...]:
    raw = auth.raw("operators")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        auth.error(auth.at("operators"), "auth.operators: expected a list of operators")
        return ()
    operators: list[OperatorSpec] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        where = f"auth.operators[{i}]"
        op = Section(item, auth.errors, where=where, origin=origin_of(raw, i) or auth.origin,
                     base_dir=auth.base_dir)
        if not op.valid:
            continue
        name = op.str("name")
        token, username, password = _credentials(op)
        if token is not None and not token:
            op.error(op.at("bearer_token_file"), f"{where}: bearer token is empty")
        elif bool(token) == bool(username):
            op.error(op.origin, f"{where}: give bearer_token(_file) or basic_auth, exactly one")
        if isinstance(name, str):
            if name in names:
                op.error(op.at("name"), f"{where}.name: {name!r} is given twice")
            names.add(name)
        op.finish()
        if isinstance(name, str) and (token or username):
            operators.append(OperatorSpec(name, token or None, username, password))
    return tuple(operators)


def _retention(state: Section) -> float:
    retention: float = state.duration("retention", 7 * 86400.0)
    if retention <= 0:
        state.error(state.at("retention"), "state.retention: must be longer than 0s")
    return retention


def load_file_errors(path: Path, shown: str) -> object:
    try:
        return load_file(path, shown)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None
