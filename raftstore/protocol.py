"""Wire format between raftstore clients and members.

A frame is a 4-byte big-endian length followed by one msgpack map. Requests
carry ``id`` (chosen by the client, unique per connection) and ``op``; replies
carry the same ``id`` and either ``result`` or ``error`` (``{"code", "message",
...}``). Watch streams push further frames with the watch request's ``id``.

Limits are explicit: a request body over ``MAX_REQUEST_BYTES`` (etcd's 1.5 MiB)
is read, answered with ``request_too_large`` and dropped; a length header over
``MAX_FRAME_BYTES`` cannot be skipped safely, so the connection is closed after
an error frame.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgpack

MAX_REQUEST_BYTES = 3 * 512 * 1024  # 1.5 MiB, etcd's --max-request-bytes default
MAX_FRAME_BYTES = 16 * 1024 * 1024  # beyond this we refuse to even read the body
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that cannot be decoded; the connection is no longer in sync."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(obj: dict[str, Any]) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError("bad_frame", f"frame is not valid msgpack: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_frame", f"frame must be a msgpack map, got {type(obj).__name__}")
    return obj


async def read_frame(reader: asyncio.StreamReader, max_frame: int = MAX_FRAME_BYTES) -> tuple[int, bytes] | None:
    """Read one frame; return (length, body) or None on a clean EOF between frames.

    Raises ``asyncio.IncompleteReadError`` on EOF inside a frame and
    ``ProtocolError`` for a length the reader refuses to buffer.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise
    (length,) = _HEADER.unpack(header)
    if length > max_frame:
        raise ProtocolError("frame_too_large", f"frame of {length} bytes exceeds the {max_frame}-byte limit")
    body = await reader.readexactly(length)
    return length, body


def error(code: str, message: str, **details: Any) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    err.update(details)
    return err
