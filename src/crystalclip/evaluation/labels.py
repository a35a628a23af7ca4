"""Labels for zero-shot evaluation: CLaSP's keyword protocol on titles, and property labels (MP-40).

Keyword protocol: a structure is positive for a keyword when its publication title contains the
word or a variant (case-insensitive, whole words: "magnetite" is a mineral, not "magnetic"). The
variants were chosen by reading the AMCSD titles (several are French or German: "magnétique",
"spinelle"). CLaSP's own set was ferromagnetic, ferroelectric, semiconductor, electroluminescence,
thermoelectric, superconductor; the last three are too rare in AMCSD (electroluminescence 0,
thermoelectric 2), so mineralogy keywords are added.
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

__all__ = ["KEYWORDS", "PROMPTS", "PORE_CLASSES", "keyword_labels", "property_labels", "mof_labels",
           "compile_keywords"]

# keyword -> regexes (any match = positive); matched case-insensitively
KEYWORDS: dict[str, tuple[str, ...]] = {
    "magnetic": (
        r"\b(?:anti|ferro|ferri|heli|para|dia|electro)?(?:ferro|ferri)?magnet(?:ic|ics|ism|isms|s|"
        r"ically|ization|isation|izations|ostriction|ostrictive|oelectric|oresistance|oresistive)?\b",
        r"\bmagn[eé]ti(?:que|ques|sch|sche|schen|scher|smus)\b",
        r"\bmagnetism\b",
        r"\bspin[- ](?:glass|ordering|structure|polarized|polarised)\b",
    ),
    "high-pressure": (
        r"\b(?:high|elevated|ultra-?high|very high|megabar|upper[- ]mantle|lower[- ]mantle)[- ]pressures?\b",
        r"\bunder (?:high )?pressure\b",
        r"\bat pressures?\b",
        r"\bpressures? up to\b",
        r"\bpressure[- ](?:induced|dependence|dependent|behaviou?r|quench(?:ed|able))\b",
        r"\b(?:effects?|influence) of pressure\b",
        r"\bwith pressure\b",
        r"\b\d+(?:\.\d+)? ?(?:GPa|kbars?)\b", r"\bGPa\b", r"\bkbars?\b",
        r"\bcompress(?:ion|ed|ibility|ibilities|ional)\b",
        r"\bdiamond[- ]anvil\b",
        r"\bequations? of state\b",
        r"\bhochdruck\w*",
    ),
    "spinel": (r"\b\w*spinel(?:s|le|les|li|loid|loids)?\b",),
    "perovskite": (r"\b\w*perovskit(?:e|es|a|en|ique|iques)\b",),
    "garnet": (r"\b\w*garnets?\b", r"\bgrenats?\b", r"\bgranate?\b"),
    "superconductor": (r"\bsuper-?conduct(?:or|ors|ing|ivity|ive|ion)\b", r"\bsupraconduct\w*"),
    # added for AMCSD (>= 20 positives each); the first two are from CLaSP's set
    "ferroelectric": (r"\b(?:anti)?ferroelectric(?:s|ity)?\b", r"\bferro[ée]lectrique\w*",
                      r"\bmultiferroics?\b"),
    "semiconductor": (r"\bsemi-?conduct(?:or|ors|ing|ive|ivity)\b",),
    "hydrous": (r"\bhydrous\b", r"\b(?:mono|di|tri|tetra|penta|hexa|hepta|octa|nona|deca|sesqui|hemi)?"
                r"hydrat(?:e|es|ed|ion)\b", r"\bwater\b", r"\bhydroxyl\w*", r"\bhydrogen[- ]bond\w*",
                r"\bhydrogarnets?\b", r"\b(?:OH|H2O)[- ]bearing\b"),
    "pyroxene": (r"\b\w*pyroxen(?:e|es|oid|oids)\b",),
}

# a natural-language prompt per keyword for the text tower (the label's name reads poorly alone)
PROMPTS: dict[str, str] = {
    "magnetic": "magnetic structure",
    "high-pressure": "crystal structure at high pressure",
    "spinel": "spinel",
    "perovskite": "perovskite",
    "garnet": "garnet",
    "superconductor": "superconductor",
    "ferroelectric": "ferroelectric",
    "semiconductor": "semiconductor",
    "hydrous": "hydrous mineral containing water",
    "pyroxene": "pyroxene",
    "metallic": "metal",
    "stable": "stable material",
}


def compile_keywords(keywords: Mapping[str, Sequence[str] | str] = KEYWORDS) -> dict[str, re.Pattern]:
    """One case-insensitive pattern per keyword (alternatives joined)."""
    out = {}
    for name, pats in keywords.items():
        if isinstance(pats, str):
            pats = (pats,)
        out[name] = re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE)
    return out


def keyword_labels(titles: Sequence[str | None], keywords: Mapping[str, Sequence[str] | str] = KEYWORDS
                   ) -> dict[str, np.ndarray]:
    """``{keyword: bool array (len(titles),)}``: True when the title matches one of the variants.

    A missing or empty title is negative (the caller may exclude such structures with a mask).
    """
    compiled = compile_keywords(keywords)
    texts = ["" if t is None or (isinstance(t, float) and np.isnan(t)) else str(t) for t in titles]
    return {name: np.fromiter((bool(p.search(t)) for t in texts), dtype=bool, count=len(texts))
            for name, p in compiled.items()}


def property_labels(table, crystal_system: bool = True, min_count: int = 1
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Binary property labels of an MP-40-style table -> ``(labels, valid)``.

    ``labels["metallic"]`` = (metallic == "metallic"), ``labels["stable"]`` = (stability ==
    "stable"), and with ``crystal_system`` one-vs-rest labels ``"crystal_system=cubic"`` etc.
    ``valid[name]`` is False where the source value is missing (NaN/None/""), so
    ``zero_shot_metrics(..., labels, valid=valid)`` excludes those rows. Columns absent from the
    table give no label. Crystal systems with fewer than ``min_count`` structures are skipped.
    """
    import pandas as pd

    labels: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}

    def norm(col):
        s = table[col].astype("string").str.strip().str.lower()
        return s, (~s.isna() & (s != "")).to_numpy(dtype=bool)

    for name, col, positive in (("metallic", "metallic", "metallic"), ("stable", "stability", "stable")):
        if col in table.columns:
            s, ok = norm(col)
            labels[name] = (s == positive).fillna(False).to_numpy(dtype=bool) & ok
            valid[name] = ok
    if crystal_system and "crystal_system" in table.columns:
        s, ok = norm("crystal_system")
        for value, count in pd.Series(s[ok]).value_counts().sort_index().items():
            if count >= min_count:
                name = f"crystal_system={value}"
                labels[name] = (s == value).fillna(False).to_numpy(dtype=bool) & ok
                valid[name] = ok
    return labels, valid


# LCD (largest cavity diameter, Å) classes: [low, high)
PORE_CLASSES = {"small": (0.0, 6.0), "medium": (6.0, 12.0), "large": (12.0, float("inf"))}


def mof_labels(table, min_metal_count: int = 30
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, str]]:
    """CLAMP-style CoRE MOF labels of a table -> ``(labels, valid, prompts)``, names prefixed "mof:".

    - ``mof:open_metal_sites`` = Has_OMS;
    - ``mof:<Metal>`` for each metal in All_Metals ("Zn,Na") with >= ``min_metal_count`` positives
      in the table (rarer metals cannot give a stable ROC-AUC);
    - ``mof:pore_small|medium|large`` from LCD (``PORE_CLASSES``).
    ``valid`` is False where the source value is missing (e.g. rows of other sources), and
    ``prompts[name]`` is the text the label is scored against.
    """
    import pandas as pd

    labels: dict[str, np.ndarray] = {}
    valid: dict[str, np.ndarray] = {}
    prompts: dict[str, str] = {}
    if "Has_OMS" in table.columns:
        oms = table["Has_OMS"]
        ok = oms.notna().to_numpy(dtype=bool)
        labels["mof:open_metal_sites"] = np.array([bool(v) if o else False for v, o in zip(oms, ok)], dtype=bool)
        valid["mof:open_metal_sites"] = ok
        prompts["mof:open_metal_sites"] = "metal-organic framework with open metal sites"
    if "All_Metals" in table.columns:
        metals = table["All_Metals"].astype("string").str.strip()
        ok = (metals.notna() & (metals != "")).to_numpy(dtype=bool)
        sets = [set(m.strip() for m in str(v).split(",") if m.strip()) if o else set() for v, o in zip(metals, ok)]
        counts = pd.Series([m for s in sets for m in s], dtype=object).value_counts()
        for metal in sorted(counts.index[counts >= min_metal_count]):
            name = f"mof:{metal}"
            labels[name] = np.array([metal in s for s in sets], dtype=bool)
            valid[name] = ok
            prompts[name] = f"{metal} metal-organic framework"
    if "LCD" in table.columns:
        lcd = pd.to_numeric(table["LCD"], errors="coerce").to_numpy(dtype=np.float64)
        ok = ~np.isnan(lcd)
        for size, (low, high) in PORE_CLASSES.items():
            name = f"mof:pore_{size}"
            labels[name] = ok & (lcd >= low) & (lcd < high)
            valid[name] = ok
            prompts[name] = f"metal-organic framework with {size} pores"
    return labels, valid, prompts
