"""The job's start refuses a checkpoint and a silver that do not belong together (an unfinished
`reset-silver`, silver without its checkpoint, a checkpoint past tables that are gone)."""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from lakehouse.errors import LakehouseError
from lakehouse.pipeline.silver.sources import KAFKA, Epoch, batch_ids
from lakehouse.pipeline.silver.store import Layout, hadoop_path, read_text


class CheckpointError(LakehouseError):
    pass


#: `reset-silver` writes this (under the silver root) before it deletes anything and removes it last
#: (commands.reset_silver): while it is there, silver and its checkpoints are partly deleted
RESET_MARKER = "_state/reset-in-progress"
REBUILD = "`lakehouse reset-silver --yes`"


def reset_marker(layout: Layout) -> str:
    return f"{layout.root}/{RESET_MARKER}"


def guard_checkpoint(spark: SparkSession, epoch: Epoch, layout: Layout) -> None:
    """Never restart from scratch, nor resume over deleted silver, silently: each is an error with
    a fix, naming the path.

    - A `reset-silver` that did not finish left its marker: whatever it had deleted so far, the job
      refuses until the reset is run again to its end.
    - Silver written by an earlier run but no checkpoint: the stream would start over.
    - A checkpoint that has committed batches (or the epoch state `_state/source.json`, saved only
      after the job's start created its quarantine), but silver's tables missing: the stream would
      resume past events silver no longer holds. "Missing": the quarantine table, which every start
      creates before its first batch, or any table the job listed in `_state/tables.json` (its
      `_delta_log` is gone). A cheap check (a few object lookups), no table is loaded.
    """
    marker, marker_fs = hadoop_path(spark, reset_marker(layout))
    if marker_fs.exists(marker):
        raise CheckpointError(
            f"`lakehouse reset-silver` was interrupted ({reset_marker(layout)} is still there): silver "
            f"and its checkpoints are partly deleted. Run {REBUILD} again to finish it, then start."
        )
    p, fs = hadoop_path(spark, epoch.checkpoint + "/offsets")
    has_checkpoint = bool(fs.exists(p))
    if epoch.source == KAFKA:
        # a kafka epoch that has not run a batch yet starts at its hand-over point
        missing = epoch.ran and not has_checkpoint
    else:
        root, root_fs = hadoop_path(spark, layout.root)
        # anything under the silver root (a table, the quarantine, transaction state) was written
        # by an earlier run
        missing = bool(root_fs.exists(root)) and len(root_fs.listStatus(root)) > 0 and not has_checkpoint
    if missing:
        raise CheckpointError(
            f"the streaming checkpoint {epoch.checkpoint} is missing but silver ({layout.root}) was "
            "written by an earlier run. Restore the checkpoint, or rebuild silver from bronze with "
            f"{REBUILD} and start again."
        )
    gone = missing_tables(spark, epoch, layout)
    if gone:
        raise CheckpointError(
            f"the streaming checkpoint {epoch.checkpoint} records applied batches but silver "
            f"({layout.root}) no longer has {', '.join(gone[:3])}{' …' if len(gone) > 3 else ''} "
            "(deleted, or an older `reset-silver` was interrupted): resuming would skip what they "
            f"held. Rebuild silver from bronze with {REBUILD} and start again."
        )


def missing_tables(spark: SparkSession, epoch: Epoch, layout: Layout) -> list[str]:
    """Silver tables an earlier run wrote that are gone, described; [] on a first start (no batch
    committed, no source state)."""
    state, state_fs = hadoop_path(spark, layout.source_state)
    if not batch_ids(spark, epoch.checkpoint, "commits") and not state_fs.exists(state):
        return []  # a first start: nothing was applied
    expected = {"the quarantine": layout.quarantine}
    try:
        listed = json.loads(read_text(spark, f"{layout.root}/_state/tables.json") or '{"tables": []}')
        expected |= {t["source"]: layout.table(t["source"]) for t in listed["tables"]}
    except (ValueError, KeyError, TypeError):  # a status object of another shape proves nothing
        pass
    out = []
    for name, path in expected.items():
        log_dir, log_fs = hadoop_path(spark, path + "/_delta_log")
        if not log_fs.exists(log_dir):
            out.append(f"{name} ({path})")
    return out
