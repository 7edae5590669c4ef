"""What every command shares: settings, the client (real or sandbox), errors, logging.

The key is read here and only handed to the client, which wraps it in a
`SecretStr`; no message built here contains it, and the log handler redacts
whatever else might.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from .. import DEFAULT_BASE_URL, InvalidInputError, SMSPartnerClient, SMSPartnerError
from ..sandbox import Sandbox
from ..testing import sandbox_client
from ._internals import DEFAULT_REGION, ENV_API_KEY, redact
from ._read import InputProblem

__all__ = [
    "BAD_INPUT",
    "EXIT_CODES",
    "ONE_CALL_EXIT_CODES",
    "Settings",
    "UsageProblem",
    "exit_codes",
    "open_client",
    "run",
    "setup_logging",
    "usage_errors",
]

T = TypeVar("T")

#: What exit code 2 means for every command that reads input.
BAD_INPUT = "bad input: a bad option, no API key, an unreadable file"


def exit_codes(*codes: str | None) -> str:
    """A command's --help epilog: `codes[n]` is what exit code n means for it (None: unused)."""
    lines = ["\b", "Exit codes:"]
    for code, text in enumerate(codes):
        if text is None:
            continue
        first, *rest = text.split("\n")
        lines.append(f"  {code}  {first}")
        lines.extend(f"     {line}" for line in rest)
    return "\n".join(lines) + "\n"


#: The group's: each command's --help says what its own codes mean.
EXIT_CODES = exit_codes(
    "success (each command's --help says what that means for it)",
    "the API refused or failed for good, answers differ (demo),\nor Ctrl-C",
    BAD_INPUT,
)
#: `one`, `message` and `tag`: one question, one answer.
ONE_CALL_EXIT_CODES = exit_codes(
    "the API answered",
    "the API refused (bad key, IP not allowed), did not know\nthe message or tag "
    "(not found), or the call failed\nafter all retries",
    BAD_INPUT,
)


class UsageProblem(click.ClickException):
    """A usage error found after parsing (bad input data): exit 2, without the usage text."""

    exit_code = 2


@attrs.frozen
class Settings:
    """The shared options' values; those a command does not take keep these defaults."""

    sandbox: bool = False
    api_key_file: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    response_format: str = "json"
    concurrency: int = 8
    timeout: float = 30.0
    region: str = DEFAULT_REGION

    def api_key(self) -> str | None:
        """The key from the file, else the environment; never part of any message."""
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise click.UsageError(
                    f"cannot read the API key file {self.api_key_file}: {exc.strerror}"
                ) from None
            if not key:
                raise click.UsageError(f"the API key file {self.api_key_file} is empty")
            return key
        return os.environ.get(ENV_API_KEY, "").strip() or None

    def options(self) -> dict[str, Any]:
        return {
            "response_format": self.response_format,
            "max_concurrency": self.concurrency,
            "timeout": self.timeout,
            "default_region": self.region,
        }


@asynccontextmanager
async def open_client(
    settings: Settings, sandbox: Sandbox | None = None
) -> AsyncIterator[SMSPartnerClient]:
    """The real API's client, or one wired in-process to a sandbox (any key, or none)."""
    key = settings.api_key()
    if settings.sandbox or sandbox is not None:
        sandbox = sandbox if sandbox is not None else Sandbox(api_key=None)
        async with sandbox_client(sandbox, api_key=key, **settings.options()) as client:
            yield client
        return
    if key is None:
        raise click.UsageError(
            f"no API key: set {ENV_API_KEY}, pass --api-key-file PATH, "
            "or try the emulator with --sandbox"
        )
    # The aiohttp pool: a command line is a bulk job, where it keeps up at any concurrency.
    client = SMSPartnerClient(
        key, base_url=settings.base_url, transport="aiohttp", **settings.options()
    )
    async with client:
        yield client


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, with bad input turned into exit code 2, other library errors into 1.

    A one-line message instead of a traceback: the operator needs the API's code
    and text, not our stack.
    """
    try:
        with usage_errors():
            return asyncio.run(main)
    except SMSPartnerError as exc:
        raise click.ClickException(redact(str(exc))) from None


@contextmanager
def usage_errors() -> Iterator[None]:
    """Input that cannot be read as pairs, found while reading it: exit code 2, one line."""
    try:
        yield
    except (InvalidInputError, InputProblem) as exc:
        raise UsageProblem(str(exc)) from None


class _LogFilter(logging.Filter):
    """Keys out of every record; at -v, httpx's request lines out altogether.

    The library redacts its own and httpx's records; this catches the rest. httpx
    logs each URL at INFO, and message-status URLs carry the phone number, so
    those lines wait for -vv (DEBUG), where the operator asked for everything.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self._level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if self._level > logging.DEBUG and record.name.startswith(("httpx", "httpcore")):
            return record.levelno >= logging.WARNING
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def setup_logging(ctx: click.Context, verbose: int) -> None:
    """Errors only by default: retries are expected and counted, -v shows them as they happen.

    Undone when the command ends, so that running it in-process (tests, other
    tools) leaves the host's logging as it was.
    """
    level = (logging.ERROR, logging.INFO)[verbose] if verbose < 2 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_LogFilter(level))
    handler.setLevel(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(min(level, root.getEffectiveLevel()))

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)

    ctx.call_on_close(restore)
