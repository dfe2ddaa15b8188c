"""Bronze object names (no I/O): what the sink connector (connect/s3-sink) writes and readers parse.

The connector's `ObjectNames` writes `<prefix>/<topic>/partition=<p>/<topic>+<p>+<first>-<last>`
with `.jsonl` and, compressed, `.gz` (zero-padded offsets, so names sort by offset); this module
is how the Python side names, recognises and opens those objects. Objects written before bronze
moved to Kafka Connect are uncompressed `.jsonl` and stay readable.
"""

from __future__ import annotations

import gzip
import re

#: the compressed suffix the connector adds (`file.compression.type` gzip, the default)
GZIP = ".gz"
#: Spark's `pathGlobFilter` for bronze objects, compressed or not
GLOB = "*.{jsonl,jsonl.gz}"


def object_key(
    prefix: str, topic: str, partition: int, first_offset: int, last_offset: int, *, compressed: bool = True
) -> str:
    """`<prefix>/<topic>/partition=<p>/<topic>+<p>+<first offset>-<last offset>.jsonl[.gz]`.

    One topic (= one source table) lists on its own under `<prefix>/<topic>/`. The name is
    fixed by the offset range: a batch rewritten after a crash with the same records overwrites
    itself, and one with more records gets a new name. Readers that track files by name (Spark's
    file source) therefore never miss records that a rewritten object gained.
    """
    name = f"{topic}+{partition}+{first_offset:020d}-{last_offset:020d}.jsonl" + (GZIP if compressed else "")
    return f"{prefix}/{topic}/partition={partition}/{name}"


#: an `object_key` name: topic, partition, first and last offset (also a Java regex, for Spark)
OBJECT_NAME = r"(?:^|/)([^/+]+)\+(\d+)\+(\d+)-(\d+)\.jsonl(?:\.gz)?$"
_OBJECT_NAME = re.compile(OBJECT_NAME)


def object_range(key: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first offset, last offset) of an object `object_key` named (a key, a path
    or a URI); None for any other name."""
    m = _OBJECT_NAME.search(key)
    return None if m is None else (m[1], int(m[2]), int(m[3]), int(m[4]))


def is_object(key: str) -> bool:
    """A bronze object's key (compressed or not)?"""
    return key.endswith((".jsonl", ".jsonl" + GZIP))


def lines_of(key: str, body: bytes) -> list[bytes]:
    """The lines of one bronze object's body, gunzipped when its name says it is compressed."""
    return (gzip.decompress(body) if key.endswith(GZIP) else body).splitlines()
