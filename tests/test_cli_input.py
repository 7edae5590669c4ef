"""`smspartner-status check` input: bad rows (strict or skipped), delimiters, BOMs, encodings."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smspartner_async.sandbox import Sandbox

from .test_cli import (
    assert_matches,
    csv_rows,
    e164,
    freeze_sandboxes,
    invoke,
    sample,
    write_csv,
)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> list[Sandbox]:
    return freeze_sandboxes(monkeypatch)


BAD_PHONE = "not a phone number in E.164 or FR national format: 'hello'"
BAD_ID = "message id must be a positive integer of at most 64 bits: '-5'"


def with_bad_rows(path: Path) -> tuple[Path, list[tuple[str, int]], dict[int, str]]:
    """A CSV of 10 good pairs and three bad rows; returns it, the good pairs, {line: reason}."""
    good = sample(10)
    lines = ["phone_number,message_id"]
    lines += [f"{p},{m}" for p, m in good[:3]]  # lines 2-4
    lines += ["hello,1000002"]  # line 5
    lines += [f"{good[3][0]}"]  # line 6
    lines += [f"{p},{m}" for p, m in good[3:6]]  # lines 7-9
    lines += ["", f"{good[0][0]},-5"]  # a blank line 10 (not an error), line 11
    lines += [f"{p},{m}" for p, m in good[6:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, good, {5: BAD_PHONE, 6: f"too few columns: {[good[3][0]]!r}", 11: BAD_ID}


def nothing_sent(sandboxes: list[Sandbox]) -> bool:
    return all(s.stats.total == 0 for s in sandboxes)


# -- strict: every bad row reported, nothing sent, no output file --------------------


def test_strict_reports_every_bad_row_and_writes_nothing(
    tmp_path: Path, frozen: list[Sandbox]
) -> None:
    source, _, bad = with_bad_rows(tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    result = invoke("--sandbox", "check", str(source), "-o", str(out))
    assert result.exit_code == 2
    for line, reason in bad.items():
        assert f"line {line}: {reason}" in result.stderr
    assert "3 bad rows" in result.stderr
    assert "--skip-bad-rows" in result.stderr  # the way out is named
    assert not out.exists()  # not even a header
    assert nothing_sent(frozen)


def test_strict_writes_nothing_to_stdout_either(tmp_path: Path, frozen: list[Sandbox]) -> None:
    source, _, bad = with_bad_rows(tmp_path / "in.csv")
    result = invoke("--sandbox", "check", input=source.read_text(encoding="utf-8"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert [f"line {n}" in result.stderr for n in bad] == [True] * 3
    assert nothing_sent(frozen)


def test_strict_jsonl_reports_every_bad_line(frozen: list[Sandbox]) -> None:
    (phone, mid), *_ = sample(1)
    lines = [
        json.dumps({"phone_number": phone, "message_id": mid}),
        "{not json",
        json.dumps({"phone_number": phone}),
        "42",
        json.dumps([phone, "abc"]),
        json.dumps([phone, mid]),
    ]
    result = invoke("--sandbox", "check", input="\n".join(lines) + "\n")
    assert result.exit_code == 2
    assert "line 2: not JSON" in result.stderr
    assert "line 3: no key 'message_id' or 'messageId'" in result.stderr
    assert "line 4: expected an object or a [phone, id] pair" in result.stderr
    assert "line 5: message id must be a positive integer" in result.stderr
    assert "line 1:" not in result.stderr
    assert "line 6:" not in result.stderr
    assert "4 bad rows" in result.stderr
    assert nothing_sent(frozen)


def test_strict_with_a_rejects_file(tmp_path: Path, frozen: list[Sandbox]) -> None:
    source, _, bad = with_bad_rows(tmp_path / "in.csv")
    rejects = tmp_path / "rejects.csv"
    out = tmp_path / "out.csv"
    result = invoke("--sandbox", "check", str(source), "-o", str(out), "--rejects", str(rejects))
    assert result.exit_code == 2
    assert "line 5:" not in result.stderr  # listed in the file instead
    assert str(rejects) in result.stderr
    assert read_rejects(rejects) == bad
    assert not out.exists()


def test_good_input_from_stdin_is_read_twice_and_checked(frozen: list[Sandbox]) -> None:
    """Strict mode checks every row before sending: stdin is kept for the second reading."""
    pairs = sample(30)
    text = "phone_number,message_id\n" + "".join(f"{p},{m}\n" for p, m in pairs)
    result = invoke("--sandbox", "check", "-", input=text)
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


# -- --skip-bad-rows ----------------------------------------------------------------


def read_rejects(path: Path) -> dict[int, str]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return {int(r["line"]): r["reason"] for r in rows}


def test_skip_bad_rows_checks_the_rest_and_counts_them(
    tmp_path: Path, frozen: list[Sandbox]
) -> None:
    source, good, bad = with_bad_rows(tmp_path / "in.csv")
    result = invoke("--sandbox", "check", str(source), "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), good)  # indexes count the pairs kept
    for line, reason in bad.items():
        assert f"line {line}: {reason}" in result.stderr
    assert "10 pairs checked" in result.stderr
    assert f"{'bad rows skipped':<28}{3:>9}" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_runaway_line_is_a_bad_row_read_in_bounded_pieces(
    tmp_path: Path, frozen: list[Sandbox], fmt: str
) -> None:
    """One line of megabytes (a corrupt export, a file without newlines) is a bad row named
    by its line number, read in pieces of at most the cap and dropped: the lines after it
    keep their numbers, and memory stays bounded whatever the line's length."""
    from smspartner_async.cli._read import MAX_LINE

    good = sample(3)
    huge = "x" * (3 * MAX_LINE + 17)
    if fmt == "csv":
        lines = ["phone_number,message_id", f"{good[0][0]},{good[0][1]}"]
        lines += [f"{good[1][0]},{good[1][1]},{huge}", f"{good[2][0]},{good[2][1]}", "hello,1"]
    else:
        lines = [json.dumps({"phone_number": p, "message_id": m}) for p, m in good[:1]]
        lines += [json.dumps({"phone_number": good[1][0], "message_id": good[1][1], "pad": huge})]
        lines += [json.dumps({"phone_number": good[2][0], "message_id": good[2][1]})]
        lines += [json.dumps({"phone_number": "hello", "message_id": 1})]
    source = tmp_path / f"in.{fmt}"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("--sandbox", "check", str(source), "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    first = 2 if fmt == "csv" else 1  # the line of the first pair
    assert f"line {first + 1}: line over {MAX_LINE:,} characters" in result.stderr
    assert f"line {first + 3}: not a phone number" in result.stderr  # numbers kept after it
    assert "2 pairs checked" in result.stderr


def test_skip_bad_rows_into_a_rejects_file(tmp_path: Path, frozen: list[Sandbox]) -> None:
    source, good, bad = with_bad_rows(tmp_path / "in.csv")
    rejects = tmp_path / "rejects.csv"
    out = tmp_path / "out.jsonl"
    args = ["check", str(source), "--skip-bad-rows", "--rejects", str(rejects), "-o", str(out)]
    result = invoke("--sandbox", *args)
    assert result.exit_code == 0, result.output
    assert read_rejects(rejects) == bad
    assert "line 5:" not in result.stderr
    assert f"{'bad rows skipped':<28}{3:>9}" in result.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(good)


def test_skip_bad_rows_without_any(tmp_path: Path, frozen: list[Sandbox]) -> None:
    pairs = sample(20)
    source = write_csv(tmp_path / "in.csv", pairs)
    rejects = tmp_path / "rejects.csv"
    args = ["check", str(source), "--skip-bad-rows", "--rejects", str(rejects)]
    result = invoke("--sandbox", *args)
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)
    assert read_rejects(rejects) == {}
    assert f"{'bad rows skipped':<28}{0:>9}" in result.stderr


def test_a_header_without_the_columns_stops_even_when_skipping(
    tmp_path: Path, frozen: list[Sandbox]
) -> None:
    source = write_csv(tmp_path / "in.csv", sample(3), header="mobile,sms_id")
    result = invoke("--sandbox", "check", str(source), "--skip-bad-rows")
    assert result.exit_code == 2
    assert "no column 'phone_number' or 'phoneNumber'" in result.stderr


# -- delimiters, BOMs, encodings --------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiter_is_detected(tmp_path: Path, frozen: list[Sandbox], delimiter: str) -> None:
    pairs = sample(25)
    source = tmp_path / "in.csv"
    text = f"phone_number{delimiter}message_id\n"
    text += "".join(f"{p}{delimiter}{m}\n" for p, m in pairs)
    source.write_text(text, encoding="utf-8")
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


def test_french_excel_export(tmp_path: Path, frozen: list[Sandbox]) -> None:
    """ "CSV UTF-8" from a French Excel: a BOM, semicolons, CRLF, commas inside quoted cells."""
    pairs = sample(25, national_share=1.0)
    rows = ["Nom;phone_number;message_id;Note\r\n"]
    rows += [
        f'"Dupont, Jean";{p[:2]} {p[2:4]} {p[4:6]} {p[6:8]} {p[8:]};{m};"a;b"\r\n' for p, m in pairs
    ]
    source = tmp_path / "export.csv"
    source.write_bytes(b"\xef\xbb\xbf" + "".join(rows).encode("utf-8"))
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)
    # The same bytes through stdin.
    result = invoke("--sandbox", "check", input=source.read_bytes())
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


def test_bom_before_jsonl(frozen: list[Sandbox]) -> None:
    pairs = sample(5)
    text = "".join(json.dumps([p, m]) + "\n" for p, m in pairs)
    result = invoke("--sandbox", "check", input=b"\xef\xbb\xbf" + text.encode())
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


@pytest.mark.parametrize(("name", "char"), [(";", ";"), ("tab", "\t"), ("\\t", "\t"), ("|", "|")])
def test_delimiter_option_forces_it(
    tmp_path: Path, frozen: list[Sandbox], name: str, char: str
) -> None:
    pairs = sample(10)
    source = tmp_path / "in.csv"
    # A header the sniffer would read with a comma: only the option gets it right.
    text = f"phone_number{char}message_id{char}remark, with, commas\n"
    text += "".join(f"{p}{char}{m}{char}x, y, z\n" for p, m in pairs)
    source.write_text(text, encoding="utf-8")
    assert invoke("--sandbox", "check", str(source)).exit_code == 2
    result = invoke("--sandbox", "check", str(source), "--delimiter", name)
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


def test_wrong_delimiter_names_the_option(tmp_path: Path, frozen: list[Sandbox]) -> None:
    pairs = sample(3)
    source = tmp_path / "in.csv"
    source.write_text(
        "phone_number;message_id\n" + "".join(f"{p};{m}\n" for p, m in pairs), encoding="utf-8"
    )
    result = invoke("--sandbox", "check", str(source), "--delimiter", ",")
    assert result.exit_code == 2
    assert "--delimiter" in result.stderr
    result = invoke("--sandbox", "check", str(source), "--delimiter", "ab")
    assert result.exit_code == 2
    assert "one character" in result.stderr


def test_not_utf8_is_a_usage_error(tmp_path: Path, frozen: list[Sandbox]) -> None:
    (phone, mid), *_ = sample(1)
    source = tmp_path / "latin1.csv"
    source.write_bytes(f"nom;phone_number;message_id\nHélène;{phone};{mid}\n".encode("cp1252"))
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 2
    assert "UTF-8" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bom_before_the_phone_column_in_a_file(tmp_path: Path, frozen: list[Sandbox]) -> None:
    """Read twice (checked, then sent): the BOM must go both times."""
    pairs = sample(10)
    source = tmp_path / "in.csv"
    text = "phone_number;message_id\r\n" + "".join(f"{p};{m}\r\n" for p, m in pairs)
    source.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


def test_no_key_leaves_no_output_file(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "in.csv", sample(3))
    out = tmp_path / "out.csv"
    result = invoke("check", str(source), "-o", str(out))
    assert result.exit_code == 2
    assert "no API key" in result.stderr
    assert not out.exists()


def run_in_a_process(*args: str, input: bytes) -> subprocess.CompletedProcess[bytes]:
    """The CLI with a real pipe on stdin, which cannot seek back like CliRunner's."""
    env = {k: v for k, v in os.environ.items() if k != "SMSPARTNER_API_KEY"}
    command = [sys.executable, "-m", "smspartner_async.cli", *args]
    return subprocess.run(command, input=input, capture_output=True, env=env, timeout=60)


def test_stdin_from_a_pipe_is_checked_then_sent() -> None:
    pairs = sample(40)
    text = "phone_number;message_id\n" + "".join(f"{p};{m}\n" for p, m in pairs)
    done = run_in_a_process("--sandbox", "check", "--ordered", input=text.encode())
    assert done.returncode == 0, done.stderr
    rows = csv_rows(done.stdout.decode())
    assert [int(r["index"]) for r in rows] == list(range(40))
    assert [r["phone_number"] for r in rows] == [e164(p) for p, _ in pairs]
    bad = text + "hello,1\n"
    done = run_in_a_process("--sandbox", "check", input=bad.encode())
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"line 42: " in done.stderr
    latin1 = "nom;phone_number;message_id\nH\u00e9l\u00e8ne;+33612345678;1\n".encode("cp1252")
    done = run_in_a_process("--sandbox", "check", input=latin1)
    assert done.returncode == 2
    assert b"not UTF-8" in done.stderr
    assert b"Traceback" not in done.stderr


# -- edge cases a newcomer meets: a JSON array, a row of commas, joining rejects ------


def test_a_json_array_is_one_clear_error_not_one_per_line(
    tmp_path: Path, frozen: list[Sandbox]
) -> None:
    pairs = sample(20)
    items = [{"phone_number": p, "message_id": m} for p, m in pairs]
    pretty = tmp_path / "pairs.json"
    pretty.write_text(json.dumps(items, indent=2), encoding="utf-8")
    one_line = tmp_path / "one-line.json"
    one_line.write_text(json.dumps(items), encoding="utf-8")
    for source in (pretty, one_line):
        result = invoke("--sandbox", "check", str(source))
        assert result.exit_code == 2
        assert "JSON array; JSONL is expected" in result.stderr
        assert "line 2:" not in result.stderr
        assert result.stderr.count("\n") <= 2
        assert nothing_sent(frozen)


def test_a_jsonl_file_of_pairs_as_arrays_still_reads(frozen: list[Sandbox]) -> None:
    pairs = sample(5)
    text = "".join(json.dumps([p, m]) + "\n" for p, m in pairs)
    result = invoke("--sandbox", "check", "--input-format", "jsonl", input=text)
    assert result.exit_code == 0, result.output
    assert_matches(csv_rows(result.stdout), pairs)


def test_a_row_of_empty_cells_is_a_bad_row_not_dropped(
    tmp_path: Path, frozen: list[Sandbox]
) -> None:
    good = sample(2)
    source = tmp_path / "in.csv"
    lines = ["phone_number,message_id", f"{good[0][0]},{good[0][1]}", ",", "", "   "]
    lines += [f"{good[1][0]},{good[1][1]}"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke("--sandbox", "check", str(source))
    assert result.exit_code == 2
    assert "line 3: empty cells only" in result.stderr
    assert "line 4" not in result.stderr  # blank lines are not rows
    assert "line 5" not in result.stderr
    skipped = invoke("--sandbox", "check", str(source), "--skip-bad-rows")
    assert skipped.exit_code == 0, skipped.output
    assert f"{'bad rows skipped':<28}{1:>9}" in skipped.stderr
    assert len(csv_rows(skipped.stdout)) == 2


def test_output_lines_join_the_rejects_file(tmp_path: Path, frozen: list[Sandbox]) -> None:
    """With rows skipped, `index` counts the pairs checked; `line` is the rejects file's."""
    source, good, bad = with_bad_rows(tmp_path / "in.csv")
    rejects = tmp_path / "rejects.csv"
    args = ["check", str(source), "--skip-bad-rows", "--rejects", str(rejects), "--ordered"]
    result = invoke("--sandbox", *args)
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    input_lines = source.read_text(encoding="utf-8").splitlines()
    for row in rows:
        number = int(row["line"])
        phone, message_id = input_lines[number - 1].split(",")
        assert row["message_id"] == message_id
        assert row["phone_number"] == e164(phone)
    assert read_rejects(rejects) == bad
    assert {int(r["line"]) for r in rows}.isdisjoint(bad)
    assert [int(r["index"]) for r in rows] == list(range(len(good)))
