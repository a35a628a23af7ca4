"""Chemical formulas named in a paper title, and the title -> structure join by reduced formula.

``formulas_in_title(title) -> list[str]`` gives the reduced formulas (pymatgen
``Composition.reduced_formula`` spelling: "SrTiO3", "NaCl", "Ba2YCu3O7") of the compounds a title
names, in order of appearance, without repeats. It is tuned for precision: a formula it cannot read
with certainty is skipped, not guessed. ``join_titles(pairs, known_formulas)`` maps each known
reduced formula to the ids of the titles naming it.

Rules (checked by hand on arXiv cond-mat titles; a hand-labelled sample is in
tests/data/title_formulas_labelled.csv):

1. LaTeX is read: ``$...$`` is unwrapped, ``_2`` / ``_{2}`` / ``\\textsubscript{2}`` become the
   count, font commands (``\\mathrm``, ``\\rm``, ``\\text``, ``\\ce`` ...) and braces go,
   ``\\delta`` is a variable, ``\\cdot`` a hydrate dot. An isotope mass (``$^{57}$Fe``) is dropped,
   a charge (``NH$_4^+$``) makes the word an ion, other superscripts end the word.
   "Sr$_2$RuO$_4$", "$\\mathrm{Sr_2RuO_4}$", "YBa_2Cu_3O_{7-\\delta}" are read as plain text.
2. Words are split at spaces, ``/ , ; :`` and hyphens ("Fe-based", "LaAlO3/SrTiO3", "1T-TaS2",
   "alpha-RuCl3"); a hyphen or plus inside a count ("La2-x", "O7-delta", "Fe1+y") and a slash
   between digits ("Mg1/3") are kept, and so are counts in brackets ("O(7-x)", "MgB(2)") or written
   apart ("PbI 2", "... 2H2O" hydrates). Quotes, balanced outer brackets, a trailing "'s", a trailing
   Miller index ("SrTiO3(001)") and a trailing oxidation state ("Fe(III)") are stripped; a word
   after an acronym and a hyphen ("IPA-CuCl3") is part of a name and is not read.
3. A word is a formula only when all of it parses: element symbols with counts, groups ``(...)`` /
   ``[...]`` with counts, hydrates ``A·nB``. D, Ac (acetate in "Mn12Ac") and the elements after Pu
   are not symbols. It needs >= 2 distinct elements: a lone symbol ("In", "As", "Co", "C60") is
   never a compound. Repeated symbols without a count ("PNN", "V2VI3") and a bare bracketed symbol
   ("Ga(Mn)As", "TiO2(B)") reject the word.
4. Non-stoichiometry: the variables x, y, z, delta are set to zero: "YBa2Cu3O7-delta" -> YBa2Cu3O7
   ("Ba2YCu3O7" in pymatgen's order), "Fe1+yTe" -> FeTe, "Li1-xCoO2" -> LiCoO2. When an element's
   count then vanishes ("La2-xSrxCuO4", "LaFeAsO1-xFx", "YBa2Cu3Ox") the word is skipped: a doped
   series is not one compound. Any written non-integer count ("Na0.5CoO2", "PbMg1/3Nb2/3O3",
   "(Bi0.5Sb0.5)2Te3") marks a solid solution and skips the word, and so do counts of 0 or > 99,
   atomic per cents (integer counts summing to 100: "Ni81Fe19"), mixed sites ("(Ga,Mn)As") and
   charged species ("MnO4-", "Fe2+").
5. Acronyms: a word in capitals whose symbols are all one letter ("BCS", "CNO", "SPIN", "US", "SOC",
   "CDW", "IV", "VI"), also with a plural "s" ("CNTs", "VCSOs"), is not a formula unless it has a
   count and is not a label ("CO2", "UO2", "H2O", "VO2" are formulas; "SU2", "SO5", "BC8" are not).
   "BN" (boron nitride) is the one digit-free exception. "SU(2)", "U(1)" never parse.
6. A word of symbols without counts ("GaAs", "MnSi", "FeSe", "TiOCl", "CeNiSn") is a formula, but
   not when it is a shorthand for a material of unfixed composition: a listed alloy ("NiFe",
   "CoFeB", "IrMn", "SiGe", "FeSeTe", ...), a III-V or II-VI alloy or dilute magnetic semiconductor
   ("InGaAs", "GaMnAs", "CdMnTe", "ZnCoO": >= 3 elements with a III-V or II-VI pair), a cuprate or
   oxide with its counts left out ("YBaCuO", "LaNiO": >= 3 elements ending in O without a
   pnictogen), an alloy of >= 2 transition metals without nonmetal ("GdFeCo", "AlPdMn"), >= 5
   elements, alkali/alkaline-earth pairs (ultracold "KRb", "NaK") or noble gases, Tc, Pm, Po ...
   ("HeII", "HTc").
7. Context: a formula followed by "plane(s)", "octahedra", "tetrahedra", "chain(s)", "ion(s)",
   "cluster(s)", "complex" ... names a structural unit ("CuO2 planes", "MnO6 octahedra"); one
   followed by "type", "like", "structure" names a structure type ("PbO-type", "NaCl-like"); a
   layer fragment ("CuO2", "BiS2", "FeAs", "CoO2" ...) followed by "based", "layer(s)", "family",
   "superconductors" ... names a family. These are skipped.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache

from .masking import ELEMENT_SYMBOLS

__all__ = ["formulas_in_title", "join_titles", "normalize_latex", "parse_formula"]

# D (deuterium, "CDW", "DMFT"), actinium ("Mn12Ac" is acetate) and the elements after plutonium
# (no structures, "SWNTs" -> Ts, "PNIPAm" -> Am) are not read as symbols.
_SYMBOLS = frozenset(ELEMENT_SYMBOLS[:ELEMENT_SYMBOLS.index("Am")]) - {"D", "Ac"}
_VARS = "xyzδ"
_MAX_COUNT = 99

# classes for the digit-free words of rule 6
_NOT_IN_NAMES = frozenset("He Ne Ar Kr Xe Rn Tc Pm Po At Fr Ra".split())  # "HeII", "HTc", "VINe"
_ALKALINE = frozenset("Li Na K Rb Cs Be Mg Ca Sr Ba".split())  # "KRb", "NaK": ultracold molecules
_NONMETALS = frozenset("H B C N O F Si P S Cl Ge As Se Br Sb Te I".split())
_TM = frozenset(  # d-block metals but the rare-earth-like group 3
    "Ti V Cr Mn Fe Co Ni Cu Zn Zr Nb Mo Ru Rh Pd Ag Cd Hf Ta W Re Os Ir Pt Au Hg".split())
_III, _V = frozenset("B Al Ga In Tl".split()), frozenset("N P As Sb".split())
_II, _VI = frozenset("Be Mg Zn Cd Hg".split()), frozenset("O S Se Te".split())
_PNICTOGENS = frozenset("P As Sb Bi".split())

# alloy shorthands of unfixed composition, written like formulas (rule 6)
_ALLOY_SHORTHANDS = frozenset(
    "NiFe FeNi CoFe FeCo CoFeB FeCoB CoFeBTa IrMn MnIr PtMn MnPt NiMn FeMn MnFe CuMn MnCu AuFe FeAu "
    "AgMn MnAg PdFe PdNi NiCr CrNi CuNi NiCu AuMn CoCr CrCo NiCo CoNi FeCr CrFe FeGa GaFe CoPd PdCo "
    "AlNiCo NdFeB SmCo FeSiB FeCuNbSiB CoFeSiB FeZr ZrFe NiTi TiNi SiGe GeSi GeSn SnGe SiSn SiGeSn "
    "GeSiSn PbSn SnPb GeSbTe NiMnGa MnNiGa NiFeGa NiMnIn NiMnSn NiMnAl NiCoMnIn NiCoMnSn NiCoMnGa "
    "NbTiN NbTi TiNb MoGe MoSi WSi MoRe SiN AlO NiPt PtNi PdAu AuPd PtIr IrPt "
    "CuFe FeCu TbCo CoTb GdCo CoGd CoDy DyCo FeV AgAu AuAg CuAu AuCu PtAu AuPt FeSeTe FeTeSe "
    "PbSnTe SnPbTe PbSnSe GeMnTe SnMnTe FeMnAsP MnFeAsP MnFePSi MnFeSiP MnFePAs SrKFeAs BaKFeAs "
    "BiBaK BaKBiO BaCeY HfSiON CoFeBSi CoPtCrB NiCoMnSb FLiNaK CKMg SiKMg MnNiCuSb FeSiTi LaDy "
    "NbGd".split())
# all-capital one-letter-symbol words with a count that are labels, not formulas (rule 5)
_CAPS_LABELS = frozenset(
    "SU2 SU3 SU4 SU5 SO2 SO3 SO4 SO5 SO6 SO8 SP2 SP3 SP4 CP1 CP2 CP3 U1 O3 O4 O6 O8 P1 P2 P3 P4 C2 "
    "C3 C4 C6 S2 S3 S4 S6 B1 B2 B3 C11 C12 C15 C14 C16 C44 V2 K2 K3 K4 W3 Y3 U2 U3 N4 P5 B4 S1 K1 "
    "H1 H2 V1 V3 I1 I2 I3 Y1 BK3 BC8 ST12 B20 C40 C32 C49 C54".split())
_CAPS_FORMULAS = frozenset({"BN"})
# words after a formula that make it a structural unit, not a compound (rule 7)
_UNIT_WORDS = frozenset(
    "plane planes octahedra octahedron octahedral tetrahedra tetrahedron tetrahedral chain chains "
    "ladder ladders ion ions anion anions cation cations cluster clusters sublattice sublattices "
    "plaquette plaquettes dimer dimers trimer trimers tetramer tetramers pyramid pyramids "
    "bipyramid bipyramids polyhedra polyhedron group groups unit units ligand ligands radical "
    "radicals moiety moieties cage cages square squares triangle triangles complex complexes "
    # a structure type, not the compound ("PbO-type FeSe", "NaCl-like", "ThCr2Si2-structure")
    "type like structure structured".split())
# layer units that also name families ("BiS2-based", "CuO2 layers", "FeAs superconductors")
_FRAGMENTS = frozenset("CuO2 BiS2 BiSe2 FeAs FeP CoO2 NiO2 FeSe2 MnO2 RuO2 IrO2 CuO".split())
_FAMILY_WORDS = frozenset(
    "based layer layers layered family families type superconductor superconductors compound "
    "compounds system systems material materials slab slabs".split())

_GREEK = {
    "delta": "δ", "alpha": "α", "beta": "β", "gamma": "γ", "kappa": "κ", "epsilon": "ε",
    "varepsilon": "ε", "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "pi": "π", "zeta": "ζ",
}
_FONT_CMDS = re.compile(
    r"\\(?:mathrm|rm|textrm|text|mathbf|textbf|bf|it|textit|mathit|emph|em|ce|mbox|boldsymbol|"
    r"boldmath|ensuremath|mathsf|textsf|textup|mathcal|cal|mathbb|operatorname)(?![A-Za-z])\s*")
_TEXTSUB = re.compile(r"\\textsubscript\s*")
_TEXTSUP = re.compile(r"\\textsuperscript\s*")
_FRAC = re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SUP = re.compile(r"\^\s*(?:\{[^{}]*\}|\\[A-Za-z]+|.)")
_ISOTOPE = re.compile(r"\^\s*(?:\{\s*\d+\s*\}|\d)\$*(?=[A-Z])")
_CHARGE = re.compile(r"\^\s*(?:\{\s*\d*\s*[+\-]\s*\d*\s*\}|[+\-])")
# counts in brackets: "O(7-x)", "O{6+y}", "MgB(2)"
_PAREN_COUNT = re.compile(r"(?<=[A-Za-z])[({](\d+(?:\.\d+)?\s*[-+±]\s*[xyzδ]|\d{1,2})[)}]")
_SUB_BRACED = re.compile(r"_\s*\{([^{}]*)\}")
_SUB_CHAR = re.compile(r"_\s*(\\?[A-Za-z0-9δ+\-])")
_CMD = re.compile(r"\\([A-Za-z]+)")

# word breaks: spaces and punctuation, a slash not between digits, a hyphen not inside a count
_SPLIT = re.compile(
    r"[\s,;:!?\"]+|(?<!\d)/|/(?!\d)|[-–—−](?![\dxyzδ]*[xyzδ](?![a-z]))|(?<!\d)[-–—−]")


def normalize_latex(text: str) -> str:
    """The title with its LaTeX read into plain formula text ("NiCl$_2$" -> "NiCl2")."""
    if "$" not in text and "\\" not in text and "_" not in text and "^" not in text:
        return text
    s = _FRAC.sub(r"\1/\2", text)
    s = _TEXTSUB.sub("_", s)
    s = _TEXTSUP.sub("^", s)
    s = _FONT_CMDS.sub("", s)
    s = re.sub(r"\\(?:cdot|bullet|centerdot)(?![A-Za-z])\s*", "·", s)
    s = re.sub(r"\\pm(?![A-Za-z])\s*", "±", s)
    s = _CMD.sub(lambda m: _GREEK.get(m.group(1), " "), s)
    s = _ISOTOPE.sub("", s)  # "Cu$_2$$^{114}$Cd" -> "Cu2Cd"
    s = _CHARGE.sub("+", s)  # "NH$_4^+$" -> "NH4+": an ion (rule 4)
    s = _SUP.sub(" ", s)
    for _ in range(2):  # braces around braces ("_{\mathrm{2}}" -> "_{{2}}")
        s = re.sub(r"\{\s*(\{[^{}]*\})\s*\}", r"\1", s)
    for _ in range(2):  # a subscript holding another one
        s = _SUB_BRACED.sub(lambda m: re.sub(r"[\s{}]", "", m.group(1)), s)
    s = _SUB_CHAR.sub(r"\1", s)
    s = s.replace("$", "").replace("{", "").replace("}", "").replace("\\", " ")
    return s


# ---------------------------------------------------------------------- parsing one word
_COUNT = re.compile(
    r"(?P<num>\d+(?:\.\d+)?(?:/\d+)?)?"
    r"(?P<var>(?:[-+±]?(?:\d+(?:\.\d+)?(?:/\d+)?)?[xyzδ])+)?")
_ELEMENT = re.compile(r"[A-Z][a-z]?")


class _Fail(Exception):
    pass


def _count(word: str, i: int) -> tuple[Fraction | None, int]:
    """(count, next index) at word[i]; None when no count is written (1 is implied)."""
    m = _COUNT.match(word, i)
    num, var = m.group("num"), m.group("var")
    if not num and not var:
        return None, i
    if var and (not num or var[0] not in "-+±"):
        return Fraction(0), m.end()  # "x", "2x", "δ": vanishes at x = 0
    value = Fraction(num)  # "1-x", "7-δ", "6+x": the variable is set to 0
    if value == 0 or value > _MAX_COUNT or value.denominator != 1:  # "Bi0.5", "Mg1/3": a mixture
        raise _Fail
    return value, m.end()


def _group(word: str, i: int, close: str) -> tuple[dict[str, Fraction], int]:
    counts: dict[str, Fraction] = {}
    n = len(word)
    while i < n and word[i] != close:
        c = word[i]
        if c in "([":
            inner, i = _group(word, i + 1, ")" if c == "(" else "]")
            if i >= n or not inner:
                raise _Fail
            i += 1
            k, i = _count(word, i)
            k = Fraction(1) if k is None else k
            for el, v in inner.items():
                counts[el] = counts.get(el, 0) + v * k
        elif c == "·":
            k, i = _count(word, i + 1)
            k = Fraction(1) if k is None else k
            inner, i = _group(word, i, close)
            if not inner:
                raise _Fail
            for el, v in inner.items():
                counts[el] = counts.get(el, 0) + v * k
            return counts, i
        else:
            m = _ELEMENT.match(word, i)
            if not m or m.group() not in _SYMBOLS:
                raise _Fail
            k, i = _count(word, m.end())
            el = m.group()
            counts[el] = counts.get(el, 0) + (Fraction(1) if k is None else k)
    if close and i >= n:
        raise _Fail
    return counts, i


def parse_formula(word: str) -> dict[str, Fraction] | None:
    """Element -> count of a whole word read as a formula (variables at 0), or None."""
    try:
        counts, i = _group(word, 0, "")
    except _Fail:
        return None
    if i != len(word) or not counts:
        return None
    return counts


@lru_cache(maxsize=200_000)
def _reduced(counts: tuple[tuple[str, int], ...]) -> str:
    from pymatgen.core import Composition

    with warnings.catch_warnings():  # "No Pauling electronegativity for He" when ordering
        warnings.simplefilter("ignore")
        return Composition(dict(counts)).reduced_formula


# ---------------------------------------------------------------------- one word -> formula
_MILLER = re.compile(r"\((?:[\d\s\-¯]|bar){3,}\)$|\[(?:[\d\s\-¯]|bar){3,}\]$")
_OXIDATION = re.compile(r"\((?:I{1,3}|IV|V|VI{1,3}|0|[1-8][+-]|[+-][1-8]?)\)$")
_STRIP = "\"'`.,;:!?"


def _strip_word(w: str) -> str:
    for _ in range(3):
        w = w.strip(_STRIP)
        if w.endswith("'s"):
            w = w[:-2]
        w = _MILLER.sub("", w)
        w = _OXIDATION.sub("", w)
        while len(w) > 1 and w[0] in "([" and _matching(w, 0) == len(w) - 1:
            w = w[1:-1]
        # an unbalanced bracket at an end ("(in SrTiO3)" split into "(in", "SrTiO3)")
        if w.endswith((")", "]")) and w.count("(") + w.count("[") < w.count(")") + w.count("]"):
            w = w[:-1]
        if w.startswith(("(", "[")) and w.count("(") + w.count("[") > w.count(")") + w.count("]"):
            w = w[1:]
    return w


def _matching(w: str, i: int) -> int:
    depth = 0
    for j in range(i, len(w)):
        if w[j] in "([":
            depth += 1
        elif w[j] in ")]":
            depth -= 1
            if depth == 0:
                return j
    return -1


# the same symbol twice in a row, one of them without a count: "V2VI3", "PNN" (not "BiMn3Mn4O12")
_ADJACENT_REPEAT = re.compile(r"([A-Z][a-z]?)(?:(?![a-z\d])\1(?![a-z])|\d+\1(?![a-z\d]))")
_BARE_GROUP = re.compile(r"[(\[][A-Z][a-z]?[)\]](?![\d.xyzδ])")  # "Ga(Mn)As", "TiO2(B)"
_EXPLICIT = re.compile(r"([A-Z][a-z]?)(\d*)")


def _digit_free_ok(els: list[str]) -> bool:
    """Rule 6: may a word of symbols without counts name a compound?"""
    s = set(els)
    if s & _NOT_IN_NAMES or s <= _ALKALINE or len(s) >= 5:
        return False
    if len(s) >= 3:
        if (s & _III and s & _V) or (s & _II and s & _VI):  # "InGaAs", "GaMnAs", "CdMnTe", "ZnCoO"
            return False
        if els[-1] == "O" and not s & _PNICTOGENS:  # "YBaCuO", "LaNiO", "KNbO" (counts lost)
            return False
        if not s & _NONMETALS and len(s & _TM) >= 2:  # "GdFeCo", "AlPdMn", "CrCoNi"
            return False
    return True


@lru_cache(maxsize=200_000)
def _word_formula(w: str) -> str | None:
    """The reduced formula a (stripped) word names, or None (rules 3-6)."""
    if len(w) < 2 or not ("A" <= w[0] <= "Z" or w[0] in "(["):
        return None
    if w[-1] in "+-±" or "*" in w or w in _ALLOY_SHORTHANDS:
        return None
    has_digit = any(c.isdigit() for c in w)
    letters = [c for c in w if c.isalpha() and c not in _VARS]
    if w[-1] == "s" and not any(c.islower() for c in letters[:-1]):  # "VCSOs", "CNTs", "SWNTs"
        return None
    if not any(c.islower() for c in letters):  # rule 5: all capitals, one-letter symbols
        if not has_digit:
            if w not in _CAPS_FORMULAS:
                return None
        elif w in _CAPS_LABELS:
            return None
    counts = parse_formula(w)
    if counts is None or len(counts) < 2:
        return None
    if _BARE_GROUP.search(w) or (_ADJACENT_REPEAT.search(w) and "COO" not in w):
        return None
    if not has_digit and not _digit_free_ok([m.group(1) for m in _EXPLICIT.finditer(w)]):
        return None
    ints = []
    for el, v in counts.items():
        if v <= 0 or v.denominator != 1 or v > _MAX_COUNT * 10:
            return None
        ints.append((el, int(v)))
    if has_digit and "(" not in w and "[" not in w:  # "Ni81Fe19", "Fe78Si9B13": atomic per cent
        written = _EXPLICIT.findall(w)
        if all(n for _, n in written) and sum(int(n) for _, n in written) == 100:
            return None
    return _reduced(tuple(sorted(ints)))


_HYDRATE = re.compile(r"\d{1,2}H2O[.,;:)]*$")
_ACRONYM_PREFIX = re.compile(r"\b([A-Z]{2,})-(?=[A-Z(\[])")  # "IPA-CuCl3": part of a name


def _words(title: str) -> list[str]:
    s = normalize_latex(title)
    s = _ACRONYM_PREFIX.sub(
        lambda m: m.group() if m.group(1) in _CAPS_FORMULAS else m.group(1) + "~", s)
    s = _PAREN_COUNT.sub(lambda m: re.sub(r"\s", "", m.group(1)), s)
    return [w for w in _SPLIT.split(s) if w]


def formulas_in_title(title: str) -> list[str]:
    """The reduced formulas of the compounds a title names, in order, without repeats."""
    words = _words(title)
    out: list[str] = []
    skip = False
    for i, raw in enumerate(words):
        if skip:
            skip = False
            continue
        w = _strip_word(raw)
        if not w:
            continue
        nxt = words[i + 1] if i + 1 < len(words) else ""
        f = None
        if _HYDRATE.match(nxt) and raw == w:  # "Cu3V2O7(OH)2 2H2O"
            f = _word_formula(w + "·" + _strip_word(nxt))
            if f is not None:
                skip = True
                nxt = words[i + 2] if i + 2 < len(words) else ""
        elif nxt[:1].isdigit() and not w[-1].isdigit() and raw == w:
            # counts written apart: "PbI 2", "KNbO 3", "YBa 2Cu3O7"
            f = _word_formula(w + _strip_word(nxt))
            if f is not None:
                skip = True
                nxt = words[i + 2] if i + 2 < len(words) else ""
        if f is None:
            f = _word_formula(w)
        if f is None or f in out:
            continue
        nxt = nxt.strip(_STRIP).lower()
        if nxt in _UNIT_WORDS or (nxt in _FAMILY_WORDS and w in _FRAGMENTS):
            continue  # rule 7
        out.append(f)
    return out


def join_titles(titles: Iterable[tuple[str, str]],
                known_formulas: set[str]) -> dict[str, list[str]]:
    """{reduced formula: [title ids]} for the formulas of ``known_formulas`` the titles name.

    Ids keep the order of ``titles``; an id appears once per formula.
    """
    out: dict[str, list[str]] = {}
    for title_id, title in titles:
        for f in formulas_in_title(title):
            if f in known_formulas:
                ids = out.setdefault(f, [])
                if not ids or ids[-1] != title_id:
                    ids.append(title_id)
    return out
