"""Compare one exchange: status, selected headers and body of primary vs candidate (raw) and of
primary vs secondary (noise), each reduced to the field paths that differ."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from strangler.control.compare import CompareConfig
from strangler.parity.diff import Difference, SkipReason, Uncomparable, diff_json
from strangler.parity.endpoint import compile_templates, endpoint_of
from strangler.parity.exchange import Exchange, Reply
from strangler.parity.jsonvalue import loads
from strangler.parity.normalize import Normalizer, compile_config
from strangler.parity.textdiff import differs_outside_noise

TEXT: Difference = ("body", "text")
VARYING: Difference = ("body", "varying")  # a text body's parts the monolith varies itself
BASE_TEXT = "{base}"
BASE_PLACEHOLDER = BASE_TEXT.encode()
MAX_DECODED_BYTES = 8 * 1024 * 1024  # a compressed body inflates at most to this (zip bombs)
ENDPOINT_CACHE = 4096  # paths whose endpoint is remembered; a flood of new ones empties it


@dataclass(frozen=True)
class Comparison:
    """The outcome of one exchange; `noise` is None when there was no usable secondary answer;
    `skipped` names why the exchange could not be compared (then `raw` and `noise` are empty)."""

    route: str
    endpoint: str
    at: float
    raw: tuple[Difference, ...]
    noise: tuple[Difference, ...] | None
    primary_status: int
    candidate_status: int
    primary_ms: float
    candidate_ms: float
    exchange: Exchange | None = None
    skipped: SkipReason | None = None

    @property
    def raw_fields(self) -> frozenset[str]:
        return frozenset(p for p, _ in self.raw)

    @property
    def noise_fields(self) -> frozenset[str]:
        return frozenset(p for p, _ in self.noise or ())


def _media_type(reply: Reply) -> str:
    return reply.header("content-type").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _decoded(reply: Reply) -> bytes:
    """The body without its gzip/deflate content coding (two servers' gzip bytes differ even
    for the same content); a body that does not decode whole (broken, cut short, bytes after
    its end: a client gets an error or something else) stays as is, one that inflates beyond
    MAX_DECODED_BYTES is Uncomparable."""
    coding = reply.header("content-encoding").strip().lower()
    if coding not in ("gzip", "x-gzip", "deflate") or not reply.body:
        return reply.body
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(reply.body, MAX_DECODED_BYTES)
    except zlib.error:
        return reply.body
    if inflater.unconsumed_tail:
        raise Uncomparable("body_too_large")
    return body if inflater.eof and not inflater.unused_data else reply.body


def _rebased(reply: Reply) -> bytes:
    """The decoded body with the backend's own base URL replaced, so links compare equal."""
    body = _decoded(reply)
    if reply.base_url and reply.base_url.encode() in body:
        return body.replace(reply.base_url.encode(), BASE_PLACEHOLDER)
    return body


def _rebased_header(reply: Reply, name: str) -> str:
    """A header's value with the backend's own base URL replaced, as in bodies (Location)."""
    value = reply.header(name)
    return value.replace(reply.base_url, BASE_TEXT) if reply.base_url else value


def _cookie_names(reply: Reply) -> list[str]:
    return sorted(v.split("=", 1)[0].strip() for v in reply.values("set-cookie"))


def _text(body: bytes) -> bytes:
    return body.replace(b"\r\n", b"\n").strip()


def compare_replies(primary: Reply, candidate: Reply, norm: Normalizer) -> list[Difference]:
    """Every difference between two answers to the same request, as (field path, kind).

    A side that did not answer always differs (`error`); a cut body raises Uncomparable.
    """
    if primary.truncated or candidate.truncated:
        raise Uncomparable("body_too_large")
    if primary.error or candidate.error:
        return [("error", "error")]
    out: list[Difference] = []
    if primary.status != candidate.status:
        out.append(("status", "status"))
    for name in norm.headers:
        if name == "set-cookie":
            same = _cookie_names(primary) == _cookie_names(candidate)
        else:
            same = _rebased_header(primary, name) == _rebased_header(candidate, name)
        if not same and not norm.header_ignored(name):
            out.append((f"header:{name}", "header"))
    # Before the bytes: the same bytes as JSON and as text are two answers to a client (two
    # empty bodies, a HEAD's or a 204's, are none: the header says what a GET would get).
    json_left, json_right = _is_json(_media_type(primary)), _is_json(_media_type(candidate))
    if json_left != json_right and (primary.body or candidate.body):
        out.append(("body", "content-type"))
        return out
    left, right = _rebased(primary), _rebased(candidate)
    if left == right:
        return out
    if json_left:
        try:
            a = loads(left)
        except ValueError:
            a = None
            out.append(("body", "invalid"))
        try:
            b = loads(right)
        except ValueError:
            if a is not None:
                out.append(("body", "invalid"))
            return out
        if a is not None:
            out.extend(diff_json(a, b, norm))
        return out
    if _text(left) != _text(right):
        out.append(TEXT)
    return out


@dataclass
class Comparer:
    """Compares exchanges with each route's CompareConfig, compiled once per endpoint."""

    configs: Mapping[str, CompareConfig] = field(default_factory=dict)
    _compiled: dict[tuple[str, str], Normalizer] = field(default_factory=dict, repr=False)
    _templates: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = field(
        default_factory=dict, repr=False
    )
    _endpoints: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)

    def normalizer(self, route: str, endpoint: str) -> Normalizer:
        """Compiled once per route, and once per endpoint the config refines (only those:
        a flood of distinct paths must not grow the cache)."""
        config = self.configs.get(route, CompareConfig())
        key = (route, endpoint if any(k == endpoint for k, _ in config.endpoints) else "")
        norm = self._compiled.get(key)
        if norm is None:
            norm = self._compiled[key] = compile_config(config.for_endpoint(endpoint))
        return norm

    def endpoint(self, route: str, method: str, path: str) -> str:
        """The endpoint a request counts under, remembered per path (traffic repeats paths,
        and folding one runs a regular expression per segment)."""
        key = (route, method, path)
        endpoint = self._endpoints.get(key)
        if endpoint is not None:
            return endpoint
        templates = self._templates.get(route)
        if templates is None:
            config = self.configs.get(route, CompareConfig())
            templates = self._templates[route] = compile_templates(k for k, _ in config.endpoints)
        if len(self._endpoints) >= ENDPOINT_CACHE:
            self._endpoints.clear()
        endpoint = self._endpoints[key] = endpoint_of(method, path, templates)
        return endpoint

    def compare(self, exchange: Exchange) -> Comparison:
        """Raw and noise differences; an exchange that cannot be compared comes back with
        `skipped` set. A secondary that failed (no answer, or a 5xx where the primary's was
        not one) or was cut gives no noise reading: a wrong one would cancel real
        differences, the failures it shares with a broken candidate first."""
        endpoint = self.endpoint(exchange.route, exchange.method, exchange.path)
        norm = self.normalizer(exchange.route, endpoint)
        try:
            raw = compare_replies(exchange.primary, exchange.candidate, norm)
        except Uncomparable as error:
            return skipped(exchange, endpoint, error.reason)
        noise = None
        secondary = exchange.secondary
        if secondary is not None and not _failed(secondary, exchange.primary):
            try:
                noise = tuple(compare_replies(exchange.primary, secondary, norm))
            except Uncomparable:
                noise = None
        if noise is not None and TEXT in raw and TEXT in noise:
            raw, noise = _text_noise(exchange, raw, noise)
        return _comparison(exchange, endpoint, tuple(raw), noise, None)


def _text_noise(
    exchange: Exchange, raw: list[Difference], noise: tuple[Difference, ...]
) -> tuple[list[Difference], tuple[Difference, ...]]:
    """Two monolith calls whose text bodies differ make only the differing parts noise
    (`body (varying)`): a candidate differing elsewhere keeps its `body` difference, which
    no noise cancels (a CSRF token must not hide an error page)."""
    assert exchange.secondary is not None
    p, s, c = (
        _text(_rebased(r)) for r in (exchange.primary, exchange.secondary, exchange.candidate)
    )
    if not differs_outside_noise(p, s, c):
        raw = [VARYING if d == TEXT else d for d in raw]
    return raw, tuple(VARYING if d == TEXT else d for d in noise)


def _failed(secondary: Reply, primary: Reply) -> bool:
    """Whether a noise call failed: no answer, or a server error the primary did not have."""
    return bool(secondary.error) or (secondary.status >= 500 > primary.status)


def skipped(exchange: Exchange, endpoint: str, reason: SkipReason) -> Comparison:
    """An exchange counted as not compared, for `reason`."""
    return _comparison(exchange, endpoint, (), None, reason)


def _comparison(
    exchange: Exchange,
    endpoint: str,
    raw: tuple[Difference, ...],
    noise: tuple[Difference, ...] | None,
    reason: SkipReason | None,
) -> Comparison:
    return Comparison(
        route=exchange.route,
        endpoint=endpoint,
        at=exchange.at,
        raw=raw,
        noise=noise,
        primary_status=exchange.primary.status,
        candidate_status=exchange.candidate.status,
        primary_ms=exchange.primary.latency_ms,
        candidate_ms=exchange.candidate.latency_ms,
        exchange=exchange if reason is None else None,
        skipped=reason,
    )
