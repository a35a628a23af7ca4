"""Template descriptions state facts that pymatgen and spglib confirm, in several phrasings and a
formula-free form the masking leaves alone; CIF bond loops are read back exactly."""
import re
import sys
import time
from functools import lru_cache

import numpy as np
import pyarrow.parquet as pq
import pytest
from pymatgen.core import Lattice, Structure

from crystalclip.structures import Crystal, StructureError, parse_cif
from crystalclip.structures.bonds import Bonds, read_cif_bonds
from crystalclip.structures.symmetry import spacegroup_number
from crystalclip.text import describe as D
from crystalclip.text.chemistry import element_table
from crystalclip.text.masking import ELEMENT_NAMES, mask_formulas

from .conftest import SHARED, amcsd_cifs, mp40_table

pytestmark = pytest.mark.filterwarnings("ignore")  # pymatgen's and spglib's notices about CIFs and APIs

MP_SHARD = SHARED / "mp-cifs" / "mp_cifs_00.parquet"
N_MP = 300


def _crystal(structure: Structure, name: str = "x") -> Crystal:
    return Crystal.from_pymatgen(structure, id=name)


def _mp40(n: int, max_sites: int = 40) -> list[Crystal]:
    crystals = []
    for row in mp40_table().itertuples():
        crystal = parse_cif(row.cif, row.material_id)[0]
        if len(crystal) <= max_sites:
            crystals.append(crystal)
        if len(crystals) == n:
            return crystals
    return crystals


@lru_cache
def _mp_rows(n: int = N_MP) -> list[tuple[str, str]]:
    """The first n (material id, CIF) rows of the first mp-cifs shard (one batch read)."""
    batch = next(pq.ParquetFile(MP_SHARD).iter_batches(batch_size=n, columns=["material_id", "cif"]))
    return list(zip(batch.column("material_id").to_pylist(), batch.column("cif").to_pylist()))


@lru_cache
def _mp_facts(n: int = N_MP):
    """(id, crystal, facts) for the first n shard structures, bonds from their CIFs."""
    out = []
    for id_, cif in _mp_rows(n):
        crystal = parse_cif(cif, id_)[0]
        out.append((id_, crystal, D.analyze(crystal, bonds=read_cif_bonds(cif, crystal))))
    return out


def _readable(rows):
    for name, cif in rows:
        try:
            parse_cif(cif, name)
        except StructureError:
            continue
        yield name, cif


def _lattice_in(text: str) -> dict[str, float]:
    """{'a': 3.91, 'b': 3.91, ...} from 'a = b = c = 3.91 Å, γ = 120°'."""
    found = {}
    for names, value in re.findall(r"((?:[abcαβγ] = )+)(-?[\d.]+) ?(?:Å|°)", text):
        for name in names.split(" = ")[:-1]:
            found[name] = float(value)
    return found


def _density_in(text: str) -> float:
    return float(re.search(r"density (?:is|of) ([\d.]+) g/cm³", text).group(1))


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=\.) (?=[A-Z])", text)


# --------------------------------------------------------------------------------------------------
# symmetry, lattice, density


def test_space_group_lattice_and_density_agree_with_pymatgen():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for crystal in _mp40(30):
        text = D.describe(crystal)
        structure = crystal.to_pymatgen()
        analyzer = SpacegroupAnalyzer(structure, symprec=0.1)
        number = int(re.search(r"\(No\. (\d+)\)", text).group(1))
        assert number == analyzer.get_space_group_number(), (crystal.id, text)
        assert f" {analyzer.get_space_group_symbol()} space group" in text
        assert abs(_density_in(text) - structure.density) <= 0.01 * structure.density
        if analyzer.get_crystal_system() in ("cubic", "tetragonal", "hexagonal", "trigonal", "orthorhombic"):
            said = _lattice_in(text)
            conventional = analyzer.get_conventional_standard_structure().lattice
            assert np.allclose(sorted(said[k] for k in "abc"), sorted(conventional.abc), atol=0.011), (crystal.id, text)
            # right angles are left out; hexagonal cells say gamma
            assert set(said) - set("abc") <= {"γ"}


def test_mp_descriptions_name_the_system_and_space_group_spglib_finds():
    """Every phrasing and both forms name spglib's crystal system, number and symbol (the free
    form may write a symbol the masking would read as chemistry with a space: 'P m-3m')."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    for id_, crystal, facts in _mp_facts():
        analyzer = SpacegroupAnalyzer(crystal.to_pymatgen(), symprec=0.1)
        number, symbol = analyzer.get_space_group_number(), analyzer.get_space_group_symbol()
        system = analyzer.get_crystal_system()
        for seed in (None, 0, 1, 2):
            full, free = D.render(facts, seed), D.render(facts, seed, formula_free=True)
            for text in (full, free):
                assert f"(No. {number})" in text and system in text, (id_, seed, text)
            assert symbol in full, (id_, seed, full)
            assert symbol in free or f"{symbol[0]} {symbol[1:]}" in free, (id_, seed, free)


def test_declared_cell_is_described_as_given():
    """AMCSD CIFs declare their space group: number and cell come from the CIF."""
    for name, cif in _readable(amcsd_cifs()[:30]):
        crystal = parse_cif(cif, name)[0]
        text = D.describe(crystal)
        assert f"(No. {spacegroup_number(crystal)})" in text  # the dataset's spacegroup_number column
        said = _lattice_in(text)
        lengths, angles = D.lattice_parameters(crystal.lattice)
        assert np.allclose([said[k] for k in "abc"], lengths, atol=0.006), (name, text)
        for k, angle in zip("αβγ", angles):
            assert abs(said.get(k, 90.0) - angle) <= 0.06, (name, k, text)
        density = crystal.to_pymatgen().density
        assert abs(_density_in(text) - density) <= 0.01 * density


# --------------------------------------------------------------------------------------------------
# phrasing: seeds and the formula-free form


def test_formula_free_form_has_nothing_to_mask_and_keeps_every_fact():
    for id_, crystal, facts in _mp_facts():
        for seed in (None, 0, 1):
            free, full = D.render(facts, seed, formula_free=True), D.render(facts, seed)
            assert mask_formulas(free) == free, (id_, seed, free)
            assert facts.formula not in free
            words = set(re.findall(r"[a-z]+", free.lower()))
            assert not words & set(ELEMENT_NAMES), (id_, words & set(ELEMENT_NAMES))
            # nothing was dropped: the free text is the full one sentence for sentence
            assert len(_sentences(free)) == len(_sentences(full)), (id_, seed, free, full)


def test_a_seed_is_deterministic_and_another_seed_phrases_differently():
    differ = 0
    facts_list = _mp_facts()
    for id_, crystal, facts in facts_list:
        first = D.describe(crystal, seed=0, bonds=None)
        assert D.describe(crystal, seed=0, bonds=None) == first
        assert D.render(facts, 0) == D.render(facts, 0) and D.render(facts, 5) == D.render(facts, 5)
        a, b = D.render(facts, 0), D.render(facts, 1)
        differ += sorted(_sentences(a)) != sorted(_sentences(b))  # other phrasings, not only another order
    assert differ >= 0.95 * len(facts_list)
    # the canonical text puts the symmetry first; a seeded one shuffles
    starts = {D.render(f, seed).split(" ")[1] for _, _, f in facts_list[:40] for seed in (0, 1, 2)}
    assert len(starts) > 3


def test_both_forms_make_the_same_choices():
    crystal = _crystal(Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                                 [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]))
    for seed in (None, 0, 3):
        full, free = D.describe_both(crystal, seed=seed)
        assert full == D.describe(crystal, seed=seed)
        assert free == D.describe(crystal, seed=seed, formula_free=True)
        assert len(_sentences(full)) == len(_sentences(free))
    full, free = D.describe_both(crystal, seed=0)
    assert "TiO6 octahedra" in full and "transition-metal octahedra" in free
    assert "Ti–O 1.95 Å" in full and "Ti" not in free


# --------------------------------------------------------------------------------------------------
# structure types, composition, polyhedra, dimensionality


def _built(number, a, species, coords, c=None, hexagonal=False):
    lattice = Lattice.hexagonal(a, c) if hexagonal else Lattice.tetragonal(a, c) if c else Lattice.cubic(a)
    return _crystal(Structure.from_spacegroup(number, lattice, species, coords))


KNOWN_TYPES = [
    (_built(225, 5.64, ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]]), "rock salt"),
    (_built(221, 3.905, ["Sr", "Ti", "O"], [[0, 0, 0], [.5, .5, .5], [.5, .5, 0]]), "cubic perovskite"),
    (_built(227, 8.08, ["Mg", "Al", "O"], [[0, 0, 0], [5 / 8, 5 / 8, 5 / 8], [.3874, .3874, .3874]]), "spinel"),
    (_built(221, 4.12, ["Cs", "Cl"], [[0, 0, 0], [.5, .5, .5]]), "CsCl"),
    (_built(216, 5.65, ["Ga", "As"], [[0, 0, 0], [.25, .25, .25]]), "zincblende"),
    (_built(186, 3.25, ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, .382]], c=5.21, hexagonal=True), "wurtzite"),
    (_built(225, 5.46, ["Ca", "F"], [[0, 0, 0], [.25, .25, .25]]), "fluorite"),
    (_built(225, 4.61, ["O", "Li"], [[0, 0, 0], [.25, .25, .25]]), "antifluorite"),
    (_built(136, 4.594, ["Ti", "O"], [[0, 0, 0], [.3049, .3049, 0]], c=2.959), "rutile"),
    (_built(194, 3.61, ["Ni", "As"], [[0, 0, 0], [1 / 3, 2 / 3, .25]], c=5.03, hexagonal=True), "NiAs"),
    (_built(225, 5.95, ["Cu", "Mn", "Al"], [[.25, .25, .25], [0, 0, 0], [.5, .5, .5]]), "full Heusler"),
    (_built(216, 6.24, ["As", "Mg", "Ag"], [[0, 0, 0], [.5, .5, .5], [.25, .25, .25]]), "half-Heusler"),
]


@pytest.mark.parametrize("crystal, name", KNOWN_TYPES, ids=[name for _, name in KNOWN_TYPES])
def test_known_prototypes(crystal, name):
    facts = D.analyze(crystal)
    assert facts.prototype is not None and facts.prototype[1].startswith(name), facts.prototype
    assert f"adopts the {name}" in D.render(facts)
    free = D.render(facts, formula_free=True)
    assert mask_formulas(free) == free and ("structure type" in free or "prototype" in free)


def test_prototypes_found_in_real_mp_structures():
    """The shard's first structures: rock salt BaTe (mp-1000), thiospinels, Heusler and CsCl
    types; a share of them with a known type, and nothing named that StructureMatcher refused."""
    found = {id_: facts.prototype for id_, _, facts in _mp_facts()}
    assert found["mp-1000"][1].startswith("rock salt")
    names = [p[1] for p in found.values() if p]
    for expected in ("spinel", "CsCl", "full Heusler", "zincblende", "Cu3Au"):
        assert any(n.startswith(expected) for n in names), expected
    assert 0.3 <= len(names) / len(found) <= 0.8


def test_prototype_table_names_are_mask_safe():
    from crystalclip.text.prototypes import prototype_table

    table = prototype_table()
    protos = {p for group in table.values() for p in group}
    assert len(protos) >= 280
    for proto in protos:
        for name in (proto.free_name, proto.anti[1] if proto.anti else None):
            assert name is None or mask_formulas(name) == name, name
        assert mask_formulas(proto.label) == proto.label


@pytest.mark.parametrize("structure, phrase", [
    (Structure.from_spacegroup(225, Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]]),
     "NaCl is a binary chloride (a halide) of an alkali metal."),
    (Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [.5] * 3, [.5, .5, 0]]),
     "SrTiO3 is a ternary oxide of an alkaline-earth metal and a transition metal."),
    (Structure.from_spacegroup(225, Lattice.cubic(5.95), ["Cu", "Mn", "Al"], [[.25] * 3, [0, 0, 0], [.5] * 3]),
     "MnAlCu2 is a ternary intermetallic compound of two transition metals and a post-transition metal."),
    (Structure.from_spacegroup(225, Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]]), "Cu is an elemental transition metal."),
    (Structure.from_spacegroup(194, Lattice.hexagonal(3.16, 12.3), ["Mo", "S"], [[1 / 3, 2 / 3, .25], [1 / 3, 2 / 3, .621]]),
     "MoS2 is a binary sulfide (a chalcogenide) of a transition metal."),
], ids=["NaCl", "SrTiO3", "Cu2MnAl", "Cu", "MoS2"])
def test_composition_class(structure, phrase):
    assert phrase in D.describe(_crystal(structure))


def test_oxoanion_and_hydroxide_classes_in_real_structures():
    words = {facts.composition.word for _, _, facts in _mp_facts()}
    assert {"oxide", "intermetallic compound", "phosphate", "hydroxide", "nitride", "carbide"} <= words, words


def test_perovskite_polyhedra_share_corners():
    crystal = _crystal(Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                                 [[0, 0, 0], [.5] * 3, [.5, .5, 0]]))
    text = D.describe(crystal)
    assert "TiO6 octahedra share faces with eight SrO12 cuboctahedra and corners with six other TiO6 octahedra" in text
    spinel = KNOWN_TYPES[2][0]
    text = D.describe(spinel)
    assert "AlO6 octahedra" in text and "MgO4 tetrahedra share corners with twelve AlO6 octahedra" in text, text


@pytest.mark.parametrize("structure, expected", [
    (Structure.from_spacegroup(225, Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
     ["Na is 6-coordinated by Cl (octahedral, Na–Cl 2.82 Å)", "Fm-3m", "three-dimensional",
      "NaCl adopts the rock salt structure type (NaCl, B1; AFLOW prototype AB_cF8_225_a_b)",
      "The Bravais lattice is face-centred cubic (Pearson symbol cF8), with 4 formula units"]),
    (Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]),
     ["Ti is 6-coordinated by O (octahedral, Ti–O 1.95 Å)", "Sr is 12-coordinated by O (cuboctahedral",
      "O is 6-coordinated by 4 Sr and 2 Ti", "with a = b = c = 3.9"]),
    (Structure.from_spacegroup(227, Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]),
     ["Si is 4-coordinated by Si (tetrahedral", "Si adopts the diamond structure type"]),
    (Structure.from_spacegroup(221, Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3]),
     ["Cs is 8-coordinated by Cl (cubic"]),
    (Structure.from_spacegroup(194, Lattice.hexagonal(2.46, 6.7), ["C", "C"], [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]]),
     ["C is 3-coordinated by C (trigonal planar", "two-dimensional (layers), the layers parallel to the (001) planes",
      "a = b = 2.46 Å, c = 6.70 Å, γ = 120°"]),
    (Structure.from_spacegroup(194, Lattice.hexagonal(3.16, 12.3), ["Mo", "S"],
                               [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]]),
     ["Mo is 6-coordinated by S (trigonal prismatic", "two-dimensional (layers), the layers parallel to the (001)",
      "molybdenite"]),
], ids=["NaCl", "SrTiO3", "Si", "CsCl", "graphite", "MoS2"])
def test_known_structures(structure, expected):
    text = D.describe(_crystal(structure))
    for phrase in expected:
        assert phrase in text, text


def test_chains_have_a_direction():
    """Isolated chains along c (spaced 6 Å apart): one-dimensional, running along [001]."""
    chain = Structure(Lattice.tetragonal(6.0, 2.5), ["Se"], [[0, 0, 0]])
    text = D.describe(_crystal(chain))
    assert "one-dimensional (chains), the chains running along [001]" in text, text


def test_molecular_crystal_with_hydrogen_is_zero_dimensional():
    """CH4 molecules 4 Å apart: C's scale comes from its H, not from the next molecule's C."""
    h = 1.09 / np.sqrt(3)
    corners = ((1, 1), (-1, -1), (1, -1), (-1, 1))
    frac = [[0, 0, 0]] + [[sx * h / 4.5, sy * h / 4.5, sx * sy * h / 4.5] for sx, sy in corners]
    text = D.describe(_crystal(Structure(Lattice.cubic(4.5), ["C", "H", "H", "H", "H"], frac)))
    assert "C is 4-coordinated by H (tetrahedral, C–H 1.09 Å)" in text, text
    assert "zero-dimensional" in text and "organic" in text


# --------------------------------------------------------------------------------------------------
# bonds: the neighbour rule and the CIF's loop


def test_bonds_are_pymatgens_minimum_distance_and_covalent_rules():
    """Without H, a bond is MinimumDistanceNN(tol=0.1) either way round, or two non-metals within
    covalent radii + 0.4 Å; the dimensionality is pymatgen's Larsen algorithm on the same bonds."""
    from pymatgen.analysis.dimensionality import get_dimensionality_larsen
    from pymatgen.analysis.graphs import StructureGraph
    from pymatgen.analysis.local_env import CutOffDictNN, MinimumDistanceNN
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

    nonmetals = ["B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "As", "Se", "Br", "Te", "I"]
    radius = CovalentRadius.radius
    covalent = CutOffDictNN({(a, b): radius[a] + radius[b] + 0.4 for a in nonmetals for b in nonmetals})
    shell = MinimumDistanceNN(tol=0.1, cutoff=8.0)
    checked = dims_seen = 0
    for crystal in _mp40(60, max_sites=24):
        if any(1 in site for site in crystal.species):
            continue
        structure = crystal.to_pymatgen()
        edges = set()
        for rule in (shell, covalent):
            for a in range(len(structure)):
                for info in rule.get_nn_info(structure, a):
                    image = tuple(round(x) for x in info["image"])
                    b = info["site_index"]
                    edges |= {(a, b, image), (b, a, tuple(-x for x in image))}
        expected = np.bincount([e[0] for e in edges], minlength=len(structure))
        main_z = np.array([max(s, key=s.get) for s in crystal.species])
        i, j, shift, _, _ = D.neighbour_bonds(crystal, main_z, np.ones(len(crystal)))
        assert np.bincount(i, minlength=len(crystal)).tolist() == expected.tolist(), crystal.id

        graph = StructureGraph.from_empty_graph(structure)
        for a, b, image in edges:
            if (a, b) < (b, a) or (a == b and image > tuple(-x for x in image)):
                graph.add_edge(a, b, to_jimage=image, warn_duplicates=False)
        dims = D.dimensionalities(len(crystal), i, j, shift)
        assert max(dims) == get_dimensionality_larsen(graph), crystal.id
        dims_seen |= 1 << max(dims)
        checked += 1
    assert checked >= 40
    assert dims_seen & 0b0111, "the sample should hold some layered or molecular structure"


def _loop_rows(cif: str) -> list[tuple[str, str, float, str]]:
    body = cif[cif.index("_geom_bond_site_symmetry_2"):].splitlines()[1:]
    return [(a, b, float(d), code) for a, b, d, code in (line.split() for line in body if line.strip())]


def test_cif_bonds_are_the_loop_both_ways():
    for id_, cif in _mp_rows(60):
        crystal = parse_cif(cif, id_)[0]
        bonds = read_cif_bonds(cif, crystal)
        rows = _loop_rows(cif)
        if not rows:
            assert bonds is None
            continue
        assert isinstance(bonds, Bonds) and bonds.source == "cif"
        assert len(bonds) == 2 * len(rows), id_  # each bond listed once, given both ways
        assert np.all(np.diff(bonds.i) >= 0)
        assert np.allclose(sorted(bonds.d), sorted([r[2] for r in rows] * 2), atol=0.02)
        assert np.allclose(np.linalg.norm(bonds.vectors(crystal), axis=1), bonds.d)
        # the coordination the describer reports is the loop's
        labels = [line.split()[1] for line in cif.splitlines() if re.match(r"\s+[A-Z][a-z]?\s+\S+\s+1\s", line)]
        per_label = {label: 0 for label in labels}
        for a, b, _, _ in rows:
            per_label[a] += 1
            per_label[b] += 1
        assert np.bincount(bonds.i, minlength=len(crystal)).tolist() == [per_label[x] for x in labels]


NACL_P1 = """data_NaCl
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   3.98
_cell_length_b   3.98
_cell_length_c   3.98
_cell_angle_alpha   60
_cell_angle_beta   60
_cell_angle_gamma   60
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Na  Na0  0.0  0.0  0.0  1
  Cl  Cl1  {x}  0.5  0.5  1
loop_
_geom_bond_atom_site_label_1
_geom_bond_atom_site_label_2
_geom_bond_distance
_geom_bond_site_symmetry_2
{bonds}
"""
NACL_CODES = ["455", "545", "554", "445", "454", "544"]  # Cl at (0.5,0.5,0.5) + these translations - 5


def _nacl(x: float, codes: list[str], symmetry: str = "1") -> str:
    bonds = "\n".join(f"Na0 Cl1 2.814 {symmetry}_{code}" for code in codes)
    return NACL_P1.format(x=x, bonds=bonds)


def test_cif_bonds_follow_positions_written_outside_the_cell():
    inside = _nacl(0.5, NACL_CODES)
    # the same Cl written one cell further along a: every translation one less along a
    outside = _nacl(1.5, [f"{int(c[0]) - 1}{c[1:]}" for c in NACL_CODES])
    a, b = (read_cif_bonds(t, parse_cif(t)[0]) for t in (inside, outside))
    assert a is not None and b is not None
    for field in ("i", "j", "shift", "d"):
        assert np.array_equal(getattr(a, field), getattr(b, field)) if field != "d" else np.allclose(a.d, b.d)
    assert np.bincount(a.i).tolist() == [6, 6]
    text = D.describe(parse_cif(inside)[0], bonds=a)
    assert "Na is 6-coordinated by Cl (octahedral, Na–Cl 2.81 Å)" in text


def test_cif_bonds_that_cannot_be_checked_are_not_used():
    good = _nacl(0.5, NACL_CODES)
    crystal = parse_cif(good)[0]
    assert read_cif_bonds(good.split("loop_\n_geom_bond")[0], crystal) is None  # no loop
    assert read_cif_bonds(_nacl(0.5, NACL_CODES, symmetry="2"), crystal) is None  # not a P1 listing
    assert read_cif_bonds(good.replace("2.814", "3.500"), crystal) is None  # distances disagree
    other = parse_cif(_mp_rows(1)[0][1])[0]
    assert read_cif_bonds(good, other) is None  # another structure's sites


# --------------------------------------------------------------------------------------------------
# odd inputs and speed


def test_disordered_sites_name_their_species():
    described = 0
    for name, cif in _readable(amcsd_cifs()):
        crystal = parse_cif(cif, name)[0]
        mixed = [s for s in crystal.species if len(s) > 1]
        if not mixed or len({tuple(sorted(s)) for s in crystal.species}) > D.MAX_KINDS:
            continue
        text = D.describe(crystal)
        free = D.describe(crystal, formula_free=True, seed=0)
        assert mask_formulas(free) == free, (name, free)
        site = max(mixed[0], key=mixed[0].get)
        label = "/".join(element_table()[0][z] for z in sorted(mixed[0], key=lambda z: -mixed[0][z]))
        assert f"ixed {label} site" in text, (name, text)
        assert element_table()[0][site] in text
        described += 1
        if described == 10:
            break
    assert described >= 5
    # a half-occupied site: occupancy-weighted coordination, and no crash
    half = Structure(Lattice.cubic(4.2), [{"Mg": 0.5, "Fe": 0.5}, {"O": 1.0}], [[0, 0, 0], [0.5, 0.5, 0.5]])
    text = D.describe(_crystal(half))
    assert "The mixed Fe/Mg site is 8-coordinated by O" in text or "The mixed Mg/Fe site is 8-coordinated by O" in text


def test_odd_cells_never_raise():
    lone = Structure(Lattice.cubic(12.0), ["Ar"], [[0, 0, 0]])
    assert "isolated (no neighbour within 8 Å)" in D.describe(_crystal(lone))
    partial = Structure(Lattice.cubic(3.0), [{"Cu": 0.3}], [[0, 0, 0]])
    assert "Partially occupied Cu sites" in D.describe(_crystal(partial))
    skewed = Structure(Lattice.from_parameters(3, 4, 20, 60, 100, 110), ["Na", "Cl", "K"],
                       [[0, 0, 0], [0.5, 0.2, 0.1], [0.1, 0.6, 0.7]])
    assert D.describe(_crystal(skewed)).startswith("KNaCl")
    for structure in (lone, partial, skewed):
        for seed in (0, 1):
            free = D.describe(_crystal(structure), seed=seed, formula_free=True)
            assert free and mask_formulas(free) == free


def test_large_cell_is_fast():
    base = Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                                     [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]])
    crystal = _crystal(base * (6, 6, 6))  # 1,080 sites, P1 as given
    D.describe(crystal)
    start = time.perf_counter()
    text = D.describe(crystal)
    assert time.perf_counter() - start < 0.5
    assert "1080-site cell (symmetry not analysed)" in text
    assert "Ti is 6-coordinated by O (octahedral" in text


def test_stages_are_timed():
    timings = {}
    for _, crystal, _ in _mp_facts()[:20]:
        D.analyze(crystal, timings=timings)
    assert set(timings) == set(D.STAGES) and all(v >= 0 for v in timings.values())


def test_robocrys_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "robocrys", None)
    crystal = _mp40(1)[0]
    with pytest.raises(ImportError, match="pip install robocrys"):
        D.describe_robocrys(crystal)
