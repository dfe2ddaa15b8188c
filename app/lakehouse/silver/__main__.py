"""`python -m lakehouse.silver`: the silver streaming job (settings, secrets, spark_streaming/ configs)."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from prometheus_client import start_http_server

from ..artifacts import spark_jars
from ..errors import LakehouseError
from ..secrets import Secrets
from ..settings import load_settings
from ..versions import Versions
from .batch import Rules
from .config import SilverConfig
from .faults import Faults
from .job import run
from .session import build, jars_in, read_conf, s3_credentials
from .store import Layout


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("lakehouse.silver")
    try:
        s = load_settings()
        sec = Secrets.load_or_create(s.home)
        cfg = SilverConfig.load(s.state("silver") / "silver.json")
        conf = read_conf(s.state("silver") / "spark-defaults.conf")
        jars = jars_in(spark_jars(s.cache, Versions.load(s.root / "versions.env")))
    except LakehouseError as exc:
        print(f"silver: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    start_http_server(s.silver_metrics_port, addr=s.addr("silver"))
    spark = build(
        s.spark_master, {**conf, **s3_credentials(sec.minio_root_user, sec.minio_root_password)}, jars
    )
    bucket = f"s3a://{s.bucket}"
    try:
        run(
            spark,
            f"{bucket}/bronze/{s.topic_prefix}.*/partition=*",
            f"{bucket}/_checkpoints/silver",
            Layout(f"{bucket}/silver"),
            rules=Rules(
                f"{s.topic_prefix}.transaction",
                cfg.transaction_timeout,
                cfg.end_ttl,
                cfg.column_overrides,
            ),
            cfg=cfg,
            faults=Faults(s.silver_crash_at),
        )
    except LakehouseError as exc:
        log.error("%s", exc)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
