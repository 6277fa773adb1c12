"""Comparisons persisted and summarized: noise learned from traffic, real differences reported
with an example pair, on SQLite and PostgreSQL alike; the gate's three outcomes."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from typing import Any

import psycopg
import pytest

from strangler.parity import Comparer
from strangler.parity.gate import evaluate_gate
from strangler.parity.store import ParityStore
from strangler.parity.summary import summary
from strangler.parity.tally import EXAMPLES_PER_FIELD, Tally
from tests.parity.conftest import shop_traffic

AT = 1_800_000_000.0


def record(store, exchanges, batch=100):
    comparer = Comparer()
    for start in range(0, len(exchanges), batch):
        tally = Tally()
        for exchange in exchanges[start : start + batch]:
            tally.add(comparer.compare(exchange))
        store.write(tally, now=AT)


def test_noise_is_learned_and_a_real_difference_is_reported_with_an_example(parity_store):
    record(parity_store, shop_traffic(300, price_bug=0.3))
    result = summary(parity_store, "products", since=AT - 60, examples=True)
    (endpoint,) = result.endpoints
    assert endpoint.endpoint == "GET /api/v1/products" and endpoint.samples == 300
    by_path = {f.path: f for f in endpoint.fields}
    # Timestamps and request ids differ between two monolith calls as often as against the
    # candidate: learned as noise, not reported as regressions.
    assert not by_path["results[*].updated_at"].regression
    assert not by_path["request_id"].regression
    price = by_path["results[*].price"]
    assert price.regression and price.raw > 250  # 1 - 0.7**10 of the pages
    assert endpoint.fields[0].path == "results[*].price"  # regressions listed first
    example = price.example
    assert example["primary"]["body"] != example["candidate"]["body"]
    assert ".99" in example["candidate"]["body"]
    assert endpoint.raw_parity == 0.0
    assert endpoint.parity < 10.0
    assert endpoint.statuses == ((200, 200, 300),)
    assert endpoint.primary_latency.p50_ms < endpoint.candidate_latency.p50_ms


def test_noise_only_traffic_has_full_noise_cancelled_parity(parity_store):
    record(parity_store, shop_traffic(200, price_bug=0.0))
    result = summary(parity_store, "products", since=AT - 60)
    assert result.raw_parity == 0.0
    assert result.parity == 100.0
    assert all(not f.regression for e in result.endpoints for f in e.fields)


@pytest.mark.parametrize("candidate_value", [None, 0.5])
def test_value_noise_never_hides_a_noisy_field_dropped_or_retyped(parity_store, candidate_value):
    """`generated_at` differs on every call (noise); a candidate that drops it, or answers it
    as a number, breaks every client reading it: a regression, whatever its value noise."""
    import orjson

    from strangler.parity import Exchange, Reply

    head = (("content-type", "application/json"),)

    def page(n: int, value: object = "") -> Reply:
        body = {"generated_at": value or f"{AT + n:.6f}", "results": [{"id": 1}]}
        if value is None:
            del body["generated_at"]
        return Reply(200, head, orjson.dumps(body))

    exchanges = [
        Exchange("products", "GET", "/api/v1/products", page(n), page(n + 1, candidate_value),
                 page(n + 2), at=AT)
        for n in range(100)
    ]  # fmt: skip
    record(parity_store, exchanges)
    result = summary(parity_store, "products", since=AT - 60)
    assert result.parity == 0.0
    gate = evaluate_gate(result, gate=99.5, min_samples=100)
    assert gate.outcome == "fail" and "generated_at" in gate.line


def test_example_pairs_are_stored_without_credentials(parity_store):
    """An example pair sits in the store for days and is shown by reports: the user's
    Authorization, Cookie and session Set-Cookie values never reach it (as in a HAR)."""
    from strangler.parity import Exchange, Reply

    head = (("content-type", "application/json"), ("Set-Cookie", "sessionid=S3CRET-SET; Path=/"))
    asked = (("Authorization", "Bearer S3CRET-TOKEN"), ("Cookie", "sessionid=S3CRET-COOKIE"))
    exchange = Exchange("products", "GET", "/api/v1/products/1", Reply(200, head, b'{"a": 1}'),
                        Reply(200, head, b'{"a": 2}'), request_headers=asked, at=AT)  # fmt: skip
    record(parity_store, [exchange])
    result = summary(parity_store, "products", since=AT - 60, examples=True)
    (field,) = result.endpoints[0].fields
    stored = str(field.example)
    assert field.path == "a" and "/api/v1/products/1" in stored
    assert "S3CRET" not in stored and "[redacted]" in stored


def test_counts_add_up_across_writes_and_processes(parity_store):
    traffic = shop_traffic(120, price_bug=0.0)
    record(parity_store, traffic[:60])
    other = type(parity_store)(parity_store.location)  # a second worker process's store
    try:
        record(other, traffic[60:])
    finally:
        other.close()
    assert summary(parity_store, "products", since=AT - 60).samples == 120


def test_a_write_whose_pruning_fails_afterwards_is_stored_not_lost(pg_url):
    """The prune after a committed write failed (here a trigger refuses its DELETE): the
    write raised, so the mirror counted the stored pairs as lost."""
    store = ParityStore(pg_url)
    try:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'no deleting here'; END $$"
            )
            admin.execute("CREATE TRIGGER refuse BEFORE DELETE ON parity_data "
                          "FOR EACH STATEMENT EXECUTE FUNCTION refuse()")  # fmt: skip
        record(store, shop_traffic(10, price_bug=0.0))
        assert summary(store, "products", since=AT - 60).samples == 10
    finally:
        store.close()


def test_a_report_on_a_table_locked_elsewhere_gives_up_and_says_so(pg_url, capsys, monkeypatch):
    """Another session holds parity_windows (a migration, VACUUM FULL): `parity report`
    waited for it without end (the 30 s wait is shortened to 1 s here)."""
    from strangler.parity import store as store_module

    monkeypatch.setattr(store_module, "LOCK_WAIT_S", 1.0)
    ParityStore(pg_url).close()
    locker = psycopg.connect(pg_url)
    try:
        locker.execute("LOCK TABLE parity_windows IN ACCESS EXCLUSIVE MODE")
        code, _, err = cli(capsys, "parity", "report", "--store", pg_url, "--json")
    finally:
        locker.rollback()
        locker.close()
    assert code == 2 and "lock timeout" in err and "Traceback" not in err, err


def test_example_pairs_are_bounded_per_field(parity_store):
    record(parity_store, shop_traffic(40, price_bug=0.5), batch=1)
    with parity_store._transaction() as tx:
        kept = tx.execute(
            "SELECT COUNT(*) FROM parity_examples WHERE field = ?", ("results[*].price",)
        ).fetchone()[0]
    assert kept == EXAMPLES_PER_FIELD


def test_retention_deletes_old_windows(parity_store):
    record(parity_store, shop_traffic(10, price_bug=0.0))
    assert parity_store.prune(now=AT + 8 * 86400) > 0
    assert summary(parity_store, "products", since=0).samples == 0


def test_since_leaves_out_older_windows(parity_store):
    record(parity_store, shop_traffic(10, price_bug=0.0, at=AT - 7200))
    record(parity_store, shop_traffic(20, price_bug=0.0, at=AT))
    assert summary(parity_store, "products", since=AT - 60).samples == 20
    assert summary(parity_store, "products", since=0).samples == 30


def test_the_gate_passes_fails_and_is_inconclusive(parity_store):
    record(parity_store, shop_traffic(50, price_bug=0.0))
    few = evaluate_gate(summary(parity_store, "products", since=0), 99.5, min_samples=500)
    assert few.outcome == "inconclusive" and not few.passed
    assert few.line == "inconclusive: 50 samples on route products, 500 needed"
    good = evaluate_gate(summary(parity_store, "products", since=0), 99.5, min_samples=50)
    assert good.outcome == "pass" and good.line.startswith("pass: parity 100.00% >= 99.50%")
    record(parity_store, shop_traffic(50, price_bug=0.3, seed=2, at=AT + 1))
    bad = evaluate_gate(summary(parity_store, "products", since=0), 99.5, min_samples=50)
    assert bad.outcome == "fail"
    assert "results[*].price" in bad.line and "< 99.50%" in bad.line


def test_an_unknown_route_has_no_samples_and_is_inconclusive(parity_store):
    result = summary(parity_store, "nope", since=0)
    assert result.samples == 0 and result.parity is None
    assert evaluate_gate(result, 99.5, 1).outcome == "inconclusive"


def test_data_parity_is_the_latest_reconcile_result(parity_store):
    def reconciled(rows, drifted):
        tables = [{"table": "catalog_product", "source_rows": rows, "drifted": drifted}]
        return {"tables": tables, "drifted": drifted}

    parity_store.record_data("products", reconciled(10, 2), at=AT)
    parity_store.record_data("products", reconciled(12, 0), at=AT + 5)
    record(parity_store, shop_traffic(10, price_bug=0.0))
    data = summary(parity_store, "products", since=0).data
    assert (data.tables, data.rows_compared, data.drifted) == (("catalog_product",), 12, 0)
    gate = evaluate_gate(summary(parity_store, "products", since=0), 99.5, 10, max_drift=0)
    assert gate.passed


def test_a_bad_reconcile_result_is_named_without_the_stores_password(pg_url):
    """The error names the store as every other store message does: never its password."""
    from strangler.parity import StoreError

    with_password = pg_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    assert "s3cret" in with_password  # trust auth here: the password is accepted, unused
    store = ParityStore(with_password)
    try:
        store.record_data("products", {"tables": "not a list"}, at=AT)
        with pytest.raises(StoreError) as error:
            summary(store, "products", since=0)
    finally:
        store.close()
    assert "is not one" in str(error.value) and "s3cret" not in str(error.value)


def test_a_flood_of_unfolded_paths_cannot_flood_the_store(parity_store):
    from strangler.parity import Exchange, Reply
    from strangler.parity.tally import MAX_ENDPOINTS

    comparer, tally = Comparer(), Tally()
    ok = Reply(200, (("content-type", "application/json"),), b"{}")
    for n in range(MAX_ENDPOINTS + 50):
        tally.add(comparer.compare(Exchange("products", "GET", f"/p/slug-{n}-x", ok, ok, at=AT)))
    parity_store.write(tally, now=AT)
    result = summary(parity_store, "products", since=AT - 60)
    assert len(result.endpoints) == MAX_ENDPOINTS + 1
    assert result.samples == MAX_ENDPOINTS + 50
    other = next(e for e in result.endpoints if e.endpoint == "GET (other endpoints)")
    assert other.samples == 50


def test_a_flood_of_differing_fields_is_bounded(parity_store):
    import orjson

    from strangler.parity import Exchange, Reply
    from strangler.parity.tally import MAX_FIELDS

    head = (("content-type", "application/json"),)
    primary = Reply(200, head, orjson.dumps({f"k{n}": 1 for n in range(MAX_FIELDS + 30)}))
    candidate = Reply(200, head, orjson.dumps({f"k{n}": 2 for n in range(MAX_FIELDS + 30)}))
    tally = Tally()
    tally.add(Comparer().compare(Exchange("products", "GET", "/p", primary, candidate, at=AT)))
    parity_store.write(tally, now=AT)
    with parity_store._transaction() as tx:
        (fields,) = tx.execute("SELECT COUNT(*) FROM parity_fields").fetchone()
    assert fields == MAX_FIELDS + 1  # the rest under "(other fields)"


def test_field_sets_past_the_cap_count_as_mismatches_never_as_matches(parity_store):
    import orjson

    from strangler.parity import Exchange, Reply
    from strangler.parity.tally import MAX_SIGNATURES

    head = (("content-type", "application/json"),)
    same = Reply(200, head, orjson.dumps({"a": 1}))
    comparer, tally = Comparer(), Tally()
    for n in range(MAX_SIGNATURES + 10):  # each differs in a field set of its own, as noise
        odd = Reply(200, head, orjson.dumps({"a": 1, f"extra_{n}": 1}))
        tally.add(comparer.compare(Exchange("products", "GET", "/p", same, odd, odd, at=AT)))
    for _ in range(10):
        tally.add(comparer.compare(Exchange("products", "GET", "/p", same, same, at=AT)))
    parity_store.write(tally, now=AT)
    result = summary(parity_store, "products", since=AT - 60)
    # Every field differs as often against the secondary: noise, no regression. The 10 field
    # sets past the cap are not known, so they count as mismatches; the clean ones that came
    # after the cap still count as matches.
    assert result.samples == MAX_SIGNATURES + 20
    assert result.parity == round(100 * (MAX_SIGNATURES + 10) / (MAX_SIGNATURES + 20), 3)


@pytest.mark.postgres
def test_two_workers_keeping_an_example_in_the_same_slot_both_succeed(pg_url):
    """A writes an example and has not committed; B picks the same free slot meanwhile.
    B must wait for A and then succeed, not fail its whole batch on the primary key."""
    first, second = ParityStore(pg_url), ParityStore(pg_url)
    comparer = Comparer()
    tally = Tally()
    tally.add(comparer.compare(shop_traffic(1, price_bug=1.0)[0]))
    errors: list[Exception] = []

    def write_second() -> None:
        try:
            second.write(tally, now=AT)
        except Exception as error:  # the test reports what the second writer hit
            errors.append(error)

    try:
        with first._transaction() as tx:
            key = ("products", "GET /api/v1/products", "results[*].price")
            first._keep_example(tx, *key, AT, {"n": 1})
            other = threading.Thread(target=write_second)
            other.start()
            time.sleep(0.5)  # the second writer reaches the same slot and waits on it
        other.join(timeout=30)
        assert errors == []
        with first._transaction() as tx:
            rows = tx.execute("SELECT COUNT(*) FROM parity_examples").fetchone()[0]
        assert rows >= 1
    finally:
        first.close()
        second.close()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    from strangler.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_parity_windows_table_of_another_shape_is_named_exit_2(backend, capsys, tmp_path,
                                                                 request):  # fmt: skip
    """A store whose parity_windows has other columns made `report` print a traceback
    (`no such column: window_start`): one line naming the store, the table and its columns."""
    if backend == "sqlite":
        location = str(tmp_path / "old.sqlite3")
        conn: Any = sqlite3.connect(location)
    else:
        location = request.getfixturevalue("pg_url")
        conn = psycopg.connect(location)
    with conn:
        conn.execute("CREATE TABLE parity_windows (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    code, _, err = cli(capsys, "parity", "report", "--store", location, "--route", "products")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert (
        f"{location} is not a parity store: its table parity_windows has columns (id, name), "
        "a parity store's has (route, endpoint, window_start, samples, raw_clean, noise_samples)"
    ) in err


@pytest.mark.parametrize("action", [["report"], ["report", "--route", "products"], ["prune"]])
def test_an_unrelated_sqlite_file_is_refused_and_left_as_it_was(action, capsys, tmp_path):
    """A Django db.sqlite3 passed as --store: `report` filled it with empty parity tables and
    said "no comparisons recorded"; now exit 2 naming the file, and the file is untouched."""
    location = tmp_path / "db.sqlite3"
    with sqlite3.connect(location) as conn:
        conn.execute("CREATE TABLE auth_user (id INTEGER PRIMARY KEY, username TEXT)")
        conn.execute("CREATE TABLE django_session (session_key TEXT PRIMARY KEY)")
    conn.close()
    before = location.read_bytes()
    code, out, err = cli(capsys, "parity", action[0], "--store", str(location), *action[1:])
    assert code == 2 and not out and len(err.strip().splitlines()) == 1
    assert (
        f"{location} is not a parity store: a SQLite database of other tables "
        "(auth_user, django_session), none of the parity store's"
    ) in err
    assert location.read_bytes() == before
    # An empty file is a new store, as before.
    empty = tmp_path / "new.sqlite3"
    empty.touch()
    assert cli(capsys, "parity", action[0], "--store", str(empty))[0] == 0


REDACT = ("email", "header:X-Api-Key")
OWNER = {"email": "ana@example.com", "name": "Ana"}


def owned_exchange(**extra: Any) -> Any:
    """A pair whose bodies carry a customer's e-mail and whose headers an API key, the
    candidate pricing differently (so the store keeps it as an example)."""
    from strangler.parity import Exchange, Reply

    head = (("content-type", "application/json"), ("X-Api-Key", "K3Y-S3CRET"))
    body = {"id": 1, "owners": [OWNER], "price": "1.00"}
    changed = {**body, "price": "1.99"}
    return Exchange("products", "GET", "/api/v1/products/1", Reply(200, head, json.dumps(body)
                    .encode()), Reply(200, head, json.dumps(changed).encode()),
                    request_headers=(("x-api-key", "K3Y-S3CRET"),), at=AT, **extra)  # fmt: skip


def test_the_routes_redact_entries_blank_the_stored_example_pairs(capsys, tmp_path):
    """A route's `redact` blanked those fields and headers in a HAR recording but not in the
    example pairs the store keeps for days and the HTML report shows: now both alike."""
    from strangler.parity.har import har_entry

    location = str(tmp_path / "parity.sqlite3")
    store = ParityStore(location)
    record(store, [owned_exchange(redact=REDACT)])
    result = summary(store, "products", since=AT - 60, examples=True)
    store.close()
    (field,) = result.endpoints[0].fields
    example = field.example
    assert field.path == "price" and "ana@example.com" not in json.dumps(example)
    assert "K3Y-S3CRET" not in json.dumps(example)
    for side in ("primary", "candidate"):
        body = json.loads(example[side]["body"])
        assert body["owners"] == [{"email": "[redacted]", "name": "Ana"}]
        assert ["X-Api-Key", "[redacted]"] in example[side]["headers"]
    assert example["request_headers"] == [["x-api-key", "[redacted]"]]
    recorded = har_entry(owned_exchange(), REDACT)["response"]["content"]["text"]
    assert json.loads(recorded) == json.loads(example["primary"]["body"])

    page = tmp_path / "parity.html"
    code, _, err = cli(capsys, "parity", "report", "--route", "products", "--store", location,
                       "--since", str(AT - 60), "-f", "html", "-o", str(page))  # fmt: skip
    assert code == 0, err
    html = page.read_text()
    assert "1.99" in html and "[redacted]" in html and "ana@example.com" not in html


def test_pairs_from_the_proxy_keep_examples_redacted_as_their_route_says(tmp_path):
    """The same through the parity worker, with pairs as the proxy hands them over."""
    from strangler.parity.worker import PairConsumer

    exchange = owned_exchange()

    def side(reply: Any) -> dict[str, Any]:
        return {"status": reply.status, "headers": list(reply.headers), "body": reply.body,
                "size": len(reply.body), "latency_ms": 1.0, "error": ""}  # fmt: skip

    pair = {"route": "products", "method": "GET", "path": exchange.path, "at": AT,
            "request_headers": list(exchange.request_headers), "request_body": b"",
            "primary": side(exchange.primary), "candidate": side(exchange.candidate),
            "secondary": None, "record": False, "redact": list(REDACT)}  # fmt: skip
    location = str(tmp_path / "parity.sqlite3")
    consumer = PairConsumer(location)
    consumer([pair])
    consumer.close()
    store = ParityStore(location)
    (field,) = summary(store, "products", since=AT - 60, examples=True).endpoints[0].fields
    store.close()
    assert "ana@example.com" not in json.dumps(field.example)
