"""The server under concurrent requests: `crystalclip serve` in a subprocess (the packaged corpus,
~180k structures, unless --index), and a local asyncio load generator (httpx) firing N searches at
once with bad requests mixed in (every 5th: empty query, k out of range, unknown element, space
group or source, a query over the length limit, an unknown structure id). A good request must answer
200 and a bad one 4xx; anything else (a 5xx, a dropped connection) counts as an error.

    python benchmarks/server_load.py [--index my_index] [--concurrent 200] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

QUERIES = ["layered sulfide superconductor", "cubic perovskite oxide", "metallic alloy", "porous framework",
           "hexagonal ferrite magnet", "high pressure silicate", "lithium battery cathode", "thermoelectric telluride"]


BAD = [("/api/search", {"q": " "}), ("/api/search", {"q": "oxide", "k": 0}), ("/api/search", {"q": "oxide", "k": 5000}),
       ("/api/search", {"q": "oxide", "elements": "Xx"}), ("/api/search", {"q": "oxide", "spacegroup": "999"}),
       ("/api/search", {"q": "oxide", "source": "nowhere"}), ("/api/search", {"q": "x" * 600}),
       ("/api/details/no-such-id", {}), ("/api/similar/no-such-id", {})]


def request(i: int) -> tuple[str, dict, bool]:
    """(path, params, good?) of the i-th request: every 5th is a bad one."""
    if i % 5 == 4:
        path, params = BAD[(i // 5) % len(BAD)]
        return path, params, False
    return "/api/search", {"q": QUERIES[i % len(QUERIES)], "k": 10}, True


async def load(url: str, n: int) -> tuple[list[float], list[str], int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(i: int):
            path, params, good = request(i)
            start = time.perf_counter()
            try:
                response = await client.get(path, params=params)
                ok = response.status_code == 200 if good else 400 <= response.status_code < 500
                error = None if ok else f"{path} {params}: HTTP {response.status_code}"
            except httpx.HTTPError as e:
                error = f"{path}: {type(e).__name__}"
            return time.perf_counter() - start, error, good

        done = await asyncio.gather(*(one(i) for i in range(n)))
    return [t for t, _, good in done if good], [e for _, e, _ in done if e], sum(not good for *_, good in done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "crystalclip.cli", "serve", "--port", str(port)]
    command += ["--index", str(args.index)] if args.index else []
    server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                structures = httpx.get(f"{url}/health").json()["structures"]
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(load(url, 8))  # warm-up
        start = time.perf_counter()
        latencies, errors, bad = asyncio.run(load(url, args.concurrent))
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
    ms = np.array(latencies) * 1000
    report = {"requests": args.concurrent, "bad_requests": bad, "errors": len(errors), "error_examples": errors[:5],
              "structures": structures,
              "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
              "max_ms": round(float(ms.max()), 1), "requests_per_s": round(args.concurrent / wall, 1)}
    print(json.dumps(report) if args.json else
          f"{report['requests']} concurrent requests ({bad} bad) over {structures:,} structures: {report['errors']} errors, "
          f"p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, {report['requests_per_s']} requests/s")


if __name__ == "__main__":
    main()
