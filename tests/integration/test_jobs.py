"""Jobs on the real stack (issue 20): the session's scheduler lists the jobs, runs one on request
and records it in ops.job_runs, records a failing one as failed and fires its alert, and runs a job
on its crontab (a job file added while it runs)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakehouse.clients import admin_client
from lakehouse.launcher.stack import Stack
from lakehouse.polling import wait_until

from .conftest import MovieLens
from .helpers import active_alerts, analyst, lakehouse, prom, source
from .session_setup import FAILING_JOB
from .target import lacks

FAILED_ALERT = "LakehouseJobFailed"


def _history(name: str) -> list[dict[str, object]]:
    shown = lakehouse("jobs", "history", name, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    runs: list[dict[str, object]] = json.loads(shown.stdout)
    return runs


@pytest.mark.timeout(900)
def test_jobs_listed_run_recorded_failed_alerted_and_scheduled(stack: Stack, movielens: MovieLens) -> None:
    lacks(stack, "failing_job")
    listed = lakehouse("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {j["name"]: j for j in json.loads(listed.stdout)}
    assert {"top-movies-daily", FAILING_JOB} <= set(names)
    assert names["top-movies-daily"]["schedule"] == "15 0 * * *"
    assert names["top-movies-daily"]["next_run"], names["top-movies-daily"]

    # on request: it runs, it is recorded, its table is the analyst's to read
    ran = lakehouse("jobs", "run", "top-movies-daily", "--json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded" and run["metrics"] == {"rows": 100.0}, run
    (last, *_) = _history("top-movies-daily")
    assert (last["run_id"], last["status"], last["started_by"]) == (run["run_id"], "succeeded", "manual")
    top = (
        analyst(stack)
        .query(
            "SELECT count(*), min(rank), max(rank) FROM lakehouse.analytics.top_movies_history "
            "WHERE snapshot_date = current_date"
        )
        .rows
    )
    assert top == [[100, 1, 100]]
    again = lakehouse("jobs", "run", "top-movies-daily", "--json")  # the same day: replaced, not doubled
    assert again.returncode == 0 and json.loads(again.stdout)["metrics"] == {"rows": 100.0}

    # a failing job: exit 1 with its error, recorded as failed, exported, alerted
    failed = lakehouse("jobs", "run", FAILING_JOB)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "failed" in failed.stdout and "between 1 and 100" in failed.stdout, failed.stdout
    (bad, *_) = _history(FAILING_JOB)
    assert bad["status"] == "failed" and "between 1 and 100" in str(bad["error"]), bad
    status = lakehouse("jobs", "status", FAILING_JOB)
    assert "failed" in status.stdout and "between 1 and 100" in status.stdout, status.stdout
    query = f'lakehouse_job_last_run_failed{{job_name="{FAILING_JOB}"}} == 1'
    assert wait_until(lambda: bool(prom(stack, "/api/v1/query", query=query)["result"]), timeout=120)
    assert wait_until(lambda: bool(active_alerts(stack, FAILED_ALERT)), timeout=180), f"no {FAILED_ALERT}"
    (alert,) = [a for a in active_alerts(stack, FAILED_ALERT) if a["labels"]["job_name"] == FAILING_JOB]
    assert alert["labels"]["severity"] == "warning"
    ids = [run["run_id"], json.loads(again.stdout)["run_id"], bad["run_id"]]
    rows = (
        admin_client(stack.s, stack.ctx.secrets)
        .query(
            "SELECT run_id, status FROM lakehouse.ops.job_runs WHERE run_id IN (?, ?, ?) ORDER BY started_at",
            ids,
        )
        .rows
    )
    assert rows == [[ids[0], "succeeded"], [ids[1], "succeeded"], [ids[2], "failed"]], rows

    # unknown job: a one-line usage error
    unknown = lakehouse("jobs", "run", "no-such-job")
    assert unknown.returncode == 2 and "no job named 'no-such-job'" in unknown.stderr

    # on its crontab: a job file added now, due at the next minute, is read and run by itself (the
    # scheduler reads jobs/ every second: the first minute that starts at least 10 s from now)
    folder = Path(stack.s.jobs_folder)
    due = (datetime.now(UTC) + timedelta(seconds=70)).replace(second=0, microsecond=0)
    tick = folder / "tick.yml"
    tick.write_text(
        "name: tick\nentry: lakehouse.apps.jobs.top_movies:run\nparams: {top: 5}\n"
        f'schedule: "{due.minute} {due.hour} * * *"\n'
    )
    try:
        started = time.monotonic()
        assert wait_until(lambda: any(r["started_by"] == "schedule" for r in _history("tick")), timeout=240)
        (scheduled, *_) = _history("tick")
        assert scheduled["status"] in ("running", "succeeded"), scheduled
        print(f"the scheduled run started {time.monotonic() - started:.0f}s after the file was written")
    finally:
        tick.unlink(missing_ok=True)


@pytest.mark.timeout(1200)
def test_recommender_writes_the_ml_tables_with_an_rmse_below_both_baselines(
    stack: Stack, job_outputs: dict[str, dict[str, Any]]
) -> None:
    run = job_outputs["recommender"]
    m = run["metrics"]
    print(f"recommender: {run['seconds']:.0f}s, metrics {json.dumps(m, sort_keys=True)}")
    assert m["rmse"] <= 0.88, m
    assert m["rmse"] < m["baseline_bias_rmse"] < m["baseline_global_rmse"], m
    assert m["test_rows"] / (m["train_rows"] + m["test_rows"]) == pytest.approx(0.25, abs=0.01)

    a = analyst(stack)  # the analyst reads ml
    recs = a.query(
        "SELECT rank, movie_id, predicted_rating FROM lakehouse.ml.user_recommendations "
        "WHERE user_id = 1 ORDER BY rank"
    ).rows
    assert [r[0] for r in recs] == list(range(1, 11)), recs
    assert all(0.5 <= r[2] <= 5.0 for r in recs), recs
    with source(stack) as conn:
        rated = {r[0] for r in conn.execute("SELECT movie_id FROM movielens.ratings WHERE user_id = 1")}
    assert rated and not rated & {r[1] for r in recs}, "a movie the user rated was recommended"
    fans = a.query(
        "SELECT count(*), count(DISTINCT user_id) FROM lakehouse.ml.movie_recommendations WHERE movie_id = 1"
    ).rows
    assert fans == [[10, 10]]
    (row,) = a.query(
        "SELECT rmse, baseline_global_rmse, baseline_bias_rmse, rank, reg_param, train_rows, test_rows "
        f"FROM lakehouse.ml.model_runs WHERE run_id = '{run['run_id']}'"
    ).rows
    assert row[0] == pytest.approx(m["rmse"]) and row[3] == m["rank"] and row[5] == m["train_rows"]
