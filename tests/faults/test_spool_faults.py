"""The disk spool under SIGKILL, a full disk and a read-only directory (real processes)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from aitel.spool import DiskSpool

from .harness import HERE, PY, child_env, closed_endpoint

pytestmark = pytest.mark.faults


def _payload(n: int) -> bytes:
    return b'{"packet_id":"p%d","pad":"%s"}' % (n, b"x" * (n % 97))


def test_sigkill_at_random_points_loses_no_acknowledged_record(tmp_path: Path) -> None:
    """Writers killed at random moments while writing, rotating and acknowledging: every record
    put and not acknowledged is recovered byte for byte, none that was acknowledged comes back."""
    directory = tmp_path / "spool"
    rng = random.Random(20240611)
    put: set[int] = set()
    acked: set[int] = set()
    uncertain: set[int] = set()
    next_id = 0
    for round_number in range(4):
        proc = subprocess.Popen(
            [PY, str(HERE / "_spool_worker.py"), str(directory), str(next_id), str(round_number)],
            env=child_env(),
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        kill_after = rng.randint(20, 400)
        taken: list[int] = []
        acking: list[int] = []
        highest = next_id
        killed = False
        # Every line the child printed before it died is read, also those after the kill
        # was decided: the child runs on until the signal lands.
        for lines, raw in enumerate(proc.stdout):
            line = raw.decode().split()
            if line[0] == "PUT":
                first, end = int(line[1]), int(line[2])
                put.update(range(first, end))
                highest = max(highest, end)
            elif line[0] == "TAKEN":
                taken = [int(p[1:]) for p in line[1].split(",")]
            elif line[0] == "ACKING":
                acking = taken[: int(line[1])]
                uncertain.update(acking)  # killed now, the ack may or may not have landed
            elif line[0] == "ACKED":
                uncertain.difference_update(acking)
                acked.update(acking)
            if lines >= kill_after and not killed:
                proc.send_signal(signal.SIGKILL)
                killed = True
        if not killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        next_id = highest + 1000  # ids of a batch in flight at the kill are never reused

    spool = DiskSpool(directory, adopt_interval_s=0.0)
    recovered: dict[int, bytes] = {}
    while True:
        batch = spool.take(500)
        if not batch:
            break
        for packet in batch:
            number = int(packet.packet_id[1:])
            assert number not in recovered, "a record was returned twice"
            recovered[number] = packet.data
        spool.ack(len(batch))
    spool.close()
    assert spool.stats().corrupt_records == 0
    for number, data in recovered.items():
        assert data == _payload(number)
    lost = put - acked - uncertain - set(recovered)
    assert put - acked - uncertain, "the workers were killed before anything was pending"
    assert not lost, f"{len(lost)} acknowledged-to-the-spool records were lost: {sorted(lost)[:5]}"
    assert not (acked & set(recovered)), "an acknowledged record was delivered again"


def test_full_disk_never_raises_and_counts_every_packet(tmp_path: Path) -> None:
    """Writes fail part way (file-size limit): no exception, spooled + counted drops = failed
    exports, and spooling works again once there is room."""
    done = subprocess.run(
        [PY, str(HERE / "_spool_limits.py"), "full", str(tmp_path / "spool"), closed_endpoint()],
        env={**child_env(), "PYTHONDONTWRITEBYTECODE": "1"},  # no bytecode cut short by the limit
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout.decode().splitlines()[-1])
    before, after = result["before"], result["after"]
    assert before["enqueued"] == 400
    assert before["dropped_spool_full"] > 0
    assert before["spooled"] + before["dropped_spool_full"] == 400
    assert after["spooled"] - before["spooled"] == 100  # room again: all of the next 100
    assert result["spool"]["write_errors"] == after["dropped_spool_full"]
    assert result["spool"]["stored"] == after["spooled"]


def test_read_only_spool_never_raises_and_counts_every_packet(tmp_path: Path) -> None:
    """A spool directory nobody may write: every packet is counted, nothing raises."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() == 0:  # root writes through permissions: make the directory immutable
        if (
            shutil.which("chattr") is None
            or subprocess.run(
                ["chattr", "+i", str(directory)], capture_output=True, check=False
            ).returncode
        ):
            pytest.skip("cannot make a directory read-only for root here (no chattr +i)")
        undo = ["chattr", "-i", str(directory)]
    else:
        directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
        undo = ["chmod", "700", str(directory)]
    try:
        done = subprocess.run(
            [PY, str(HERE / "_spool_limits.py"), "readonly", str(directory), closed_endpoint()],
            env=child_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        subprocess.run(undo, check=True)
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout.decode().splitlines()[-1])
    after = result["after"]
    assert after["enqueued"] == 400
    assert after["spooled"] == 0
    assert after["dropped_spool_full"] == 400
    assert result["spool"]["write_errors"] == 400
