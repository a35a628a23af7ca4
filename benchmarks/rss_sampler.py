"""Peak memory of a running process and its children, from /proc (Linux): VmHWM-style maxima of the
resident set, split into anonymous memory (what the process allocated) and file-backed pages (memory-
mapped stores and caches, which the kernel can drop and re-read).

    python benchmarks/rss_sampler.py PID [--every 2] [--json]     # until PID exits
"""
from __future__ import annotations

import argparse
import json
import os
import time


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * 1024
    return out


def _tree(pid: int) -> list[int]:
    """The process and every descendant (DataLoader workers, multiprocessing pools)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as handle:
                todo += [int(c) for c in handle.read().split()]
        except OSError:
            pass
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (an exited child that its parent has not reaped keeps its /proc entry)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def sample(pid: int, every: float = 2.0) -> dict:
    peak = {"anon": 0, "file": 0, "total": 0}
    while _running(pid):
        anon = file = 0
        for p in _tree(pid):
            try:
                s = _status(p)
            except OSError:
                continue
            anon += s.get("RssAnon", 0)
            file += s.get("RssFile", 0) + s.get("RssShmem", 0)
        peak = {"anon": max(peak["anon"], anon), "file": max(peak["file"], file), "total": max(peak["total"], anon + file)}
        time.sleep(every)
    return {k: round(v / 2**30, 2) for k, v in peak.items()} | {"unit": "GiB"}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pid", type=int)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = sample(args.pid, args.every)
    print(json.dumps(result) if args.json else result)
