"""Run a synchronous handler body in a worker thread.

Litestar's own `sync_to_thread=True` wraps a handler's function again each time a
route gathers another method on the same path (seen with 2.25: GET and POST on
`/api/v1/{app}/{entity}` left the GET function wrapped twice, so it returned an
un-awaited coroutine). Handlers are therefore `async` functions made by `threaded`,
which Litestar never wraps.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

__all__ = ["threaded"]

P = ParamSpec("P")
T = TypeVar("T")


def threaded(fn: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """An async function with `fn`'s signature that runs `fn` in a thread."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    return run
