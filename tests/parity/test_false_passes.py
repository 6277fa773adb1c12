"""False passes: a candidate that answers differently while parity says equal. Most tests
have a monolith and a candidate answering on real sockets, `strangler parity replay` comparing
them into a real store, and the gate's verdict, which must not be a pass; the others show
that the input which made such a pass certain (a route table, a compare file, replay
options) is refused, exit 2, before anything is sent or applied."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler

import pytest

from strangler.cli import main
from strangler.control import open_store
from tests.control.test_validate import base
from tests.parity.shop_servers import har, serve_handler
from tests.parity.test_replay import run

Answer = tuple[int, list[tuple[str, str]], bytes]
JSON = [("content-type", "application/json")]


@contextmanager
def answering(answer: Callable[[str, int], Answer]) -> Iterator[str]:
    """A server answering `answer(path, n)` to its n-th request (0-based), `{own}` in a header
    value replaced by its own URL; yields that URL."""
    calls = iter(range(1_000_000))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with lock:
                n = next(calls)
            status, headers, body = answer(self.path, n)
            self.send_response(status)
            own = f"http://127.0.0.1:{self.server.server_address[1]}"
            for name, value in headers:
                self.send_header(name, value.replace("{own}", own))
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serve_handler(Handler) as url:
        yield url


def gate(
    capsys: pytest.CaptureFixture[str],
    tmp_path,
    primary: Callable[[str, int], Answer],
    candidate: Callable[[str, int], Answer],
    requests: int = 30,
    compare: str | None = None,
    secondary: Callable[[str, int], Answer] | None = None,
) -> tuple[int, str]:
    """Replay `requests` GETs of /api/items/N against both (the monolith called twice for
    noise, or `secondary`), then `report --gate 99.5` over them: (exit code, the gate's line)."""
    path = tmp_path / "traffic.har"
    urls = [f"http://shop.example.com/api/items/{n}" for n in range(requests)]
    path.write_text(json.dumps(har([("GET", url) for url in urls])))
    store = str(tmp_path / "parity.sqlite3")
    extra = []
    if compare is not None:
        (tmp_path / "compare.toml").write_text(compare)
        extra = ["--compare", str(tmp_path / "compare.toml")]
    sides = {"--primary": primary, "--candidate": candidate, "--secondary": secondary}
    with ExitStack() as servers:
        for option, answer in sides.items():
            if answer is not None:
                extra += [option, servers.enter_context(answering(answer))]
        code, _, err = run(capsys, "parity", "replay", str(path), "--route", "items",
                           "--store", store, "--concurrency", "1", *extra)  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, "parity", "report", "--route", "items", "--store", store,
                       "--gate", "99.5", "--min-samples", str(requests))  # fmt: skip
    return code, out.strip().splitlines()[-1]


def json_answer(body: object) -> Callable[[str, int], Answer]:
    return lambda path, n: (200, JSON, json.dumps(body).encode())


def refused(capsys: pytest.CaptureFixture[str], tmp_path, compare: str) -> str:
    """Replay one request with `compare`: it must exit 2, nothing sent; the error line."""
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har([("GET", "http://shop.example.com/api/items/1")])))
    (tmp_path / "compare.toml").write_text(compare)
    seen: list[str] = []

    def monolith(path: str, n: int) -> Answer:
        seen.append(path)
        return 200, JSON, b"{}"

    with answering(monolith) as url:
        code, _, err = run(capsys, "parity", "replay", str(path), "--primary", url,
                           "--candidate", "http://127.0.0.1:9",
                           "--store", str(tmp_path / "p.sqlite3"),
                           "--compare", str(tmp_path / "compare.toml"))  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and not seen
    return err.strip()


@pytest.mark.parametrize("wildcards", ["?", "??", "[*]", "[*].*", "[*].**", "*.*", "*[*]"])
def test_an_ignore_of_wildcards_alone_is_refused(wildcards, capsys, tmp_path):
    """`?` ignored the root (`$`: a candidate answering [] for {} passed) and every
    one-character top-level field; `[*]` or `[*].*` on a list body ignored every item, so a
    candidate answering another list passed. Entries naming no field are route.E048."""
    err = refused(capsys, tmp_path, f"ignore = [{json.dumps(wildcards)}]\n")
    assert f"route.E048 {tmp_path / 'compare.toml'}.ignore: '{wildcards}' is wildcards alone" in (
        err
    )


def test_a_list_body_with_an_ignored_field_per_item_still_compares_its_items(capsys, tmp_path):
    """`[*].updated_at` ignores one field of each item of a list body, not the items."""
    primary = json_answer([{"id": 1, "updated_at": "a"}, {"id": 2, "updated_at": "a"}])
    candidate = json_answer([{"id": 7, "updated_at": "b"}])
    code, line = gate(capsys, tmp_path, primary, candidate, compare='ignore = ["[*].updated_at"]')
    assert code == 1 and line.startswith("fail: parity 0.00%"), line


def test_the_root_of_the_body_is_never_ignored(capsys, tmp_path):
    """A candidate answering a list (or null) for an object differs at the root, `$`; an
    entry `$` names a top-level key "$", never the root."""
    code, line = gate(capsys, tmp_path, json_answer({"id": 1}), json_answer([1]),
                      compare='ignore = ["$"]')  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 0.00%") and "($ (type))" in line, line


def test_the_same_bytes_as_json_and_as_html_differ(capsys, tmp_path):
    """With Content-Type not compared as a header (a route's own `headers` list), a candidate
    answering the monolith's JSON bytes as text/html (a browser renders them, a client's JSON
    decoding refuses them) passed: equal bytes were taken as an equal answer."""
    body = json.dumps({"id": 1}).encode()
    primary = lambda path, n: (200, JSON, body)  # noqa: E731
    candidate = lambda path, n: (200, [("content-type", "text/html")], body)  # noqa: E731
    code, line = gate(capsys, tmp_path, primary, candidate, compare='headers = ["location"]')
    assert code == 1 and line.startswith("fail: parity 0.00%") and "(body (content-type))" in line


@pytest.mark.parametrize(
    "candidate",
    [
        [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"id": 2, "n": "b"}, {"n": "c"}],  # a JOIN
        [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"n": "c"}, {"n": "c"}],  # no id, twice
        [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"n": "c"}, "junk"],  # no object
    ],
)
def test_lists_matched_by_key_keep_every_item(candidate, capsys, tmp_path):
    """`list_keys` matched items through a dict by key: a candidate repeating a row, or adding
    items without the key or items that are not objects, was equal to the monolith."""
    primary = json_answer({"results": [{"id": 1, "n": "a"}, {"id": 2, "n": "b"}, {"n": "c"}]})
    code, line = gate(capsys, tmp_path, primary, json_answer({"results": candidate}),
                      compare='list_keys = { results = "id" }')  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 0.00%") and "(results[*] (" in line, line


@pytest.mark.parametrize(
    "broken",
    [
        lambda whole: whole[:-8],  # cut short: no CRC and length, a client's gunzip fails
        lambda whole: whole + b"<html>an error page</html>",  # bytes after the gzip member
    ],
)
def test_a_gzip_body_that_does_not_decode_whole_differs(broken, capsys, tmp_path):
    """zlib (and httpx's decoder) gave the members' content and left the rest unread, so a
    candidate whose gzip answer was cut short, or had bytes after its end, was equal."""
    body = gzip.compress(json.dumps({"id": 1, "name": "Product 1"}).encode(), mtime=0)
    gzipped = [*JSON, ("content-encoding", "gzip")]
    primary = lambda path, n: (200, gzipped, body)  # noqa: E731
    candidate = lambda path, n: (200, gzipped, broken(body))  # noqa: E731
    code, line = gate(capsys, tmp_path, primary, candidate)
    assert code == 1 and line.startswith("fail: parity 0.00%"), line


def test_gzip_answers_of_the_same_content_pass_as_read_from_the_wire(capsys, tmp_path):
    """The replay reads bodies as sent; the comparison inflates both (their bytes differ)."""
    content = json.dumps({"id": 1, "name": "Product 1"}).encode()
    gzipped = [*JSON, ("content-encoding", "gzip")]
    primary = lambda path, n: (200, gzipped, gzip.compress(content, 1, mtime=n))  # noqa: E731
    candidate = lambda path, n: (200, gzipped, gzip.compress(content, 9, mtime=7))  # noqa: E731
    code, line = gate(capsys, tmp_path, primary, candidate)
    assert code == 0 and line.startswith("pass: parity 100.00%"), line


def test_noise_in_a_json_field_named_status_never_cancels_the_status_code(capsys, tmp_path):
    """Differences counted per field name: the monolith's JSON `status` differs between two
    calls (noise on every request), so the status code, counted as `status` too, was noise
    as well, and a candidate answering 500 to a fifth of the requests passed."""

    def monolith(path: str, n: int) -> Answer:
        return 200, JSON, json.dumps({"status": ["queued", "running"][n % 2]}).encode()

    def candidate(path: str, n: int) -> Answer:
        return 500 if n % 5 == 0 else 200, JSON, b'{"status": "queued"}'

    code, line = gate(capsys, tmp_path, monolith, candidate)
    assert code == 1 and line.startswith("fail: parity 80.00%") and "(status)" in line, line


POST = {"id": 1, "body": "Hello", "type": "post"}
POST_JSON = json.dumps(POST).encode()


@pytest.mark.parametrize(
    ("ignore", "candidate"),
    [
        # A JSON field named `body` ignored: the candidate's broken JSON was ignored with it.
        ("body", (200, JSON, POST_JSON[:-2])),
        # A glob for JSON fields ending in `type` reached the Content-Type header.
        ("*type", (200, [("content-type", "application/problem+json")], POST_JSON)),
    ],
)
def test_an_ignore_for_json_fields_reaches_neither_the_body_nor_headers(
    ignore, candidate, capsys, tmp_path
):
    """Entries without `header:` ignore JSON fields: never the body as a whole (not JSON,
    or not the same text) nor a header."""
    code, line = gate(capsys, tmp_path, json_answer(POST), lambda path, n: candidate,
                      compare=f"ignore = [{json.dumps(ignore)}]")  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 0.00%"), line


@pytest.mark.parametrize(
    ("primary", "candidate"),
    [
        (b'{"wei": 1180591620717411303425}', b'{"wei": 1180591620717411303424}'),  # 2**70
        (b'{"id": -9223372036854775809}', b'{"id": -9223372036854775808}'),
        (b'{"tags": [18446744073709551617]}', b'{"tags": [18446744073709551616]}'),
    ],
)
def test_integers_past_64_bits_compare_exactly(primary, candidate, capsys, tmp_path):
    """orjson reads integers past 64 bits as floats: 2**70 + 1 and 2**70 were the same
    float, equal (an amount in wei, a 128-bit id), below -2**63 too, and in lists compared
    unordered (which orjson could not have written back)."""
    code, line = gate(capsys, tmp_path, lambda path, n: (200, JSON, primary),
                      lambda path, n: (200, JSON, candidate),
                      compare='unordered = ["tags"]')  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 0.00%"), line


@pytest.mark.parametrize(
    ("shadow", "copied", "problem"),
    [
        # The service's backend holds the monolith's URL: the monolith compared with itself.
        ({"percent": 10}, {"catalog": "http://127.0.0.1:8000"}, "the candidate is the monolith"),
        # A second monolith instance at the service's address: noise read from the candidate.
        (
            {"percent": 10, "secondary": "monolith_b"},
            {"monolith_b": "http://LOCALHOST:8100"},
            "the secondary is the candidate",
        ),
    ],
)
def test_a_shadow_onto_the_monolith_or_noise_from_the_candidate_by_address_is_refused(
    shadow, copied, problem, capsys, tmp_path
):
    """E041 told backends apart by name: two names for one address passed, and parity was
    100% by construction (every difference of the candidate learned as noise, or none)."""
    table = base(weight=0, shadow=shadow)
    table["backends"]["catalog"] = {"url": "http://localhost:8100"}
    table["backends"]["monolith_b"] = {"url": "http://127.0.0.1:8001"}
    for name, url in copied.items():
        table["backends"][name] = {"url": url}
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(table))
    config = tmp_path / "routes.toml"
    code = main(["route", "set", str(seed), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "route.E041" in err and problem in err, err
    assert not config.exists() or open_store(str(config)).is_empty()


@pytest.mark.parametrize(
    ("sides", "refusal"),
    [
        (["--candidate", "http://127.0.0.1:{port}/"], "--candidate http://127.0.0.1:{port} is"),
        (["--candidate", "http://localhost:9", "--secondary", "http://LocalHost:9"],
         "--secondary http://LocalHost:9 is the --candidate"),
    ],
)  # fmt: skip
def test_a_replay_onto_the_primary_or_with_noise_from_the_candidate_is_refused(
    sides, refusal, capsys, tmp_path
):
    """`--candidate` at the primary's address was accepted (the monolith compared with
    itself, 100%), and `--secondary` was told from `--candidate` by its text only."""
    path = tmp_path / "traffic.har"
    path.write_text(json.dumps(har([("GET", "http://shop.example.com/api/items/1")])))
    seen: list[str] = []

    def monolith(path: str, n: int) -> Answer:
        seen.append(path)
        return 200, JSON, b"{}"

    with answering(monolith) as url:
        port = url.rsplit(":", 1)[1]
        code, _, err = run(capsys, "parity", "replay", str(path), "--primary", url,
                           *(side.format(port=port) for side in sides),
                           "--store", str(tmp_path / "p.sqlite3"))  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1 and not seen, err
    assert refusal.format(port=port) in err


def test_a_secondary_answering_5xx_gives_no_noise_reading(capsys, tmp_path):
    """A second monolith instance overloaded by the shadow calls answered 503 to a fifth of
    them: the status code was learned as noise, and a candidate answering 500 to a fifth of
    the requests passed. A secondary that failed (5xx where the primary did not) is a noise
    call that did not answer: no reading, as a refused or timed-out one."""
    body = b'{"id": 1}'

    def failing_a_fifth(path: str, n: int) -> Answer:
        return 503 if n % 5 == 0 else 200, JSON, body

    candidate = lambda path, n: (500 if n % 5 == 0 else 200, JSON, body)  # noqa: E731
    code, line = gate(capsys, tmp_path, lambda path, n: (200, JSON, body), candidate,
                      secondary=failing_a_fifth)  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 80.00%") and "(status)" in line, line


@pytest.mark.parametrize("amount", [" 9.90", "9.90\n", "9_9.0", "+9.9", "9.9e0 "])
def test_decimal_strings_equal_a_number_only_when_written_as_one(amount, capsys, tmp_path):
    """`decimal_strings` read the string with Decimal(), which takes surrounding whitespace,
    underscores and a plus sign: "9_9.0" equalled 99.0 and " 9.90" 9.9, strings a client
    parsing a decimal number (Go's strconv, JavaScript's Number for "9_9.0") refuses."""
    primary = json_answer({"price": 99.0 if "_" in amount else 9.9})
    code, line = gate(capsys, tmp_path, primary, json_answer({"price": amount}),
                      compare="decimal_strings = true")  # fmt: skip
    assert code == 1 and line.startswith("fail: parity 0.00%"), line


def test_a_redirect_to_each_backends_own_address_is_the_same_redirect(capsys, tmp_path):
    """The reverse, a false failure: links in bodies compare after each backend's own base
    URL is replaced, the Location header did not, so two services redirecting alike (each to
    its own address, as in a replay against two addresses) differed on every redirect."""
    moved = lambda path, n: (302, [("location", "{own}/api/items/new")], b"")  # noqa: E731
    code, line = gate(capsys, tmp_path, moved, moved)
    assert code == 0 and line.startswith("pass: parity 100.00%"), line
    elsewhere = lambda path, n: (302, [("location", "{own}/api/elsewhere")], b"")  # noqa: E731
    (tmp_path / "elsewhere").mkdir()
    code, line = gate(capsys, tmp_path / "elsewhere", moved, elsewhere)
    assert code == 1 and line.startswith("fail: parity 0.00%") and "(header:location)" in line


def test_long_field_names_are_not_folded_into_one_like_ids(capsys, tmp_path):
    """JSON keys of 20+ characters mixing letters and digits folded to `{token}` like ids, so
    `meta.cache_generated_at_v2` (noise on every call) and `meta.inventory_checksum_v2` were
    one field: a candidate with a wrong checksum on every answer passed as noise, and an
    `ignore` naming either field matched neither."""

    def monolith(path: str, n: int) -> Answer:
        meta = {"cache_generated_at_v2": n, "inventory_checksum_v2": "c0ffee"}
        return 200, JSON, json.dumps({"meta": meta}).encode()

    def candidate(path: str, n: int) -> Answer:
        meta = {"cache_generated_at_v2": -1, "inventory_checksum_v2": "bad"}
        return 200, JSON, json.dumps({"meta": meta}).encode()

    code, line = gate(capsys, tmp_path, monolith, candidate)
    assert code == 1 and "(meta.inventory_checksum_v2)" in line, line
    (tmp_path / "ignored").mkdir()
    code, line = gate(capsys, tmp_path / "ignored", monolith, candidate,
                      compare='ignore = ["meta.inventory_checksum_v2"]')  # fmt: skip
    assert code == 0 and line.startswith("pass: parity 100.00%"), line


def page(token: str, heading: str = "Products") -> bytes:
    return (f'<html><form><input name="csrf" value="{token}"></form>\n'
            f"<h1>{heading}</h1><p>3 items</p></html>").encode()  # fmt: skip


HTML = [("content-type", "text/html; charset=utf-8")]


@pytest.mark.parametrize("minified", [False, True])
def test_a_token_that_varies_in_a_page_never_cancels_the_rest_of_it(minified, capsys, tmp_path):
    """A CSRF token, new on every monolith call, made the whole non-JSON body noise: a
    service answering every page with an error page passed the gate at 100 %. Only the parts
    of a text body the two monolith calls disagree on are noise; a page that differs
    anywhere else differs. Also on one line (minified HTML)."""

    def squeeze(body: bytes) -> bytes:
        return body.replace(b"\n", b"") if minified else body

    def monolith(path: str, n: int) -> Answer:
        return 200, HTML, squeeze(page(f"tok{n:06d}"))

    def broken(path: str, n: int) -> Answer:
        return 200, HTML, b"<html><h1>Internal error</h1></html>"

    def renamed(path: str, n: int) -> Answer:  # the same page but for its heading
        return 200, HTML, squeeze(page(f"svc{n:06d}", heading="Catalogue"))

    def faithful(path: str, n: int) -> Answer:  # only the token differs
        return 200, HTML, squeeze(page(f"svc{n:06d}"))

    for candidate in (broken, renamed, faithful):
        (tmp_path / candidate.__name__).mkdir()
    for candidate in (broken, renamed):
        code, line = gate(capsys, tmp_path / candidate.__name__, monolith, candidate)
        assert code == 1 and line.startswith("fail: parity 0.00%") and "(body)" in line, line
    code, line = gate(capsys, tmp_path / "faithful", monolith, faithful)
    assert code == 0 and line.startswith("pass: parity 100.00%"), line
