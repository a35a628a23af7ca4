"""Mask chemical formulas and element names in a text: ``mask_formulas(text) -> text``.

Generated captions (MP-40) name the formula of their structure ("Tetragonal Dy7In(CoGe3)4 ..."),
so a formula-string baseline retrieves the right structure almost always (Recall@10 about 0.99).
Masking the formula measures what the model learned from the structure instead. The function is
fixed (no options that change what is masked) so numbers computed with it are comparable.

What is replaced by ``"material"`` (HTML sub/superscript tags are removed first:
"W<sub>1</sub>O<sub>3</sub>" -> "W1O3"):

1. Element names, any case, singular or plural: "oxygen", "Iron", "STRONTIUM", "aluminium" /
   "aluminum", "sulphur" / "sulfur", "caesium" / "cesium". "lead" only when not followed by "to"
   ("leads to" / "lead to" are English).
2. Formula tokens, parsed against the 118 element symbols with counts (``2``, ``0.5``, ``1-x``,
   ``x``, ``δ``), groups ``(...)`` / ``[...]`` / ``{...}`` with optional commas for mixed sites
   (``Ca2(Al,Fe)[Si3AlO10](OH)2``), hydrate dots (``CuSO4·5H2O``) and a trailing charge
   (``Fe2+``). A token is a formula when it has a digit or at least two element symbols:
   ``SrTiO3``, ``NaCl``, ``Cr3``, ``Li2Fe(SO4)2``. Roman numerals (``II``, ``IV``) and all-capital
   acronyms that happen to spell symbols (``BCC``, ``FCC``, ``HCP``, ``CIF``, ``PBE`` ...) are not.
3. Runs of formula-like tokens separated by spaces, written by generators as compositions
   ("C S Zr2", "Cl2 Co H2 O", "Ca O3 Se") become ONE "material" when one token is a formula by
   rule 2, or when they are >= 2 bare symbols none of which is an English word.
   In a list of three or more ("K, Zn, and As") with a formula or a two-letter symbol, every bare
   symbol is masked.
4. A bare symbol (no digit) alone: a two-letter symbol ("Zr", "Co") unless it is also an English
   word ("In", "As", "At", "Be", "He", "No", "Am", "Pa", "Mt"; "I" too);
   a one-letter symbol ("C", "S", "I") only before a chemical hyphen suffix ("C-rich",
   "N-doped", "O-deficient"), after an allotrope word ("alpha P", "β-B"), or in an element-element
   bond, contact or system ("C-C bonds", "O…O contacts", "Fe-O system", "K/Cu/Th/S").
   "S-type", "Type B", "I" and "A" as words stay. In a space-separated pair ("In SrTiO3") a
   leading English symbol stays, except "I" ("I Te2" is iodine).

Word boundaries are respected: "Cat", "Bond", "Structure" are never split into symbols.
"""
from __future__ import annotations

import re

__all__ = ["mask_formulas", "ELEMENT_SYMBOLS", "ELEMENT_NAMES", "MASK"]

MASK = "material"

ELEMENT_SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br "
    "Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho "
    "Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es "
    "Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og D"
).split()

ELEMENT_NAMES = (
    "hydrogen helium lithium beryllium boron carbon nitrogen oxygen fluorine neon sodium magnesium "
    "aluminium aluminum silicon phosphorus sulfur sulphur chlorine argon potassium calcium scandium "
    "titanium vanadium chromium manganese iron cobalt nickel copper zinc gallium germanium arsenic "
    "selenium bromine krypton rubidium strontium yttrium zirconium niobium molybdenum technetium "
    "ruthenium rhodium palladium silver cadmium indium tin antimony tellurium iodine xenon caesium "
    "cesium barium lanthanum cerium praseodymium neodymium promethium samarium europium gadolinium "
    "terbium dysprosium holmium erbium thulium ytterbium lutetium hafnium tantalum tungsten rhenium "
    "osmium iridium platinum gold mercury thallium lead bismuth polonium astatine radon francium "
    "radium actinium thorium protactinium uranium neptunium plutonium americium curium berkelium "
    "californium einsteinium fermium mendelevium nobelium lawrencium rutherfordium dubnium "
    "seaborgium bohrium hassium meitnerium darmstadtium roentgenium copernicium nihonium flerovium "
    "moscovium livermorium tennessine oganesson deuterium"
).split()

# bare symbols that are also English words (never masked on their own)
_ENGLISH = {"I", "In", "As", "At", "Be", "He", "No", "Am", "Pa", "Mt"}
# all-capital acronyms that spell element symbols
_ACRONYMS = {
    "BCC", "FCC", "HCP", "CIF", "PBE", "BCS", "CPU", "SCF", "NC", "ON", "IN", "IS", "IF", "OF", "AS",
    "AT", "BE", "HE", "NO", "US", "UK", "UV", "PC", "PS", "PI", "CV", "HIV", "OK", "SI", "SNS", "CNN",
    "GNN", "NN", "NNS", "CCP",
}
_CHEM_SUFFIX = (
    r"rich|poor|doped|based|bearing|substituted|containing|free|deficient|deficiency|excess|"
    r"dominant|dominated|centered|centred|site|sites|bonded|coordinated|terminated|vacancy|"
    r"vacancies|ion|ions|atom|atoms|cation|cations|anion|anions|content|end-?member|stabilized|"
    r"stabilised|intercalated|filled|alloyed|modified|incorporated|metal|sublattice|layers?"
)
_BOND_WORDS = r"bonds?|bonding|contacts?|distances?|lengths?|system|systems|alloys?|binary|ternary|pairs?|chains?"

_EL = "(?:" + "|".join(sorted(ELEMENT_SYMBOLS, key=len, reverse=True)) + ")"
_SUB = "₀₁₂₃₄₅₆₇₈₉"
_NUM = rf"(?:[\d{_SUB}]+(?:\.\d+)?(?:[-+−][xyzδ])?|[xyzδ](?![a-z]))"
_ATOM = rf"{_EL}{_NUM}?(?:\d?[+−](?![A-Za-z0-9]))?"
_G1 = rf"(?:{_ATOM})(?:,\s?{_ATOM}|{_ATOM})*"  # inside an innermost group: "Al,Fe", "OH", "SO4"
_GROUP1 = rf"(?:\({_G1}\)|\[{_G1}\]|\{{{_G1}\}}){_NUM}?"
_G2 = rf"(?:{_ATOM}|{_GROUP1})(?:,\s?(?:{_ATOM}|{_GROUP1})|{_ATOM}|{_GROUP1})*"
_GROUP2 = rf"(?:\({_G2}\)|\[{_G2}\]|\{{{_G2}\}}){_NUM}?"
_UNIT = rf"(?:{_ATOM}|{_GROUP2})"
_BODY = rf"{_UNIT}+(?:[·•∙*][\dn]*{_UNIT}+)*"
_CHARGE = r"(?:\d?[+−](?![\w])|[⁰¹²³⁴⁵⁶⁷⁸⁹]*[⁺⁻])?"
# a formula-like token, not glued to letters or digits on either side
_TOKEN = rf"(?<![\w)\]]){_BODY}{_CHARGE}(?![a-z0-9\d{_SUB}⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻])"
_TOKEN_RE = re.compile(_TOKEN)
_ATOM_RE = re.compile(_EL)
_ROMAN = re.compile(r"[IVX]+")

_LEAD = r"lead(?!s?\s+to\b)"
_NAMES_RE = re.compile(
    r"\b(?:(?:" + "|".join(sorted((n for n in ELEMENT_NAMES if n != "lead"), key=len, reverse=True))
    + r")s?|" + _LEAD + rf")\b(?:\s*\(\s*(?-i:{_EL})\s*\))?",  # "thallium (Tl)" -> one mask
    re.IGNORECASE,
)
# a bare one-letter symbol after an allotrope / state word: "alpha P", "elemental S", "β-B"
_ALLOTROPE_RE = re.compile(
    r"(?:\b(?:alpha|beta|gamma|delta|epsilon|elemental|pure)|[αβγδεω])[\s-]$", re.IGNORECASE)
_HTML_SUB_RE = re.compile(r"</?su[bp]>", re.IGNORECASE)
_SUFFIX_RE = re.compile(rf"^[-‐–](?:{_CHEM_SUFFIX})\b", re.IGNORECASE)
_BOND_RE = re.compile(rf"^\s*(?:{_BOND_WORDS})\b", re.IGNORECASE)


def _kind(tok: str) -> str:
    """'strong' (certainly a formula), 'weak2' (bare two-letter symbol), 'weak1' (bare one-letter
    symbol) or 'no' (an English word / acronym / roman numeral)."""
    if tok in _ACRONYMS or (len(tok) >= 2 and _ROMAN.fullmatch(tok)):
        return "no"
    if any(ch.isdigit() or ch in _SUB or ch in "⁺⁻" for ch in tok):
        return "strong"
    core = tok.rstrip("+−")
    if core.startswith("(") and core.endswith(")") and _ATOM_RE.fullmatch(core[1:-1]):
        core = tok = core[1:-1]  # "(Np)" after a name; "(C)" as a list label stays (weak1)
    n_atoms = len(_ATOM_RE.findall(core))
    if n_atoms >= 2:
        if core.isupper() and core.isalpha() and len(core) > 3:
            return "no"  # long all-capital words (ACRONYMS) are not formulas without digits
        return "strong"
    if n_atoms == 1 and _ATOM_RE.fullmatch(core) is None:
        return "no"  # a symbol plus a variable letter: "By", "Ox"
    if tok in _ENGLISH:
        return "eng"
    return "weak2" if len(core) == 2 else "weak1"


def _mask_tokens(text: str) -> str:
    matches = list(_TOKEN_RE.finditer(text))
    if not matches:
        return text
    # group matches into runs separated by single spaces ("C S Zr2") or list separators
    # ("K, Zn, and As"); a list run is split into its space-separated parts
    runs: list[list[list[re.Match]]] = []
    for m in matches:
        gap = text[runs[-1][-1][-1].end():m.start()] if runs else None
        if gap == " ":
            runs[-1][-1].append(m)
        elif gap is not None and _LIST_GAP.fullmatch(gap):
            runs[-1].append([m])
        else:
            runs.append([[m]])
    spans: list[tuple[int, int]] = []
    for parts in runs:
        covered: list[tuple[int, int]] = []
        for part in parts:
            kinds = [_kind(m.group(0)) for m in part]
            # "no" tokens (acronyms, roman numerals) split a run and are never masked
            sub: list[tuple[re.Match, str]] = []
            for m, k in list(zip(part, kinds)) + [(None, "no")]:
                if k != "no":
                    sub.append((m, k))
                    continue
                covered.extend(_run_spans(text, sub))
                sub = []
        tokens = [(m, _kind(m.group(0))) for part in parts for m in part]
        kinds_all = [k for _, k in tokens]
        if len(parts) >= 3 and "no" not in kinds_all and ("strong" in kinds_all or "weak2" in kinds_all):
            # a list of three or more with a certain formula: its bare symbols are elements too
            for m, k in tokens:
                if k in ("weak1", "eng") and not any(a <= m.start() < b for a, b in covered):
                    covered.append(m.span())
        spans.extend(sorted(covered))
    out = []
    pos = 0
    for a, b in spans:
        out.append(text[pos:a])
        out.append(MASK)
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _run_spans(text: str, run: list[tuple[re.Match, str]]) -> list[tuple[int, int]]:
    """Spans to mask in one run of space-separated formula-like tokens (no "no" tokens)."""
    if not run:
        return []
    kinds = [k for _, k in run]
    if len(run) >= 2:
        if "strong" in kinds:
            if kinds[0] == "eng" and run[0][0].group(0) != "I" and len(run) == 2:
                # "In SrTiO3": "In" is English here (but "I Te2" is iodine)
                return [run[1][0].span()]
            return [(run[0][0].start(), run[-1][0].end())]
        if "eng" not in kinds or ("weak2" in kinds and len(run) >= 3):  # "Ca Se", "K P", "Be Li N"
            return [(run[0][0].start(), run[-1][0].end())]
    spans = []
    for m, k in run:
        if k in ("strong", "weak2"):
            spans.append(m.span())
        elif k == "weak1" and (_SUFFIX_RE.match(text[m.end():])
                               or _ALLOTROPE_RE.search(text[max(0, m.start() - 12):m.start()])):
            spans.append(m.span())
    return spans


_LIST_GAP = re.compile(r",\s|,?\s(?:and|or)\s")
_PAIR_SEP = r"(?:[-‐–—/…]|···|\.\.\.)"
_PAIR_RE = re.compile(rf"(?<![\w)\]])({_EL})((?:{_PAIR_SEP}{_EL})+)(?![\w])")


def _mask_pairs(text: str) -> str:
    """Element-element bonds and systems: "C-C bonds", "Fe-O system", "Ti–O"."""
    def repl(m: re.Match) -> str:
        symbols = [m.group(1)] + re.split(_PAIR_SEP, m.group(2))[1:]
        two_letter = any(len(s) == 2 and s not in _ENGLISH for s in symbols)
        if two_letter or _BOND_RE.match(text[m.end():]):
            return "-".join([MASK] * len(symbols))
        return m.group(0)

    return _PAIR_RE.sub(repl, text)


def mask_formulas(text: str) -> str:
    """Replace chemical formulas and element names in ``text`` with "material" (see module doc)."""
    if not text:
        return text
    text = _HTML_SUB_RE.sub("", text)
    text = _NAMES_RE.sub(MASK, text)
    text = _mask_pairs(text)
    text = _mask_tokens(text)
    return text
