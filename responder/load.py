"""Load everything one configuration names, all or nothing.

A reload is a transaction: this builds a complete ``Runtime`` (config, analyzer, runbook
index, templates) or raises ``ConfigErrors`` listing every problem in every file, and the
caller keeps the old runtime. Nothing here touches the network or the journal.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from responder.analyze import Analyzer, Model, ModelError, load_model, shipped_model_path
from responder.config.main import Config, load_config
from responder.config.patterns import PatternSpec, load_patterns
from responder.config.runbooks import RunbookSpec, load_runbooks
from responder.errors import ConfigError, ConfigErrors, Origin
from responder.match import RunbookIndex
from responder.notify.render import Templates


@dataclass(frozen=True, slots=True)
class Runtime:
    config: Config
    patterns: tuple[PatternSpec, ...]
    analyzer: Analyzer
    runbooks: tuple[RunbookSpec, ...]
    index: RunbookIndex
    templates: Templates
    loaded_at: float
    model_error: str | None = None  # the model could not load: patterns only


log = logging.getLogger("responder.load")


def _pattern_paths(config: Config, errors: list[ConfigError]) -> list[Path]:
    paths: list[Path] = []
    for entry in config.patterns:
        origin = config.origins.get("patterns", Origin(str(config.path)))
        if not any(c in entry for c in "*?["):
            path = config.base_dir / Path(entry).expanduser()
            if not path.exists():
                errors.append(ConfigError(origin, f"patterns: {entry!r}: no such file"))
                continue
            paths.append(path)
            continue
        matches = sorted(config.base_dir.glob(entry))
        if not matches:
            errors.append(ConfigError(origin, f"patterns: {entry!r} matches no file"))
        paths.extend(matches)
    return paths


def load_runtime(path: Path, *, check_templates: bool = False,
                 strict_model: bool = False) -> Runtime:
    """Build a runtime from ``path``; ``check_templates`` also renders every template.

    A model file that cannot be read is an error with ``strict_model`` (``responder
    check``); otherwise the analysis runs on patterns alone and says so in a warning.
    """
    config = load_config(path)
    errors: list[ConfigError] = []
    model, model_error = _model(config)
    if model_error is not None:
        if strict_model:
            errors.append(ConfigError(Origin(str(config.path), config.analysis.model_line or 0),
                                      f"analysis.model: {model_error}"))
        else:
            log.warning("analysis model unusable, analysing with patterns only: %s", model_error)
    patterns: tuple[PatternSpec, ...] = ()
    try:
        patterns = load_patterns(_pattern_paths(config, errors), display_base=config.base_dir)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    templates: Templates | None = None
    if not config.templates.is_dir():
        errors.append(ConfigError(config.origins.get("templates", Origin(str(config.path))),
                                  f"templates: {config.templates} is not a directory"))
    else:
        try:
            templates = Templates.load(config.templates)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    runbooks: tuple[RunbookSpec, ...] = ()
    try:
        runbooks = load_runbooks(
            config.rules, base_dir=config.base_dir, channels=config.channels.keys(),
            templates=templates.names() if templates is not None else (),
            display_base=config.base_dir, origin=config.origins.get("rules"))
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    if templates is not None and check_templates:
        errors.extend(templates.check(config.channels))
    if errors or templates is None:
        raise ConfigErrors(errors)
    return Runtime(
        config=config,
        patterns=patterns,
        analyzer=Analyzer(patterns, model=model,
                          min_confidence=config.analysis.min_confidence),
        runbooks=runbooks,
        index=RunbookIndex(runbooks),
        templates=templates,
        loaded_at=time.time(),
        model_error=model_error,
    )


def template_problems(runtime: Runtime) -> list[str]:
    """What ``responder check`` says of the templates (each rendered against the firing,
    resolved, escalation and bare samples), as warnings for ``serve`` and reload: a
    template may fail on a sample only for a label the samples lack (``labels.team``)
    and render every real alert, so it does not stop the service; but one that fails
    every message, pages included, must not pass without a word."""
    return [f"{e} (messages rendered with it may fail; `responder check` fails on it)"
            for e in runtime.templates.check(runtime.config.channels)]


def _model(config: Config) -> tuple[Model | None, str | None]:
    """The configured model, or None and why not (``analysis.model: false`` is no error)."""
    spec = config.analysis
    if not spec.model:
        return None, None
    path = spec.model_path or shipped_model_path()
    try:
        return load_model(path, config.display(path)), None
    except ModelError as exc:
        return None, str(exc)


def load_analyzer(path: Path) -> tuple[Config, Analyzer]:
    """Only what ``responder analyze`` needs: the config's patterns and model, built exactly
    as the service builds them."""
    config = load_config(path)
    errors: list[ConfigError] = []
    paths = _pattern_paths(config, errors)
    if errors:
        raise ConfigErrors(errors)
    model, model_error = _model(config)
    if model_error is not None:
        log.warning("analysis model unusable, analysing with patterns only: %s", model_error)
    return config, Analyzer(load_patterns(paths, display_base=config.base_dir), model=model,
                            min_confidence=config.analysis.min_confidence)
