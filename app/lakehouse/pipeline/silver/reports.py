"""What silver's commands report (`tables`, `quarantine list | replay`, `compact`,
`expectations`): typed, so the CLI prints fields rather than picking dicts apart. `as_dict` is
each one's `--json` form."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Blocked:
    """A table whose events wait in quarantine: how many, and the latest reason."""

    events: int
    reason: str


@dataclass(frozen=True)
class TableStatus:
    """A captured source table's silver table: its Trino name (None until Trino registered it),
    location, Delta version, live rows, and what blocks it."""

    source: str
    silver: str | None
    location: str
    version: int | None
    rows: int | None
    blocked: Blocked | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuarantineGroup:
    """Quarantined events of one source table (None: the event could not be parsed) and reason."""

    table: str | None
    reason: str
    events: int
    first: str
    last: str
    example_offset: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _require(answer: dict[str, Any], what: str, *keys: str) -> None:
    """ValueError naming the fields the job's answer lacks."""
    missing = [k for k in keys if k not in answer]
    if missing:
        raise ValueError(f"the silver job's {what} answer lacks {', '.join(missing)}: {answer}")


@dataclass(frozen=True)
class Replayed:
    """The silver job's answer to `quarantine replay`."""

    table: str | None
    replayed: int
    still_quarantined: int

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Replayed:
        _require(answer, "replay", "replayed", "still_quarantined")
        return cls(answer.get("table"), int(answer["replayed"]), int(answer["still_quarantined"]))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Folded:
    """One table's change log folded into its base: keys, up to which `_seq`, in how long."""

    table: str
    keys: int
    upto: int | None  # None: the log held nothing to fold
    seconds: float


@dataclass(frozen=True)
class Compacted:
    """The silver job's answer to `compact`: the folds done, and the error that stopped them."""

    table: str | None
    folded: list[Folded]
    error: str | None

    @classmethod
    def of(cls, answer: dict[str, Any]) -> Compacted:
        _require(answer, "compaction", "folded")
        folds = [
            Folded(str(f["table"]), int(f["keys"]), f["upto"], float(f["seconds"])) for f in answer["folded"]
        ]
        return cls(answer.get("table"), folds, answer.get("error"))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RuleTotals:
    """A row rule of spark_streaming/expectations.yml: rows checked and failed since the results
    began, when last checked, and its last failing row."""

    table: str
    rule: str
    action: str
    expr: str
    checked: int
    failed: int
    last_checked: str | None
    last_failing_row: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CROSS_TABLE = "cross_table"


@dataclass(frozen=True)
class CrossCheck:
    """A cross-table rule, run now: the rows failing it and one of them, or why it did not run."""

    table: str
    rule: str
    rows: str
    failing: int | None
    error: str | None
    last_failing_row: str | None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "action": CROSS_TABLE}
