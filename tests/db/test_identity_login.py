"""`authenticate`: answers that reveal nothing, lockout shared through the database (also
across engines and concurrent attempts), the in-process rate limiter, re-hashing."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from test_identity_support import NOW, add_user, at, relaxed_limiter

from flowdesk.security.identity import (
    AccountLocked,
    InvalidCredentials,
    Lockout,
    LoginLimiter,
    Rate,
    RateLimited,
    authenticate,
    prune_login_failures,
    unlock,
)
from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import make_engine


def login(engine: sa.Engine, username: str, password: str, when: dt.datetime = NOW, **kw: object):
    kw.setdefault("limiter", relaxed_limiter())
    kw.setdefault("client", "10.0.0.1")
    return authenticate(engine, username, password, now=when, **kw)  # type: ignore[arg-type]


def failures(engine: sa.Engine, username: str) -> tuple[int, dt.datetime | None] | None:
    table = pt.login_failures
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(table.c.failures, table.c.locked_until).where(table.c.username == username)
        ).first()
    if row is None:
        return None
    locked = row[1]
    return row[0], locked if locked is None or locked.tzinfo else locked.replace(tzinfo=dt.UTC)


def test_success_returns_the_user_and_forgets_earlier_failures(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice")
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            login(engine, "alice", "wrong password")
    assert failures(engine, "alice") == (2, None)
    result = login(engine, "alice", "correct horse")
    assert (result.user_id, result.username, result.rehashed) == (alice, "alice", False)
    assert failures(engine, "alice") is None


def test_every_bad_login_reads_the_same(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    add_user(engine, "ivan", active=False)
    add_user(engine, "nopass", password=None)
    attempts = [("alice", "wrong password"), ("nobody", "correct horse"),
                ("ivan", "correct horse"), ("nopass", ""), ("", ""), ("ali\x00ce", "x"),
                ("a" * 500, "x")]
    messages = set()
    for username, password in attempts:
        with pytest.raises(InvalidCredentials) as caught:
            login(engine, username, password)
        messages.add(caught.value.message)
    assert messages == {"invalid username or password"}
    # an inactive user's right password is refused but is not a guess to count
    assert failures(engine, "ivan") is None
    assert failures(engine, "nobody") == (1, None)


def test_the_fifth_failure_locks_for_fifteen_minutes(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    for minute in range(5):
        with pytest.raises(InvalidCredentials):
            login(engine, "alice", "guess", at(minutes=minute))
    until = at(minutes=4) + dt.timedelta(minutes=15)
    assert failures(engine, "alice") == (5, until)
    with pytest.raises(AccountLocked) as caught:  # even the right password
        login(engine, "alice", "correct horse", at(minutes=5))
    assert caught.value.until == until
    assert "locked until 2026-03-02 09:19:00 UTC" in caught.value.message
    with pytest.raises(AccountLocked):
        login(engine, "alice", "correct horse", until - dt.timedelta(seconds=1))
    assert login(engine, "alice", "correct horse", until).username == "alice"
    assert failures(engine, "alice") is None


def test_a_lock_expires_and_the_count_restarts(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    for minute in range(5):
        with pytest.raises(InvalidCredentials):
            login(engine, "alice", "guess", at(minutes=minute))
    with pytest.raises(InvalidCredentials):  # after the lock: one failure, not the sixth
        login(engine, "alice", "guess", at(minutes=30))
    assert failures(engine, "alice") == (1, None)


def test_failures_further_apart_than_the_lock_do_not_add_up(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    for minute in (0, 1, 2, 3, 20):
        with pytest.raises(InvalidCredentials):
            login(engine, "alice", "guess", at(minutes=minute))
    assert failures(engine, "alice") == (1, None)


def test_unknown_usernames_lock_exactly_like_real_ones(engine: sa.Engine) -> None:
    lockout = Lockout(failures=3, duration=dt.timedelta(minutes=2))
    for name in ("alice", "nobody"):
        if name == "alice":
            add_user(engine, name)
        for _ in range(3):
            with pytest.raises(InvalidCredentials):
                login(engine, name, "guess", lockout=lockout)
        with pytest.raises(AccountLocked) as caught:
            login(engine, name, "correct horse", lockout=lockout)
        assert caught.value.until == NOW + dt.timedelta(minutes=2)


def test_lockout_holds_across_engines(database_url: str, engine: sa.Engine) -> None:
    add_user(engine, "alice")
    other = make_engine(database_url)  # another process's view of the same database
    try:
        for index in range(5):
            with pytest.raises(InvalidCredentials):
                login(engine if index % 2 else other, "alice", "guess", at(seconds=index))
        with pytest.raises(AccountLocked):
            login(other, "alice", "correct horse", at(minutes=1))
        with pytest.raises(AccountLocked):
            login(engine, "alice", "correct horse", at(minutes=1))
    finally:
        other.dispose()


def test_concurrent_failures_are_all_counted(database_url: str, engine: sa.Engine) -> None:
    add_user(engine, "alice")
    engines = [engine, make_engine(database_url)]
    errors: list[BaseException] = []
    limiter = relaxed_limiter()

    def attempt(index: int) -> None:
        try:
            login(engines[index % 2], "alice", f"guess {index}", at(seconds=index % 3),
                  limiter=limiter)
        except InvalidCredentials:
            pass
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engines[1].dispose()
    assert errors == []
    assert failures(engine, "alice") == (4, None)


def test_the_username_limit_refuses_before_any_check(engine: sa.Engine) -> None:
    add_user(engine, "alice")
    limiter = LoginLimiter(per_client=Rate(100, 60), per_username=Rate(3, 60))
    for second in (0, 10, 20):
        with pytest.raises(InvalidCredentials):
            login(engine, "alice", "guess", at(seconds=second), limiter=limiter,
                  client=f"10.0.0.{second}")
    with pytest.raises(RateLimited) as caught:  # the right password does not help
        login(engine, "Alice ", "correct horse", at(seconds=30), limiter=limiter)
    assert (caught.value.scope, caught.value.retry_after) == ("username", 30.0)
    assert caught.value.retry_after_seconds == 30
    assert failures(engine, "alice") == (3, None)  # the refused attempt was not counted
    with pytest.raises(RateLimited) as again:  # refusals are not counted either
        login(engine, "alice", "correct horse", at(seconds=59), limiter=limiter)
    assert again.value.retry_after == pytest.approx(1.0)
    assert login(engine, "alice", "correct horse", at(seconds=60), limiter=limiter).username


def test_the_client_limit_spans_usernames(engine: sa.Engine) -> None:
    limiter = LoginLimiter(per_client=Rate(2, 60), per_username=Rate(100, 60))
    for name in ("a1", "a2"):
        with pytest.raises(InvalidCredentials):
            login(engine, name, "guess", limiter=limiter, client="203.0.113.9")
    with pytest.raises(RateLimited) as caught:
        login(engine, "a3", "guess", at(seconds=15), limiter=limiter, client="203.0.113.9")
    assert (caught.value.scope, caught.value.retry_after) == ("client", 45.0)
    assert "try again in 45 s" in caught.value.message
    with pytest.raises(InvalidCredentials):  # another address is not held back
        login(engine, "a3", "guess", at(seconds=15), limiter=limiter, client="203.0.113.10")


def test_an_old_hash_is_upgraded_on_success(engine: sa.Engine) -> None:
    alice = add_user(engine, "alice", password=None)
    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=2).hash("correct horse")
    with engine.begin() as connection:
        connection.execute(pt.users.update().where(pt.users.c.id == alice)
                           .values(password_hash=old))
    assert login(engine, "alice", "correct horse").rehashed
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(pt.users.c.password_hash).where(pt.users.c.id == alice)
        ).scalar_one()
    assert stored != old and "$m=19456,t=2,p=1$" in stored
    assert not login(engine, "alice", "correct horse").rehashed


def test_unknown_users_cost_a_password_check(engine: sa.Engine) -> None:
    add_user(engine, "alice")

    def fastest(username: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            with pytest.raises(InvalidCredentials):
                login(engine, username, "guess", lockout=Lockout(failures=100))
            times.append(time.perf_counter() - start)
        return min(times)

    assert fastest("nobody") > 0.5 * fastest("alice")


def test_unlock_and_prune(engine: sa.Engine) -> None:
    for name in ("alice", "bob"):
        with pytest.raises(InvalidCredentials):
            login(engine, name, "guess")
    with engine.begin() as connection:
        assert unlock(connection, "alice") is True
        assert unlock(connection, "alice") is False
        assert prune_login_failures(connection, now=at(minutes=14)) == 0
        assert prune_login_failures(connection, now=at(minutes=15)) == 1
    assert failures(engine, "bob") is None


def test_now_must_be_aware(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="aware"):
        login(engine, "alice", "x", dt.datetime(2026, 3, 2, 9, 0))
