"""Reading structures: gemmi and pymatgen agree; bad input gives one-line reasons, never a crash."""
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.io.cif import CifParser

import crystalclip
from crystalclip.structures import Crystal, ReadFailure, StructureError, iter_crystals, parse_cif
from crystalclip.structures.crystal import merge_overlapping_sites

from .conftest import EDGE_CASES, amcsd_cifs, mp40_table


def _pymatgen(text: str) -> Crystal:
    """pymatgen's reading, with the one overlap rule applied (pymatgen keeps an atom that symmetry
    images 0.0006 Å apart as two full atoms; the reader and the graph builder merge them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystal = Crystal.from_pymatgen(CifParser.from_str(text).parse_structures(primitive=False)[0])
    crystal.frac_coords, crystal.species = merge_overlapping_sites(crystal.lattice, crystal.frac_coords,
                                                                   crystal.species)
    return crystal


def _site_differences(a: Crystal, b: Crystal) -> str | None:
    """None when both have the same lattice and, site by site (matched by position), the same species."""
    if len(a) != len(b):
        return f"{len(a)} sites vs {len(b)}"
    if not np.allclose(a.lattice, b.lattice, atol=1e-4):
        return "lattices differ"
    delta = a.frac_coords[:, None] - b.frac_coords[None]
    delta -= np.round(delta)
    dist = np.linalg.norm(delta @ a.lattice, axis=-1)
    if dist.min(1).max() > 1e-3:
        return f"a site moved by {dist.min(1).max():.3g} Å"
    for i, j in enumerate(dist.argmin(1)):
        sa, sb = a.species[i], b.species[j]
        if set(sa) != set(sb) or any(abs(sa[z] - sb[z]) > 1e-6 for z in sa):
            return f"site {i}: {sa} vs {sb}"
    return None


def test_gemmi_path_equals_pymatgen_on_mp40():
    cifs = mp40_table()["cif"].tolist()[:300]
    for text in cifs:
        ours, theirs = parse_cif(text)[0], _pymatgen(text)
        assert ours.is_ordered
        assert _site_differences(ours, theirs) is None


def test_gemmi_path_equals_pymatgen_on_amcsd_ordered_and_disordered():
    compared = {True: 0, False: 0}
    for entry_id, text in amcsd_cifs(step=40):
        try:
            theirs = _pymatgen(text)
        except Exception:
            continue  # pymatgen cannot read it; ours may or may not
        ours = parse_cif(text, entry_id)[0]
        compared[theirs.is_ordered] += 1
        assert _site_differences(ours, theirs) is None, entry_id  # occupancies included
    assert compared[True] > 50 and compared[False] > 50, compared


def test_partially_occupied_sites_are_kept_with_occupancies():
    text = """data_spinel_like
_cell_length_a 5.0
_cell_length_b 5.0
_cell_length_c 5.0
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Si1 Si 0 0 0 0.75
Al1 Al 0 0 0 0.25
O1 O 0.5 0.5 0.5 0.9
"""
    crystal = parse_cif(text)[0]
    assert len(crystal) == 2
    assert crystal.species[0] == {14: 0.75, 13: 0.25}
    assert crystal.species[1] == {8: 0.9}
    assert not crystal.is_ordered


def test_metadata_from_a_cod_cif():
    crystal = parse_cif((EDGE_CASES / "codcif_9007991.cif").read_text(), "9007991")[0]
    meta = crystal.metadata
    assert meta["title"] == "A new potassium niobate, KNb~5~O~13~"
    assert meta["journal"] == "Acta Crystallographica Section E"
    assert meta["year"] == 2005 and meta["spacegroup_number"] == 57
    structure = crystal.to_pymatgen()
    assert structure.properties["id"] == "9007991"
    assert structure.composition.reduced_formula == "KNb5O13"


def test_multi_block_cif_gives_one_structure_per_block():
    one = mp40_table()["cif"].iloc[0]
    two = mp40_table()["cif"].iloc[1]
    text = "data_global\n_publ_section_title 'Two phases'\n_journal_year 2001\n" + one + "\n" + two
    crystals = parse_cif(text, "pair")
    assert len(crystals) == 2
    assert crystals[0].id != crystals[1].id and crystals[0].id.startswith("pair#")
    assert all(c.metadata["title"] == "Two phases" for c in crystals)  # inherited from the global block


def test_read_structures_text_file_folder_and_csv(tmp_path):
    table = mp40_table().head(5)
    (tmp_path / "sub").mkdir()
    for i, text in enumerate(table["cif"]):
        (tmp_path / ("sub" if i % 2 else ".") / f"s{i}.cif").write_text(text)
    table[["material_id", "cif"]].to_csv(tmp_path / "table.csv", index=False)

    assert len(crystalclip.read_structures(table["cif"].iloc[0])) == 1
    assert len(crystalclip.read_structures(tmp_path / "s0.cif")) == 1
    folder = crystalclip.read_structures(tmp_path)
    # a folder's structure files include its tables with a cif column (here the same five, by material id)
    assert sorted(s.properties["id"] for s in folder) == sorted(["s0", "s2", "s4", "sub/s1", "sub/s3"]
                                                                + table["material_id"].tolist())
    from_csv = crystalclip.read_structures(tmp_path / "table.csv")
    assert [s.properties["id"] for s in from_csv] == table["material_id"].tolist()


BAD_INPUTS = {
    "empty.cif": b"",
    "truncated.cif": None,  # filled from a real CIF below
    "no_atoms.cif": b"data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n",
    "latin1.cif": "data_x\n_publ_section_title 'Cr\xe9pe'\n".encode("latin-1"),
    "absurd_cell.cif": None,
}


def bad_files(directory, good_cif: str) -> dict[str, str]:
    """Write the issue's bad inputs into `directory`; returns name -> expected reason fragment."""
    files = dict(BAD_INPUTS)
    files["truncated.cif"] = good_cif[: good_cif.index("_atom_site_fract_x") + 5].encode()
    files["absurd_cell.cif"] = good_cif.replace("_cell_length_a   ", "_cell_length_a   1e9 #", 1).encode()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return {"empty.cif": "empty file", "truncated.cif": "", "no_atoms.cif": "no atom sites",
            "latin1.cif": "not UTF-8", "absurd_cell.cif": "absurd cell"}


def test_bad_files_each_give_a_one_line_reason(tmp_path):
    good = mp40_table()["cif"].iloc[0]
    expected = bad_files(tmp_path, good)
    (tmp_path / "good.cif").write_text(good)
    items = list(iter_crystals(tmp_path))
    failures = {f.where.split("/")[-1]: f.reason for f in items if isinstance(f, ReadFailure)}
    assert set(failures) == set(expected)
    for name, fragment in expected.items():
        assert fragment in failures[name] and "\n" not in failures[name]
    assert [c.id for c in items if isinstance(c, Crystal)] == ["good"]
    with pytest.raises(StructureError):
        crystalclip.read_structures(tmp_path, errors="raise")


def test_every_cod_tools_edge_case_gives_structures_or_a_reason():
    results = list(iter_crystals(EDGE_CASES))
    files = {p.name for p in EDGE_CASES.glob("*.cif")}
    seen = {r.where.split("/")[-1] if isinstance(r, ReadFailure) else r.id.split("#")[0] + ".cif" for r in results}
    assert seen == files
    for r in results:
        if isinstance(r, ReadFailure):
            assert r.reason and "\n" not in r.reason and len(r.reason) < 300
        else:
            assert len(r) > 0 and np.isfinite(r.frac_coords).all()
    assert sum(isinstance(r, Crystal) for r in results) >= 20  # the real COD entries among them


# --------------------------------------------------------------------------------------------------
# real-world CIFs: what gemmi or pymatgen can read gives a structure (issue 10)

CIF_EDGE = Path(__file__).parent / "data" / "cif_edge"


def _cif(atoms: str, columns=("label", "fract_x", "fract_y", "fract_z"), a: float = 10.0,
         symmetry: str = "_symmetry_space_group_name_H-M 'P 1'", extra: str = "") -> str:
    """A small cubic CIF with the given atom_site loop rows."""
    loop = "\n".join(f"_atom_site_{c}" for c in columns)
    return (f"data_t\n_cell_length_a {a}\n_cell_length_b {a}\n_cell_length_c {a}\n_cell_angle_alpha 90\n"
            f"_cell_angle_beta 90\n_cell_angle_gamma 90\n{symmetry}\n{extra}loop_\n{loop}\n{atoms}\n")


def _elements(crystal: Crystal) -> list[dict[int, float]]:
    return [dict(s) for s in crystal.species]


def test_elements_from_labels_without_type_symbols():
    """Water and site-letter labels (AMCSD writes `WB` for W on site B, `OX` for O on site X),
    deuterium; residual-density peaks, dummy atoms and lone pairs are not atoms."""
    rows = ["OW1 0.1 0.1 0.1", "Wat2 0.2 0.1 0.1", "WB 0.3 0.1 0.1", "OX 0.4 0.1 0.1", "FO5 0.5 0.1 0.1",
            "NM 0.6 0.1 0.1", "Hw1 0.7 0.1 0.1", "D1 0.8 0.1 0.1", "H2OA 0.1 0.5 0.1", "Cl1 0.2 0.5 0.1",
            "Q1 0.3 0.5 0.1", "Du1 0.4 0.5 0.1", "Lp1 0.5 0.5 0.1", "Cg1 0.6 0.5 0.1", "X1 0.7 0.5 0.1"]
    crystal = parse_cif(_cif("\n".join(rows)))[0]
    assert [next(iter(s)) for s in crystal.species] == [8, 8, 74, 8, 9, 7, 1, 1, 8, 17]
    assert crystal.is_ordered


def test_type_symbols_with_charges_or_placeholders():
    rows = ["O1 O2- 0.1 0.1 0.1", "Fe1 Fe3+ 0.3 0.1 0.1", "Na1 ? 0.5 0.1 0.1", "W1 Ow 0.7 0.1 0.1",
            "X9 Du 0.1 0.5 0.1"]
    crystal = parse_cif(_cif("\n".join(rows), ("label", "type_symbol", "fract_x", "fract_y", "fract_z")))[0]
    assert [next(iter(s)) for s in crystal.species] == [8, 26, 11, 8]


def test_unknown_element_and_unusable_blocks_are_one_line_reasons():
    with pytest.raises(StructureError, match=r"^unknown element for site 'M1'$"):
        parse_cif(_cif("M1 0.1 0.1 0.1\nO1 0.5 0.5 0.5"))  # a mineral's M site, element not written
    with pytest.raises(StructureError, match="no atom sites with an element, coordinates"):
        parse_cif(_cif("Q1 0.1 0.1 0.1\nO1 ? ? ?"))


def test_sites_without_coordinates_are_left_out_and_fractions_are_read():
    crystal = parse_cif(_cif("Si1 1/3 2/3 0.25\nO1 0 0 0\nH1 ? ? ?\nH2 0.5 . 0.5"))[0]
    assert len(crystal) == 2
    np.testing.assert_array_equal(crystal.frac_coords[0], [1 / 3, 2 / 3, 0.25])


def test_dummy_atoms_flagged_in_calc_flag_are_left_out():
    crystal = parse_cif(_cif("Si1 0 0 0 .\nC9 0.5 0.5 0.5 dum",
                             ("label", "fract_x", "fract_y", "fract_z", "calc_flag")))[0]
    assert _elements(crystal) == [{14: 1.0}]


def test_duplicate_tags_are_read_with_the_first_value():
    good = mp40_table()["cif"].iloc[0]
    text = good.replace("_cell_length_a", "_cell_length_a 99.0\n_cell_length_a", 1)
    assert parse_cif(text)[0].lattice[0, 0] == pytest.approx(99.0)
    # the cod-tools file: a duplicated tag, then an atom loop of '?': a reason about the atoms, not the tag
    with pytest.raises(StructureError) as reason:
        parse_cif((CIF_EDGE / "codcif_duplicate_identical_tag.cif").read_text())
    assert "duplicate" not in str(reason.value) and "\n" not in str(reason.value)


def test_atoms_generated_by_symmetry_and_listed_again_count_once():
    """COD 2000000 lists the symmetry-generated half of a molecule again (labels `H1A*`): each lies
    on an image of its original, 0 Å away. pymatgen refuses the file; we read it as if they were not there."""
    text = (CIF_EDGE / "codcif_2000000.cif").read_text()
    ours = parse_cif(text, "2000000")[0]
    without = "\n".join(line for line in text.splitlines() if not line.split()[:1] or "*" not in line.split()[0])
    reference = parse_cif(without, "2000000")[0]
    assert len(reference) < len(without.splitlines())  # sanity: the starred rows were removed ...
    assert _site_differences(ours, reference) is None  # ... and change nothing
    from pymatgen.core import Composition

    assert Composition(ours.composition()).reduced_composition == Composition("C16 H44 Co Nd2 O26")
    with pytest.raises(ValueError):  # pymatgen: "Invalid CIF file with no structures!"
        _pymatgen(text)


def test_near_duplicate_positions_are_one_atom():
    # two H 0.034 Å apart (riding H written twice): one H
    crystal = parse_cif(_cif("H1 0.1 0.1 0.1\nH2 0.1034 0.1 0.1\nO1 0.2 0.1 0.1", a=1.0 * 10))[0]
    assert _elements(crystal) == [{1: 1.0}, {8: 1.0}]
    # an atom 0.01 Å off an inversion centre: its two images are one atom
    crystal = parse_cif(_cif("Fe1 0.0005 0.5 0.5\nO1 0.2 0.2 0.2", symmetry="_symmetry_space_group_name_H-M 'P -1'"))[0]
    assert sorted(next(iter(s)) for s in crystal.species) == [8, 8, 26]
    # an H on top of a heavier atom goes; the atom stays
    crystal = parse_cif(_cif("C1 0.1 0.1 0.1\nH1 0.102 0.1 0.1\nO1 0.3 0.3 0.3"))[0]
    assert _elements(crystal) == [{6: 1.0}, {8: 1.0}]
    crystal = parse_cif(_cif("H1 0.102 0.1 0.1\nC1 0.1 0.1 0.1\nO1 0.3 0.3 0.3"))[0]
    assert _elements(crystal) == [{6: 1.0}, {8: 1.0}] and crystal.frac_coords[0, 0] == 0.1  # where the C is
    # partially occupied alternatives (a split site) stay two sites, as pymatgen reads them
    crystal = parse_cif(_cif("Fe1 0.1 0.1 0.1 0.5\nFe2 0.105 0.1 0.1 0.5\nO1 0.3 0.3 0.3 1",
                             ("label", "fract_x", "fract_y", "fract_z", "occupancy")))[0]
    assert len(crystal) == 3
    # different elements on one position with more than one atom between them: a reason
    with pytest.raises(StructureError, match=r"^site 0 \(Fe\) and site 1 \(O\) overlap \(0.02 Å apart\)"):
        parse_cif(_cif("Fe1 0.1 0.1 0.1\nO1 0.102 0.1 0.1"))


def test_amcsd_entries_that_gemmi_and_pymatgen_could_not_finish():
    cifs = dict(amcsd_cifs(step=1))
    # NH4+ written as N with four H on the same point: N
    assert sorted(next(iter(s)) for s in parse_cif(cifs["amcsd:19947"])[0].species).count(1) == 0
    # W on site B of a pyrochlore, sharing it with Fe
    mixed = [s for s in parse_cif(cifs["amcsd:5408"])[0].species if 74 in s]
    assert mixed and all(s == pytest.approx({26: 0.27, 74: 0.73}) for s in mixed)
    # Na and Ca listed on one point without occupancies: a mixed site, half each
    shared = [s for s in parse_cif(cifs["amcsd:1963"])[0].species if len(s) > 1]
    assert len(shared) == 2 and all(s == {11: 0.5, 20: 0.5} for s in shared)
    # Fe, O 0.0006 Å off a mirror plane: pymatgen keeps both images as full atoms; we keep one
    assert len(parse_cif(cifs["amcsd:15440"])[0]) == 26
    # Y and V that symmetry stacks on one position: truly impossible
    with pytest.raises(StructureError, match=r"\(Y\) and site \d+ \(V\) overlap \(0 Å apart\): different elements"):
        parse_cif(cifs["amcsd:18037"])


def test_over_occupied_mixed_sites_are_scaled_to_one_atom():
    text = (CIF_EDGE / "1101169.cif").read_text()
    with pytest.raises(ValueError):
        _pymatgen(text)  # "Occupancy 1.001 exceeded tolerance"
    crystal = parse_cif(text)[0]
    totals = np.array([sum(s.values()) for s in crystal.species])
    assert totals.max() <= 1.0 + 1e-9 and (totals > 0.999).sum() > 100


def test_parse_and_graph_apply_one_overlap_rule():
    """A crystal as read has nothing left for the graph builder to merge, and the graph builder
    merges an unread crystal exactly as the reader would have."""
    from crystalclip.graphs import build_graph
    from crystalclip.structures.crystal import OCCUPANCY_SLACK, close_pairs

    texts = [(CIF_EDGE / name).read_text() for name in ("codcif_2000000.cif", "1101169.cif",
                                                         "codcif_1004001-disorder.cif")]
    texts.append(_cif("H1 0.1 0.1 0.1\nH2 0.1034 0.1 0.1\nC1 0.3 0.3 0.3\nH3 0.302 0.3 0.3\nO1 0.5 0.5 0.5"))
    for text in texts:
        crystal = parse_cif(text)[0]
        i, j, _ = close_pairs(crystal.lattice, crystal.frac_coords)
        occupancy = np.array([sum(s.values()) for s in crystal.species])
        assert not (occupancy[i] + occupancy[j] > 1 + OCCUPANCY_SLACK).any()
        assert build_graph(crystal).num_sites == len(crystal)
    raw = Crystal("raw", np.eye(3) * 10.0, np.array([[0.1, 0.1, 0.1], [0.1034, 0.1, 0.1], [0.3, 0.3, 0.3],
                                                     [0.302, 0.3, 0.3], [0.5, 0.5, 0.5]]),
                  [{1: 1.0}, {1: 1.0}, {6: 1.0}, {1: 1.0}, {8: 1.0}])
    read = parse_cif(texts[-1])[0]
    graph, expected = build_graph(raw), build_graph(read)
    assert graph.num_sites == len(read) == 3
    np.testing.assert_array_equal(graph.edge_dist, expected.edge_dist)
    np.testing.assert_array_equal(graph.species_z, expected.species_z)


def test_close_pairs_small_and_large_cells_agree_with_brute_force():
    from crystalclip.structures.crystal import close_pairs

    rng = np.random.default_rng(0)
    lattice = np.array([[9.0, 0.0, 0.0], [2.5, 8.0, 0.0], [1.0, -1.5, 7.0]])
    for n in (40, 200):  # a numpy pass below 65 sites, a KD-tree above
        frac = rng.random((n, 3))
        frac[1] = frac[0] + [0.004, 0, 0]  # 0.036 Å apart
        frac[3] = [0.9995, 0.5, 0.0002]  # across the cell's corner from site 2 ...
        frac[2] = [0.0003, 0.5, 0.9999]
        frac[5] = frac[4] + 0.02  # ~0.3 Å: not an overlap
        i, j, d = close_pairs(lattice, frac)
        shifts = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)])
        delta = frac[None, :, None, :] - frac[:, None, None, :] + shifts[None, None]
        dist = np.linalg.norm(delta @ lattice, axis=-1).min(axis=-1)
        bi, bj = np.nonzero(np.triu(dist < 0.1, 1))
        assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(bi.tolist(), bj.tolist()))
        assert {(0, 1), (2, 3)} <= set(zip(i.tolist(), j.tolist()))
        np.testing.assert_allclose(d, dist[i, j], atol=1e-9)
