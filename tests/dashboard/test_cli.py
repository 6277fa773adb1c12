"""`strangler dashboard` on bad input: every problem at once, exit 2, no traceback, no server."""

from __future__ import annotations

from pathlib import Path

from tests.proxy.helpers import strangler


def test_help_has_examples_and_exit_codes() -> None:
    done = strangler("dashboard", "--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and "Exit codes" in done.stdout


def test_bad_input_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    done = strangler(
        "dashboard",
        "--config", str(tmp_path / "missing.json"),
        "--proxy-admin", "http://user:pw@127.0.0.1:8081",
        "--proxy-admin", "127.0.0.1:8081",
        "--report", str(tmp_path / "report.html"),
        "--listen", "8082",
        env={"STRANGLER_ADMIN_TOKEN": ""},
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("strangler dashboard: error: ") for line in lines)
    for expected in (
        "no path, query or credentials",
        "'127.0.0.1:8081' is not http://HOST:PORT",
        "missing.json does not exist",
        "--report",
        "no admin token",
        "--listen '8082' is not HOST:PORT",
    ):
        assert any(expected in line for line in lines), (expected, lines)


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    config = tmp_path / "routes.json"
    seed = tmp_path / "seed.json"
    seed.write_text(
        '{"default_backend": "m", "backends": {"m": {"url": "http://127.0.0.1:1"}}, "routes": []}'
    )
    assert strangler("route", "set", str(seed), "--config", str(config)).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = strangler(
            "dashboard", "--config", str(config), "--listen", f"127.0.0.1:{port}",
            env={"STRANGLER_ADMIN_TOKEN": "t" * 20},
        )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
