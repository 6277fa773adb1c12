"""The proxy's rules without sockets: retry, fallback, failure answers, framing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from strangler.control.model import Backend, Route
from strangler.control.routing import Decision
from strangler.proxy.policy import (
    failure_body,
    failure_status,
    may_fall_back,
    may_retry,
    rejection_body,
    request_framing,
    response_fault,
    response_framing,
)

CATALOG = Backend("catalog", "http://127.0.0.1:8100", "127.0.0.1", 8100, timeout=2.0)
BACKENDS = {"monolith": Backend("monolith", "http://m:1", "m", 1), "catalog": CATALOG}


def decision(role: str = "service", state: str = "canary", monolith: str = "monolith") -> Decision:
    route = Route("products", monolith, "catalog", Decimal(50), state)  # type: ignore[arg-type]
    return Decision(route, "catalog" if role == "service" else monolith, role)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reason", "method", "has_body", "expected"),
    [
        ("connect_failed", "GET", False, True),
        ("connection_lost", "PUT", False, True),
        ("connection_lost", "POST", False, False),
        ("connect_failed", "GET", True, False),
        ("timeout", "GET", False, False),
        ("bad_response", "GET", False, False),
        (None, "GET", False, False),
    ],
)
def test_only_connection_failures_of_repeatable_requests_are_retried(
    reason: str | None, method: str, has_body: bool, expected: bool
) -> None:
    assert may_retry(reason, method, has_body) is expected


def test_a_safe_service_request_falls_back_to_the_monolith() -> None:
    assert may_fall_back(decision(), "GET", False, BACKENDS)
    assert may_fall_back(decision(), "HEAD", False, BACKENDS)


@pytest.mark.parametrize(
    ("why", "args"),
    [
        ("the monolith itself failed", (decision(role="monolith"), "GET", False, BACKENDS)),
        ("unknown path", (Decision(None, "monolith", "default"), "GET", False, BACKENDS)),
        ("retired route", (decision(state="retired"), "GET", False, BACKENDS)),
        ("unsafe method", (decision(), "POST", False, BACKENDS)),
        ("body", (decision(), "GET", True, BACKENDS)),
        ("monolith removed by a flip", (decision(monolith="gone"), "GET", False, BACKENDS)),
        ("no decision yet", (None, "GET", False, BACKENDS)),
    ],
)
def test_no_fallback_when_repeating_on_the_monolith_is_not_safe(why: str, args: tuple) -> None:
    assert not may_fall_back(*args), why


def test_failures_map_to_gateway_statuses_with_a_body_naming_the_backend() -> None:
    assert [failure_status(r) for r in ("timeout", "breaker_open", "connect_failed")] == [
        504,
        503,
        502,
    ]
    assert failure_status("bad_response") == failure_status("connection_lost") == 502
    body = json.loads(failure_body("timeout", CATALOG, b"rid-1"))
    assert body == {
        "error": "backend catalog did not answer within 2.0 s",
        "backend": "catalog",
        "reason": "timeout",
        "request_id": "rid-1",
    }
    assert (
        "http://127.0.0.1:8100"
        in json.loads(failure_body("connect_failed", CATALOG, b"r"))["error"]
    )


def test_a_refusal_names_its_status_and_request_id() -> None:
    assert json.loads(rejection_body(408, "client too slow", b"r9")) == {
        "error": "client too slow",
        "status": 408,
        "request_id": "r9",
    }


def test_response_framing_keeps_a_length_chunks_the_unknown_and_closes_for_http10() -> None:
    length = [(b"Content-Length", b"5")]
    chunked = [(b"Transfer-Encoding", b"chunked")]
    assert response_framing(b"GET", 200, length, False, True) == (
        b"Content-Length: 5\r\n",
        False,
        True,
    )
    assert response_framing(b"GET", 200, chunked, False, True) == (
        b"Transfer-Encoding: chunked\r\n",
        True,
        True,
    )
    assert response_framing(b"GET", 200, [], True, True) == (b"", False, False), "HTTP/1.0: close"
    both = length + chunked  # chunked wins over a length (RFC 9112 6.3)
    assert response_framing(b"GET", 200, both, False, True)[1], "re-chunked"


def test_bodiless_answers_keep_their_announced_length_but_send_no_body() -> None:
    length = [(b"content-length", b"42")]
    assert response_framing(b"HEAD", 200, length, False, True) == (
        b"Content-Length: 42\r\n",
        False,
        True,
    )
    assert response_framing(b"GET", 304, [], False, True) == (b"", False, True)
    assert response_framing(b"GET", 204, [], False, False) == (b"", False, False)
    assert response_framing(b"GET", 204, length, False, True) == (b"", False, True)  # RFC 9110 8.6


def test_request_framing_rechunks_chunks_and_keeps_a_length() -> None:
    assert request_framing(True, None) == b"Transfer-Encoding: chunked\r\n"
    assert request_framing(False, "12") == b"Content-Length: 12\r\n"
    assert request_framing(False, "0") == request_framing(False, "00") == b"Content-Length: 0\r\n"
    assert request_framing(False, "007") == b"Content-Length: 7\r\n"
    assert request_framing(False, None) == b""


def test_a_response_head_passes_with_chunked_alone_and_a_status_from_100() -> None:
    assert response_fault(200, []) == response_fault(101, [b"Chunked"]) == ""
    assert response_fault(200, [b"chunked", b"chunked"])  # chunked twice (RFC 9112 7)
    assert "'gzip, chunked'" in response_fault(200, [b"gzip, chunked"])
    assert "'chunked, identity'" in response_fault(200, [b"chunked", b"identity"])
    assert response_fault(99, []) == "status code 99"
