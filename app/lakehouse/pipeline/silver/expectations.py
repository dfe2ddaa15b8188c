"""spark_streaming/expectations.yml: data-quality rules on silver rows (issue 19).

This module reads and checks the file's shape (tables, names, actions, thresholds) without Spark,
so `lakehouse up` can refuse a bad file before anything starts. Whether an expression parses, names
real columns and is boolean is Spark's to say (silver/expectation_checks.py).

Cross-table rules (the file's `cross_table` list) are not per event: each is a Trino query over
silver returning the rows that break it, run every `every_s` seconds by the monitor
(query/checks.py), which exports the count and alerts on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from lakehouse.errors import ConfigError

if TYPE_CHECKING:
    from lakehouse.config.settings import Settings

#: the rules file's name beside silver.json in the job's state dir (Settings.expectations is
#: the file `up` copies there: spark_streaming/expectations.yml unless LAKEHOUSE_EXPECTATIONS_FILE)
RENDERED = "expectations.yml"
ACTIONS = ("warn", "drop", "fail")
#: the default share of failing rows above which a `warn` rule's alert fires
WARN_RATIO = 0.01
#: a rule's name is a metric label value, a quarantine reason and a column of the results table
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")
_KEYS = {"name", "expr", "action", "warn_ratio"}
#: the file's one key that is not a table: the cross-table rules
CROSS = "cross_table"
_CROSS_KEYS = {"name", "table", "rows", "every_s"}
#: how often a cross-table rule runs by default, and at most (each is a join over silver in Trino)
CROSS_EVERY_S = 300.0
CROSS_MIN_EVERY_S = 30.0


@dataclass(frozen=True)
class Rule:
    table: str  # schema-qualified source table, e.g. movielens.ratings
    name: str
    expr: str
    action: str
    warn_ratio: float

    @property
    def reason(self) -> str:
        """The quarantine reason of an event a `drop` rule refused."""
        return f"expectation: {self.name}"


@dataclass(frozen=True)
class CrossRule:
    """A rule over more than one silver table, checked periodically in Trino, not per event."""

    table: str  # the source table whose rows it judges (its label, as for a per-row rule)
    name: str
    #: a Trino SELECT returning the rows that break the rule ({{catalog}}, {{silver}} are replaced)
    rows: str
    every_s: float


@dataclass(frozen=True)
class Expectations:
    path: Path
    rules: tuple[Rule, ...]
    cross: tuple[CrossRule, ...] = ()

    def of(self, table: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.table == table)

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(r.table for r in self.rules)

    @classmethod
    def load(
        cls, path: Path, known_tables: Iterable[str] | None = None, *, schema: str | None = None
    ) -> Expectations:
        """The file's rules; ConfigError naming the file, the rule and the problem otherwise.
        `known_tables` (the captured source tables), when given, must hold every table named;
        `schema` (the captured source schema), when given, every table's schema."""
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        if raw is None:
            return cls(path, ())
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{path}: expected a mapping of table → list of rules, got {type(raw).__name__}"
            )
        known = None if known_tables is None else set(known_tables)

        def check_table(table: Any, where: str) -> None:
            if not isinstance(table, str) or not _TABLE.match(table):
                raise ConfigError(f"{where}: a table is named schema.table")
            if schema is not None and table.split(".")[0] != schema:
                raise ConfigError(f"{where}: not in the captured schema {schema!r}")
            if known is not None and table not in known:
                raise ConfigError(f"{where}: unknown table (captured: {', '.join(sorted(known)) or 'none'})")

        rules: list[Rule] = []
        cross: tuple[CrossRule, ...] = ()
        for table, items in raw.items():
            where = f"{path}: {table}"
            if table == CROSS:
                cross = _cross_rules(items, where, check_table)
                continue
            check_table(table, where)
            if not isinstance(items, list):
                raise ConfigError(f"{where}: expected a list of rules")
            seen: set[str] = set()
            for i, item in enumerate(items):
                rule = _rule(table, item, f"{where}[{i}]")
                if rule.name in seen:
                    raise ConfigError(f"{where}: rule {rule.name!r} is declared twice")
                seen.add(rule.name)
                rules.append(rule)
        return cls(path, tuple(rules), cross)


def _cross_rules(items: Any, where: str, check_table: Callable[[Any, str], None]) -> tuple[CrossRule, ...]:
    if not isinstance(items, list):
        raise ConfigError(f"{where}: expected a list of rules")
    out: list[CrossRule] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: a cross-table rule is a mapping with name, table and rows")
        name = item.get("name")
        if isinstance(name, str):
            at = f"{at} ({name})"
        unknown = sorted(set(item) - _CROSS_KEYS)
        if unknown:
            raise ConfigError(f"{at}: unknown key(s) {', '.join(map(str, unknown))}")
        missing = sorted(k for k in ("name", "table", "rows") if k not in item)
        if missing:
            raise ConfigError(f"{at}: missing {', '.join(missing)}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{at}: name must be lower_snake_case, at most 63 characters")
        if any(r.name == name for r in out):
            raise ConfigError(f"{where}: rule {name!r} is declared twice")
        check_table(item["table"], at)
        rows = item["rows"]
        if not isinstance(rows, str) or not re.match(r"^\s*(SELECT|WITH)\b", rows, re.IGNORECASE):
            raise ConfigError(f"{at}: rows must be a SELECT (or WITH) query returning the failing rows")
        if ";" in rows:
            raise ConfigError(f"{at}: rows must be one query, without ';'")
        every = item.get("every_s", CROSS_EVERY_S)
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every < CROSS_MIN_EVERY_S:
            raise ConfigError(f"{at}: every_s must be a number of seconds, at least {CROSS_MIN_EVERY_S:.0f}")
        out.append(CrossRule(table=item["table"], name=name, rows=rows.strip(), every_s=float(every)))
    return tuple(out)


def in_force(s: Settings) -> Path:
    """The rules file the running silver job was started with (the copy beside silver.json), or the
    one it will start with when it has not been started yet."""
    rendered = s.state("silver") / RENDERED
    return rendered if rendered.exists() else s.expectations


def _rule(table: str, item: Any, where: str) -> Rule:
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: a rule is a mapping with name, expr and action")
    name = item.get("name")
    if isinstance(name, str):
        where = f"{where} ({name})"
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
    missing = sorted(k for k in ("name", "expr", "action") if k not in item)
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{where}: name must be lower_snake_case, at most 63 characters")
    expr, action = item["expr"], item["action"]
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"{where}: expr must be a non-empty SQL expression")
    if action not in ACTIONS:
        raise ConfigError(f"{where}: unknown action {action!r} (one of {', '.join(ACTIONS)})")
    ratio = item.get("warn_ratio", WARN_RATIO)
    if "warn_ratio" in item and action != "warn":
        raise ConfigError(f"{where}: warn_ratio applies to warn rules only")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ConfigError(f"{where}: warn_ratio must be a number in (0, 1]")
    return Rule(table=table, name=name, expr=expr.strip(), action=action, warn_ratio=float(ratio))
