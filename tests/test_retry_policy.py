"""The retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from aitel.exporters.http_transport import HttpOutcome
from aitel.exporters.retry import (
    REJECTED_STATUSES,
    RETRYABLE_STATUSES,
    Interrupt,
    RetryPolicy,
    is_rejection,
    parse_retry_after,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.sleeps.append(seconds)
        self.now += seconds
        return False


def scripted(*outcomes: HttpOutcome) -> tuple[list[HttpOutcome], Callable[[], HttpOutcome]]:
    calls: list[HttpOutcome] = []
    source: Iterator[HttpOutcome] = iter(outcomes)

    def attempt() -> HttpOutcome:
        outcome = next(source, outcomes[-1])
        calls.append(outcome)
        return outcome

    return calls, attempt


def run(
    policy: RetryPolicy, *outcomes: HttpOutcome, clock: FakeClock | None = None
) -> tuple[HttpOutcome, list[HttpOutcome], FakeClock]:
    clock = clock or FakeClock()
    calls, attempt = scripted(*outcomes)
    result = policy.run(
        attempt,
        interrupt=Interrupt(clock),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    return result, calls, clock


OK = HttpOutcome(status=200)
REFUSED = HttpOutcome(error="ConnectError: [Errno 111] Connection refused")


@pytest.mark.parametrize("status", sorted(RETRYABLE_STATUSES))
def test_retryable_statuses_are_retried_until_success(status: int) -> None:
    """408, 429, 502, 503 and 504 are sent again; the success ends the loop."""
    result, calls, _ = run(RetryPolicy(), HttpOutcome(status=status), OK)
    assert result.status == 200
    assert [c.status for c in calls] == [status, 200]


def test_connection_errors_are_retried() -> None:
    """No response at all (refused, reset, timeout) counts as retryable."""
    result, calls, _ = run(RetryPolicy(), REFUSED, REFUSED, OK)
    assert result.ok
    assert len(calls) == 3


@pytest.mark.parametrize("status", sorted(REJECTED_STATUSES | {413, 422, 500, 501}))
def test_other_statuses_are_never_retried(status: int) -> None:
    """400/401/403/404 (and 413, other 4xx, 500, 501) get exactly one attempt."""
    result, calls, clock = run(RetryPolicy(), HttpOutcome(status=status), OK)
    assert result.status == status
    assert len(calls) == 1
    assert clock.sleeps == []


def test_rejections_are_classified() -> None:
    """Final rejections are the 4xx answers other than 408, 413 and 429."""
    assert [s for s in (400, 401, 403, 404, 409, 422) if is_rejection(s)] == [
        400,
        401,
        403,
        404,
        409,
        422,
    ]
    assert not any(is_rejection(s) for s in (None, 200, 207, 408, 413, 429, 500, 503))


def test_backoff_is_exponential_with_full_jitter() -> None:
    """Each wait is drawn from [0, min(max, initial * 2**n)]."""
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=4.0)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [policy.backoff(n, Top()) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    rng = random.Random(1)
    waits = [policy.backoff(3, rng) for _ in range(200)]
    assert all(0.0 <= w <= 2.0 for w in waits)
    assert max(waits) - min(waits) > 1.0  # spread out, not a fixed delay


def test_retry_after_seconds_overrides_backoff() -> None:
    """The server's Retry-After is the wait before the next attempt."""
    result, _, clock = run(RetryPolicy(), HttpOutcome(status=429, retry_after_s=3.0), OK)
    assert result.ok
    assert clock.sleeps == [3.0]


def test_gives_up_when_the_next_wait_would_overrun_the_budget() -> None:
    """With max_elapsed_s=10, a Retry-After of 4 s fits twice, not three times."""
    throttled = HttpOutcome(status=503, retry_after_s=4.0)
    result, calls, clock = run(RetryPolicy(max_elapsed_s=10.0), throttled)
    assert result is throttled
    assert clock.sleeps == [4.0, 4.0]
    assert len(calls) == 3


def test_a_retry_after_beyond_the_limit_ends_retries_at_once() -> None:
    """An hour-long Retry-After is handed back (for the spool) instead of being waited out."""
    throttled = HttpOutcome(status=429, retry_after_s=3600.0)
    result, calls, clock = run(RetryPolicy(max_elapsed_s=7200.0, max_retry_after_s=60.0), throttled)
    assert result.retry_after_s == 3600.0
    assert len(calls) == 1
    assert clock.sleeps == []


def test_max_attempts_and_single_attempt() -> None:
    """max_attempts caps the attempts; single_attempt() is a probe without retries."""
    _, calls, _ = run(RetryPolicy(max_attempts=3), REFUSED)
    assert len(calls) == 3
    _, calls, _ = run(RetryPolicy().single_attempt(), REFUSED)
    assert len(calls) == 1


def test_deadline_in_the_past_allows_one_attempt_only() -> None:
    """A caller's deadline (flush/shutdown) stops the retries."""
    clock = FakeClock()
    interrupt = Interrupt(clock)
    interrupt.set_deadline(clock.now - 1)
    calls, attempt = scripted(REFUSED)
    RetryPolicy().run(attempt, interrupt=interrupt, clock=clock, sleep=clock.sleep)
    assert len(calls) == 1
    assert clock.sleeps == []


def test_a_wait_longer_than_the_deadline_is_not_started() -> None:
    """If the next wait would end after the caller's deadline, give up now."""
    clock = FakeClock()
    interrupt = Interrupt(clock)
    interrupt.set_deadline(clock.now + 2)
    calls, attempt = scripted(HttpOutcome(status=503, retry_after_s=5.0))
    RetryPolicy().run(attempt, interrupt=interrupt, clock=clock, sleep=clock.sleep)
    assert len(calls) == 1


def test_stop_interrupts_a_long_wait() -> None:
    """Shutdown ends a Retry-After wait at once; the last outcome is returned."""
    interrupt = Interrupt()
    throttled = HttpOutcome(status=503, retry_after_s=30.0)
    results: list[HttpOutcome] = []
    calls, attempt = scripted(throttled)
    policy = RetryPolicy(max_elapsed_s=120)
    thread = threading.Thread(
        target=lambda: results.append(policy.run(attempt, interrupt=interrupt))
    )
    started = time.monotonic()
    thread.start()
    while not calls:  # the first attempt has happened; the policy is now waiting
        thread.join(0.01)
    interrupt.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 5
    assert results == [throttled]
    assert len(calls) == 1


def test_interrupt_wait_returns_early_when_the_condition_holds() -> None:
    """wait(until=...) ends when notified and the condition is true, reporting no interruption."""
    interrupt = Interrupt()
    done = threading.Event()

    def finish() -> None:
        done.set()
        interrupt.notify()

    timer = threading.Timer(0.05, finish)
    timer.start()
    assert interrupt.wait(10, until=done.is_set) is False
    timer.join()
    interrupt.set_deadline(time.monotonic() - 1)
    assert interrupt.wait(10) is True
    assert interrupt.remaining() == 0.0
    interrupt.reset()
    assert interrupt.remaining() is None
    assert not interrupt.stopped


class TestParseRetryAfter:
    NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    def test_delta_seconds(self) -> None:
        """Delta-seconds, including fractions and surrounding spaces."""
        assert parse_retry_after("120") == 120.0
        assert parse_retry_after(" 1.5 ") == 1.5
        assert parse_retry_after("-3") == 0.0

    def test_http_date(self) -> None:
        """An HTTP date gives the seconds until then; a past date gives 0."""
        later = format_datetime(self.NOW + timedelta(seconds=90), usegmt=True)
        earlier = format_datetime(self.NOW - timedelta(seconds=90), usegmt=True)
        assert parse_retry_after(later, now=self.NOW) == 90.0
        assert parse_retry_after(earlier, now=self.NOW) == 0.0

    def test_missing_or_unreadable(self) -> None:
        """Absent, empty, NaN or garbage values mean "no advice"."""
        assert [parse_retry_after(v) for v in (None, "", "soon", "nan")] == [None] * 4
