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

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # A scalar its tag cannot construct (``2001-02-30``, ``!!int x``) raises a plain
        # ValueError without a mark; it is an error at that node's line.
        try:
            return super().construct_object(node, deep=deep)
        except (ConfigError, yaml.YAMLError):
            raise
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            tag = node.tag.rsplit(":", 1)[-1]
            raise ConfigError(_origin(self.source_path, node),
                              f"YAML: {node.value!r} is not a valid {tag}: {exc}"
                              if isinstance(node, yaml.ScalarNode) else f"YAML: {exc}") from None


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _marked_message(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """The line and a one-line message of a scanner, parser or constructor error."""
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and mark is not None and mark.line >= len(text.splitlines()):
        mark = exc.context_mark    # found at the end of the file: name where it began
    line = mark.line + 1 if mark else 1
    message = _one_line(exc.problem or exc.context or "invalid YAML")
    if mark is exc.context_mark and exc.context:
        message = f"{_one_line(exc.context)}: {message}"
    if exc.problem_mark is not None and "\t" in _line_text(text, exc.problem_mark.line):
        message += " (a tab? YAML indents with spaces only)"
    return line, f"YAML syntax: {message}"


def _line_text(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def _reader_message(exc: yaml.reader.ReaderError, text: str) -> tuple[int, str]:
    """A character YAML does not allow (a control character, a NUL), at its line."""
    character = exc.character
    if isinstance(character, int):    # libyaml counts UTF-8 bytes
        before = text.encode("utf-8", "surrogatepass")[:max(0, exc.position)].decode(
            "utf-8", "replace")
    else:
        before = text[:max(0, exc.position)]
        character = ord(character)
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return line, (f"YAML: character U+{character:04X} at column {column} is not allowed "
                  f"(control characters other than tab and newline cannot appear in YAML)")


def load_text(text: str, path: str = "<string>") -> Any:
    """Parse YAML text; every kind of error becomes one ConfigError at its line."""
    try:
        loader = _Loader(text)
    except UnicodeError:
        raise ConfigError(Origin(path, 1), "YAML: the text is not valid Unicode") from None
    except yaml.reader.ReaderError as exc:
        line, message = _reader_message(exc, text)
        raise ConfigError(Origin(path, line), message) from None
    loader.source_path = path
    try:
        return loader.get_single_data()
    except ConfigError:
        raise
    except yaml.reader.ReaderError as exc:
        line, message = _reader_message(exc, text)
        raise ConfigError(Origin(path, line), message) from None
    except yaml.MarkedYAMLError as exc:
        line, message = _marked_message(exc, text)
        raise ConfigError(Origin(path, line), message) from None
    except yaml.YAMLError as exc:
        raise ConfigError(Origin(path, 1), f"YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ConfigError(Origin(path, 1), "YAML: nested too deeply") from None
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
