"""Every metric the responder exports, created once at start-up on a registry passed in.

Label values stay bounded: status/code/action/outcome/category come from fixed sets,
``channel``, ``runbook`` and breaker ``key`` from the operator's own configuration (a
breaker that is forgotten takes its series with it). No ``*_created`` series: they double
every counter and no dashboard or rule reads them.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from responder import __version__

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_ACTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ANALYSIS_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.05, 1.0)


class _KnownChildren(MetricWrapperBase):
    """``labels(...)`` answered from the children it made already (a storm asks for the same
    few thousands of times a second; prometheus_client checks and locks every time)."""

    _known: dict[tuple[Any, ...], Any]

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> Any:
        known = self.__dict__.setdefault("_known", {})
        if labelkwargs:
            return super().labels(*labelvalues, **labelkwargs)
        child = known.get(labelvalues)
        if child is None:
            child = known[labelvalues] = super().labels(*labelvalues)
        return child

    def remove(self, *labelvalues: Any) -> None:
        self.__dict__["_known"] = {}
        super().remove(*labelvalues)

    def clear(self) -> None:
        self.__dict__["_known"] = {}
        super().clear()


class Counter(_KnownChildren, prometheus_client.Counter):
    pass


class Gauge(_KnownChildren, prometheus_client.Gauge):
    pass


class Histogram(_KnownChildren, prometheus_client.Histogram):
    pass


class Metrics:
    """The responder's metrics; one instance per app, on the registry it is given."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide switch
        self.registry = registry
        p = "responder_"
        self.build_info = Gauge(
            p + "build_info", "Always 1; the version and the Python it runs on as labels.",
            ["version", "python"], registry=registry)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.alerts_received = Counter(
            p + "alerts_received_total", "Alerts received from Alertmanager, by alert status.",
            ["status"], registry=registry)
        self.webhook_requests = Counter(
            p + "webhook_requests_total", "Webhook requests answered, by HTTP status code.",
            ["code"], registry=registry)
        self.webhook_duration = Histogram(
            p + "webhook_request_duration_seconds",
            "Time from webhook request to answer (journal commit included).",
            buckets=_LATENCY_BUCKETS, registry=registry)
        self.alerts_rejected = Counter(
            p + "alerts_rejected_total", "Alerts rejected as invalid inside accepted payloads.",
            registry=registry)
        self.alerts_duplicate = Counter(
            p + "alerts_duplicate_total", "Alert deliveries already in the journal.",
            registry=registry)
        self.retry_attempts = Counter(
            p + "retry_attempts_total", "Retry attempts made on workflows.", registry=registry)
        self.retry_success = Counter(
            p + "retry_success_total", "Retry attempts followed by recovery.", registry=registry)
        self.recovery_success = Counter(
            p + "recovery_success_total",
            "Alerts that resolved after the responder acted on them.", registry=registry)
        self.manual_interventions = Counter(
            p + "manual_interventions_total",
            "Escalations to humans (budget spent, breaker open, not retryable).",
            registry=registry)
        self.retry_budget_exhausted = Counter(
            p + "retry_budget_exhausted_total", "Retry budgets spent, by runbook.",
            ["runbook"], registry=registry)
        self.plan_errors = Counter(
            p + "plan_errors_total",
            "Runbooks whose templates failed to render for an alert at run time.", ["runbook"],
            registry=registry)
        self.runbook_matches = Counter(
            p + "runbook_matches_total", "Alerts matched by each runbook.", ["runbook"],
            registry=registry)
        self.actions = Counter(
            p + "actions_total", "Actions by type and outcome.", ["action", "outcome"],
            registry=registry)
        self.action_duration = Histogram(
            p + "action_duration_seconds", "Time spent executing actions.", ["action"],
            buckets=_ACTION_BUCKETS, registry=registry)
        self.breaker_state = Gauge(
            p + "circuit_breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            ["key"], registry=registry)
        self.analysis_duration = Histogram(
            p + "failure_analysis_duration_seconds", "Time to classify one alert's failure.",
            buckets=_ANALYSIS_BUCKETS, registry=registry)
        self.analysis_total = Counter(
            p + "analysis_total", "Analyses by what decided them.", ["source"],
            registry=registry)
        for source in ("pattern", "model", "feedback", "none"):
            self.analysis_total.labels(source)
        self.failure_category = Counter(
            p + "failure_category_total", "Analysed failures by category.", ["category"],
            registry=registry)
        self.notifications_sent = Counter(
            p + "notifications_sent_total", "Notifications delivered, by channel.", ["channel"],
            registry=registry)
        self.notification_failed = Counter(
            p + "notification_delivery_failed_total",
            "Notifications that failed permanently, by channel.", ["channel"], registry=registry)
        self.journal_pending = Gauge(
            p + "journal_pending",
            "Journal entries not yet finished (receipts, scheduled attempts, outbox).",
            registry=registry)
        self.journal_bytes = Gauge(
            p + "journal_bytes",
            "Bytes the journal takes on its volume (SQLite: database, WAL and index files).",
            registry=registry)
        self.config_reload_ok = Gauge(
            p + "config_last_reload_successful",
            "Whether the last configuration reload succeeded.", registry=registry)
        self.config_reload_time = Gauge(
            p + "config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration reload.", registry=registry)
        self.paused = Gauge(
            p + "paused", "1 while the operator's kill switch holds all actions.",
            registry=registry)
        self.approvals = Counter(
            p + "approvals_total", "Decisions on actions that waited for a person "
            "(approved, rejected, timeout).", ["decision"], registry=registry)
        for decision in ("approved", "rejected", "timeout"):   # zero before the first one
            self.approvals.labels(decision)

    def runbooks_loaded(self, names: Iterable[str]) -> None:
        """Start each configured runbook's error counter at 0, so that a rate over it is 0
        rather than absent (a dashboard panel says "0", not "No data")."""
        for name in names:
            self.plan_errors.labels(name)
