"""What every command group shares: the `lakehouse` click group, the stack it acts on, and the
common options (--json, --table, --wait, --rate/--duration)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lakehouse.errors import LakehouseError


def open_stack(scale_out: bool = False) -> Any:
    from lakehouse.launcher.stack import Stack

    return Stack(scale_out=scale_out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakehouse")
def cli() -> None:
    """Real-time CDC lakehouse: Postgres → Debezium → Kafka → bronze (MinIO) → …"""


def rate_options(default_rate: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--rate and --duration, shared by `demo` and `generate`."""

    def wrap(f: Callable[..., None]) -> Callable[..., None]:
        f = click.option(
            "--duration",
            type=click.FloatRange(1, 86_400),
            default=None,
            help="seconds to run [default: until Ctrl-C]",
        )(f)
        return click.option(
            "--rate",
            type=click.FloatRange(0.1, 100_000),
            default=default_rate,
            show_default=True,
            help="changes per second",
        )(f)

    return wrap


def source_stack() -> Any:
    stack = open_stack()
    if not stack.postgres.ready():
        raise LakehouseError("the source Postgres is not running — run `lakehouse up`")
    return stack


table_option = click.option("--table", "table", default=None, help="only this table (schema.table or table)")


json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def wait_option(
    default: float, low: float, help: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--wait", "wait_s", default=default, show_default=True, type=click.FloatRange(low, 3600), help=help
    )
