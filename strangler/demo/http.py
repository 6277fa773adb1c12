"""A small JSON-over-HTTP client for demo steps: every unexpected status is a DemoError."""

from __future__ import annotations

from typing import Any

import httpx

from strangler.demo.context import DemoError


class Api:
    """Calls one base URL, optionally with a DRF token; returns decoded JSON bodies."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 10):
        headers = {"Authorization": f"Token {token}"} if token else {}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def get(self, path: str, expect: int = 200, **params: Any) -> dict:
        return self._call("GET", path, expect, params=params)

    def post(self, path: str, body: dict, expect: int = 200) -> dict:
        return self._call("POST", path, expect, json=body)

    def _call(self, method: str, path: str, expect: int, **kwargs: Any) -> dict:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise DemoError(f"{method} {self.client.base_url}{path}: {error!r}") from error
        return self._check(response, expect)

    @staticmethod
    def _check(response: httpx.Response, expect: int) -> dict:
        if response.status_code != expect:
            raise DemoError(
                f"{response.request.method} {response.request.url} answered "
                f"{response.status_code} (expected {expect}): {response.text[:300]}"
            )
        return response.json()
