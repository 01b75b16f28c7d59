"""``responder ctl``: the operator's client of the HTTP API, in the manner of ``amtool``.

It only speaks HTTP to a running responder (``--url``, else ``$RESPONDER_URL``, else the
``listen`` address of the configuration file ``-c`` names when it exists, else
``http://127.0.0.1:9095``) with an operator's credential (``--token-file`` /
``$RESPONDER_TOKEN_FILE``, or ``--user`` with ``--password-file`` /
``$RESPONDER_USER`` and ``$RESPONDER_PASSWORD_FILE``). Output is a table, or the API's own
JSON with ``-o json``. Exit codes are for scripts: 0 done, 1 refused (bad input, not found),
2 usage, 3 authentication or permission, 4 unreachable or server error, 5 conflict (already
decided, not cancellable).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from responder.config.main import parse_listen

DEFAULT_URL = "http://127.0.0.1:9095"
OK, REFUSED, USAGE, AUTH, UNREACHABLE, CONFLICT = 0, 1, 2, 3, 4, 5


class CtlError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _read_secret(path: str, what: str) -> str:
    try:
        secret = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CtlError(USAGE, f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if not secret:
        raise CtlError(USAGE, f"{what} {path} is empty")
    return secret


def _base_url(url: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port   # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise CtlError(USAGE, f"--url: {exc}: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CtlError(USAGE, f"--url: expected http(s)://host:port, got {url!r}")
    return url.rstrip("/")


def url_of(a: argparse.Namespace) -> str:
    """``--url``, ``$RESPONDER_URL``, the configuration's ``listen``, or the default."""
    if a.url:
        return str(a.url)
    if os.environ.get("RESPONDER_URL"):
        return os.environ["RESPONDER_URL"]
    config = Path(a.config).expanduser()
    explicit = a.config != "responder.yaml"
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise CtlError(USAGE, f"-c: no configuration file {config}") from None
        return DEFAULT_URL
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        if not explicit:   # ./responder.yaml is only a guess at where the service listens
            return DEFAULT_URL
        raise CtlError(USAGE, f"-c: cannot read {config}: {exc}") from None
    listen = data.get("listen") if isinstance(data, dict) else None
    try:
        host, port = parse_listen(listen) if isinstance(listen, str) else ("", 0)
    except ValueError:   # the service refuses it too: the default is the best guess
        return DEFAULT_URL
    if not port:
        return DEFAULT_URL
    if host in ("0.0.0.0", "::"):   # every address: this machine's loopback is one
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class Client:
    def __init__(self, url: str, authorization: str | None, timeout: float = 10.0) -> None:
        self.url = _base_url(url)
        self.authorization = authorization
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.authorization:
            request.add_header("Authorization", self.authorization)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = str(json.loads(raw).get("error") or raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace").strip() or exc.reason
            code = (AUTH if exc.code in (401, 403) else CONFLICT if exc.code == 409
                    else UNREACHABLE if exc.code >= 500 else REFUSED)
            raise CtlError(code, f"{method} {path}: {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CtlError(UNREACHABLE, f"cannot reach {self.url}: {reason}") from None


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def table(rows: Sequence[Sequence[Any]], header: Sequence[str], out: TextIO) -> None:
    cells = [[str(c) for c in header], *[["-" if c in (None, "") else str(c) for c in r]
                                         for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


# -- subcommands: each returns (the API's JSON, a function that prints it as text) ------
Printer = Callable[[Any, TextIO], object]


def _status(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    def show(d: Any, out: TextIO) -> None:
        for key in ("paused", "pauses", "held", "awaiting_approval", "dry_run", "runbooks",
                    "patterns", "journal_pending"):
            if key in d:
                out.write(f"{key + ':':<20}{d[key]}\n")
        out.write(f"{'channels:':<20}{', '.join(d.get('channels', []))}\n")
        out.write(f"{'config loaded:':<20}{_when(d.get('config_loaded_at'))}\n")
    return c.call("GET", "/api/v1/status"), show


def _pause_rows(pauses: list[dict[str, Any]]) -> list[list[Any]]:
    return [[p["id"], ", ".join(p.get("matchers") or []) or "(everything)", p.get("by"),
             _when(p.get("created_at")), _when(p.get("until")), p.get("reason")] for p in pauses]


PAUSE_HEADER = ("ID", "MATCHERS", "BY", "SINCE", "UNTIL", "REASON")


def _pause(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    body: dict[str, Any] = {"matchers": a.matcher or []}
    for key in ("reason", "until", "by"):
        if getattr(a, key):
            body[key] = getattr(a, key)
    return c.call("POST", "/api/v1/pause", body), lambda d, out: table(
        _pause_rows([d["pause"]]), PAUSE_HEADER, out)


def _pauses(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    return c.call("GET", "/api/v1/pauses"), lambda d, out: table(
        _pause_rows(d["pauses"]), PAUSE_HEADER, out)


def _resume(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    if a.id is not None:
        data = c.call("DELETE", f"/api/v1/pauses/{urllib.parse.quote(a.id)}")
        return data, lambda d, out: out.write(f"pause {a.id} lifted\n")
    data = c.call("POST", "/api/v1/resume", {"by": a.by} if a.by else {})
    return data, lambda d, out: out.write(f"{d.get('lifted', 0)} pause(s) lifted\n")


def _last_action(alert: dict[str, Any]) -> str:
    actions = [e for e in alert.get("events", []) if e.get("kind") == "action"]
    if not actions:
        return "-"
    last = actions[-1]
    return f"{last.get('action')} {last.get('outcome')}"


def _events(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    def show(d: Any, out: TextIO) -> None:
        rows = []
        for alert in d.get("alerts", []):
            labels = alert.get("alert", {}).get("labels", {})
            analysis = alert.get("analysis") or {}
            rows.append([alert["id"], _when(alert.get("last_delivery_at")),
                         labels.get("alertname"), labels.get("namespace"),
                         labels.get("workflow"), alert.get("status"), analysis.get("category"),
                         ", ".join(alert.get("runbooks") or []), _last_action(alert)])
        table(rows, ("ID", "LAST SEEN", "ALERT", "NAMESPACE", "WORKFLOW", "STATUS", "CATEGORY",
                     "RUNBOOKS", "LAST ACTION"), out)
    return c.call("GET", f"/api/v1/events?limit={a.limit}"), show


def _breakers(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    return c.call("GET", "/api/v1/breakers"), lambda d, out: table(
        [[b["key"], b["state"], b.get("failures_in_window"), _when(b.get("opened_at")),
          _when(b.get("next_half_open"))] for b in d["breakers"]],
        ("KEY", "STATE", "FAILURES", "OPENED", "NEXT HALF-OPEN"), out)


def _reset(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    key = urllib.parse.quote(a.key, safe="/")
    return c.call("POST", f"/api/v1/breakers/{key}/reset"), lambda d, out: out.write(
        f"breaker {d['key']}: {d['state']}\n")


def _approvals(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    return c.call("GET", "/api/v1/approvals"), lambda d, out: table(
        [[x["id"], x["runbook"], x["action"], x["target"], _when(x.get("asked_at")),
          _when(x.get("timeout_at")), x.get("on_timeout")] for x in d["approvals"]],
        ("ID", "RUNBOOK", "ACTION", "TARGET", "ASKED", "TIMEOUT", "ON TIMEOUT"), out)


def _decide(decision: str) -> Callable[[Client, argparse.Namespace], tuple[Any, Printer]]:
    def run(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
        body = {k: v for k, v in (("by", a.by), ("comment", a.comment)) if v}
        data = c.call("POST", f"/api/v1/approvals/{a.id}/{decision}", body)
        return data, lambda d, out: out.write(
            f"approval {d['id']}: {d['decision']} by {d['by']}\n")
    return run


def _actions(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    return c.call("GET", "/api/v1/attempts"), lambda d, out: table(
        [[x["id"], x["state"], x["action"], x["target"], x["runbook"], x["attempt"],
          _when(x.get("due_at"))] for x in d["attempts"]],
        ("ID", "STATE", "ACTION", "TARGET", "RUNBOOK", "ATTEMPT", "DUE"), out)


def _cancel(c: Client, a: argparse.Namespace) -> tuple[Any, Printer]:
    return c.call("POST", f"/api/v1/attempts/{a.id}/cancel", {"by": a.by} if a.by else {}), \
        lambda d, out: out.write(f"attempt {d['id']}: {d['state']}\n")


def add_parser(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """Register ``ctl`` and its subcommands on the ``responder`` parser."""
    p = sub.add_parser("ctl", parents=list(parents), help="the operator's client of the HTTP API",
                       description="The operator's client of the responder's HTTP API, like "
                                   "amtool: pauses, approvals, breakers, the audit log. Exit "
                                   "codes: 0 done, 1 refused, 2 usage, 3 authentication or "
                                   "permission, 4 unreachable or server error, 5 conflict.")
    p.add_argument("--url", help="responder's base URL (env RESPONDER_URL; default: the "
                                 f"configuration's listen, else {DEFAULT_URL})")
    p.add_argument("--token-file", default=os.environ.get("RESPONDER_TOKEN_FILE"),
                   help="file with an operator's bearer token (env RESPONDER_TOKEN_FILE)")
    p.add_argument("--user", default=os.environ.get("RESPONDER_USER"),
                   help="basic-auth user (env RESPONDER_USER), with --password-file")
    p.add_argument("--password-file", default=os.environ.get("RESPONDER_PASSWORD_FILE"),
                   help="file with the basic-auth password (env RESPONDER_PASSWORD_FILE)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table",
                   help="table (default) or json: the API's own answer")
    p.set_defaults(func=main)
    cmds = p.add_subparsers(dest="ctl_command", required=True, metavar="SUBCOMMAND",
                            help="what to ask or do (each has --help)")
    cmds.add_parser("status", help="paused?, pending work, loaded config").set_defaults(
        ctl=_status)
    c = cmds.add_parser("pause", help="hold actions (all, or those whose alert matches)")
    c.add_argument("--matcher", "-m", action="append", metavar="M",
                   help='Alertmanager matcher, e.g. namespace="ci" (repeatable; all must hold)')
    c.add_argument("--reason", help="why, shown with the pause")
    c.add_argument("--until", help="duration (2h) or RFC 3339 time; default: until resumed")
    c.add_argument("--by", help="name for the audit log (operators' own names win)")
    c.set_defaults(ctl=_pause)
    cmds.add_parser("pauses", help="list the active pauses").set_defaults(ctl=_pauses)
    c = cmds.add_parser("resume", help="lift one pause by ID, or all")
    c.add_argument("id", nargs="?", metavar="ID", help="the pause to lift (default: all)")
    c.add_argument("--by", help="name for the audit log (operators' own names win)")
    c.set_defaults(ctl=_resume)
    c = cmds.add_parser("events", help="recent alerts, their analysis, runbooks and actions")
    c.add_argument("--limit", type=int, default=20, metavar="N",
                   help="how many recent alerts (default 20)")
    c.set_defaults(ctl=_events)
    cmds.add_parser("breakers", help="every circuit breaker").set_defaults(ctl=_breakers)
    c = cmds.add_parser("reset", help="close a breaker by hand")
    c.add_argument("key", metavar="KEY", help="the breaker's key, as `breakers` lists it")
    c.set_defaults(ctl=_reset)
    cmds.add_parser("approvals", help="actions waiting for a person").set_defaults(
        ctl=_approvals)
    for decision in ("approve", "reject"):
        c = cmds.add_parser(decision, help=f"{decision} a waiting action")
        c.add_argument("id", metavar="ID", help="the approval, as `approvals` lists it")
        c.add_argument("--comment", help="why, for the audit log")
        c.add_argument("--by", help="name for the audit log (operators' own names win)")
        c.set_defaults(ctl=_decide(decision))
    cmds.add_parser("actions", help="actions held, scheduled, waiting or awaiting approval "
                    "(the IDs cancel takes)").set_defaults(ctl=_actions)
    c = cmds.add_parser("cancel", help="cancel a scheduled or held action (attempt ID)")
    c.add_argument("id", metavar="ID", help="the attempt, as `actions` lists it")
    c.add_argument("--by", help="name for the audit log (operators' own names win)")
    c.set_defaults(ctl=_cancel)


def _authorization(a: argparse.Namespace) -> str | None:
    if a.token_file:
        return "Bearer " + _read_secret(a.token_file, "token file")
    if a.user:
        if not a.password_file:
            raise CtlError(USAGE, "--user needs --password-file (or RESPONDER_PASSWORD_FILE)")
        password = _read_secret(a.password_file, "password file")
        return "Basic " + base64.b64encode(f"{a.user}:{password}".encode()).decode()
    return None


def main(a: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        client = Client(url_of(a), _authorization(a))
        data, show = a.ctl(client, a)
    except CtlError as exc:
        print(f"responder ctl: {exc}", file=sys.stderr)
        return exc.code
    if a.output == "json":
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        show(data, out)
    return OK
