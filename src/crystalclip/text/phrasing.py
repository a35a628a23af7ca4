"""Facts -> sentences (``render``): several phrasings of each fact, in full or formula-free form.

With ``seed=None`` one fixed phrasing in a fixed order (the canonical text); with an integer seed
each fact is phrased by one of VARIANTS templates and the sentences are shuffled, deterministically
for a structure and seed. The formula-free form names no formula, element or element symbol ("a
transition-metal cation in octahedral coordination by oxide ions"; space-group symbols that read as
symbols, "Pm-3m", are written "P m-3m"): ``text.masking.mask_formulas`` leaves it unchanged. The
same seed gives the same choices in both forms.
"""
from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from .bonding import MAX_RADIUS
from .chemistry import NUMBER_WORDS, article, join_words
from .facts import Facts, lattice_parameters
from .sites import MAX_KINDS, Environment, Polyhedron

__all__ = ["VARIANTS", "render"]

BOND_SPREAD = 0.05  # Å; bond lengths spread wider than this are given as a range
VARIANTS = 4  # phrasings per fact
_SUBJECTS = ("The compound", "This material", "The crystal", "This structure")
_BRAVAIS = {"aP": "triclinic", "mP": "primitive monoclinic", "mC": "base-centred monoclinic",
            "oP": "primitive orthorhombic", "oC": "base-centred orthorhombic", "oI": "body-centred orthorhombic",
            "oF": "face-centred orthorhombic", "tP": "primitive tetragonal", "tI": "body-centred tetragonal",
            "hP": "hexagonal", "hR": "rhombohedral", "cP": "primitive cubic", "cI": "body-centred cubic",
            "cF": "face-centred cubic"}
_POLYHEDRA = {"octahedral": ("octahedron", "octahedra"), "tetrahedral": ("tetrahedron", "tetrahedra"),
              "cubic": ("cube", "cubes"), "cuboctahedral": ("cuboctahedron", "cuboctahedra"),
              "icosahedral": ("icosahedron", "icosahedra"), "anticuboctahedral": ("anticuboctahedron", "anticuboctahedra"),
              "trigonal prismatic": ("trigonal prism", "trigonal prisms"),
              "square pyramidal": ("square pyramid", "square pyramids"),
              "trigonal bipyramidal": ("trigonal bipyramid", "trigonal bipyramids"),
              "trigonal planar": ("triangle", "triangles"), "square planar": ("square", "squares"),
              "trigonal pyramidal": ("trigonal pyramid", "trigonal pyramids")}


@lru_cache(maxsize=4096)
def _safe(text: str) -> bool:
    """Whether the formula masking leaves ``text`` alone."""
    from .masking import mask_formulas

    return mask_formulas(text) == text


def _free_symbol(symbol: str) -> str:
    """A space-group symbol the masking leaves alone: 'P4/mmm' reads as P4, so 'P 4/mmm'."""
    return symbol if _safe(symbol) else f"{symbol[0]} {symbol[1:]}"


def _lattice_text(lattice: np.ndarray) -> str:
    """'a = b = 3.20 Å, c = 5.12 Å, γ = 120°': equal values said once, right angles left out."""
    lengths, angles = lattice_parameters(lattice)
    parts = _grouped(["a", "b", "c"], [f"{x:.2f}" for x in lengths], " Å")
    shown = [(n, f"{x:.1f}".removesuffix(".0")) for n, x in zip("αβγ", angles) if abs(x - 90.0) > 0.05]
    if shown:
        parts += _grouped([n for n, _ in shown], [v for _, v in shown], "°")
    return ", ".join(parts)


def _grouped(names: list[str], values: list[str], unit: str) -> list[str]:
    groups: dict[str, list[str]] = {}
    for name, value in zip(names, values):
        groups.setdefault(value, []).append(name)
    return [" = ".join(group) + f" = {value}{unit}" for value, group in groups.items()]


# --------------------------------------------------------------------------------------------------
# phrasing


class _Words:
    """Names of things in one form: full (formula, element symbols) or formula-free."""

    def __init__(self, facts: Facts, free: bool):
        self.facts, self.free = facts, free

    def compound(self, v: int, start: bool = True) -> str:
        if not self.free:
            return self.facts.formula
        word = _SUBJECTS[v % len(_SUBJECTS)]
        return word if start else word[0].lower() + word[1:]

    def unit(self, k: int) -> str:
        role = self.facts.kinds[k].role
        return {"anion": "ion", "cation": "cation"}.get(role, "atom") if self.free else "atom"

    def name(self, k: int) -> str:
        kind = self.facts.kinds[k]
        return kind.label if self.free else kind.name

    def subject(self, k: int, v: int) -> str:
        """'Ti is', 'Each Ti atom is', 'The mixed Fe/Mg site is', 'The transition-metal cation is'."""
        kind, name = self.facts.kinds[k], self.name(k)
        if kind.mixed:
            if v == 1:
                return f"Each mixed {name} site is"
            return f"Mixed {name} sites are" if kind.many else f"The mixed {name} site is"
        if kind.partial:
            return f"Each partially occupied {name} site is" if v == 1 else f"Partially occupied {name} sites are"
        if v == 1:
            return f"Each {name} {self.unit(k)} is"
        if v == 2:
            return f"The {name} site{'s are' if kind.many else ' is'}"
        return f"The {name} {self.unit(k)} is" if self.free else f"{name} is"

    def some(self, k: int, count: int) -> str:
        """'4 Sr' / '4 alkaline-earth cations'."""
        if not self.free:
            return f"{count} {self.name(k)}"
        return f"{count} {self.name(k)} {self.unit(k)}{'s' if count != 1 else ''}"

    def by(self, env: Environment, counted: bool) -> str:
        """Who coordinates: 'O' / '6 O atoms' / 'oxide ions' / '4 Sr and 2 Ti'."""
        neighbours = env.neighbours
        if len(neighbours) == 1 and not counted:
            q = neighbours[0][1]
            return f"{self.name(q)} {self.unit(q)}s" if self.free else self.name(q)
        text = join_words([self.some(q, c) for c, q, *_ in neighbours])
        if counted and not self.free:
            text += " atoms" if env.cn != 1 else " atom"
        return text

    def distances(self, k: int, env: Environment, limit: int = 3) -> list[str]:
        """'Ti–O 1.95 Å' (full) or '1.95 Å' / '2.76 Å to the alkaline-earth cations' (free)."""
        out = []
        for _, q, mean, low, high in env.neighbours[:limit]:
            value = f"{mean:.2f} Å" if high - low <= BOND_SPREAD else f"{low:.2f}–{high:.2f} Å"
            if not self.free:
                out.append(f"{self.name(k)}–{self.name(q)} {value}")
            elif len(env.neighbours) == 1:
                out.append(value)
            else:
                out.append(f"{value} to the {self.name(q)} {self.unit(q)}s")
        return out

    def polyhedron(self, p: Polyhedron, plural: bool = True) -> str:
        """'TiO6 octahedra' / 'transition-metal octahedra' / 'phosphate tetrahedra'."""
        noun = _POLYHEDRA.get(p.shape or "", ("polyhedron", "polyhedra"))[1 if plural else 0]
        kind = self.facts.kinds[p.kind]
        if self.free:
            return f"{kind.centre_word or kind.label} {noun}"
        centre, ligand = kind.name, self.facts.kinds[p.ligand].name
        centre = f"({centre})" if "/" in centre else centre
        ligand = f"({ligand})" if "/" in ligand else ligand
        return f"{centre}{ligand}{p.cn} {noun}"


def _environment(words: _Words, k: int, env: Environment, v: int) -> str:
    if env.cn == 0:
        return [f"isolated (no neighbour within {MAX_RADIUS:g} Å)", f"without neighbours within {MAX_RADIUS:g} Å",
                f"isolated, with no bonded neighbour within {MAX_RADIUS:g} Å",
                f"not bonded to anything within {MAX_RADIUS:g} Å"][v]
    shape, dists = env.shape, words.distances(k, env)
    if v == 0:
        return f"{env.cn}-coordinated by {words.by(env, False)} ({', '.join(([shape] if shape else []) + dists)})"
    if v == 1:
        where = f" in {article(shape)} {shape} geometry" if shape else ""
        return f"bonded to {words.by(env, True)}{where} ({', '.join(dists)})"
    if v == 2:
        shape_note = f" ({shape})" if shape else ""
        return f"{env.cn}-fold coordinated{shape_note} by {words.by(env, True)}, at {join_words(dists)}"
    where = f" in {article(shape)} {shape} arrangement" if shape else ""
    return f"surrounded by {words.by(env, True)}{where}, with bond lengths of {join_words(dists)}"


def _kind_sentence(words: _Words, k: int, v: int) -> str:
    kind = words.facts.kinds[k]
    phrases = [_environment(words, k, env, v) for env in kind.environments]
    if kind.more:
        phrases.append(f"{kind.more} other environment{'s' if kind.more > 1 else ''}")
    if len(kind.environments) > 1 and v:
        phrases[0] = f"in {NUMBER_WORDS.get(len(kind.environments) + kind.more, 'several')} environments: " + phrases[0]
        return f"{words.subject(k, v % 3)} {'; '.join(phrases)}."
    return f"{words.subject(k, v % 3)} {join_words(phrases)}."


def _symmetry_sentence(words: _Words, v: int) -> str:
    f = words.facts
    subject, inner = words.compound(v), words.compound(v, start=False)
    lattice = _lattice_text(f.lattice)
    if f.number is None:
        return [f"{subject} has a {f.n_sites}-site cell (symmetry not analysed) with {lattice}.",
                f"The cell of {inner} holds {f.n_sites} sites (symmetry not analysed), with {lattice}.",
                f"{subject} has {f.n_sites} sites in its cell (too many to analyse its symmetry) and {lattice}.",
                f"With {f.n_sites} sites in the cell, the symmetry of {inner} is not analysed; the cell has {lattice}."][v]
    symbol = _free_symbol(f.symbol) if words.free else f.symbol
    return [f"{subject} crystallizes in the {f.system} {symbol} space group (No. {f.number}) with {lattice}.",
            f"The {f.system} structure of {inner} has space group {symbol} (No. {f.number}) and lattice parameters {lattice}.",
            f"{subject} adopts the space group {symbol} (No. {f.number}), which is {f.system}; the conventional cell has {lattice}.",
            f"In space group {symbol} (No. {f.number}), {inner} is {f.system}, with {lattice}."][v]


def _lattice_sentence(words: _Words, v: int) -> str | None:
    f = words.facts
    if not f.pearson:
        return None
    bravais = _BRAVAIS.get(f.pearson[:2], "")
    units = ""
    if f.formula_units:
        plural = "s" if f.formula_units != 1 else ""
        units = f", with {f.formula_units} formula unit{plural} in the conventional cell"
    subject = words.compound(v)
    return [f"The Bravais lattice is {bravais} (Pearson symbol {f.pearson}){units}.",
            f"Its Pearson symbol is {f.pearson}, a {bravais} lattice{units}.",
            f"{subject} has {article(bravais)} {bravais} Bravais lattice ({f.pearson}){units}.",
            f"The lattice is {bravais}, Pearson symbol {f.pearson}{units}."][v]


def _prototype_sentence(words: _Words, v: int) -> str | None:
    f = words.facts
    if f.prototype is None:
        return None
    label, name, free = f.prototype
    subject = words.compound(v)
    if words.free and not free:
        return [f"The structure matches the AFLOW prototype {label}.", f"Its AFLOW prototype label is {label}.",
                f"{subject} corresponds to the AFLOW prototype {label}.",
                f"The structure is of the {label} prototype."][v]
    base, _, paren = (free if words.free else name).removeprefix("the ").partition(" (")
    paren = paren.removesuffix(")")
    details = "; ".join(x for x in (paren, f"AFLOW prototype {label}") if x)
    return [f"{subject} adopts the {base} structure type ({details}).",
            f"The structure is of the {base} type ({label}).",
            f"{subject} is {article(base)} {base}-type structure{f' ({paren})' if paren else ''}.",
            f"Its structure type is {base}, AFLOW prototype {label}."][v]


def _composition_sentence(words: _Words, v: int) -> str:
    phrase = words.facts.composition.phrase()
    subject, inner = words.compound(v), words.compound(v, start=False)
    if words.free:
        return [f"{subject} is {phrase}.", f"Chemically, {inner} is {phrase}.", f"By composition, {inner} is {phrase}.",
                f"This is {phrase}."][v]
    return [f"{subject} is {phrase}.", f"Chemically, {subject} is {phrase}.", f"By composition, {subject} is {phrase}.",
            f"The material {subject} is {phrase}."][v]


def _polyhedron_sentence(words: _Words, p: Polyhedron, v: int) -> str:
    own = words.polyhedron(p)
    start = own[0].upper() + own[1:]
    if not p.shares:
        return [f"{start} are isolated: they share no corners, edges or faces with other polyhedra.",
                f"The {own} are isolated from one another.",
                f"{start} share no vertices with other polyhedra.",
                f"No other polyhedron shares a corner, edge or face with the {own}."][v]
    others = {q.kind: q for q in words.facts.polyhedra}
    by_target: dict[int, list[tuple[str, int]]] = {}
    for q, mode, count in p.shares:
        by_target.setdefault(q, []).append((mode, count))
    parts, adjectives = [], []
    for q, modes in by_target.items():
        same = q == p.kind
        target = words.polyhedron(others[q]) if q in others else "polyhedra"
        counted = join_words([f"{m}s with {NUMBER_WORDS.get(c, str(c))}" for m, c in modes])
        parts.append(f"{counted} {'other ' if same else ''}{target}")
        names = [m for m, _ in modes]
        adjective = join_words([m + "-" for m in names[:-1]] + [names[-1] + "-sharing"])
        adjectives.append(f"{adjective} with {'other ' if same else ''}{target}")
    if v == 0:
        return f"{start} share {join_words(parts)}."
    if v == 1:
        return f"The {own} are {join_words(adjectives)}."
    if v == 2:
        return f"{start} connect by sharing {join_words(parts)}."
    return f"In the structure, {own} share {join_words(parts)}."


_DIM_NAMES = {3: ("three-dimensional", "framework"), 2: ("two-dimensional", "layers"), 1: ("one-dimensional", "chains"),
              0: ("zero-dimensional", "molecules or clusters")}


def _dimensionality_sentence(words: _Words, v: int) -> str | None:
    dims = words.facts.dims
    if not dims:
        return None
    if len(dims) > 1:
        parts = [f"{_DIM_NAMES[d][0]} {_DIM_NAMES[d][1]}" for d, _ in dims]
        return [f"The structure combines {join_words(parts)}.", f"The bonded network mixes {join_words(parts)}.",
                f"Bonded units of several kinds coexist: {join_words(parts)}.",
                f"It contains {join_words(parts)}."][v]
    dim, where = dims[0]
    if dim == 3:
        return ["The bonded network is three-dimensional.", "The structure is a three-dimensional framework.",
                "Bonds link all atoms into a 3D network.", "It is a three-dimensional (3D) bonded solid."][v]
    if dim == 2:
        return [f"The structure is two-dimensional (layers){f', the layers parallel to the {where} planes' if where else ''}.",
                f"The structure is layered: two-dimensional slabs{f' parallel to {where}' if where else ''} are held together by weak interactions.",
                f"It is a layered (2D) material{f', with layers in the {where} planes' if where else ''}.",
                f"Bonds form layers{f' parallel to {where}' if where else ''}, so the structure is two-dimensional."][v]
    if dim == 1:
        return [f"The structure is one-dimensional (chains){f', the chains running along {where}' if where else ''}.",
                f"It consists of one-dimensional chains{f' along {where}' if where else ''}.",
                f"The bonded network is made of chains (1D){f' parallel to {where}' if where else ''}.",
                f"Bonds form chains{f' along {where}' if where else ''}, so the structure is one-dimensional."][v]
    return ["The structure is zero-dimensional (molecules or clusters).",
            "It is a molecular crystal: isolated molecules or clusters with no bonds between them.",
            "The bonded units are zero-dimensional (isolated molecules or clusters).",
            "No bonds link the molecules or clusters, so the structure is zero-dimensional."][v]


def _density_sentence(words: _Words, v: int) -> str:
    f = words.facts
    sites = f"{f.cell_sites} site{'s' if f.cell_sites != 1 else ''}"
    cell = "the conventional cell" if f.pearson else "the cell"
    subject = words.compound(v)
    return [f"The density is {f.density:.2f} g/cm³, with {sites} in the cell.",
            f"Its density is {f.density:.2f} g/cm³ and its volume per atom {f.volume_per_atom:.1f} Å³.",
            f"{subject} has a density of {f.density:.2f} g/cm³ ({f.volume_per_atom:.1f} Å³ per atom).",
            f"The calculated density is {f.density:.2f} g/cm³, with {sites} in {cell}."][v]


def render(facts: Facts, seed: int | None = None, formula_free: bool = False) -> str:
    """Sentences about ``facts``. ``seed=None``: the canonical phrasing and order. An integer seed
    picks one of ``VARIANTS`` phrasings per fact and shuffles the sentences, deterministically for
    the structure and seed; the same seed makes the same choices in both forms."""
    rng = random.Random(f"{seed}|{facts.key()}") if seed is not None else None

    def pick() -> int:
        return rng.randrange(VARIANTS) if rng is not None else 0

    words = _Words(facts, formula_free)
    sentences = [_symmetry_sentence(words, pick()), _lattice_sentence(words, pick()),
                 _prototype_sentence(words, pick()), _composition_sentence(words, pick())]
    described = min(len(facts.kinds), MAX_KINDS)
    sentences += [_kind_sentence(words, k, pick()) for k in range(described)]
    if len(facts.kinds) > MAX_KINDS:
        sentences.append(f"{len(facts.kinds) - MAX_KINDS} more site kinds are not described.")
    sentences += [_polyhedron_sentence(words, p, pick()) for p in facts.polyhedra]
    sentences += [_dimensionality_sentence(words, pick()), _density_sentence(words, pick())]
    sentences = [s for s in sentences if s]
    if rng is not None:
        rng.shuffle(sentences)
    if formula_free:
        from .masking import mask_formulas

        text = " ".join(sentences)
        if mask_formulas(text) == text:
            return text
        sentences = [s for s in sentences if mask_formulas(s) == s]  # a name the masking reads as chemistry
    return " ".join(sentences)
