"""The deployment files agree with the code and with each other.

No Docker engine runs where these tests run, so they check what holds without one:
compose.yaml against the Compose Specification's JSON Schema (vendored by check-jsonschema),
every COPY source of every image, and that ports, health paths, commands and database roles
are the same in the Procfile, the Dockerfiles, compose.yaml and deploy/k8s. nginx itself
checks the gateway config that deploy/gateway/run.py renders.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
GATEWAY = ROOT / "deploy" / "gateway"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


# --- sources of truth ------------------------------------------------------------------------


@functools.cache
def procfile_ports() -> dict[str, int]:
    """The port each service listens on when `make run` starts it (the Procfile)."""
    ports = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if match := re.search(r"--port (\d+)", command):
            ports[name.strip()] = int(match.group(1))
    return ports


@functools.cache
def prefix(service: str) -> str:
    """The path prefix a service serves under (its app module's PREFIX)."""
    return importlib.import_module(f"tessera.{service}.app").PREFIX


def port(service: str) -> int:
    return procfile_ports()[service]


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


ALL_DOCKERFILES = [f"services/{name}/Dockerfile" for name in SERVICES] + [
    "deploy/gateway/Dockerfile"
]


def test_the_suite_has_the_services_the_deploy_files_describe():
    assert sorted(["auth", "applets", "answers", "mailer", "sync", "chat"]) == SERVICES
    assert set(procfile_ports()) == set(SERVICES)


# --- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ALL_DOCKERFILES)
def test_dockerfile_copies_only_paths_that_exist_and_reach_the_build_context(dockerfile):
    sources = copy_sources(ROOT / dockerfile)
    assert sources, f"{dockerfile} copies nothing from the build context"
    for source in sources:
        assert list(ROOT.glob(source)), f"{dockerfile}: COPY {source} does not exist"
        assert not is_dockerignored(source), f"{dockerfile}: COPY {source} is in .dockerignore"


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_installs_only_its_locked_dependencies_with_uv(service):
    stages = dockerfile_stages(ROOT / "services" / service / "Dockerfile")
    assert len(stages) >= 2, "multi-stage: build with uv, run without it"
    for stage in stages:
        assert stage[0][1].split()[0] == "python:3.11-slim"
    build = stages[0]
    copies = [args for kw, args in build if kw == "COPY"]
    assert "--from=ghcr.io/astral-sh/uv:0.13 /uv /bin/uv" in copies
    env = env_of(build)
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_LINK_MODE"] == "copy"
    syncs = [args for kw, args in build if kw == "RUN" and "uv sync" in args]
    assert syncs
    for sync in syncs:
        assert "uv sync --locked --no-dev" in sync
        assert f"--package tessera-{service}" in sync
    copied = copy_sources(ROOT / "services" / service / "Dockerfile")
    missing = [m for m in workspace_manifests() if m not in copied]
    assert not missing, f"uv sync --locked needs every workspace manifest; missing {missing}"
    others = [s for s in SERVICES if s != service]
    assert not [c for c in copied if any(c.startswith(f"services/{o}/src") for o in others)]


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_keeps_the_repo_layout_so_migrations_are_found(service):
    """app.py finds migrations at services/<name>/migrations next to its src directory."""
    stages = dockerfile_stages(ROOT / "services" / service / "Dockerfile")
    copies = [arguments(args) for kw, args in stages[0] if kw == "COPY"]
    for part in ("src", "migrations"):
        path = f"services/{service}/{part}"
        assert [path, path] in copies, f"COPY {path} {path} keeps the layout"
    assert ("WORKDIR", "/app") in stages[-1]
    assert ["--from=build", "/app", "/app"] in [
        arguments(args) for kw, args in stages[-1] if kw == "COPY"
    ]
    migrations = importlib.import_module(f"tessera.{service}.app").MIGRATIONS
    assert migrations == ROOT / "services" / service / "migrations"


@pytest.mark.parametrize("service", SERVICES)
def test_service_image_runs_unprivileged_serves_and_probes_the_procfile_port(service):
    final = dockerfile_stages(ROOT / "services" / service / "Dockerfile")[-1]
    user = last(final, "USER").split(":")[0]
    assert user not in {"root", "0"}
    assert any(kw == "RUN" and "useradd" in args and user in args for kw, args in final)
    assert last(final, "EXPOSE") == str(port(service))
    assert arguments(last(final, "CMD")) == [
        f"tessera-{service}",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(port(service)),
    ]
    probe = arguments(last(final, "HEALTHCHECK").split(" CMD ", 1)[1])
    assert probe[:2] == ["python", "-c"]
    assert "urllib.request" in probe[2]
    assert f"'http://127.0.0.1:{port(service)}{prefix(service)}/healthz'" in probe[2]


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
    for path in (".venv", ".git", ".run", ".env", "libs/common/src/x/__pycache__", ".ruff_cache"):
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
def test_compose_service_is_built_from_its_dockerfile_and_probed_on_the_procfile_port(service):
    definition = compose()["services"][service]
    assert definition["build"] == {"context": ".", "dockerfile": f"services/{service}/Dockerfile"}
    published = [str(p).rsplit(":", 1)[-1] for p in definition["ports"]]
    assert published == [str(port(service))]
    probe = " ".join(definition["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port(service)}{prefix(service)}/healthz" in probe


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
