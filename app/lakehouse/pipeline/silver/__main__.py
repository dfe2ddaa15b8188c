"""`python -m lakehouse.pipeline.silver`: the silver streaming job (settings, secrets, spark_streaming/)."""

from __future__ import annotations

import logging
import sys

from prometheus_client import start_http_server

from lakehouse.config.layout import bronze_glob, checkpoint
from lakehouse.errors import LakehouseError
from lakehouse.pipeline.silver.faults import FIRED, Faults
from lakehouse.pipeline.silver.job import KafkaSource, request_stop, run
from lakehouse.pipeline.silver.launch import start
from lakehouse.pipeline.silver.store import Layout


def main() -> int:
    setup = start("silver", on_stop=request_stop)
    if setup is None:
        return 2
    log = logging.getLogger("lakehouse.silver")
    s, cfg = setup.settings, setup.cfg
    try:  # before Spark starts: a wrong crash point is a configuration error, not a crash
        faults = Faults.from_env(fired=s.state("silver") / FIRED)
    except LakehouseError as exc:
        log.error("%s", exc)
        return 2
    start_http_server(s.silver_metrics_port, addr=s.addr("silver"))
    spark = setup.session(master=s.silver_master)  # the scale-out cluster's master in that mode
    # the topics the bronze sink lands
    kafka = KafkaSource(s.kafka_bootstrap, setup.topics_regex, cfg.max_records_per_trigger)
    try:
        run(
            spark,
            s.storage.spark(bronze_glob(s.topic_prefix)),
            s.storage.spark(checkpoint("silver")),
            Layout.of(s.storage),
            rules=setup.rules(),
            cfg=cfg,
            kafka=kafka if cfg.source == "kafka" else None,
            faults=faults,
        )
    except LakehouseError as exc:
        log.error("%s", exc)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
