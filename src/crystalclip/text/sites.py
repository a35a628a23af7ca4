"""Site kinds, their coordination environments, and the polyhedra they form.

A site kind is an element, or "Fe/Mg" for a mixed site; its environments are the distinct
(kind, neighbour counts) rows of its sites, weighted by the neighbours' occupancies, each with bond
lengths and a geometry name. For cations surrounded by anions of one kind, the polyhedra and how
they share corners, edges or faces with each other.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..structures.crystal import Crystal
from .bonding import geometry
from .chemistry import ANION_WORDS, OXOANIONS, Composition, element_family, is_metal

__all__ = ["MAX_KINDS", "Environment", "Kind", "Polyhedron", "coordination", "polyhedra_of", "site_kinds"]

MAX_KINDS = 8  # site kinds described; a MOF's few elements fit, a high-entropy alloy's tail is cut
MAX_ENVIRONMENTS = 2  # environments named per site kind
SAMPLE_PER_ENVIRONMENT = 4  # sites whose angles name an environment's geometry (majority vote)
MAX_POLYHEDRA = 4  # polyhedral kinds whose connectivity is described
SAMPLE_PER_POLYHEDRON = 6  # sites per polyhedral kind whose shared vertices are counted


# --------------------------------------------------------------------------------------------------
# coordination


@dataclass
class Environment:
    sites: int  # sites of the kind in this environment
    cn: int
    neighbours: list[tuple[int, int, float, float, float]]  # (count, kind, mean, min, max distance Å)
    shape: str | None


@dataclass
class Kind:
    name: str  # "Ti", "Fe/Mg"
    label: str  # formula-free: "transition-metal", "oxide", "transition-metal/alkaline-earth"
    role: str  # "anion", "cation", "centre" (of an oxoanion) or "atom"
    mixed: bool
    partial: bool
    many: bool  # more than one site
    environments: list[Environment] = field(default_factory=list)
    more: int = 0  # environments not described
    centre_word: str | None = None  # "phosphate" for the P of a phosphate


def site_kinds(crystal: Crystal, symbols, chi, main_z, occupancy, composition: Composition):
    """Site kinds (element, or 'Fe/Mg' for a mixed site) ordered by electronegativity, with their
    formula-free labels; and each site's kind index."""
    len(crystal)
    keys = [tuple(sorted(s, key=lambda k: -s[k])) for s in crystal.species]
    names = ["/".join(symbols[k] for k in key) for key in keys]
    unique = sorted(set(names))
    first = {name: keys[names.index(name)] for name in unique}
    mean_chi = {}
    for name in unique:
        mask = np.array([x == name for x in names])
        mean_chi[name] = float(np.mean(chi[np.minimum(main_z[mask], len(chi) - 1)]))
    ordered = sorted(unique, key=lambda name: (mean_chi[name], name))
    index = {name: k for k, name in enumerate(ordered)}
    kind_of = np.array([index[name] for name in names], np.int64)
    anions, centres = set(composition.anions), set(composition.centres)

    def element_label(z: int) -> str:
        if z in anions:
            return ANION_WORDS.get(z, element_family(z))
        family = element_family(z)
        return {"alkaline-earth metal": "alkaline-earth", "noble gas": "noble-gas"}.get(family, family.replace(" metal", "-metal"))

    labels = ["/".join(dict.fromkeys(element_label(z) for z in first[name])) for name in ordered]
    repeated = Counter(labels)
    seen: Counter = Counter()
    kinds = []
    ordinals = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"]
    for k, name in enumerate(ordered):
        label = labels[k]
        if repeated[label] > 1:
            label = f"{ordinals[min(seen[label], 9)]} {label}"
            seen[labels[k]] += 1
        z = first[name][0]
        role = "atom"
        if composition.ionic:
            role = "anion" if z in anions else "centre" if z in centres else "cation" if is_metal(z) else "atom"
        mask = kind_of == k
        kinds.append(Kind(name, label, role, "/" in name, bool((occupancy[mask] < 0.99).any()), int(mask.sum()) > 1,
                          centre_word=OXOANIONS.get(z) if z in centres else None))
    return kinds, kind_of


def coordination(kinds: list[Kind], kind_of, occupancy, equivalent, i, j, d, vector, starts) -> None:
    """Fill each kind's environments: (kind, neighbour counts) rows, the commonest first."""
    n = len(kind_of)
    n_kinds = len(kinds)
    # per site, how many neighbours of each kind (occupancy-weighted, rounded, at least one when
    # bonded): an environment is a (kind, neighbour counts) row
    weighted = np.bincount(i * n_kinds + kind_of[j], weights=occupancy[j], minlength=n * n_kinds).reshape(n, n_kinds)
    counts = np.rint(weighted).astype(np.int64)
    lost = (counts.sum(axis=1) == 0) & (weighted.sum(axis=1) > 0)
    counts[lost, weighted[lost].argmax(axis=1)] = 1
    rows = np.ascontiguousarray(np.concatenate([kind_of[:, None], counts], axis=1))
    as_bytes = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()  # rows as scalars: fast unique
    _, first, env_of, env_size = np.unique(as_bytes, return_index=True, return_inverse=True, return_counts=True)
    environments, env_of = rows[first], env_of.ravel()
    # bond lengths per (environment, neighbour kind)
    pair = env_of[i] * n_kinds + kind_of[j]
    size = len(environments) * n_kinds
    total = np.bincount(pair, weights=d, minlength=size)
    number = np.bincount(pair, minlength=size)
    low = np.full(size, np.inf)
    high = np.full(size, -np.inf)
    np.minimum.at(low, pair, d)
    np.maximum.at(high, pair, d)
    mean_d = (total / np.maximum(number, 1)).reshape(len(environments), n_kinds)
    low, high = low.reshape(mean_d.shape), high.reshape(mean_d.shape)
    for k in range(min(n_kinds, MAX_KINDS)):
        mine = np.nonzero(environments[:, 0] == k)[0]
        mine = mine[np.argsort(-env_size[mine], kind="stable")]
        for e in mine[:MAX_ENVIRONMENTS]:
            sites = np.nonzero(env_of == e)[0]
            if equivalent is not None:  # one site per symmetry orbit is enough
                sites = np.unique(equivalent[sites])
            sample = sites[np.linspace(0, len(sites) - 1, min(len(sites), SAMPLE_PER_ENVIRONMENT)).astype(int)]
            # a geometry only for fully occupied neighbours: half-occupied images make no polyhedron
            names = [geometry(vector[starts[s]:starts[s + 1]]) if (occupancy[j[starts[s]:starts[s + 1]]] > 0.9).all()
                     else None for s in sample]
            shape = max(dict.fromkeys(names), key=names.count) if names else None  # ties: the first sampled
            row = environments[e, 1:]
            present = [(int(c), q, float(mean_d[e, q]), float(low[e, q]), float(high[e, q]))
                       for q, c in enumerate(row) if c]
            present.sort(key=lambda t: (-t[0], kinds[t[1]].name))
            kinds[k].environments.append(Environment(int(env_size[e]), int(row.sum()), present, shape))
        kinds[k].more = max(0, len(mine) - MAX_ENVIRONMENTS)


# --------------------------------------------------------------------------------------------------
# polyhedra


_SHARING = {1: "corner", 2: "edge", 3: "face"}


@dataclass
class Polyhedron:
    kind: int  # the centre's kind
    ligand: int  # the kind of every vertex
    cn: int
    shape: str | None
    shares: list[tuple[int, str, int]]  # (other centre kind, "corner" / "edge" / "face", how many per polyhedron)


def polyhedra_of(kinds: list[Kind], kind_of, equivalent, j, shift, starts) -> list[Polyhedron]:
    """For cations whose neighbours are all anions of one kind: which other such polyhedra they
    share corners (one vertex), edges (two) or faces (three or more) with."""
    n = len(kind_of)
    anion_kinds = {k for k, kind in enumerate(kinds) if kind.role == "anion"}
    if not anion_kinds:
        return []
    jl, sl = j.tolist(), shift.tolist()
    candidates = {}
    for k, kind in enumerate(kinds[:MAX_KINDS]):
        if kind.role == "anion" or not kind.environments:
            continue
        env = kind.environments[0]
        ligands = {q for _, q, *_ in env.neighbours}
        if env.cn >= 3 and len(ligands) == 1 and ligands <= anion_kinds:
            candidates[k] = (next(iter(ligands)), env)
    if not candidates:
        return []
    centre = np.zeros(n, bool)
    for s in range(n):
        k = int(kind_of[s])
        if k in candidates and starts[s + 1] - starts[s] >= 3:
            ligand = candidates[k][0]
            centre[s] = all(kind_of[jl[e]] == ligand for e in range(starts[s], starts[s + 1]))
    out = []
    for k, (ligand, env) in list(candidates.items())[:MAX_POLYHEDRA]:
        sites = np.nonzero(centre & (kind_of == k))[0]
        if equivalent is not None:
            sites = np.unique(equivalent[sites])
            sites = sites[centre[sites]]
        if len(sites) == 0:
            continue
        sites = sites[np.linspace(0, len(sites) - 1, min(len(sites), SAMPLE_PER_POLYHEDRON)).astype(int)]
        tallies: list[Counter] = []
        for c in sites.tolist():
            shared: Counter = Counter()
            for e in range(starts[c], starts[c + 1]):
                a, (sx, sy, sz) = jl[e], sl[e]
                for e2 in range(starts[a], starts[a + 1]):
                    c2 = jl[e2]
                    if not centre[c2]:
                        continue
                    tx, ty, tz = sl[e2]
                    key = (c2, sx + tx, sy + ty, sz + tz)
                    if key != (c, 0, 0, 0):
                        shared[key] += 1
            tallies.append(Counter((int(kind_of[key[0]]), min(count, 3)) for key, count in shared.items()))
        # per (other kind, mode): the commonest count over the sampled sites (0 counts included)
        seen = sorted(set().union(*tallies))
        shares = []
        for q, mode in seen:
            counts = Counter(t.get((q, mode), 0) for t in tallies)
            count = max(counts, key=lambda c: (counts[c], c))
            if count:
                shares.append((q, _SHARING[mode], count))
        out.append(Polyhedron(k, ligand, env.cn, env.shape, shares))
    return out
