from pathlib import Path

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.launcher.artifacts import run_with_progress


def test_progress_counts_matching_lines_and_keeps_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "build.log"
    script = "echo 'go: downloading a'; sleep 1.2; echo compiling; echo 'go: downloading b'"
    run_with_progress(["sh", "-c", script], "probe", log, r"go: downloading")
    assert log.read_text().splitlines() == ["go: downloading a", "compiling", "go: downloading b"]
    assert "probe (2 fetched" in capsys.readouterr().err  # two of the three lines match


def test_failed_step_names_itself_and_shows_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(LakehouseError, match=r"(?s)probe failed \(exit 3\).*no such module"):
        run_with_progress(["sh", "-c", "echo no such module; exit 3"], "probe", tmp_path / "l", "x")


def test_a_changed_pom_or_property_resolves_again(tmp_path: Path) -> None:
    from lakehouse.launcher.artifacts import _done, _mark, _recipe

    pom, dest = tmp_path / "pom.xml", tmp_path / "jars"
    pom.write_text("<project>a</project>")
    dest.mkdir()
    stamp = _recipe(pom, {"spark.version": "4.1.1"})
    _mark(dest, stamp)
    assert _done(dest, _recipe(pom, {"spark.version": "4.1.1"}))
    assert not _done(dest, _recipe(pom, {"spark.version": "4.1.2"}))
    pom.write_text("<project>b</project>")  # e.g. a dependency added
    assert not _done(dest, _recipe(pom, {"spark.version": "4.1.1"}))
    (dest / ".complete").write_text("2026-01-01T00:00:00\n")  # marked before recipes were recorded
    assert not _done(dest, stamp)
    assert _done(dest)  # steps without a recipe only need the marker
