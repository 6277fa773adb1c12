"""Create the monolith's SQLite database and fill it with a small, deterministic shop."""

from __future__ import annotations

import re

from strangler.demo.context import DemoContext

TITLE = "Prepare the monolith's database (SQLite, migrate, seed)"
SCALE = "0.2"  # 100 products, 40 customers, 200 orders: seconds, not minutes


def monolith_env(ctx: DemoContext) -> dict[str, str]:
    """Settings for every monolith process of the demo: one SQLite file, tasks run inline."""
    database = ctx.work_dir / "monolith.sqlite3"
    return {
        "DJANGO_SETTINGS_MODULE": "monolith.settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "MONOLITH_VAR_DIR": str(ctx.work_dir / "var"),
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "DJANGO_USE_X_FORWARDED_HOST": "1",  # links name the proxy's host once it is in front
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(ctx.work_dir / "mail"),
        "PYTHONUNBUFFERED": "1",
    }


def run(ctx: DemoContext) -> None:
    ctx.env.update(monolith_env(ctx))
    ctx.run("migrate", ctx.python("-m", "monolith.manage", "migrate", "--noinput"))
    ctx.log(f"migrated {ctx.env['DATABASE_URL']}")
    output = ctx.run("seed", ctx.python("-m", "monolith.manage", "seed", "--scale", SCALE))
    summary = re.search(r"seeded (.*)", output)
    ctx.log(summary.group(0) if summary else output.strip())
    ctx.facts["database_url"] = ctx.env["DATABASE_URL"]
