"""Keywords per structure, as CLaSP fine-tunes on: features, functions or applications of the material.

CLaSP (Suzuki et al. 2025) had Llama-3.1-70B write up to 10 keywords from each paper's title and
abstract, dropped generic terms (crystal structure, X-ray diffraction, refinement, ...) and joined
them with ", ". Two back-ends write the same file, ``DATASET/texts/keywords.parquet``:

- ``offline``: KeyBERT-style keyphrases with the frozen MiniLM tower (1-3-word phrases of the
  document ranked by cosine similarity to it, picked with maximal marginal relevance), after the
  materials-property terms of ``PROPERTY_TERMS`` found in the document, which always come first.
- ``llm``: any OpenAI-compatible chat endpoint (vLLM, llama.cpp, Ollama), see ``crystalclip.text.llm``.

Both drop ``GENERIC_TERMS``. Structures sharing a document (one publication, several structures)
are processed once.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from .llm import ChatClient, LLMError, excerpt
from .masking import ELEMENT_SYMBOLS
from .vocabulary import GENERIC_TERMS, PROPERTY_TERMS, STOPWORDS

__all__ = ["GENERIC_TERMS", "PROPERTY_TERMS", "STOPWORDS", "clean_keywords", "is_generic",
           "property_terms", "candidate_phrases", "extract_keywords", "document_text", "llm_keywords", "keyword_messages"]

_PROPERTY_PATTERNS = {k: re.compile("|".join(f"(?:{p})" for p in v), re.IGNORECASE)
                      for k, v in PROPERTY_TERMS.items()}
_GENERIC_WORDS = frozenset(t for t in GENERIC_TERMS if " " not in t)
_GENERIC_TOKENS = [tuple(t.split()) for t in sorted(GENERIC_TERMS, key=lambda t: -len(t.split()))]

_ELEMENT_SET = frozenset(ELEMENT_SYMBOLS)  # the 118 symbols and D, as masking reads them
_ELEMENT = "|".join(sorted(ELEMENT_SYMBOLS, key=len, reverse=True))
# one piece of a formula written with spaces ("Y Ba2 Cu3 O7-d", "Cu(3-x) Pdx Oy")
_FORMULA_PART = re.compile(
    rf"(?:[(\[]?(?:{_ELEMENT})(?:[\d.]*[xyzdn]?(?:[-+][\d.]*[xyzdn]?)?)?(?:,(?:{_ELEMENT}))*[)\]]?[\d.xyzn+-]*)+")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_SIMPLE_FORMULA = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d+)?)?)+")
_QUANTITY = re.compile(r"[\d.,/+-]+[A-Za-z°]{0,3}")  # 25K, 6GPa, 300K, 195Pt
_BREAKER = re.compile(r"[=<>$^\\|@#%&~/]")
_TRAILING = ",;:.!?"
_QUOTES = "\"'`“”‘’«»*"


def _normalize(text: str) -> str:
    return " ".join(text.lower().replace("‐", "-").replace("–", "-").split())


def _strip_generic(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The tokens left when stopwords and generic terms are taken away (anywhere in the phrase)."""
    tokens = tuple(t for t in tokens if t not in STOPWORDS and not _generic_compound(t))
    for generic in _GENERIC_TOKENS:
        n = len(generic)
        i = 0
        while i + n <= len(tokens):
            if tokens[i:i + n] == generic:
                tokens = tokens[:i] + tokens[i + n:]
            else:
                i += 1
    return tokens


def is_generic(keyword: str) -> bool:
    """True when a keyword says nothing about the material: only generic terms and stopwords."""
    tokens = tuple(_normalize(keyword).split())
    return not tokens or not _strip_generic(tokens)


def clean_keywords(keywords: Sequence[str], max_keywords: int = 10) -> list[str]:
    """Trimmed, without generic terms, without case-insensitive repeats, at most max_keywords."""
    out, seen = [], set()
    for k in keywords:
        k = " ".join(str(k).split()).strip(" ,;.")
        if not k or is_generic(k) or k.lower() in seen:
            continue
        seen.add(k.lower())
        out.append(k)
    return out[:max_keywords]


def property_terms(document: str) -> list[str]:
    """The PROPERTY_TERMS found in a document, in order of first appearance."""
    found = []
    for name, pattern in _PROPERTY_PATTERNS.items():
        m = pattern.search(document)
        if m:
            found.append((m.start(), name))
    return [name for _, name in sorted(found)]


# ---------------------------------------------------------------------- candidate phrases
def _token(raw: str) -> tuple[str | None, bool, bool]:
    """(cleaned token or None, phrase break before, phrase break after) of one whitespace-split word."""
    word = raw
    after = word[-1] in _TRAILING
    word = word.rstrip(_TRAILING).strip(_QUOTES)
    before = False
    # brackets that open or close a parenthetical remark, not part of a formula like (Mg,Fe)2SiO4
    while word.startswith(("(", "[")) and word.count("(") + word.count("[") > word.count(")") + word.count("]"):
        word, before = word[1:], True
    while word.endswith((")", "]")) and word.count(")") + word.count("]") > word.count("(") + word.count("["):
        word, after = word[:-1], True
    if word[:1] in "([" and word[-1:] in ")]" and _balanced(word[1:-1]):
        word, before, after = word[1:-1], True, True
    after = after or (word[-1:] in _TRAILING)
    word = word.rstrip(_TRAILING).strip(_QUOTES).rstrip("-")  # "cesium-, thallium- and ..."
    if word[:2].lower() in ("d'", "l'"):
        word = word[2:]
    if (not word or not _balanced(word) or not any(c.isalpha() for c in word) or _BREAKER.search(word)
            or _QUANTITY.fullmatch(word)):
        return None, True, True  # a number, a quantity, a symbol: no keyword spans it
    if len(word) >= 3 and word[0].isupper() and word[1:].isalpha() and word[1:].islower() \
            and not _FORMULA_PART.fullmatch(word):
        word = word.lower()  # "Sodalite" at the start of a title; formulas and acronyms keep their case
    return word, before, after


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += c in "(["
        depth -= c in ")]"
        if depth < 0:
            return False
    return depth == 0


def _segments(document: str) -> list[list[str]]:
    """Runs of tokens not interrupted by punctuation, brackets, numbers or symbols."""
    document = document.translate(_SUBSCRIPTS)  # "CaIn₂" -> "CaIn2", a formula like the others
    if not any(c.islower() for c in document):
        document = document.lower()  # an all-capitals title
    segments: list[list[str]] = []
    for line in document.splitlines():
        current: list[str] = []
        for raw in line.split():
            word, before, after = _token(raw)
            if before and current:
                segments.append(current)
                current = []
            if word is not None:
                current.append(word)
            if after and current:
                segments.append(current)
                current = []
        if current:
            segments.append(current)
    return [_join_formulas(s) for s in segments]


def _join_formulas(tokens: list[str]) -> list[str]:
    """ "Y Ba2 Cu3 O7" -> one token: a formula written with spaces is one candidate, not four."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and _FORMULA_PART.fullmatch(tokens[j]):
            j += 1
        run = tokens[i:j]
        if len(run) >= 2 and (any(c.isdigit() for c in "".join(run)) or set(run) <= _ELEMENT_SET):
            # "In" / "As" starting a title, or after "de", are words; "oxide La Ba2 Cu3 O7" is lanthanum
            while (run and run[0].lower() in STOPWORDS and not any(c.isdigit() for c in run[0])
                   and (not out or out[-1].lower() in STOPWORDS)):
                out.append(run.pop(0))
            if len(run) >= 2:
                out.append(" ".join(run))
            else:
                out.extend(run)
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def _breaks(lows: list[str]) -> list[bool]:
    """Which tokens a phrase may not contain: stopwords and the words of generic terms."""
    out = [t in STOPWORDS or len(t) < 2 or _generic_compound(t) for t in lows]
    words = [t if " " not in t else "" for t in lows]  # a joined formula is never generic
    for generic in _GENERIC_TOKENS:
        n = len(generic)
        for i in range(len(words) - n + 1):
            if tuple(words[i:i + n]) == generic:
                out[i:i + n] = [True] * n
    return out


def _generic_compound(token: str) -> bool:
    """ "neutron-diffraction", "powder-diffraction": a hyphenated word made of generic words."""
    parts = token.split("-")
    return len(parts) > 1 and all(p in _GENERIC_WORDS or p in STOPWORDS for p in parts)


def candidate_phrases(document: str, max_words: int = 3) -> list[str]:
    """Distinct 1-3-word phrases of a document that could be keywords, in order of appearance.

    A phrase stays within a clause and holds no stopword, number or generic term (KeyBERT drops
    stopwords too, but then joins the words around them); formulas, also written with spaces
    ("Y Ba2 Cu3 O7"), and mineral names are words like others.
    """
    seen: dict[str, None] = {}
    formulas: set = set()
    orders: set[frozenset] = set()
    for tokens in _segments(document):
        breaks = _breaks([_normalize(t) for t in tokens])
        run: list[str] = []
        for token, stop in zip(tokens + [""], breaks + [True]):
            formula = not stop and _is_formula(token)
            if not stop and not formula:
                run.append(token)
                continue
            for i in range(len(run)):
                for n in range(1, min(max_words, len(run) - i) + 1):
                    words = frozenset(w.lower() for w in run[i:i + n])
                    if words not in orders:  # "trigonal metastable" = "metastable trigonal"
                        orders.add(words)
                        seen.setdefault(" ".join(run[i:i + n]), None)
            run = []
            if formula and _formula_key(token) not in formulas:  # alone, not "benitoite Ba Ti Si3 O9"
                formulas.add(_formula_key(token))
                seen.setdefault(token, None)
    return list(seen)


def _is_formula(token: str) -> bool:
    """ "Y Ba2 Cu3 O7", "Fe3O4", "CuSe", "MgO" (not "Fe": one element is a word like others)."""
    return " " in token or (bool(_FORMULA_PART.fullmatch(token))
                            and (any(c.isdigit() for c in token) or sum(c.isupper() for c in token) >= 2))


def _formula_key(token: str):
    """The same composition written differently ("Sm2Ga2Co5", "Sm2 Co5 Ga2", "Cu1 Se1" / "CuSe")."""
    text = token.replace(" ", "")
    if not _SIMPLE_FORMULA.fullmatch(text):
        return text
    counts: dict[str, float] = {}
    for element, n in re.findall(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)?", text):
        counts[element] = counts.get(element, 0.0) + float(n or 1)
    return tuple(sorted(counts.items()))


# ---------------------------------------------------------------------- offline extraction
def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _contains(longer: str, shorter: str) -> bool:
    """True when `shorter` is a whole-word part of `longer` ("zinc ferrite" in "zinc ferrite spinel")."""
    return f" {shorter.lower()} " in f" {longer.lower()} "


def _mmr(candidates: list[str], emb: np.ndarray, doc: np.ndarray, chosen: list[np.ndarray], k: int,
         diversity: float, min_similarity: float, exclude: list[str]) -> list[str]:
    """Maximal marginal relevance: similar to the document, unlike what is already picked."""
    relevance = emb @ doc
    picked: list[str] = []
    redundancy = np.full(len(candidates), -1.0, dtype=np.float32)
    for c in chosen:
        redundancy = np.maximum(redundancy, emb @ c)
    alive = relevance >= min_similarity
    for i, c in enumerate(candidates):
        if any(_contains(c, e) or _contains(e, c) for e in exclude):
            alive[i] = False
    while len(picked) < k and alive.any():
        score = (1 - diversity) * relevance - diversity * np.maximum(redundancy, 0.0)
        score[~alive] = -np.inf
        best = int(np.argmax(score))
        picked.append(candidates[best])
        alive[best] = False
        redundancy = np.maximum(redundancy, emb @ emb[best])
        for i in np.nonzero(alive)[0]:
            if _contains(candidates[i], candidates[best]) or _contains(candidates[best], candidates[i]):
                alive[i] = False  # "zinc ferrite" once "zinc ferrite spinel" is in
    return picked


def extract_keywords(documents: Sequence[str], tower, max_keywords: int = 10, *, diversity: float = 0.5,
                     min_similarity: float = 0.3, chunk_size: int = 1024, batch_size: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
    """Keywords of each document: PROPERTY_TERMS it mentions, then keyphrases picked by MMR.

    The tower (``get_text_tower("minilm")``) embeds each document and every distinct candidate phrase
    once, across all documents, ``chunk_size`` documents at a time: that is where the time goes.
    Phrases less similar to the document than ``min_similarity`` are left out, so a short title gets
    fewer keywords. ``progress(done, total)`` is called after each chunk.
    """
    documents = [str(d) for d in documents]
    terms = list(PROPERTY_TERMS)
    term_emb = dict(zip(terms, _unit(tower.encode(terms, batch_size=batch_size).numpy())))
    cache: dict[str, np.ndarray] = {}
    out: list[list[str]] = []
    for start in range(0, len(documents), chunk_size):
        chunk = documents[start:start + chunk_size]
        found = [property_terms(d)[:max_keywords] for d in chunk]
        cands = [_new_words(d, candidate_phrases(d), f) for d, f in zip(chunk, found)]
        new = list(dict.fromkeys(c for cs in cands for c in cs if c not in cache))
        if new:
            cache.update(zip(new, _unit(tower.encode(new, batch_size=batch_size).numpy())))
        docs = _unit(tower.encode(chunk, batch_size=batch_size).numpy())
        for doc, f, cs in zip(docs, found, cands):
            k = max_keywords - len(f)
            picked = []
            if k > 0 and cs:
                emb = np.stack([cache[c] for c in cs])
                picked = _mmr(cs, emb, doc, [term_emb[t] for t in f], k, diversity, min_similarity, f)
            out.append(clean_keywords(f + picked, max_keywords))
        if progress is not None:
            progress(len(out), len(documents))
    return out


def _new_words(document: str, candidates: list[str], terms: list[str]) -> list[str]:
    """Candidates that do not restate a property term found: "superconducting oxide", "pressure" (of
    "high pressure") and "elastic" (of "elastic properties") go; their other words stay candidates."""
    spans = [m.span() for t in terms for m in _PROPERTY_PATTERNS[t].finditer(document)]
    if not spans:
        return candidates
    text = document.translate(_SUBSCRIPTS)  # as candidate_phrases reads it; the same positions
    out = []
    for c in candidates:
        places = [m.span() for m in re.finditer(rf"(?<!\w){re.escape(c)}(?!\w)", text, re.IGNORECASE)]
        if not places or not all(any(a < e and s < b for s, e in spans) for a, b in places):
            out.append(c)
    return out


# ---------------------------------------------------------------------- datasets
def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def document_text(row) -> str:
    """What keywords are written from: title (+ abstract) when there is one, else the structure's texts."""
    texts = row.get("texts")
    texts = [] if texts is None or (isinstance(texts, float) and math.isnan(texts)) else list(texts)
    texts = [t for t in (_text(t) for t in texts) if t]
    parts = [_text(row.get("title")), _text(row.get("abstract"))]
    if any(parts):
        return "\n".join(p for p in parts if p)
    return "\n".join(texts)


# ---------------------------------------------------------------------- an LLM endpoint (CLaSP)
_SYSTEM = "You are a materials scientist who indexes crystallography papers with precise keywords."
_GENERIC_EXAMPLES = ", ".join(t for t in GENERIC_TERMS if t in (
    "crystal structure", "structure", "refinement", "x-ray", "neutron", "powder", "diffraction",
    "single crystal", "crystal chemistry", "synthesis", "new", "study", "determination"))


def keyword_messages(document: str, max_keywords: int = 10) -> list[dict]:
    """CLaSP's request: keywords on features, functions or applications of the material."""
    user = (
        f"Here is what is written about a crystalline material (the title and abstract of a paper on "
        f"its structure, or descriptions of it):\n\n{document}\n\n"
        f"List up to {max_keywords} keywords about the features, functions or applications of the "
        f"material (for example: superconductor, ferroelectric, high-pressure phase, zeolite, "
        f"battery cathode, layered silicate). Leave out generic terms of structure determination "
        f"({_GENERIC_EXAMPLES}, ...). Answer with JSON only, in the form "
        f'{{"keywords": ["keyword 1", "keyword 2"]}}.')
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def llm_keywords(document: str, client: ChatClient, max_keywords: int = 10) -> list[str]:
    """Up to max_keywords keywords of one document from the model, generic terms removed."""
    answer = client.complete_json(keyword_messages(document, max_keywords))
    keywords = answer.get("keywords")
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise LLMError(f'expected {{"keywords": [strings]}}, got {excerpt(json.dumps(answer), 200)}')
    return clean_keywords(keywords, max_keywords)
