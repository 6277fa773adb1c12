"""What the gate must never call parity: exchanges not compared, a candidate that did not
answer, the same error on both sides, comparisons from before the window (SQLite and PG)."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from strangler.parity import Exchange, Reply
from strangler.parity.gate import evaluate_gate
from strangler.parity.summary import summary
from tests.parity.test_store import AT, record


def _exchanges(count, at=AT, **sides):
    """`count` identical-answer exchanges, sides replaced by `sides` (Reply per side)."""
    ok = Reply(200, (("content-type", "application/json"),), b'{"id": 1}')
    replies = {"primary": ok, "candidate": ok, "secondary": ok, **sides}
    return [Exchange("products", "GET", f"/p/{n}", at=at + n * 0.001, **replies)
            for n in range(count)]  # fmt: skip


def test_the_window_starts_at_since_never_before_it(parity_store):
    # Comparisons from 20 s before the window asked for (an earlier attempt, a previous
    # candidate) are in the same minute as the window's start: they must not be counted.
    record(parity_store, _exchanges(10, at=AT + 10))
    record(parity_store, _exchanges(20, at=AT + 30))
    assert summary(parity_store, "products", since=AT + 30).samples == 20
    assert summary(parity_store, "products", since=AT + 30).since == AT + 30
    # Within a second: the partial second is left out, never counted.
    assert summary(parity_store, "products", since=AT + 10.005).samples == 20
    assert summary(parity_store, "products", since=AT).samples == 30
    assert parity_store.routes(AT + 31) == []


def test_exchanges_not_compared_are_counted_and_never_pass_the_gate(parity_store):
    cut = Reply(200, (("content-type", "application/json"),), b'{"id', truncated=True)
    record(parity_store, _exchanges(100) + _exchanges(10, candidate=cut))
    result = summary(parity_store, "products", since=0)
    assert (result.samples, result.skipped, result.parity) == (100, 10, 100.0)
    assert result.endpoints[0].skipped == (("body_too_large", 10),)
    gate = evaluate_gate(result, 99.5, min_samples=50)
    assert gate.outcome == "inconclusive"
    assert "10 exchanges were not compared (10 body_too_large)" in gate.line
    # Only cut answers: nothing compared at all.
    record(parity_store, _exchanges(5, at=AT + 3600, primary=cut))
    assert evaluate_gate(summary(parity_store, "products", since=AT + 3600), 99.5, 1).outcome == (
        "inconclusive"
    )
    # A few among many: the gate holds even if they all differed, and says so.
    record(parity_store, _exchanges(5000, at=AT + 7200))
    record(parity_store, _exchanges(1, at=AT + 7200, candidate=cut))
    gate = evaluate_gate(summary(parity_store, "products", since=AT + 7200), 99.5, 500)
    assert gate.passed and gate.line.endswith("(5000 samples; 1 not compared (1 body_too_large))")


def test_a_candidate_that_did_not_answer_is_a_regression_however_rare(parity_store):
    down = Reply(0, error="ConnectError: [Errno 111] Connection refused")
    record(parity_store, _exchanges(5000) + _exchanges(1, at=AT + 10, candidate=down))
    result = summary(parity_store, "products", since=0)
    (error,) = [f for f in result.endpoints[0].fields if f.path == "error"]
    assert error.regression and error.raw == 1 and result.parity < 100
    assert error.detail == "candidate: ConnectError: [Errno 111] Connection refused"


def test_the_same_error_on_both_sides_is_not_parity(parity_store):
    denied = Reply(403, (("content-type", "application/json"),), b'{"detail": "no"}')
    record(parity_store, _exchanges(100, primary=denied, candidate=denied, secondary=denied))
    gate = evaluate_gate(summary(parity_store, "products", since=0), 99.5, 50)
    assert gate.outcome == "inconclusive" and "answered none of the 100 samples" in gate.line


def test_second_windows_are_folded_into_minutes_after_an_hour(parity_store):
    record(parity_store, _exchanges(50, at=AT + 5) + _exchanges(30, at=AT + 65))
    record(parity_store, _exchanges(7, at=AT + 30, candidate=Reply(0, error="refused")))

    def rows():
        with parity_store._transaction() as tx:
            return tx.execute("SELECT COUNT(*) FROM parity_windows").fetchone()[0]

    before = summary(parity_store, "products", since=AT)
    assert rows() > 2  # one per second written
    parity_store.prune(now=AT + 2 * 3600)
    assert rows() == 2  # one per minute
    after = summary(parity_store, "products", since=AT)
    assert (after.samples, after.parity, after.endpoints[0].fields) == (
        before.samples,
        before.parity,
        before.endpoints[0].fields,
    )
    assert after.samples == 87 and summary(parity_store, "products", since=AT + 1).samples == 30


def test_one_endpoint_over_many_seconds_stays_one_endpoint(parity_store):
    """A replay's one tally spans minutes: its seconds are not 'other endpoints'."""
    exchanges = [e for n in range(300) for e in _exchanges(1, at=AT + n)]
    record(parity_store, exchanges, batch=300)
    (endpoint,) = summary(parity_store, "products", since=AT).endpoints
    assert endpoint.endpoint == "GET /p/{id}" and endpoint.samples == 300


def test_rare_differences_in_many_fields_are_not_each_quiet(parity_store):
    """The absolute threshold (0.03% of samples) kept quiet each field differing in 3 of
    10,000 comparisons with no noise at all; in 60 fields that is 180 comparisons, 1.8%, and
    parity was 100%: the gate passed a candidate 98.2% equal. Such fields are quiet only while
    all of them together stay under the threshold."""
    fields = [f"f{k}" for k in range(60)]
    ok = Reply(200, (("content-type", "application/json"),), orjson.dumps(dict.fromkeys(fields, 0)))

    def candidate(n: int) -> Reply:
        if n >= 180:
            return ok
        return replace(ok, body=orjson.dumps({**dict.fromkeys(fields, 0), fields[n % 60]: 1}))

    record(parity_store, [Exchange("products", "GET", f"/p/{n}", ok, candidate(n), ok,
                                   at=AT + n * 0.001) for n in range(10_000)])  # fmt: skip
    result = summary(parity_store, "products", since=0)
    assert (result.samples, result.raw_parity, result.parity) == (10_000, 98.2, 98.2)
    assert evaluate_gate(result, 99.5, 500).outcome == "fail"
    # One odd pair in a large sample stays quiet, as in Diffy.
    record(parity_store, [Exchange("products", "GET", f"/p/{n}", ok,
                                   candidate(0) if n == 0 else ok, ok,
                                   at=AT + 3600 + n * 0.001) for n in range(10_000)])  # fmt: skip
    assert summary(parity_store, "products", since=AT + 3600).parity == 100.0


def test_noise_of_fields_past_the_cap_never_cancels_other_fields_past_it(parity_store):
    """Past 200 distinct fields in a batch the rest count as one, `(other fields)`: noise of
    fields the secondary differed in there cancelled a field only the candidate differed in
    (a map of 300 stock levels keyed by SKU, 250 of them moving between two monolith calls,
    and a candidate getting the last one wrong from the 11th request on passed at 100%)."""
    skus = [f"SKU-{n:03d}" for n in range(300)]
    primary = dict.fromkeys(skus, 1)
    moving = {**primary, **dict.fromkeys(skus[:250], 2)}
    wrong = {**primary, skus[-1]: 0}

    def reply(body: dict) -> Reply:
        return Reply(200, (("content-type", "application/json"),), orjson.dumps({"stock": body}))

    record(parity_store, [Exchange("products", "GET", f"/p/{n}", reply(primary),
                                   reply(wrong if n >= 10 else primary), reply(moving),
                                   at=AT + n * 0.001) for n in range(100)])  # fmt: skip
    (endpoint,) = summary(parity_store, "products", since=0).endpoints
    other = next(f for f in endpoint.fields if f.path == "(other fields)")
    assert (other.raw, other.regression, endpoint.parity) == (90, True, 10.0)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 100.5, float("inf")])
def test_a_gate_that_is_not_a_percentage_is_refused_not_passed(bad, parity_store):
    """`parity < nan` is false, so evaluate_gate(s, nan, ...) passed any candidate; the CLI and
    runbooks check their own input, the public function did not."""
    down = Reply(500, (("content-type", "application/json"),), b"{}")
    record(parity_store, _exchanges(600, candidate=down))
    with pytest.raises(ValueError, match="a parity percentage from 0 to 100"):
        evaluate_gate(summary(parity_store, "products", since=0), bad, min_samples=500)


def test_a_field_whose_name_holds_a_newline_counts_against_parity(parity_store):
    """A comparison's differing fields are stored joined by newlines; a field named with one
    (a message catalogue keyed by its source text) was read back as two other names, so its
    comparisons counted as matches: parity 100% with the field listed as a regression."""

    def catalogue(text: str) -> Reply:
        body = orjson.dumps({"messages": {"Hello\nWorld": text}})
        return Reply(200, (("content-type", "application/json"),), body)

    record(parity_store, _exchanges(600, primary=catalogue("Hallo\nWelt"),
                                    candidate=catalogue("Hallo"),
                                    secondary=catalogue("Hallo\nWelt")))  # fmt: skip
    result = summary(parity_store, "products", since=0)
    (field,) = result.endpoints[0].fields
    assert field.regression and result.parity == 0.0
    assert evaluate_gate(result, 99.5, 500).outcome == "fail"


def test_parity_just_under_the_gate_never_rounds_up_onto_it(parity_store):
    """100 of 19,999 comparisons priced wrong is parity 99.49997%: rounded to the nearest
    0.001% it was 99.5, and `--gate 99.5` passed ("pass: parity 99.50% >= 99.50%"), as one
    candidate failure in 200,001 comparisons passed `--gate 100`. Parity is rounded down."""
    wrong = Reply(200, (("content-type", "application/json"),), b'{"id": 2}')
    traffic = _exchanges(19_899) + _exchanges(100, at=AT + 30, candidate=wrong)
    record(parity_store, traffic, batch=len(traffic))
    result = summary(parity_store, "products", since=0)
    assert result.samples == 19_999 and result.parity < 99.5
    gate = evaluate_gate(result, 99.5, min_samples=500)
    assert gate.outcome == "fail"
    assert gate.line.startswith("fail: parity 99.49% < 99.50% on route products (19999 samples)")
