"""CIF text -> Crystals: gemmi for speed (~40 µs a file), pymatgen when gemmi cannot read it.

Both paths give the same sites, species and lattice (tests/test_structures.py checks it on mp40 and
AMCSD); the lattice matrix follows pymatgen's `Lattice.from_parameters` convention so Cartesian
coordinates agree with what pymatgen users get.

Real-world CIFs are read as a crystallographer would read them:

- an element comes from `_atom_site_type_symbol`, else from the label: charges and digits dropped
  (`Fe3+`, `O1W`), the first two letters if they name an element, else the first (`WB` -> W at site
  B, `OX` -> O), water written `Wat`, `Ow`, `H2O` -> O, `Hw` -> H; dummy atoms, residual-density
  peaks and centroids (`Q1`, `Du`, `Lp`, `Cg1`, `X`, `_atom_site_calc_flag dum`) are left out;
- a coordinate written as a fraction (`1/3`) is read; a site with no coordinates (`?`) is left out;
- duplicate tags are read (the first value counts);
- overlapping sites follow `crystal.merge_overlapping_sites` (disorder, riding H and atoms listed
  twice are merged; only different elements that symmetry stacks on one position are refused),
  and a site never holds more than one atom (occupancies summing above 1 are scaled to 1).
"""
from __future__ import annotations

import math
import re
import warnings
from functools import lru_cache

import gemmi
import numpy as np

from .crystal import (
    OCCUPANCY_SLACK,
    SITE_TOLERANCE,
    Crystal,
    StructureError,
    merge_overlapping_sites,
    scale_to_full,
)

MAX_SITES = 20_000  # P1 sites per cell; a 10,000-atom cell is read, a 50,000-atom one is refused
MIN_LENGTH, MAX_LENGTH = 0.5, 1_000.0  # Å, plausible cell edges
MIN_VOLUME_PER_SITE = 0.5  # Å^3; less means overlapping atoms or a broken cell
THIRDS_TOLERANCE = 1e-4  # relative; pymatgen's frac_tolerance

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
_SPACEGROUP_TAGS = ("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M", "_space_group_name_Hall",
                    "_symmetry_space_group_name_Hall", "_space_group_IT_number", "_symmetry_Int_Tables_number")

# label / type-symbol words that are not atoms: dummy atoms, Fourier peaks, lone pairs, centroids
_DUMMY_WORDS = {"q", "du", "dum", "dummy", "lp", "x", "xx", "cg", "cnt", "cen", "cent", "centroid", "peak"}
_WATER_WORDS = {"wat": 8, "ow": 8, "h2o": 8, "oh2": 8, "hoh": 8, "oh": 8, "hw": 1}
_DUMMY = -1  # an element lookup that says "not an atom: leave the site out"


def parse_cif(text: str, name: str = "input") -> list[Crystal]:
    """Every structure in a CIF text, one per data block that has atom sites.

    Raises StructureError with a one-line reason when the text holds no usable structure.
    """
    if not text.strip():
        raise StructureError("empty file")
    try:  # check_level 0: duplicate tags are read (the first value counts), and it is 2 µs faster
        doc = gemmi.cif.read_string(text, 0)
    except (RuntimeError, ValueError) as gemmi_error:
        return _parse_with_pymatgen(text, name, _first_line(gemmi_error))
    shared: dict = {}  # metadata from blocks without atoms (COD's data_global) applies to the others
    atom_blocks = []
    for block in doc:
        if block.find_value("_atom_site_fract_x") is None and not block.find_values("_atom_site_fract_x"):
            shared.update({k: v for k, v in _metadata(block).items() if k not in shared})
        else:
            atom_blocks.append(block)
    if not atom_blocks:
        raise StructureError("no atom sites (_atom_site_fract_x) in any data block")
    crystals, reasons = [], []
    thirds = "333" in text or "666" in text  # a coordinate near 1/3 or 2/3 is written so (0.3333, 6.667e-1)
    for block in atom_blocks:
        block_id = name if len(atom_blocks) == 1 else f"{name}#{block.name}"
        try:
            crystal = _block_to_crystal(block, block_id, thirds)
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
    """gemmi read the block but cannot finish it (e.g. a space-group name it does not know)."""


def _block_to_crystal(block: gemmi.cif.Block, crystal_id: str, thirds: bool = True) -> Crystal:
    small = gemmi.make_small_structure_from_block(block)
    parameters = small.cell.parameters
    if parameters[:3] == (1.0, 1.0, 1.0) and not all(  # gemmi's stand-in when a length is missing
            math.isfinite(gemmi.cif.as_number(block.find_value(tag) or "?")) for tag in _CELL_TAGS):
        raise StructureError("missing cell lengths (_cell_length_a/b/c)")
    lattice, volume = _lattice_matrix(*parameters)
    sites = small.sites
    if not sites:
        raise StructureError("no atom sites")
    table = np.array([(*s.fract.tolist(), s.occ, s.element.atomic_number) for s in sites], np.float64)
    frac, occupancies, numbers = table[:, :3], table[:, 3], table[:, 4]
    # NaN occupancy (a value gemmi could not read), unknown element, no coordinates, a dummy atom,
    # water written as a label (H2O1 is read as H): the slow path
    if not (table[:, 3:].min() > 0 and math.isfinite(float(frac.sum()))) or _may_hold_dummies_or_water(
            block, numbers):
        frac, occupancies, numbers, keep = _repair_sites(block, sites, frac, occupancies, numbers)
        if not keep.any():
            raise StructureError("no atom sites with an element, coordinates and non-zero occupancy")
        frac, occupancies, numbers = frac[keep], occupancies[keep], numbers[keep]
    if thirds:
        frac = _round_thirds(frac)
    numbers = numbers.astype(np.int64)

    rot, tran = _symmetry_ops(small, block)
    asym = frac
    frac, site_index = _expand(frac, rot, tran)
    if len(frac) > MAX_SITES:
        raise StructureError(f"{len(frac):,} sites in the unit cell, above the limit of {MAX_SITES:,}")
    if volume / len(frac) < MIN_VOLUME_PER_SITE:
        raise StructureError(f"cell volume {volume:.3g} Å^3 is too small for {len(frac)} sites")
    if site_index is not None:
        numbers, occupancies, origin = numbers[site_index], occupancies[site_index], asym[site_index]
    else:
        origin = asym
    species = [{z: v} for z, v in zip(numbers.tolist(), occupancies.tolist())]
    merged_frac, species = merge_overlapping_sites(lattice, frac, species, origin=origin)
    if merged_frac is not frac or occupancies.max() > 1.0 + OCCUPANCY_SLACK:
        species = [scale_to_full(s) for s in species]
    return Crystal(crystal_id, lattice, merged_frac, species, _metadata(block))


def _may_hold_dummies_or_water(block, numbers) -> bool:
    if len(block.find_values("_atom_site_calc_flag")):
        return True
    return not len(block.find_values("_atom_site_type_symbol")) and bool((numbers == 1).any())


def _repair_sites(block, sites, frac, occupancies, numbers):
    """The slow path for sites gemmi could not finish: elements from labels, fractions, dummies."""
    occupancies = np.where(np.isnan(occupancies), 1.0, occupancies)
    numbers = numbers.copy()
    keep = occupancies > 0
    if not len(block.find_values("_atom_site_type_symbol")):  # elements from labels: H2O1 is water
        for k in np.nonzero(numbers == 1)[0].tolist():
            if sites[k].label[:3].upper() == "H2O":
                numbers[k] = 8
    for k in np.nonzero(numbers == 0)[0].tolist():
        z = _element_from_symbols(sites[k].type_symbol, sites[k].label)
        if z == _DUMMY:
            keep[k] = False
        elif z is not None:
            numbers[k] = z
    if not np.isfinite(frac).all():
        frac = frac.copy()
        raw = [list(block.find_values(f"_atom_site_fract_{axis}")) for axis in "xyz"]
        for k in np.nonzero(~np.isfinite(frac).all(axis=1))[0].tolist():
            for axis in range(3):
                if not math.isfinite(frac[k, axis]) and len(raw[axis]) == len(sites):
                    frac[k, axis] = _fraction(raw[axis][k])
        keep &= np.isfinite(frac).all(axis=1)  # no coordinates ("?"): a site nobody located
    flags = block.find_values("_atom_site_calc_flag")
    if len(flags) == len(sites):
        keep &= np.array([gemmi.cif.as_string(f).lower() != "dum" for f in flags])
    unknown = np.nonzero(keep & (numbers == 0))[0]
    if len(unknown):
        raise StructureError(f"unknown element for site '{sites[int(unknown[0])].label}'")
    return frac, occupancies, numbers, keep


def _element_from_symbols(type_symbol: str, label: str) -> int | None:
    """Atomic number from a type symbol, else the label; _DUMMY for a non-atom, None if unknown."""
    for text in (type_symbol, label):
        text = (text or "").strip()
        if text in ("", "?", "."):
            continue
        z = _element_from_text(text)
        if z is not None:
            return z
    return None


@lru_cache(maxsize=4096)
def _element_from_text(text: str) -> int | None:
    match = re.match(r"[A-Za-z]+(?:2O)?", text)
    if not match:
        return None
    word = match.group().lower()
    if word in _DUMMY_WORDS or (word.startswith("q") and text[1:2].isdigit()):
        return _DUMMY
    for water, z in _WATER_WORDS.items():
        if word.startswith(water) and (water != "oh" or word == "oh"):
            return z
    letters = match.group()
    for candidate in (letters[:2].title(), letters[:1].upper()):
        z = gemmi.Element(candidate).atomic_number
        if candidate.isalpha() and 0 < z < 119:
            return z
    return None


def _fraction(raw: str) -> float:
    """'1/3' or '-2/3' (written by some programs), else NaN."""
    match = re.fullmatch(r"\s*([+-]?\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*", gemmi.cif.as_string(raw))
    if not match or float(match.group(2)) == 0:
        return math.nan
    return float(match.group(1)) / float(match.group(2))


def _round_thirds(frac: np.ndarray) -> np.ndarray:
    """0.3333 -> 1/3 and 0.6667 -> 2/3, with pymatgen's tolerance, so symmetry images coincide."""
    if not (np.abs(np.abs(frac - 0.5) - 1 / 6) < THIRDS_TOLERANCE).any():  # nothing near 1/3 or 2/3
        return frac
    for third in (1 / 3, 2 / 3):
        frac = np.where(np.abs(frac / third - 1) < THIRDS_TOLERANCE, third, frac)
    return frac


def _symmetry_ops(small: gemmi.SmallStructure, block: gemmi.cif.Block):
    """Rotations (k, 3, 3) and translations (k, 3) in fractional coordinates; (None, None) for P1."""
    if small.symops:
        try:
            return _ops_from_triplets(tuple(small.symops))
        except (RuntimeError, ValueError) as error:
            if small.spacegroup is None:
                raise _NeedsPymatgen(f"symmetry operation not understood: {error}") from None
    if small.spacegroup is not None:
        return _ops_from_spacegroup(small.spacegroup.xhm())
    for tag in _SPACEGROUP_TAGS:  # named, but not a name gemmi knows: pymatgen knows more settings
        value = block.find_value(tag)
        if value is not None and gemmi.cif.as_string(value).strip() not in ("", "?", "."):
            if "number" in tag.lower():
                try:
                    group = gemmi.find_spacegroup_by_number(int(float(gemmi.cif.as_string(value))))
                except (RuntimeError, ValueError):
                    group = None
                if group is not None:
                    return _ops_from_spacegroup(group.xhm())
            raise _NeedsPymatgen(f"space group {gemmi.cif.as_string(value).strip()!r} not known to gemmi")
    return None, None  # no symmetry given: P1, as pymatgen assumes


@lru_cache(maxsize=1024)
def _ops_from_triplets(triplets: tuple[str, ...]):
    ops = list(gemmi.GroupOps([gemmi.Op(s) for s in triplets]))
    return _ops_arrays(ops)


@lru_cache(maxsize=1024)
def _ops_from_spacegroup(xhm: str):
    return _ops_arrays(list(gemmi.SpaceGroup(xhm).operations()))


def _ops_arrays(ops):
    rot = np.array([op.rot for op in ops], np.float64) / gemmi.Op.DEN
    tran = np.array([op.tran for op in ops], np.float64) / gemmi.Op.DEN
    if len(ops) == 1 and (rot[0] == np.eye(3)).all() and not tran.any():
        return None, None
    rot.setflags(write=False)
    tran.setflags(write=False)
    return rot, tran


def _expand(frac: np.ndarray, rot, tran, tol: float = SITE_TOLERANCE):
    """Symmetry images of each site, duplicates (within tol, fractional) removed as pymatgen does.

    Returns (P1 coordinates, index of the asymmetric-unit site of each; None for P1 input).
    gemmi's own expansion also merges images up to ~0.5 Å apart, which drops half of a split site.
    """
    if rot is None:  # P1
        return frac % 1.0, None
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


def _lattice_matrix(a, b, c, alpha, beta, gamma) -> tuple[np.ndarray, float]:
    """pymatgen's Lattice.from_parameters (vesta=False) matrix and the cell volume, in scalar maths."""
    values = (a, b, c, alpha, beta, gamma)
    if not all(math.isfinite(v) for v in values):
        raise StructureError(f"absurd cell parameters {values}")
    if not all(MIN_LENGTH <= x <= MAX_LENGTH for x in (a, b, c)):
        raise StructureError(f"absurd cell lengths a={a:g} b={b:g} c={c:g} Å")
    if not all(0 < x < 180 for x in (alpha, beta, gamma)):
        raise StructureError(f"absurd cell angles {alpha:g} {beta:g} {gamma:g}")
    ra, rb, rg = math.radians(alpha), math.radians(beta), math.radians(gamma)
    ca, cb, cg = math.cos(ra), math.cos(rb), math.cos(rg)
    sa, sb = math.sin(ra), math.sin(rb)
    gamma_star = math.acos(min(1.0, max(-1.0, (ca * cb - cg) / (sa * sb))))
    rows = [[a * sb, 0.0, a * cb],
            [-b * sa * math.cos(gamma_star), b * sa * math.sin(gamma_star), b * ca],
            [0.0, 0.0, float(c)]]
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = rows
    volume = abs(ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx))
    if not math.isfinite(volume) or volume < 1e-3 * a * b * c:
        raise StructureError(f"cell angles {alpha:g} {beta:g} {gamma:g} do not form a cell")
    return np.array(rows), volume


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

    pymatgen_reason = "no structures"
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
        crystal = Crystal.from_pymatgen(structure, id=name if len(structures) == 1 else f"{name}#{i}")
        species = [{z: v for z, v in s.items() if 0 < z < 119} for s in crystal.species]  # no dummies
        keep = [k for k, s in enumerate(species) if s]
        if not keep:
            raise StructureError(f"unreadable CIF: {gemmi_reason} (pymatgen: no atoms with an element)")
        frac, species = merge_overlapping_sites(crystal.lattice, crystal.frac_coords[keep], [species[k] for k in keep])
        crystal.frac_coords, crystal.species = frac, [scale_to_full(s) for s in species]
        crystals.append(crystal)
    return crystals


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0][:200] if lines else type(error).__name__
    return re.sub(r"^string:(\d+)(:\d+\(\d+\))?", r"line \1", line)  # gemmi's "string:13:4(534)"
