"""Every credential a configuration holds, for the one scrubber (``responder.redact``).

Found by walking the frozen specs rather than listed by hand, so a secret a new setting
adds is scrubbed without anyone remembering to: a ``Secret``, or a string field declared
``repr=False`` (how the specs keep credentials out of their ``repr``). A username next to
a password also yields the Basic header value both make.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from responder.config.channels import Secret
from responder.redact import Redactor, basic_credentials


def _walk(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 8 or value is None:
        return
    if isinstance(value, Secret):
        yield value.reveal()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = {f.name: f for f in dataclasses.fields(value)}
        password = user = None
        for name, spec in names.items():
            item = getattr(value, name)
            if isinstance(item, str) and not spec.repr:
                yield item
            elif not isinstance(item, (str, int, float, bool)):
                yield from _walk(item, depth + 1)
            if "password" in name:
                password = item.reveal() if isinstance(item, Secret) else item
            if "username" in name or name == "user":
                user = item
        if isinstance(user, str) and isinstance(password, str) and password:
            yield basic_credentials(user, password)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, (list, tuple, frozenset, set)):
        for item in value:
            yield from _walk(item, depth + 1)


def redactor_for(config: Any) -> Redactor:
    """A scrubber of every secret in ``config`` (a ``Config``, or any spec)."""
    return Redactor(_walk(config))
