"""A training recipe (configs/*.yaml): every key declared once here, typed, checked strictly.

    recipe = load_recipe("default", {"model.embed_dim": 128})   # ConfigError for an unknown key or type
    recipe.to_dict()                                            # what a run's config.json records

A recipe with `stages` (CLaSP: pretrain on titles, then fine-tune on keywords) trains each stage from
the previous one's weights; a stage overrides any recipe key (`data`, `loss`, `train.epochs`, ...)
and takes `budget_fraction` of `train.max_minutes`.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .config import from_dict, to_dict
from .data.loader import Augmentation
from .errors import ConfigError, did_you_mean
from .losses import LOSSES
from .models.clip import ModelConfig


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_size: int = 256
    lr: float = 1e-3
    text_lr: float | None = None  # a fine-tuned tower's learning rate (CLaC: 2e-5); None = lr
    weight_decay: float = 1e-4  # on weight matrices only: biases, norms and the logit scale are not decayed
    warmup_steps: int = 50
    seed: int = 0
    max_sites: int | None = None  # larger cells are left out of training batches (still evaluated)
    sources: list[str] | None = None  # None = every source in the dataset
    max_minutes: float | None = None  # a wall-clock budget the cosine schedule follows
    epoch_rows: int | None = None  # rows per epoch (validate more often than once a pass)
    workers: int = 0  # DataLoader processes assembling batches beside the training step (0: in the step)
    # validation reads at most this many val rows (a seeded sample; None = all): its time and memory do
    # not grow with the dataset (the 179k-structure dataset has 17.9k val rows, all of them read)
    val_rows: int | None = 20_000

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.val_rows is not None and self.val_rows < 2:
            raise ValueError("val_rows must be >= 2 (or null: every val row)")


@dataclass
class DataConfig:
    texts: str | list[str] = "pairs"  # the dataset's own texts ("pairs") and/or derived kinds


@dataclass
class Recipe:
    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: str | dict = "infonce"  # a name, or {name: cosface, margin: 0.1, scale: 10} (losses.py)
    data: DataConfig = field(default_factory=DataConfig)
    augment: Augmentation = field(default_factory=Augmentation)
    intramodal: float = 0.0  # weight of CLaC's crystal-crystal and text-text terms
    train: TrainConfig = field(default_factory=TrainConfig)
    stages: list[dict] = field(default_factory=list)  # each: name, budget_fraction + recipe keys

    def __post_init__(self):
        loss_settings(self.loss)
        for number, stage in enumerate(self.stages):
            self.stage(number)  # a stage with a bad key fails when the recipe is read

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)

    def stage(self, number: int) -> tuple[str, float | None, "Recipe"]:
        """(name, budget fraction, the recipe with the stage's keys applied) of one stage."""
        stage = dict(self.stages[number])
        name = str(stage.pop("name", f"stage{number + 1}"))
        fraction = stage.pop("budget_fraction", None)
        base = {k: v for k, v in self.to_dict().items() if k != "stages"}
        try:
            settings = from_dict(Recipe, merge(base, stage), f"stages[{number}].")
        except ConfigError as error:
            raise ConfigError(str(error).replace(f"stages[{number}].stages", "stages")) from None
        return name, fraction, settings


def loss_settings(loss: str | dict) -> tuple[str, dict]:
    """`infonce` or `{name: cosface, margin: 0.5, scale: 3}` -> (name, params), checked against losses.py."""
    params = {"name": loss} if isinstance(loss, str) else dict(loss)
    name = params.pop("name", "infonce")
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}{did_you_mean(str(name), LOSSES)}; known: {', '.join(LOSSES)}")
    known = [p for p in inspect.signature(LOSSES[name].__init__).parameters if p != "self"]
    for key in params:
        if key not in known:
            raise ConfigError(f"unknown key loss.{key} for the {name} loss{did_you_mean(key, known, 'loss.')}; "
                              f"its keys: {', '.join(['name', *known])}")
    try:
        LOSSES[name](**params)  # its own range checks (margin below π, positive scale, ...)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"loss: {error}") from None
    return name, params


def merge(base: dict, override: dict) -> dict:
    """A dict with another's keys applied recursively (a stage's settings over the recipe's)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def recipe_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("crystalclip.configs").iterdir() if p.name.endswith(".yaml"))


def load_recipe(name_or_path: str, overrides: dict | None = None) -> Recipe:
    """A recipe by name (configs/NAME.yaml in the package) or by path, with dotted overrides applied."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        data = yaml.safe_load(path.read_text())
    elif name_or_path in recipe_names():
        data = yaml.safe_load(resources.files("crystalclip.configs").joinpath(f"{name_or_path}.yaml").read_text())
    else:
        raise ConfigError(f"unknown recipe {name_or_path!r}{did_you_mean(str(name_or_path), recipe_names())}; "
                          f"known: {', '.join(recipe_names())} (or a .yaml path)")
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot set {dotted}: {key} is not a section")
        node[leaf] = value
    return Recipe.from_dict(data)
