"""`python -m load` (`make load`): 10,000 requests from 100 concurrent clients across 500 sessions.

Everything runs on loopback and stops by itself (a hard deadline; every request has a timeout):

    load client (this process, asyncio, 100 clients)
      → mcpkit dev --instances N   (local API Gateway → N Lambda instance processes)
      → fault proxy → moto          (load/backend.py; 5% of DynamoDB requests faulted)

Phases: open 500 sessions (initialize; a 503 is retried, as a client would), then tool calls,
tool lists and pings on random sessions (plus some session-less 2026-07-28 calls and
`subscriptions/listen` requests, which must end at once, complete) until the budget is spent,
then end 100 sessions (DELETE). With faults switched off, and once the instances' trust in
what they saw has run out (the server's `session_cache_seconds`; a DELETE reaches the other
instances only then), it checks that every session still open answers, every ended one is 404,
no request got a 5xx other than the documented 503 (with Retry-After and a JSON-RPC error), and
every session item in the table is whole.

Fault mix (share of DynamoDB requests): throttled 3% (ProvisionedThroughputExceeded 2%,
ThrottlingException 1%), 500 1%, 503 0.8%, lost response (applied, then held past the 3 s read
timeout) 0.2%: 5% in all. Lost responses cost 3 s of an instance each, so they stay few.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from mcpkit.messages import MODERN, modern_meta, rpc
from mcpkit.server_config import load_server

ROOT = Path(__file__).resolve().parent.parent
SERVER = "example"
FAULTS = {"throttle": 0.02, "throttling": 0.01, "internal": 0.01, "unavailable": 0.008, "timeout": 0.002}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
VERSION = "2025-06-18"
MODERN_META = modern_meta("load")


@dataclass
class Sample:
    phase: str
    status: int
    seconds: float


@dataclass
class Run:
    budget: int
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    transport_errors: int = 0

    @property
    def sent(self) -> int:
        return len(self.samples)


class Backend:
    """load/backend.py as a subprocess: moto and the fault proxy, controlled over stdin."""

    def __init__(self, seed: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "load.backend", str(seed)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        endpoints = json.loads(self._ask(None))
        self.moto: str = endpoints["moto"]
        self.proxy: str = endpoints["proxy"]

    def _ask(self, command: str | None) -> str:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        if command is not None:
            self._process.stdin.write(command + "\n")
            self._process.stdin.flush()
        return self._process.stdout.readline()

    def rates(self, rates: dict[str, float]) -> None:
        self._ask(f"rates {json.dumps(rates)}")

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self._ask("counts"))
        return counts

    def stop(self) -> None:
        if self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.write("quit\n")
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()


def start_dev(aws_endpoint: str, instances: int, log: IO[str]) -> tuple[subprocess.Popen[str], str]:
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKIT_", "AWS_ENDPOINT_URL"))}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "mcpkit", "dev", "--server", SERVER, "--auth", "none", "--port", str(port)),
            *("--instances", str(instances), "--aws-endpoint", aws_endpoint),
        ],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("mcpkit dev exited during start-up")
        try:
            httpx.get(url, timeout=1)
            return process, url
        except httpx.TransportError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("mcpkit dev did not start in time")


async def send(
    http: httpx.AsyncClient,
    run: Run,
    phase: str,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    started = time.perf_counter()
    for attempt in range(3):
        try:
            response = await http.request(method, url, headers=headers, content=json.dumps(body) if body else None)
            break
        except httpx.TransportError as exc:
            # A kept-alive connection the server closed just as it was reused: counted, then retried.
            run.transport_errors += 1
            if attempt == 2:
                run.problems.append(f"{phase}: {type(exc).__name__} three times in a row")
                raise
    run.samples.append(Sample(phase, response.status_code, time.perf_counter() - started))
    if response.status_code >= 500:
        documented = (
            response.status_code == 503
            and "retry-after" in response.headers
            and response.json().get("error", {}).get("code") == -32001
        )
        if not documented:
            run.problems.append(f"{phase}: {response.status_code} {response.text[:200]}")
    return response


async def open_session(http: httpx.AsyncClient, run: Run, url: str) -> str | None:
    params = {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "load", "version": "1"}}
    while run.sent < run.budget:
        response = await send(http, run, "initialize", "POST", url, HEADERS, rpc("initialize", params))
        if response.status_code == 200:
            return response.headers["mcp-session-id"]
        if response.status_code != 503:
            run.problems.append(f"initialize: {response.status_code} {response.text[:200]}")
            return None
        await asyncio.sleep(float(response.headers.get("retry-after", "1")) * random.random())  # noqa: S311
    return None


async def use(http: httpx.AsyncClient, run: Run, url: str, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.02:
        await listen(http, run, url)
        return
    if roll < 0.05:
        params = {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": MODERN_META}
        headers = {**HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": "add"}
        response = await send(http, run, "modern", "POST", url, headers, rpc("tools/call", params))
        expected: Any = {"result": 3.0}
    else:
        session = rng.choice(run.sessions)
        headers = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": VERSION}
        if roll < 0.55:
            a, b = rng.randint(0, 1000), rng.randint(0, 1000)
            body = rpc("tools/call", {"name": "add", "arguments": {"a": a, "b": b}})
            response = await send(http, run, "tools/call", "POST", url, headers, body)
            expected = {"result": float(a + b)}
        elif roll < 0.8:
            response = await send(http, run, "tools/list", "POST", url, headers, rpc("tools/list"))
            expected = None
        else:
            response = await send(http, run, "ping", "POST", url, headers, rpc("ping"))
            expected = None
    if response.status_code == 200 and expected is not None:
        if response.json()["result"].get("structuredContent") != expected:
            run.problems.append(f"wrong result: {response.text[:200]}")
    elif response.status_code not in {200, 503}:
        run.problems.append(f"call: {response.status_code} {response.text[:200]}")


async def listen(http: httpx.AsyncClient, run: Run, url: str) -> None:
    """A 2026-07-28 listen: it used to hold an instance until the timeout; it must end at once, complete."""
    params = {"notifications": {"toolsListChanged": True}, "_meta": MODERN_META}
    headers = {**HEADERS, "mcp-protocol-version": MODERN, "mcp-method": "subscriptions/listen"}
    response = await send(http, run, "listen", "POST", url, headers, rpc("subscriptions/listen", params))
    if response.status_code != 200:
        return  # a 5xx is already a problem (send); a documented 503 is not
    frames = [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]
    if [f.get("method", "result" if "result" in f else "?") for f in frames] != [
        "notifications/subscriptions/acknowledged",
        "result",
    ]:
        run.problems.append(f"listen: not acknowledged and ended: {response.text[:200]}")


async def end_session(http: httpx.AsyncClient, run: Run, url: str, session: str) -> None:
    headers = {"mcp-session-id": session, "mcp-protocol-version": VERSION}
    for _ in range(10):
        response = await send(http, run, "delete", "DELETE", url, headers)
        # 404 after a retried delete whose first attempt was applied: the session is gone either way.
        if response.status_code in {204, 404}:
            return
        await asyncio.sleep(random.random())  # noqa: S311
    run.problems.append(f"could not end session {session}")


async def pool(jobs: list[Any], clients: int) -> None:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            await job()

    await asyncio.gather(*(worker() for _ in range(clients)))


async def drive(url: str, args: argparse.Namespace, run: Run, ended: list[str]) -> dict[str, float]:
    rng = random.Random(args.seed)  # noqa: S311 - a reproducible mix, not security
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=40, limits=limits) as http:
        started = time.perf_counter()

        async def opener() -> None:
            session = await open_session(http, run, url)
            if session is not None:
                run.sessions.append(session)

        await pool([opener] * args.sessions, args.clients)
        timings["sessions"] = time.perf_counter() - started
        to_end = rng.sample(run.sessions, min(args.end, len(run.sessions)))
        calls = max(0, run.budget - run.sent - len(to_end))

        async def caller() -> None:
            await use(http, run, url, rng)

        phase = time.perf_counter()
        await pool([caller] * calls, args.clients)
        timings["calls"] = time.perf_counter() - phase

        def ender(session: str) -> Any:
            async def job() -> None:
                await end_session(http, run, url, session)
                ended.append(session)

            return job

        phase = time.perf_counter()
        await pool([ender(s) for s in to_end], args.clients)
        timings["ends"] = time.perf_counter() - phase
        timings["total"] = time.perf_counter() - started
    return timings


async def verify(url: str, run: Run, ended: list[str], clients: int) -> Counter[str]:
    """With faults off: every open session answers, every ended one is 404."""
    outcome: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=40, limits=limits) as http:
        gone = set(ended)

        def check(session: str) -> Any:
            async def job() -> None:
                headers = {**HEADERS, "mcp-session-id": session, "mcp-protocol-version": VERSION}
                response = await http.post(url, headers=headers, content=json.dumps(rpc("ping")))
                expected = 404 if session in gone else 200
                outcome[f"{'ended' if session in gone else 'open'} → {response.status_code}"] += 1
                if response.status_code != expected:
                    run.problems.append(f"session {session}: {response.status_code}, expected {expected}")

            return job

        await pool([check(s) for s in run.sessions], clients)
    return outcome


def session_items(moto: str) -> list[dict[str, Any]]:
    from mcpkit.local_aws import emulator_dynamodb

    client = emulator_dynamodb(moto)
    pages = client.get_paginator("scan").paginate(TableName="mcpkit-local")
    return [i for page in pages for i in page["Items"] if i["pk"]["S"].startswith("SESSION#")]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000 if ordered else 0.0


def report(run: Run, timings: dict[str, float], faults: dict[str, int], verified: Counter[str], items: int) -> None:
    print("\n== load report ==")
    statuses = Counter(s.status for s in run.samples)
    print(f"requests        {run.sent}  in {timings['total']:.1f} s  → {run.sent / timings['total']:.0f} req/s")
    print(
        f"phases          sessions {timings['sessions']:.1f} s, calls {timings['calls']:.1f} s, "
        f"ends {timings['ends']:.1f} s"
    )
    print(f"statuses        {dict(sorted(statuses.items()))}  (connection resets retried: {run.transport_errors})")
    latencies = [s.seconds for s in run.samples]
    print(
        "latency (ms)    "
        f"p50 {percentile(latencies, 0.5):.0f}  p90 {percentile(latencies, 0.9):.0f}  "
        f"p99 {percentile(latencies, 0.99):.0f}  max {max(latencies) * 1000:.0f}"
    )
    for phase in ("initialize", "tools/call", "tools/list", "ping", "modern", "listen", "delete"):
        values = [s.seconds for s in run.samples if s.phase == phase]
        if values:
            print(
                f"  {phase:<13} n={len(values):<5} p50 {percentile(values, 0.5):.0f}  "
                f"p90 {percentile(values, 0.9):.0f}  p99 {percentile(values, 0.99):.0f}"
            )
    total = sum(faults.values())
    faulted = total - faults.get("pass", 0)
    print(
        f"DynamoDB        {total} requests at the proxy, {faulted} faulted "
        f"({100 * faulted / max(total, 1):.1f}%): {faults}"
    )
    print(f"sessions        {len(run.sessions)} opened, verified: {dict(verified)}")
    print(f"table           {items} session items (open sessions + orphans of 503-ed initializes, all whole)")
    print(f"checks          {'PASS' if not run.problems else 'FAIL'}")
    for problem in run.problems[:20]:
        print(f"  - {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m load", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--end", type=int, default=100, help="sessions ended with DELETE at the end")
    parser.add_argument("--instances", type=int, default=4, help="Lambda instances behind mcpkit dev")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--deadline", type=float, default=600, help="give up after this many seconds")
    args = parser.parse_args()

    run = Run(budget=args.requests)
    ended: list[str] = []
    backend = Backend(args.seed)
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    dev, url = start_dev(backend.proxy, args.instances, log)
    try:
        print(f"mcpkit dev at {url} with {args.instances} instances; faults {FAULTS}", flush=True)
        backend.rates(FAULTS)
        timings = asyncio.run(asyncio.wait_for(drive(url, args, run, ended), args.deadline))
        faults = backend.counts()
        backend.rates({})
        time.sleep(load_server(ROOT / "servers" / SERVER).config.session_cache_seconds + 1)
        verified = asyncio.run(asyncio.wait_for(verify(url, run, ended, args.clients), args.deadline))
        items = session_items(backend.moto)
        open_ids = {f"SESSION#{s}" for s in set(run.sessions) - set(ended)}
        stored = {i["pk"]["S"] for i in items}
        if not open_ids <= stored:
            run.problems.append(f"{len(open_ids - stored)} open sessions missing from the table")
        if stored & {f"SESSION#{s}" for s in ended}:
            run.problems.append("ended sessions still in the table")
        whole = {"pk", "sk", "protocolVersion", "createdAt", "ttl"}
        if any(set(i) != whole for i in items):
            run.problems.append("a session item is not whole")
        if len(run.sessions) != args.sessions:
            run.problems.append(f"{len(run.sessions)} sessions opened, wanted {args.sessions}")
        report(run, timings, faults, verified, len(items))
    finally:
        dev.terminate()
        try:
            dev.wait(timeout=15)
        except subprocess.TimeoutExpired:
            dev.kill()
        backend.stop()
        if run.problems:
            log.seek(0)
            print("\n-- mcpkit dev output (tail) --\n" + log.read()[-3000:])
        log.close()
    sys.exit(1 if run.problems else 0)


if __name__ == "__main__":
    main()
