"""Start `strangler dashboard` next to the demo's proxy and say where to open it.

Called by the proxy step once its proxy runs; the dashboard stays up with the rest under
`strangler demo --keep-running`.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx

from strangler.demo.context import DemoContext, DemoError


def wait_answering(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise DemoError(f"the dashboard did not answer at {url} in {timeout:.0f}s")


def start(ctx: DemoContext, config: Path, admin_url: str, port: int) -> str:
    """The dashboard's URL; its sign-in token is in a file only the demo's user can read."""
    token_file = ctx.work_dir / "dashboard-token"
    token_file.touch(mode=0o600)
    token_file.write_text(secrets.token_urlsafe(24))
    argv = ["-m", "strangler", "dashboard", "--config", str(config), "--proxy-admin", admin_url,
            "--admin-token-file", str(token_file), "--listen", f"127.0.0.1:{port}"]  # fmt: skip
    analysis = ctx.facts.get("analysis")
    if isinstance(analysis, dict) and analysis.get("html"):
        argv += ["--report", str(analysis["html"])]
    ctx.start("dashboard", ctx.python(*argv))
    url = f"http://127.0.0.1:{port}/"
    wait_answering(url)
    ctx.log(f"dashboard {url} (sign in with the token in {token_file})")
    ctx.facts["dashboard"] = {"url": url, "token_file": str(token_file)}
    return url
