"""HAR 1.2 in and out: the requests (and recorded answers) a replay sends, and the recorder's
output, with Authorization, Cookie and configured fields redacted."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from strangler import __version__
from strangler.parity.exchange import (
    Exchange,
    Headers,
    Reply,
    redaction,
    scrub_json,
    without_secrets,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_MISSING = object()  # a header without a "value" key (HAR 1.2 requires one)
MAX_PATH = 65536 - 1024  # httpx refuses a longer URL; the rest is for the target's address


class HarError(Exception):
    """A HAR file that cannot be replayed; the message names the file and the entry."""


@dataclass(frozen=True)
class HarRequest:
    """One entry's request, and the answer recorded with it when the HAR has one."""

    index: int
    method: str
    path: str
    headers: Headers
    body: bytes
    recorded: Reply | None
    host: str = ""  # the Host the request was made to (Host or h2 :authority, else the URL's)


def _headers(raw: Any, where: str) -> Headers:
    """The headers of a request or recorded answer. A value that is not a string (JSON null,
    a number) is an error naming the entry and header, as a HAR validator says: sent as text
    it would be the string "None" or "1", which no client sent."""
    if not isinstance(raw, list):
        raise HarError(f"{where}: headers is not a list")
    out = []
    for i, h in enumerate(raw):
        if not isinstance(h, dict) or not isinstance(h.get("name"), str):
            raise HarError(f"{where}[{i}]: a header needs a name and a value")
        value = h.get("value", _MISSING)
        if not isinstance(value, str):
            shown = (
                "missing"
                if value is _MISSING
                else "null"
                if value is None
                else json.dumps(value)[:40]
            )
            raise HarError(
                f"{where}[{i}] ({h['name']}): value is {shown}, not a string (HAR 1.2 header "
                "values are strings; fix or drop the header)"
            )
        out.append((h["name"], value))
    return tuple(out)


def _sent_headers(headers: Headers, host: str, where: str) -> None:
    """HarError naming the header when a request's header (or the Host it is sent with) is not
    Latin-1 text: a replay sends each character as one byte, as the proxy's recorder read
    them (a UTF-8 value arrives as Latin-1 text and goes back byte for byte), and a
    character past U+00FF is no byte any client sent."""
    for i, (name, value) in enumerate((*headers, ("Host", host))):
        try:
            name.encode("latin-1"), value.encode("latin-1")
        except UnicodeEncodeError as error:
            shown = f"headers[{i}] ({name})" if i < len(headers) else "url (its host)"
            raise HarError(
                f"{where}.{shown}: {error.object[error.start]!r} is not a byte (header "
                "bytes are HAR text one character each, up to U+00FF)"
            ) from error


def _sent_path(path: str, where: str) -> None:
    """HarError when a request's path holds what no request line can: an ASCII control
    character (httpx refuses the URL), a lone surrogate (not encodable), or more than httpx
    takes in a URL (64 KiB) with room for the target's address."""
    if len(path) > MAX_PATH:
        raise HarError(f"{where}.url: the path is {len(path):,} characters; one may be "
                       f"{MAX_PATH:,} at most")  # fmt: skip
    bad = next((c for c in path if (c.isascii() and not c.isprintable()) or _surrogate(c)), None)
    if bad is not None:
        raise HarError(f"{where}.url: {bad!r} at position {path.index(bad)} of the path is "
                       "not allowed in a request line")  # fmt: skip


def _content(raw: dict[str, Any], key: str, where: str) -> bytes:
    text = raw.get(key) or ""
    if not isinstance(text, str):
        raise HarError(f"{where}.{key}: {json.dumps(text)[:40]} is not a string")
    if raw.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except ValueError as error:  # binascii.Error, or a character past ASCII
            raise HarError(f"{where}.{key}: marked base64 but is not: {error}") from error
    try:
        return text.encode()
    except UnicodeEncodeError as error:  # JSON allows a lone "\\ud800"; no UTF-8 holds it
        raise HarError(f"{where}.{key}: {error.object[error.start]!r} at position "
                       f"{error.start} is half a UTF-16 pair, no character") from error  # fmt: skip


def _post_body(post: dict[str, Any], where: str) -> bytes:
    """A request body: its `text`, or a form recorded as `params` alone (HAR 1.2 allows
    either) encoded as the browser sent it. A multipart form's bytes (its boundary, the
    files) are not in `params`: HarError."""
    params = post.get("params")
    if post.get("text") or not params:
        return _content(post, "text", where)
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise HarError(f"{where}.params: not a list of name/value objects")
    mime = str(post.get("mimeType", "")).split(";", 1)[0].strip().lower()
    if mime not in ("", "application/x-www-form-urlencoded"):
        raise HarError(
            f"{where}.params: a {mime} body recorded as fields alone cannot be sent as it "
            "was (its bytes are not in the HAR); record it with `text`"
        )
    fields = []
    for n, param in enumerate(params):
        name, value = param.get("name"), param.get("value", "")
        if not isinstance(name, str) or not isinstance(value, str):
            raise HarError(f"{where}.params[{n}]: name and value must be strings")
        fields.append((name, value))
    return urlencode(fields).encode("ascii")


def _surrogate(char: str) -> bool:
    """A lone UTF-16 surrogate (JSON allows `\\ud800`): no text encodes it."""
    return "\ud800" <= char <= "\udfff"


def _recorded(raw: Any, where: str) -> Reply | None:
    status = raw.get("status") if isinstance(raw, dict) else None
    if type(status) is not int or status <= 0:  # not bool: `true` is no status 1
        return None
    content = raw.get("content")
    body = _content(content, "text", f"{where}.content") if isinstance(content, dict) else b""
    return Reply(status, _headers(raw.get("headers", []), f"{where}.headers"), body)


def _url_parts(url: Any) -> SplitResult | None:
    """The parts of a recorded URL, or None when it is not a string or does not split (an
    unclosed IPv6 bracket): the caller names the entry."""
    try:
        return urlsplit(url) if isinstance(url, str) else None
    except ValueError:
        return None


def parse_har(text: str, source: str) -> list[HarRequest]:
    """Every entry of a HAR 1.2 document; HarError names the first thing that is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise HarError(f"{source}: not JSON: {error}") from error
    except RecursionError as error:
        raise HarError(f"{source}: not JSON: nested too deeply") from error
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict):
        raise HarError(f"{source}: not a HAR file (no top-level `log` object)")
    entries = doc["log"].get("entries")
    if not isinstance(entries, list):
        raise HarError(f"{source}: log.entries is missing or not a list")
    out = []
    for i, entry in enumerate(entries):
        where = f"{source}: log.entries[{i}]"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            raise HarError(f"{where}: no request object")
        method, url = request.get("method"), request.get("url")
        if not isinstance(method, str) or not method.isalpha():
            raise HarError(f"{where}.request.method: {method!r} is not an HTTP method")
        parts = _url_parts(url)
        if parts is None or not (parts.path.startswith("/") or not parts.path):
            raise HarError(f"{where}.request.url: {url!r} is not a URL")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        post = request.get("postData")
        headers = _headers(request.get("headers", []), f"{where}.request.headers")
        host = next((v for k, v in headers if k.lower() in ("host", ":authority")), parts.netloc)
        _sent_headers(headers, host, f"{where}.request")
        _sent_path(path, f"{where}.request")
        out.append(
            HarRequest(
                index=i,
                method=method.upper(),
                path=path,
                headers=headers,
                host=host,
                body=_post_body(post, f"{where}.request.postData")
                if isinstance(post, dict)
                else b"",
                recorded=_recorded(entry.get("response"), f"{where}.response"),
            )
        )
    return out


def redact_headers(headers: Headers, redact: Iterable[str] = ()) -> list[dict[str, str]]:
    """Headers as a HAR lists them, with credentials and the header names in `redact` blanked."""
    names = {n.lower() for n in redact}
    return [{"name": k, "value": v} for k, v in without_secrets(headers, frozenset(names))]


def _body(body: bytes, fields: frozenset[str]) -> dict[str, str]:
    """A body as HAR content: text, with the configured field names blanked at any depth when
    it is JSON (as in the store's example pairs); a body that is not UTF-8 (binary) as base64
    with `"encoding": "base64"`, so a replay sends it back byte for byte (decoded with
    replacement it would be corrupted)."""
    scrubbed = scrub_json(body, fields) if fields else None
    if scrubbed is not None:
        return {"text": scrubbed.decode()}
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode("ascii"), "encoding": "base64"}


def har_entry(exchange: Exchange, redact: Iterable[str] = ()) -> dict[str, Any]:
    """A HAR 1.2 entry for the primary side of an exchange (what the client got)."""
    fields, headers = redaction((*redact, *exchange.redact))
    reply = exchange.primary
    host = next((v for k, v in exchange.request_headers if k.lower() == "host"), "strangler")
    return {
        "startedDateTime": _iso(exchange.at),
        "time": round(reply.latency_ms, 3),
        "request": {
            "method": exchange.method,
            "url": f"http://{host}{exchange.path}",
            "httpVersion": "HTTP/1.1",
            "headers": redact_headers(exchange.request_headers, headers),
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": len(exchange.request_body),
            **(
                {"postData": {"mimeType": "", **_body(exchange.request_body, fields)}}
                if exchange.request_body
                else {}
            ),
        },
        "response": {
            "status": reply.status,
            "statusText": "",
            "httpVersion": "HTTP/1.1",
            "headers": redact_headers(reply.headers, headers),
            "cookies": [],
            "content": {
                "size": len(reply.body),
                "mimeType": reply.header("content-type"),
                **_body(reply.body, fields),
            },
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(reply.body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": round(reply.latency_ms, 3), "receive": 0},
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def har_document(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "strangler", "version": __version__},
            "entries": entries,
        }
    }


def read_har_document(path: Path) -> dict[str, Any]:
    """The HAR document in `path` to append entries to (a new one when there is no file);
    HarError, naming the file, when it holds something else: appending would destroy it."""
    if not path.exists():
        return har_document([])
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise HarError(f"{path}: not a HAR file to append to ({error})") from error
    log = doc.get("log") if isinstance(doc, dict) else None
    if not isinstance(log, dict) or not isinstance(log.get("entries"), list):
        raise HarError(f'{path}: not a HAR file to append to (no "log": {{"entries": [...]}})')
    return doc
