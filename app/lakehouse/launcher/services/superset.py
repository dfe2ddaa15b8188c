"""Superset from PyPI in its own venv: metadata in SQLite, assets imported from superset/assets.

Every start: migrate the metadata DB (first start, or a new Superset version; a new install
copies a migrated, initialised DB of the same build from the cache instead), set the admin
password from the secrets file, and import the YAML assets — the Trino connection (rendered
with this install's host, port, analyst password and CA certificate), datasets, charts and the
"Movies live" dashboard. Then gunicorn serves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from lakehouse.apps.superset_api import Superset, SupersetError
from lakehouse.config.endpoints import DASHBOARD_SLUG, ca_cert
from lakehouse.config.endpoints import SUPERSET_ADMIN as ADMIN_USER
from lakehouse.config.names import ANALYST_USER
from lakehouse.config.render import render_file
from lakehouse.errors import ServiceError
from lakehouse.launcher.artifacts import superset_home
from lakehouse.launcher.services.base import Service
from lakehouse.launcher.status import ServiceStatus

#: variables that make `requests` ignore the connection's own `verify` (the Trino CA certificate)
_CA_OVERRIDES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class SupersetService(Service):
    name = "superset"
    port_fields: ClassVar[tuple[str, ...]] = ("superset_port",)

    @property
    def home(self) -> Path:
        return superset_home(self.s.cache, self.ctx.versions)

    @property
    def assets(self) -> Path:
        return self.s.root / "superset" / "assets"

    def _bin(self, tool: str) -> str:
        path = self.home / "bin" / tool
        if not path.exists():
            raise ServiceError(f"superset: {path} missing — run `lakehouse install`")
        return str(path)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _CA_OVERRIDES}
        env.update(
            SUPERSET_CONFIG_PATH=str(self.s.root / "superset" / "superset_config.py"),
            SUPERSET_HOME=str(self.data_dir),
            SUPERSET_SECRET_KEY=self.ctx.secrets.superset_secret_key,
            SUPERSET_DATABASE_URI=f"sqlite:///{self.data_dir / 'superset.db'}",
            FLASK_APP="superset",
        )
        return env

    def connection_values(self) -> dict[str, object]:
        return {
            "trino_user": ANALYST_USER,
            "trino_password": quote(self.ctx.secrets.trino_analyst_password, safe=""),
            "trino_host": self.s.addr("trino"),
            "trino_port": self.s.trino_https_port,
            "trino_ca_cert": ca_cert(self.s),
        }

    def templates(self) -> dict[str, dict[str, object]]:
        values = self.connection_values()
        return {
            str(p.relative_to(self.s.root)): values
            for p in sorted((self.assets / "databases").glob("*.yaml"))
        }

    def _cli(self, *args: str, what: str) -> str:
        run = subprocess.run(
            [self._bin("superset"), *args], env=self.env(), capture_output=True, text=True, check=False
        )
        out = run.stdout + run.stderr
        with open(self.files.logfile, "a") as log:
            log.write(f"--- superset {args[0]} ---\n{out}\n")
        if run.returncode != 0:
            tail = "\n".join(out.splitlines()[-15:])
            raise ServiceError(f"superset: {what} failed (exit {run.returncode}):\n{tail}")
        return out

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.files.logfile.parent.mkdir(parents=True, exist_ok=True)
        marker = self.data_dir / f".initialized-{self.ctx.versions.superset}"
        if not marker.exists():
            self._initialise_metadata()
            password = self.ctx.secrets.superset_admin_password
            self._cli(
                "fab", "create-admin", "--username", ADMIN_USER, "--firstname", "Lakehouse",
                "--lastname", "Admin", "--email", "admin@lakehouse.invalid", "--password", password,
                what="creating the admin user",
            )  # fmt: skip
            marker.write_text(self.ctx.versions.superset + "\n")
        self._cli(
            "fab", "reset-password", "--username", ADMIN_USER,
            "--password", self.ctx.secrets.superset_admin_password,
            what="setting the admin password",
        )  # fmt: skip
        self.import_assets()
        # the metadata holds the admin's password hash and the Trino connection (its password
        # encrypted with the secret key): the owner's only, like the other secrets on disk
        self.data_dir.chmod(0o700)
        (self.data_dir / "superset.db").chmod(0o600)

    @property
    def metadata_template(self) -> Path:
        """A migrated and initialised metadata DB of this Superset build, without users, secrets or
        assets: a new install copies it instead of migrating again (about a minute here)."""
        return self.home.with_name(self.home.name + "-metadata.db")

    def _initialise_metadata(self) -> None:
        db = self.data_dir / "superset.db"
        template = self.metadata_template
        fresh = not db.exists()
        if fresh and template.exists():
            shutil.copyfile(template, db)
            return
        self._cli("db", "upgrade", what="the metadata migration")
        self._cli("init", what="setting up roles and permissions")
        if fresh:
            staged = template.with_suffix(f".{os.getpid()}.tmp")
            shutil.copyfile(db, staged)
            staged.replace(template)

    def import_assets(self) -> None:
        """Import superset/assets with the connection rendered for this install (then removed)."""
        staging = self.data_dir / "assets-import"
        self.render_assets(staging)
        try:
            out = self._cli("import-directory", "--overwrite", str(staging), what="importing superset/assets")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        # import-directory logs validation errors and still exits 0
        errors = [line for line in out.splitlines() if " ERROR " in f" {line} " or line.startswith("Error")]
        if errors:
            raise ServiceError("superset: importing superset/assets failed:\n" + "\n".join(errors[-10:]))

    def render_assets(self, dest: Path) -> None:
        """superset/assets with the connection rendered for this install, in a 0700 folder."""
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(self.assets, dest)
        os.chmod(dest, 0o700)
        for rel, values in self.templates().items():
            (dest / Path(rel).relative_to("superset/assets")).write_text(
                render_file(self.s.root / rel, values)
            )

    def argv(self) -> list[str]:
        return [
            self._bin("gunicorn"),
            "--workers", "1", "--threads", "4", "--worker-class", "gthread", "--timeout", "120",
            "--bind", f"{self.host}:{self.s.superset_port}",
            # not used, and its default is one path in $HOME that every stack would share
            "--no-control-socket",
            "superset.app:create_app()",
        ]  # fmt: skip

    def cmd_marker(self) -> str:
        return str(self.home)

    def ready(self) -> bool:
        try:
            r = httpx.get(f"{self.s.superset_url}/health", timeout=3)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.text.strip() == "OK"

    def fix_hint(self, log: str) -> str:
        if "No module named" in log:
            return "Superset's venv is incomplete: delete it from the cache and run `lakehouse install`"
        return "`lakehouse logs superset` shows gunicorn's log and each start-up step"

    def client(self) -> Superset:
        return Superset(self.s.superset_url, ADMIN_USER, self.ctx.secrets.superset_admin_password)

    def details(self) -> dict[str, Any]:
        return {
            "url": self.s.superset_url,
            "dashboard": f"{self.s.superset_url}/superset/dashboard/{DASHBOARD_SLUG}/",
        }

    def status(self) -> ServiceStatus:
        """Ready only if Superset can also reach Trino: a broken connection is an error, with
        Superset's reason, rather than a dashboard that silently shows nothing."""
        out = super().status()
        if not out.ready:
            return out
        uri = "?"
        try:
            with self.client() as api:
                uri, problem = api.login().connection_error()
        except (SupersetError, httpx.HTTPError) as exc:
            problem = str(exc)
        if problem:
            return replace(
                out,
                state="error",
                error=f"Superset cannot query Trino with its connection {uri}: {problem} — "
                "`lakehouse up` re-imports it with this install's Trino address and password",
            )
        return out
