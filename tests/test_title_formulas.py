"""formulas_in_title / join_titles: LaTeX, acronyms, one-element words, a hand-labelled sample.

tests/data/title_formulas_labelled.csv: 80 arXiv cond-mat titles from
../shared/data/arxiv/condmat_titles.parquet. Rows 1-50 are drawn at random (random.Random(20240611))
from the titles in which the extractor found a formula that is also a Materials Project reduced
formula (mp-cifs, all 152,124 structures); rows 51-80 are hard negatives drawn with the same
generator from titles with an all-capital word spelling element symbols (10), a two-letter symbol
as a word (10), an author-name capital or initialism (5) and a roman numeral (5). ``expected``
was written by reading each title: the compounds whose formula the title writes out (in any
notation; ";"-separated, pymatgen-readable, compared by reduced formula). Conventions, the same as
the module's: a doped series ("La2-xSrxCuO4") or a fractional solid solution
("La0.7Sr0.3MnO3", "Ni81Fe19") is not one compound; offsets such as 7-delta are read at zero
(YBa2Cu3O7-delta -> YBa2Cu3O7); abbreviations (YBCO, BEDT-TTF salts) are not written formulas.
Where the extractor misses a compound ("uranium monochalcogenide US", "RCr(BO3)2 (R = Y and Ho)"),
``expected`` has it: those rows count against recall.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from crystalclip.text.title_formulas import formulas_in_title, join_titles, normalize_latex

LABELLED = Path(__file__).parent / "data" / "title_formulas_labelled.csv"


@pytest.mark.parametrize("title, expected", [
    ("Magnetism of monolayer NiCl$_2$", ["NiCl2"]),
    (r"Spin-triplet pairing in $\mathrm{Sr_2RuO_4}$", ["Sr2RuO4"]),
    (r"Vortices in YBa$_2$Cu$_3$O$_{7-\delta}$ films", ["Ba2YCu3O7"]),
    ("Pseudogap in YBa_2Cu_3O_{7-d} and YBa2Cu3O(6+y)", ["Ba2YCu3O7", "Ba2Y(CuO2)3"]),
    ("Surface states of Bi$_2$Se$_3$ and Bi$_{2}$Te$_{3}$", ["Bi2Se3", "Bi2Te3"]),
    ("Fe3GeTe2, CrI3 and MnBi2Te4 heterostructures", ["Fe3GeTe2", "CrI3", "Mn(BiTe2)2"]),
    (r"Gate-tunable MoS$_{\mathrm{2}}$ and $\text{WS}_2$", ["MoS2", "WS2"]),
    (r"Kitaev physics in $\alpha$-RuCl$_3$", ["RuCl3"]),
    ("Fe$_{1+y}$Te and Li1-xCoO2", ["FeTe", "LiCoO2"]),
    (r"Hydrate CuSO$_4\cdot$5H$_2$O and volborthite Cu3V2O7(OH)2 2H2O",
     ["CuH10SO9", "V2Cu3H6O11"]),
    ("LaAlO3/SrTiO3(001) interfaces and Fe-based SrTiO3-based devices", ["LaAlO3", "SrTiO3"]),
    ("1T-TaS2 and 2H-NbSe2", ["TaS2", "NbSe2"]),
    ("Electronic structure of PbI 2 : From Bulk to Monolayer", ["PbI2"]),
    ("Superconducting MgB(2) films", ["MgB2"]),
    ("Isotopes in Cu$_2$$^{114}$Cd$^{11}$B$_2$O$_6$", ["CdCu2(BO3)2"]),
    ("Water H2O, CO2 and h-BN", ["H2O", "CO2", "BN"]),
    ("ZnO, GaAs, MnSi, TiOCl and CeNiSn", ["ZnO", "GaAs", "MnSi", "TiClO", "CeNiSn"]),
    ("Double perovskite La2NiMnO6 with MnO6 octahedra", ["La2MnNiO6"]),
])
def test_formulas_read(title, expected):
    assert formulas_in_title(title) == expected


@pytest.mark.parametrize("title", [
    # acronyms that spell element symbols
    "BCS theory, AC susceptibility and GW calculations in the US",
    "ARPES, DFT and NMR of the CDW state with SOC",
    "QCD, the CNO cycle and SPIN models",
    "CNTs, SWNTs and VCSOs",
    "YBCO films and SU(2) gauge theory with U(1) symmetry",
    "The SU2 and SO5 theories of the BC8 phase",
    # one-element words and element-prefixed words
    "Single Impurity In Ultracold Fermi Superfluids As Seen By Be Co",
    "Fe-based superconductors and Co-doped Ni",
    "C60 fullerene and Fe$^{2+}$ ions, $^{57}$Fe Mossbauer",
    # author capitals, roman numerals, oxidation states
    "McMillan-Rowell oscillations and the McCoy model",
    "Phase IV of hydrogen, III-V and II-VI semiconductors, VI and VII",
    "Fe(III) and Mn(II) complexes",
    "Superfluid HeII and HTc superconductors",
    # doped series, solid solutions, alloys, ions, structure types
    "La$_{2-x}$Sr$_x$CuO$_4$, LaFeAsO1-xFx and YBa$_2$Cu$_3$O$_x$",
    "Na$_{0.5}$CoO$_2$, PbMg$_{1/3}$Nb$_{2/3}$O$_3$ and (Bi$_{0.5}$Sb$_{0.5}$)$_2$Te$_3$",
    "Permalloy Ni81Fe19, NiFe, CoFeB and IrMn spin valves",
    "InGaAs, GaMnAs, (Ga,Mn)As, Ga(Mn)As, CdMnTe and ZnCoO",
    "YBaCuO and BiSrCaCuO",
    "Ultracold KRb and NaK molecules",
    "NH$_4^+$ ions and MnO$_4^-$",
    "CuO2 planes, PO4 tetrahedra and BiS2-based superconductors",
    "PbO-type structure and NaCl-like order",
    "IPA-CuCl3 under field",
])
def test_not_formulas(title):
    assert formulas_in_title(title) == []


def test_normalize_latex():
    assert normalize_latex("YBa$_2$Cu$_3$O$_{7-\\delta}$") == "YBa2Cu3O7-δ"
    assert normalize_latex("$\\mathrm{Sr_2RuO_4}$") == "Sr2RuO4"
    assert normalize_latex("plain title") == "plain title"


def test_order_and_repeats():
    assert formulas_in_title("SrTiO3 on LaAlO3 and SrTiO$_3$ again") == ["SrTiO3", "LaAlO3"]


def _reduced(formula: str) -> str:
    from pymatgen.core import Composition

    return Composition(formula).reduced_formula


def test_labelled_sample_precision():
    rows = list(csv.DictReader(LABELLED.open(newline="", encoding="utf-8")))
    assert len(rows) >= 80
    assert sum(bool(r["expected"]) for r in rows[:50]) == 50  # the random draw from the matches
    tp = n_pred = n_true = 0
    tp50 = n_pred50 = 0
    wrong = []
    for i, row in enumerate(rows):
        expected = {_reduced(f) for f in row["expected"].split(";") if f}
        predicted = set(formulas_in_title(row["title"]))
        hits = len(predicted & expected)
        tp += hits
        n_pred += len(predicted)
        n_true += len(expected)
        if i < 50:
            tp50 += hits
            n_pred50 += len(predicted)
        if predicted - expected:
            wrong.append((row["arxiv_id"], sorted(predicted - expected)))
    precision, recall = tp / n_pred, tp / n_true
    print(f"labelled titles: {len(rows)}; precision {precision:.3f} ({tp}/{n_pred}), "
          f"recall {recall:.3f} ({tp}/{n_true}); precision on the 50 drawn matches "
          f"{tp50 / n_pred50:.3f}; false positives {wrong}")
    assert precision >= 0.95, wrong
    assert tp50 / n_pred50 >= 0.95


def test_join_titles():
    titles = [
        ("a", "Spin ice in Dy$_2$Ti$_2$O$_7$"),
        ("b", "BCS theory of MgB2 and the BCS-BEC crossover"),
        ("c", "MgB$_2$ wires and Dy2Ti2O7 crystals"),
        ("d", "Nothing here: In As Co"),
        ("e", "A compound not in the set: SrTiO3"),
    ]
    known = {"Dy2Ti2O7", "MgB2", "NaCl"}
    assert join_titles(titles, known) == {"Dy2Ti2O7": ["a", "c"], "MgB2": ["b", "c"]}
    assert join_titles([], known) == {}
    assert join_titles(iter(titles), set()) == {}
