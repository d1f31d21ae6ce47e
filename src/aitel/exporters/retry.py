"""When to send a request again, how long to wait, and when to give up.

:class:`RetryPolicy` is a small immutable value built on tenacity. It retries
connection errors and the statuses in :data:`RETRYABLE_STATUSES` with
exponential backoff and full jitter (each wait is drawn uniformly from
``[0, min(max_backoff_s, initial_backoff_s * 2**n)]``), honours ``Retry-After``
(seconds or an HTTP date) and gives up when the next wait would overrun
``max_elapsed_s`` (or the caller's deadline). Statuses in
:data:`REJECTED_STATUSES` (and every other 4xx except 408, 413 and 429) are
never retried: the request itself is wrong and sending it again cannot help.

:class:`Interrupt` is the wait that shutdown can cut short: a stop flag plus an
optional deadline on the monotonic clock, both observed by every sleep.

The policy only decides; the attempt is a callable returning an outcome with
``status``, ``retry_after_s`` and ``error`` (see :class:`Outcome`), so the same
policy serves the JSON and the OTLP exporters and is testable with a fake
clock and a fake sleep.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Protocol, TypeVar

import tenacity

RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
"""Statuses that mean "try again later": timeouts, throttling, overloaded gateways."""

REJECTED_STATUSES = frozenset({400, 401, 403, 404})
"""Statuses that mean "this request will never succeed": never retried."""

NOT_REJECTIONS = frozenset({408, 413, 429})
"""4xx statuses that are not final rejections (413 is answered by splitting the batch)."""


def is_rejection(status: int | None) -> bool:
    """True for a final "no" from the server (400, 401, 403, 404 and other 4xx)."""
    return status is not None and 400 <= status < 500 and status not in NOT_REJECTIONS


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent
    or unreadable. Dates in the past give 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max((when - current).total_seconds(), 0.0)


class Outcome(Protocol):
    """What the policy needs to know about one attempt."""

    @property
    def status(self) -> int | None: ...

    @property
    def retry_after_s(self) -> float | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def interrupted(self) -> bool: ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


class Interrupt:
    """A stop flag and an optional deadline that cut every wait short.

    ``wait`` sleeps until its timeout, until ``until()`` becomes true (wake it
    with :meth:`notify`), or until :meth:`stop` is called or the deadline passes.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._stopped = False
        self._deadline: float | None = None

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def reset(self) -> None:
        """Clear the stop flag and the deadline (a fresh process after fork)."""
        self._cond = threading.Condition(threading.Lock())
        self._stopped = False
        self._deadline = None

    def set_deadline(self, deadline: float | None) -> None:
        """Give up at ``deadline`` (on this object's monotonic clock); None removes it."""
        with self._cond:
            self._deadline = deadline
            self._cond.notify_all()

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def stopped(self) -> bool:
        """True once stopped or past the deadline."""
        if self._stopped:
            return True
        deadline = self._deadline
        return deadline is not None and self._clock() >= deadline

    def remaining(self) -> float | None:
        """Seconds until the deadline (0 when stopped); None when there is no deadline."""
        if self._stopped:
            return 0.0
        deadline = self._deadline
        if deadline is None:
            return None
        return max(deadline - self._clock(), 0.0)

    def notify(self) -> None:
        """Wake waiters so that they re-check their ``until`` condition."""
        with self._cond:
            self._cond.notify_all()

    def wait(self, seconds: float | None, until: Callable[[], bool] | None = None) -> bool:
        """Wait up to ``seconds`` (None: no own limit); True if cut short by stop or deadline."""
        end = None if seconds is None else self._clock() + max(seconds, 0.0)
        with self._cond:
            while True:
                if self.stopped:
                    return True
                if until is not None and until():
                    return False
                now = self._clock()
                limits = [t for t in (end, self._deadline) if t is not None]
                if not limits:
                    self._cond.wait()
                    continue
                timeout = min(limits) - now
                if timeout <= 0:
                    return self.stopped
                self._cond.wait(timeout)


class _Interrupted(Exception):
    """Raised from the sleep hook to end the tenacity loop early."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter under a deadline; ``Retry-After`` wins over backoff."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    max_elapsed_s: float = 20.0
    max_attempts: int | None = None
    max_retry_after_s: float = 300.0
    """A ``Retry-After`` longer than this ends the retries at once (the caller spools)."""
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def single_attempt(self) -> RetryPolicy:
        """The same policy with no retries (probing an endpoint that was down)."""
        return replace(self, max_attempts=1)

    def at_most(self, max_elapsed_s: float) -> RetryPolicy:
        """The same policy, giving up after ``max_elapsed_s`` if that is sooner."""
        return replace(self, max_elapsed_s=min(self.max_elapsed_s, max_elapsed_s))

    def should_retry(self, outcome: Outcome) -> bool:
        """Connection errors and retryable statuses; never an interrupted attempt."""
        if outcome.interrupted:
            return False
        if outcome.status is None:
            return outcome.error is not None
        return outcome.status in self.retry_statuses

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Full-jitter wait before retry ``retry_number`` (1 for the first retry)."""
        exponent = min(max(retry_number - 1, 0), 62)
        window = min(self.max_backoff_s, self.initial_backoff_s * (2.0**exponent))
        return (rng or random).uniform(0.0, max(window, 0.0))

    def next_wait(
        self, outcome: Outcome, retry_number: int, rng: random.Random | None = None
    ) -> float:
        """The wait before the next attempt: the server's ``Retry-After`` if it gave one."""
        if outcome.retry_after_s is not None:
            return max(outcome.retry_after_s, 0.0)
        return self.backoff(retry_number, rng)

    def run(
        self,
        attempt: Callable[[], OutcomeT],
        *,
        interrupt: Interrupt | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
        rng: random.Random | None = None,
    ) -> OutcomeT:
        """Call ``attempt`` until it succeeds, fails for good, or the budget runs out.

        Returns the last outcome. ``sleep(seconds)`` returns True when the wait
        was cut short; by default it is ``interrupt.wait`` (or ``time.sleep``).
        """
        stop_signal = interrupt or Interrupt(clock)
        do_sleep = sleep or stop_signal.wait
        start = clock()
        last: list[OutcomeT] = []

        def call() -> OutcomeT:
            outcome = attempt()
            last.append(outcome)
            return outcome

        def wait(state: tenacity.RetryCallState) -> float:
            outcome: OutcomeT = state.outcome.result()  # type: ignore[union-attr]
            return self.next_wait(outcome, state.attempt_number, rng)

        def stop(state: tenacity.RetryCallState) -> bool:
            outcome: OutcomeT = state.outcome.result()  # type: ignore[union-attr]
            if self.max_attempts is not None and state.attempt_number >= self.max_attempts:
                return True
            if stop_signal.stopped:
                return True
            if outcome.retry_after_s is not None and outcome.retry_after_s > self.max_retry_after_s:
                return True
            upcoming = state.upcoming_sleep
            if clock() - start + upcoming > self.max_elapsed_s:
                return True
            remaining = stop_signal.remaining()
            return remaining is not None and upcoming >= remaining

        def pause(seconds: float) -> None:
            if do_sleep(seconds):
                raise _Interrupted

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(self.should_retry),
            wait=wait,
            stop=stop,
            sleep=pause,
            retry_error_callback=lambda state: state.outcome.result(),  # type: ignore[union-attr]
        )
        try:
            result: OutcomeT = retrying(call)
        except _Interrupted:
            return last[-1]
        return result
