"""Options every command shares, accepted before or after the command's name.

click parses an option only where it is declared, so `check --sandbox` used to
be "No such option". The shared options are declared on the group and again on
each command; a value given after the command wins, else the group's holds
(or the default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .. import DEFAULT_BASE_URL
from ._internals import DEFAULT_REGION, ENV_API_KEY, REGIONS
from ._session import Settings, setup_logging

__all__ = ["input_options", "output_options", "shared_options", "with_settings"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Any region phonenumbers knows (a Choice would list all of them in --help)."""
    if value is None:
        return value
    if value.upper() not in REGIONS:
        raise click.BadParameter(f"{value!r} is not a region code (ISO 3166, as FR, BE, JP)")
    return value.upper()


SHARED: tuple[Decorator, ...] = (
    click.option("--sandbox", is_flag=True, help="Use the built-in emulator (no key, no network)."),
    click.option(
        "--api-key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"A file holding the API key (else ${ENV_API_KEY}).",
    ),
    click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True),
    click.option(
        "--format",
        "response_format",
        type=click.Choice(["json", "xml"]),
        default="json",
        show_default=True,
        help="The API's response format (for the output's, see --output-format).",
    ),
    click.option("--concurrency", type=click.IntRange(min=1), default=8, show_default=True),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=30.0,
        show_default=True,
        help="Seconds per network operation.",
    ),
    click.option(
        "--region",
        default=DEFAULT_REGION,
        show_default=True,
        metavar="CODE",
        callback=_region,
        help="How to read national numbers: a region code (FR, BE, JP...).",
    ),
    click.option("-v", "--verbose", count=True, help="-v: INFO logs on stderr, -vv: DEBUG."),
)
#: The parameter names SHARED declares (one missing here reaches the command as a stray argument).
SHARED_NAMES = (
    "sandbox",
    "api_key_file",
    "base_url",
    "response_format",
    "concurrency",
    "timeout",
    "region",
    "verbose",
)


def shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(SHARED):
        command = option(command)
    return command


def with_settings(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the shared options to a command, which gets them as a `Settings` first argument.

    Put it last, right above the `def`, so that it wraps the bare function.
    """

    @shared_options
    @click.pass_context
    @functools.wraps(command)
    def merged(ctx: click.Context, /, **kwargs: Any) -> Any:
        mine = {name: kwargs.pop(name) for name in SHARED_NAMES}
        group = ctx.parent.params if ctx.parent is not None else {}
        values = {
            name: value if _given(ctx, name) else group.get(name, value)
            for name, value in mine.items()
        }
        setup_logging(ctx, values.pop("verbose"))
        return command(Settings(**values), **kwargs)

    return merged


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source is not ParameterSource.DEFAULT


def output_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--output-format",
        type=click.Choice(["csv", "jsonl", "table"]),
        help="Default: from the file name (.csv, .jsonl); on a terminal a table; else CSV.",
    )(command)
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, allow_dash=True),
        default="-",
        help="Where the rows go (default: stdout).",
    )(command)


def _delimiter(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    value = {"tab": "\t", "\\t": "\t"}.get(value.lower(), value)
    if len(value) != 1 or value in '"\r\n':
        raise click.BadParameter("must be one character (not a quote or a newline), or 'tab'")
    return value


INPUT: tuple[Decorator, ...] = (
    click.argument(
        "input_file",
        metavar="[INPUT]",
        type=click.File("r", encoding="utf-8-sig"),
        default="-",
        required=False,
    ),
    click.option("--input-format", type=click.Choice(["auto", "csv", "jsonl"]), default="auto"),
    click.option("--phone-column", help="Default: phone_number or phoneNumber."),
    click.option("--id-column", help="Default: message_id or messageId."),
    click.option(
        "--delimiter",
        callback=_delimiter,
        help="Between CSV cells: one character, or 'tab'. Default: , ; tab or | from the header.",
    ),
    click.option(
        "--skip-bad-rows",
        is_flag=True,
        help="Go on with the good rows; report, count and leave out the bad ones.",
    ),
    click.option(
        "--rejects",
        type=click.File("w", encoding="utf-8", lazy=False),
        help="Report bad rows to this CSV file (line, reason) rather than stderr.",
    ),
)


def input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The input file and how to read it (`check`, `watch`)."""
    for option in reversed(INPUT):
        command = option(command)
    return command
