"""Validated pairs -> chunks of at most `batch_size` distinct pairs, and their request bodies.

Duplicate pairs are asked once: across the whole input when it is collected
(`chunks_of`), within each chunk when it is streamed (`stream_chunks`, which
must not remember every pair it has seen). A chunk remembers, for each of its
pairs, the input position (or positions, for repeats) its result goes back to.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from itertools import chain

import attrs
import orjson

from ._errors import InvalidInputError
from ._validate import Key, Pairs, validate_pair
from ._window import as_async

__all__ = ["MAX_BATCH", "Chunk", "chunks_of", "first_position", "request_items", "stream_chunks"]

#: The API's limit of pairs per multi-status call.
MAX_BATCH = 500
# Input pairs (repeats included) one streamed chunk may hold before it is sent.
_MAX_HELD = 4 * MAX_BATCH


@attrs.define(slots=True)
class Chunk:
    """Up to `batch_size` distinct keys; `positions[i]` is an input index or a list of them.

    Without duplicates (the common case) `positions` is a `range`, and results
    go back into the output list as one slice.
    """

    keys: list[Key] = attrs.field(factory=list)
    positions: list[int | list[int]] | range = attrs.field(factory=list)
    size: int = 0  # input pairs, duplicates included


def first_position(position: int | list[int]) -> int:
    return position[0] if isinstance(position, list) else position


def chunks_of(keys: list[Key], batch_size: int) -> tuple[list[Chunk], dict[int, int]]:
    """Chunks of distinct keys over the whole input, and {duplicate index: first index}."""
    if len(set(keys)) == len(keys):
        spans = (
            range(start, min(start + batch_size, len(keys)))
            for start in range(0, len(keys), batch_size)
        )
        return [Chunk(keys[span.start : span.stop], span, len(span)) for span in spans], {}
    first: dict[Key, int] = {}
    duplicates: dict[int, int] = {}
    chunks: list[Chunk] = []
    chunk = Chunk()
    for index, key in enumerate(keys):
        seen = first.setdefault(key, index)
        if seen != index:
            duplicates[index] = seen
            continue
        chunk.keys.append(key)
        chunk.positions.append(index)  # type: ignore[union-attr]
        if len(chunk.keys) == batch_size:
            chunks.append(chunk)
            chunk = Chunk()
    if chunk.keys:
        chunks.append(chunk)
    for chunk in chunks:
        chunk.size = len(chunk.keys)
    return chunks, duplicates


async def stream_chunks(
    pairs: Pairs, batch_size: int, region: str, bad: list[InvalidInputError]
) -> AsyncGenerator[Chunk, None]:
    """Chunks read lazily from any iterable; duplicates folded within each chunk only.

    A bad pair ends the stream: its error goes into `bad`, and the pairs read before it
    still come, as a last chunk. Raising it from here would end the window of calls that
    reads ahead (`run_windowed`), losing the answers to every pair read before it.
    """
    chunk, lookup = Chunk(), dict[Key, int]()
    index = 0
    async for pair in as_async(pairs):
        try:
            key = validate_pair(pair, index, region)
        except InvalidInputError as exc:
            bad.append(exc)
            break
        slot = lookup.get(key)
        positions: list[int | list[int]] = chunk.positions  # type: ignore[assignment]
        if slot is None:
            lookup[key] = len(chunk.keys)
            chunk.keys.append(key)
            positions.append(index)
        else:
            held = positions[slot]
            if isinstance(held, list):
                held.append(index)
            else:
                positions[slot] = [held, index]
        chunk.size += 1
        index += 1
        # Repeats count too: memory stays bounded however few distinct pairs there are.
        if len(chunk.keys) == batch_size or chunk.size == _MAX_HELD:
            yield chunk
            chunk, lookup = Chunk(), dict[Key, int]()
    if chunk.keys:
        yield chunk


_ITEM_COMMA = '{"phoneNumber":"%s","messageId":%d},'


def request_items(keys: list[Key]) -> orjson.Fragment:
    """The `SMSStatut_List` JSON, written as text.

    Keys are validated (E.164 is "+" and digits, ids are ints): nothing to
    escape. A dict per pair would live through the request, and 500 of them
    per chunk made the garbage collector's full passes twice as frequent.
    """
    if not keys:
        return orjson.Fragment("[]")
    # One format call for the whole list, not one per pair.
    return orjson.Fragment("[" + (_ITEM_COMMA * len(keys))[:-1] % tuple(chain(*keys)) + "]")
