"""The `lakehouse` command line: one click group (`base.cli`), its commands by group in this
package, and `main`, which turns errors into one line and an exit code (0 ok, 1 failure, 2 usage)."""

from __future__ import annotations

import click

# the command groups register their commands on `cli` as they are imported
from lakehouse.cli import data, job_runs, lifecycle, measure, movielens_demo
from lakehouse.cli.base import cli
from lakehouse.errors import ConfigError, LakehouseError, UsageError

__all__ = ["cli", "data", "job_runs", "lifecycle", "main", "measure", "movielens_demo"]


def _unreachable() -> tuple[type[BaseException], ...]:
    """Errors meaning a service the command needs does not answer (the stack, or it, is down);
    imported only when an error happened, so the CLI starts fast."""
    import httpx
    import psycopg
    import urllib3

    return (ConnectionError, psycopg.OperationalError, httpx.TransportError, urllib3.exceptions.HTTPError)


def main(argv: list[str] | None = None) -> int:
    try:
        # standalone_mode=False: click *returns* the code of a `click.exceptions.Exit` raised in a
        # command instead of raising it, so the return value is the exit code
        code = cli.main(args=argv, prog_name="lakehouse", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"lakehouse: error: {exc.format_message()} (see `lakehouse --help`)", err=True)
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except (ConfigError, UsageError) as exc:
        click.echo(f"lakehouse: error: {exc}", err=True)
        return 2
    except LakehouseError as exc:
        click.echo(f"lakehouse: error: {exc}", err=True)
        return 1
    except Exception as exc:
        if not isinstance(exc, _unreachable()):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        click.echo(f"lakehouse: error: {first} — is the stack up? (`lakehouse status`)", err=True)
        return 1
    except SystemExit as exc:
        return int(exc.code or 0)
    return code if isinstance(code, int) else 0
