"""Training: a recipe (configs/*.yaml) + a dataset -> a run directory.

A run directory holds config.json + model.safetensors (the best epoch by validation Recall@10),
metrics.csv (one row per epoch), training_curve.png, and checkpoints/ (Lightning's, for --resume).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch

from .data.dataset import Dataset
from .data.loader import PairCollate
from .encoding import embed_rows, embed_text_features, row_potential, row_symmetry, split_queries
from .errors import BadInput
from .fileio import atomic_path
from .losses import get_loss
from .models.clip import CrystalClip
from .recipe import Recipe, loss_settings

METRICS_FILE, CURVE_FILE, CHECKPOINTS = "metrics.csv", "training_curve.png", "checkpoints"
TRAINING_COLUMNS = ("num_sites",)  # of the row table, beside Dataset.ALWAYS: what training reads


class ClipModule(L.LightningModule):
    def __init__(self, recipe: Recipe, model: CrystalClip, data: Dataset, graphs, formula_features, symmetry,
                 potential, steps_per_epoch: int):
        super().__init__()
        self.recipe = recipe
        self.model = model
        name, params = loss_settings(recipe.loss)
        self.loss_fn = get_loss(name, **params)  # a module: SigLIP's bias is trained with the model
        self.intramodal = recipe.intramodal
        self.data = data
        self.graphs = graphs
        self.formula_features = formula_features
        self.symmetry = symmetry
        self.potential = potential
        self.steps_per_epoch = steps_per_epoch
        self.val_rows = data.rows("val", recipe.train.sources)
        cap = recipe.train.val_rows
        if cap is not None and len(self.val_rows) > cap:
            picked = np.random.default_rng(recipe.train.seed).choice(len(self.val_rows), cap, replace=False)
            self.val_rows = self.val_rows[np.sort(picked)]
        self.val_text_ids, self.val_owners = split_queries(data, self.val_rows)
        self.val_text_features = None
        if model.text_tower.frozen:  # the validation texts' features, once, before training starts
            texts = [data.texts[i] for i in self.val_text_ids]
            self.val_text_features = data.feature_rows(texts, model.text_tower)[np.arange(len(texts))]
        self.strict_loading = not model.text_tower.frozen  # a frozen tower is left out of checkpoints

    def on_save_checkpoint(self, checkpoint):
        if self.model.text_tower.frozen:  # 90 MB that never change: loaded from the tower's package
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                        if not k.startswith("model.text_tower.")}

    def _embed(self, batch):
        crystal = self.model.embed_crystals(batch.graphs, batch.formula_features, batch.symmetry, batch.potential)
        features = batch.text_features if batch.text_features is not None else self.model.text_features(batch.texts)
        return crystal, self.model.embed_text_features(features)

    def training_step(self, batch, batch_idx):
        crystal, text = self._embed(batch)
        scale = self.model.logit_scale
        loss = self.loss_fn(crystal, text, scale, batch.text_ids)
        if self.intramodal and batch.second_view is not None:  # CLaC: two views of each side agree
            crystal2, text2 = self._embed(batch.second_view)
            loss = loss + self.intramodal * (self.loss_fn(crystal, crystal2, scale)
                                             + self.loss_fn(text, text2, scale, batch.text_ids)) / 2
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch.rows), sync_dist=True)
        self.log("negatives", float(self.loss_fn.last_batch), on_step=False, on_epoch=True, reduce_fx="max",
                 batch_size=len(batch.rows))  # rows the loss compared: the global batch under DDP
        self.log("logit_scale", scale, on_step=False, on_epoch=True, batch_size=len(batch.rows))
        return loss

    def on_train_epoch_end(self):
        """Validation Recall@10 (text -> crystal over the whole val split, the dataset's own texts)."""
        from .evaluation import retrieval_metrics

        crystals = embed_rows(self.model, self.graphs, self.val_rows, self.formula_features, symmetry=self.symmetry,
                              potential=self.potential)
        tower = self.model.text_tower
        features = self.val_text_features if tower.frozen else \
            tower.encode([self.data.texts[i] for i in self.val_text_ids])  # a fine-tuned tower: its current weights
        metrics = retrieval_metrics(embed_text_features(self.model, features), crystals, self.val_owners)
        self.log("val_R@10", metrics["text_to_crystal"]["R@10"], prog_bar=True, sync_dist=True)
        self.log("val_MRR", metrics["text_to_crystal"]["MRR"], sync_dist=True)
        self.log("val_random_R@10", metrics["random"]["R@10"], sync_dist=True)

    def configure_optimizers(self):
        train = self.recipe.train
        optimizer = torch.optim.AdamW(parameter_groups(self, train.lr, train.text_lr, train.weight_decay))
        total = max(1, train.epochs * self.steps_per_epoch)
        warmup = min(train.warmup_steps, total // 2)
        budget = 60 * train.max_minutes if train.max_minutes else None
        started = []

        def schedule(step: int) -> float:
            """Linear warm-up, then cosine to zero over the steps or the time budget, whichever ends first."""
            if step < warmup:
                return (step + 1) / warmup
            if not started:
                started.append(time.monotonic())
            done = (step - warmup) / max(1, total - warmup)
            if budget:
                done = max(done, (time.monotonic() - started[0]) / budget)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))

        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}}


@dataclass
class Engine:
    """Where training runs, Lightning's way: the same recipe on a laptop, a GPU node or a cluster.

    With several devices or nodes every loss gathers the features of all ranks (losses.gather_features),
    so a step's negatives are the global batch; rank 0 alone writes the run directory."""

    accelerator: str = "cpu"  # auto | cpu | gpu (| any Lightning accelerator)
    devices: int | str = 1  # per node: a count, "auto", or a list like "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_find_unused_parameters_true | fsdp ...
    precision: str = "32-true"  # 32-true | bf16-mixed | 16-mixed

    def trainer_options(self) -> dict:
        return {"accelerator": self.accelerator, "devices": self.devices, "num_nodes": self.num_nodes,
                "strategy": self.strategy, "precision": self.precision}


def train(data_dir: str | os.PathLike, recipe: Recipe, out: str | os.PathLike, resume: bool = False,
          progress_bar: bool = True, engine: Engine = Engine()) -> dict | None:
    """Train, keep the best epoch by validation Recall@10, write the run directory; returns a summary
    (None on the ranks other than 0 of a distributed run, which write nothing).

    A recipe with `stages` (CLaSP: pretrain on titles, then fine-tune on keywords) trains each stage
    in `out/<stage>` from the previous stage's best weights with a fresh optimizer and schedule; the
    last stage's model is the run's model. `train.max_minutes` is then shared by `budget_fraction`.
    """
    out = Path(out)
    if isinstance(recipe, dict):
        recipe = Recipe.from_dict(recipe)
    if not recipe.stages:
        model, summary, metrics = _train_stage(data_dir, recipe, out, None, resume, progress_bar, engine)
        if summary is not None:
            _write_run(out, model, recipe, summary, metrics)
        return summary
    import pandas as pd

    model, summaries, curves, started = None, [], [], time.time()
    for number in range(len(recipe.stages)):
        name, share, settings = recipe.stage(number)
        if recipe.train.max_minutes:
            share = 1 / len(recipe.stages) if share is None else share
            settings.train.max_minutes = recipe.train.max_minutes * share
        stage_dir = out / name
        if resume and (stage_dir / "config.json").is_file() and (stage_dir / METRICS_FILE).is_file():
            model = CrystalClip.load(stage_dir)  # finished earlier
            summary = json.loads((stage_dir / "config.json").read_text())["training"]
            metrics = pd.read_csv(stage_dir / METRICS_FILE)
        else:
            model, summary, metrics = _train_stage(data_dir, settings, stage_dir, model, resume, progress_bar, engine)
            if summary is None:  # not rank 0: the next stage starts from this model, rank 0 writes
                continue
            _write_run(stage_dir, model, settings, summary, metrics)
        summaries.append({"stage": name, **summary})
        offset = int(curves[-1]["epoch"].max()) + 1 if curves else 0
        curves.append(metrics.assign(stage=name, epoch=metrics["epoch"] + offset))
    if not summaries:
        return None
    summary = {**summaries[-1], "stages": summaries, "train_seconds": round(time.time() - started, 1)}
    summary["epochs"] = sum(s["epochs"] for s in summaries)
    _write_run(out, model, recipe, summary, pd.concat(curves, ignore_index=True))
    return summary


def _train_stage(data_dir, recipe: Recipe, out: Path, model: CrystalClip | None, resume: bool, progress_bar: bool,
                 engine: Engine):
    train_cfg = recipe.train
    L.seed_everything(train_cfg.seed, workers=True)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = Dataset(data_dir, columns=TRAINING_COLUMNS)
    model = model or CrystalClip(recipe.model)
    graphs = data.check_graphs(model.config.graph)  # the model's graph settings, or one clear line
    augmentation = recipe.augment
    rows = data.rows("train", train_cfg.sources)
    # the training rows' texts only: the tower never reads a held-out row's texts for training
    pool = data.text_pool(recipe.data.texts, formula_free=augmentation.formula_free > 0).of_rows(rows)
    if augmentation.formula_free and augmentation.formula_free_by == "text":
        pool = pool.with_twins(augmentation.formula_free, train_cfg.seed)
        augmentation = dataclasses.replace(augmentation, formula_free=0.0)
    rows = rows[pool.has_text(rows)]
    if train_cfg.max_sites:
        rows = rows[data.table["num_sites"].to_numpy()[rows] <= train_cfg.max_sites]
    if len(rows) < 2 or len(data.rows("val", train_cfg.sources)) < 2:
        raise BadInput(f"{data_dir}: too few train/val rows to train on ({len(rows)} train)")

    # cached features stay memory-mapped (gathered per batch), so memory does not grow with the texts;
    # a fine-tuned tower changes: its texts go through it every step instead of through the cache
    frozen = model.text_tower.frozen
    formula_features = data.feature_rows(data.formulas, model.formula_tower) if model.config.composition_channel else None
    text_features = data.feature_rows(pool.texts, model.text_tower) if frozen else None
    free_features = data.feature_rows(pool.formula_free, model.text_tower) if frozen and pool.formula_free is not None else None
    if model.text_tower.tokenizer.mask_token:
        augmentation = dataclasses.replace(augmentation, mask_token=model.text_tower.tokenizer.mask_token)
    symmetry, potential = row_symmetry(model, data), row_potential(model, data)
    collate = PairCollate(data, graphs, pool, text_features, formula_features, symmetry, free_features=free_features,
                          potential=potential, augmentation=augmentation,
                          views=2 if recipe.intramodal else 1)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    epoch_rows = min(train_cfg.epoch_rows or len(rows), len(rows))  # shorter epochs: validate more often
    sampler = torch.utils.data.RandomSampler(rows.tolist(), num_samples=epoch_rows, generator=generator)
    loader = torch.utils.data.DataLoader(
        rows.tolist(), batch_size=train_cfg.batch_size, sampler=sampler,
        drop_last=epoch_rows > train_cfg.batch_size, collate_fn=collate, num_workers=train_cfg.workers,
        persistent_workers=train_cfg.workers > 0)
    module = ClipModule(recipe, model, data, graphs, formula_features, symmetry, potential, steps_per_epoch=len(loader))

    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
    from lightning.pytorch.loggers import CSVLogger

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(dirpath=out / CHECKPOINTS, monitor="val_R@10", mode="max", save_last=True,
                                 filename="best", save_top_k=1)
    max_time = {"seconds": 60 * train_cfg.max_minutes} if train_cfg.max_minutes else None
    trainer = L.Trainer(
        max_epochs=train_cfg.epochs, max_time=max_time, deterministic=True, **engine.trainer_options(),
        callbacks=[checkpoint] + ([RichProgressBar()] if progress_bar else []),
        logger=CSVLogger(out, name="logs", version=""), enable_progress_bar=progress_bar,
        enable_model_summary=False, num_sanity_val_steps=0, log_every_n_steps=1,
    )
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")  # the frozen tower, on purpose
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")  # Lightning's own deprecation notice
    started = time.time()
    ckpt_path = out / CHECKPOINTS / "last.ckpt"
    resume = resume and ckpt_path.is_file()
    earlier = _epoch_metrics(out) if resume and (out / "logs" / "metrics.csv").is_file() else None
    trainer.fit(module, train_dataloaders=loader, ckpt_path=str(ckpt_path) if resume else None)
    seconds = time.time() - started
    if not trainer.is_global_zero:
        best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(best, strict=module.strict_loading)
        return module.model.cpu(), None, None
    if not checkpoint.best_model_path:
        raise BadInput(f"no epoch finished within the budget ({train_cfg.max_minutes} min); "
                         f"lower train.epoch_rows so that epochs are shorter")
    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(best, strict=module.strict_loading)
    metrics = _epoch_metrics(out)
    if earlier is not None:  # Lightning's CSV logger starts its file afresh on resume
        import pandas as pd

        metrics = pd.concat([earlier[earlier["epoch"] < metrics["epoch"].min()], metrics], ignore_index=True)
    summary = {"best_val_R@10": float(checkpoint.best_model_score), "epochs": int(metrics["epoch"].max()) + 1,
               "train_rows": len(rows), "train_seconds": round(seconds, 1), "dataset": str(Path(data_dir).resolve()),
               "world_size": trainer.world_size, "global_batch": train_cfg.batch_size * trainer.world_size,
               "engine": {**engine.trainer_options(), "devices": str(engine.devices)}}
    return module.model.cpu(), summary, metrics


def _write_run(out: Path, model: CrystalClip, recipe: Recipe, summary: dict, metrics) -> None:
    model.save(out, extra={"recipe": recipe.to_dict(), "training": summary})
    metrics.to_csv(out / METRICS_FILE, index=False)
    plot_training_curve(metrics, out / CURVE_FILE)


def _epoch_metrics(run: Path):
    import pandas as pd

    raw = pd.read_csv(run / "logs" / "metrics.csv")
    return raw.groupby("epoch").max(numeric_only=True).reset_index().drop(columns=["step"], errors="ignore")


def plot_training_curve(metrics, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(metrics["epoch"], metrics["train_loss"], marker="o")
    left.set(xlabel="epoch", ylabel="train loss")
    right.plot(metrics["epoch"], metrics["val_R@10"], marker="o", label="model")
    right.plot(metrics["epoch"], metrics["val_random_R@10"], linestyle="--", label="random")
    right.set(xlabel="epoch", ylabel="val Recall@10 (text → crystal)")
    right.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def parameter_groups(module: torch.nn.Module, lr: float, text_lr: float | None, weight_decay: float) -> list[dict]:
    """AdamW groups: weight matrices decay; biases, norm weights and the logit scale do not (nanoGPT's
    `dim >= 2` rule, open_clip's exclude_from_wd). A fine-tuned pretrained tower gets `text_lr`."""
    tower = {id(p) for name, p in module.named_parameters() if ".text_tower." in f".{name}"}
    groups: dict[tuple[bool, bool], list] = {}
    for p in module.parameters():
        if p.requires_grad:
            groups.setdefault((id(p) in tower, p.dim() >= 2), []).append(p)
    return [{"params": params, "lr": (text_lr or lr) if in_tower else lr, "weight_decay": weight_decay if decay else 0.0}
            for (in_tower, decay), params in sorted(groups.items())]
