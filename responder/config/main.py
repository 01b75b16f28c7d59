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
from responder.config.reader import Section
from responder.config.yamlmarks import load_file
from responder.errors import ConfigError, ConfigErrors, Origin

FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")

DEFAULT_LISTEN = "127.0.0.1:9095"
DEFAULT_MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class AuthSpec:
    bearer_token: str | None = field(default=None, repr=False)
    basic_username: str | None = None
    basic_password: str | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_token or self.basic_username)


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

    def display(self, path: Path) -> str:
        """A path as an operator wants to read it: relative to the config's directory."""
        try:
            return str(path.relative_to(self.base_dir))
        except ValueError:
            return str(path)


def _parse_listen(value: str) -> tuple[str, int]:
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
        host, port = _parse_listen(listen)
    except ValueError as exc:
        root.error(root.at("listen"), str(exc))

    auth = AuthSpec()
    auth_section = root.section("auth")
    if auth_section is not None:
        token = auth_section.secret("bearer_token")
        username = password = None
        basic = auth_section.section("basic_auth")
        if basic is not None:
            username = basic.str("username")
            password = basic.secret("password", required=True)
            basic.finish()
        if token and username:
            auth_section.error(auth_section.origin, "auth: give bearer_token or basic_auth, not both")
        if token is not None and not token:
            auth_section.error(auth_section.at("bearer_token_file"), "auth: bearer token is empty")
        auth = AuthSpec(token or None, username, password)
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
    if state is not None:
        state_path = state.path("path", state_path)
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
        rules=rules, patterns=patterns, templates=templates, alert_rules=alert_rules, argo=argo,
        kubernetes=kube,
        channels=channels, max_body_bytes=max_body, dashboard_url=dashboard_url,
        state_retention=state_retention, postgres=postgres,
        log_format=log_format, log_level=log_level, analysis=analysis, http=http,
    )


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
