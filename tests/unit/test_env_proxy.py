"""The Kubernetes client honours HTTPS_PROXY and NO_PROXY as aiohttp's trust_env does."""

from __future__ import annotations

import pytest

from responder.act.argo import env_proxy

PROXY = "http://proxy.corp:3128"


@pytest.mark.parametrize(("url", "environ", "expected"), [
    ("https://10.96.0.1:443", {"HTTPS_PROXY": PROXY}, PROXY),
    ("https://10.96.0.1:443", {"https_proxy": PROXY}, PROXY),
    ("https://10.96.0.1:443", {"HTTP_PROXY": PROXY}, None),
    ("http://127.0.0.1:8001", {"HTTP_PROXY": PROXY}, PROXY),
    ("https://kubernetes.default.svc", {"HTTPS_PROXY": PROXY, "NO_PROXY": ".svc"}, None),
    ("https://10.96.0.1:443", {"HTTPS_PROXY": PROXY, "NO_PROXY": "10.96.0.1,.svc"}, None),
    ("https://api.example.com", {"HTTPS_PROXY": PROXY, "NO_PROXY": ".svc"}, PROXY),
    ("https://api.example.com", {"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, None),
    ("https://api.example.com", {}, None),
])
def test_the_proxy_for_the_api_server(url: str, environ: dict[str, str],
                                      expected: str | None) -> None:
    assert env_proxy(url, environ) == expected
