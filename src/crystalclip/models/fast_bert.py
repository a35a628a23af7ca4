"""A frozen BERT-family encoder without transformers: the same tokens and vectors, ~2.8 s sooner.

Importing transformers (5.x) and its tokenizer classes took 2.9 s of a 6.6 s first `crystalclip search`
on this machine; loading the weights took 0.5 s. A frozen tower whose folder holds a plain BERT
(all-MiniLM-L6-v2; SciBERT or MatSciBERT saved as safetensors) needs none of it: `tokenizers` (the
Rust library behind transformers' fast tokenizers, 0.03 s to load) reads tokenizer.json, and torch's
own layers compute BERT's encoder. `TextTower` uses this when `supports(path)`; everything else
(trainable towers, other architectures, .bin weights) goes through transformers.
tests/test_text_tower.py checks that both give the same tokens and vectors on real texts.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

_IGNORED = ("pooler.", "cls.", "embeddings.position_ids")


def _config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text())


def supports(path: Path) -> bool:
    """A plain post-LayerNorm BERT encoder with a tokenizer.json and one safetensors file."""
    if not ((path / "tokenizer.json").is_file() and (path / "model.safetensors").is_file()):
        return False
    config = _config(path)
    tokenizer_class = json.loads((path / "tokenizer_config.json").read_text()).get("tokenizer_class") \
        if (path / "tokenizer_config.json").is_file() else None
    return (config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and not config.get("is_decoder", False)
            and tokenizer_class in (None, "BertTokenizer", "BertTokenizerFast"))


def load(path: Path) -> tuple["FastTokenizer", "FastBert"]:
    """(tokenizer, frozen encoder in eval mode) from a folder that `supports`."""
    from safetensors.torch import load_file

    config = _config(path)
    state = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
    state = {k: v for k, v in state.items() if not k.startswith(_IGNORED)}
    model = FastBert(config)  # (not on the meta device: its random init imports torch._dynamo, 1.5 s)
    model.load_state_dict(state, strict=True, assign=True)
    model.requires_grad_(False)
    return FastTokenizer(path), model.eval()


def _linear_norm(n_in: int, n_out: int, eps: float) -> nn.ModuleDict:
    return nn.ModuleDict({"dense": nn.Linear(n_in, n_out), "LayerNorm": nn.LayerNorm(n_out, eps=eps)})


class _Layer(nn.Module):
    """One BERT block, named as in transformers' checkpoints so their state dicts load as they are."""

    def __init__(self, hidden: int, intermediate: int, heads: int, eps: float):
        super().__init__()
        self.heads = heads
        self.attention = nn.ModuleDict({
            "self": nn.ModuleDict({name: nn.Linear(hidden, hidden) for name in ("query", "key", "value")}),
            "output": _linear_norm(hidden, hidden, eps)})
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(hidden, intermediate)})
        self.output = _linear_norm(intermediate, hidden, eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        qkv = self.attention["self"]
        q, k, v = (qkv[name](x).view(b, t, self.heads, h // self.heads).transpose(1, 2)
                   for name in ("query", "key", "value"))
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, t, h)
        out = self.attention["output"]
        x = out["LayerNorm"](out["dense"](context) + x)
        inner = F.gelu(self.intermediate["dense"](x))
        return self.output["LayerNorm"](self.output["dense"](inner) + x)


class FastBert(nn.Module):
    """BERT's encoder for inference: ``forward(input_ids, attention_mask, token_type_ids) -> (hidden,)``."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = SimpleNamespace(**config)
        hidden, eps = config["hidden_size"], config.get("layer_norm_eps", 1e-12)
        self.embeddings = nn.ModuleDict({
            "word_embeddings": nn.Embedding(config["vocab_size"], hidden),
            "position_embeddings": nn.Embedding(config["max_position_embeddings"], hidden),
            "token_type_embeddings": nn.Embedding(config.get("type_vocab_size", 2), hidden),
            "LayerNorm": nn.LayerNorm(hidden, eps=eps)})
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(
            _Layer(hidden, config["intermediate_size"], config["num_attention_heads"], eps)
            for _ in range(config["num_hidden_layers"]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        e = self.embeddings
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        types = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = e["LayerNorm"](e["word_embeddings"](input_ids) + e["position_embeddings"](positions)
                           + e["token_type_embeddings"](types))
        keep = attention_mask.bool()[:, None, None, :]  # padding keys are never attended to
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return (x,)


class FastTokenizer:
    """The part of a transformers tokenizer that `TextTower` calls, on `tokenizers` directly."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        names = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "mask_token": "[MASK]"}
        special = path / "special_tokens_map.json"
        if special.is_file():
            for key, value in json.loads(special.read_text()).items():
                if key in names:
                    names[key] = value["content"] if isinstance(value, dict) else value
        for key, token in names.items():
            setattr(self, key, token)
            setattr(self, f"{key}_id", self._tokenizer.token_to_id(token))

    def __call__(self, texts, truncation: bool = False, max_length: int | None = None,
                 padding: bool = False, return_tensors: str | None = None,
                 return_overflowing_tokens: bool = False, stride: int = 0,
                 add_special_tokens: bool = True) -> dict:
        """input_ids, token_type_ids, attention_mask (lists, or tensors when padded with "pt"); with
        return_overflowing_tokens, every max_length window of a text and overflow_to_sample_mapping."""
        single = isinstance(texts, str)
        self._truncate(max_length if truncation else None, stride)
        encodings = self._tokenizer.encode_batch([texts] if single else list(texts),
                                                 add_special_tokens=add_special_tokens)
        owner = list(range(len(encodings)))
        if return_overflowing_tokens:
            pairs = [(i, piece) for i, e in enumerate(encodings) for piece in (e, *e.overflowing)]
            owner, encodings = [i for i, _ in pairs], [piece for _, piece in pairs]
        out = {"input_ids": [e.ids for e in encodings], "token_type_ids": [e.type_ids for e in encodings],
               "attention_mask": [e.attention_mask for e in encodings]}
        if single:
            return {k: v[0] for k, v in out.items()}
        if padding or return_tensors:
            out = self.pad(out, return_tensors=return_tensors)
        if return_overflowing_tokens:
            out["overflow_to_sample_mapping"] = owner
        return out

    def _truncate(self, max_length: int | None, stride: int) -> None:
        """Set the truncation only when it changes: setting it while another thread encodes raises
        tokenizers' "Already borrowed" (the server encodes queries from several threads)."""
        wanted = None if not max_length else {"max_length": max_length, "stride": stride,
                                               "strategy": "longest_first", "direction": "right"}
        if self._tokenizer.truncation != wanted:
            if wanted is None:
                self._tokenizer.no_truncation()
            else:
                self._tokenizer.enable_truncation(max_length, stride=stride)

    def pad(self, lists: dict[str, list[list[int]]], return_tensors: str | None = None) -> dict:
        """Right-pad every list to the longest: [PAD] ids, mask 0, token type 0."""
        width = max((len(ids) for ids in lists["input_ids"]), default=0)
        fill = {"input_ids": self.pad_token_id}
        out = {k: [row + [fill.get(k, 0)] * (width - len(row)) for row in rows] for k, rows in lists.items()}
        return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()} if return_tensors == "pt" else out
