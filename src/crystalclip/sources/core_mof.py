"""CoRE MOF 2019: metal-organic framework CIFs shipped in PyPI ``core-mof`` (package ``CoRE_MOF``).

The package holds ``data/<dataset>.tar.xz`` (the CIFs) and ``data/<dataset>.csv`` (one row per CIF:
pore descriptors from Zeo++, metals, open-metal-site flags, DOI). Each archive is streamed once, in
archive order (``tarfile`` stream mode; never reopened per entry, which is what ``CoRE_MOF.load``
does and what makes it slow).

Datasets: ``2019-ASR`` (all solvent removed, 12,020 CIFs) and ``2019-FSR`` (free solvent removed,
7,061 CIFs) by default. ``2014`` has no descriptors and is not supported. The two 2019 sets share 559
file names (``*_charged``, ``*_manual``, ...): the first dataset listed wins. The ASR and FSR
versions of one MOF (``ABAVIJ_clean`` / ``ABAVIJ_freeONLY``) are different structures and both are
kept; they share a ``group`` so they always fall in the same split.

Texts are generated from the descriptors by a fixed template (``describe``), so
``texts_generated=True``; there is no human-written text in this source.
"""
from __future__ import annotations

import csv
import importlib.util
import re
import tarfile
from pathlib import Path
from typing import Iterable, Iterator

from crystalclip.errors import BadInput, NotFound
from crystalclip.sources.base import Entry, Rejected

SOURCE = "core-mof"
DEFAULT_DATASETS = ("2019-ASR", "2019-FSR")
_FLOAT_COLUMNS = {  # CSV column -> Entry.columns key
    "LCD": "LCD",  # largest cavity diameter, Å
    "PLD": "PLD",  # pore limiting diameter, Å
    "LFPD": "LFPD",  # largest free sphere along the free path, Å
    "cm3_g": "density",  # crystal density in g/cm3 (the CSV's header says cm3_g)
    "ASA_m2_g": "ASA_m2_g",  # N2-accessible surface area, m2/g
    "AV_VF": "AV_VF",  # accessible void fraction
}
_REFCODE = re.compile(r"^([A-Z]{6})\d{0,2}$")


def data_dir() -> Path:
    spec = importlib.util.find_spec("CoRE_MOF")
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the core-mof source needs the 'core-mof' package: pip install core-mof")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _datasets(datasets: str | Iterable[str] | None) -> list[str]:
    if datasets is None:
        return list(DEFAULT_DATASETS)
    if isinstance(datasets, str):
        datasets = [d.strip() for d in datasets.split(",") if d.strip()]
    return list(datasets)


def read_descriptors(dataset: str, root: Path | None = None) -> dict[str, dict[str, str]]:
    """filename -> raw CSV row of one dataset."""
    path = (root or data_dir()) / f"{dataset}.csv"
    if not path.is_file():
        raise NotFound(f"CoRE MOF dataset {dataset!r} not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if "LCD" not in (reader.fieldnames or []):
            raise BadInput(
                f"CoRE MOF dataset {dataset!r} has no pore descriptors (columns: {reader.fieldnames}); "
                f"use one of {DEFAULT_DATASETS}"
            )
        return {row["filename"].strip(): row for row in reader if row.get("filename")}


def group_of(filename: str, extension: str | None = None) -> str:
    """The leakage group: CSD refcode family for CSD entries ("LAJDUV03_charged" -> "LAJDUV"),
    else the publication-ish prefix ("c5dt01100k_c5dt01100k2_clean" -> "c5dt01100k")."""
    base = filename
    if extension and base.endswith("_" + extension):
        base = base[: -len(extension) - 1]
    else:
        base = re.sub(
            r"_(clean_h_min|clean_h|clean|charged|manual|SL_part|SL|ion_b|auto|neutral_b|neutral|freeONLY)$",
            "", base,
        )
    m = _REFCODE.match(base)
    if m:
        return m.group(1)
    return base.split("_")[0] or base


def _float(raw: str | None) -> float | None:
    try:
        return float(str(raw).strip())
    except (TypeError, ValueError):
        return None


def _text(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw or None


def columns_of(row: dict[str, str], dataset: str) -> dict:
    cols: dict = {key: _float(row.get(col)) for col, key in _FLOAT_COLUMNS.items()}
    cols["All_Metals"] = _text(row.get("All_Metals"))
    has_oms = _text(row.get("Has_OMS"))
    cols["Has_OMS"] = None if has_oms is None else has_oms.lower() in ("yes", "y", "true", "1")
    cols["Open_Metal_Sites"] = _text(row.get("Open_Metal_Sites"))
    cols["DOI_public"] = _text(row.get("DOI_public"))
    cols["dataset"] = dataset
    return cols


def _metals(raw: str | None) -> list[str]:
    return list(dict.fromkeys(m.strip() for m in (raw or "").split(",") if m.strip()))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe(cols: dict) -> list[str]:
    """Two template texts from the descriptors (pores and open metal sites; density and surface).

    >>> describe({"All_Metals": "Cu", "Has_OMS": True, "Open_Metal_Sites": "Cu", "LCD": 11.2,
    ...           "PLD": 3.8, "AV_VF": 0.65, "density": 0.88, "ASA_m2_g": 1924.4})[0]
    'Cu metal-organic framework with open Cu sites, largest cavity 11.2 Å, pore limiting diameter 3.8 Å, void fraction 0.65'
    """
    metals = _metals(cols.get("All_Metals"))
    mof = f"{_and(metals)} metal-organic framework" if metals else "metal-organic framework"
    oms = _metals(cols.get("Open_Metal_Sites"))
    if cols.get("Has_OMS") and oms:
        first = f"{mof} with open {_and(oms)} sites"
    elif cols.get("Has_OMS"):
        first = f"{mof} with open metal sites"
    elif cols.get("Has_OMS") is False:
        first = f"{mof} without open metal sites"
    else:
        first = mof
    parts = [first]
    if cols.get("LCD") is not None:
        parts.append(f"largest cavity {cols['LCD']:.1f} Å")
    if cols.get("PLD") is not None:
        parts.append(f"pore limiting diameter {cols['PLD']:.1f} Å")
    if cols.get("AV_VF") is not None:
        parts.append(f"void fraction {cols['AV_VF']:.2f}")
    texts = [", ".join(parts)]

    second = []
    if cols.get("density") is not None:
        second.append(f"density {cols['density']:.2f} g/cm3")
    asa = cols.get("ASA_m2_g")
    if asa is not None:
        second.append(
            f"surface area {asa:.0f} m2/g" if asa > 0 else "no surface accessible to nitrogen"
        )
    if second:
        short = f"{_and(metals)} MOF" if metals else "MOF"
        texts.append(f"{short} with " + " and ".join(second))
    return texts


def iter_entries(
    limit: int | None = None,
    datasets: str | Iterable[str] | None = None,
    root: str | Path | None = None,
    **_: object,
) -> Iterator[Entry | Rejected]:
    """One Entry per CIF, archive order, datasets in the given order; `limit` caps Entries."""
    base = Path(root) if root is not None else data_dir()
    seen: set[str] = set()
    produced = 0
    for dataset in _datasets(datasets):
        rows = read_descriptors(dataset, base)
        archive = base / f"{dataset}.tar.xz"
        with tarfile.open(archive, mode="r|*") as tar:  # stream: one sequential pass
            for member in tar:
                if limit is not None and produced >= limit:
                    return
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not name.lower().endswith(".cif") or name.startswith("."):
                    continue
                filename = name[: -len(".cif")]
                eid = f"{SOURCE}:{filename}"
                where = f"{archive}::{member.name}"
                if filename in seen:
                    continue  # same file name in an earlier dataset
                seen.add(filename)
                row = rows.get(filename)
                if row is None:
                    yield Rejected(eid, SOURCE, f"no descriptor row in {dataset}.csv", where)
                    continue
                if member.size == 0:
                    yield Rejected(eid, SOURCE, "empty file", where)
                    continue
                data = tar.extractfile(member).read()
                try:
                    cif = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield Rejected(eid, SOURCE, f"not UTF-8: bad byte at offset {exc.start}", where)
                    continue
                cols = columns_of(row, dataset)
                produced += 1
                yield Entry(
                    id=eid,
                    source=SOURCE,
                    cif=cif,
                    texts=describe(cols),
                    group=f"core-mof:{group_of(filename, _text(row.get('Extension')))}",
                    columns=cols,
                    path=where,
                    texts_generated=True,
                )


def count(
    limit: int | None = None,
    datasets: str | Iterable[str] | None = None,
    root: str | Path | None = None,
    **_: object,
) -> int:
    """Entries to expect (from the CSVs, deduplicated by file name; no archive is opened)."""
    base = Path(root) if root is not None else data_dir()
    names: set[str] = set()
    for dataset in _datasets(datasets):
        names.update(read_descriptors(dataset, base))
    return len(names) if limit is None else min(len(names), limit)
