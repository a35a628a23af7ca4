"""Structure descriptions per second: crystalclip's template describer vs robocrystallographer.

Both run in this process, one structure at a time, on the same parsed structures (CIF parsing is
timed separately and excluded from both): mp40 CIFs (primitive P1 cells, so the template runs
spglib) and AMCSD entries (declared space groups, many disordered). robocrys takes seconds per
structure, so it runs on an evenly spaced subset, and the template is timed on that same subset
too; the ratio is between the two on the subset.

    python benchmarks/describe.py [--mp40 200] [--amcsd 100] [--robocrys-limit 20] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / ".." / "shared" / "data" / "mp40" / "captions_1000.csv"


def load_cifs(csv: Path, n_mp40: int, n_amcsd: int) -> list[tuple[str, str]]:
    rows = []
    if n_mp40:
        table = pd.read_csv(csv, usecols=["material_id", "cif"]).head(n_mp40)
        rows += list(zip(table["material_id"], table["cif"]))
    if n_amcsd:
        from crystalclip.sources import amcsd

        entries = [e for e in amcsd.iter_entries() if hasattr(e, "cif")]
        step = max(1, len(entries) // n_amcsd)
        rows += [(e.id, e.cif) for e in entries[::step][:n_amcsd]]
    return rows


def time_each(fn, crystals) -> tuple[list[float], dict[str, str]]:
    """Seconds per structure (successes only) and {id: reason} for failures."""
    times, failures = [], {}
    for crystal in crystals:
        start = time.perf_counter()
        try:
            fn(crystal)
        except Exception as error:  # noqa: BLE001 - a describer fails however it fails
            failures[crystal.id] = f"{type(error).__name__}: {str(error)[:120]}"
            continue
        times.append(time.perf_counter() - start)
    return times, failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="mp40 CSV with a 'cif' column")
    ap.add_argument("--mp40", type=int, default=200, help="mp40 structures")
    ap.add_argument("--amcsd", type=int, default=100, help="AMCSD structures, evenly spaced (0 = none)")
    ap.add_argument("--robocrys-limit", type=int, default=20, help="structures robocrys describes")
    ap.add_argument("--passes", type=int, default=3, help="timed template passes (median reported)")
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")  # pymatgen's and robocrys's warnings would dominate both timings
    from crystalclip.structures import parse_cif
    from crystalclip.text.describe import describe, describe_robocrys

    rows = load_cifs(args.csv.resolve(), args.mp40, args.amcsd)
    start = time.perf_counter()
    crystals = []
    for name, cif in rows:
        try:
            crystals.append(parse_cif(cif, name)[0])
        except ValueError:
            pass
    parse_s = time.perf_counter() - start
    if not crystals:
        raise SystemExit("no structures to describe")

    describe(crystals[0])  # warm-up: imports (vesin pulls in torch), element and symbol tables
    passes = []
    for _ in range(args.passes):
        times, failures = time_each(describe, crystals)
        passes.append(sum(times))
    template_s = float(np.median(passes))
    ordered = sum(c.is_ordered for c in crystals)

    subset = crystals[:: max(1, len(crystals) // max(args.robocrys_limit, 1))][: args.robocrys_limit]
    robocrys, subset_per_s = None, None
    try:
        import robocrys as _robocrys  # noqa: F401
    except ImportError:
        subset = []
    if subset:
        sub_passes = [sum(time_each(describe, subset)[0]) for _ in range(args.passes)]
        subset_per_s = len(subset) / float(np.median(sub_passes))
        describe_robocrys(subset[0])  # warm-up: its imports
        robo_times, robo_failures = time_each(describe_robocrys, subset)
        robocrys = {
            "structures": len(subset),
            "described": len(robo_times),
            "per_s": round(len(robo_times) / sum(robo_times), 4) if robo_times else None,
            "s_per_structure": round(float(np.mean(robo_times)), 2) if robo_times else None,
            "failures": robo_failures,
        }

    template_per_s = (len(crystals) - len(failures)) / template_s
    report = {
        "structures": len(crystals),
        "ordered": ordered,
        "template_per_s": round(template_per_s, 1),
        "template_ms_per_structure": round(1e3 * template_s / len(crystals), 3),
        "template_failures": failures,
        "parse_ms_per_structure": round(1e3 * parse_s / len(crystals), 3),
        "template_with_parse_per_s": round(len(crystals) / (template_s + parse_s), 1),
        "subset_template_per_s": round(subset_per_s, 1) if subset_per_s else None,
        "robocrys": robocrys,
        "ratio": round(subset_per_s / robocrys["per_s"], 1) if robocrys and robocrys["per_s"] else None,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"structure descriptions: {args.mp40} mp40 + {args.amcsd} AMCSD CIFs -> {len(crystals)} structures "
          f"({len(crystals) - ordered} disordered); parsing excluded ({report['parse_ms_per_structure']} ms each)")
    print(f"  template  {len(crystals):5d} structures  {template_per_s:10.1f} /s  "
          f"({report['template_ms_per_structure']} ms each, median of {len(passes)} passes; "
          f"{report['template_with_parse_per_s']} /s with parsing)  failures {len(failures)}")
    if robocrys is None:
        why = "--robocrys-limit 0" if args.robocrys_limit <= 0 else "not installed (pip install robocrys)"
        print(f"  robocrys  not measured: {why}")
        return 0
    print(f"  template  {len(subset):5d} structures  {subset_per_s:10.1f} /s  (robocrys's subset)")
    print(f"  robocrys  {len(subset):5d} structures  {robocrys['per_s']:10.4f} /s  "
          f"({robocrys['s_per_structure']} s each)  failures {len(robocrys['failures'])}")
    print(f"  speed-up  {report['ratio']}x on the same structures")
    for name, reason in list(robocrys["failures"].items())[:5]:
        print(f"  robocrys failed on {name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
