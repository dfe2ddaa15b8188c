"""The storage layout (layout.py): one definition of every object-store path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lakehouse.config import layout
from lakehouse.config.layout import Storage
from lakehouse.config.settings import Settings
from lakehouse.pipeline.silver.store import Layout

pytestmark = pytest.mark.unit
APP = Path(__file__).resolve().parents[2] / "app" / "lakehouse"


def test_a_key_is_named_for_each_engine_and_read_back() -> None:
    st = Storage("lake")
    key = layout.silver_table("movielens.ratings")
    assert key == "silver/movielens/ratings"
    assert st.spark(key) == "s3a://lake/silver/movielens/ratings"
    assert st.trino(key) == "s3://lake/silver/movielens/ratings"
    assert st.key(st.spark(key)) == st.key(st.trino(key)) == key
    assert layout.as_trino(st.spark(key)) == st.trino(key)
    assert layout.as_trino("/tmp/silver/movielens/ratings") == "/tmp/silver/movielens/ratings"
    with pytest.raises(ValueError, match="not in the bucket"):
        st.key("s3a://other/silver/x")


def test_silver_bronze_and_checkpoints_come_from_the_layout() -> None:
    s = Settings(bucket="lake", topic_prefix="cdc")
    assert Layout.of(s.storage).table("movielens.movies") == "s3a://lake/silver/movielens/movies"
    assert s.storage.spark(layout.bronze_glob("cdc")) == "s3a://lake/bronze/cdc.*/partition=*"
    assert s.storage.spark(layout.checkpoint("silver")) == "s3a://lake/_checkpoints/silver"
    assert s.bronze_uri == "s3://lake/bronze" and s.silver_uri == "s3://lake/silver"
    assert layout.bronze_topic("cdc.movielens.movies") == "bronze/cdc.movielens.movies/"


def test_no_module_but_the_layout_writes_an_object_store_uri() -> None:
    """Every path comes from config/layout.py: no other module of the package spells a scheme."""
    scheme = re.compile(r"s3a?://")
    offenders = [
        f"{p.relative_to(APP)}:{n}"
        for p in sorted(APP.rglob("*.py"))
        if p != APP / "config" / "layout.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if scheme.search(line)
    ]
    assert offenders == []
