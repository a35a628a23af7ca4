"""The package's imports go one way, read from the source (ast), lazy imports inside functions included.

A module may import from its own layer or from a lower one, never from a higher one, and no chain of
imports between modules closes a cycle. The layers, lowest first (README, "Architecture"):
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "crystalclip"

LAYERS = [
    {"errors", "fileio", "element_features", "hf", "config"},  # no crystalclip imports but these
    {"structures"},  # reading structures
    {"graphs"},  # structure -> crystal graph
    {"text"},  # pure: strings and crystals in, strings out
    {"sources", "augment"},  # raw entries of each data source; augmented copies of structures and texts
    {"data"},  # the dataset directory (one owner), its builder, loaders and caches
    {"models"},  # towers and the two-tower model; their configs own the featurization
    {"losses", "encoding"},
    {"recipe", "training", "evaluation", "index", "index_meta", "index_kinds", "index_shards", "derive"},  # jobs over datasets and models
    {"api", "compare", "embedded"},  # the facade, and what runs on top of it
    {"cli", "server"},
]


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"crystalclip.{top} is in no layer: add it to LAYERS (and to the README)")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every crystalclip module this file imports, resolved to absolute names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("crystalclip")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("crystalclip"):
                continue
            found.add(target)
            for alias in node.names:  # `from . import data` names a module
                if (PACKAGE.parent / (target.replace(".", "/") + "/" + alias.name)).with_suffix(".py").is_file() \
                        or (PACKAGE.parent / target.replace(".", "/") / alias.name).is_dir():
                    found.add(f"{target}.{alias.name}")
    return {m for m in found if m != "crystalclip"}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name != "__init__.py"}


def test_every_import_goes_down_the_layers():
    wrong = []
    for module, imports in _graph().items():
        for target in imports:
            if _layer(target) > _layer(module):
                wrong.append(f"{module} imports {target} (layer {_layer(target)} > {_layer(module)})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules():
    graph = _graph()
    edges = {m: {t if t in graph else t.rpartition(".")[0] for t in targets} - {m} for m, targets in graph.items()}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            assert nxt not in path, "import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt])
            if nxt not in done:
                visit(nxt, path + [nxt])
        done.add(node)

    for module in sorted(edges):
        visit(module, [module])


def test_text_is_pure_and_no_module_is_too_long():
    for path in (PACKAGE / "text").glob("*.py"):
        imports = _imports(path)
        assert not {m for m in imports if _layer(m) > _layer("crystalclip.text")}, path
    long = [f"{p.relative_to(PACKAGE)}: {len(p.read_text().splitlines())} lines" for p in PACKAGE.rglob("*.py")
            if len(p.read_text().splitlines()) > 450]
    assert not long, long


def test_no_benchmark_imports_the_tests():
    for path in (PACKAGE.parents[1] / "benchmarks").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests":
                raise AssertionError(f"{path.name} imports {node.module}")
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "tests" for a in node.names):
                raise AssertionError(f"{path.name} imports tests")
