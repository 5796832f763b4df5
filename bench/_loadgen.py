"""A bounded closed-loop HTTP/1.1 load generator over asyncio streams.

`--concurrency` keep-alive connections each send a request, wait for the whole
response, and send the next one, for a 1 s warm-up and then `--seconds` of
measurement. Requests are written by hand (bytes) and responses parsed by hand
(status line, `Content-Length` or chunked body), because an HTTP client library
costs more per request than the servers under test and would measure itself.
Every request's latency is recorded; a non-2xx response is counted (and one
body kept as an example), so a caller can refuse to report a number built on
errors.

Used by `bench/api_bench.py`; also runnable on its own against one URL:

    python bench/_loadgen.py http://127.0.0.1:8000/healthz --concurrency 8 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["LoadResult", "RequestMaker", "http_request", "run_load"]

RequestMaker = Callable[[int], bytes]
"""Request number -> the complete request bytes (request line, headers, body)."""


@dataclass
class LoadResult:
    """What one measured run saw (warm-up excluded)."""

    requests: int
    seconds: float
    latencies: list[float] = field(repr=False)  # seconds, one per measured request
    non_2xx: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    example_error: str | None = None  # status and start of the body of one non-2xx
    failure: str | None = None  # a connection that broke (reset, malformed response)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, share: float) -> float:
        """Latency at `share` (0.5 = median) in milliseconds, nearest rank."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    @property
    def ok(self) -> bool:
        """Only when every response was 2xx and no connection broke is this a measurement."""
        return self.non_2xx == 0 and self.failure is None and self.requests > 0


def http_request(
    method: str,
    target: str,
    host: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """An HTTP/1.1 keep-alive request as bytes (`target` already percent-encoded)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class _Malformed(Exception):
    pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one response; the connection stays usable for the next one."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise _Malformed(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    length, chunked = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        return status, await _read_chunked(reader)
    if length is None:
        if status in (204, 304) or 100 <= status < 200:
            return status, b""
        raise _Malformed("response without Content-Length on a keep-alive connection")
    return status, await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


@dataclass
class _Run:
    """Shared state of the connections of one run."""

    make: RequestMaker
    measure_from: float
    stop_at: float
    counter: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    example_error: str | None = None
    failure: str | None = None

    def next_request(self) -> bytes:
        self.counter += 1
        return self.make(self.counter)

    def record(self, began: float, ended: float, status: int, body: bytes) -> None:
        if began < self.measure_from or ended > self.stop_at:
            return  # warm-up, or finished after the window closed
        self.latencies.append(ended - began)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not 200 <= status < 300 and self.example_error is None:
            self.example_error = f"{status}: {body[:300].decode('utf-8', 'replace')}"


async def _connection(host: str, port: int, run: _Run) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as error:
        run.failure = run.failure or f"cannot connect to {host}:{port}: {error}"
        return
    try:
        while time.perf_counter() < run.stop_at and run.failure is None:
            request = run.next_request()
            began = time.perf_counter()
            writer.write(request)
            status, body = await _read_response(reader)
            run.record(began, time.perf_counter(), status, body)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, _Malformed,
            ValueError) as error:  # fmt: skip
        run.failure = run.failure or f"connection broke: {type(error).__name__}: {error}"
    finally:
        writer.close()


async def run_load(
    host: str,
    port: int,
    make: RequestMaker,
    *,
    concurrency: int = 8,
    seconds: float = 5.0,
    warmup: float = 1.0,
) -> LoadResult:
    """Drive `concurrency` keep-alive connections for `warmup` + `seconds`.

    Only requests that start after the warm-up and end inside the window count, so
    requests/s is completed requests divided by the window.
    """
    if concurrency < 1 or seconds <= 0 or warmup < 0:
        raise ValueError("concurrency must be >= 1, seconds > 0 and warmup >= 0")
    start = time.perf_counter()
    run = _Run(make, start + warmup, start + warmup + seconds)
    await asyncio.gather(*(_connection(host, port, run) for _ in range(concurrency)))
    return LoadResult(len(run.latencies), seconds, run.latencies,
                      sum(n for s, n in run.statuses.items() if not 200 <= s < 300),
                      run.statuses, run.example_error, run.failure)  # fmt: skip


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is `Name: value`, not {text!r}")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="http://host:port/path?query (already percent-encoded)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--header", action="append", type=_parse_header, default=[])
    parser.add_argument("--json", help="a JSON body (sets Content-Type)")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error("only http://host[:port]/... URLs are supported")
    body = None
    headers = list(args.header)
    if args.json is not None:
        try:
            body = json.dumps(json.loads(args.json)).encode()
        except json.JSONDecodeError as error:
            parser.error(f"--json is not JSON: {error}")
        headers.append(("Content-Type", "application/json"))
    port = url.port or 80
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    request = http_request(args.method.upper(), target, f"{url.hostname}:{port}",
                           headers=headers, body=body)  # fmt: skip
    try:
        result = asyncio.run(run_load(url.hostname, port, lambda _n: request,
                                      concurrency=args.concurrency, seconds=args.seconds,
                                      warmup=args.warmup))  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    print(f"{result.requests} requests in {result.seconds:.1f} s: {result.rps:,.0f}/s, "
          f"p50 {result.percentile(0.5):.2f} ms, p99 {result.percentile(0.99):.2f} ms, "
          f"statuses {result.statuses}")  # fmt: skip
    if not result.ok:
        print(f"ERROR: {result.failure or result.example_error or 'no request completed'}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
