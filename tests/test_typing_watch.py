"""The watch's public signatures are typed: a misspelt or mistyped argument fails mypy --strict.

`client.watch(pairs, sent_att=3)` used to pass: the methods took `**options: Any`. This
runs mypy (the `typing` group) on snippets, each expected to fail with the error named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="needs mypy (the typing group)")

ROOT = Path(__file__).resolve().parent.parent

SNIPPETS = {
    "async_watch_misspelt": (
        "async def f(client: SMSPartnerClient) -> None:\n"
        "    client.watch([('+33612345678', 1)], sent_att=3)\n",
        'Unexpected keyword argument "sent_att"',
    ),
    "async_watch_bad_store": (
        "async def f(client: SMSPartnerClient) -> None:\n"
        "    client.watch([('+33612345678', 1)], store='nope')\n",
        'Argument "store" to "watch" of "SMSPartnerClient" has incompatible type',
    ),
    "sync_watch_misspelt": (
        "def f(client: SMSPartnerSyncClient) -> None:\n"
        "    client.watch([('+33612345678', 1)], sent_att=3)\n",
        'Unexpected keyword argument "sent_att"',
    ),
    "sandbox_client_misspelt": (
        "async def f() -> None:\n    async with sandbox_client(max_concurency=2):\n        pass\n",
        'Unexpected keyword argument "max_concurency"',
    ),
    "sandbox_client_bad_type": (
        "async def f() -> None:\n    async with sandbox_client(batch_size='500'):\n        pass\n",
        'Argument "batch_size" to "sandbox_client" has incompatible type',
    ),
}
HEADER = (
    "from smspartner_async import SMSPartnerClient, SMSPartnerSyncClient\n"
    "from smspartner_async.testing import sandbox_client\n\n\n"
)


@pytest.mark.slow
def test_misspelt_or_mistyped_watch_arguments_fail_mypy_strict(tmp_path: Path) -> None:
    for name, (body, _) in SNIPPETS.items():
        (tmp_path / f"{name}.py").write_text(HEADER + body)
    out, err, _ = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *(str(tmp_path / f"{name}.py") for name in SNIPPETS),
        ]
    )
    assert not err, err
    for name, (_, expected) in SNIPPETS.items():
        errors = [line for line in out.splitlines() if line.startswith(str(tmp_path / name))]
        assert any(expected in line for line in errors), (name, out)
