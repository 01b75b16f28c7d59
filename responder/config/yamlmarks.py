"""YAML loading that remembers where every value was written.

Mappings load as ``MarkedDict`` and sequences as ``MarkedList``; both know their own origin
and the origin of each key or item, so a validator can say ``runbooks.yaml:16: ...`` about
any scalar. Duplicate keys are errors (PyYAML silently keeps the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from responder.errors import ConfigError, Origin


class MarkedDict(dict[str, Any]):
    """A mapping from YAML with the origin of itself and of each key."""

    origin: Origin
    key_origins: dict[str, Origin]

    def origin_of(self, key: str) -> Origin:
        return self.key_origins.get(key, self.origin)


class MarkedList(list[Any]):
    """A sequence from YAML with the origin of itself and of each item."""

    origin: Origin
    item_origins: list[Origin]

    def origin_of(self, index: int) -> Origin:
        if 0 <= index < len(self.item_origins):
            return self.item_origins[index]
        return self.origin


def _origin(path: str, node: yaml.Node) -> Origin:
    return Origin(path, node.start_mark.line + 1)


_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~4x faster


class _Loader(_Base):  # type: ignore[valid-type,misc]
    source_path = "<string>"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.origin = _origin(loader.source_path, node)
    result.key_origins = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        where = _origin(loader.source_path, key_node)
        if key in result:
            raise ConfigError(where, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_origins[key] = where
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.origin = _origin(loader.source_path, node)
    result.item_origins = [_origin(loader.source_path, child) for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_text(text: str, path: str = "<string>") -> Any:
    """Parse YAML text; syntax errors become a ConfigError at the offending line."""
    loader = _Loader(text)
    loader.source_path = path
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(Origin(path, line), f"YAML syntax: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(Origin(path), f"YAML: {exc}") from None
    finally:
        loader.dispose()


def load_file(path: Path, display: str | None = None) -> Any:
    """Read and parse a YAML file; unreadable files and bad encodings are ConfigErrors."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(Origin(shown), f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(Origin(shown), f"not UTF-8: {exc.reason}") from None
    return load_text(text, shown)
