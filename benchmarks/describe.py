"""Structure descriptions per second, stage by stage, and how often a structure type is found.

Three measurements, all in this process, one structure at a time:

1. mp-cifs (``../shared/data/mp-cifs``, 152,124 Materials Project structures as P1 CIFs with
   CrystalNN bond loops): a random sample (seeded) read shard by shard; CIF parsing, reading the bond
   loop, every analysis stage (``text.describe.STAGES``: symmetry, prototype, bonds, composition,
   coordination, polyhedra, dimensionality, density) and rendering (one full + one formula-free
   text) timed separately; the prototype match rate and the commonest structure types, composition
   classes and dimensionalities; the projected time for all 152,124 structures on 2 processes.
2. the template on mp40 CIFs (primitive P1 cells, neighbour-rule bonds) and AMCSD entries
   (declared space groups, many disordered), median of ``--passes``.
3. robocrystallographer on an evenly spaced subset of those, when it is installed, and the template
   on the same subset (the ratio is between the two).

    python benchmarks/describe.py [--mp-cifs 2000] [--mp40 200] [--amcsd 100] [--robocrys-limit 20] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / ".." / "shared" / "data" / "mp40" / "captions_1000.csv"
DEFAULT_MP_CIFS = ROOT / ".." / "shared" / "data" / "mp-cifs"
MP_TOTAL = 152_124


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


def sample_mp_cifs(folder: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """n random (material_id, cif) rows over all shards, read batch by batch."""
    import pyarrow.parquet as pq

    files = sorted(folder.glob("*.parquet"))
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    total = sum(sizes)
    picked = np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))
    rows, start = [], 0
    for file, size in zip(files, sizes):
        wanted = set((picked[(picked >= start) & (picked < start + size)] - start).tolist())
        offset = 0
        for batch in pq.ParquetFile(file).iter_batches(batch_size=4096, columns=["material_id", "cif"]):
            chosen = [k for k in range(batch.num_rows) if offset + k in wanted]
            if chosen:
                ids, cifs = batch.column("material_id").to_pylist(), batch.column("cif").to_pylist()
                rows += [(ids[k], cifs[k]) for k in chosen]
            offset += batch.num_rows
        start += size
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


def bench_mp_cifs(folder: Path, n: int, seed: int) -> dict:
    from crystalclip.structures import parse_cif
    from crystalclip.structures.bonds import read_cif_bonds
    from crystalclip.text.describe import STAGES, analyze, render
    from crystalclip.text.masking import mask_formulas
    from crystalclip.text.prototypes import prototype_table

    start = time.perf_counter()
    rows = sample_mp_cifs(folder, n, seed)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    prototype_table()  # built once per process
    table_s = time.perf_counter() - start
    analyze(parse_cif(rows[0][1])[0])  # warm-up: imports, element tables, the matcher

    stages = {stage: 0.0 for stage in ("parse", "cif_bonds", *STAGES, "render")}
    types, classes, dims, failures = Counter(), Counter(), Counter(), {}
    from_cif = supplemented = unmasked = described = 0
    for id_, cif in rows:
        try:
            t0 = time.perf_counter()
            crystal = parse_cif(cif, id_)[0]
            t1 = time.perf_counter()
            bonds = read_cif_bonds(cif, crystal)
            t2 = time.perf_counter()
            facts = analyze(crystal, bonds=bonds, timings=stages)
            t3 = time.perf_counter()
            render(facts, seed=0)
            free = render(facts, seed=0, formula_free=True)
            t4 = time.perf_counter()
        except Exception as error:  # noqa: BLE001 - report, go on
            failures[id_] = f"{type(error).__name__}: {str(error)[:120]}"
            continue
        stages["parse"] += t1 - t0
        stages["cif_bonds"] += t2 - t1
        stages["render"] += t4 - t3
        described += 1
        from_cif += facts.bonds_from.startswith("cif")
        supplemented += facts.bonds_from == "cif+neighbours"
        unmasked += mask_formulas(free) == free
        types[facts.prototype[1] if facts.prototype else None] += 1
        classes[facts.composition.word] += 1
        dims["+".join(f"{d}D" for d, _ in facts.dims) or "none"] += 1
    total = sum(stages.values())
    per_s = described / total if total else 0.0
    matched = described - types[None]
    return {
        "structures": len(rows),
        "described": described,
        "failures": dict(list(failures.items())[:10]),
        "failure_count": len(failures),
        "sample_seed": seed,
        "read_s": round(read_s, 2),
        "prototype_table_s": round(table_s, 2),
        "ms_per_structure": {k: round(1e3 * v / max(described, 1), 3) for k, v in stages.items()},
        "ms_total": round(1e3 * total / max(described, 1), 3),
        "per_s": round(per_s, 1),
        "all_mp_minutes_on_2_processes": round(MP_TOTAL / (2 * per_s) / 60, 1) if per_s else None,
        "bonds_from_cif": round(from_cif / max(described, 1), 4),
        "bonds_supplemented": round(supplemented / max(described, 1), 4),
        "formula_free_unmasked": round(unmasked / max(described, 1), 4),
        "prototype_matched": matched,
        "prototype_match_rate": round(matched / max(described, 1), 4),
        "prototypes": [[name, count] for name, count in types.most_common() if name][:20],
        "composition_classes": classes.most_common(12),
        "dimensionality": dims.most_common(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mp-cifs-dir", type=Path, default=DEFAULT_MP_CIFS, help="folder of mp-cifs parquet shards")
    ap.add_argument("--mp-cifs", type=int, default=2000, help="random mp-cifs structures (0 = none)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the mp-cifs sample")
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="mp40 CSV with a 'cif' column")
    ap.add_argument("--mp40", type=int, default=200, help="mp40 structures")
    ap.add_argument("--amcsd", type=int, default=100, help="AMCSD structures, evenly spaced (0 = none)")
    ap.add_argument("--robocrys-limit", type=int, default=20, help="structures robocrys describes")
    ap.add_argument("--passes", type=int, default=3, help="timed template passes on mp40/AMCSD (median reported)")
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")  # pymatgen's and robocrys's warnings would dominate both timings
    from crystalclip.structures import parse_cif
    from crystalclip.text.describe import describe, describe_robocrys

    mp_cifs = None
    if args.mp_cifs and args.mp_cifs_dir.resolve().is_dir():
        mp_cifs = bench_mp_cifs(args.mp_cifs_dir.resolve(), args.mp_cifs, args.seed)

    rows = load_cifs(args.csv.resolve(), args.mp40, args.amcsd)
    start = time.perf_counter()
    crystals = []
    for name, cif in rows:
        try:
            crystals.append(parse_cif(cif, name)[0])
        except ValueError:
            pass
    parse_s = time.perf_counter() - start
    template = robocrys = subset_per_s = None
    if crystals:
        describe(crystals[0])  # warm-up: imports (vesin pulls in torch), element and symbol tables
        passes = []
        for _ in range(args.passes):
            times, failures = time_each(describe, crystals)
            passes.append(sum(times))
        template_s = float(np.median(passes))
        template = {
            "structures": len(crystals),
            "ordered": sum(c.is_ordered for c in crystals),
            "per_s": round((len(crystals) - len(failures)) / template_s, 1),
            "ms_per_structure": round(1e3 * template_s / len(crystals), 3),
            "failures": failures,
            "parse_ms_per_structure": round(1e3 * parse_s / len(crystals), 3),
            "with_parse_per_s": round(len(crystals) / (template_s + parse_s), 1),
        }
        subset = crystals[:: max(1, len(crystals) // max(args.robocrys_limit, 1))][: args.robocrys_limit]
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
                "subset_template_per_s": round(subset_per_s, 1),
                "ratio": round(subset_per_s / (len(robo_times) / sum(robo_times)), 1) if robo_times else None,
            }
    report = {"mp_cifs": mp_cifs, "template": template, "robocrys": robocrys}
    if args.json:
        print(json.dumps(report))
        return 0
    if mp_cifs:
        m = mp_cifs
        print(f"mp-cifs: {m['described']} of {m['structures']} random structures described (seed {m['sample_seed']}; "
              f"{m['failure_count']} failures), bonds from the CIF for {100 * m['bonds_from_cif']:.1f}% "
              f"(with neighbour-rule bonds for sites the loop leaves bare in {100 * m['bonds_supplemented']:.1f}%)")
        print(f"  {m['per_s']:.1f} structures/s on one process ({m['ms_total']} ms each, parsing and rendering "
              f"included) -> all {MP_TOTAL:,} in {m['all_mp_minutes_on_2_processes']} min on 2 processes")
        for stage, ms in m["ms_per_structure"].items():
            print(f"    {stage:15s} {ms:8.3f} ms")
        print(f"  prototype table built in {m['prototype_table_s']} s (once per process)")
        print(f"  structure type found for {m['prototype_matched']} ({100 * m['prototype_match_rate']:.1f}%); commonest:")
        for name, count in m["prototypes"][:15]:
            print(f"    {count:5d}  {name}")
        print("  composition classes: " + ", ".join(f"{w} {c}" for w, c in m["composition_classes"]))
        print("  dimensionality: " + ", ".join(f"{d} {c}" for d, c in m["dimensionality"]))
        print(f"  formula-free texts the masking leaves unchanged: {100 * m['formula_free_unmasked']:.1f}%")
    if template:
        t = template
        print(f"template on {args.mp40} mp40 + {args.amcsd} AMCSD CIFs -> {t['structures']} structures "
              f"({t['structures'] - t['ordered']} disordered), neighbour-rule bonds: {t['per_s']:.1f} /s "
              f"({t['ms_per_structure']} ms each, median of {args.passes}; {t['with_parse_per_s']} /s with parsing)"
              f"  failures {len(t['failures'])}")
    if robocrys is None:
        why = "--robocrys-limit 0" if args.robocrys_limit <= 0 else "not installed (pip install robocrys)"
        print(f"robocrys: not measured: {why}")
        return 0
    print(f"robocrys: {robocrys['structures']} structures {robocrys['per_s']:.4f} /s ({robocrys['s_per_structure']} s "
          f"each); the template on the same {robocrys['subset_template_per_s']} /s -> {robocrys['ratio']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
