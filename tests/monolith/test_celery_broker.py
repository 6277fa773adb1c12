"""Tasks travel through a real broker to a real worker: Redis (production) and SQLite (laptop)."""

import os
import subprocess
import sys
import time
import uuid

import pytest

pytestmark = pytest.mark.slow


def manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "monolith.manage", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("broker", ["redis", "sqlite"])
def test_order_confirmation_is_mailed_by_a_worker(tmp_path, broker):
    queue = f"test-{uuid.uuid4().hex[:8]}"  # concurrent runs never consume each other's tasks
    urls = {
        "redis": "redis://127.0.0.1:6379/0",
        "sqlite": f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}",
    }
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        "MONOLITH_VAR_DIR": str(tmp_path / "var"),
        "CELERY_BROKER_URL": urls[broker],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    manage(env, "migrate", "--noinput")
    manage(env, "seed", "--scale", "0.02")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "monolith", "worker", "--pool", "solo",
         "-Q", queue, "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        manage(
            env, "shell", "-c",
            "from monolith.notifications.tasks import send_order_confirmation; "
            "send_order_confirmation.delay(1)",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        mail_dir = tmp_path / "mail"
        while time.monotonic() < deadline and not (mail_dir.exists() and any(mail_dir.iterdir())):
            assert worker.poll() is None, worker.stdout.read()
            time.sleep(0.2)
    finally:
        worker.terminate()
        output = worker.communicate(timeout=30)[0]
    mails = list(mail_dir.iterdir()) if mail_dir.exists() else []
    assert len(mails) == 1, output
    assert "Subject: Your order SEED-00000001" in mails[0].read_text()
