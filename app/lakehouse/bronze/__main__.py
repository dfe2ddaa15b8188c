"""`python -m lakehouse.bronze`: run the bronze sink with settings, secrets and bronze/sink.json."""

from __future__ import annotations

import logging
import sys

from prometheus_client import start_http_server

from ..errors import LakehouseError
from ..secrets import Secrets
from ..services.minio import client
from ..settings import load_settings
from .config import SinkConfig
from .sink import BronzeSink, put_to_minio


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        s = load_settings()
        sec = Secrets.load_or_create(s.home)
        cfg = SinkConfig.of(s)
    except LakehouseError as exc:
        print(f"bronze-sink: {exc}", file=sys.stderr)
        return 2
    start_http_server(s.bronze_sink_metrics_port, addr=s.addr("bronze-sink"))
    mc = client(f"{s.addr('minio')}:{s.minio_port}", sec.minio_root_user, sec.minio_root_password)
    sink = BronzeSink(cfg, {"bootstrap.servers": s.kafka_bootstrap}, put_to_minio(mc, s.bucket))
    sink.install_signal_handlers()
    logging.getLogger("lakehouse.bronze").info(
        "bronze sink: %s → s3://%s/%s", cfg.topics_regex, s.bucket, cfg.prefix
    )
    sink.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
