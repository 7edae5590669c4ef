"""Options every command shares, accepted before or after the command's name.

click parses an option only where it is declared, so `check --sandbox` used to
be "No such option". The shared options are declared on the group and again on
each command that uses them; a value given after the command wins, else the
group's holds (or the default). One given before a command that does not use it
is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ._internals import ENV_API_KEY, ENV_BASE_URL, REGIONS
from ._session import Settings, setup_logging

__all__ = [
    "EVERY",
    "ONE_CALL",
    "file_format_option",
    "input_options",
    "output_options",
    "shared_options",
    "with_settings",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Any region phonenumbers knows (a Choice would list all of them in --help)."""
    if value is None:
        return value
    if value.upper() not in REGIONS:
        raise click.BadParameter(f"{value!r} is not a region code (ISO 3166, as FR, BE, JP)")
    return value.upper()


_DEFAULTS = Settings()

#: Every shared option, by parameter name; each command declares those it uses.
SHARED: dict[str, Decorator] = {
    "sandbox": click.option(
        "--sandbox", is_flag=True, help="Use the built-in emulator (no key, no network)."
    ),
    "api_key_file": click.option(
        "--api-key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"A file holding the API key (else ${ENV_API_KEY}).",
    ),
    "base_url": click.option(
        "--base-url",
        default=_DEFAULTS.base_url,
        show_default=True,
        envvar=ENV_BASE_URL,
        show_envvar=True,
        help="The API's root (a bare host gets /v1), as the library reads it.",
    ),
    "response_format": click.option(
        "--format",
        "response_format",
        type=click.Choice(["json", "xml"]),
        default=_DEFAULTS.response_format,
        show_default=True,
        help="The API's response format (not the output's).",
    ),
    "concurrency": click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=_DEFAULTS.concurrency,
        show_default=True,
        help="API calls in flight.",
    ),
    "timeout": click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=_DEFAULTS.timeout,
        show_default=True,
        help="Seconds per network operation.",
    ),
    "region": click.option(
        "--region",
        default=_DEFAULTS.region,
        show_default=True,
        metavar="CODE",
        callback=_region,
        help="How to read national numbers: a region code (FR, BE, JP...).",
    ),
    "verbose": click.option(
        "-v", "--verbose", count=True, help="-v: INFO logs on stderr, -vv: DEBUG."
    ),
}
#: What a command that talks to the API (or the sandbox in its place) uses.
EVERY = tuple(SHARED)
#: One call each: nothing to run concurrently.
ONE_CALL = tuple(name for name in EVERY if name != "concurrency")


def shared_options(
    command: Callable[..., Any], names: tuple[str, ...] = EVERY
) -> Callable[..., Any]:
    for name in reversed(names):
        command = SHARED[name](command)
    return command


def with_settings(
    uses: tuple[str, ...] = EVERY, *, implied: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Adds the shared options in `uses` to a command, which gets them as a `Settings` first
    argument; the others keep their defaults.

    Put it last, right above the `def`, so that it wraps the bare function. A shared
    option given before the command's name that the command does not use is a usage
    error rather than silently ignored, except those in `implied` (`--sandbox` for
    `demo`, which always runs on the sandbox).
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @click.pass_context
        @functools.wraps(command)
        def merged(ctx: click.Context, /, **kwargs: Any) -> Any:
            mine = {name: kwargs.pop(name) for name in uses}
            parent = ctx.parent
            group = parent.params if parent is not None else {}
            if parent is not None:
                for name in EVERY:
                    if name not in uses and name not in implied and _typed(parent, name):
                        raise click.UsageError(
                            f"{ctx.info_name} does not use {_flag(parent, name)}", ctx=ctx
                        )
            values = {
                name: value if _given(ctx, name) else group.get(name, value)
                for name, value in mine.items()
            }
            setup_logging(ctx, values.pop("verbose", 0))
            return command(Settings(**values), **kwargs)

        return shared_options(merged, uses)

    return decorate


def _flag(ctx: click.Context, name: str) -> str:
    """The option's long spelling, as the group declares it (`--base-url`)."""
    option = next(p for p in ctx.command.params if p.name == name)
    return max(option.opts, key=len)


def _typed(ctx: click.Context, name: str) -> bool:
    """Given on the command line (not from the environment, which every command sees)."""
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source is not ParameterSource.DEFAULT


#: `--output-format` of the commands that write rows to a file only (`sample`, `watch`).
file_format_option = click.option(
    "--output-format",
    type=click.Choice(["csv", "jsonl"]),
    help="Default: from the file name (.csv, .jsonl), else CSV.",
)


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
