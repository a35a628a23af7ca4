"""The bonds a CIF already lists (``_geom_bond_*`` loops) as arrays over a Crystal's sites.

The Materials Project CIFs in ``data/mp-cifs`` carry the bonds CrystalNN found (Coudert et al.):
one row per bond, ``label_1 label_2 distance symmetry_code``, each bond once. CrystalNN costs
~0.9 s a structure; reading its bonds back costs ~0.1 ms (gemmi), so coordination and
dimensionality at 150k structures come from the file.

``read_cif_bonds(cif_text, crystal)`` returns ``Bonds`` (mutual, sorted by centre, the layout
``text.describe`` reads) or None when the CIF has no usable bond loop. Only what can be checked is
used: P1 symmetry codes (``1_555``, ``1_654``; a missing code is ``1_555``), atom labels that map
one-to-one onto the crystal's sites in order, positions that agree with the crystal's, and every
listed distance equal (within 0.02 Å) to the one the sites and lattice give. Anything else gives
None, and the caller falls back to its own neighbour search.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .crystal import Crystal

__all__ = ["Bonds", "mutual", "read_cif_bonds"]

DISTANCE_TOLERANCE = 0.02  # Å between a listed distance and the one the cell gives
POSITION_TOLERANCE = 1e-3  # fractional, between the CIF's positions and the crystal's
_CODE = re.compile(r"^(\d+)_(\d)(\d)(\d)$")
_TAGS = ["atom_site_label_1", "atom_site_label_2", "distance", "?site_symmetry_2", "?site_symmetry_1"]


@dataclass(frozen=True)
class Bonds:
    """Directed bonds, both directions of each, sorted by centre ``i``: site ``j`` in the cell
    ``shift`` (integer lattice translation) from site ``i``, ``d`` Å apart."""

    i: np.ndarray  # (m,) int64
    j: np.ndarray  # (m,) int64
    shift: np.ndarray  # (m, 3) int64
    d: np.ndarray  # (m,) float64
    source: str = "cif"

    def __len__(self) -> int:
        return len(self.i)

    def vectors(self, crystal: Crystal) -> np.ndarray:
        """Cartesian vectors from i to j (m, 3), from the crystal's positions and lattice."""
        frac = np.asarray(crystal.frac_coords, np.float64)
        return (frac[self.j] + self.shift - frac[self.i]) @ np.asarray(crystal.lattice, np.float64)


def mutual(n: int, i: np.ndarray, j: np.ndarray, shift: np.ndarray, d: np.ndarray):
    """Add the reverse of every bond, drop duplicates, sort by (i, j, shift): (i, j, shift, d)."""
    i, j = np.concatenate([i, j]).astype(np.int64), np.concatenate([j, i]).astype(np.int64)
    shift = np.concatenate([shift, -shift]).astype(np.int64)
    d = np.concatenate([d, d]).astype(np.float64)
    if len(i) == 0:
        return i, j, shift.reshape(0, 3), d
    span = int(np.abs(shift).max(initial=0)) + 1
    width = 2 * span + 1
    key = ((i * n + j) * width + shift[:, 0] + span) * width + shift[:, 1] + span
    key = key * width + shift[:, 2] + span
    _, first = np.unique(key, return_index=True)  # sorted by key, so by centre i
    return i[first], j[first], shift[first], d[first]


def _block(doc, crystal: Crystal):
    name = crystal.metadata.get("block")
    if name:
        block = doc.find_block(name)
        if block is not None:
            return block
    return doc[0] if len(doc) == 1 else None


def read_cif_bonds(cif: str, crystal: Crystal) -> Bonds | None:
    """The ``_geom_bond`` loop of ``cif`` (the text ``crystal`` was parsed from) as Bonds, or None
    when there is none or it cannot be checked against the crystal (see the module docstring)."""
    if "_geom_bond" not in cif:
        return None
    import gemmi

    try:
        block = _block(gemmi.cif.read_string(cif), crystal)
    except (RuntimeError, ValueError):
        return None
    if block is None:
        return None
    table = block.find("_geom_bond_", _TAGS)
    if len(table) == 0:
        return None
    labels = [gemmi.cif.as_string(v) for v in block.find_values("_atom_site_label")]
    n = len(crystal)
    if len(labels) != n or len(set(labels)) != n:
        return None
    try:
        raw = np.array([[gemmi.cif.as_number(v) for v in block.find_values(f"_atom_site_fract_{x}")]
                        for x in "xyz"], np.float64).T
    except (RuntimeError, ValueError):
        return None
    frac = np.asarray(crystal.frac_coords, np.float64)
    if raw.shape != frac.shape or not np.isfinite(raw).all():
        return None
    offset = np.rint(raw - frac)  # the crystal holds positions wrapped into the cell
    if np.abs(raw - frac - offset).max(initial=0.0) > POSITION_TOLERANCE:
        return None
    index = {label: k for k, label in enumerate(labels)}
    has_code2, has_code1 = table.has_column(3), table.has_column(4)
    i, j, shift, d = [], [], [], []
    for row in table:
        a, b = index.get(gemmi.cif.as_string(row[0])), index.get(gemmi.cif.as_string(row[1]))
        if a is None or b is None:
            return None
        translation = []
        for column, present in ((3, has_code2), (4, has_code1)):
            code = gemmi.cif.as_string(row[column]) if present and row.has(column) else ""
            if code in ("", ".", "?"):
                translation.append((0, 0, 0))
                continue
            found = _CODE.match(code)
            if found is None or found.group(1) != "1":
                return None  # a symmetry operation other than the identity: not a P1 listing
            translation.append(tuple(int(found.group(k)) - 5 for k in (2, 3, 4)))
        i.append(a)
        j.append(b)
        shift.append(tuple(t2 - t1 for t2, t1 in zip(*translation)))
        d.append(gemmi.cif.as_number(row[2]))
    i, j = np.array(i, np.int64), np.array(j, np.int64)
    shift = np.array(shift, np.int64).reshape(-1, 3) + offset[j].astype(np.int64) - offset[i].astype(np.int64)
    d = np.array(d, np.float64)
    lattice = np.asarray(crystal.lattice, np.float64)
    computed = np.linalg.norm((frac[j] + shift - frac[i]) @ lattice, axis=1)
    if not np.isfinite(d).all() or np.abs(computed - d).max(initial=0.0) > DISTANCE_TOLERANCE:
        return None
    if (computed < 1e-3).any():
        return None
    i, j, shift, d = mutual(n, i, j, shift, computed)
    return Bonds(i, j, shift, d, "cif")
