"""What silver's commands report: the job's answers read into typed results, and their --json form."""

from __future__ import annotations

import json

import pytest

from lakehouse.pipeline.silver.compaction import Fold
from lakehouse.pipeline.silver.reports import (
    Blocked,
    Compacted,
    CrossCheck,
    Replayed,
    TableStatus,
)

pytestmark = pytest.mark.unit


def test_a_compaction_answer_reads_into_its_folds() -> None:
    answer = {
        "id": "r1",
        "table": None,
        "folded": [
            Fold("movielens.movies", upto=17, keys=3, seconds=1.234).as_dict(),
            Fold("movielens.tags").as_dict(),
        ],
        "error": None,
    }
    got = Compacted.of(answer)
    folds = [(f.table, f.keys, f.upto) for f in got.folded]
    assert folds == [("movielens.movies", 3, 17), ("movielens.tags", 0, None)]
    assert got.as_dict()["folded"][0] == {"table": "movielens.movies", "keys": 3, "upto": 17, "seconds": 1.23}
    assert Compacted.of({"folded": [], "error": "boom"}).error == "boom"


def test_an_answer_that_lacks_its_fields_is_refused_with_them_named() -> None:
    with pytest.raises(ValueError, match="lacks still_quarantined"):
        Replayed.of({"id": "x", "replayed": 2})
    with pytest.raises(ValueError, match="lacks folded"):
        Compacted.of({"id": "x", "error": None})


def test_the_json_forms_keep_their_fields() -> None:
    replayed = Replayed.of({"id": "x", "table": "movielens.t", "replayed": 2, "still_quarantined": 0})
    assert replayed.as_dict() == {"table": "movielens.t", "replayed": 2, "still_quarantined": 0}
    status = TableStatus("movielens.t", "lakehouse.silver.t", "s3://b/silver/t", 4, 10, Blocked(2, "why"))
    assert json.loads(json.dumps(status.as_dict()))["blocked"] == {"events": 2, "reason": "why"}
    cross = CrossCheck("movielens.t", "r", "SELECT 1", 0, None, None).as_dict()
    assert cross["action"] == "cross_table" and cross["failing"] == 0
