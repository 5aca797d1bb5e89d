"""The deployment files describe a stack that can actually start.

No Docker engine is needed: docker-compose.yml, the Dockerfile and .env.example are read
as data, and every command they run is resolved against the real code -- the Celery app
behind ``celery -A``, the WSGI callable behind ``gunicorn``, the management commands
behind ``python manage.py`` -- and parsed by that program's own option parser.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from django.core.management import CommandError, get_commands, load_command_class
from django.test import Client, override_settings
from gunicorn.config import Config as GunicornConfig

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS_FILE = ROOT / "earlywarning" / "settings.py"

APP_SERVICES = ("migrate", "import-public-data", "web", "worker", "beat")
# Started only after the one-shot ``migrate`` has finished successfully.
LONG_RUNNING_SERVICES = ("web", "worker", "beat")
BACKING_SERVICES = ("postgres", "redis", "mailpit")
# Read by docker-compose.yml itself (interpolation), not by the Django settings.
COMPOSE_ONLY_VARIABLES = {"POSTGRES_PASSWORD", "PUBLIC_DATA_HOST_DIR"}

_SETTINGS_READ = re.compile(r"""\benv_(?:str|bool|int|list|date)\(\s*["']([A-Z][A-Z0-9_]*)["']""")
_ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=")
_INTERPOLATION = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")
_ONLY_AN_INTERPOLATION = re.compile(r"^\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}$")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(?:^|_)KEY$")
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:(?P<password>[^@]*)@")
_SHELL_SEPARATORS = re.compile(r"&&|\|\||;")


# --- reading the files -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _split_shell(script: str) -> list[list[str]]:
    """The simple commands of a ``sh -c`` script (``a && b; c``), ``exec`` dropped."""
    argvs = []
    for part in _SHELL_SEPARATORS.split(script):
        argv = shlex.split(part)
        if argv and argv[0] == "exec":
            argv = argv[1:]
        if argv:
            argvs.append(argv)
    return argvs


def _argvs(command: str | list[str]) -> list[list[str]]:
    """Every program invocation in a Compose ``command`` or a Dockerfile CMD."""
    # Compose turns "$$" into a literal "$" before the container sees it.
    argv = [
        part.replace("$$", "$")
        for part in (shlex.split(command) if isinstance(command, str) else command)
    ]
    if len(argv) == 3 and argv[0] in {"sh", "/bin/sh", "bash"} and argv[1] == "-c":
        return _split_shell(argv[2])
    return [argv]


def _healthcheck_argvs(healthcheck: dict[str, Any]) -> list[list[str]]:
    test = healthcheck["test"]
    if isinstance(test, str):
        return _split_shell(test.replace("$$", "$"))
    kind, *rest = test
    if kind == "CMD-SHELL":
        return _split_shell(rest[0].replace("$$", "$"))
    if kind == "CMD":
        return [[part.replace("$$", "$") for part in rest]]
    return []


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _dockerfile(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, in order."""
    return [arguments for found, arguments in _dockerfile_instructions() if found == keyword]


def _dockerfile_process() -> list[str]:
    """ENTRYPOINT + CMD of the image, exec form, as the container would run them."""
    found = dict(_dockerfile_instructions())  # the last of each instruction wins
    argv: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        if keyword in found:
            value = json.loads(found[keyword])  # shell form would not parse: exec form only
            assert isinstance(value, list), f"{keyword} must use the exec (JSON) form"
            argv += value
    return argv


def _all_invocations(services: dict[str, dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """(where, argv) for every command and health check of the app, and the image's CMD."""
    for name in APP_SERVICES:
        service = services[name]
        if "command" in service:
            for argv in _argvs(service["command"]):
                yield f"{name}.command", argv
        if "healthcheck" in service:
            for argv in _healthcheck_argvs(service["healthcheck"]):
                yield f"{name}.healthcheck", argv
    yield "Dockerfile CMD", _dockerfile_process()


def _is_manage_py(argv: list[str]) -> bool:
    return len(argv) >= 2 and argv[0] in {"python", "python3"} and argv[1] == "manage.py"


def _env_example_variables() -> dict[str, bool]:
    """Variable name -> whether it is set (True) or only documented as ``# NAME=``."""
    variables: dict[str, bool] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match:
            variables[match.group(2)] = match.group(1) is None
    return variables


def _settings_variables() -> set[str]:
    return set(_SETTINGS_READ.findall(SETTINGS_FILE.read_text()))


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return {key: str(value) for key, value in environment.items()}


# --- docker-compose.yml: shape ------------------------------------------------------------


def test_compose_file_uses_the_compose_spec_without_a_version_key(compose: dict[str, Any]):
    assert "version" not in compose


def test_compose_defines_every_service_of_the_stack(services: dict[str, dict[str, Any]]):
    missing = {*BACKING_SERVICES, *APP_SERVICES} - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_backing_services_run_the_agreed_major_versions(services: dict[str, dict[str, Any]]):
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["mailpit"]["image"].split(":")[0] == "axllent/mailpit"


def test_postgres_keeps_its_data_in_a_named_volume(compose: dict[str, Any]):
    volumes = compose["services"]["postgres"].get("volumes", [])
    sources = [
        str(entry).split(":")[0]
        for entry in volumes
        if str(entry).endswith(":/var/lib/postgresql/data")
    ]
    assert sources, "postgres has no volume on /var/lib/postgresql/data"
    assert sources[0] in (compose.get("volumes") or {}), "postgres data is not in a named volume"


def test_app_services_share_one_build_and_image(services: dict[str, dict[str, Any]]):
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in APP_SERVICES}
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(builds) == 1, f"migrate/web/worker/beat build differently: {builds}"
    assert len(images) == 1, f"migrate/web/worker/beat use different images: {images}"
    assert services["web"].get("build") is not None
    assert None not in images


def test_app_services_share_environment_and_env_file(services: dict[str, dict[str, Any]]):
    environments = [_environment(services[name]) for name in APP_SERVICES]
    assert all(environment == environments[0] for environment in environments)
    for name in APP_SERVICES:
        assert services[name].get("env_file") in (".env", [".env"]), name
    environment = environments[0]
    assert environment["DATABASE_URL"].startswith("postgres://"), environment["DATABASE_URL"]
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert environment["EMAIL_HOST"] == "mailpit"
    # One cache for every web worker: throttles and the sign-in lockout count once.
    assert environment["CACHE_URL"].startswith("redis://redis:6379/")
    assert environment["CACHE_URL"] != environment["CELERY_BROKER_URL"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_waits_for_healthy_postgres_and_redis(
    services: dict[str, dict[str, Any]], name: str
):
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on must be the long form"
    for backing in ("postgres", "redis"):
        assert depends_on.get(backing, {}).get("condition") == "service_healthy", (
            f"{name} does not wait for {backing} to be healthy"
        )


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_long_running_services_start_after_migrate_succeeded(
    services: dict[str, dict[str, Any]], name: str
):
    condition = services[name]["depends_on"].get("migrate", {}).get("condition")
    assert condition == "service_completed_successfully", (
        f"{name} can start before the schema is migrated"
    )


def test_migrate_runs_once_and_loads_the_reference_data(services: dict[str, dict[str, Any]]):
    migrate = services["migrate"]
    # A one-shot: restarting it after it exits 0 would keep it (and its dependants) cycling.
    assert migrate.get("restart", "no") in {"no", "on-failure"}
    steps = [argv[2] for argv in _argvs(migrate["command"]) if _is_manage_py(argv)]
    # The cache table right after the schema, wherever migrations run (CACHE_URL unset).
    assert steps == ["migrate", "createcachetable", "load_countries", "load_framework"]


def test_the_public_data_is_mounted_read_only_where_the_settings_look(
    services: dict[str, dict[str, Any]],
):
    for name in APP_SERVICES:
        mounts = [str(entry) for entry in services[name].get("volumes", [])]
        data = [m for m in mounts if ":/data/public" in m]
        assert data, f"{name} does not mount the public data: {mounts}"
        assert data[0].endswith(":/data/public:ro"), f"{name} mounts it writable: {mounts}"
        assert _environment(services[name])["PUBLIC_DATA_DIR"] == "/data/public"


def test_the_public_data_is_imported_after_migrate_and_nothing_waits_for_it(
    services: dict[str, dict[str, Any]],
):
    importer = services["import-public-data"]
    assert importer["command"] == "python manage.py import_public_data"
    assert importer["restart"] == "no"
    assert importer["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in LONG_RUNNING_SERVICES:
        assert "import-public-data" not in services[name]["depends_on"], name


def test_make_run_creates_the_cache_table_right_after_migrating():
    commands = re.findall(r"manage\.py (\w+)", (ROOT / "Makefile").read_text())
    assert commands[commands.index("migrate") + 1] == "createcachetable"


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_long_running_services_leave_migrating_to_the_migrate_service(
    services: dict[str, dict[str, Any]], name: str
):
    commands = [argv for argv in _argvs(services[name]["command"]) if _is_manage_py(argv)]
    assert not [argv for argv in commands if argv[2] == "migrate"], f"{name} migrates itself"


def test_every_service_but_beat_has_a_healthcheck(services: dict[str, dict[str, Any]]):
    for name, service in services.items():
        if name in {"beat", "migrate", "import-public-data"}:
            # Nothing to probe: beat serves nothing, the one-shots exit.
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} has its healthcheck disabled"
        assert _healthcheck_argvs(healthcheck), f"{name}'s healthcheck runs nothing"


def test_backing_service_healthchecks_use_the_agreed_probes(
    services: dict[str, dict[str, Any]],
):
    postgres_probe = _healthcheck_argvs(services["postgres"]["healthcheck"])[0]
    redis_probe = _healthcheck_argvs(services["redis"]["healthcheck"])[0]
    assert postgres_probe[0] == "pg_isready"
    assert redis_probe[:2] == ["redis-cli", "ping"]


def test_web_publishes_the_port_gunicorn_binds(services: dict[str, dict[str, Any]]):
    gunicorn = [argv for argv in _argvs(services["web"]["command"]) if argv[0] == "gunicorn"]
    assert len(gunicorn) == 1, "web must end by starting gunicorn"
    options = GunicornConfig().parser().parse_args(gunicorn[0][1:])
    assert options.bind == ["0.0.0.0:8000"]
    assert "8000:8000" in [str(port) for port in services["web"].get("ports", [])]


def test_web_healthcheck_requests_a_url_that_django_serves(
    services: dict[str, dict[str, Any]],
):
    (probe,) = _healthcheck_argvs(services["web"]["healthcheck"])
    assert probe[:2] == ["python", "-c"], "python:3.11-slim has no curl; probe with urllib"
    urls = re.findall(r"http://127\.0\.0\.1:8000(/[^'\"\s]*)", probe[2])
    assert urls, "the web healthcheck does not request http://127.0.0.1:8000/..."
    assert "'X-Forwarded-Proto': 'https'" in probe[2], (
        "the probe must say it came over HTTPS, or the SSL redirect answers it with a 301"
    )
    client = Client()
    # With production's SSL redirect on, as in the stack.
    with override_settings(SECURE_SSL_REDIRECT=True):
        for path in urls:
            plain = client.get(path)
            assert plain.status_code == 301, "SSL redirect is off: this test proves nothing"
            # As the probe does: X-Forwarded-Proto keeps the redirect out of the way.
            response = client.get(path, headers={"X-Forwarded-Proto": "https"})
            assert response.status_code == 200, (
                f"the web healthcheck requests {path}, which answers {response.status_code}"
            )


def test_env_example_allows_the_host_the_web_healthcheck_uses():
    allowed = [
        line.partition("=")[2].split(",")
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.startswith("ALLOWED_HOSTS=")
    ]
    assert allowed, "ALLOWED_HOSTS is not set in .env.example"
    assert "127.0.0.1" in [host.strip() for host in allowed[-1]]


# --- docker-compose.yml: no secrets -------------------------------------------------------


def test_compose_file_contains_no_literal_secret(services: dict[str, dict[str, Any]]):
    for service_name, service in services.items():
        for key, value in _environment(service).items():
            if _SECRET_NAME.search(key):
                assert _ONLY_AN_INTERPOLATION.match(value), (
                    f"{service_name}.{key} is a literal value, not a ${{...}} interpolation"
                )
            url = _URL_PASSWORD.match(value)
            if url:
                assert _ONLY_AN_INTERPOLATION.match(url.group("password")), (
                    f"{service_name}.{key} embeds a literal password"
                )


def test_required_secrets_fail_loudly_when_missing_from_env(services: dict[str, dict[str, Any]]):
    text = COMPOSE_FILE.read_text()
    for name in ("POSTGRES_PASSWORD", "SECRET_KEY"):
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"docker-compose.yml never reads {name}"
        assert all(use.startswith(":?") for use in uses), (
            f"every ${{{name}}} must be ${{{name}:?message}} so compose refuses to start without it"
        )


# --- docker-compose.yml and the Dockerfile: every command is real --------------------------


def test_every_app_command_is_one_these_checks_understand(services: dict[str, dict[str, Any]]):
    # Guards the checks below: a command they do not recognise would go unchecked.
    for where, argv in _all_invocations(services):
        if where.endswith("healthcheck"):
            continue
        assert argv, f"{where} is empty"
        assert argv[0] in {"celery", "gunicorn"} or _is_manage_py(argv), (
            f"{where} runs {shlex.join(argv)!r}, which no deployment check resolves"
        )


def test_every_celery_command_names_a_real_app(services: dict[str, dict[str, Any]]):
    top_level = {
        option: parameter
        for parameter in celery_cli.params
        for option in (*parameter.opts, *parameter.secondary_opts)
    }
    celery_invocations = [
        (where, argv) for where, argv in _all_invocations(services) if argv[0] == "celery"
    ]
    assert {where.split(".")[0] for where, _ in celery_invocations} >= {"worker", "beat"}
    for where, argv in celery_invocations:
        app_name, index = None, 1
        while index < len(argv) and argv[index].startswith("-"):
            option, has_value, value = argv[index].partition("=")
            parameter = top_level.get(option)
            assert parameter is not None, f"{where}: celery has no option {option}"
            if not getattr(parameter, "is_flag", False) and not has_value:
                index += 1
                value = argv[index]
            if parameter.name == "app":
                app_name = value
            index += 1
        assert app_name, f"{where}: no -A/--app"
        app = find_app(app_name)  # what `celery -A` itself does
        assert isinstance(app, Celery), f"{where}: -A {app_name} is {app!r}, not a Celery app"

        subcommand, arguments = argv[index], argv[index + 1 :]
        assert subcommand in celery_cli.commands, f"{where}: celery has no command {subcommand}"
        parent = click.Context(
            celery_cli,
            info_name="celery",
            obj=CLIContext(app=app, no_color=True, workdir=None, quiet=True),
        )
        try:
            celery_cli.commands[subcommand].make_context(subcommand, list(arguments), parent=parent)
        except click.ClickException as error:
            pytest.fail(f"{where}: {shlex.join(argv)!r} is rejected by celery: {error}")


def test_every_gunicorn_command_names_a_callable_wsgi_application(
    services: dict[str, dict[str, Any]],
):
    gunicorn_invocations = [
        (where, argv) for where, argv in _all_invocations(services) if argv[0] == "gunicorn"
    ]
    assert {where for where, _ in gunicorn_invocations} >= {"web.command", "Dockerfile CMD"}
    for where, argv in gunicorn_invocations:
        try:
            options = GunicornConfig().parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{where}: gunicorn rejects {shlex.join(argv)!r}")
        assert len(options.args) == 1, f"{where}: expected one APP_MODULE, got {options.args}"
        module_name, _, attribute = options.args[0].partition(":")
        module = importlib.import_module(module_name)
        application = getattr(module, attribute or "application", None)
        assert callable(application), f"{where}: {options.args[0]} is not a callable"


def test_every_manage_py_command_is_a_real_management_command(
    services: dict[str, dict[str, Any]],
):
    manage_py_invocations = [
        (where, argv) for where, argv in _all_invocations(services) if _is_manage_py(argv)
    ]
    named = {argv[2] for _, argv in manage_py_invocations}
    assert {"migrate", "load_countries", "load_framework"} <= named
    commands = get_commands()
    missing = sorted({argv[2] for where, argv in manage_py_invocations if argv[2] not in commands})
    assert not missing, f"no such management command(s): {missing}"
    for where, argv in manage_py_invocations:
        name, arguments = argv[2], argv[3:]
        command = load_command_class(commands[name], name)
        try:
            command.create_parser("manage.py", name).parse_args(arguments)
        except CommandError as error:
            pytest.fail(f"{where}: {shlex.join(argv)!r} is rejected: {error}")


def test_dockerfile_runs_collectstatic_with_the_project_manage_py():
    runs = _dockerfile("RUN")
    collect = [run for run in runs if "manage.py collectstatic" in run]
    assert collect, "the image does not collect static files at build time"
    assert "--noinput" in collect[0]
    assert "collectstatic" in get_commands()


# --- Dockerfile -------------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_slim():
    froms = _dockerfile("FROM")
    assert froms, "the Dockerfile has no FROM"
    assert froms[-1].split()[0] == "python:3.11-slim"


def test_dockerfile_installs_the_project_from_pyproject():
    instructions = _dockerfile_instructions()
    copies = " ".join(arguments for keyword, arguments in instructions if keyword == "COPY")
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert "pyproject.toml" in copies or re.search(r"(^|\s)\.\s", copies)
    assert any(re.search(r"pip install --no-cache-dir \.(\s|$)", run) for run in runs)


def test_dockerfile_runs_as_a_non_root_user():
    users = _dockerfile("USER")
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_bakes_no_secret_key_into_the_image():
    for keyword, arguments in _dockerfile_instructions():
        if keyword == "ENV":
            assert "SECRET_KEY" not in arguments, "SECRET_KEY must not be an ENV of the image"


def test_dockerfile_exposes_the_gunicorn_port():
    exposed = _dockerfile("EXPOSE")
    assert any("8000" in arguments.split() for arguments in exposed)
    options = GunicornConfig().parser().parse_args(_dockerfile_process()[1:])
    assert options.bind == ["0.0.0.0:8000"]
    assert options.workers == 2


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {
        line.strip().removeprefix("**/").rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {
        ".venv",
        ".git",
        "db.sqlite3",
        "staticfiles",
        "__pycache__",
        "*.pyc",
        ".pytest_cache",
        "artifacts",
        ".env",
    }
    assert not required - patterns, f".dockerignore lacks {sorted(required - patterns)}"


# --- .env.example -----------------------------------------------------------------------


def test_env_example_documents_every_variable_the_settings_read():
    read = _settings_variables()
    assert len(read) >= 20, f"the settings scan found too few variables: {sorted(read)}"
    undocumented = read - set(_env_example_variables())
    assert not undocumented, f".env.example lacks {sorted(undocumented)}"


def test_env_example_lists_only_variables_something_reads():
    documented = set(_env_example_variables())
    unused = documented - _settings_variables() - COMPOSE_ONLY_VARIABLES
    assert not unused, f".env.example documents variables nothing reads: {sorted(unused)}"


def test_compose_only_variables_are_read_by_the_compose_file():
    interpolated = set(_INTERPOLATION.findall(COMPOSE_FILE.read_text()))
    assert interpolated <= set(_env_example_variables()), (
        f"docker-compose.yml needs {sorted(interpolated - set(_env_example_variables()))}, "
        "which .env.example does not document"
    )
    assert interpolated >= COMPOSE_ONLY_VARIABLES


def test_env_example_sets_the_variables_compose_requires():
    variables = _env_example_variables()
    required = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?", COMPOSE_FILE.read_text()))
    assert required, "docker-compose.yml requires nothing from .env"
    unset = sorted(name for name in required if not variables.get(name))
    assert not unset, f"cp .env.example .env would leave {unset} unset"


def test_env_example_documents_each_variable_with_a_comment():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if _ENV_LINE.match(line):
            previous = lines[number - 1] if number else ""
            has_comment = previous.startswith("#") and not _ENV_LINE.match(previous)
            assert has_comment, f".env.example line {number + 1} ({line!r}) has no comment above"


def test_env_example_values_are_placeholders_not_secrets():
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match and match.group(1) is None and _SECRET_NAME.search(match.group(2)):
            value = line.partition("=")[2]
            assert value == "" or "change-me" in value, (
                f"{match.group(2)} in .env.example looks like a real secret: {value!r}"
            )


# --- production settings ------------------------------------------------------------------


def _env_file() -> dict[str, str]:
    """The variables ``cp .env.example .env`` sets (what compose's env_file passes on)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = _ENV_LINE.match(line)
        if match and match.group(1) is None:
            values[match.group(2)] = line.partition("=")[2]
    return values


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:?message} and ${NAME:-default}, from ``variables``."""
    return re.sub(
        r"\$\{([A-Z][A-Z0-9_]*)(?::?([-?])([^}]*))?\}",
        lambda m: variables.get(m.group(1)) or (m.group(3) if m.group(2) == "-" else ""),
        value,
    )


def _web_environment(services: dict[str, dict[str, Any]], **dotenv: str) -> dict[str, str]:
    """The web container's environment: .env (from .env.example, with ``dotenv`` put in
    as an operator would), then the service's own environment on top."""
    variables = {**_env_file(), **dotenv}
    own = {k: _interpolate(v, variables) for k, v in _environment(services["web"]).items()}
    return {**variables, **own}


def _run_manage_py(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environment},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_with_the_compose_web_environment(
    services: dict[str, dict[str, Any]],
):
    environment = _web_environment(
        services,
        SECRET_KEY=secrets.token_urlsafe(50),
        POSTGRES_PASSWORD=secrets.token_urlsafe(20),
    )
    assert environment["DEBUG"] == "false"
    result = _run_manage_py(environment, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout, output
    assert "WARNINGS" not in output, output


def test_the_stack_refuses_to_start_with_the_example_secret_key(
    services: dict[str, dict[str, Any]],
):
    # An operator who copied .env.example and only set the database password.
    environment = _web_environment(services, POSTGRES_PASSWORD=secrets.token_urlsafe(20))
    assert environment["SECRET_KEY"] == _env_file()["SECRET_KEY"]
    result = _run_manage_py(environment, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is a placeholder" in result.stderr
