"""Short-lived processes and worker pools: every packet arrives, none twice.

Each scenario runs in a fresh interpreter (scripts exit, get killed, fork).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest


def run_script(
    tmp_path: Path, body: str, *args: str, expect_rc: int = 0
) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    directory = tmp_path / "packets"
    env = {**os.environ, "AITEL_DIR": str(directory), "AITEL_EXPORTER": "jsonl"}
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == expect_rc, result.stdout + result.stderr
    return read_packets(directory), result


def read_packets(directory: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def request_ids(packets: list[dict]) -> collections.Counter[str]:
    return collections.Counter(p["request_id"] for p in packets)


SERVERLESS = """
    import os, sys
    import aitel

    def handler(event):
        with aitel.trace("handler", input=event, request_id=f"evt-{event['n']}") as t:
            with t.step("work", input=event["n"]):
                pass
            t.set_output({"ok": True})

    for n in range(25):
        handler({"n": n})
    if sys.argv[1] == "flush":
        assert aitel.flush(timeout=10)
    if sys.argv[2] == "open":
        aitel.trace("still-running", request_id="open-1").open()
    if sys.argv[3] == "hard-exit":
        os._exit(0)  # a frozen or killed serverless instance: no atexit
"""


def test_flush_then_hard_exit_delivers_everything(tmp_path: Path) -> None:
    """aitel.flush() before returning: nothing depends on the process exiting normally."""
    packets, _ = run_script(tmp_path, SERVERLESS, "flush", "closed", "hard-exit")
    assert request_ids(packets) == collections.Counter(f"evt-{n}" for n in range(25))
    assert all(p["status"] == "SUCCESS" and len(p["steps"]) == 2 for p in packets)


def test_normal_exit_flushes_and_emits_open_requests(tmp_path: Path) -> None:
    """Without flush(), a normal exit delivers; a request still open is sent as incomplete."""
    packets, _ = run_script(tmp_path, SERVERLESS, "no-flush", "open", "exit")
    ids = request_ids(packets)
    assert ids == collections.Counter([*(f"evt-{n}" for n in range(25)), "open-1"])
    (still_open,) = (p for p in packets if p["request_id"] == "open-1")
    assert still_open["status"] == "FAILURE"
    assert still_open["error"]["type"] == "IncompleteRequest"
    assert still_open["error_message"] == "request abandoned: the process is shutting down"


def test_sigterm_flushes_before_the_process_dies(tmp_path: Path) -> None:
    """A container stopped with SIGTERM: the packets are written, then the default action runs."""
    body = """
        import sys
        import threading
        import aitel

        for n in range(10):
            with aitel.trace("job", request_id=f"job-{n}"):
                pass
        print("ready", flush=True)
        threading.Event().wait(60)
    """
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(body))
    directory = tmp_path / "packets"
    env = {**os.environ, "AITEL_DIR": str(directory), "AITEL_EXPORTER": "jsonl"}
    with subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == -signal.SIGTERM
    assert request_ids(read_packets(directory)) == collections.Counter(
        f"job-{n}" for n in range(10)
    )


POOL = """
    import multiprocessing
    import os
    import sys

    import aitel

    METHOD, FLUSH_EACH, OUTER = sys.argv[1], sys.argv[2] == "flush", sys.argv[3] == "outer"


    def task(i):
        with aitel.trace("task", input=i, request_id=f"task-{i}") as t:
            with t.step("square", input=i) as s:
                s.set_output(i * i)
            t.set_output(i * i)
        if FLUSH_EACH:
            aitel.flush()
        return os.getpid()


    def fan_out():
        context = multiprocessing.get_context(METHOD)
        pool = context.Pool(4)
        try:
            pids = pool.map(task, range(40), chunksize=2)
        finally:
            pool.close()
            pool.join()
        return pids


    if __name__ == "__main__":
        for i in range(10):  # queued in the parent when the pool forks
            with aitel.trace("parent", request_id=f"parent-{i}"):
                pass
        if OUTER:
            with aitel.trace("batch", request_id="batch-1") as batch:
                batch.set_output(len(set(fan_out())))
        else:
            fan_out()
        assert aitel.flush(timeout=10)
"""


def check_pool_packets(packets: list[dict], *, outer: bool) -> None:
    expected = [*(f"task-{i}" for i in range(40)), *(f"parent-{i}" for i in range(10))]
    if outer:
        expected.append("batch-1")
    assert request_ids(packets) == collections.Counter(expected)
    assert len({p["packet_id"] for p in packets}) == len(packets)
    for packet in packets:
        assert packet["status"] == "SUCCESS", packet["error"]
        if packet["request_id"].startswith("task-"):
            i = int(packet["request_id"][5:])
            assert packet["payload"] == {"input": i, "output": i * i}
            assert [s["name"] for s in packet["steps"]] == ["task", "square"]


@pytest.mark.parametrize(
    ("method", "flush_each"),
    [
        ("fork", "no-flush"),
        ("spawn", "no-flush"),
        ("forkserver", "flush"),
        pytest.param("forkserver", "no-flush"),
    ],
)
def test_pool_children_packets_arrive_once(tmp_path: Path, method: str, flush_each: str) -> None:
    packets, _ = run_script(tmp_path, POOL, method, flush_each, "plain")
    check_pool_packets(packets, outer=False)


def test_pool_forked_inside_an_open_request(tmp_path: Path) -> None:
    """Children forked while the parent is inside aitel.trace(): their own packets, no copies."""
    packets, _ = run_script(tmp_path, POOL, "fork", "no-flush", "outer")
    check_pool_packets(packets, outer=True)


@pytest.mark.parametrize(
    "setting",
    ["AITEL_SAMPLE_RATE=abc", "AITEL_REDACTION=bogus", "AITEL_PRICING_FILE=missing.json"],
)
def test_invalid_settings_never_fail_the_applications_call(tmp_path: Path, setting: str) -> None:
    """A bad AITEL_* value is logged; the traced call works and its packet still lands."""
    name, _, value = setting.partition("=")
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent(
            """
            import aitel

            @aitel.observe
            def double(x):
                return 2 * x

            print(double(21))
            aitel.flush()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, name: value},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    assert "invalid AITEL_* settings" in result.stderr and value in result.stderr
    (packet,) = read_packets(tmp_path / "aitel-telemetry")
    assert packet["payload"] == {"input": 21, "output": 42}
