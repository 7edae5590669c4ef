"""docs/cli.md shows each command's `--help` as the command prints it.

Each `<!-- help: COMMAND -->` comment in docs/cli.md is followed by a ```text
block holding `smspartner-status COMMAND --help` (`smspartner-status --help` for
the name smspartner-status), 80 columns wide. When a command's options or texts change, refresh the
page with `python -m tests.test_docs_cli` and read the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from smspartner_async.cli._commands import cli

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
_BLOCK = re.compile(r"<!-- help: (?P<name>[\w-]+) -->\n```text\n(?P<text>.*?)```\n", re.DOTALL)
GROUP = "smspartner-status"
WIDTH = "80"


def current_help(name: str) -> str:
    args = ["--help"] if name == GROUP else [name, "--help"]
    result = CliRunner().invoke(cli, args, prog_name="smspartner-status", env={"COLUMNS": WIDTH})
    assert result.exit_code == 0, result.output
    return result.stdout


def documented() -> dict[str, str]:
    return {m["name"]: m["text"] for m in _BLOCK.finditer(PAGE.read_text(encoding="utf-8"))}


def test_every_command_s_help_is_on_the_page() -> None:
    assert set(documented()) == {GROUP, *cli.commands}


@pytest.mark.parametrize("name", [GROUP, *sorted(cli.commands)])
def test_the_page_shows_the_help_the_command_prints(name: str) -> None:
    shown = documented().get(name)
    assert shown == current_help(name), (
        f"docs/cli.md's help of {name!r} differs from --help: "
        "refresh it with python -m tests.test_docs_cli"
    )


def refresh() -> None:
    text = PAGE.read_text(encoding="utf-8")

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        return f"<!-- help: {name} -->\n```text\n{current_help(name)}```\n"

    PAGE.write_text(_BLOCK.sub(replace, text), encoding="utf-8")


if __name__ == "__main__":
    refresh()
