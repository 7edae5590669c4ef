"""Helpers shared by the sandbox tests."""

from __future__ import annotations

import httpx
from lxml import etree

from smspartner_async.sandbox import Sandbox

KEY = "sandbox-key"


class FakeClock:
    """A clock tests move by hand, so Waiting records settle without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_client(sandbox: Sandbox) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=sandbox.app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://sandbox/v1")


def xml_root(response: httpx.Response) -> etree._Element:
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    assert response.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<result>")
    root = etree.fromstring(response.content)
    assert root.tag == "result"
    for element in root.iter():
        assert element.tag in ("result", "entry")
    return root


def entries(element: etree._Element) -> list[etree._Element]:
    return list(element)


def value(element: etree._Element) -> str:
    """The text of a leaf entry, without the layout whitespace around CDATA sections."""
    assert len(element) == 0
    return (element.text or "").strip()


def known_pairs(sandbox: Sandbox, n: int, **kwargs: float) -> list[tuple[str, int]]:
    pairs = [p for p in sandbox.data.sample_pairs(n * 2, **kwargs) if sandbox.data.status_of(*p)]
    return pairs[:n]


def unknown_pairs(sandbox: Sandbox, n: int) -> list[tuple[str, int]]:
    pairs = [
        p for p in sandbox.data.sample_pairs(1000 + 100 * n) if sandbox.data.status_of(*p) is None
    ]
    assert len(pairs) >= n
    return pairs[:n]
