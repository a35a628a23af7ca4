"""Reading structures: gemmi and pymatgen agree; bad input gives one-line reasons, never a crash."""
import warnings

import numpy as np
import pytest
from pymatgen.io.cif import CifParser

import crystalclip
from crystalclip.structures import Crystal, ReadFailure, StructureError, iter_crystals, parse_cif

from .conftest import EDGE_CASES, amcsd_cifs, mp40_table


def _pymatgen(text: str) -> Crystal:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Crystal.from_pymatgen(CifParser.from_str(text).parse_structures(primitive=False)[0])


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
    assert sorted(s.properties["id"] for s in folder) == ["s0", "s2", "s4", "sub/s1", "sub/s3"]
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
