"""Data sources: one module per storage format, all yielding `Entry` / `Rejected` (see `base`).

`open_source(spec, **options)` picks the module from a spec and binds the options:

====================================  =====================================================
spec                                  source
====================================  =====================================================
``"amcsd"``                           AMCSD SQLite in larixite (options: limit, db_path)
``"core-mof"``, ``"core-mof:2019-ASR"``  CoRE MOF 2019 in core-mof (options: limit, datasets)
path to a CSV with material_id, cif,  MP-40 captions (options: limit); a list of such paths,
prompt                                or ``"a.csv,b.csv"``, is merged into one source
any other CSV                         generic table (options: cif_column, text_columns,
                                      id_column, group_column, limit)
path to a folder of Parquet/CSV       tables of CIFs (material_id, cif), e.g. the 152k MP
tables (material_id, cif)             structures; read shard by shard (options: limit)
path to a directory                   folder of CIF files, recursive (options: limit)
====================================  =====================================================

Options a source does not know are ignored, so one option dict can serve several specs.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator, Sequence

from crystalclip.errors import BadInput, NotFound
from crystalclip.sources.base import Entry, Rejected

__all__ = ["Entry", "Rejected", "Source", "open_source", "open_sources", "KNOWN_SPECS"]

KNOWN_SPECS = ("amcsd", "core-mof", "<file.csv>", "<folder of CIFs>", "<folder of CIF tables>")


class Source:
    """A source module with its options bound: `iter_entries()` and `count()` take no arguments."""

    def __init__(self, name: str, module: ModuleType, spec, **options):
        self.name = name
        self.module = module
        self.spec = spec
        self.options = options

    def iter_entries(self) -> Iterator[Entry | Rejected]:
        return self.module.iter_entries(**self.options)

    def count(self) -> int | None:
        return self.module.count(**self.options)

    def __repr__(self) -> str:
        return f"Source({self.name!r}, spec={self.spec!r}, options={self.options!r})"


def _module(name: str) -> ModuleType:
    import importlib

    return importlib.import_module(f"crystalclip.sources.{name}")


def _split_paths(spec: str) -> list[str] | None:
    """"a.csv,b.csv" -> ["a.csv", "b.csv"] when every part is an existing file."""
    if Path(spec).exists() or "," not in spec:
        return None
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if len(parts) > 1 and all(Path(p).is_file() for p in parts):
        return parts
    return None


def open_source(spec: str | Path | Sequence[str | Path], **options) -> Source:
    """The source for `spec` (see the module docstring); ValueError with a clear message otherwise."""
    if isinstance(spec, (list, tuple)):
        paths = [Path(p) for p in spec]
        mp40 = _module("mp40")
        not_mp40 = [str(p) for p in paths if not (p.is_file() and mp40.is_mp40_csv(p))]
        if not_mp40:
            raise BadInput(
                f"only MP-40 caption CSVs (columns material_id, cif, prompt) can be merged into one "
                f"source; not one: {not_mp40}"
            )
        return Source("mp40", mp40, spec, **{**options, "paths": paths})
    text = str(spec).strip()
    key = text.lower()
    if key == "amcsd":
        return Source("amcsd", _module("amcsd"), text, **options)
    if key in ("core-mof", "core_mof", "coremof") or key.startswith(("core-mof:", "core_mof:")):
        opts = dict(options)
        if ":" in text:
            opts["datasets"] = text.split(":", 1)[1]
        return Source("core-mof", _module("core_mof"), text, **opts)
    parts = _split_paths(text)
    if parts:
        return open_source(parts, **options)
    path = Path(text).expanduser()
    if path.is_dir() and _module("cif_table").is_cif_table_dir(path):
        return Source("cif-table", _module("cif_table"), text, **{**options, "root": path})
    if path.is_dir():
        return Source("cif-folder", _module("cif_folder"), text, **{**options, "root": path})
    if path.is_file():
        mp40 = _module("mp40")
        header = mp40.read_header(path)
        if set(mp40.REQUIRED_COLUMNS) <= set(header):
            return Source("mp40", mp40, text, **{**options, "paths": [path]})
        if path.suffix.lower() in (".csv", ".tsv", ".txt") or options.get("cif_column"):
            csv_table = _module("csv_table")
            csv_table.check_columns(path, options.get("cif_column"), options.get("text_columns"),
                                    options.get("id_column"), options.get("group_column"))
            return Source("csv", csv_table, text, **{**options, "path": path})
        raise BadInput(
            f"unknown source {text!r}: a file source must be a CSV table (got {path.suffix or 'no suffix'}); "
            f"for single CIF files use a folder"
        )
    raise NotFound(
        f"unknown source {text!r}: expected 'amcsd', 'core-mof', a CSV file or a folder of CIF "
        f"files (no such file or directory)"
    )


def open_sources(specs: Iterable[str | Path], **options) -> list[Source]:
    """Like [open_source(s) for s in specs], but all MP-40 caption CSVs become one merged source
    (at the position of the first), so material ids shared between files give one Entry."""
    specs = [specs] if isinstance(specs, (str, Path)) else list(specs)
    mp40 = _module("mp40")
    mp40_paths = [s for s in specs if Path(str(s)).is_file() and mp40.is_mp40_csv(s)]
    out: list[Source] = []
    merged = False
    for spec in specs:
        if spec in mp40_paths and len(mp40_paths) > 1:
            if not merged:
                out.append(open_source(mp40_paths, **options))
                merged = True
            continue
        out.append(open_source(spec, **options))
    return out
