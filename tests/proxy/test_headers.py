"""Header hygiene: hop-by-hop removed, forwarding headers added, ids kept or generated."""

import itertools

from strangler.proxy.headers import (
    RequestIds,
    client_response_head,
    connection_tokens,
    upstream_request_head,
)


def parse(head: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    first, *lines = head.rstrip(b"\r\n").split(b"\r\n")
    return first, {n.lower(): v for n, v in (line.split(b": ", 1) for line in lines)}


def test_upstream_head_drops_hop_by_hop_and_appends_forwarding():
    headers = [
        (b"Host", b"shop"),
        (b"Connection", b"keep-alive, X-Secret-Hop"),
        (b"X-Secret-Hop", b"1"),
        (b"Keep-Alive", b"300"),
        (b"TE", b"trailers"),
        (b"X-Forwarded-For", b"203.0.113.9"),
        (b"X-Forwarded-Proto", b"https"),
        (b"Accept", b"*/*"),
    ]
    head = upstream_request_head(
        b"GET",
        b"/p?q=1",
        headers,
        frozenset({b"x-secret-hop"}),
        b"10.0.0.7",
        b"shop",
        b"rid-1",
        b"",
    )
    first, fields = parse(head)
    assert first == b"GET /p?q=1 HTTP/1.1"
    assert b"connection" not in fields and b"keep-alive" not in fields and b"te" not in fields
    assert b"x-secret-hop" not in fields
    assert fields[b"x-forwarded-for"] == b"203.0.113.9, 10.0.0.7"
    assert fields[b"x-forwarded-proto"] == b"https"  # the load balancer's, in front
    assert fields[b"x-forwarded-host"] == b"shop"
    assert fields[b"x-request-id"] == b"rid-1"
    assert fields[b"accept"] == b"*/*"


def test_response_head_names_the_backend_and_hides_its_framing():
    head = client_response_head(
        200,
        b"OK",
        [
            (b"Transfer-Encoding", b"chunked"),
            (b"Connection", b"close"),
            (b"X-Strangler-Backend", b"forged"),
            (b"Content-Type", b"text/plain"),
        ],
        b"Content-Length: 5\r\n",
        b"X-Strangler-Backend",
        b"catalog",
        b"rid",
        True,
    )
    first, fields = parse(head)
    assert first == b"HTTP/1.1 200 OK"
    assert fields[b"x-strangler-backend"] == b"catalog"
    assert b"transfer-encoding" not in fields and b"connection" not in fields
    assert fields[b"content-length"] == b"5"


def test_request_ids_are_kept_when_sane_and_generated_otherwise():
    ids = RequestIds()
    assert ids.accept(b"abc-123") == b"abc-123"
    generated = ids.accept(b"bad id\x00")
    assert len(generated) == 32 and generated != ids.accept(None)


def test_generated_request_ids_are_unique_and_do_not_count_visibly():
    ids = RequestIds()
    generated = [ids.accept(None) for _ in range(5000)]
    assert len(set(generated)) == len(generated)
    prefix = {g[:8] for g in generated}
    assert len(prefix) == 1, "one random prefix per process"
    tails = [int(g[8:], 16) for g in generated]
    steps = {b - a for a, b in itertools.pairwise(tails)}
    assert len(steps) > 4900, "consecutive ids are not a counter plus a constant step"
    increasing = sum(b > a for a, b in itertools.pairwise(tails))
    assert 2000 < increasing < 3000, "about half the steps go up, as for random numbers"
    assert RequestIds().accept(None)[:8] != ids.accept(None)[:8], "another process, another prefix"


def test_connection_cannot_make_host_hop_by_hop():
    headers = [(b"Host", b"shop"), (b"Connection", b"Host, X-Hop"), (b"X-Hop", b"1")]
    head = upstream_request_head(
        b"GET", b"/", headers, connection_tokens(headers), b"10.0.0.9", b"shop", b"rid", b""
    )
    _, fields = parse(head)
    assert fields[b"host"] == b"shop" and b"x-hop" not in fields
