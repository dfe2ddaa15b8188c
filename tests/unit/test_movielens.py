"""The MovieLens loader's checks on the folder it is given (no database needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lakehouse.config.paths import movielens_sample
from lakehouse.demo.movielens import TABLES, check_folder
from lakehouse.errors import LakehouseError


def _copy_headers(dst: Path) -> None:
    for t in TABLES:
        (dst / t.file).write_text(",".join(t.header) + "\n")


def test_missing_folder_says_where_to_put_the_files(tmp_path: Path) -> None:
    with pytest.raises(LakehouseError) as err:
        check_folder(tmp_path / "nope")
    msg = str(err.value)
    assert "MovieLens folder not found" in msg and "ml-latest-small" in msg and "--path" in msg


def test_missing_file_and_wrong_header_are_named(tmp_path: Path) -> None:
    _copy_headers(tmp_path)
    (tmp_path / "tags.csv").unlink()
    with pytest.raises(LakehouseError, match=r"has no tags\.csv"):
        check_folder(tmp_path)
    (tmp_path / "tags.csv").write_text("user,movie,tag,ts\n")
    with pytest.raises(LakehouseError, match=r"tags\.csv: header user,movie,tag,ts is not the MovieLens one"):
        check_folder(tmp_path)
    _copy_headers(tmp_path)
    assert check_folder(tmp_path) == tmp_path


@pytest.mark.skipif(not movielens_sample().is_dir(), reason="the MovieLens sample is not beside the checkout")
def test_the_shared_sample_is_found_by_default(tmp_path: Path) -> None:
    assert check_folder(None) == movielens_sample()
    shutil.copy(movielens_sample() / "movies.csv", tmp_path / "movies.csv")
    assert (tmp_path / "movies.csv").read_text().startswith("movieId,title,genres\n")
