"""Bad input to a member gets a clear error for that client alone: the member
keeps serving everyone else and nothing stored changes."""

from __future__ import annotations

import asyncio
import struct

import msgpack
import pytest
from conftest import leader_of

from raftstore.client import RaftstoreClient, RaftstoreError
from raftstore.protocol import MAX_REQUEST_BYTES, decode_body, encode, read_frame


@pytest.fixture
async def setup(make_cluster, client_for):
    cluster = make_cluster()
    client = client_for(cluster)
    leader = await leader_of(client, cluster)
    await client.put(b"keep", b"me")
    ep = cluster.config.member(leader).client
    before = await client.digest(ep)
    return cluster, client, ep, before


async def raw(ep: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = ep.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port), limit=64 * 1024 * 1024)


async def reply(reader: asyncio.StreamReader) -> dict | None:
    frame = await asyncio.wait_for(read_frame(reader), 5)
    return None if frame is None else decode_body(frame[1])


async def assert_unchanged_and_serving(client: RaftstoreClient, ep: str, before: dict) -> None:
    after = await client.digest(ep)
    assert (after["digest"], after["revision"]) == (before["digest"], before["revision"])
    kv = await client.get_one(b"keep")
    assert kv is not None and kv.value == b"me"


async def test_garbage_frame_gets_error_and_connection_closed(setup) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    body = b"\xc1\xc1\xc1 this is not msgpack"
    writer.write(struct.pack(">I", len(body)) + body)
    msg = await reply(reader)
    assert msg is not None and msg["error"]["code"] == "bad_frame"
    assert await reply(reader) is None  # closed: framing can no longer be trusted
    writer.close()
    await assert_unchanged_and_serving(client, ep, before)


async def test_non_map_frame_is_rejected(setup) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    body = msgpack.packb([1, 2, 3])
    writer.write(struct.pack(">I", len(body)) + body)
    msg = await reply(reader)
    assert msg["error"]["code"] == "bad_frame" and "map" in msg["error"]["message"]
    writer.close()
    await assert_unchanged_and_serving(client, ep, before)


async def test_truncated_frame_only_drops_that_connection(setup) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    frame = encode({"id": 1, "op": "put", "key": b"half", "value": b"x" * 1000})
    writer.write(frame[: len(frame) // 2])
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.2)
    await assert_unchanged_and_serving(client, ep, before)
    assert await client.get_one(b"half") is None


async def test_unknown_operation_is_named(setup) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    writer.write(encode({"id": 7, "op": "explode"}))
    msg = await reply(reader)
    assert msg["id"] == 7 and msg["error"]["code"] == "unknown_op" and "explode" in msg["error"]["message"]
    # The connection stays usable for well-formed requests.
    writer.write(encode({"id": 8, "op": "status"}))
    msg = await reply(reader)
    assert msg["id"] == 8 and "result" in msg
    writer.close()
    await assert_unchanged_and_serving(client, ep, before)


async def test_value_over_request_limit_is_refused(setup) -> None:
    cluster, client, ep, before = setup
    with pytest.raises(RaftstoreError) as info:
        await client.put(b"big", b"x" * (MAX_REQUEST_BYTES + 1))
    assert info.value.code == "request_too_large"
    # Just under the limit still works (frame overhead included).
    await client.put(b"almost", b"y" * (MAX_REQUEST_BYTES - 1024))
    kv = await client.get_one(b"almost")
    assert kv is not None and len(kv.value) == MAX_REQUEST_BYTES - 1024
    assert await client.get_one(b"big") is None


async def test_absurd_frame_length_closes_that_connection_only(setup) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    writer.write(struct.pack(">I", 2**31))
    msg = await reply(reader)
    assert msg["error"]["code"] == "frame_too_large"
    writer.close()
    await assert_unchanged_and_serving(client, ep, before)


@pytest.mark.parametrize(
    "request_",
    [
        {"op": "put", "key": "not-bytes", "value": b"v"},
        {"op": "put", "key": b"k", "value": 12},
        {"op": "range", "key": 5},
        {"op": "lease_grant", "ttl": -3},
        {"op": "txn", "compare": "nonsense", "success": [], "failure": []},
        {"op": "put", "key": b"", "value": b"v"},
        {"op": 42},
    ],
)
async def test_malformed_requests_get_invalid_argument(setup, request_: dict) -> None:
    cluster, client, ep, before = setup
    reader, writer = await raw(ep)
    writer.write(encode({"id": 3, **request_}))
    msg = await reply(reader)
    assert msg["id"] == 3 and msg["error"]["code"] == "invalid_argument", msg
    writer.close()
    await assert_unchanged_and_serving(client, ep, before)


async def test_other_clients_keep_working_during_abuse(setup) -> None:
    cluster, client, ep, before = setup

    async def abuse() -> None:
        for _ in range(20):
            reader, writer = await raw(ep)
            writer.write(b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1")
            await writer.drain()
            writer.close()

    async def work() -> int:
        n = 0
        for i in range(50):
            await client.put(f"good/{i}".encode(), b"v")
            n += 1
        return n

    _, n = await asyncio.gather(abuse(), work())
    assert n == 50
    assert (await client.get(b"good/", prefix=True)).count == 50
