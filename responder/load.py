"""Load everything one configuration names, all or nothing.

A reload is a transaction: this builds a complete ``Runtime`` (config, analyzer, runbook
index, templates) or raises ``ConfigErrors`` listing every problem in every file, and the
caller keeps the old runtime. Nothing here touches the network or the journal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from responder.analyze import Analyzer
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


def _pattern_paths(config: Config, errors: list[ConfigError]) -> list[Path]:
    paths: list[Path] = []
    for entry in config.patterns:
        matches = sorted(config.base_dir.glob(entry)) if any(c in entry for c in "*?[") else [
            config.base_dir / Path(entry).expanduser()]
        if not matches:
            errors.append(ConfigError(Origin(str(config.path)), f"patterns: {entry!r} matches no file"))
        paths.extend(matches)
    return paths


def load_runtime(path: Path, *, check_templates: bool = False) -> Runtime:
    """Build a runtime from ``path``; ``check_templates`` also renders every template."""
    config = load_config(path)
    errors: list[ConfigError] = []
    patterns: tuple[PatternSpec, ...] = ()
    try:
        patterns = load_patterns(_pattern_paths(config, errors), display_base=config.base_dir)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    templates: Templates | None = None
    try:
        templates = Templates.load(config.templates)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    runbooks: tuple[RunbookSpec, ...] = ()
    try:
        runbooks = load_runbooks(
            config.rules, base_dir=config.base_dir, channels=config.channels.keys(),
            templates=templates.names() if templates is not None else (),
            display_base=config.base_dir)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    if templates is not None and check_templates:
        errors.extend(templates.check(config.channels))
    if errors or templates is None:
        raise ConfigErrors(errors)
    return Runtime(
        config=config,
        patterns=patterns,
        analyzer=Analyzer(patterns),
        runbooks=runbooks,
        index=RunbookIndex(runbooks),
        templates=templates,
        loaded_at=time.time(),
    )


def load_analyzer(path: Path) -> Analyzer:
    """Only what ``responder analyze`` needs: the config's patterns."""
    config = load_config(path)
    errors: list[ConfigError] = []
    paths = _pattern_paths(config, errors)
    if errors:
        raise ConfigErrors(errors)
    return Analyzer(load_patterns(paths, display_base=config.base_dir))
