"""The disk spool: records survive, damage is contained and counted, nothing raises."""

from __future__ import annotations

import bisect
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aitel.exporters.base import EncodedPacket
from aitel.spool import ACK_NAME, HEADER, DiskSpool, encode_record


def packets(start: int, count: int, size: int = 40) -> list[EncodedPacket]:
    return [
        EncodedPacket(f"id-{n}", b'{"packet_id":"id-%d","pad":"%s"}' % (n, b"x" * size))
        for n in range(start, start + count)
    ]


def drain_all(spool: DiskSpool, step: int = 7) -> list[EncodedPacket]:
    out: list[EncodedPacket] = []
    while batch := spool.take(step):
        out.extend(batch)
        spool.ack(len(batch))
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.seg"))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def test_round_trip_is_byte_identical(directory: Path) -> None:
    """Records come back in order with their packet ids and exact bytes."""
    spool = DiskSpool(directory)
    sent = packets(0, 25)
    assert spool.put(sent) == 25
    assert spool.pending() == 25
    got = drain_all(spool)
    assert [(p.packet_id, p.data) for p in got] == [(p.packet_id, p.data) for p in sent]
    assert spool.pending() == 0
    assert spool.stats().acked == 25


def test_take_without_ack_returns_the_same_records(directory: Path) -> None:
    """take() does not remove; only ack() does, and only the acknowledged prefix."""
    spool = DiskSpool(directory)
    spool.put(packets(0, 10))
    first = spool.take(4)
    assert [p.packet_id for p in spool.take(4)] == [p.packet_id for p in first]
    spool.ack(3)
    assert [p.packet_id for p in spool.take(2)] == ["id-3", "id-4"]
    assert spool.pending() == 7


def test_rotates_segments_and_deletes_delivered_ones(directory: Path) -> None:
    """Small segments rotate; fully acknowledged segments are removed from disk."""
    spool = DiskSpool(directory, segment_bytes=4096)
    spool.put(packets(0, 200))
    assert len(segments(directory)) > 3
    assert len(drain_all(spool, step=50)) == 200
    assert segments(directory) == []


def test_a_later_process_resumes_after_the_acknowledged_position(directory: Path) -> None:
    """Close (or process end) keeps pending records; the next spool replays only those."""
    first = DiskSpool(directory)
    first.put(packets(0, 10))
    first.ack(0)
    first.take(4)
    first.ack(4)
    first.close()
    second = DiskSpool(directory)
    assert second.pending() == 6
    assert [p.packet_id for p in drain_all(second)] == [f"id-{n}" for n in range(4, 10)]
    second.close()
    assert DiskSpool(directory).pending() == 0
    assert list(directory.iterdir()) == []  # drained subdirectories are removed


def test_a_live_spool_is_never_replayed_by_another(directory: Path) -> None:
    """Two spools on one directory: each replays only its own records while both are open."""
    a = DiskSpool(directory)
    b = DiskSpool(directory, adopt_interval_s=0.0)
    a.put(packets(0, 5))
    b.put(packets(100, 5))
    assert [p.packet_id for p in drain_all(b)] == [f"id-{n}" for n in range(100, 105)]
    assert a.pending() == 5
    a.close()
    assert [p.packet_id for p in drain_all(b)] == [f"id-{n}" for n in range(5)]  # adopted


def test_flipped_payload_byte_loses_only_that_record(directory: Path) -> None:
    """A damaged payload is skipped by its length; the records around it survive."""
    spool = DiskSpool(directory)
    spool.put(packets(0, 5))
    spool.close()
    (segment,) = segments(directory)
    data = bytearray(segment.read_bytes())
    record = len(encode_record(packets(0, 1)[0]))
    data[2 * record + HEADER.size + 5] ^= 0xFF  # inside the third payload
    segment.write_bytes(bytes(data))
    again = DiskSpool(directory)
    assert [p.packet_id for p in drain_all(again)] == ["id-0", "id-1", "id-3", "id-4"]
    assert again.stats().corrupt_records == 1


def test_flipped_header_byte_resynchronises_on_the_next_record(directory: Path) -> None:
    """A damaged header (its own CRC fails) is skipped by scanning for the next valid one."""
    spool = DiskSpool(directory)
    spool.put(packets(0, 5))
    spool.close()
    (segment,) = segments(directory)
    data = bytearray(segment.read_bytes())
    record = len(encode_record(packets(0, 1)[0]))
    data[record + 5] ^= 0x10  # the length field of the second record
    segment.write_bytes(bytes(data))
    again = DiskSpool(directory)
    assert [p.packet_id for p in drain_all(again)] == ["id-0", "id-2", "id-3", "id-4"]
    stats = again.stats()
    assert stats.corrupt_records == 1
    assert stats.corrupt_bytes == record


def test_truncation_at_any_offset_keeps_every_whole_record(tmp_path: Path) -> None:
    """Cut the file anywhere: all records before the cut come back, the torn one is counted."""
    source = tmp_path / "source"
    spool = DiskSpool(source)
    spool.put(packets(0, 4, size=3))
    spool.close()
    (segment,) = segments(source)
    data = segment.read_bytes()
    record = len(encode_record(packets(0, 1, size=3)[0]))
    for cut in range(len(data)):
        target = tmp_path / f"cut-{cut}"
        sub = target / segment.parent.name
        sub.mkdir(parents=True)
        (sub / segment.name).write_bytes(data[:cut])
        replay = DiskSpool(target)
        ids = [p.packet_id for p in drain_all(replay)]
        whole = cut // record
        assert ids == [f"id-{n}" for n in range(whole)], cut
        assert replay.stats().corrupt_records == (1 if cut % record else 0), cut


@settings(max_examples=60, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_random_damage_never_raises_and_keeps_untouched_records(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[int, int]]
) -> None:
    """Any set of byte flips: no exception, and every record whose bytes are intact survives."""
    directory = tmp_path_factory.mktemp("fuzz")
    spool = DiskSpool(directory)
    sent = packets(0, 12, size=20)
    spool.put(sent)
    spool.close()
    (segment,) = segments(directory)
    data = bytearray(segment.read_bytes())
    ends = list(itertools.accumulate(len(encode_record(p)) for p in sent))
    touched: set[int] = set()
    for offset, mask in flips:
        offset %= len(data)
        data[offset] ^= mask
        touched.add(bisect.bisect_right(ends, offset))
    segment.write_bytes(bytes(data))
    got = {p.packet_id: p.data for p in drain_all(DiskSpool(directory))}
    for index, packet in enumerate(sent):
        if index not in touched:
            assert got.get(packet.packet_id) == packet.data
    for packet_id, payload in got.items():
        assert payload == next(p.data for p in sent if p.packet_id == packet_id)


def test_size_cap_evicts_the_oldest_and_counts_them(directory: Path) -> None:
    """Over max_bytes, the oldest segments go first; stored = pending + evicted."""
    spool = DiskSpool(directory, max_bytes=16 * 1024, segment_bytes=4096)
    for start in range(0, 600, 50):
        assert spool.put(packets(start, 50)) == 50
    stats = spool.stats()
    assert stats.pending_bytes <= 16 * 1024
    assert stats.evicted > 0
    assert stats.pending + stats.evicted == 600
    ids = [p.packet_id for p in drain_all(spool)]
    assert ids == [f"id-{n}" for n in range(600 - len(ids), 600)]  # the newest survive


def test_a_record_larger_than_the_cap_is_refused_and_counted(directory: Path) -> None:
    """put() reports how many were stored; the oversized record is counted, not raised."""
    spool = DiskSpool(directory, max_bytes=4096)
    batch = [*packets(0, 2), EncodedPacket("huge", b"x" * 10_000), *packets(2, 1)]
    assert spool.put(batch) == 3
    assert spool.stats().too_large == 1


def test_unusable_directory_never_raises(tmp_path: Path) -> None:
    """A spool path that cannot be a directory: put() stores nothing and counts it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    spool = DiskSpool(blocker)
    assert spool.put(packets(0, 3)) == 0
    assert spool.take(10) == []
    spool.ack(3)
    assert spool.pending() == 0
    assert spool.stats().write_errors == 3
    spool.close()


def test_lost_ack_position_means_redelivery_not_loss(directory: Path) -> None:
    """A damaged ACK file restarts from the oldest segment: duplicates, never gaps."""
    spool = DiskSpool(directory)
    spool.put(packets(0, 6))
    spool.take(3)
    spool.ack(3)
    spool.close()
    (ack,) = directory.rglob(ACK_NAME)
    ack.write_bytes(b"garbage")
    assert [p.packet_id for p in drain_all(DiskSpool(directory))] == [f"id-{n}" for n in range(6)]


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_every_fsync_policy_stores_the_same(directory: Path, policy: str) -> None:
    """The fsync policy changes durability against power loss, not what is stored."""
    spool = DiskSpool(directory, fsync=policy)  # type: ignore[arg-type]
    spool.put(packets(0, 5))
    spool.close()
    assert len(drain_all(DiskSpool(directory))) == 5


def test_unknown_fsync_policy_is_a_value_error(directory: Path) -> None:
    with pytest.raises(ValueError, match="fsync"):
        DiskSpool(directory, fsync="sometimes")  # type: ignore[arg-type]


def test_forked_child_writes_its_own_subdirectory(directory: Path) -> None:
    """After fork the child never appends to (or replays) the parent's subdirectory."""
    spool = DiskSpool(directory)
    spool.put(packets(0, 3))
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            if spool.take(10) != [] or spool.put(packets(100, 2)) != 2:
                code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len([d for d in directory.iterdir() if not d.name.startswith(".")]) == 2
    spool.close()
    assert sorted(p.packet_id for p in drain_all(DiskSpool(directory))) == [
        "id-0",
        "id-1",
        "id-100",
        "id-101",
        "id-2",
    ]
