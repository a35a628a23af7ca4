"""`crystalclip compare`: several recipes trained on one train split under one compute budget,
evaluated with one protocol on one test split, tabulated in docs/results.md with plots.

Each recipe gets `runs/compare/<recipe>/` (the model, its metrics, `report.json`); a finished run
of the same recipe and budget is reused, so an interrupted comparison continues where it stopped.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import time
from datetime import date
from pathlib import Path

from .data.dataset import COMMANDS, Dataset
from .fileio import atomic_path
from .recipe import Recipe, load_recipe

REPORT_FILE = "report.json"
NOTES = "## Notes"
LEGEND = """Columns: `t2c_R@10` text→crystal Recall@10 over the whole test split (unique texts are the queries;
a text shared by several structures is a hit when any is retrieved; 95% bootstrap CI), per source in
brackets, `mp40_masked` with formulas masked in the captions; `c2t_R@10` crystal→text; `zero_shot_auc[...]`
mean ROC-AUC of the labels with ≥ 5 positives (AMCSD title keywords, mp40 metallic/stable, CoRE MOF open
metal sites / metal / pore class); `choice_acc_masked` CLaC's four-way multiple choice with formulas masked
(chance 0.25); `query_spearman[...]` Spearman between the value asked ("band gap around 2 eV", "largest
cavity around 8 Å") and the mean of the top 10 retrieved (chance 0; CI over queries); `probe_*` ridge (R²)
and logistic (ROC-AUC) probes on frozen crystal embeddings, fit on mp40 train, scored on mp40 test.
The baselines: `composition baseline` (the shipped bag-of-elements model), `formula baseline` (the frozen
tower reads the reduced formula; no training)."""  # results.md from this heading on is kept when the table is rewritten


def _kinds(recipe: Recipe) -> set[str]:
    """The derived texts a recipe (or any of its stages) trains on."""
    kinds = set()
    for part in [recipe, *(recipe.stage(n)[2] for n in range(len(recipe.stages)))]:
        texts = part.data.texts
        kinds.update([texts] if isinstance(texts, str) else texts)
    return kinds & set(COMMANDS)


def ensure_derived_texts(data_dir: Path, recipes: dict[str, Recipe], log=print) -> None:
    """Write the offline keywords / summaries / descriptions the recipes need and the dataset lacks."""
    from . import derive

    data = Dataset(data_dir)
    needed = set().union(*(_kinds(r) for r in recipes.values()))
    makers = {"keywords": derive.dataset_keywords, "summaries": derive.dataset_summaries,
              "descriptions": derive.dataset_descriptions}
    for kind in sorted(needed):
        if data.texts_path(kind).is_file():
            continue
        log(f"{data_dir} has no {kind}: writing them (`crystalclip data {COMMANDS[kind]}`, offline back-end)")
        makers[kind](data_dir)


def compare(recipe_names: list[str], data_dir: str | os.PathLike, out: str | os.PathLike = "runs/compare",
            minutes: float = 8.0, results: str | os.PathLike | None = "docs/results.md",
            composition_model: str = "composition", retrain: bool = False, progress_bar: bool = False,
            log=print) -> dict:
    """Train (or reuse) and evaluate every recipe; returns {run name: report} and writes `results`."""
    from .api import load
    from .evaluation.report import evaluate
    from .training import train

    data_dir, out = Path(data_dir), Path(out)
    overrides = {"train.max_minutes": minutes, "train.epochs": 1000}  # the clock ends training, not epochs
    recipes = {name: load_recipe(name, overrides) for name in recipe_names}
    ensure_derived_texts(data_dir, recipes, log)
    baseline = load(composition_model) if composition_model else None
    reports, trainings = {}, {}
    for name, recipe in recipes.items():
        run = out / Path(name).stem
        config = run / "config.json"
        done = config.is_file() and json.loads(config.read_text()).get("recipe") == json.loads(json.dumps(recipe.to_dict()))
        if retrain or not done:
            if retrain or config.is_file():  # a finished run of another recipe or budget: start afresh
                shutil.rmtree(run, ignore_errors=True)
            log(f"training {name} for {minutes:g} min -> {run}")
            train(data_dir, recipe, run, resume=True, progress_bar=progress_bar)  # resumes an interrupted run
        trainings[run.name] = json.loads(config.read_text())["training"]
        report_path = run / REPORT_FILE
        if retrain or not report_path.is_file() or report_path.stat().st_mtime < config.stat().st_mtime:
            log(f"evaluating {name} on the test split")
            started = time.time()
            report = evaluate(load(run), data_dir, "test", composition_model=baseline,
                              plots_dir=run / "plots")
            report["evaluation_seconds"] = round(time.time() - started, 1)
            with atomic_path(report_path) as tmp:
                tmp.write_text(json.dumps(report, indent=1) + "\n")
        reports[run.name] = json.loads(report_path.read_text())
    if results is not None:
        write_results(Path(results), reports, trainings, f"crystalclip compare --recipes {','.join(recipe_names)} "
                      f"--data {data_dir} --minutes {minutes:g}", minutes)
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


def write_results(path: Path, reports: dict[str, dict], trainings: dict[str, dict], command: str,
                  minutes: float) -> None:
    from .evaluation.report import format_value

    rows = headline_rows(reports)
    metrics = list(dict.fromkeys(k for row in rows.values() for k in row))
    lines = [
        "# Recipes compared: default, CLAMP, CLaSP, CLaC",
        "",
        f"Written by `{command}` on {date.today().isoformat()}.",
        f"Machine: {_machine()}. Budget: {minutes:g} minutes of training wall-clock per recipe (shared by "
        "a recipe's stages), the same train split, the same test split and protocol for all.",
        "",
        "| system | " + " | ".join(metrics) + " |",
        "| --- | " + " | ".join("---" for _ in metrics) + " |",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(format_value(row.get(m)) for m in metrics) + " |")
    lines += ["", LEGEND, "", "## Training under the budget", "",
              "| recipe | epochs | train structures | seconds | best val R@10 |", "| --- | --- | --- | --- | --- |"]
    for name, info in trainings.items():
        lines.append(f"| {name} | {info.get('epochs')} | {info.get('train_rows')} | {info.get('train_seconds')} | "
                     f"{format_value(info.get('best_val_R@10'))} |")
    figure = path.with_suffix(".png")
    plot_headlines(rows, figure)
    lines += ["", f"![headline metrics per system, 95% CIs where measured]({figure.name})"]
    notes = path.read_text().partition(NOTES)[2] if path.is_file() else ""
    if notes:  # written by hand below the table: kept
        lines += ["", NOTES + notes.rstrip("\n")]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


PLOTTED = ("t2c_R@10", "choice_acc_masked", "zero_shot_auc[amcsd]", "zero_shot_auc[mp40]", "zero_shot_auc[mof]",
           "probe_band_gap_r2", "probe_stable_auc")


def plot_headlines(rows: dict[str, dict], path: Path) -> None:
    """Grouped bars: one group per headline metric, one bar per system, CIs as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [m for m in PLOTTED if any(row.get(m) is not None for row in rows.values())]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / max(1, len(rows))
    for k, (name, row) in enumerate(rows.items()):
        values, low, high = [], [], []
        for m in metrics:
            cell = row.get(m)
            value = cell.get("value") if isinstance(cell, dict) else cell
            ci = cell.get("ci") if isinstance(cell, dict) else None
            values.append(np.nan if value is None else value)
            low.append(value - ci[0] if ci and value is not None else np.nan)  # NaN: no bar drawn
            high.append(ci[1] - value if ci and value is not None else np.nan)
        ax.bar(np.arange(len(metrics)) + k * width, values, width, yerr=[low, high], label=name, capsize=2)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
