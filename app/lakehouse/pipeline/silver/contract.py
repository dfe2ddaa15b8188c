"""The table contract: does an event's schema fit the silver table, and how may silver evolve?

Policy (docs/cdc-semantics.md, "Schema evolution"):
- a column the table does not have yet → added to silver (NULL in older rows);
- a column silver has but the event does not (dropped upstream) → kept, NULL in rows written since;
- a type that widens without loss (int → bigint, float → double, decimal precision up at the same
  or larger scale, date → timestamp) → silver's column is widened (Delta type widening);
- a column overridden to text in spark_streaming/silver.json (`column.overrides`) that silver holds
  in another type → silver's column is rewritten as text (every value cast to its text form);
- anything else (narrowing, string ↔ number, a changed primary key, …) → the events of that schema
  are quarantined with the reason and counted; silver is untouched. The reason names the fix.
Pure: works on Spark types only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import types as T

from lakehouse.pipeline.silver.debezium import ColumnSpec

METADATA_PREFIX = "_"

_INTEGRAL: list[T.DataType] = [T.ByteType(), T.ShortType(), T.IntegerType(), T.LongType()]


@dataclass
class Decision:
    add: list[ColumnSpec] = field(default_factory=list)
    widen: list[tuple[str, T.DataType]] = field(default_factory=list)
    to_text: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def widens(old: T.DataType, new: T.DataType) -> bool:
    """True when every `old` value is exactly representable as `new` (and old != new)."""
    if old == new:
        return False
    if old in _INTEGRAL and new in _INTEGRAL:
        return _INTEGRAL.index(new) > _INTEGRAL.index(old)
    if old in (*_INTEGRAL[:3], T.FloatType()) and new == T.DoubleType():
        return True
    if isinstance(old, T.DecimalType) and isinstance(new, T.DecimalType):
        return new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
    if old in _INTEGRAL and isinstance(new, T.DecimalType):
        digits = {0: 3, 1: 5, 2: 10, 3: 20}[_INTEGRAL.index(old)]
        return new.precision - new.scale >= digits
    return old == T.DateType() and new == T.TimestampNTZType()


def decide(
    silver: T.StructType | None,
    specs: list[ColumnSpec],
    keys: list[str],
    silver_keys: list[str],
    table: str = "<schema.table>",
) -> Decision:
    """What it takes for events with `specs` to be written to a table whose schema is `silver`."""
    d = Decision()
    if any(s.name.startswith(METADATA_PREFIX) for s in specs):
        bad = [s.name for s in specs if s.name.startswith(METADATA_PREFIX)]
        d.rejected.append(
            f"source column(s) {', '.join(bad)} clash with silver's _-prefixed metadata columns"
        )
    if silver is None:
        return d
    if silver_keys and keys != silver_keys:
        d.rejected.append(f"primary key changed from ({', '.join(silver_keys)}) to ({', '.join(keys)})")
    existing = {f.name: f.dataType for f in silver.fields}
    for spec in specs:
        have = existing.get(spec.name)
        if have is None:
            d.add.append(spec)
        elif have == spec.spark_type:
            continue
        elif widens(have, spec.spark_type):
            d.widen.append((spec.name, spec.spark_type))
        elif widens(spec.spark_type, have):
            continue  # narrower than silver (e.g. after a widening was rolled back): still fits
        elif spec.overridden and spec.name not in keys:
            d.to_text.append(spec.name)
        else:
            d.rejected.append(
                f"column {spec.name}: {spec.spark_type.simpleString()} does not fit silver's "
                f"{have.simpleString()} (to keep it as text from now on: "
                f'"column.overrides": {{"{table}.{spec.name}": "text"}} in spark_streaming/silver.json, '
                "then `lakehouse quarantine replay`)"
            )
    return d
