"""`crystalclip compare`: several recipes trained on one train split under one compute budget,
evaluated with one protocol on one test split, tabulated in docs/results.md with plots.

Each recipe gets `runs/compare/<recipe>/` (the model, its metrics, `report.json`); a finished run
with the same budget is reused, so an interrupted comparison continues where it stopped.
"""
from __future__ import annotations

import json
import os
import platform
import time
from datetime import date
from pathlib import Path

from .fileio import atomic_path

DERIVED = {"keywords": "keywords", "summaries": "summarize", "descriptions": "describe"}
REPORT_FILE = "report.json"
NOTES = "## Notes"  # results.md from this heading on is kept when the table is rewritten


def _kinds(recipe: dict) -> set[str]:
    """The derived texts a recipe (or any of its stages) trains on."""
    kinds = set()
    for part in [recipe, *recipe.get("stages", [])]:
        texts = part.get("data", {}).get("texts", "pairs")
        kinds.update([texts] if isinstance(texts, str) else texts)
    return kinds & set(DERIVED)


def ensure_derived_texts(data_dir: Path, recipes: dict[str, dict], log=print) -> None:
    """Write the offline keywords / summaries / descriptions the recipes need and the dataset lacks."""
    from .data.derived import texts_path

    needed = set().union(*(_kinds(r) for r in recipes.values()))
    for kind in sorted(needed):
        if texts_path(data_dir, kind).is_file():
            continue
        log(f"{data_dir} has no {kind}: writing them (`crystalclip data {DERIVED[kind]}`, offline back-end)")
        if kind == "keywords":
            from .text.keywords import dataset_keywords as make
        elif kind == "summaries":
            from .text.summarize import dataset_summaries as make
        else:
            from .text.describe import dataset_descriptions as make
        make(data_dir)


def compare(recipe_names: list[str], data_dir: str | os.PathLike, out: str | os.PathLike = "runs/compare",
            minutes: float = 8.0, results: str | os.PathLike | None = "docs/results.md",
            composition_model: str = "composition", retrain: bool = False, progress_bar: bool = False,
            log=print) -> dict:
    """Train (or reuse) and evaluate every recipe; returns {recipe: report} and writes `results`."""
    from .api import load
    from .evaluation.report import evaluate
    from .training import load_recipe, train

    data_dir, out = Path(data_dir), Path(out)
    overrides = {"train.max_minutes": minutes, "train.epochs": 1000}  # the clock ends training, not epochs
    recipes = {name: load_recipe(name, overrides) for name in recipe_names}
    ensure_derived_texts(data_dir, recipes, log)
    baseline = load(composition_model) if composition_model else None
    reports, trainings = {}, {}
    for name, recipe in recipes.items():
        run = out / Path(name).stem
        config = run / "config.json"
        done = config.is_file() and json.loads(config.read_text()).get("recipe", {}).get("train", {}) \
            .get("max_minutes") == minutes
        if retrain or not done:
            log(f"training {name} for {minutes:g} min -> {run}")
            train(data_dir, recipe, run, resume=not retrain, progress_bar=progress_bar)
        trainings[name] = json.loads(config.read_text())["training"]
        report_path = run / REPORT_FILE
        if retrain or not report_path.is_file() or report_path.stat().st_mtime < config.stat().st_mtime:
            log(f"evaluating {name} on the test split")
            started = time.time()
            report = evaluate(load(run), data_dir, "test", composition_model=baseline,
                              plots_dir=run / "plots")
            report["evaluation_seconds"] = round(time.time() - started, 1)
            with atomic_path(report_path) as tmp:
                tmp.write_text(json.dumps(report, indent=1) + "\n")
        reports[name] = json.loads(report_path.read_text())
    if results is not None:
        write_results(Path(results), reports, trainings, data_dir, minutes)
    return reports


def headline_rows(reports: dict[str, dict]) -> dict[str, dict]:
    """One row per recipe, plus the baselines (identical across recipes: taken from the first)."""
    from .evaluation.report import headline

    rows = {name: headline(report)["model"] for name, report in reports.items()}
    first = headline(next(iter(reports.values())))
    for system in ("composition_baseline", "formula_baseline"):
        if system in first:
            rows[system.replace("_", " ")] = first[system]
    return rows


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        text = _cell(value.get("value"))
        ci = value.get("ci")
        return f"{text} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else text
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, no GPU, Python {platform.python_version()}, torch {torch.__version__}"


def write_results(path: Path, reports: dict[str, dict], trainings: dict[str, dict], data_dir: Path,
                  minutes: float) -> None:
    rows = headline_rows(reports)
    metrics = list(dict.fromkeys(k for row in rows.values() for k in row))
    lines = [
        "# Recipes compared: default, CLAMP, CLaSP, CLaC",
        "",
        f"Written by `crystalclip compare --recipes {','.join(reports)} --data {data_dir} --minutes {minutes:g}` "
        f"on {date.today().isoformat()}.",
        f"Machine: {_machine()}. Budget: {minutes:g} minutes of training wall-clock per recipe (shared by "
        "a recipe's stages), the same train split, the same test split and protocol for all.",
        "",
        "| system | " + " | ".join(metrics) + " |",
        "| --- | " + " | ".join("---" for _ in metrics) + " |",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(m)) for m in metrics) + " |")
    lines += ["", "## Training under the budget", "",
              "| recipe | epochs | train structures | seconds | best val R@10 |", "| --- | --- | --- | --- | --- |"]
    for name, info in trainings.items():
        lines.append(f"| {name} | {info.get('epochs')} | {info.get('train_rows')} | {info.get('train_seconds')} | "
                     f"{_cell(info.get('best_val_R@10'))} |")
    notes = path.read_text().partition(NOTES)[2] if path.is_file() else ""
    if notes:  # written by hand below the table: kept
        lines += ["", NOTES + notes.rstrip("\n")]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
