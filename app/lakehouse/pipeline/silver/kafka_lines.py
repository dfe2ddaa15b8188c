"""Kafka records as bronze lines: the columns of Spark's Kafka source → the `value` text that
`BatchProcessor.process` reads, so the batch runs unchanged on either source.

The line has the shape `bronze/format.encode` writes for the same record (topic, partition,
offset, timestamp in ms, key, value): a key or value that is JSON is embedded as JSON, anything
else is kept byte-exact in `<name>_raw_b64` beside a null, so it reaches the quarantine whole.
Headers are left out: silver does not read them. A unit test holds the two encodings equal.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _embed(name: str) -> Column:
    raw = F.col(name)
    # `$` re-writes a JSON document compactly and is null for anything that does not parse
    as_json = F.get_json_object(raw.cast("string"), "$")
    # Spark's base64 breaks its output into MIME lines (CR LF every 76 characters) by default
    # (spark.sql.chunkBase64String.enabled): a raw control character inside a JSON string, so the
    # line would not parse. The sink writes one unbroken base64 string; so does this.
    b64 = F.translate(F.base64(raw), "\r\n", "")
    return (
        F.when(raw.isNull(), F.lit(f'"{name}":null'))
        .when(as_json.isNotNull(), F.concat(F.lit(f'"{name}":'), as_json))
        .otherwise(F.concat(F.lit(f'"{name}":null,"{name}_raw_b64":"'), b64, F.lit('"')))
    )


def as_bronze_lines(records: DataFrame) -> DataFrame:
    """Kafka source rows (topic, partition, offset, timestamp, key, value) → one `value` column of
    bronze lines. Topic names are Kafka's legal characters only, so they need no escaping."""
    line = F.concat(
        F.lit('{"topic":"'),
        F.col("topic"),
        F.lit('","partition":'),
        F.col("partition").cast("string"),
        F.lit(',"offset":'),
        F.col("offset").cast("string"),
        F.lit(',"timestamp":'),
        F.coalesce(F.unix_millis(F.col("timestamp")).cast("string"), F.lit("null")),
        F.lit(","),
        _embed("key"),
        F.lit(","),
        _embed("value"),
        F.lit("}"),
    )
    return records.select(line.alias("value"))
