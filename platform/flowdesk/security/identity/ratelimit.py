"""In-process sliding-window rate limits for login attempts.

A limit is "at most N attempts in any window of W seconds" per key, kept as the
times of the recent attempts (a sliding log: exact, and N is small). It lives in
the process, so with several API processes each enforces it separately; the
lockout in the database (`login.py`) is what holds across processes. The limiter
only slows down guessing from one place cheaply, before any password is hashed.

Memory is bounded: at most `max_keys` keys are remembered, the least recently used
go first. An attacker cycling through usernames to evict a key is itself held back
by the per-client limit.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

from .errors import RateLimited

__all__ = ["LoginLimiter", "Rate", "SlidingWindow"]


@dataclass(frozen=True)
class Rate:
    """`attempts` per `seconds`."""

    attempts: int
    seconds: float

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.seconds <= 0:
            raise ValueError(f"a rate needs at least 1 attempt in a positive window: {self}")


class SlidingWindow:
    """Attempts per key in the last `rate.seconds` (not thread-safe: `LoginLimiter` locks)."""

    def __init__(self, rate: Rate, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0.0 when it may try now."""
        hits = self._hits.get(key)
        if hits is None:
            return 0.0
        while hits and hits[0] <= now - self.rate.seconds:
            hits.popleft()
        if len(hits) < self.rate.attempts:
            return 0.0
        return hits[0] + self.rate.seconds - now

    def hit(self, key: str, now: float) -> None:
        """Count one attempt of `key` at `now`."""
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.rate.attempts)
        hits.append(now)
        self._hits.move_to_end(key)
        while len(self._hits) > self.max_keys:
            self._hits.popitem(last=False)

    def __len__(self) -> int:
        return len(self._hits)


class LoginLimiter:
    """One window per client address and one per username, checked together.

    An attempt that is refused is not counted, so a client that keeps hammering is
    told the same wait, and a real user behind the same address gets in as soon as
    the window has room.
    """

    def __init__(
        self,
        per_client: Rate = Rate(30, 60.0),
        per_username: Rate = Rate(10, 60.0),
        *,
        max_keys: int = 100_000,
    ) -> None:
        self._client = SlidingWindow(per_client, max_keys=max_keys)
        self._username = SlidingWindow(per_username, max_keys=max_keys)
        self._lock = threading.Lock()

    def acquire(self, client: str, username: str, now: dt.datetime) -> None:
        """Count an attempt, or refuse it.

        Raises:
            RateLimited: with the seconds to wait and which limit was hit.
        """
        at = now.timestamp()
        user_key = username.strip().casefold()
        with self._lock:
            for scope, window, key in (
                ("client", self._client, client),
                ("username", self._username, user_key),
            ):
                wait = window.wait(key, at)
                if wait > 0:
                    raise RateLimited(wait, scope)
            self._client.hit(client, at)
            self._username.hit(user_key, at)
