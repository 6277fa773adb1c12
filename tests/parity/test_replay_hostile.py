"""`strangler parity replay` against hostile input: a browser's HTTP/2 export. Real servers on
real sockets."""

from __future__ import annotations

import json

from tests.parity.shop_servers import Behaviour, har, serve
from tests.parity.test_replay import run


def test_a_browsers_http2_export_is_replayed_without_its_pseudo_headers(capsys, tmp_path):
    """Chrome's HAR of an HTTP/2 site lists :authority, :method, :path and :scheme."""
    document = har([("GET", "https://shop.example.com/api/v1/products?page=1")])
    request = document["log"]["entries"][0]["request"]
    request["httpVersion"] = "h2"
    request["headers"] = [
        {"name": ":authority", "value": "shop.example.com"},
        {"name": ":method", "value": "GET"},
        {"name": ":path", "value": "/api/v1/products?page=1"},
        {"name": ":scheme", "value": "https"},
        {"name": "accept", "value": "application/json"},
    ]
    path = tmp_path / "h2.har"
    path.write_text(json.dumps(document))
    monolith = Behaviour()
    with serve(monolith) as primary, serve(Behaviour()) as candidate:
        code, out, _ = run(capsys, "parity", "replay", str(path), "--primary", primary,
                           "--candidate", candidate, "--store",
                           str(tmp_path / "p.sqlite3"))  # fmt: skip
    assert code == 0, out
    assert "1 of 1 requests compared" in out
    assert {h.get("Host") for _, _, h in monolith.seen} == {"shop.example.com"}
    assert not [k for _, _, h in monolith.seen for k in h if k.startswith(":")]
