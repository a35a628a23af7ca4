"""Template descriptions state facts that pymatgen confirms; a dataset is described end to end."""
import re
import sys
import time

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from crystalclip.structures import Crystal, StructureError, parse_cif
from crystalclip.structures.symmetry import spacegroup_number
from crystalclip.text import describe as D

from .conftest import MP40, amcsd_cifs, mp40_table

pytestmark = pytest.mark.filterwarnings("ignore")  # pymatgen's and spglib's notices about CIFs and APIs


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
    return float(re.search(r"density is ([\d.]+) g/cm³", text).group(1))


def test_space_group_lattice_and_density_agree_with_pymatgen():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    crystals = _mp40(30)
    for crystal in crystals:
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


def test_declared_cell_is_described_as_given():
    """AMCSD CIFs declare their space group: number and cell come from the CIF, no spglib."""
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
                    image = tuple(int(round(x)) for x in info["image"])
                    b = info["site_index"]
                    edges |= {(a, b, image), (b, a, tuple(-x for x in image))}
        expected = np.bincount([e[0] for e in edges], minlength=len(structure))
        main_z = np.array([max(s, key=s.get) for s in crystal.species])
        i, j, shift, _, _ = D.bonds(crystal, main_z, np.ones(len(crystal)))
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


@pytest.mark.parametrize("structure, expected", [
    (Structure.from_spacegroup(225, Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
     ["Na is 6-coordinated by Cl (octahedral, Na–Cl 2.82 Å)", "Fm-3m", "three-dimensional"]),
    (Structure.from_spacegroup(221, Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]]),
     ["Ti is 6-coordinated by O (octahedral, Ti–O 1.95 Å)", "Sr is 12-coordinated by O (cuboctahedral",
      "O is 6-coordinated by 4 Sr and 2 Ti", "with a = b = c = 3.9"]),
    (Structure.from_spacegroup(227, Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]),
     ["Si is 4-coordinated by Si (tetrahedral"]),
    (Structure.from_spacegroup(221, Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5] * 3]),
     ["Cs is 8-coordinated by Cl (cubic"]),
    (Structure.from_spacegroup(194, Lattice.hexagonal(2.46, 6.7), ["C", "C"], [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]]),
     ["C is 3-coordinated by C (trigonal planar", "two-dimensional (layers)",
      "a = b = 2.46 Å, c = 6.70 Å, γ = 120°"]),
    (Structure.from_spacegroup(194, Lattice.hexagonal(3.16, 12.3), ["Mo", "S"],
                               [[1 / 3, 2 / 3, 0.25], [1 / 3, 2 / 3, 0.621]]),
     ["Mo is 6-coordinated by S (trigonal prismatic", "two-dimensional"]),
], ids=["NaCl", "SrTiO3", "Si", "CsCl", "graphite", "MoS2"])
def test_known_structures(structure, expected):
    text = D.describe(_crystal(structure))
    for phrase in expected:
        assert phrase in text, text


def test_molecular_crystal_with_hydrogen_is_zero_dimensional():
    """CH4 molecules 4 Å apart: C's scale comes from its H, not from the next molecule's C."""
    h = 1.09 / np.sqrt(3)
    corners = ((1, 1), (-1, -1), (1, -1), (-1, 1))
    frac = [[0, 0, 0]] + [[sx * h / 4.5, sy * h / 4.5, sx * sy * h / 4.5] for sx, sy in corners]
    text = D.describe(_crystal(Structure(Lattice.cubic(4.5), ["C", "H", "H", "H", "H"], frac)))
    assert "C is 4-coordinated by H (tetrahedral, C–H 1.09 Å)" in text, text
    assert "zero-dimensional" in text


def test_disordered_sites_name_their_species():
    described = 0
    for name, cif in _readable(amcsd_cifs()):
        crystal = parse_cif(cif, name)[0]
        mixed = [s for s in crystal.species if len(s) > 1]
        if not mixed or len({tuple(sorted(s)) for s in crystal.species}) > D.MAX_KINDS:
            continue
        text = D.describe(crystal)
        site = max(mixed[0], key=mixed[0].get)
        label = "/".join(D._elements()[0][z] for z in sorted(mixed[0], key=lambda z: -mixed[0][z]))
        assert f"ixed {label} site" in text, (name, text)
        assert D._elements()[0][site] in text
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


def test_dataset_end_to_end(tmp_path):
    from crystalclip.data.build import build_dataset
    from crystalclip.data.derived import read_texts

    subset = tmp_path / "mp40_20.csv"
    pd.read_csv(MP40 / "captions_1000.csv").head(20).to_csv(subset, index=False)
    build_dataset([subset], tmp_path / "data", workers=1)
    seen = []
    summary = D.dataset_descriptions(tmp_path / "data", progress=lambda done, total: seen.append((done, total)))
    assert summary["structures"] == summary["described"] == 20 and summary["failed"] == []
    assert summary["path"] == str(tmp_path / "data" / "texts" / "descriptions.parquet")
    assert seen[-1] == (20, 20)
    texts = read_texts(tmp_path / "data", "descriptions")
    pairs = pd.read_parquet(tmp_path / "data" / "pairs.parquet", columns=["id", "formula"])
    for id_, formula in zip(pairs["id"], pairs["formula"]):
        assert texts[id_][0].startswith(f"{formula} crystallizes in the ")
    with pytest.raises(ValueError, match="unknown describer"):
        D.dataset_descriptions(tmp_path / "data", describer="gpt")


def test_a_bad_structure_does_not_stop_the_others():
    table = mp40_table().head(3)
    rows = [(table.material_id[0], table.cif[0]), ("broken", "data_x\n_cell_length_a 5\n"),
            (table.material_id[1], table.cif[1]),
            ("degenerate", table.cif[2].replace("_cell_length_a", "_cell_length_a 0 #"))]
    serial = list(D.describe_rows(rows, workers=1))
    assert [r[0] for r in serial] == [r[0] for r in rows]
    assert serial[0][1] and serial[2][1] and serial[0][2] is None
    assert serial[1][1] is None and "atom sites" in serial[1][2]
    assert serial[3][1] is None and serial[3][2]
    assert list(D.describe_rows(rows, workers=2)) == serial  # the process pool gives the same


def test_several_block_cif_picks_the_row_id():
    """data/build.py names a structure from a several-block CIF '<entry id>#<block name>'."""
    first, second = mp40_table().cif[0], mp40_table().cif[1]
    rename = lambda cif, name: re.sub(r"^data_\S+", f"data_{name}", cif, flags=re.M)  # noqa: E731
    both = rename(first, "one") + "\n" + rename(second, "two")
    _, text, _ = D._describe_row(("entry#two", both, "template"))
    assert text == D.describe(parse_cif(second)[0])


def test_robocrys_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "robocrys", None)
    crystal = _mp40(1)[0]
    with pytest.raises(ImportError, match="pip install robocrys"):
        D.describe_robocrys(crystal)
