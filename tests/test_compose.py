"""docker-compose.yml stays consistent as services are added (no Docker engine runs here).

The checks are generic: they look at whatever services the file declares, so the catalog
service, relay, consumers and proxy are held to the same rules when they arrive.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("analyzer", "strangler", "monolith", "extracted")
# Settings whose embedded default (SQLite, local broker, dev key) must never reach production.
PRODUCTION_SENSITIVE = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SECRET_KEY",
    "KAFKA_BOOTSTRAP_SERVERS",
}
# Variables read by Python, Django or Celery themselves rather than by our code.
READ_BY_TOOLS = {"DJANGO_SETTINGS_MODULE", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PATH"}
ENV_READ = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|os\.environ\[|env_\w+)\(?\s*["']([A-Z][A-Z0-9_]*)["']"""
)
DJANGO_COMMAND = re.compile(r"\b([A-Za-z_][\w.]*?)\.(?:manage|wsgi|asgi)\b")
CELERY_COMMAND = re.compile(r"\bcelery\s+(?:-A|--app)[ =]([\w.]+)")
RESTART_POLICIES = {"always", "unless-stopped", "no"}  # plus on-failure[:N]
UNSET_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def as_text(value) -> str:
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else str(value)


def dependencies(service: dict) -> dict[str, dict]:
    depends = service.get("depends_on") or {}
    return {name: {} for name in depends} if isinstance(depends, list) else dict(depends)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published_ports(service: dict) -> list[tuple[str, int, str]]:
    """(host ip, host port, protocol) for every port published on the host."""
    published = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published"):
                ip, proto = port.get("host_ip", "0.0.0.0"), port.get("protocol", "tcp")
                published.append((ip, int(port["published"]), proto))
            continue
        spec, _, proto = str(port).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) == 1:
            continue  # container port only: Docker picks a free host port
        ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        first, _, last = parts[-2].partition("-")
        for number in range(int(first), int(last or first) + 1):
            published.append((ip, number, proto or "tcp"))
    return published


def clashes(a: tuple[str, int, str], b: tuple[str, int, str]) -> bool:
    """Two published ports collide on the same number and protocol unless bound to other IPs."""
    same_port = a[1:] == b[1:]
    return same_port and (a[0] == b[0] or "0.0.0.0" in (a[0], b[0]))


def named_volumes(service: dict) -> set[str]:
    names = set()
    for volume in service.get("volumes") or []:
        source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
        kind = volume.get("type", "volume") if isinstance(volume, dict) else "volume"
        if kind == "volume" and source and not source.startswith(("/", ".", "~", "$")):
            names.add(source)
    return names


def django_projects(service: dict) -> set[str]:
    """Python packages whose Django settings the service's command loads."""
    command = as_text(service.get("command")) + " " + as_text(service.get("entrypoint"))
    projects = set(DJANGO_COMMAND.findall(command)) | set(CELERY_COMMAND.findall(command))
    settings_module = environment(service).get("DJANGO_SETTINGS_MODULE")
    if settings_module:
        projects.add(settings_module.rsplit(".", 1)[0])
    return projects


def env_read_by_settings(project: str, root: Path) -> set[str]:
    settings = root / project.replace(".", "/") / "settings.py"
    return set(ENV_READ.findall(settings.read_text())) if settings.exists() else set()


def env_read_anywhere(root: Path) -> set[str]:
    names: set[str] = set()
    for directory in CODE_DIRS:
        for path in (root / directory).rglob("*.py"):
            names |= set(re.findall(r"""["']([A-Z][A-Z0-9_]{2,})["']""", path.read_text()))
    return names


def project_images(services: dict) -> set[str]:
    return {s["image"] for s in services.values() if "build" in s and "image" in s}


def compose_problems(doc: dict, raw: str, root: Path) -> list[str]:
    """Every inconsistency in a compose document, one message per problem."""
    services: dict[str, dict] = doc.get("services") or {}
    declared_volumes = set(doc.get("volumes") or {})
    ours = project_images(services)
    known_env = env_read_anywhere(root) | READ_BY_TOOLS
    problems: list[str] = []
    used_volumes: set[str] = set()
    host_ports: dict[tuple[str, int, str], str] = {}

    for name, service in services.items():
        if "image" not in service and "build" not in service:
            problems.append(f"{name}: has neither image nor build")
        image = service.get("image", "")
        if image and "build" not in service and image not in ours:
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if tag in ("", "latest"):
                problems.append(f"{name}: image {image!r} is not pinned to a version")
        if "build" in service:
            build = service["build"]
            context = root / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = (
                "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            )
            if not (context / dockerfile).exists():
                problems.append(f"{name}: build needs {context / dockerfile}, which is missing")
        if "healthcheck" not in service:
            problems.append(f"{name}: has no healthcheck")
        restart = str(service.get("restart", ""))
        if restart not in RESTART_POLICIES and not restart.startswith("on-failure"):
            problems.append(
                f"{name}: has no restart policy (a crash or a host reboot leaves it down); "
                'set restart: unless-stopped, or restart: "no" for a one-shot job'
            )
        for target, options in dependencies(service).items():
            if target not in services:
                problems.append(f"{name}: depends_on {target!r}, which is not a service")
            elif (options or {}).get("condition") == "service_healthy" and (
                "healthcheck" not in services[target]
            ):
                problems.append(f"{name}: waits for {target} to be healthy; it has no healthcheck")
        volumes = named_volumes(service)
        used_volumes |= volumes
        problems += [
            f"{name}: volume {v!r} is not declared under top-level volumes"
            for v in sorted(volumes - declared_volumes)
        ]
        for port in published_ports(service):
            clash = next(
                (owner for other, owner in host_ports.items() if clashes(port, other)), None
            )
            if clash:
                problems.append(
                    f"{name}: host port {port[1]}/{port[2]} is already published by {clash}"
                )
            host_ports[port] = name
        env = environment(service)
        for project in sorted(django_projects(service)):
            for var in sorted(env_read_by_settings(project, root) & PRODUCTION_SENSITIVE):
                if var not in env:
                    problems.append(f"{name}: runs {project} but does not set {var}")
        if image in ours or "build" in service:
            problems += [
                f"{name}: sets {var}, which no code in {', '.join(CODE_DIRS)} reads (typo?)"
                for var in sorted(set(env) - known_env)
            ]
    problems += [
        f"volume {v!r} is declared but no service uses it"
        for v in sorted(declared_volumes - used_volumes)
    ]
    problems += [
        f"${{{var}}} has no default; write ${{{var}:-value}}"
        for var in sorted(set(UNSET_INTERPOLATION.findall(raw)))
    ]
    return problems


@pytest.fixture(scope="module")
def compose() -> tuple[dict, str]:
    raw = (ROOT / "docker-compose.yml").read_text()
    return yaml.safe_load(raw), raw


def test_compose_file_is_consistent(compose):
    doc, raw = compose
    assert compose_problems(doc, raw, ROOT) == []


def test_stack_has_the_parts_production_needs(compose):
    services = compose[0]["services"]
    images = {s.get("image", "").split(":")[0] for s in services.values()}
    assert {"postgres", "redis", "apache/kafka"} <= images
    kafka = next(s for s in services.values() if s.get("image", "").startswith("apache/kafka"))
    assert "controller" in environment(kafka)["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    commands = [as_text(s.get("command")) for s in services.values()]
    assert any("gunicorn monolith.wsgi" in c and "migrate" in c and "seed" in c for c in commands)
    assert any(re.search(r"celery -A monolith worker", c) for c in commands)
    assert any(re.search(r"celery -A monolith beat", c) for c in commands)


def test_checker_reports_each_kind_of_mistake(tmp_path):
    """The consistency check must catch what it claims to, or the test above proves nothing."""
    (tmp_path / "monolith").mkdir()
    (tmp_path / "monolith" / "settings.py").write_text(
        "import os\n"
        'DB = os.environ.get("DATABASE_URL")\n'
        'KEY = os.environ.get("DJANGO_SECRET_KEY")\n'
    )
    broken = {
        "services": {
            "web": {
                "build": ".",
                "image": "me/web:dev",
                "command": "gunicorn monolith.wsgi",
                "environment": {"DATABASE_URL": "x", "DATABSE_URL": "typo"},
                "ports": ["8000:8000"],
                "volumes": ["data:/data"],
                "depends_on": {"db": {"condition": "service_healthy"}, "cache": {}},
                "restart": "unless-stopped",
            },
            "db": {"image": "postgres", "ports": ["127.0.0.1:8000:5432"]},
        },
        "volumes": {"unused": None},
    }
    problems = compose_problems(broken, "password: ${SECRET}", tmp_path)
    expected = [
        "web: build needs",
        "web: has no healthcheck",
        "web: waits for db to be healthy; it has no healthcheck",
        "web: depends_on 'cache', which is not a service",
        "web: volume 'data' is not declared",
        "web: runs monolith but does not set DJANGO_SECRET_KEY",
        "web: sets DATABSE_URL, which no code",
        "db: image 'postgres' is not pinned",
        "db: has no healthcheck",
        "db: host port 8000/tcp is already published by web",
        "db: has no restart policy",
        "volume 'unused' is declared but no service uses it",
        "${SECRET} has no default",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected), problems


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        (["8000:8000"], [("0.0.0.0", 8000, "tcp")]),
        (["127.0.0.1:5432:5432/udp"], [("127.0.0.1", 5432, "udp")]),
        (["9000-9001:9000-9001"], [("0.0.0.0", 9000, "tcp"), ("0.0.0.0", 9001, "tcp")]),
        (["8080"], []),
        ([{"target": 80, "published": 8081}], [("0.0.0.0", 8081, "tcp")]),
    ],
)
def test_port_syntaxes_are_understood(ports, expected):
    assert published_ports({"ports": ports}) == expected
