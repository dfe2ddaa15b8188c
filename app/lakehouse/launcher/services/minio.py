"""Object storage: MinIO built from source with `go install` (see artifacts.py); the bucket and a
read-only user (minio/reader-policy.json) at start."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
from minio import Minio as MinioClient
from minio.credentials.providers import StaticProvider
from minio.minioadmin import MinioAdmin

from lakehouse.clients import object_store
from lakehouse.config.endpoints import READER_USER, Endpoints
from lakehouse.config.render import render_file
from lakehouse.config.versions import parse_env_file
from lakehouse.errors import ServiceError
from lakehouse.launcher.artifacts import minio_binary
from lakehouse.launcher.services.base import Service

#: the object store's read-only user (its password is generated per install): what the page and
#: `lakehouse trace` read bronze with; the policy lets it list and get the bucket's objects only
READER_POLICY = "lakehouse-read-only"


class Minio(Service):
    name = "minio"
    port_fields: ClassVar[tuple[str, ...]] = ("minio_port", "minio_console_port")

    def argv(self) -> list[str]:
        binary = minio_binary(self.s.cache, self.ctx.versions)
        if not binary.exists():
            raise ServiceError(f"minio: {binary} not built — run `lakehouse install`")
        return [
            str(binary), "server", str(self.data_dir / "data"),
            "--address", f"{self.host}:{self.s.minio_port}",
            "--console-address", f"{self.host}:{self.s.minio_console_port}",
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(parse_env_file(self.s.root / "minio" / "minio.env"))
        env["MINIO_ROOT_USER"] = self.ctx.secrets.minio_root_user
        env["MINIO_ROOT_PASSWORD"] = self.ctx.secrets.minio_root_password
        return env

    def prepare(self) -> None:
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)

    def ready(self) -> bool:
        try:
            r = httpx.get(f"{self.s.minio_endpoint}/minio/health/ready", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def client(self) -> MinioClient:
        return object_store(Endpoints.of(self.s, self.ctx.secrets))

    def after_ready(self) -> None:
        mc = self.client()
        if not mc.bucket_exists(self.s.bucket):
            mc.make_bucket(self.s.bucket)
        # the read-only user, its password re-applied on every start (MinIO's admin API)
        sec = self.ctx.secrets
        admin = MinioAdmin(
            endpoint=f"{self.host}:{self.s.minio_port}",
            credentials=StaticProvider(sec.minio_root_user, sec.minio_root_password),
            secure=False,
        )
        policy = render_file(self.s.root / "minio" / "reader-policy.json", {"bucket": self.s.bucket})
        admin.policy_add(READER_POLICY, policy=json.loads(policy))
        admin.user_add(READER_USER, self.ctx.secrets.minio_reader_password)
        admin.policy_set(READER_POLICY, user=READER_USER)

    def details(self) -> dict[str, Any]:
        return {
            "endpoint": self.s.minio_endpoint,
            "console": f"http://{self.host}:{self.s.minio_console_port}",
        }
