"""Ids are time-ordered UUIDv7 and differ across a fork."""

from __future__ import annotations

import os
import uuid

from aitel._ids import new_id, new_trace_id


def test_uuid7_shape_and_order() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    stamps = [u.int >> 80 for u in parsed]
    assert stamps == sorted(stamps)


def test_trace_id_is_32_hex() -> None:
    t = new_trace_id()
    assert len(t) == 32 and int(t, 16)


def test_forked_child_makes_different_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id = os.read(read, 100).decode()
    assert child_id[14:] != new_id()[14:]
