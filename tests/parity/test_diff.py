"""The diff engine on its own: field paths, normalizers as data, endpoint folding, noise model."""

from __future__ import annotations

import orjson
import pytest

from strangler.control.compare import CompareConfig, parse_compare
from strangler.parity.compare import Comparer, compare_replies
from strangler.parity.diff import Uncomparable, diff_json
from strangler.parity.endpoint import endpoint_of
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.noise import is_regression
from strangler.parity.normalize import compile_config

PLAIN = compile_config(CompareConfig())


def norm(**raw):
    config, problems = parse_compare(raw, "compare")
    assert problems == []
    return compile_config(config)


def json_reply(body, status=200, base_url="", **headers):
    head = (("content-type", "application/json"), *headers.items())
    return Reply(status, head, orjson.dumps(body), base_url=base_url)


def test_differences_are_reported_as_generic_field_paths():
    primary = {"count": 2, "results": [{"id": 1, "price": "9.99"}, {"id": 2, "price": "5.00"}]}
    candidate = {"count": 2, "results": [{"id": 1, "price": "9.99"}, {"id": 2, "price": "5.01"}]}
    assert diff_json(primary, candidate, PLAIN) == [("results[*].price", "value")]


def test_missing_extra_and_type_changes_are_told_apart():
    primary = {"a": 1, "b": "x", "flag": True, "items": [1, 2]}
    candidate = {"a": "1", "c": None, "flag": 1, "items": [1]}
    found = set(diff_json(primary, candidate, PLAIN))
    assert found == {
        ("a", "type"),
        ("b", "missing"),
        ("c", "extra"),
        ("flag", "type"),
        ("items[*]", "missing"),
    }


def test_json_true_is_not_the_number_one_even_inside_a_list():
    assert diff_json([True], [1], PLAIN) == [("[*]", "type")]
    assert diff_json({"x": [{"y": False}]}, {"x": [{"y": 0}]}, PLAIN) == [("x[*].y", "type")]


def test_root_differences_are_named_dollar():
    assert diff_json({"a": 1}, [1], PLAIN) == [("$", "type")]


def test_ignore_globs_hide_a_field_and_everything_under_it():
    n = norm(ignore=["meta", "results[*].updated_*"])
    primary = {"meta": {"t": 1}, "results": [{"updated_at": "a", "updated_by": 1, "name": "x"}]}
    candidate = {"meta": {"t": 2}, "results": [{"updated_at": "b", "updated_by": 2, "name": "y"}]}
    assert diff_json(primary, candidate, n) == [("results[*].name", "value")]


def test_double_star_ignores_a_name_at_any_depth():
    n = norm(ignore=["**.request_id"])
    assert diff_json({"a": {"b": {"request_id": 1}}}, {"a": {"b": {"request_id": 2}}}, n) == []


def test_numeric_tolerance_and_decimal_strings_are_opt_in():
    assert diff_json({"p": 1.0}, {"p": 1.0004}, PLAIN) == [("p", "value")]
    assert diff_json({"p": 1.0}, {"p": 1.0004}, norm(numeric_tolerance=0.001)) == []
    assert diff_json({"p": "9.90"}, {"p": 9.9}, PLAIN) == [("p", "type")]
    assert diff_json({"p": "9.90"}, {"p": 9.9}, norm(decimal_strings=True)) == []
    assert diff_json({"p": "9.90"}, {"p": 9.8}, norm(decimal_strings=True)) == [("p", "value")]


def test_timestamps_compare_at_the_configured_precision():
    a, b = {"t": "2026-01-02T03:04:05.123456Z"}, {"t": "2026-01-02T03:04:05.987+00:00"}
    assert diff_json(a, b, PLAIN) == [("t", "value")]
    assert diff_json(a, b, norm(timestamp_precision="s")) == []
    assert diff_json(a, {"t": "2026-01-02T03:04:06Z"}, norm(timestamp_precision="s")) == [
        ("t", "value")
    ]


def test_unordered_lists_and_lists_matched_by_key():
    assert diff_json({"tags": [1, 2]}, {"tags": [2, 1]}, PLAIN) == [("tags[*]", "value")]
    assert diff_json({"tags": [1, 2]}, {"tags": [2, 1]}, norm(unordered=["tags"])) == []
    primary = {"results": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}]}
    candidate = {"results": [{"id": 2, "n": "b"}, {"id": 1, "n": "A"}, {"id": 3, "n": "c"}]}
    found = diff_json(primary, candidate, norm(list_keys={"results": "id"}))
    assert sorted(found) == [("results[*]", "extra"), ("results[*].n", "value")]


def test_absolute_urls_compare_after_each_backends_base_url():
    primary = json_reply({"next": "http://mono:8000/p?page=2"}, base_url="http://mono:8000")
    candidate = json_reply({"next": "http://svc:8100/p?page=2"}, base_url="http://svc:8100")
    assert compare_replies(primary, candidate, PLAIN) == []
    leaked = json_reply({"next": "http://mono:8000/p?page=2"}, base_url="http://svc:8100")
    assert compare_replies(primary, leaked, PLAIN) == [("next", "value")]


def test_status_headers_and_content_type_are_compared():
    primary = json_reply({"a": 1})
    assert compare_replies(primary, json_reply({"a": 1}, status=500), PLAIN) == [
        ("status", "status")
    ]
    html = Reply(200, (("content-type", "text/html"),), b"<p>1</p>")
    assert compare_replies(primary, html, PLAIN) == [
        ("header:content-type", "header"),
        ("body", "content-type"),
    ]
    cookie_a = Reply(200, (("set-cookie", "sid=1; Path=/"),), b"")
    cookie_b = Reply(200, (("set-cookie", "sid=2; Path=/"),), b"")
    assert compare_replies(cookie_a, cookie_b, PLAIN) == []  # names compared, not values
    assert compare_replies(cookie_a, Reply(200, (), b""), PLAIN) == [
        ("header:set-cookie", "header")
    ]


def test_headers_are_found_whatever_their_case_and_repeated_ones_all_count():
    expires = "a=1; Expires=Wed, 02 Dec 2026 00:00:00 GMT"  # a comma inside one value
    reply = Reply(200, (("Cache-Control", "no-cache"), ("Set-Cookie", expires),
                        ("cache-control", "private"), ("SET-COOKIE", "b=2")), b"")  # fmt: skip
    assert reply.header("cache-control") == "no-cache, private"
    assert reply.values("set-cookie") == [expires, "b=2"]
    assert reply.header("location") == "" and reply.values("location") == []
    reordered = Reply(200, (("set-cookie", "b=3"), ("set-cookie", "a=9"),
                            ("cache-control", "no-cache")), b"")  # fmt: skip
    assert compare_replies(reply, reordered, PLAIN) == [("header:cache-control", "header")]


def test_non_json_bodies_compare_as_normalized_text_and_broken_json_is_named():
    text = Reply(200, (("content-type", "text/plain"),), b"ok\r\n")
    assert compare_replies(text, Reply(200, text.headers, b"ok\n"), PLAIN) == []
    assert compare_replies(text, Reply(200, text.headers, b"no"), PLAIN) == [("body", "text")]
    broken = Reply(200, (("content-type", "application/json"),), b"{oops")
    assert compare_replies(json_reply({"a": 1}), broken, PLAIN) == [("body", "invalid")]


def test_a_side_without_an_answer_is_always_an_error_difference():
    failed = Reply(0, error="timeout after 2.0s")
    assert compare_replies(json_reply({}), failed, PLAIN) == [("error", "error")]
    assert compare_replies(failed, failed, PLAIN) == [("error", "error")]


def test_a_failed_secondary_supplies_no_noise():
    """A dead secondary must not make a dead (or 500) candidate look like noise."""
    failed = Reply(0, error="ConnectError: refused")
    for candidate in (failed, json_reply({}, status=500)):
        comparison = Comparer().compare(
            Exchange("r", "GET", "/p", json_reply({}), candidate, secondary=failed)
        )
        assert comparison.raw and comparison.noise is None


def test_a_body_cut_at_the_capture_cap_is_never_compared():
    whole = json_reply({"price": "1.00"})
    cut = Reply(200, whole.headers, b'{"pri', truncated=True)
    for primary, candidate in ((cut, whole), (whole, cut), (cut, cut)):
        comparison = Comparer().compare(Exchange("r", "GET", "/p", primary, candidate, cut))
        assert comparison.skipped == "body_too_large" and comparison.raw == ()
    # A cut secondary only loses the noise reading.
    comparison = Comparer().compare(Exchange("r", "GET", "/p", whole, whole, cut))
    assert comparison.skipped is None and comparison.noise is None


def test_a_gzip_body_inflating_beyond_the_limit_is_too_large():
    import gzip

    from strangler.parity.compare import MAX_DECODED_BYTES

    head = (("content-type", "application/json"), ("content-encoding", "gzip"))
    bomb = gzip.compress(b"[" + b"0," * (MAX_DECODED_BYTES // 2) + b"0]")
    other = gzip.compress(b"[1]")
    comparison = Comparer().compare(
        Exchange("r", "GET", "/p", Reply(200, head, bomb), Reply(200, head, other))
    )
    assert comparison.skipped == "body_too_large"


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_json_nested_beyond_the_depth_bound_is_too_deep_not_a_crash(opener):
    closer = b"]" if opener == b"[" else b"}"
    deep = opener * 1000 + b"1" + closer * 1000
    primary = Reply(200, (("content-type", "application/json"),), b'{"t":1,"x":' + deep + b"}")
    candidate = Reply(200, primary.headers, b'{"t":2,"x":' + deep + b"}")
    comparison = Comparer().compare(Exchange("r", "GET", "/p", primary, candidate, candidate))
    assert comparison.skipped == "too_deep"
    unordered = norm(unordered=["x"])
    with pytest.raises(Uncomparable, match="too_deep"):
        compare_replies(primary, candidate, unordered)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/api/v1/products/42", "GET /api/v1/products/{id}"),
        ("/api/v1/products/42/?page=3", "GET /api/v1/products/{id}/"),
        ("/o/550e8400-e29b-41d4-a716-446655440000", "GET /o/{uuid}"),
        ("/f/3f2a9c0e1b7d4e8fa1b2", "GET /f/{hex}"),
        ("/t/aZ9kQ2mR7xP4vL8nW3bY5", "GET /t/{token}"),
        ("/api/v1/products", "GET /api/v1/products"),
        ("/", "GET /"),
    ],
)
def test_high_cardinality_segments_fold_into_one_endpoint(path, endpoint):
    assert endpoint_of("GET", path) == endpoint


def test_configured_endpoint_templates_fold_slugs():
    config, _ = parse_compare({"endpoints": {"GET /p/{slug}": {"ignore": ["x"]}}}, "c")
    comparer = Comparer({"r": config})
    assert comparer.endpoint("r", "GET", "/p/red-shirt") == "GET /p/{slug}"
    assert comparer.endpoint("r", "POST", "/p/red-shirt") == "POST /p/red-shirt"


def test_endpoint_refinements_extend_the_routes_normalizers():
    config, _ = parse_compare(
        {"ignore": ["a"], "endpoints": {"GET /p/{id}": {"ignore": ["b"]}}}, "c"
    )
    comparer = Comparer({"r": config})
    exchange = Exchange("r", "GET", "/p/1", json_reply({"a": 1, "b": 1, "c": 1}),
                        json_reply({"a": 2, "b": 2, "c": 2}))  # fmt: skip
    assert comparer.compare(exchange).raw == (("c", "value"),)
    other = Exchange("r", "GET", "/q", exchange.primary, exchange.candidate)
    assert comparer.compare(other).raw == (("b", "value"), ("c", "value"))


def test_noise_cancels_a_field_that_differs_as_often_between_two_monoliths():
    assert not is_regression(raw=500, noise=480, samples=1000, noise_samples=1000)
    assert is_regression(raw=300, noise=0, samples=1000, noise_samples=1000)
    assert not is_regression(raw=0, noise=0, samples=1000, noise_samples=1000)


def test_noise_is_scaled_to_the_share_of_comparisons_that_had_a_secondary():
    # 50 noise differences in 100 secondary calls predict ~500 over 1000 comparisons.
    assert not is_regression(raw=500, noise=50, samples=1000, noise_samples=100)
    assert is_regression(raw=500, noise=5, samples=1000, noise_samples=100)


def test_noise_from_a_few_secondary_readings_cannot_cancel_a_field_wrong_everywhere():
    # The candidate gets `price` wrong on all 1,000 comparisons; the secondary answered once
    # and differed there once. Scaled as a plain ratio that one reading explained all 1,000.
    assert is_regression(raw=1000, noise=1, samples=1000, noise_samples=1)
    assert is_regression(raw=1000, noise=3, samples=1000, noise_samples=3)
    # Enough readings of a field that always differs (a timestamp) still cancel it.
    assert not is_regression(raw=1000, noise=40, samples=1000, noise_samples=40)


def test_both_thresholds_must_be_exceeded():
    # 1 extra difference in 100,000: relative 100% but absolute 0.001% < 0.03%.
    assert not is_regression(raw=1, noise=0, samples=100_000, noise_samples=100_000)
    # 10% above noise: absolute large, relative 4.8% < 20%.
    assert not is_regression(raw=550, noise=500, samples=1000, noise_samples=1000)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"ignore": [""]}, "route.E045"),
        ({"ignore": ["a..b"]}, "route.E045"),
        ({"ignore": "results"}, "route.E045"),
        ({"numeric_tolerance": -1}, "route.E046"),
        ({"numeric_tolerance": float("nan")}, "route.E046"),
        ({"timestamp_precision": "hours"}, "route.E046"),
        ({"list_keys": {"results": ""}}, "route.E045"),
        ({"endpoints": {"products": {}}}, "route.E047"),
        ({"ignore": ["header:"]}, "route.E045"),
        ({"ignore": ["header:x y"]}, "route.E045"),
        ({"ignroe": ["a"]}, "route.E021"),
    ],
)
def test_bad_normalizer_config_is_rejected_with_its_id(raw, problem):
    _, problems = parse_compare(raw, "routes[0] (products).shadow.compare")
    assert [p.id for p in problems] == [problem]
    assert problems[0].field.startswith("routes[0] (products).shadow.compare")


def test_an_ignored_header_matches_whatever_its_case():
    """HTTP header names are case-insensitive: `header:Vary` ignores the Vary header."""
    config, problems = parse_compare({"ignore": ["header:Vary"], "headers": ["vary"]}, "c")
    assert problems == [] and config.ignore == ("header:vary",)
    monolith = Reply(200, (("Vary", "Accept, Cookie"),), b"")
    service = Reply(200, (("Vary", "Accept"),), b"")
    assert compare_replies(monolith, service, compile_config(config)) == []


def test_every_problem_is_reported_at_once():
    _, problems = parse_compare({"ignore": [""], "numeric_tolerance": -1, "x": 1}, "c")
    assert sorted(p.id for p in problems) == ["route.E021", "route.E045", "route.E046"]


def test_gzip_bodies_compare_by_their_content_not_their_bytes():
    import gzip

    body = orjson.dumps({"a": 1, "b": [1, 2]})
    head = (("content-type", "application/json"), ("content-encoding", "gzip"))
    one = Reply(200, head, gzip.compress(body, mtime=1))
    two = Reply(200, head, gzip.compress(body, mtime=2))
    assert one.body != two.body
    assert compare_replies(one, two, PLAIN) == []
    other = Reply(200, head, gzip.compress(orjson.dumps({"a": 2, "b": [1, 2]})))
    assert compare_replies(one, other, PLAIN) == [("a", "value")]


def test_maps_keyed_by_id_count_as_one_field():
    primary = {"stock": {"17": 1, "18": 2, "550e8400-e29b-41d4-a716-446655440000": 3}}
    candidate = {"stock": {"17": 0, "18": 0, "550e8400-e29b-41d4-a716-446655440000": 0}}
    assert sorted(diff_json(primary, candidate, PLAIN)) == [
        ("stock.{id}", "value"),
        ("stock.{uuid}", "value"),
    ]


def test_the_normalizer_cache_does_not_grow_with_distinct_paths():
    config, _ = parse_compare({"endpoints": {"GET /p/{slug}": {"ignore": ["x"]}}}, "c")
    comparer = Comparer({"r": config})
    ok = json_reply({})
    for n in range(500):
        comparer.compare(Exchange("r", "GET", f"/junk-{n}/x", ok, ok))
    comparer.compare(Exchange("r", "GET", "/p/red", ok, ok))
    assert len(comparer._compiled) == 2  # the route's, and the one refined endpoint's


def test_comparison_metrics_keep_endpoint_labels_bounded():
    from strangler.parity.metrics import ParityMetrics
    from strangler.parity.tally import MAX_ENDPOINTS

    metrics, comparer, ok = ParityMetrics(), Comparer(), json_reply({})
    metrics.observe([comparer.compare(Exchange("r", "GET", "/junk-0/x", ok, ok))])
    metrics.observe(  # one batch: counted once per label set
        comparer.compare(Exchange("r", "GET", f"/junk-{n}/x", ok, ok))
        for n in range(MAX_ENDPOINTS + 20)
    )
    text = metrics.render().decode()
    series = [
        line for line in text.splitlines() if line.startswith("strangler_parity_comparisons_total{")
    ]
    assert len(series) == MAX_ENDPOINTS + 1
    assert 'endpoint="GET (other endpoints)",outcome="same",route="r"} 20.0' in text
    assert 'endpoint="GET /junk-0/x",outcome="same",route="r"} 2.0' in text
