"""What every source yields: one raw entry per structure, before any parsing.

Sources only read their storage and shape the text; parsing, validation, graphs and splits happen
once, in `crystalclip.data.build`, for all sources alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Entry:
    id: str  # unique within the source, e.g. "amcsd:157", "mp-1234", "core-mof:ABAVIJ_clean"
    source: str  # "amcsd", "mp40", "core-mof", "cif-folder", "csv"
    cif: str  # the CIF text, as found (may hold several blocks)
    texts: list[str]  # texts written about this structure; may be empty for folder CIFs before parsing
    group: str | None = None  # leakage group: publication / material id; entries sharing it share a split
    columns: dict = field(default_factory=dict)  # metadata and label columns kept in the dataset
    path: str | None = None  # where it came from, for error messages
    texts_generated: bool = False  # True when texts were written by a template, not a person


@dataclass
class Rejected:
    """An entry a source could not turn into an Entry (unreadable file, bad encoding, ...)."""

    id: str
    source: str
    reason: str  # one line
    path: str | None = None
