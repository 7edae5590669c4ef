"""Sessions: tests (with every optional extra), lint, typing, docs, bench."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYPROJECT = nox.project.load_toml("pyproject.toml")


def group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[aiohttp,cli,redis,sandbox]", *group("test"))
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typing(session: nox.Session) -> None:
    session.install("-e", ".[aiohttp,cli,redis,sandbox]", *group("typing"))
    session.run("mypy", "smspartner_async", "examples", "tests/typing_api.py")


@nox.session
def bench(session: nox.Session) -> None:
    """`nox -s bench` (about 5 min); `nox -s bench -- --quick` for a smoke run."""
    session.install("-e", ".[aiohttp,sandbox]", *group("bench"))
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """`nox -s docs`: build the site into site/, warnings as errors."""
    # ruff (the lint group) only formats the signatures mkdocstrings renders.
    session.install("-e", ".[aiohttp,cli,sandbox]", *group("docs"), *group("lint"))
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})
