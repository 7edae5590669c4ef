"""The README's and the guides' Python blocks run as they are written.

Each ```python block of README.md and docs/*.md (the reference pages are
rendered from docstrings) is written to a file and run in a fresh process:

- a block that defines `test_*` functions is a test example: it runs under
  pytest, in a directory whose pyproject.toml is the pytest configuration the
  docs show (a ```toml block setting pytest-asyncio's mode), with no
  SMSPARTNER_* variable set, as in a user's test suite;
- any other block runs as a script against the sandbox served over TCP, with
  SMSPARTNER_BASE_URL pointing at it, as the README's recipe says. No key is
  set unless the text sets one: `<!-- env: SMSPARTNER_API_KEY=demo -->` right
  before the block says which variables the text around it exports.

A block that is not meant to run (a fragment of a larger program, a recipe
that needs Redis or a web server) says so, and why, in an HTML comment right
before it: `<!-- not run: the reason -->`. The reason is this test's skip
message. A block marked `<!-- file: conftest.py -->` is that file, next to the
test examples that follow it in its page.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not run|env|file)\s*:?\s*(?P<text>.*?)\s*-->\s*$")
_TEST_DEF = re.compile(r"^(async )?def test_\w+\(", re.MULTILINE)
TIMEOUT = 120


class Block(NamedTuple):
    page: Path
    line: int
    lang: str
    code: str
    markers: dict[str, str]

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_test(self) -> bool:
        return bool(_TEST_DEF.search(self.code))


def blocks(page: Path) -> Iterator[Block]:
    """Every fenced block of a page, with the markers in the comment lines right before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence is None or not fence.group("lang"):
            number += 1
            continue
        indent = fence.group("indent")
        markers: dict[str, str] = {}
        back = number - 1
        while back >= 0 and (not lines[back].strip() or _MARKER.match(lines[back])):
            if marker := _MARKER.match(lines[back]):
                markers[marker.group("kind")] = marker.group("text")
            back -= 1
        end = number + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line.removeprefix(indent) for line in lines[number + 1 : end]]
        yield Block(page, number + 1, fence.group("lang"), "\n".join(body) + "\n", markers)
        number = end + 1


def python_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.lang == "python"]


class Program(NamedTuple):
    block: Block
    files: dict[str, str]
    """Files written next to it (a conftest.py the page showed before it)."""


def programs() -> list[Program]:
    """Each block to run, with the files its page showed before it."""
    runs: list[Program] = []
    files: dict[Path, dict[str, str]] = {}
    for block in python_blocks():
        page_files = files.setdefault(block.page, {})
        if "file" in block.markers:
            page_files[block.markers["file"]] = block.code
        else:
            runs.append(Program(block, dict(page_files)))
    return runs


def pytest_config() -> str:
    """The pytest configuration the docs show next to their first test example."""
    for page in PAGES:
        for block in blocks(page):
            if block.lang == "toml" and "asyncio_mode" in block.code:
                return block.code
    raise AssertionError("no ```toml block in the docs configures pytest-asyncio's mode")


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """The sandbox over TCP, as the README starts it (any key but 'bad-key')."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "smspartner_async.sandbox", "--any-key", "--port", str(port)]
    # Its access log is not read: a pipe nobody empties would block it once full.
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSPARTNER_")}
    env["PYTHONPATH"] = str(ROOT)  # the examples' packages, as from a clone
    return env


@pytest.mark.parametrize("program", [pytest.param(p, id=p.block.name) for p in programs()])
def test_block_runs_as_written(program: Program, sandbox_url: str, tmp_path: Path) -> None:
    block, code = program.block, program.block.code
    if "not run" in block.markers:
        reason = block.markers["not run"]
        assert reason, f"{block.name}: say why the block is not run"
        pytest.skip(f"{block.name}: not run: {reason}")
    env = clean_env()
    if block.is_test:
        (tmp_path / "pyproject.toml").write_text(pytest_config(), encoding="utf-8")
        (tmp_path / "test_example.py").write_text(code, encoding="utf-8")
        for name, text in program.files.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
        pytest_args = ["-q", "-p", "no:cacheprovider", "test_example.py"]
        command = [sys.executable, "-m", "pytest", *pytest_args]
    else:
        env["SMSPARTNER_BASE_URL"] = sandbox_url
        for assignment in block.markers.get("env", "").split():
            name, _, value = assignment.partition("=")
            env[name] = value
        (tmp_path / "example.py").write_text(code, encoding="utf-8")
        command = [sys.executable, "example.py"]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


def test_every_skipped_block_says_why() -> None:
    for block in python_blocks():
        if "not run" in block.markers:
            assert len(block.markers["not run"]) > 10, block.name


def test_the_first_test_example_shows_pytest_asyncio_s_mode() -> None:
    """Copied into a project without pytest-asyncio's auto mode, async tests do not run."""
    for page in PAGES:
        seen_config = False
        for block in blocks(page):
            if block.lang == "toml" and "asyncio_mode" in block.code:
                seen_config = True
            if block.lang == "python" and block.is_test and "not run" not in block.markers:
                uses_marker = "pytest.mark.asyncio" in block.code
                assert seen_config or uses_marker, (
                    f"{block.name}: the page's first test example needs pytest-asyncio's "
                    "configuration (or its marker) shown before it"
                )
                break


def test_the_readme_points_nowhere_it_does_not_lead() -> None:
    """It used to end with "see below", and nothing followed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for match in re.finditer(r"see below|below\)", text):
        assert "\n## " in text[match.end() :], "the README says 'below' after its last section"
    last = text.rstrip().splitlines()[-1]
    assert not last.endswith(":"), f"the README ends mid-sentence: {last!r}"
