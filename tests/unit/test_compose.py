"""docker-compose.yml: validated by the real `docker compose config` (built from the Go module),
twin of every native service, same config files and versions, pinned images, health-gated.

There is no Docker engine here: these tests check the file and the compose-only code paths;
the stack itself runs natively (tests/integration).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from lakehouse.config.paths import repo_root
from lakehouse.config.secrets import KEYS
from lakehouse.config.settings import PORT_FIELDS, Settings, env_name
from lakehouse.config.versions import Versions, parse_env_file
from lakehouse.launcher import compose
from lakehouse.launcher.services.base import twin

ROOT = repo_root()
VERSIONS_FILE = ROOT / "versions.env"
RAW: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = RAW["services"]
DOCKERFILES = {
    "app/Dockerfile": ["PYTHON_IMAGE"],
    "connect/Dockerfile": [],
    "minio/Dockerfile": ["GO_IMAGE", "PYTHON_IMAGE", "MINIO_MODULE", "MINIO_VERSION"],
    "superset/Dockerfile": ["SUPERSET_VERSION"],
}


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    """What `docker compose config` makes of the file, with a freshly generated .env."""
    s = Settings()
    return compose.resolved(ROOT, s.cache, Versions.load(VERSIONS_FILE))


def one_shot(name: str) -> bool:
    return SERVICES[name].get("restart") == "no"


@pytest.fixture(scope="module")
def natives(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from lakehouse.launcher.stack import Stack

    # scale-out lists every service: the single-process ones and the cluster's
    every = Settings(home=tmp_path_factory.mktemp("home"), scale_out=True)
    return [svc.name for svc in Stack(every).services]


def test_docker_compose_config_accepts_the_file(model: dict[str, Any]) -> None:
    assert set(model["services"]) == set(SERVICES)
    # every profile was resolved, the scale-out ones too
    assert {"spark-master", "spark-worker"} <= set(model["services"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("condition: service_healthy", "condition: service_hapy"), "condition value must be one of"),
        (("      kafka: {condition: service_healthy}", "      kafak: {condition: service_healthy}"), "kafak"),
        (("${TRINO_VERSION:?run make compose-env}", "${TRINO_VERSON:?run make compose-env}"), "TRINO_VERSON"),
    ],
)
def test_docker_compose_config_rejects_a_broken_file(
    tmp_path: Path, change: tuple[str, str], error: str
) -> None:
    """The validation can fail: a typo in a condition, a dependency or a version variable."""
    from lakehouse.errors import LakehouseError

    broken = tmp_path / "docker-compose.yml"
    text = (ROOT / "docker-compose.yml").read_text()
    assert change[0] in text
    broken.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(LakehouseError, match=error):
        compose.resolved(ROOT, Settings().cache, Versions.load(VERSIONS_FILE), broken)


def test_every_native_service_has_exactly_one_compose_twin(natives: list[str]) -> None:
    twins = {name: svc["labels"]["lakehouse.native"] for name, svc in SERVICES.items()}
    for native in natives:
        assert [c for c, n in twins.items() if n == native] == [twin(native)], native
    assert {n for n in twins.values() if n} == set(natives)


def test_our_processes_run_through_the_native_launcher_code(natives: list[str]) -> None:
    """Services built from our images run `lakehouse serve <native name>` and are healthy when
    the native readiness probe (`lakehouse ready`) says so."""
    ours = {
        c: s
        for c, s in SERVICES.items()
        if s.get("image", "").startswith(("lakehouse/app", "lakehouse/kafka", "lakehouse/connect"))
    }
    for name, svc in ours.items():
        native = svc["labels"]["lakehouse.native"]
        if not native:
            continue
        assert svc["command"] == ["lakehouse", "serve", native], name
        assert svc["healthcheck"]["test"] == ["CMD", "lakehouse", "ready", native], name
    assert {"kafka", "connect", "silver", "catalog-sync", "monitor", "app"} <= set(ours)


def test_config_labels_name_folders_that_exist_and_are_used(model: dict[str, Any]) -> None:
    for name, svc in SERVICES.items():
        folders = svc["labels"]["lakehouse.config"].split()
        for folder in folders:
            assert (ROOT / folder).exists(), f"{name}: {folder}"
    # the official images read the repo's folders directly (read-only bind mounts)
    mounts = {
        name: {(v["source"], v["target"]) for v in svc.get("volumes", []) if v["type"] == "bind"}
        for name, svc in model["services"].items()
    }
    assert (str(ROOT / "trino" / "etc"), "/etc/trino") in mounts["trino"]
    assert (str(ROOT / "prometheus"), "/opt/lakehouse/prometheus") in mounts["prometheus"]
    assert (str(ROOT / "alertmanager" / "alertmanager.yml"), "/etc/alertmanager/alertmanager.yml") in mounts[
        "alertmanager"
    ]
    assert (str(ROOT / "grafana" / "provisioning"), "/etc/grafana/provisioning") in mounts["grafana"]
    assert (str(ROOT / "superset"), "/opt/lakehouse/superset") in mounts["superset"]
    assert SERVICES["minio"]["env_file"] == ["minio/minio.env"]
    assert all(
        v.endswith(":ro") for svc in SERVICES.values() for v in svc.get("volumes", []) if v.startswith("./")
    )


def test_images_are_pinned_by_versions_env_only(model: dict[str, Any]) -> None:
    versions = parse_env_file(VERSIONS_FILE)
    for name, svc in model["services"].items():  # every image has an explicit tag, never latest
        tag = svc["image"].rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", name
    for name, svc in SERVICES.items():
        image = svc["image"]
        if "build" in svc:  # built here from a Dockerfile: a local tag, its bases from versions.env
            assert re.fullmatch(r"lakehouse/[a-z]+:local", image), name
            for arg in svc["build"].get("args", {}).values():
                var = re.fullmatch(r"\$\{([A-Z_]+):\?run make compose-env\}", arg)
                assert var and var.group(1) in versions, f"{name}: build arg {arg}"
            continue
        used = re.findall(r"\$\{([A-Z_]+)[:?}]", image)
        assert used and all(v in versions for v in used), f"{name}: {image} is not pinned by versions.env"
    resolved = {name: svc["image"] for name, svc in model["services"].items()}
    v = Versions.load(VERSIONS_FILE)
    assert resolved["postgres"] == v.postgres_image_ref
    assert resolved["trino"] == f"trinodb/trino:{v.trino}"
    assert resolved["prometheus"] == f"prom/prometheus:v{v.prometheus}"
    assert resolved["alertmanager"] == f"prom/alertmanager:v{v.alertmanager}"
    assert resolved["grafana"] == f"grafana/grafana:{v.grafana}"
    superset_args = model["services"]["superset"]["build"]["args"]
    assert superset_args["SUPERSET_VERSION"] == v.superset


def test_long_running_services_have_healthchecks_and_dependents_wait_properly() -> None:
    for name, svc in SERVICES.items():
        if one_shot(name):
            assert "healthcheck" not in svc, name
        else:
            assert svc["restart"] == "unless-stopped", name
            assert svc["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for dep, cond in svc.get("depends_on", {}).items():
            want = "service_completed_successfully" if one_shot(dep) else "service_healthy"
            assert cond == {"condition": want}, f"{name} → {dep}"


def test_published_ports_are_the_native_settings_with_the_same_defaults() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    defaults = Settings()
    used = set(re.findall(r"\$\{(LAKEHOUSE_[A-Z_]+_PORT):-(\d+)\}", text))
    fields = {env_name(f): f for f in PORT_FIELDS}
    assert used, "no LAKEHOUSE_*_PORT in docker-compose.yml"
    for var, default in used:
        assert var in fields, var
        assert int(default) == getattr(defaults, fields[var]), var
    for svc in SERVICES.values():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), port  # like the native stack: loopback only


def test_env_file_copies_versions_generates_credentials_and_keeps_them(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    generated = compose.write_env_file(ROOT, env)
    assert set(generated) == {*KEYS, *compose.COMPOSE_SECRETS}
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    first = parse_env_file(env)
    versions = parse_env_file(VERSIONS_FILE)
    assert {k: first[k] for k in versions} == versions
    assert all(len(first[k]) >= 12 for k in generated)
    with env.open("a") as fh:
        fh.write("LAKEHOUSE_KAFKA_PORT=39092\n")
    assert compose.write_env_file(ROOT, env) == []
    second = parse_env_file(env)
    assert {k: second[k] for k in generated} == {k: first[k] for k in generated}
    assert second["LAKEHOUSE_KAFKA_PORT"] == "39092"


def test_env_example_is_the_template_of_the_generated_env(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    compose.write_env_file(ROOT, env)
    example = parse_env_file(ROOT / ".env.example")
    versions = parse_env_file(VERSIONS_FILE)
    assert set(parse_env_file(env)) - set(versions) <= set(example)
    assert all(example[k] == "" for k in (*KEYS, *compose.COMPOSE_SECRETS))  # no default passwords
    # every variable the compose file reads is in versions.env or .env.example
    text = (ROOT / "docker-compose.yml").read_text()
    for var in set(re.findall(r"\$\{([A-Z_]+)", text)):
        assert var in versions or var in example, var


@pytest.fixture
def compose_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the containers see them, credentials in the environment as compose passes them."""
    env = tmp_path / ".env"
    compose.write_env_file(ROOT, env)
    for key, value in parse_env_file(env).items():
        monkeypatch.setenv(key, value)
    return Settings(home=tmp_path / "state", service_hostnames=True)


def test_config_job_renders_what_the_official_images_read(compose_home: Settings) -> None:
    from lakehouse.launcher.stack import Stack

    s = compose_home
    compose.secrets_from_env(s)
    assert parse_env_file(s.home / "secrets.env")["PG_CDC_PASSWORD"] == os.environ["PG_CDC_PASSWORD"]
    written = compose.write_configs(Stack(s))
    assert written
    pg = (s.home / "postgres" / "postgresql.conf").read_text()
    assert "listen_addresses = 'postgres'" in pg
    assert "unix_socket_directories = '/var/run/postgresql'" in pg  # where the image's entrypoint looks
    assert f"hba_file = '{s.home}/postgres/pg_hba.conf'" in pg
    assert "samenet" in (s.home / "postgres" / "pg_hba.conf").read_text()
    # the path docker-compose.yml hands to postgres is the file written here (home = /lakehouse there)
    assert SERVICES["postgres"]["command"][-1] == "config_file=/lakehouse/postgres/postgresql.conf"
    targets = (s.home / "prometheus" / "etc" / "targets" / "silver.json").read_text()
    assert f'"silver:{s.silver_metrics_port}"' in targets
    assert (
        s.home / "prometheus" / "etc" / "prometheus.yml"
    ).resolve() == ROOT / "prometheus" / "prometheus.yml"
    db = (s.home / "superset" / "assets" / "databases" / "lakehouse_trino.yaml").read_text()
    assert f"@trino:{s.trino_https_port}/lakehouse" in db and "{{" not in db
    assert (s.home / "trino" / "password.db").read_text().startswith("admin:$2y$")
    assert (s.home / "trino" / "tls" / "server.pem").exists()
    # the compose file points Trino and Superset at those same files
    trino_env = SERVICES["trino"]["environment"]
    assert trino_env["TRINO_PASSWORD_FILE"] == "/lakehouse/trino/password.db"
    assert trino_env["TRINO_TLS_PEM"] == "/lakehouse/trino/tls/server.pem"
    assert "/lakehouse/superset/assets" in SERVICES["superset-init"]["command"][-1]


def test_compose_steps_refuse_to_run_outside_compose(tmp_path: Path) -> None:
    from lakehouse.errors import ConfigError

    with pytest.raises(ConfigError, match="inside docker compose"):
        compose.secrets_from_env(Settings(home=tmp_path))


def test_config_job_names_missing_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakehouse.errors import ConfigError

    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match=r"PG_SUPERUSER_PASSWORD.*make compose-env"):
        compose.secrets_from_env(Settings(home=tmp_path, service_hostnames=True))


def test_service_hostnames_point_every_peer_at_its_compose_service() -> None:
    s = Settings(service_hostnames=True)
    assert s.kafka_bootstrap == f"kafka:{s.kafka_port}"
    assert s.connect_url.startswith("http://connect:")
    assert s.minio_endpoint.startswith("http://minio:")
    assert s.trino_url.startswith("https://trino:")
    assert Settings().kafka_bootstrap == f"127.0.0.1:{Settings().kafka_port}"


@pytest.mark.parametrize("dockerfile", sorted(DOCKERFILES))
def test_dockerfiles_take_their_bases_from_versions_env(dockerfile: str) -> None:
    """hadolint is not in the registries we can use here; these are the checks that matter for
    this repo: bases only from build args compose fills from versions.env, no `latest`, an
    unprivileged final user, COPY sources that exist and are not excluded from the context."""
    text = (ROOT / dockerfile).read_text()
    lines = [
        ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert "latest" not in text
    declared = {ln.split()[1].split("=")[0] for ln in lines if ln.startswith("ARG ")}
    builds = [s["build"] for s in SERVICES.values() if s.get("build", {}).get("dockerfile") == dockerfile]
    assert builds, f"no compose service builds {dockerfile}"
    # a named context must be another service's image, e.g. `app: service:app`
    contexts = {k for b in builds for k, v in b.get("additional_contexts", {}).items() if v == f"service:{k}"}
    assert set(DOCKERFILES[dockerfile]) <= declared
    for ln in (ln for ln in lines if ln.startswith("FROM ")):
        base = ln.split()[1]
        pinned = base.startswith("${") or re.fullmatch(r"[a-z/]+:\$\{[A-Z_]+\}", base)
        assert pinned or base in _stages(lines) or base in contexts, ln
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the final stage must not run as root"
    ignored = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")
    ]
    for ln in (ln for ln in lines if ln.startswith("COPY ") and "--from=" not in ln):
        for src in ln.split()[1:-1]:
            assert (ROOT / src).exists(), f"{dockerfile}: COPY {src}"
            assert src.rstrip("/") not in ignored, f"{dockerfile}: {src} is excluded by .dockerignore"
    for build in builds:
        assert set(build.get("args", {})) == set(DOCKERFILES[dockerfile])


def _stages(lines: list[str]) -> set[str]:
    return {ln.split()[3] for ln in lines if ln.startswith("FROM ") and len(ln.split()) == 4}


def test_secrets_never_enter_an_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".lakehouse" in ignored and ".git" in ignored
