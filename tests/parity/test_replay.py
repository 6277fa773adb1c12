"""`strangler parity replay` and `report` against two real HTTP servers, as a user runs them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from strangler.cli import main
from tests.parity.shop_servers import Behaviour, har, serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def traffic(pages=40, details=20, writes=0):
    base = "https://shop.example.com"
    requests = [("GET", f"{base}/api/v1/products?page={n}") for n in range(pages)]
    requests += [("GET", f"{base}/api/v1/products/{pk}") for pk in range(details)]
    requests += [("POST", f"{base}/api/v1/orders") for _ in range(writes)]
    return requests


@pytest.fixture
def shop(tmp_path):
    """Monolith and a candidate pricing ~30% of items differently, both real servers."""
    monolith, candidate = Behaviour(), Behaviour(price_bug=0.3)
    with serve(monolith) as primary_url, serve(candidate) as candidate_url:
        yield {
            "monolith": monolith,
            "candidate": candidate,
            "primary": primary_url,
            "candidate_url": candidate_url,
            "store": str(tmp_path / "parity.sqlite3"),
        }


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def replay(shop, capsys, tmp_path, requests, *extra):
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har(requests)))
    return run(capsys, "parity", "replay", str(path), "--primary", shop["primary"],
               "--candidate", shop["candidate_url"], "--route", "products",
               "--store", shop["store"], "--concurrency", "4", *extra)  # fmt: skip


def test_replay_reports_the_injected_difference_and_learns_the_noise(shop, capsys, tmp_path):
    code, out, err = replay(shop, capsys, tmp_path, traffic(writes=3))
    assert code == 0, err
    assert "60 of 63 requests compared under route products; skipped: 3 write" in out
    assert "63/63" in err  # the progress bar's last state
    assert not [s for s in shop["monolith"].seen if s[0] == "POST"]
    assert not [s for s in shop["candidate"].seen if s[0] == "POST"]
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--json")  # fmt: skip
    assert code == 0
    (route,) = json.loads(out)["routes"]
    endpoints = {e["endpoint"]: e for e in route["endpoints"]}
    assert set(endpoints) == {"GET /api/v1/products", "GET /api/v1/products/{id}"}
    listing = endpoints["GET /api/v1/products"]
    fields = {f["path"]: f for f in listing["fields"]}
    assert fields["results[*].price"]["regression"]
    for noise in ("request_id", "generated_at"):
        assert not fields[noise]["regression"] and fields[noise]["noise"] > 0
    # `next` holds each backend's own absolute URL: equal after the base-URL normalizer.
    assert "next" not in fields
    assert listing["statuses"] == [[200, 200, 40]]
    assert listing["raw_parity"] == 0.0 and listing["parity"] < 50


def test_shadow_calls_are_marked_and_the_primary_call_is_not(shop, capsys, tmp_path):
    replay(shop, capsys, tmp_path, traffic(pages=3, details=0))
    # Without --secondary the monolith is called twice: once as primary, once for noise.
    marks = sorted(h.get("X-Strangler-Shadow", "") for _, _, h in shop["monolith"].seen)
    assert marks == ["", "", "", "replay", "replay", "replay"]
    assert all(h.get("X-Strangler-Shadow") == "replay" for _, _, h in shop["candidate"].seen)


def test_the_gate_fails_on_a_real_difference_and_is_inconclusive_on_few_samples(
    shop, capsys, tmp_path
):
    replay(shop, capsys, tmp_path, traffic(pages=20, details=0))
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--gate", "99.5", "--min-samples", "500")  # fmt: skip
    assert code == 1
    assert out.strip().splitlines()[-1] == (
        "inconclusive: 20 samples on route products, 500 needed"
    )
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--gate", "99.5", "--min-samples", "20")  # fmt: skip
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("fail: parity ")
    assert "results[*].price" in out.strip().splitlines()[-1]


def test_the_gate_passes_when_only_noise_differs(capsys, tmp_path):
    with serve(Behaviour()) as primary, serve(Behaviour()) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        replay(shop, capsys, tmp_path, traffic(pages=20, details=10))
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--gate", "99.5", "--min-samples", "30")  # fmt: skip
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "pass: parity 100.00% >= 99.50% on route products (30 samples)"
    )


def test_a_candidate_answering_500_is_a_recorded_difference(capsys, tmp_path):
    with serve(Behaviour()) as primary, serve(Behaviour(status=500)) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        code, _, err = replay(shop, capsys, tmp_path, traffic(pages=5, details=0))
    assert code == 0, err
    _, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                    shop["store"], "--json")  # fmt: skip
    (endpoint,) = json.loads(out)["routes"][0]["endpoints"]
    assert endpoint["statuses"] == [[200, 500, 5]]
    assert endpoint["fields"][0]["path"] == "status" and endpoint["fields"][0]["regression"]


def test_writes_go_only_to_the_named_sandbox(shop, capsys, tmp_path):
    code, out, err = replay(shop, capsys, tmp_path, traffic(pages=1, details=0, writes=2),
                            "--allow-writes", shop["candidate_url"])  # fmt: skip
    assert code == 0, err
    assert "3 of 3 requests compared" in out
    assert [s[0] for s in shop["candidate"].seen].count("POST") == 2
    assert not [s for s in shop["monolith"].seen if s[0] == "POST"]


def test_writes_to_anything_but_the_candidate_are_refused(shop, capsys, tmp_path):
    code, _, err = replay(shop, capsys, tmp_path, traffic(pages=1, writes=1),
                          "--allow-writes", shop["primary"])  # fmt: skip
    assert code == 2
    assert "writes go only to a sandbox" in err and len(err.strip().splitlines()) == 1
    assert not shop["monolith"].seen


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "traffic.har: not JSON"),
        ('{"entries": []}', "traffic.har: not a HAR file"),
        ('{"log": {"entries": [{"request": {"method": "GET"}}]}}',
         "traffic.har: log.entries[0].request.url: None is not a URL"),
        ('{"log": {"entries": [{"request": {"method": "G T", "url": "/"}}]}}',
         "log.entries[0].request.method"),
        ('{"log": {"entries": [{"request": {"method": "GET", "url": "http://[::1/x"}}]}}',
         "traffic.har: log.entries[0].request.url: 'http://[::1/x' is not a URL"),
        ("[" * 100_000 + "]" * 100_000, "traffic.har: not JSON: nested too deeply"),
    ],
)  # fmt: skip
def test_a_broken_har_is_one_line_exit_2_and_nothing_recorded(
    shop, capsys, tmp_path, content, message
):
    path = tmp_path / "traffic.har"
    path.write_text(content)
    code, _, err = run(capsys, "parity", "replay", str(path), "--primary", shop["primary"],
                       "--candidate", shop["candidate_url"], "--store", shop["store"])  # fmt: skip
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not shop["monolith"].seen


def test_bad_normalizer_file_and_unknown_route_exit_2(shop, capsys, tmp_path):
    compare = tmp_path / "compare.toml"
    compare.write_text('ignore = ["results..price"]\n')
    path = tmp_path / "t.har"
    path.write_text(json.dumps(har(traffic(pages=1, details=0))))
    code, _, err = run(capsys, "parity", "replay", str(path), "--primary", shop["primary"],
                       "--candidate", shop["candidate_url"], "--store", shop["store"],
                       "--compare", str(compare))  # fmt: skip
    assert code == 2 and "route.E045" in err and "names no field" in err
    replay(shop, capsys, tmp_path, traffic(pages=1, details=0))
    code, _, err = run(capsys, "parity", "report", "--route", "orders", "--store", shop["store"])
    assert code == 2
    assert "no comparisons recorded for route 'orders'" in err and "products" in err


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian chromium)")
def test_the_html_report_shows_an_example_pair_side_by_side_offline(shop, capsys, tmp_path):
    replay(shop, capsys, tmp_path, traffic(pages=10, details=0))
    page = tmp_path / "parity.html"
    code, _, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                     shop["store"], "-f", "html", "-o", str(page))  # fmt: skip
    assert code == 0
    script = (
        "const e=document.querySelector('details.example');e.open=true;"
        "document.title=[...document.querySelectorAll('tr.regression')].map("
        "r=>r.dataset.field).join(',')+'|'+e.dataset.field+'|'+"
        "[...e.querySelectorAll('pre')].map(p=>p.dataset.side+':'+(p.offsetWidth>0)).join(',')"
    )
    page.write_text(page.read_text().replace("</body>", f"<script>{script}</script></body>"))
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"file://{page}"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    title = result.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title == "results[*].price|results[*].price|primary:true,candidate:true"
    assert "http://" not in page.read_text().split("<body>", 1)[0]  # nothing fetched


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gate", "101"], "--gate 101.0: a parity percentage from 0 to 100"),
        (["--gate", "99", "--min-samples", "0"], "--min-samples must be at least 1"),
        (["-o", "/nonexistent/dir/report.html"], "cannot write -o /nonexistent/dir/report.html"),
        (["--since", "yesterday"], "--since 'yesterday': not a time span"),
        (["--since", "nan"], "--since 'nan': not a time from 1970 to 9999"),
        (["--since", "inf"], "--since 'inf': not a time from 1970 to 9999"),
        (["--since", "1e300"], "--since '1e300': not a time from 1970 to 9999"),
        (
            ["--since", "9999-12-31T23:59:59-01:00"],
            "--since '9999-12-31T23:59:59-01:00': not a time from 1970 to 9999",
        ),
    ],
)
def test_bad_report_options_are_one_line_exit_2(shop, capsys, tmp_path, argv, message):
    replay(shop, capsys, tmp_path, traffic(pages=1, details=0))
    code, _, err = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], *argv)  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_since_takes_spans_iso_times_in_utc_and_epoch_seconds():
    from strangler.cli.parity import parse_since

    now = 1_800_000_000.0
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2026-01-01T00:00:00", now) == parse_since("2026-01-01T00:00:00+00:00", now)
    assert parse_since("1700000000", now) == 1_700_000_000.0


def test_the_proxy_refuses_a_parity_store_it_could_not_write(capsys, tmp_path):
    code = main(["proxy", "--config", str(tmp_path / "routes.toml"),
                 "--parity-store", "/nonexistent/dir/parity.sqlite3"])  # fmt: skip
    assert code == 2
    assert "--parity-store /nonexistent/dir/parity.sqlite3: folder" in capsys.readouterr().err


def dead_url() -> str:
    """An address nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("candidate_status", [None, 500])
def test_a_dead_secondary_never_makes_a_broken_candidate_look_like_noise(
    capsys, tmp_path, candidate_status
):
    """Candidate down (or answering 500) and secondary down: never a pass."""
    with serve(Behaviour()) as primary, serve(Behaviour(status=candidate_status or 200)) as live:
        candidate = live if candidate_status else dead_url()
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        replay(shop, capsys, tmp_path, traffic(pages=21, details=10), "--secondary", dead_url())
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--gate", "99.5", "--min-samples", "30")  # fmt: skip
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("fail: parity 0.00% < 99.50%")


def test_nothing_compared_exits_1_and_a_dead_candidate_is_shown_with_its_error(capsys, tmp_path):
    with serve(Behaviour()) as primary:
        shop = {"primary": dead_url(), "candidate_url": primary,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        code, out, _ = replay(shop, capsys, tmp_path, traffic(pages=3, details=0))
        assert code == 1
        assert "nothing compared: none of the 3 requests gave a pair" in out
        assert "3 x primary: ConnectError" in out
        shop["primary"], shop["candidate_url"] = primary, dead_url()
        code, out, _ = replay(shop, capsys, tmp_path, traffic(pages=3, details=0))
    assert code == 0 and "3 x candidate: ConnectError" in out
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store", shop["store"])
    assert "200->0: 3" in out
    (line,) = [x for x in out.splitlines() if x.strip().startswith("error ")]
    assert "REGRESSION (candidate: ConnectError" in line


def test_a_deeply_nested_answer_is_not_compared_and_no_traceback(capsys, tmp_path):
    with serve(Behaviour()) as primary, serve(Behaviour()) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        code, out, err = replay(
            shop, capsys, tmp_path, [("GET", "http://shop.example.com/api/v1/products?deep=1")]
        )
    assert code == 1 and "Traceback" not in err  # fmt: skip
    assert "skipped: 1 not compared (too_deep)" in out


def test_the_recorded_host_is_sent_and_redacted_headers_are_not(capsys, tmp_path):
    monolith, service = Behaviour(), Behaviour()
    requests = har(traffic(pages=2, details=0))
    for entry in requests["log"]["entries"]:
        entry["request"]["headers"].append({"name": "Authorization", "value": "[redacted]"})
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(requests))
    with serve(monolith) as primary, serve(service) as candidate:
        argv = ["parity", "replay", str(path), "--primary", primary, "--candidate", candidate,
                "--store", str(tmp_path / "p.sqlite3")]  # fmt: skip
        code, out, _ = run(capsys, *argv)
        assert code == 0 and "recorded as [redacted], not sent: Authorization" in out
        seen = monolith.seen + service.seen
        assert len(seen) == 6 and {h.get("Host") for _, _, h in seen} == {"shop.example.com"}
        monolith.seen.clear()
        service.seen.clear()
        run(capsys, *argv, "--host", "shop.internal:8443")
        code, _, err = run(capsys, *argv, "--host", "bad host/")
        assert code == 2 and "--host 'bad host/': a host name" in err
    again = monolith.seen + service.seen
    assert len(again) == 6 and {h.get("Host") for _, _, h in again} == {"shop.internal:8443"}
    assert not [h for _, _, h in seen + again if "Authorization" in h]


def test_the_same_4xx_on_both_sides_warns_and_the_gate_is_inconclusive(capsys, tmp_path):
    with serve(Behaviour(status=403)) as primary, serve(Behaviour(status=403)) as candidate:
        shop = {"primary": primary, "candidate_url": candidate,
                "store": str(tmp_path / "p.sqlite3")}  # fmt: skip
        code, out, _ = replay(shop, capsys, tmp_path, traffic(pages=30, details=0))
    assert code == 0 and "warning: the primary answered no request below 400 (30 x 403)" in out
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"], "--gate", "99.5", "--min-samples", "30")  # fmt: skip
    assert code == 1 and out.strip().splitlines()[-1].startswith("inconclusive: the primary")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"tables": [{"table": "t", "source_rows": 100}], "drifted": "lots"}',
         "drifted: 'lots' is not a count"),
        ('{"tables": [{"table": "t", "source_rows": 100}]}', "drifted: None is not a count"),
        ('{"tables": [{"table": "t", "source_rows": -1, "drifted": true}], "drifted": 0}',
         "tables[0].source_rows: -1 is not a count; tables[0].drifted: True is not a count"),
        ('{"tables": [1, 2]}', "tables[0]: expected an object"),
    ],
)  # fmt: skip
def test_a_reconcile_result_is_validated_whole_and_nothing_recorded(
    shop, capsys, tmp_path, document, message
):
    replay(shop, capsys, tmp_path, traffic(pages=1, details=0))
    bad = tmp_path / "reconcile.json"
    bad.write_text(document)
    code, _, err = run(capsys, "parity", "record-data", "--route", "products", str(bad),
                       "--store", shop["store"])  # fmt: skip
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert str(bad) in err
    code, out, _ = run(capsys, "parity", "report", "--route", "products", "--store",
                       shop["store"])  # fmt: skip
    assert code == 0 and "data parity: no reconcile result recorded" in out


def test_a_bad_option_is_named_before_a_missing_store(capsys, tmp_path):
    code, _, err = run(capsys, "parity", "report", "--since", "yesterday",
                       "--store", str(tmp_path / "none.sqlite3"))  # fmt: skip
    assert code == 2 and "--since 'yesterday'" in err and "no parity store" not in err
