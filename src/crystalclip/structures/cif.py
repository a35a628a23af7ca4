"""CIF text -> Crystals: gemmi for speed (~30 µs a file), pymatgen when gemmi cannot read it.

Both paths give the same sites, species and lattice (tests/test_structures.py checks it on mp40 and
AMCSD); the lattice matrix follows pymatgen's `Lattice.from_parameters` convention so Cartesian
coordinates agree with what pymatgen users get.
"""
from __future__ import annotations

import math
import re
import warnings

import gemmi
import numpy as np

from .crystal import Crystal, StructureError

MAX_SITES = 20_000  # P1 sites per cell; a 10,000-atom cell is read, a 50,000-atom one is refused
MIN_LENGTH, MAX_LENGTH = 0.5, 1_000.0  # Å, plausible cell edges
MIN_VOLUME_PER_SITE = 0.5  # Å^3; less means overlapping atoms or a broken cell
THIRDS_TOLERANCE = 1e-4  # relative; pymatgen's frac_tolerance
SITE_TOLERANCE = 1e-4  # fractional; images closer than this are one site (pymatgen's default)

_METADATA_TAGS = {
    "title": ("_publ_section_title",),
    "journal": ("_journal_name_full", "_journal_name_abbrev", "_journal_coden_ASTM"),
    "year": ("_journal_year",),
    "doi": ("_journal_paper_doi", "_journal_doi"),
    "mineral": ("_chemical_name_mineral",),
    "chemical_name": ("_chemical_name_systematic", "_chemical_name_common"),
    "formula_sum": ("_chemical_formula_sum",),
    "cod_id": ("_cod_database_code",),
    "spacegroup_symbol": ("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M"),
    "spacegroup_number": ("_space_group_IT_number", "_symmetry_Int_Tables_number"),
}
_CELL_TAGS = ("_cell_length_a", "_cell_length_b", "_cell_length_c")


def parse_cif(text: str, name: str = "input") -> list[Crystal]:
    """Every structure in a CIF text, one per data block that has atom sites.

    Raises StructureError with a one-line reason when the text holds no usable structure.
    """
    if not text.strip():
        raise StructureError("empty file")
    try:
        doc = gemmi.cif.read_string(text)
    except (RuntimeError, ValueError) as gemmi_error:
        return _parse_with_pymatgen(text, name, _first_line(gemmi_error))
    crystals, reasons = [], []
    shared: dict = {}  # metadata from blocks without atoms (COD's data_global) applies to the others
    atom_blocks = []
    for block in doc:
        if block.find_value("_atom_site_fract_x") is None and not block.find_values("_atom_site_fract_x"):
            shared.update({k: v for k, v in _metadata(block).items() if k not in shared})
        else:
            atom_blocks.append(block)
    if not atom_blocks:
        raise StructureError("no atom sites (_atom_site_fract_x) in any data block")
    for block in atom_blocks:
        block_id = name if len(atom_blocks) == 1 else f"{name}#{block.name}"
        try:
            crystal = _block_to_crystal(block, block_id)
        except StructureError as error:
            reasons.append(f"block {block.name}: {error}" if len(atom_blocks) > 1 else str(error))
            continue
        except Exception as error:  # _NeedsPymatgen, or gemmi choking where pymatgen does not
            try:
                crystal = _parse_with_pymatgen(block.as_string(), block_id, _first_line(error))[0]
            except StructureError as fallback_error:
                reasons.append(str(fallback_error))
                continue
        crystal.metadata = {**shared, **crystal.metadata}
        crystals.append(crystal)
    if not crystals:
        raise StructureError("; ".join(reasons))
    return crystals


class _NeedsPymatgen(Exception):
    """gemmi read the block but cannot finish it (e.g. labels like 'Wat' with no element)."""


def _block_to_crystal(block: gemmi.cif.Block, crystal_id: str) -> Crystal:
    if any(block.find_value(tag) is None for tag in _CELL_TAGS):
        raise StructureError("missing cell lengths (_cell_length_a/b/c)")
    small = gemmi.make_small_structure_from_block(block)
    cell = small.cell
    lattice = _lattice_matrix(cell.a, cell.b, cell.c, cell.alpha, cell.beta, cell.gamma)
    asym = [s for s in small.sites if math.isfinite(s.occ) and s.occ > 0]
    if not asym:
        raise StructureError("no atom sites with non-zero occupancy")
    numbers = np.array([s.element.atomic_number for s in asym], np.int64)
    if (numbers == 0).any():
        raise _NeedsPymatgen(f"unknown element for site '{asym[int(np.argmin(numbers))].label}'")
    frac = np.array([s.fract.tolist() for s in asym], dtype=np.float64)
    if not np.isfinite(frac).all():
        raise StructureError("non-numeric fractional coordinates")
    frac = _round_thirds(frac)
    occupancies = np.array([s.occ for s in asym], np.float64)
    frac, site_index = _expand(frac, _symmetry_ops(small))
    numbers, occupancies = numbers[site_index], occupancies[site_index]
    if len(frac) > MAX_SITES:
        raise StructureError(f"{len(frac):,} sites in the unit cell, above the limit of {MAX_SITES:,}")
    volume = abs(np.linalg.det(lattice))
    if volume / len(frac) < MIN_VOLUME_PER_SITE:
        raise StructureError(f"cell volume {volume:.3g} Å^3 is too small for {len(frac)} sites")
    if np.all(occupancies == 1.0):
        species = [{int(z): 1.0} for z in numbers]
    else:
        frac, species = _merge_shared_positions(frac, numbers, occupancies)
    return Crystal(crystal_id, lattice, frac, species, _metadata(block))


def _round_thirds(frac: np.ndarray) -> np.ndarray:
    """0.3333 -> 1/3 and 0.6667 -> 2/3, with pymatgen's tolerance, so symmetry images coincide."""
    for third in (1 / 3, 2 / 3):
        frac = np.where(np.abs(frac / third - 1) < THIRDS_TOLERANCE, third, frac)
    return frac


def _symmetry_ops(small: gemmi.SmallStructure) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (k, 3, 3) and translations (k, 3) in fractional coordinates."""
    if small.symops:
        ops = list(gemmi.GroupOps([gemmi.Op(s) for s in small.symops]))
    elif small.spacegroup is not None:
        ops = list(small.spacegroup.operations())
    else:
        ops = [gemmi.Op("x,y,z")]
    rot = np.array([op.rot for op in ops], np.float64) / gemmi.Op.DEN
    tran = np.array([op.tran for op in ops], np.float64) / gemmi.Op.DEN
    return rot, tran


def _expand(frac: np.ndarray, ops, tol: float = SITE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Symmetry images of each site, duplicates (within tol, fractional) removed as pymatgen does.

    gemmi's own expansion also merges images up to ~0.5 Å apart, which drops half of a split site.
    """
    rot, tran = ops
    if len(rot) == 1 and not tran.any():  # P1
        return frac % 1.0, np.arange(len(frac))
    images = (np.einsum("kij,nj->nki", rot, frac) + tran) % 1.0  # (n, k, 3)
    k = images.shape[1]
    earlier = np.tril(np.ones((k, k), bool), -1)
    keep = np.empty(images.shape[:2], bool)
    chunk = max(1, 2_000_000 // (k * k))
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk]
        delta = block[:, :, None, :] - block[:, None, :, :]
        delta -= np.round(delta)
        same = (np.abs(delta) < tol).all(-1) & earlier
        keep[start : start + chunk] = ~same.any(-1)
    site_index = np.nonzero(keep)[0]
    return images[keep], site_index


def _merge_shared_positions(frac, numbers, occupancies, tol: float = SITE_TOLERANCE):
    """Sites that share a position (Si/Al on one site) become one site with several species."""
    n = len(frac)
    owner = np.arange(n)
    for start in range(0, n, 1024):
        delta = frac[start : start + 1024, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        rows, cols = np.nonzero((np.abs(delta) < tol).all(-1))
        for r, c in zip(rows + start, cols):
            if c < r and owner[r] == r:
                owner[r] = owner[c]
    species: dict[int, dict[int, float]] = {}
    for i, z in enumerate(numbers):
        site = species.setdefault(int(owner[i]), {})
        site[int(z)] = site.get(int(z), 0.0) + float(occupancies[i])
    keys = sorted(species)
    return frac[keys], [species[k] for k in keys]


def _lattice_matrix(a, b, c, alpha, beta, gamma) -> np.ndarray:
    values = (a, b, c, alpha, beta, gamma)
    if not all(math.isfinite(v) for v in values):
        raise StructureError(f"absurd cell parameters {values}")
    if not all(MIN_LENGTH <= x <= MAX_LENGTH for x in (a, b, c)):
        raise StructureError(f"absurd cell lengths a={a:g} b={b:g} c={c:g} Å")
    if not all(0 < x < 180 for x in (alpha, beta, gamma)):
        raise StructureError(f"absurd cell angles {alpha:g} {beta:g} {gamma:g}")
    # pymatgen's Lattice.from_parameters (vesta=False), inlined: a third of the parse time otherwise
    ca, cb, cg = np.cos(np.radians([alpha, beta, gamma]))
    sa, sb = np.sin(np.radians([alpha, beta]))
    gamma_star = np.arccos(np.clip((ca * cb - cg) / (sa * sb), -1, 1))
    matrix = np.array([[a * sb, 0.0, a * cb],
                       [-b * sa * np.cos(gamma_star), b * sa * np.sin(gamma_star), b * ca],
                       [0.0, 0.0, float(c)]])
    if not np.isfinite(matrix).all() or abs(np.linalg.det(matrix)) < 1e-3 * a * b * c:
        raise StructureError(f"cell angles {alpha:g} {beta:g} {gamma:g} do not form a cell")
    return matrix


def _metadata(block: gemmi.cif.Block) -> dict:
    out: dict = {"block": block.name}
    for key, tags in _METADATA_TAGS.items():
        for tag in tags:
            raw = block.find_value(tag)
            if raw is None:
                continue
            value = " ".join(gemmi.cif.as_string(raw).split())
            if value and value not in ("?", "."):
                out[key] = value
                break
    for key in ("year", "spacegroup_number"):
        if key in out:
            try:
                out[key] = int(float(out[key].split("(")[0]))
            except ValueError:
                del out[key]
    return out


def _parse_with_pymatgen(text: str, name: str, gemmi_reason: str) -> list[Crystal]:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structures = CifParser.from_str(text).parse_structures(primitive=False)
        except Exception as error:  # pymatgen raises many types; all mean "unreadable"
            structures, pymatgen_reason = [], _first_line(error)
    if not structures:
        lines = [line for w in caught for line in str(w.message).splitlines()]
        details = [line for line in lines if "exceeded" in line or "sum to > 1" in line]
        reason = details[-1] if details else pymatgen_reason
        if "no structures" in reason or reason == gemmi_reason:
            raise StructureError(f"unreadable CIF: {gemmi_reason}")
        raise StructureError(f"unreadable CIF: {gemmi_reason} (pymatgen: {reason})")
    crystals = []
    for i, structure in enumerate(structures):
        _lattice_matrix(*structure.lattice.abc, *structure.lattice.angles)  # same sanity checks
        crystals.append(Crystal.from_pymatgen(structure, id=name if len(structures) == 1 else f"{name}#{i}"))
    return crystals


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0][:200] if lines else type(error).__name__
    return re.sub(r"^string:(\d+)(:\d+\(\d+\))?", r"line \1", line)  # gemmi's "string:13:4(534)"
