"""Training: a recipe (configs/*.yaml) + a dataset -> a run directory.

A run directory holds config.json + model.safetensors (the best epoch by validation Recall@10),
metrics.csv (one row per epoch), training_curve.png, and checkpoints/ (Lightning's, for --resume).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from importlib import resources
from pathlib import Path

import lightning as L
import torch
import yaml

from .data.pairs import PairCollate, PairData
from .encoding import embed_rows, embed_text_features, split_queries
from .fileio import atomic_path
from .losses import get_loss
from .models.clip import CrystalClip, ModelConfig

METRICS_FILE, CURVE_FILE, CHECKPOINTS = "metrics.csv", "training_curve.png", "checkpoints"


def load_recipe(name_or_path: str, overrides: dict | None = None) -> dict:
    """A recipe by name (configs/NAME.yaml in the package) or by path, with dotted overrides applied."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        recipe = yaml.safe_load(path.read_text())
    else:
        try:
            recipe = yaml.safe_load(resources.files("crystalclip.configs").joinpath(f"{name_or_path}.yaml").read_text())
        except FileNotFoundError:
            known = sorted(p.name[:-5] for p in resources.files("crystalclip.configs").iterdir() if p.name.endswith(".yaml"))
            raise ValueError(f"unknown recipe {name_or_path!r}; known: {', '.join(known)} (or a .yaml path)") from None
    for dotted, value in (overrides or {}).items():
        node = recipe
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return recipe


class ClipModule(L.LightningModule):
    def __init__(self, recipe: dict, model: CrystalClip, data: PairData, text_features, formula_features,
                 steps_per_epoch: int):
        super().__init__()
        self.recipe = recipe
        self.model = model
        self.loss_fn = get_loss(recipe.get("loss", "infonce"))
        self.data = data
        self.text_features, self.formula_features = text_features, formula_features
        self.steps_per_epoch = steps_per_epoch
        self.val_rows = data.rows("val", recipe["train"].get("sources"))
        self.strict_loading = not model.text_tower.frozen  # a frozen tower is left out of checkpoints

    def on_save_checkpoint(self, checkpoint):
        if self.model.text_tower.frozen:  # 90 MB that never change: loaded from the tower's package
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                        if not k.startswith("model.text_tower.")}

    def training_step(self, batch, batch_idx):
        crystal = self.model.embed_crystals(batch.graphs, batch.formula_features)
        features = batch.text_features if batch.text_features is not None else self.model.text_features(batch.texts)
        text = self.model.embed_text_features(features)
        loss = self.loss_fn(crystal, text, self.model.logit_scale, batch.text_ids)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=len(batch.rows))
        self.log("logit_scale", self.model.logit_scale, on_step=False, on_epoch=True, batch_size=len(batch.rows))
        return loss

    def on_train_epoch_end(self):
        """Validation Recall@10 (text -> crystal over the whole val split), logged every epoch."""
        from .evaluation import retrieval_metrics

        crystals = embed_rows(self.model, self.data, self.val_rows, self.formula_features)
        text_ids, owners = split_queries(self.data, self.val_rows)
        if self.text_features is not None:
            features = self.text_features[torch.as_tensor(text_ids)]
        else:  # a fine-tuned tower: features from its current weights
            features = self.model.text_tower.encode([self.data.texts[i] for i in text_ids])
        texts = embed_text_features(self.model, features)
        metrics = retrieval_metrics(texts, crystals, owners)
        self.log("val_R@10", metrics["text_to_crystal"]["R@10"], prog_bar=True)
        self.log("val_MRR", metrics["text_to_crystal"]["MRR"])
        self.log("val_random_R@10", metrics["random"]["R@10"])

    def configure_optimizers(self):
        train = self.recipe["train"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"])
        total = max(1, train["epochs"] * self.steps_per_epoch)
        warmup = min(train.get("warmup_steps", 0), total // 2)

        def schedule(step: int) -> float:  # linear warm-up, then cosine to zero
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}}


def train(data_dir: str | os.PathLike, recipe: dict, out: str | os.PathLike, resume: bool = False,
          progress_bar: bool = True) -> dict:
    """Train, keep the best epoch by validation Recall@10, write the run directory; returns a summary."""
    out = Path(out)
    train_cfg = recipe["train"]
    L.seed_everything(train_cfg.get("seed", 0), workers=True)
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = PairData(data_dir)
    rows = data.rows("train", train_cfg.get("sources"))
    max_sites = train_cfg.get("max_sites")
    if max_sites:
        rows = rows[data.table["num_sites"].to_numpy()[rows] <= max_sites]
    if len(rows) < 2 or len(data.rows("val", train_cfg.get("sources"))) < 2:
        raise ValueError(f"{data_dir}: too few train/val rows to train on ({len(rows)} train)")

    model = CrystalClip(ModelConfig.from_dict(recipe["model"]))
    formula_features = data.formula_features(model.formula_tower)
    # a fine-tuned tower changes: its texts go through it every step instead of through the cache
    text_features = data.text_features(model.text_tower) if model.text_tower.frozen else None
    loader = torch.utils.data.DataLoader(
        rows.tolist(), batch_size=train_cfg["batch_size"], shuffle=True, drop_last=len(rows) > train_cfg["batch_size"],
        collate_fn=PairCollate(data, text_features, formula_features), num_workers=0,
        generator=torch.Generator().manual_seed(train_cfg.get("seed", 0)),
    )
    module = ClipModule(recipe, model, data, text_features, formula_features, steps_per_epoch=len(loader))

    from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
    from lightning.pytorch.loggers import CSVLogger

    out.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(dirpath=out / CHECKPOINTS, monitor="val_R@10", mode="max", save_last=True,
                                 filename="best", save_top_k=1)
    trainer = L.Trainer(
        max_epochs=train_cfg["epochs"], accelerator="cpu", devices=1, deterministic=True,
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

    best = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(best, strict=module.strict_loading)
    metrics = _epoch_metrics(out)
    if earlier is not None:  # Lightning's CSV logger starts its file afresh on resume
        import pandas as pd

        metrics = pd.concat([earlier[earlier["epoch"] < metrics["epoch"].min()], metrics], ignore_index=True)
    summary = {"best_val_R@10": float(checkpoint.best_model_score), "epochs": train_cfg["epochs"],
               "train_rows": len(rows), "train_seconds": round(seconds, 1), "dataset": str(Path(data_dir).resolve())}
    module.model.save(out, extra={"recipe": recipe, "training": summary})
    metrics.to_csv(out / METRICS_FILE, index=False)
    plot_training_curve(metrics, out / CURVE_FILE)
    return summary


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
    left.set(xlabel="epoch", ylabel="train loss (InfoNCE)")
    right.plot(metrics["epoch"], metrics["val_R@10"], marker="o", label="model")
    right.plot(metrics["epoch"], metrics["val_random_R@10"], linestyle="--", label="random")
    right.set(xlabel="epoch", ylabel="val Recall@10 (text → crystal)")
    right.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
