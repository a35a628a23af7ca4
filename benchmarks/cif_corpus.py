"""How many real-world CIFs give a structure: crystalclip vs gemmi vs pymatgen, file by file.

For every CIF in a folder (recursive), or every AMCSD entry (``amcsd``): does ``parse_cif`` give
structures and does ``build_graph`` accept them; does gemmi alone yield atom sites
(``make_small_structure_from_block``, default checks); does pymatgen's ``CifParser`` parse a
structure. Files that gemmi or pymatgen read but crystalclip does not are listed with the reason.

    python benchmarks/cif_corpus.py ../shared/data/cif-edge-cases [--json] [--limit N]
    python benchmarks/cif_corpus.py amcsd --no-pymatgen
"""
from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout()


def inputs(source: str, limit: int | None):
    if source == "amcsd":
        from crystalclip.sources import amcsd

        entries = [e for e in amcsd.iter_entries() if hasattr(e, "cif")]
        for e in entries[:limit]:
            yield e.id, e.cif.encode()
        return
    files = sorted(p for p in Path(source).rglob("*") if p.suffix.lower() in (".cif", ".mcif"))
    for p in files[:limit]:
        yield str(p.relative_to(source)), p.read_bytes()


def gemmi_sites(data: bytes) -> bool:
    import gemmi

    doc = gemmi.cif.read_string(data)
    for block in doc:
        with contextlib.suppress(Exception):  # any failure means "no sites from this block"
            if len(gemmi.make_small_structure_from_block(block).sites):
                return True
    return False


def pymatgen_reads(data: bytes) -> bool:
    from pymatgen.io.cif import CifParser

    text = data.decode("utf-8", errors="replace")
    return len(CifParser.from_str(text).parse_structures(primitive=False)) > 0


def ours(data: bytes, name: str) -> tuple[bool, str]:
    from crystalclip.graphs import build_graph
    from crystalclip.structures import StructureError, parse_cif
    from crystalclip.structures.reader import read_text

    try:
        with tempfile.NamedTemporaryFile(suffix=".cif") as handle:  # the reader's own decoding rules
            handle.write(data)
            handle.flush()
            text = read_text(handle.name)
        crystals = parse_cif(text, name)
        for crystal in crystals:
            build_graph(crystal)
    except StructureError as error:
        return False, str(error)
    return True, ""


def timed(fn, *args, seconds: int = 30):
    signal.alarm(seconds)
    try:
        return fn(*args)
    except _Timeout:
        return "timeout"
    except Exception:  # noqa: BLE001 - the other readers fail however they fail
        return False
    finally:
        signal.alarm(0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a folder of CIFs, or 'amcsd'")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-pymatgen", action="store_true", help="skip pymatgen (slow on large corpora)")
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)

    rows = {}
    for name, data in inputs(args.source, args.limit):
        row = {"gemmi": timed(gemmi_sites, data),
               "pymatgen": None if args.no_pymatgen else timed(pymatgen_reads, data)}
        result = timed(ours, data, name)
        row["ours"], row["reason"] = result if isinstance(result, tuple) else (result, "crashed or timed out")
        rows[name] = row
    others = [k for k, r in rows.items() if r["gemmi"] is True or r["pymatgen"] is True]
    missing = {k: rows[k]["reason"] for k in others if rows[k]["ours"] is not True}
    report = {
        "files": len(rows),
        "ours": sum(r["ours"] is True for r in rows.values()),
        "gemmi_sites": sum(r["gemmi"] is True for r in rows.values()),
        "pymatgen": None if args.no_pymatgen else sum(r["pymatgen"] is True for r in rows.values()),
        "gemmi_or_pymatgen": len(others),
        "ours_among_those": len(others) - len(missing),
        "ours_only": sum(r["ours"] is True and k not in others for k, r in rows.items()),
        "not_ours_reasons": dict(Counter(r["reason"][:80] for r in rows.values() if r["ours"] is not True).most_common(15)),
        "missing": missing,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['files']} CIFs: crystalclip {report['ours']} (structure and graph), gemmi sites "
          f"{report['gemmi_sites']}, pymatgen {report['pymatgen']}; of the {len(others)} that gemmi or "
          f"pymatgen read, crystalclip reads {report['ours_among_those']}")
    for name, reason in missing.items():
        print(f"  not read: {name}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
