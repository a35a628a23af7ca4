"""The server under concurrent search requests: `crystalclip serve` in a subprocess, a local asyncio load
generator (httpx) firing N requests at once; prints errors and latency percentiles.

    python benchmarks/server_load.py [--index my_index] [--concurrent 200] [--json]

Without --index, a random-init model and an index of 200 mp40 structures are built in a temp folder.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

QUERIES = ["layered sulfide superconductor", "cubic perovskite oxide", "metallic alloy", "porous framework",
           "hexagonal ferrite magnet", "high pressure silicate", "lithium battery cathode", "thermoelectric telluride"]


async def load(url: str, n: int) -> tuple[list[float], list[str]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(i: int):
            start = time.perf_counter()
            try:
                response = await client.get("/api/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10})
                error = None if response.status_code == 200 else f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                error = type(e).__name__
            return time.perf_counter() - start, error

        done = await asyncio.gather(*(one(i) for i in range(n)))
    return [t for t, _ in done], [e for _, e in done if e]


def build_index(root: Path, n: int) -> Path:
    """An index of n real mp40 structures under the shipped default model."""
    import pandas as pd

    import crystalclip
    from crystalclip.index import Index

    table = pd.read_csv(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mp40" / "captions_1000.csv")
    (root / "cifs").mkdir(parents=True, exist_ok=True)
    for row in table.head(n).itertuples():
        (root / "cifs" / f"{row.material_id}.cif").write_text(row.cif)
    Index.build(root / "cifs", crystalclip.load("default")).save(root / "index")
    return root / "index"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index
        if index_dir is None:
            index_dir = build_index(Path(tmp), n=200)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "crystalclip.cli", "serve", "--index", str(index_dir),
                                   "--port", str(port)], env={**os.environ, "OMP_NUM_THREADS": "1"})
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
            latencies, errors = asyncio.run(load(url, args.concurrent))
            wall = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=10)
    ms = np.array(latencies) * 1000
    report = {"requests": args.concurrent, "errors": len(errors), "structures": structures,
              "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
              "max_ms": round(float(ms.max()), 1), "requests_per_s": round(args.concurrent / wall, 1)}
    print(json.dumps(report) if args.json else
          f"{report['requests']} concurrent searches over {structures:,} structures: {report['errors']} errors, "
          f"p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, {report['requests_per_s']} requests/s")


if __name__ == "__main__":
    main()
