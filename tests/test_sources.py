"""Sources on the real data: AMCSD (larixite), MP-40 captions, CoRE MOF, CIF folders, CSV tables."""
import hashlib
import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from crystalclip.sources import Entry, Rejected, amcsd, cif_folder, core_mof, csv_table, mp40
from crystalclip.sources import open_source, open_sources
from crystalclip.text.titles import clean_title, split_title

MP40_DIR = Path(__file__).parents[1] / ".." / "shared" / "data" / "mp40"
MP40_A = MP40_DIR / "captions_1000.csv"
MP40_B = MP40_DIR / "captions_708.csv"
needs_mp40 = pytest.mark.skipif(not MP40_A.is_file(), reason="../shared/data/mp40 not present")


# --- titles -------------------------------------------------------------------------------------
# raw publication titles exactly as stored in larixite's amcsd_cif1.db (AMCSD id in the comment)
REAL_TITLES = [
    (" The structures of the minerals of the descloizite and adelite groups: II -\n pyrobelonite.",  # 71
     "The structures of the minerals of the descloizite and adelite groups: II - pyrobelonite."),
    (" Crystal structure of Li2PdP2O7 solved from X-ray powder\n diffraction\n _cod_database_code 1000333",  # 12551
     "Crystal structure of Li2PdP2O7 solved from X-ray powder diffraction"),
    (" Some computations on svanbergite, woodhouseite and alunite\n trial C",  # 35
     "Some computations on svanbergite, woodhouseite and alunite"),
    (" The crystal structure of murdochite\n disordered model",  # 75
     "The crystal structure of murdochite"),
    (" High-temperature crystal chemistry of acmite, diopside, hedenbergite, jadeite,\n spodumene, and ureyite\n T = 24 C\n pyroxene",  # 336
     "High-temperature crystal chemistry of acmite, diopside, hedenbergite, jadeite, spodumene, and ureyite"),
    (" High-pressure structural study of diopside\n P = 1 atm\n pyroxene",  # 811
     "High-pressure structural study of diopside"),
    (" P-V-T equation of state of magnesiowustite (Mg0.6Fe0.4)O\n Sample: T = 300 deg C, P = .00 GPa\n rocksalt structure",  # 7624
     "P-V-T equation of state of magnesiowustite (Mg0.6Fe0.4)O"),
    (" Rietveld refinement of the crystal structure of olivenite: A twinned monoclinic\n structure\n Note: The sign of Cu1-z coordinate changed.",  # 5462
     "Rietveld refinement of the crystal structure of olivenite: A twinned monoclinic structure"),
    (" Refinement of the crystal structure of synthetic pyrope\n refinement D, note that temperature factors reported for Si were labelled\n incorrectly in the paper",  # 142
     "Refinement of the crystal structure of synthetic pyrope"),
    (" High-pressure crystal chemistry of KAlSi3O8 hollandite\n Pressure = 0.00 GPa",  # 1559
     "High-pressure crystal chemistry of KAlSi3O8 hollandite"),
    (" Thermodynamics and kinetics of cation ordering in MgAl2O4 spinel up to 1600 C\n from in situ neutron diffraction\n Data collected at IPNS, Argonne National Laboratory,\n T = 299 K on heating cycle, MgAl2O4",  # 2106
     "Thermodynamics and kinetics of cation ordering in MgAl2O4 spinel up to 1600 C from in situ neutron diffraction"),
    (" The Structure of Indium Tungstate In6WO12: Its Relation with the\n Fluorite Structure\n _cod_database_code 1001180",  # 9761
     "The Structure of Indium Tungstate In6WO12: Its Relation with the Fluorite Structure"),
    (" Damiaoite - a new native indium and platinum alloy\n Fluorite structure",  # 11978
     "Damiaoite - a new native indium and platinum alloy"),
    (" Das magnetische Verhalten der allotropen Modifikationen des Mangan(II)-\n Sulfides",  # 18216
     "Das magnetische Verhalten der allotropen Modifikationen des Mangan(II)-Sulfides"),
    (" Petrology of the peridotites from the Ivrea-\n Verbano Zone (Western Italian Alps)",  # hyphen glued
     "Petrology of the peridotites from the Ivrea-Verbano Zone (Western Italian Alps)"),
    (" Modifications structurales du nitrure de silicium en fonction de la\n temperature\n _cod_database_code 1001238",  # 14301
     "Modifications structurales du nitrure de silicium en fonction de la temperature"),
    (" Gainesite, sodium zirconium beryllophosphate: A new mineral and its crystal\n structure",  # 922
     "Gainesite, sodium zirconium beryllophosphate: A new mineral and its crystal structure"),
    (" Kinetics of cation ordering in synthetic Mg(Al,Fe3+)2O4 spinels\n Note Sample F39, disordered at 1000 C for 24 h, then ordered at 550 C\n Annealing time = 0 min",  # 19271
     "Kinetics of cation ordering in synthetic Mg(Al,Fe3+)2O4 spinels"),
    (" A refinement of the parameters of alpha manganese\n Localilty: synthetic\n Sample: at T = 298K",  # 9311
     "A refinement of the parameters of alpha manganese"),
    (" Is each analcime different?\n ANA 1", "Is each analcime different?"),  # 654
    (" Polymorphism in digenite\n high-temperature form at T = 80 C", "Polymorphism in digenite"),  # 121
    (" Second edition. Interscience Publishers, New York, New York\n rocksalt structure", ""),  # 11274
    (" Second edition. Interscience Publishers, New York, New York\n Cesium peroxide", "Cesium peroxide"),  # 11669
    (" Second edition. Interscience Publishers, New York, New York\n Sample at T = 450 C\n Hexagonal closest packed, hcp, structure", ""),  # 11166
]


@pytest.mark.parametrize("raw, expected", REAL_TITLES)
def test_clean_title_real_examples(raw, expected):
    assert clean_title(raw) == expected


def test_clean_title_edge_cases():
    assert clean_title(None) == ""
    assert clean_title("") == ""
    assert clean_title("  \n \n") == ""
    assert clean_title("_cod_database_code 1000001") == ""
    assert clean_title(" Sample: at T = 20 C\n Note: Li6 isotope") == ""  # AMCSD 12954
    assert clean_title(" Substitution in Ce2 T Si3 compositions with T = (Cr, Mn,\n Fe)") == (
        "Substitution in Ce2 T Si3 compositions with T = (Cr, Mn, Fe)")
    assert clean_title("  Crystal   structure\tof  NaCl ") == "Crystal structure of NaCl"
    title, notes = split_title(" A study\n Sample: x\n T = 5 K")
    assert title == "A study" and notes == ["Sample: x", "T = 5 K"]


def test_clean_title_over_the_whole_database():
    con = amcsd.connect()
    try:
        titles = [t for (t,) in con.execute("SELECT pub_title FROM cif")]
    finally:
        con.close()
    cleaned = [clean_title(t) for t in titles]
    assert all("\n" not in c and c == c.strip() and "  " not in c for c in cleaned)
    for marker in ("_cod_database_code", "Sample:", "Note:", "Pressure ="):
        assert not any(marker in c for c in cleaned), marker
    assert sum(1 for c in cleaned if c) > 8400  # only Wyckoff's placeholders (~750) clean to ""


# --- AMCSD ----------------------------------------------------------------------------------------
def _fingerprint(path: Path) -> tuple[float, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def amcsd_all():
    db = amcsd.default_db_path()
    before = _fingerprint(db)
    entries = list(amcsd.iter_entries())
    assert _fingerprint(db) == before, "reading AMCSD changed the database file"
    assert not (db.parent / (db.name + "-journal")).exists()
    return entries


def test_amcsd_entries(amcsd_all):
    assert len(amcsd_all) == amcsd.count() == 9275
    assert all(isinstance(e, Entry) for e in amcsd_all)
    ids = [e.id for e in amcsd_all]
    assert len(set(ids)) == len(ids) and ids[0].startswith("amcsd:")
    e = next(e for e in amcsd_all if e.id == "amcsd:71")
    assert e.texts[0] == "The structures of the minerals of the descloizite and adelite groups: II - pyrobelonite."
    assert e.source == "amcsd" and e.group.startswith("amcsd-pub:") and not e.texts_generated
    assert set(e.columns) == {"amcsd_id", "publication_id", "journal", "year", "authors", "mineral", "title"}
    assert e.columns["amcsd_id"] == 71 and isinstance(e.columns["authors"], list)
    assert e.columns["mineral"] and e.texts[1] == e.columns["mineral"]
    assert not any("<missing>" in t for e in amcsd_all for t in e.texts)
    assert all(e.columns["mineral"] is None or e.columns["mineral"] in e.texts for e in amcsd_all)
    assert len([e for e in amcsd_all[:5]]) == len(list(amcsd.iter_entries(limit=5)))


def test_amcsd_cif_equals_larixite_ciftext(amcsd_all, tmp_path):
    from larixite.amcsd import AMCSD

    copy = tmp_path / "amcsd.db"  # larixite runs on a copy: the shipped file is never at risk
    shutil.copy(amcsd.default_db_path(), copy)
    con = sqlite3.connect(copy)
    partial = [i for (i,) in con.execute("SELECT id FROM cif WHERE atoms_occupancy != '0'")]
    aniso = [i for (i,) in con.execute("SELECT id FROM cif WHERE atoms_aniso_u11 != '0'")]
    con.close()
    rng = random.Random(7)
    by_id = {e.columns["amcsd_id"]: e for e in amcsd_all}
    sample = set(rng.sample(sorted(by_id), 40)) | set(rng.sample(partial, 25)) | set(rng.sample(aniso, 10))
    sample |= {71, 11274}
    assert len(sample) >= 50
    db = AMCSD(str(copy), read_only=True)
    for cif_id in sorted(sample):
        assert by_id[cif_id].cif == db.get_cif(cif_id).ciftext, cif_id
    assert any("_atom_site_occupancy" in by_id[i].cif for i in sample)


# --- MP-40 ----------------------------------------------------------------------------------------
def test_parse_prompt():
    assert mp40.parse_prompt("['a  ', ' b', 'a']") == ["a", "b"]
    assert mp40.parse_prompt("One caption.  ") == ["One caption."]
    assert mp40.parse_prompt("[not a list") == ["[not a list"]
    assert mp40.parse_prompt("") == [] and mp40.parse_prompt(None) == []


@needs_mp40
def test_mp40_single_files():
    a = list(mp40.iter_entries(MP40_A, limit=3))
    assert len(a) == 3 and all(isinstance(e, Entry) for e in a)
    e = a[0]
    assert e.id == "mp-641778" == e.group and e.source == "mp40" and e.texts_generated
    assert len(e.texts) == 5 and all(t == t.strip() for t in e.texts)
    assert e.cif.lstrip().startswith("# generated using pymatgen")
    assert e.columns["metallic"] == "metallic" and e.columns["space_group_number"] == 83
    assert e.columns["mineral"] is None and isinstance(e.columns["band_gap"], float)
    b = next(iter(mp40.iter_entries([MP40_B])))
    assert len(b.texts) == 1 and b.columns["metallic"] is None and b.columns["stability"] is None
    assert set(b.columns) == set(mp40.KEPT_COLUMNS)


@needs_mp40
def test_mp40_merge_shared_ids():
    one = {e.id: e for e in mp40.iter_entries(MP40_A)}
    two = {e.id: e for e in mp40.iter_entries(MP40_B)}
    shared = set(one) & set(two)
    assert len(shared) == 24
    merged = list(mp40.iter_entries([MP40_A, MP40_B]))
    assert len(merged) == len(one) + len(two) - 24 == mp40.count([MP40_A, MP40_B])
    ids = [e.id for e in merged]
    assert len(set(ids)) == len(ids) and ids[: len(one)] == list(one)  # first-seen order
    for e in merged:
        if e.id in shared:
            assert e.texts == list(dict.fromkeys(one[e.id].texts + two[e.id].texts))
            assert e.columns["metallic"] == one[e.id].columns["metallic"]  # first file wins
            assert e.cif == one[e.id].cif
    # the registry does the same: a list of paths, "a,b", or open_sources over two specs
    assert len(list(open_source([str(MP40_A), str(MP40_B)]).iter_entries())) == len(merged)
    assert open_source(f"{MP40_A},{MP40_B}").count() == len(merged)
    sources = open_sources([str(MP40_A), "amcsd", str(MP40_B)], limit=2)
    assert [s.name for s in sources] == ["mp40", "amcsd"]


# --- CoRE MOF -------------------------------------------------------------------------------------
def test_core_mof_small():
    entries = list(core_mof.iter_entries(limit=6))
    assert len(entries) == 6 and all(isinstance(e, Entry) for e in entries)
    e = next(e for e in entries if e.id == "core-mof:ABAVIJ_clean")
    assert e.group == "core-mof:ABAVIJ" and e.texts_generated and e.source == "core-mof"
    assert set(e.columns) == {"LCD", "PLD", "LFPD", "density", "ASA_m2_g", "AV_VF", "All_Metals",
                              "Has_OMS", "Open_Metal_Sites", "DOI_public", "dataset"}
    assert e.columns["dataset"] == "2019-ASR" and e.columns["Has_OMS"] is False
    assert 1.0 < e.columns["density"] < 2.0
    assert len(e.texts) == 2 and "Co metal-organic framework without open metal sites" in e.texts[0]
    assert "largest cavity 4.5 Å" in e.texts[0] and "pore limiting diameter 2.5 Å" in e.texts[0]
    assert "data_" in e.cif and "_cell_length_a" in e.cif
    assert core_mof.count() > 18000


def test_core_mof_text_template_and_groups():
    cols = {"All_Metals": "Pb,K", "Has_OMS": True, "Open_Metal_Sites": "Pb,K", "LCD": 3.5991,
            "PLD": 2.94934, "AV_VF": 0.2312, "density": 2.60195, "ASA_m2_g": 0.0}
    assert core_mof.describe(cols) == [
        "Pb and K metal-organic framework with open Pb and K sites, largest cavity 3.6 Å, "
        "pore limiting diameter 2.9 Å, void fraction 0.23",
        "Pb and K MOF with density 2.60 g/cm3 and no surface accessible to nitrogen",
    ]
    assert core_mof.group_of("LAJDUV03_charged", "charged") == "LAJDUV"
    assert core_mof.group_of("ABAVIJ_freeONLY") == "ABAVIJ"
    assert core_mof.group_of("c5dt01100k_c5dt01100k2_clean", "clean") == "c5dt01100k"
    fsr = list(core_mof.iter_entries(limit=2, datasets="2019-FSR"))
    assert fsr[1].id == "core-mof:ABAVIJ_freeONLY" and fsr[1].columns["dataset"] == "2019-FSR"
    assert fsr[1].group == "core-mof:ABAVIJ"  # same group as ABAVIJ_clean of 2019-ASR
    assert open_source("core-mof:2019-FSR", limit=1).count() == 1


# --- CIF folder -----------------------------------------------------------------------------------
CIF = "data_x\n_cell_length_a 5.0\n_publ_section_title\n;\nA title\n;\n"


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "cifs"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "b.cif").write_text(CIF)
    (root / "a.CIF").write_text(CIF)
    (root / "sub" / "deeper" / "c.cif").write_text(CIF)
    (root / "sub" / "empty.cif").write_bytes(b"")
    (root / "sub" / "latin1.cif").write_bytes(CIF.replace("A title", "Kristallstrukt\xfcr").encode("latin-1"))
    (root / "notes.txt").write_text("not a CIF")
    return root


def test_cif_folder(tmp_path):
    root = _folder(tmp_path)
    items = list(cif_folder.iter_entries(root))
    assert [i.id for i in items] == ["a", "b", "sub/deeper/c", "sub/empty", "sub/latin1"]
    assert cif_folder.count(root) == 5
    good = [i for i in items if isinstance(i, Entry)]
    assert len(good) == 3 and all(e.texts == [] and e.group is None and e.cif == CIF for e in good)
    assert good[0].path == str(root / "a.CIF") and good[0].source == "cif-folder"
    bad = {i.id: i for i in items if isinstance(i, Rejected)}
    assert bad["sub/empty"].reason == "empty file"
    reason = bad["sub/latin1"].reason
    assert "UTF-8" in reason and f"offset {CIF.index('A title') + len('Kristallstrukt')}" in reason
    assert "\n" not in reason and bad["sub/latin1"].path.endswith("latin1.cif")
    assert [i.id for i in open_source(str(root), limit=2).iter_entries()] == ["a", "b"]


def test_cif_folder_broken_link(tmp_path):
    root = _folder(tmp_path)
    (root / "gone.cif").symlink_to(root / "does-not-exist.cif")
    item = {i.id: i for i in cif_folder.iter_entries(root)}["gone"]
    assert isinstance(item, Rejected) and item.reason.startswith("cannot read file: ")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_cif_folder_unreadable(tmp_path):
    root = _folder(tmp_path)
    locked = root / "b.cif"
    locked.chmod(0)
    try:
        item = {i.id: i for i in cif_folder.iter_entries(root)}["b"]
    finally:
        locked.chmod(0o644)
    assert isinstance(item, Rejected) and item.reason.startswith("unreadable")


# --- generic CSV ----------------------------------------------------------------------------------
def test_csv_table(tmp_path):
    import csv

    path = tmp_path / "table.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "structure", "title", "keywords", "label"])
        w.writerow(["x1", CIF, "A  title", "magnet", "1"])
        w.writerow(["x2", "", "Another", "", "0"])
        w.writerow(["x3", CIF, "", "same", ""])
    items = list(csv_table.iter_entries(path, cif_column="structure", text_columns=["title", "keywords"],
                                        id_column="name"))
    assert [type(i).__name__ for i in items] == ["Entry", "Rejected", "Entry"]
    assert items[0].texts == ["A title", "magnet"] and items[0].columns == {"label": "1"}
    assert items[0].cif == CIF and items[0].source == "csv"
    assert items[1].id == "x2" and "row 2" in items[1].reason and "structure" in items[1].reason
    assert items[2].texts == ["same"] and items[2].columns == {"label": None}
    rows = list(csv_table.iter_entries(path, cif_column="structure", text_columns="title"))
    assert [r.id for r in rows] == ["1", "2", "3"]
    src = open_source(str(path), cif_column="structure", text_columns=["title"])
    assert src.name == "csv" and src.count() == 3
    with pytest.raises(ValueError, match="available columns.*structure"):
        open_source(str(path))  # no cif_column
    with pytest.raises(ValueError, match=r"\['cif'\].*available columns"):
        open_source(str(path), cif_column="cif", text_columns=["title"])


# --- registry -------------------------------------------------------------------------------------
def test_open_source_registry(tmp_path):
    src = open_source("amcsd", limit=3, cif_column="ignored")
    assert src.name == "amcsd" and src.count() == 3
    assert [e.id for e in src.iter_entries()] == ["amcsd:3", "amcsd:4", "amcsd:5"]
    assert open_source("core-mof", limit=2).name == "core-mof"
    with pytest.raises(ValueError, match="unknown source 'nonsense'.*amcsd.*core-mof"):
        open_source("nonsense")
    with pytest.raises(ValueError, match="MP-40"):
        open_source([str(tmp_path)])
    if MP40_A.is_file():
        assert open_source(str(MP40_A)).name == "mp40"
