"""Runbook files (``rules/runbooks/*.yaml``) parsed strictly into frozen specs.

Operators write runbooks; a typo in one must be found by ``responder check``, not at 3 a.m.
So loading validates everything it can know before an alert arrives (matchers, regexes,
action kinds and parameters, durations, channel and template names, Jinja syntax and the
variables a template may use), compiles every template once, and reports EVERY problem in
every file as ``path:line: message``. What only an alert can tell (a label that is
missing) fails at render time, in ``responder.act.plan``, with StrictUndefined.

Matchers follow Alertmanager exactly: ``name op value`` with ``=``, ``!=``, ``=~``,
``!~``; values quoted (``\\"``, ``\\\\``, ``\\n`` escapes) or not; regexes anchored at both
ends; a missing label is the empty string, so ``cronworkflow!=""`` means "has the label".
"""

from __future__ import annotations

import glob
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
import re2
from jinja2 import meta, nodes

from responder.config.durations import parse_duration
from responder.config.patterns import CATEGORIES
from responder.config.reader import Section, origin_of, type_name
from responder.config.yamlmarks import MarkedList, load_file, load_text
from responder.errors import ConfigError, ConfigErrors, Origin
from responder.templating import new_environment

# -- vocabulary ------------------------------------------------------------------------

STATUSES = frozenset({"firing", "resolved", "any"})
#: The variables a runbook template may use (SPEC §5).
CONTEXT_VARIABLES = frozenset({"labels", "annotations", "alert", "group", "analysis"})


@dataclass(frozen=True, slots=True)
class ActionKind:
    """The parameters one action takes, and what its target is named after."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    target: str = "workflow"   # workflow | cronworkflow | breaker

    @property
    def params(self) -> frozenset[str]:
        return self.required | self.optional


_WORKFLOW = frozenset({"namespace", "workflow"})
_CRON = frozenset({"namespace", "cronworkflow"})
ACTION_KINDS: Mapping[str, ActionKind] = MappingProxyType({
    "argo.retry": ActionKind(_WORKFLOW, frozenset({"restart_successful", "node_field_selector"})),
    "argo.resubmit": ActionKind(_WORKFLOW, frozenset({"memoized"})),
    "argo.stop": ActionKind(_WORKFLOW, frozenset({"message"})),
    "argo.terminate": ActionKind(_WORKFLOW, frozenset({"message"})),
    "argo.suspend_cron": ActionKind(_CRON, target="cronworkflow"),
    "argo.resume_cron": ActionKind(_CRON, target="cronworkflow"),
    "breaker.trip": ActionKind(frozenset({"key"}), frozenset({"for"}), target="breaker"),
    "breaker.reset": ActionKind(frozenset({"key"}), target="breaker"),
})
#: Parameters rendered to booleans (``true``/``false``), and to durations.
BOOL_PARAMS = frozenset({"restart_successful", "memoized"})
DURATION_PARAMS = frozenset({"for"})
#: Parameters that end up in an API path: Kubernetes object names, checked after render.
NAME_PARAMS = frozenset({"namespace", "workflow", "cronworkflow"})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RUNBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})


def check_name_param(name: str, value: str) -> None:
    """ValueError unless ``value`` is a valid Kubernetes name for parameter ``name``."""
    if name == "namespace":
        if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid namespace name (RFC 1123 label)")
    elif len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid {name} name (RFC 1123 subdomain)")


def coerce_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


# -- matchers --------------------------------------------------------------------------

_WS = "[ \t\n\f\r]*"
_MATCHER = re.compile(
    rf"{_WS}([a-zA-Z_:][a-zA-Z0-9_:]*){_WS}(=~|=|!=|!~){_WS}(.*?){_WS}", re.DOTALL)
_LABEL_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
OPS = ("=", "!=", "=~", "!~")
_NOWHERE = Origin("<unknown>")
# RE2, as Alertmanager's Go regexp is: no lookaround, no backreferences, linear time.
# Errors are returned, not also logged to stderr by the library.
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# What C++ RE2 takes and Go's regexp (as Alertmanager is built) refuses: ``\C`` (any
# byte) and ``(?<name>...)`` groups (Go 1.22 added them; ``(?P<name>...)`` works everywhere).
_GO_REFUSES = (
    (re.compile(r"(?<!\\)(?:\\\\)*\\C"), "invalid escape sequence: \\C"),
    (re.compile(r"(?<!\\)(?:\\\\)*\(\?<[A-Za-z_]"),
     "invalid named capture: write (?P<name>...)"),
)


class _WholeValue:
    """An RE2 program (``^(?:VALUE)$``) matched against a label value.

    Straight through the binding's compiled program: about 1 µs a match, where the
    ``re``-like wrapper (match objects, offset decoding) takes about 15 µs, which a
    runbook set of thousands of regex matchers would pay per alert.
    """

    __slots__ = ("_compiled", "_program", "_seen")
    #: Label values repeat (a handful of namespaces, alertnames): the last verdicts are kept.
    SEEN = 128

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._program = getattr(compiled, "_regexp", None) if _UNANCHORED is not None else None
        self._seen: dict[str, bool] = {}

    def matches(self, text: str) -> bool:
        verdict = self._seen.get(text)
        if verdict is not None:
            return verdict
        if self._program is None:   # a binding without the program: its public API
            verdict = self._compiled.search(text) is not None
        else:
            data = text.encode("utf-8", "surrogatepass")
            verdict = self._program.Match(_UNANCHORED, data, 0, len(data))[0][0] != -1
        if len(self._seen) >= self.SEEN:
            self._seen.clear()
        self._seen[text] = verdict
        return bool(verdict)


try:
    # Unanchored, as Go's MatchString: the anchors are in the pattern, and ``a)|(b`` makes
    # ``^(?:a)|(b)$``, which Alertmanager matches against "abc" (it starts with a).
    _UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
except AttributeError:   # another layout of the binding: its public API serves
    _UNANCHORED = None


def _compile_regex(value: str) -> _WholeValue:
    """``value`` compiled as Alertmanager does: ``^(?:value)$`` in RE2 syntax."""
    for refused, reason in _GO_REFUSES:
        if refused.search(value):
            raise ValueError(f"bad regex {value!r}: {reason}")
    try:
        return _WholeValue(re2.compile(f"^(?:{value})$", _RE2_OPTIONS))
    except re2.error as exc:
        reason = _reason(exc)
    try:
        re2.compile(value, _RE2_OPTIONS)   # the error as it reads in the value itself
    except re2.error as exc:
        reason = _reason(exc)
    raise ValueError(f"bad regex {value!r}: {reason}")


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One Alertmanager label matcher; regexes are anchored at both ends."""

    name: str
    op: str
    value: str
    _regex: _WholeValue | None = field(default=None, init=False, repr=False, compare=False,
                                       hash=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r} (expected one of {', '.join(OPS)})")
        if not _LABEL_NAME.fullmatch(self.name):
            raise ValueError(f"invalid label name {self.name!r}")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", _compile_regex(self.value))

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is None:
            return (actual == self.value) == (self.op == "=")
        return self._regex.matches(actual) == (self.op == "=~")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'


def parse_matcher(text: str) -> Matcher:
    """Parse ``name op value`` as Alertmanager does; ValueError says what is wrong."""
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(f"bad matcher {text!r}: expected a label name, one of "
                         f"{' '.join(OPS)} and a value, e.g. alertname=\"WorkflowFailed\"")
    name, op, raw = found.groups()
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    closed = False
    for i, char in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(char, "\\" + char))
        elif char == "\\":
            if i < len(raw) - 1:
                escaped = True
            else:
                out.append("\\")   # a trailing lone backslash is literal, as in Alertmanager
        elif char == '"':
            if not quoted or i < len(raw) - 1:
                raise ValueError(f"bad matcher {text!r}: unescaped double quote in the value")
            closed = True
        else:
            out.append(char)
    if quoted and not closed:
        raise ValueError(f"bad matcher {text!r}: missing closing double quote")
    return Matcher(name, op, "".join(out))


# -- specs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    """A templated string, compiled at load; ``source`` is what the operator wrote."""

    source: str
    template: jinja2.Template = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    kind: str
    params: Mapping[str, Param]
    origin: Origin


@dataclass(frozen=True, slots=True)
class NotifySpec:
    channel: str
    template: str | None
    fallback: str | None
    per_alert: bool
    origin: Origin


@dataclass(frozen=True, slots=True)
class RetrySpec:
    """The budget per action target: ``limit`` attempts, exponential backoff between."""

    limit: int = 3
    duration: float = 30.0
    factor: float = 2.0
    max_duration: float = 300.0


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """At most ``max_actions`` actions per target in any ``window`` seconds."""

    max_actions: int = 5
    window: float = 600.0


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    key: Param
    threshold: int
    window: float
    cooldown: float
    on_open: tuple[ActionSpec, ...]
    on_close: tuple[ActionSpec, ...]


@dataclass(frozen=True, slots=True)
class ApprovalSpec:
    """A person decides before the actions run; no decision by ``timeout``: ``on_timeout``."""

    timeout: float = 900.0
    on_timeout: str = "escalate"        # escalate (on_exhausted) | proceed
    notify: tuple[NotifySpec, ...] = ()


@dataclass(frozen=True, slots=True)
class RunbookSpec:
    name: str
    description: str
    matchers: tuple[Matcher, ...]
    status: str
    when_retryable: bool | None
    when_categories: frozenset[str] | None
    actions: tuple[ActionSpec, ...]
    retry: RetrySpec
    rate_limit: RateLimitSpec
    breaker: BreakerSpec | None
    notify: tuple[NotifySpec, ...]
    on_exhausted: tuple[NotifySpec, ...]
    continue_: bool
    origin: Origin
    approval: ApprovalSpec | None = None


# -- loading ---------------------------------------------------------------------------

_RUNBOOK_KEYS = ("name", "description", "match", "status", "when", "actions", "retry",
                 "rate_limit", "breaker", "notify", "on_exhausted", "continue", "approval")


class _Loader:
    """One load: the shared Jinja environment, a compile cache and the error list."""

    def __init__(self, channels: Collection[str], templates: Collection[str]) -> None:
        self.errors: list[ConfigError] = []
        self.channels = frozenset(channels)
        self.templates = frozenset(templates)
        self.env = new_environment()
        # Thousands of runbooks share a handful of sources ("{{ labels.namespace }}").
        self._compiled: dict[str, jinja2.Template | str] = {}
        self._matchers: dict[str, Matcher | str] = {}

    def error(self, origin: Origin | None, message: str) -> None:
        self.errors.append(ConfigError(origin, message))

    def sorted_errors(self) -> list[ConfigError]:
        """In reading order: files as loaded, lines ascending (stable for equal lines)."""
        files: dict[str, int] = {}
        for e in self.errors:
            if e.origin is not None:
                files.setdefault(e.origin.path, len(files))
        return sorted(self.errors, key=lambda e: (-1, 0) if e.origin is None
                      else (files[e.origin.path], e.origin.line))

    # -- templates -------------------------------------------------------------------
    def param(self, source: str, where: str, origin: Origin | None) -> Param | None:
        compiled = self._compiled.get(source)
        if compiled is None:
            compiled = self._compile(source)
            self._compiled[source] = compiled
        if isinstance(compiled, str):
            self.error(origin, f"{where}: {compiled}")
            return None
        return Param(source, compiled)

    def _compile(self, source: str) -> jinja2.Template | str:
        try:
            tree: nodes.Template = self.env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            return f"template syntax: {exc.message}"
        try:
            # Unknown filters and tests are only found when the tree is compiled, which
            # find_undeclared_variables already does.
            unknown = sorted(meta.find_undeclared_variables(tree) - CONTEXT_VARIABLES)
            if unknown:
                return (f"template uses unknown variable(s) {', '.join(unknown)} "
                        f"(known: {', '.join(sorted(CONTEXT_VARIABLES))})")
            return self.env.from_string(tree)
        except jinja2.TemplateError as exc:
            return f"template: {getattr(exc, 'message', None) or exc}"

    # -- pieces ----------------------------------------------------------------------
    def matchers(self, rb: Section) -> tuple[Matcher, ...]:
        raw = rb.raw("match")
        if raw is None:
            rb.error(rb.origin, f"{rb.name('match')}: required (a list of matchers)")
            return ()
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            rb.error(rb.at("match"), f"{rb.name('match')}: expected a non-empty list of "
                                     f"matchers, got {type_name(raw)}")
            return ()
        out: list[Matcher] = []
        for i, text in enumerate(items):
            where = origin_of(items, i) or rb.at("match")
            if not isinstance(text, str):
                self.error(where, f"{rb.name('match')}[{i}]: expected a matcher string like "
                                  f'alertname="X", got {type_name(text)}')
                continue
            parsed = self._matchers.get(text)
            if parsed is None:
                try:
                    parsed = parse_matcher(text)
                except ValueError as exc:
                    parsed = str(exc)
                self._matchers[text] = parsed
            if isinstance(parsed, str):
                self.error(where, f"{rb.name('match')}[{i}]: {parsed}")
            else:
                out.append(parsed)
        return tuple(out)

    def actions(self, raw: Any, where: str, origin: Origin | None) -> tuple[ActionSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(origin, f"{where}: expected a list of actions, got {type_name(raw)}")
            return ()
        out: list[ActionSpec] = []
        for i, item in enumerate(raw):
            spec = self.action(item, f"{where}[{i}]", origin_of(raw, i) or origin)
            if spec is not None:
                out.append(spec)
        return tuple(out)

    def action(self, item: Any, where: str, origin: Origin | None) -> ActionSpec | None:
        if not isinstance(item, dict) or len(item) != 1:
            self.error(origin, f"{where}: expected one mapping like "
                               "{argo.retry: {namespace: ..., workflow: ...}}")
            return None
        kind, params = next(iter(item.items()))
        at = origin_of(item, kind) or origin or _NOWHERE
        spec = ACTION_KINDS.get(kind)
        if spec is None:
            self.error(at, f"{where}: unknown action {kind!r} "
                           f"(known: {', '.join(sorted(ACTION_KINDS))})")
            return None
        if params is None:
            params = {}
        if not isinstance(params, dict):
            self.error(at, f"{where}: {kind} parameters must be a mapping, "
                           f"got {type_name(params)}")
            return None
        rendered: dict[str, Param] = {}
        ok = True
        for name, value in params.items():
            p_at = origin_of(params, name) or at
            p_where = f"{where}.{kind}.{name}"
            if name not in spec.params:
                self.error(p_at, f"{p_where}: unknown parameter of {kind} "
                                 f"(known: {', '.join(sorted(spec.params))})")
                ok = False
                continue
            param = self.param_value(name, value, p_where, p_at)
            if param is None:
                ok = False
            else:
                rendered[name] = param
        missing = sorted(spec.required - set(params))
        if missing:
            self.error(at, f"{where}: {kind} requires {', '.join(missing)}")
            ok = False
        return ActionSpec(kind, MappingProxyType(rendered), at) if ok else None

    def param_value(self, name: str, value: Any, where: str, origin: Origin) -> Param | None:
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        if not isinstance(value, str):
            self.error(origin, f"{where}: expected a string, got {type_name(value)}")
            return None
        if "{{" not in value and "{%" not in value:
            # A literal is checked now, as its rendering will be.
            try:
                if name in BOOL_PARAMS:
                    coerce_bool(value)
                elif name in DURATION_PARAMS:
                    parse_duration(value)
                elif name in NAME_PARAMS:
                    check_name_param(name, value)
            except ValueError as exc:
                self.error(origin, f"{where}: {exc}")
                return None
        return self.param(value, where, origin)

    def notify_list(self, raw: Any, where: str, origin: Origin | None) -> tuple[NotifySpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(origin, f"{where}: expected a list like [{{channel: oncall}}], "
                               f"got {type_name(raw)}")
            return ()
        out: list[NotifySpec] = []
        for i, item in enumerate(raw):
            item_origin = origin_of(raw, i) or origin
            if isinstance(item, str):
                item = {"channel": item}
            n = Section(item, self.errors, where=f"{where}[{i}]", origin=item_origin)
            if not n.valid:
                continue
            channel = n.str("channel")
            template = n.str("template", None)
            fallback = n.str("fallback", None)
            per_alert = n.bool("per_alert", False)
            n.finish()
            for key, name in (("channel", channel), ("fallback", fallback)):
                if isinstance(name, str) and name not in self.channels:
                    known = ", ".join(sorted(self.channels)) or "none configured"
                    self.error(n.at(key), f"{n.name(key)}: unknown channel {name!r} "
                                          f"(configured: {known})")
            if isinstance(template, str) and self.templates and template not in self.templates:
                self.error(n.at("template"), f"{n.name('template')}: unknown template "
                                             f"{template!r}")
            if isinstance(channel, str):
                out.append(NotifySpec(channel, template, fallback, bool(per_alert),
                                      n.at("channel") or item_origin or _NOWHERE))
        return tuple(out)

    def retry(self, rb: Section) -> RetrySpec:
        default = RetrySpec()
        sec = rb.section("retry")
        if sec is None or not sec.valid:
            return default
        limit = sec.int("limit", default.limit, minimum=1)
        backoff = sec.section("backoff")
        sec.finish()
        if backoff is None or not backoff.valid:
            return RetrySpec(limit, default.duration, default.factor, default.max_duration)
        duration = backoff.duration("duration", default.duration, positive=True)
        factor = backoff.number("factor", default.factor, minimum=1)
        cap = backoff.duration("max_duration", max(default.max_duration, duration),
                               positive=True)
        backoff.finish()
        if cap < duration:
            backoff.error(backoff.at("max_duration"),
                          f"{backoff.name('max_duration')}: must be at least duration")
        return RetrySpec(limit, duration, factor, cap)

    def rate_limit(self, rb: Section) -> RateLimitSpec:
        default = RateLimitSpec()
        sec = rb.section("rate_limit")
        if sec is None or not sec.valid:
            return default
        spec = RateLimitSpec(sec.int("max_actions", default.max_actions, minimum=1),
                             sec.duration("window", default.window, positive=True))
        sec.finish()
        return spec

    def breaker(self, rb: Section) -> BreakerSpec | None:
        sec = rb.section("breaker")
        if sec is None or not sec.valid:
            return None
        source = sec.str("key")
        threshold = sec.int("threshold", 3, minimum=1)
        window = sec.duration("window", 900.0, positive=True)
        cooldown = sec.duration("cooldown", 600.0, positive=True)
        on_open = self.actions(sec.raw("on_open"), sec.name("on_open"), sec.at("on_open"))
        on_close = self.actions(sec.raw("on_close"), sec.name("on_close"), sec.at("on_close"))
        sec.finish()
        if not isinstance(source, str):
            return None
        key = self.param(source, sec.name("key"), sec.at("key"))
        if key is None:
            return None
        return BreakerSpec(key, threshold, window, cooldown, on_open, on_close)

    def when(self, rb: Section) -> tuple[bool | None, frozenset[str] | None]:
        sec = rb.section("when")
        if sec is None or not sec.valid:
            return None, None
        retryable = sec.bool("retryable", None)
        names = sec.str_list("category", None)
        sec.finish()
        categories: frozenset[str] | None = None
        if isinstance(names, list):
            for name in names:
                if name not in CATEGORIES:
                    known = ", ".join(CATEGORIES)
                    sec.error(sec.at("category"), f"{sec.name('category')}: unknown category "
                                                  f"{name!r} (known: {known})")
            categories = frozenset(names)
            if not categories:
                sec.error(sec.at("category"), f"{sec.name('category')}: empty list never "
                                              "matches; remove it to match every category")
        return retryable, categories

    # -- one runbook -----------------------------------------------------------------
    def runbook(self, data: Any, index: int, origin: Origin) -> RunbookSpec | None:
        name = data.get("name") if isinstance(data, dict) else None
        label = name if isinstance(name, str) and name else f"runbooks[{index}]"
        rb = Section(data, self.errors, where=label, origin=origin)
        if not rb.valid:
            return None
        name = rb.str("name")
        if isinstance(name, str) and not _RUNBOOK_NAME.fullmatch(name):
            rb.error(rb.at("name"), f"{label}.name: use letters, digits, '-', '_' and '.', "
                                    "starting with a letter or digit")
        description = rb.str("description", "")
        matchers = self.matchers(rb)
        status = rb.str("status", "firing")
        if isinstance(status, str) and status not in STATUSES:
            rb.error(rb.at("status"), f"{label}.status: {status!r} is not one of "
                                      "firing, resolved, any")
        retryable, categories = self.when(rb)
        actions = self.actions(rb.raw("actions"), rb.name("actions"), rb.at("actions"))
        retry = self.retry(rb)
        rate_limit = self.rate_limit(rb)
        breaker = self.breaker(rb)
        notify = self.notify_list(rb.raw("notify"), rb.name("notify"), rb.at("notify"))
        on_exhausted: tuple[NotifySpec, ...] = ()
        exhausted = rb.section("on_exhausted")
        if exhausted is not None and exhausted.valid:
            on_exhausted = self.notify_list(exhausted.raw("notify"), exhausted.name("notify"),
                                            exhausted.at("notify"))
            exhausted.finish()
        continue_ = rb.bool("continue", False)
        approval: ApprovalSpec | None = None
        asked = rb.section("approval")
        if asked is not None and asked.valid:
            on_timeout = asked.str("on_timeout", "escalate")
            if on_timeout not in ("escalate", "proceed"):
                asked.error(asked.at("on_timeout"), f"{asked.name('on_timeout')}: "
                            f"{on_timeout!r} is not one of escalate, proceed")
            approval = ApprovalSpec(
                timeout=asked.duration("timeout", 900.0), on_timeout=str(on_timeout),
                notify=self.notify_list(asked.raw("notify"), asked.name("notify"),
                                        asked.at("notify")))
            asked.finish()
            if rb.raw("actions") is None:
                asked.error(asked.origin, f"{label}.approval: the runbook has no actions to "
                                          "approve")
        rb.finish()
        if rb.raw("actions") is None and rb.raw("notify") is None:
            rb.error(origin, f"{label}: has neither actions nor notify: it would do nothing")
        if not isinstance(name, str) or not isinstance(status, str):
            return None
        return RunbookSpec(
            name=name, description=description or "", matchers=matchers, status=status,
            when_retryable=retryable, when_categories=categories, actions=actions,
            retry=retry, rate_limit=rate_limit, breaker=breaker, notify=notify,
            on_exhausted=on_exhausted, continue_=bool(continue_), origin=origin,
            approval=approval)

    def document(self, data: Any, shown: str) -> list[RunbookSpec]:
        """The runbooks of one parsed file."""
        if data is None:
            self.error(Origin(shown, 1), "empty file: expected `runbooks:` with a list")
            return []
        top = Section(data, self.errors, where="", origin=Origin(shown, 1))
        if not top.valid:
            return []
        raw = top.raw("runbooks")
        top.finish()
        if raw is None:
            self.error(top.origin, "runbooks: required (a list of runbooks)")
            return []
        if not isinstance(raw, MarkedList):
            self.error(top.at("runbooks"), f"runbooks: expected a list, got {type_name(raw)}")
            return []
        out = []
        for i, item in enumerate(raw):
            spec = self.runbook(item, i, raw.origin_of(i))
            if spec is not None:
                out.append(spec)
        return out

    def unique(self, specs: Sequence[RunbookSpec]) -> tuple[RunbookSpec, ...]:
        """Runbook names are unique across files; the later definition is the error."""
        first: dict[str, Origin] = {}
        out: list[RunbookSpec] = []
        for spec in specs:
            if spec.name in first:
                self.error(spec.origin, f"runbook {spec.name!r} is already defined at "
                                        f"{first[spec.name]}")
                continue
            first[spec.name] = spec.origin
            out.append(spec)
        return tuple(out)


def _shown(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            pass
    return str(path)


def runbook_paths(patterns: Sequence[str], base_dir: Path,
                  origin: Origin | None = None) -> tuple[list[Path], list[ConfigError]]:
    """The files ``patterns`` name, in order, each once; a pattern matching none is an error."""
    paths: list[Path] = []
    seen: set[Path] = set()
    errors: list[ConfigError] = []
    for pattern in patterns:
        full = Path(pattern).expanduser()
        if not full.is_absolute():
            full = base_dir / full
        found = sorted(Path(p) for p in glob.glob(str(full), recursive=True))
        found = [p for p in found if p.is_file()]
        if not found:
            errors.append(ConfigError(origin, f"rules: {pattern!r} matches no file"))
        for p in found:
            if p.resolve() not in seen:
                seen.add(p.resolve())
                paths.append(p)
    return paths, errors


def load_runbooks(
    patterns: Sequence[str],
    *,
    base_dir: Path,
    channels: Collection[str],
    templates: Collection[str] = (),
    display_base: Path | None = None,
    origin: Origin | None = None,
) -> tuple[RunbookSpec, ...]:
    """Every runbook the globs name, in file order; ConfigErrors lists every problem.

    ``channels`` are the configured channel names; ``templates``, when non-empty, the
    template names a notify entry may ask for. ``origin`` is where ``rules`` is written,
    for the error about a glob that matches nothing.
    """
    loader = _Loader(channels, templates)
    paths, errors = runbook_paths(patterns, base_dir, origin)
    loader.errors.extend(errors)
    specs: list[RunbookSpec] = []
    for path in paths:
        shown = _shown(path, display_base)
        try:
            specs.extend(loader.document(load_file(path, shown), shown))
        except ConfigError as exc:
            loader.errors.append(exc)
    runbooks = loader.unique(specs)
    if loader.errors:
        raise ConfigErrors(loader.sorted_errors())
    return runbooks


def load_runbooks_text(text: str, *, channels: Collection[str], path: str = "<string>",
                       templates: Collection[str] = ()) -> tuple[RunbookSpec, ...]:
    """Runbooks from one YAML text (tests, benchmarks); the same checks as ``load_runbooks``."""
    loader = _Loader(channels, templates)
    try:
        runbooks = loader.unique(loader.document(load_text(text, path), path))
    except ConfigError as exc:
        loader.errors.append(exc)
    if loader.errors:
        raise ConfigErrors(loader.sorted_errors())
    return runbooks
