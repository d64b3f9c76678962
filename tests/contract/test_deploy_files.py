"""The deployment files agree with the code and with each other.

No Docker engine runs where these tests run, so they check what holds without one:
compose.yaml against the Compose Specification's JSON Schema (vendored by check-jsonschema),
every COPY source of every image, and that ports, health paths, commands and database roles
are the same in `make run`'s process list (deploy/local/supervisord.conf), the Dockerfiles,
compose.yaml and deploy/k8s. supervisord itself reads the config scripts/run.py renders from
that list, and nginx checks the gateway config that deploy/gateway/run.py renders.
"""

from __future__ import annotations

import configparser
import copy
import functools
import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
GATEWAY = ROOT / "deploy" / "gateway"
LOCAL_RUN = ROOT / "deploy" / "local" / "supervisord.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


# --- sources of truth ------------------------------------------------------------------------


@functools.cache
def local_programs() -> dict[str, str]:
    """The command of each program `make run` starts (deploy/local/supervisord.conf)."""
    config = configparser.RawConfigParser()
    config.read_string(LOCAL_RUN.read_text())
    return {
        section.removeprefix("program:"): config[section]["command"]
        for section in config.sections()
        if section.startswith("program:")
    }


@functools.cache
def local_ports() -> dict[str, int]:
    """The port each service listens on when `make run` starts it."""
    ports = {}
    for name, command in local_programs().items():
        if match := re.search(r"--port (\d+)", command):
            ports[name] = int(match.group(1))
    return ports


def load_script(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def spec(service: str) -> Any:
    """The service's description (``tessera.<name>.app.SERVICE``): the source of truth."""
    return importlib.import_module(f"tessera.{service}.app").SERVICE


def prefix(service: str) -> str:
    """The path prefix a service serves under."""
    return str(spec(service).prefix)


def port(service: str) -> int:
    return local_ports()[service]


@functools.cache
def workspace_manifests() -> list[str]:
    """Every member's pyproject.toml: `uv sync --locked` needs all of them to check uv.lock."""
    members = [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]
    return sorted(str(p.relative_to(ROOT)) for p in members)


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@functools.cache
def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return docs


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in k8s_documents() if d["kind"] == kind}


# --- a small Dockerfile reader ---------------------------------------------------------------


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each stage, as (KEYWORD, arguments) with continuations joined."""
    stages: list[list[tuple[str, str]]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"{path}: an instruction before the first FROM"
        stages[-1].append((keyword.upper(), args.strip()))
    return stages


def arguments(args: str) -> list[str]:
    """Exec form (a JSON list) or shell words."""
    return json.loads(args) if args.startswith("[") else shlex.split(args)


def last(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def copy_sources(path: Path) -> list[str]:
    """The build-context paths a Dockerfile copies (COPY --from=... copies from elsewhere)."""
    sources = []
    for stage in dockerfile_stages(path):
        for keyword, args in stage:
            if keyword not in {"COPY", "ADD"}:
                continue
            words = arguments(args)
            flags = [w for w in words if w.startswith("--")]
            if any(f.startswith("--from=") for f in flags):
                continue
            paths = [w for w in words if not w.startswith("--")]
            sources.extend(paths[:-1])
    return sources


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def dockerignore_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not understood by this check"
        regex = re.escape(line.strip("/"))
        regex = regex.replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        patterns.append(re.compile(regex + "$"))
    return patterns


def is_dockerignored(relative: str) -> bool:
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(p.match(candidate) for p in dockerignore_patterns() for candidate in prefixes)


SERVICE_IMAGE = ROOT / "deploy" / "service" / "Dockerfile"
ALL_DOCKERFILES = ["deploy/service/Dockerfile", "deploy/gateway/Dockerfile"]


def for_service(args: str, service: str) -> str:
    """An instruction as it reads when built with ``--build-arg SERVICE=<service>``."""
    return args.replace("${SERVICE}", service).replace("$SERVICE", service)


def test_the_suite_has_the_services_the_deploy_files_describe():
    assert sorted(["auth", "applets", "answers", "mailer", "sync", "chat"]) == SERVICES
    assert set(local_ports()) == set(SERVICES)
    assert set(local_programs()) == {*SERVICES, "gateway"}


# --- make run: the suite under supervisord -----------------------------------------------------

HOUR_S = 3600


def rendered_local_run(run_dir: Path) -> Any:
    """The config scripts/run.py renders, as supervisord itself reads it."""
    conf = load_script(ROOT / "scripts" / "run.py").render(run_dir)
    assert conf == run_dir.resolve() / "supervisord.conf"
    assert "{{" not in conf.read_text()
    options = ServerOptions()
    options.configfile = str(conf)
    options.process_config(do_usage=False)
    return options.configroot.supervisord


def test_make_run_renders_a_foreground_supervisord_config_logging_to_stdout(tmp_path):
    options = rendered_local_run(tmp_path / "run")
    run_dir = (tmp_path / "run").resolve()
    assert options.nodaemon is True
    assert options.silent is True  # its log reaches stdout once, through logfile
    assert (options.logfile, options.logfile_maxbytes) == ("/dev/stdout", 0)
    assert Path(options.pidfile).parent == run_dir
    (server,) = options.server_configs
    assert server["family"] == socket.AF_UNIX
    assert server["file"] == f"{run_dir}/supervisord.sock"
    assert server["chmod"] == 0o700
    client = configparser.RawConfigParser()
    client.read(run_dir / "supervisord.conf")
    assert client["supervisorctl"]["serverurl"] == f"unix://{server['file']}"
    (group,) = options.process_group_configs
    assert {p.name for p in group.process_configs} == {*SERVICES, "gateway"}
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/run.py" in makefile
    assert "honcho" not in makefile
    assert not (ROOT / "Procfile").exists()


@pytest.mark.parametrize("program", [*SERVICES, "gateway"])
def test_make_run_restarts_each_process_with_a_growing_delay_and_absolute_paths(tmp_path, program):
    (group,) = rendered_local_run(tmp_path / "run").process_group_configs
    config = next(p for p in group.process_configs if p.name == program)
    assert config.autostart is True
    assert config.autorestart is RestartUnconditionally
    # a crash during start-up (a cold start of the suite takes ~35 s on 2 cores) is a quick
    # exit, so it backs off: 1 s, 2 s, 3 s... and is not given up within an hour
    assert config.startsecs >= 45
    assert sum(range(1, config.startretries + 1)) >= HOUR_S
    assert (config.stdout_logfile, config.stdout_logfile_maxbytes) == ("/dev/stdout", 0)
    assert config.redirect_stderr is True
    assert config.stopasgroup is True
    assert config.killasgroup is True
    assert config.stopwaitsecs <= 15  # Ctrl-C ends everything within seconds
    assert config.directory == str(ROOT)
    words = shlex.split(config.command)
    executable = Path(words[0])
    assert executable.is_absolute(), config.command
    assert os.access(executable, os.X_OK), config.command
    for word in words[1:]:
        if "/" in word:
            assert Path(word).is_absolute(), config.command
            assert Path(word).exists(), config.command
    bin_dir = Path(sys.prefix) / "bin"  # the workspace's .venv, as under make run
    if program == "gateway":
        assert words == [str(bin_dir / "python"), str(GATEWAY / "run.py")]
    else:
        assert words == [
            str(bin_dir / f"tessera-{program}"),
            "serve",
            "--port",
            str(port(program)),
        ]


def test_make_run_gateway_routes_to_the_ports_the_services_listen_on():
    defaults = load_script(GATEWAY / "run.py").DEFAULT_PORTS
    assert {name.lower(): p for name, p in defaults.items()} == local_ports()


def test_make_run_passes_dot_env_under_the_environment(tmp_path, monkeypatch):
    script = load_script(ROOT / "scripts" / "run.py")
    (tmp_path / ".env").write_text("MAILER__SMTP__PORT=2526\nGATEWAY_PORT=8181\n")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setenv("MAILER__SMTP__PORT", "2525")
    monkeypatch.delenv("GATEWAY_PORT", raising=False)
    env = script.environment()
    assert env["MAILER__SMTP__PORT"] == "2525"  # the environment wins, as in the settings
    assert env["GATEWAY_PORT"] == "8181"


# --- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES)
@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_copies_only_paths_that_exist_and_reach_the_build_context(dockerfile, service):
    sources = [for_service(source, service) for source in copy_sources(ROOT / dockerfile)]
    assert sources, f"{dockerfile} copies nothing from the build context"
    for source in sources:
        assert list(ROOT.glob(source)), f"{dockerfile}: COPY {source} does not exist"
        assert not is_dockerignored(source), f"{dockerfile}: COPY {source} is in .dockerignore"


def test_one_dockerfile_builds_every_service_and_refuses_to_build_without_one():
    assert not list(ROOT.glob("services/*/Dockerfile")), "one Dockerfile for every service"
    build = dockerfile_stages(SERVICE_IMAGE)[0]
    assert ("ARG", "SERVICE") in build
    guard = next(args for kw, args in build if kw == "RUN" and "SERVICE" in args)
    assert 'test -n "$SERVICE"' in guard
    assert "exit 1" in guard


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_installs_only_its_locked_dependencies_with_uv(service):
    stages = dockerfile_stages(SERVICE_IMAGE)
    assert len(stages) >= 2, "multi-stage: build with uv, run without it"
    for stage in stages:
        assert stage[0][1].split()[0] == "python:3.11-slim"
    build = stages[0]
    copies = [args for kw, args in build if kw == "COPY"]
    assert "--from=ghcr.io/astral-sh/uv:0.13 /uv /bin/uv" in copies
    env = env_of(build)
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_LINK_MODE"] == "copy"
    syncs = [for_service(args, service) for kw, args in build if kw == "RUN" and "uv sync" in args]
    assert syncs
    for sync in syncs:
        assert "uv sync --locked --no-dev" in sync
        assert f"--package tessera-{service}" in sync
    copied = [for_service(c, service) for c in copy_sources(SERVICE_IMAGE)]
    missing = [m for m in workspace_manifests() if m not in copied]
    assert not missing, f"uv sync --locked needs every workspace manifest; missing {missing}"
    others = [s for s in SERVICES if s != service]
    assert not [c for c in copied if any(c.startswith(f"services/{o}/src") for o in others)]


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_keeps_the_repo_layout_so_migrations_are_found(service):
    """app.py finds migrations at services/<name>/migrations next to its src directory."""
    stages = dockerfile_stages(SERVICE_IMAGE)
    copies = [arguments(for_service(args, service)) for kw, args in stages[0] if kw == "COPY"]
    for part in ("src", "migrations"):
        path = f"services/{service}/{part}"
        assert [path, path] in copies, f"COPY {path} {path} keeps the layout"
    assert ("WORKDIR", "/app") in stages[-1]
    assert ["--from=build", "/app", "/app"] in [
        arguments(args) for kw, args in stages[-1] if kw == "COPY"
    ]
    assert spec(service).migrations == ROOT / "services" / service / "migrations"


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_runs_unprivileged_serves_and_probes_the_service_port(service):
    stages = dockerfile_stages(SERVICE_IMAGE)
    final = stages[-1]
    user = last(final, "USER").split(":")[0]
    assert user not in {"root", "0"}
    assert any(kw == "RUN" and "useradd" in args and user in args for kw, args in final)
    link = next(args for kw, args in stages[0] if kw == "RUN" and "tessera-service" in args)
    assert "ln -s tessera-${SERVICE} /app/.venv/bin/tessera-service" in link
    assert last(final, "EXPOSE") == "${PORT}"
    assert arguments(last(final, "CMD")) == ["tessera-service", "serve", "--host", "0.0.0.0"]
    assert arguments(last(final, "HEALTHCHECK").split(" CMD ", 1)[1]) == [
        "tessera-service",
        "healthcheck",
    ]
    # what `serve` and `healthcheck` default to is the port `make run` and compose use
    assert spec(service).port == port(service)
    cli = importlib.import_module(f"tessera.{service}.cli").cli
    from typer.main import get_command

    commands = get_command(cli).commands  # type: ignore[attr-defined]
    for name in ("serve", "healthcheck"):
        [option] = [p for p in commands[name].params if p.name == "port"]
        assert option.default == port(service), f"{name} --port"


def test_gateway_image_runs_the_renderer_unprivileged_on_8080():
    final = dockerfile_stages(GATEWAY / "Dockerfile")[-1]
    assert last(final, "USER").split(":")[0] not in {"root", "0"}
    assert arguments(last(final, "CMD")) == ["python", "deploy/gateway/run.py"]
    assert (ROOT / "deploy/gateway/run.py").exists()
    env = env_of(final)
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert last(final, "EXPOSE") == env["GATEWAY_PORT"] == "8080"
    assert "http://127.0.0.1:8080/healthz" in last(final, "HEALTHCHECK")


def test_dockerignore_keeps_environments_history_and_secrets_out_of_the_context():
    for path in (
        ".venv",
        ".tools",
        ".git",
        ".run",
        ".env",
        "libs/common/src/x/__pycache__",
        ".ruff_cache",
    ):
        assert is_dockerignored(path), path
    for path in ("uv.lock", "libs/common/src", "services/auth/migrations", "deploy/gateway"):
        assert not is_dockerignored(path), path


# --- compose.yaml ----------------------------------------------------------------------------


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = get_builtin_schema("vendor.compose-spec")
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_conforms_to_the_compose_specification():
    assert compose_errors(compose()) == []


def test_compose_schema_check_catches_a_misspelt_key_and_a_bad_condition():
    broken = copy.deepcopy(compose())
    broken["services"]["auth"]["helthcheck"] = broken["services"]["auth"].pop("healthcheck")
    broken["services"]["chat"]["depends_on"]["chat-migrate"]["condition"] = "service_done"
    errors = compose_errors(broken)
    assert any("helthcheck" in e for e in errors), errors
    assert any("chat-migrate" in e for e in errors), errors


def test_every_compose_dependency_and_service_url_names_a_compose_service():
    services = compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for key, value in service.get("environment", {}).items():
            # a PUBLIC_URL is what a browser sees; every other URL is reached inside compose
            if isinstance(value, str) and "://" in value and not key.endswith("PUBLIC_URL"):
                host = urlsplit(value).hostname
                assert host in services, f"{name}: {key} points at {host}, not a service"
    env = services["auth"]["environment"]
    assert env["TESSERA__JWT__JWKS_URL"] == (
        f"http://auth:{port('auth')}{prefix('auth')}/.well-known/jwks.json"
    )
    assert services["mailer"]["environment"]["MAILER__SMTP__HOST"] == "mailpit"
    assert str(services["mailer"]["environment"]["MAILER__SMTP__PORT"]) == "1025"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_is_built_from_the_service_image_and_probed_on_its_port(service):
    definition = compose()["services"][service]
    assert definition["build"] == {
        "context": ".",
        "dockerfile": "deploy/service/Dockerfile",
        "args": {"SERVICE": service, "PORT": str(port(service))},
    }
    published = [str(p).rsplit(":", 1)[-1] for p in definition["ports"]]
    assert published == [str(port(service))]
    assert definition["healthcheck"]["test"] == ["CMD", "tessera-service", "healthcheck"]


@pytest.mark.parametrize("service", SERVICES)
def test_compose_service_starts_after_its_migration_with_the_same_database_role(service):
    services = compose()["services"]
    definition, migrate = services[service], services[f"{service}-migrate"]
    env_name = f"{service.upper()}__DATABASE__URL"
    url = urlsplit(definition["environment"][env_name])
    assert (url.scheme, url.hostname, url.port, url.path) == (
        "postgresql+asyncpg",
        "postgres",
        5432,
        "/tessera",
    )
    assert url.username == f"tessera_{service}"
    # bootstrap sets the role's password from this URL: the service must log in with the same
    assert migrate["environment"][env_name] == definition["environment"][env_name]
    assert migrate["image"] == definition["image"]
    assert migrate["build"] == definition["build"]
    assert migrate["command"] == [
        "sh",
        "-c",
        f"tessera-{service} db bootstrap && tessera-{service} db migrate",
    ]
    assert migrate["restart"] == "no"
    assert "TESSERA__ADMIN_DATABASE_URL" in migrate["environment"]
    assert not [k for k in definition["environment"] if "ADMIN_DATABASE_URL" in k]
    depends = definition["depends_on"]
    assert depends[f"{service}-migrate"] == {"condition": "service_completed_successfully"}
    for infra in ("postgres", "rabbitmq", "redis"):
        assert depends[infra] == {"condition": "service_healthy"}
        assert "healthcheck" in services[infra]


def test_compose_gateway_routes_to_every_service_port():
    gateway = compose()["services"]["gateway"]
    assert gateway["build"]["dockerfile"] == "deploy/gateway/Dockerfile"
    env = gateway["environment"]
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert [str(p) for p in gateway["ports"]] == [f"{env['GATEWAY_PORT']}:8080"]
    for service in SERVICES:
        assert env[f"{service.upper()}_UPSTREAM"] == f"{service}:{port(service)}"
        assert gateway["depends_on"][service] == {"condition": "service_healthy"}


def test_compose_brings_the_infrastructure_the_suite_expects():
    services = compose()["services"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert services["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert any(str(p).endswith(":16686") for p in services["jaeger"]["ports"])
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    assert {str(p).rsplit(":", 1)[-1] for p in services["mailpit"]["ports"]} == {"1025", "8025"}


# --- Kubernetes --------------------------------------------------------------------------------


def test_every_k8s_manifest_parses_and_is_listed_in_the_kustomization():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    for document in k8s_documents():
        assert {"apiVersion", "kind", "metadata"} <= document.keys(), document
        assert document["metadata"]["name"]
    images = {i["name"] for i in kustomization["images"]}
    assert images == {f"tessera/{s}" for s in SERVICES}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_manifests():
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout) if d]
    assert kinds.count("Deployment") == len(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_k8s_deployment_probes_readiness_and_liveness_on_the_service_port(service):
    deployment = k8s_objects("Deployment")[service]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"].split(":")[0] == f"tessera/{service}"
    assert container["ports"] == [{"name": "http", "containerPort": port(service)}]
    assert container["readinessProbe"]["httpGet"] == {
        "path": f"{prefix(service)}/readyz",
        "port": "http",
    }
    assert container["livenessProbe"]["httpGet"] == {
        "path": f"{prefix(service)}/healthz",
        "port": "http",
    }
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    env = {e["name"]: e for e in container.get("env", [])}
    ref = env[f"{service.upper()}__DATABASE__URL"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == f"{service}-database-url"
    assert not [name for name in env if "ADMIN_DATABASE_URL" in name]
    sources = container["envFrom"]
    assert {"configMapRef": {"name": "tessera-config"}} in sources
    svc = k8s_objects("Service")[service]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"] == [{"name": "http", "port": port(service), "targetPort": "http"}]


def test_k8s_references_resolve_to_defined_config_and_secret_keys():
    config = {n: set(d.get("data", {})) for n, d in k8s_objects("ConfigMap").items()}
    secrets = {
        n: set(d.get("stringData", {})) | set(d.get("data", {}))
        for n, d in k8s_objects("Secret").items()
    }
    pods = [
        d["spec"]["template"]["spec"] for d in k8s_documents() if d["kind"] in {"Deployment", "Job"}
    ]
    assert pods
    for pod in pods:
        for container in pod["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], ref
    jwks = urlsplit(k8s_objects("ConfigMap")["tessera-config"]["data"]["TESSERA__JWT__JWKS_URL"])
    assert (jwks.hostname, jwks.port) == ("auth", port("auth"))
    assert jwks.path == f"{prefix('auth')}/.well-known/jwks.json"


def test_k8s_migrate_job_bootstraps_and_migrates_every_service():
    (job,) = k8s_objects("Job").values()
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in {"OnFailure", "Never"}
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == set(SERVICES)
    for service, container in containers.items():
        assert container["image"].split(":")[0] == f"tessera/{service}"
        assert container["command"] == [
            "sh",
            "-c",
            f"tessera-{service} db bootstrap && tessera-{service} db migrate",
        ]
        env = {e["name"] for e in container["env"]}
        assert {f"{service.upper()}__DATABASE__URL", "TESSERA__ADMIN_DATABASE_URL"} <= env


def test_k8s_ingress_routes_every_prefix_and_keeps_chat_websockets_open():
    services = k8s_objects("Service")
    routes = {}
    for name, ingress in k8s_objects("Ingress").items():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["name"] in services
                port_names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
                assert backend["port"]["name"] in port_names
                assert path["pathType"] == "Prefix"
                routes[path["path"]] = (name, backend["name"])
    assert {p: svc for p, (_, svc) in routes.items()} == {prefix(s): s for s in SERVICES}
    chat_ingress = k8s_objects("Ingress")[routes[prefix("chat")][0]]
    annotations = chat_ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600


def test_k8s_ingress_lets_through_the_bodies_the_gateway_lets_through():
    template = (ROOT / "deploy" / "gateway" / "nginx.conf.template").read_text()
    larger = dict(re.findall(r"location /(\w+)/\s*\{\s*client_max_body_size (\S+);", template))
    assert larger  # the gateway has per-prefix limits (applets, sync)
    for name, ingress in k8s_objects("Ingress").items():
        size = ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/proxy-body-size")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                wanted = larger.get(path["path"].strip("/"))
                if wanted is not None:
                    assert size == wanted, (name, path["path"])
                elif size is not None:
                    assert size == "2m", (name, path["path"])  # GATEWAY_MAX_BODY's default


# --- the gateway -------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
@pytest.mark.parametrize("access_log", ["/dev/stdout", "off"])
def test_gateway_config_renders_and_nginx_accepts_it(tmp_path, access_log):
    env = {
        **os.environ,
        "GATEWAY_RUN_DIR": str(tmp_path / "gateway"),
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "8080",
        "GATEWAY_ACCESS_LOG": access_log,
    }
    rendered = subprocess.run(
        [sys.executable, str(GATEWAY / "run.py"), "--render-only"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    conf = Path(rendered.stdout.strip())
    assert conf == tmp_path / "gateway" / "nginx.conf"
    text = conf.read_text()
    assert "{{" not in text
    assert "listen 0.0.0.0:8080;" in text
    for service in SERVICES:
        assert f"location {prefix(service)}/" in text, f"the gateway does not route {service}"
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(conf.parent), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, None once it is gone (or a zombie)."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if rest[0] == "Z" else (rest[0], int(rest[2]))


def gateway_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _nginx_under(parent: int) -> tuple[int, list[int]]:
    """The nginx master that ``parent`` started, and the workers in its process group."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]

    def ppid(pid: int) -> int | None:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except OSError:
            return None

    [master] = [pid for pid in pids if ppid(pid) == parent]
    workers = [pid for pid in pids if pid != master and (proc_stat(pid) or ("", 0))[1] == master]
    return master, workers


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_sigkilled_gateway_leaves_nothing_holding_the_port_and_starts_again(tmp_path):
    """A master killed with SIGKILL: run.py ends its workers and dies the same way (what a
    supervisor logs and restarts on); run.py itself killed: the next start ends the master
    it left running. Either way the next gateway binds and answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gateway_port = s.getsockname()[1]
    env = {
        **os.environ,
        "GATEWAY_RUN_DIR": str(tmp_path / "gateway"),
        "GATEWAY_PORT": str(gateway_port),
        "GATEWAY_ACCESS_LOG": "off",
    }
    url = f"http://127.0.0.1:{gateway_port}/healthz"

    def start() -> subprocess.Popen[bytes]:
        # in a process group of its own, as supervisord starts every program
        return subprocess.Popen(
            [sys.executable, str(GATEWAY / "run.py")], env=env, cwd=ROOT, process_group=0
        )

    def wait(predicate: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    started: list[subprocess.Popen[bytes]] = []
    left: list[int] = []
    try:
        first = start()
        started.append(first)
        wait(lambda: gateway_answers(url), "the gateway")
        master, workers = _nginx_under(first.pid)
        left += [master, *workers]
        assert workers, "nginx started no worker in its group"
        os.kill(master, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL, "dies the way its master did"
        assert not any(proc_stat(pid) for pid in workers), "the workers went with it"

        second = start()
        started.append(second)
        wait(lambda: gateway_answers(url), "the restarted gateway")
        master, workers = _nginx_under(second.pid)
        left += [master, *workers]
        second.send_signal(signal.SIGKILL)  # run.py itself: its nginx goes on, unwatched
        second.wait(timeout=10)
        assert proc_stat(master), "the master outlived run.py"

        third = start()
        started.append(third)
        wait(lambda: not proc_stat(master), "the unwatched master to end")
        wait(lambda: gateway_answers(url), "the third gateway")
        third.terminate()
        assert third.wait(timeout=10) == 0, "SIGTERM is passed on and nginx stops cleanly"
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        for pid in left:
            if proc_stat(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("service", SERVICES)
def test_a_services_own_http_defaults_survive_a_deployments_http_setting(service, monkeypatch):
    """Every deployment sets ``TESSERA__HTTP__TRUSTED_PROXIES``; the service's own defaults
    for the rest of ``http`` (sync's and applets' larger body limits) must still hold."""
    settings_cls = importlib.import_module(f"tessera.{service}.settings").Settings
    for name in [n for n in os.environ if "HTTP__" in n]:
        monkeypatch.delenv(name)
    alone = settings_cls().http

    monkeypatch.setenv("TESSERA__HTTP__TRUSTED_PROXIES", '["10.0.0.0/8"]')
    deployed = settings_cls().http

    assert deployed.trusted_proxies == ["10.0.0.0/8"]
    assert deployed.model_dump(exclude={"trusted_proxies"}) == alone.model_dump(
        exclude={"trusted_proxies"}
    )
