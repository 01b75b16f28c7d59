"""The one Jinja environment factory: sandboxed, strict undefined, compiled at load time.

Runbook parameters and notification templates both come from operators' files; a typo must
fail loudly at ``responder check`` rather than render an empty string at 3 a.m.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def new_environment(*, autoescape: bool = False) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["tojson"] = _tojson
    return env
