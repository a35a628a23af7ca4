"""CLaC-style augmentations: two views of one pair, for intramodal contrast.

Crystals: random atomic displacement and anisotropic lattice strain. Texts: drop and shuffle
sentences, mask words. Every function takes a numpy Generator (reproducible with a seed) and returns
a new object; inputs are never modified.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

from .graphs import MIN_DISTANCE
from .structures.crystal import Crystal
from .text.summarize import split_sentences  # the one sentence splitter (keeps "e.g." and "5.64 Å" whole)

__all__ = ["min_distance", "displace", "strain", "augment_crystal", "split_sentences",
           "drop_and_shuffle_sentences", "mask_tokens", "augment_text"]


# --------------------------------------------------------------------------------------------------
# crystals


def _copy(crystal: Crystal, lattice: np.ndarray, frac_coords: np.ndarray) -> Crystal:
    return dataclasses.replace(crystal, lattice=lattice, frac_coords=frac_coords,
                               species=[dict(s) for s in crystal.species], metadata=dict(crystal.metadata))


def min_distance(crystal: Crystal) -> float:
    """Shortest periodic distance between two sites, or a site and its own image (Å)."""
    import vesin

    lattice = np.ascontiguousarray(crystal.lattice, dtype=np.float64)
    frac = np.asarray(crystal.frac_coords, dtype=np.float64) % 1.0
    frac[frac >= 1.0] = 0.0  # vesin wants every point inside the cell
    cart = frac @ lattice
    # A site's image one lattice vector away is at most the shortest row away, so the search ends.
    longest = 1.01 * float(np.linalg.norm(lattice, axis=1).min())
    radius = min(3.0, longest)
    while True:
        d = vesin.NeighborList(cutoff=radius, full_list=False, n_threads=1).compute(cart, lattice, True, "d")[0]
        if len(d) or radius >= longest:
            return float(d.min())
        radius = min(2.0 * radius, longest)


def displace(crystal: Crystal, rng: np.random.Generator, max_fraction: float = 0.5) -> Crystal:
    """Move every site by a random vector: uniform direction, length uniform in [0, cap].

    CLaC moves atoms by up to 0.5 × the minimum interatomic distance d_min (cap = max_fraction ×
    d_min). Two sites moving towards each other by that much could meet, and the graph builder
    rejects sites closer than MIN_DISTANCE, so the cap is also held below (d_min - MIN_DISTANCE) / 2:
    every pair stays at least MIN_DISTANCE apart, and a structure the builder accepted it still
    accepts. A site and its own image move together, so their distance is unchanged.
    """
    if not max_fraction >= 0:
        raise ValueError(f"max_fraction must be non-negative, got {max_fraction}")
    n = len(crystal.species)
    dmin = min_distance(crystal)
    cap = max(0.0, min(max_fraction * dmin, 0.999 * (dmin - MIN_DISTANCE) / 2))
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    shift = direction * rng.uniform(0.0, cap, size=(n, 1))
    frac = np.asarray(crystal.frac_coords, dtype=np.float64) + shift @ np.linalg.inv(crystal.lattice)
    return _copy(crystal, np.array(crystal.lattice, dtype=np.float64), frac % 1.0)


def strain(crystal: Crystal, rng: np.random.Generator, max_strain: float = 0.05) -> Crystal:
    """Anisotropic strain: lattice @ (I + E), E symmetric with entries uniform in ±max_strain.
    Fractional coordinates are kept, so the atoms follow the cell."""
    if not 0 <= max_strain < 1 / 3:  # |eigenvalues of E| <= 3 max_strain: I + E stays invertible
        raise ValueError(f"max_strain must be in [0, 1/3), got {max_strain}")
    upper = np.triu(rng.uniform(-max_strain, max_strain, size=(3, 3)))
    e = upper + np.triu(upper, 1).T
    lattice = np.asarray(crystal.lattice, dtype=np.float64) @ (np.eye(3) + e)
    return _copy(crystal, lattice, np.array(crystal.frac_coords, dtype=np.float64))


def augment_crystal(crystal: Crystal, rng: np.random.Generator, max_fraction: float = 0.5,
                    max_strain: float = 0.05) -> Crystal:
    """Strain, then displace (so the displacement cap is measured on the final cell)."""
    return displace(strain(crystal, rng, max_strain), rng, max_fraction)


# --------------------------------------------------------------------------------------------------
# texts

# a sentence ends at . ! or ? followed by space and anything but a lower-case letter ("e.g. the")
def drop_and_shuffle_sentences(text: str, rng: np.random.Generator, drop_prob: float = 0.2) -> str:
    """Drop each sentence with probability drop_prob (never all of them) and shuffle the rest,
    joined by single spaces. A text of one sentence is returned unchanged."""
    if not 0 <= drop_prob <= 1:
        raise ValueError(f"drop_prob must be in [0, 1], got {drop_prob}")
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return text
    keep = [s for s, drop in zip(sentences, rng.random(len(sentences)) < drop_prob) if not drop]
    if not keep:
        keep = [sentences[rng.integers(len(sentences))]]
    return " ".join(keep[i] for i in rng.permutation(len(keep)))


def mask_tokens(text: str, rng: np.random.Generator, mask_token: str, fraction: float = 0.15) -> str:
    """Replace round(fraction × words) whitespace-separated words (at least one when there are two
    or more) by ``mask_token``; the whitespace between words is kept as it was."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    parts = re.split(r"(\s+)", text)  # words at even indices (possibly "" at the ends)
    words = [i for i in range(0, len(parts), 2) if parts[i]]
    if len(words) < 2 or fraction == 0:
        return text
    count = max(1, round(fraction * len(words)))
    for i in rng.choice(words, size=count, replace=False):
        parts[i] = mask_token
    return "".join(parts)


def augment_text(text: str, rng: np.random.Generator, mask_token: str, drop_prob: float = 0.2,
                 mask_fraction: float = 0.15) -> str:
    """Drop and shuffle sentences, then mask words."""
    return mask_tokens(drop_and_shuffle_sentences(text, rng, drop_prob), rng, mask_token, mask_fraction)
