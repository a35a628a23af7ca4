"""Text tower: parity with sentence-transformers, order, freezing, offline loading, embedding cache."""
import ast
import os
import time

import numpy as np
import pytest
import torch
from torch import nn

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # guard only: the code must not need it

from .conftest import mp40_table  # noqa: E402
from crystalclip.data.text_cache import cache_path, cached_text_rows  # noqa: E402
from crystalclip.models.text import (  # noqa: E402
    TextTower, TextTowerConfig, default_text_model_path, get_text_tower)


pytestmark = pytest.mark.usefixtures("no_network")


def cached_text_embeddings(cache_dir, texts, tower, **options) -> np.ndarray:
    """The cache's rows of `texts` as one dense array."""
    rows = cached_text_rows(cache_dir, texts, tower, **options)
    return rows[np.arange(len(rows))].numpy()


@pytest.fixture(scope="module")
def tower():
    return get_text_tower("minilm")


@pytest.fixture(scope="module")
def captions():
    caps = [c for p in mp40_table()["prompt"][:8] for c in ast.literal_eval(p)]
    return caps + ["  leading and trailing spaces  ", "", "word " * 400]  # empty, truncated


def test_default_path_and_config_roundtrip():
    path = default_text_model_path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    cfg = TextTowerConfig(model="minilm", max_length=64, trainable_layers=2, pooling="cls")
    assert TextTowerConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown key text.unknown"):
        TextTowerConfig.from_dict({**cfg.to_dict(), "unknown": 1})
    with pytest.raises(ValueError):
        TextTowerConfig(pooling="max")


@pytest.mark.parametrize("long_text", ["truncate", "windows"])
def test_fast_path_equals_transformers(captions, long_text):
    """A frozen BERT tower runs on `tokenizers` + torch (models/fast_bert.py); a trainable one on
    transformers. Same tokens, same windows, same vectors."""
    from crystalclip.models.fast_bert import FastBert

    config = TextTowerConfig(max_length=32, long_text=long_text)
    fast = get_text_tower(config)
    reference = TextTower(TextTowerConfig(**{**config.to_dict(), "trainable_layers": -1})).eval()
    assert isinstance(fast.model, FastBert) and not isinstance(reference.model, FastBert)
    texts = captions + ["Å³ – Fe₂O₃ naïve 超导 ", "CaTiO$_3$ (Pnma), a = 5.44 Å"]
    assert fast._token_lists(texts) == reference._token_lists(texts)
    for key, value in fast.tokenize(texts).items():
        assert torch.equal(value, reference.tokenize(texts)[key]), key
    with torch.no_grad():
        expected = reference.forward_texts(texts)
    assert (fast.encode(texts, batch_size=7) - expected).abs().max().item() < 1e-5
    assert fast.tokenizer.mask_token == reference.tokenizer.mask_token == "[MASK]"


def test_frozen_tower_does_not_import_transformers():
    import subprocess
    import sys

    code = ("import sys; from crystalclip.models.text import get_text_tower; "
            "get_text_tower('minilm').encode(['a cubic perovskite']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('transformers', 'pymatgen')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_matches_sentence_transformers(tower, captions):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_text_model_path()), device="cpu")
    st.max_seq_length = tower.max_length
    ref = st.encode(captions, convert_to_tensor=True, batch_size=16)
    ours = torch.nn.functional.normalize(tower.encode(captions, batch_size=16), dim=-1)
    assert tower.dim == 384 and ours.shape == (len(captions), 384)
    assert (ours - ref).abs().max().item() < 1e-5
    # forward on a tokenized batch gives the same (un-normalised) vectors as encode
    batch = tower.tokenize(captions[:5])
    with torch.no_grad():
        direct = tower(**batch)
    assert torch.allclose(direct, tower.encode(captions[:5]), atol=1e-5)


def test_encode_restores_input_order(tower, captions):
    texts = captions[:20]
    full = tower.encode(texts, batch_size=3)
    single = torch.cat([tower.encode([t]) for t in texts[:6]])
    assert torch.allclose(full[:6], single, atol=1e-5)
    perm = np.random.default_rng(0).permutation(len(texts))
    shuffled = tower.encode([texts[i] for i in perm], batch_size=7)
    assert torch.allclose(shuffled, full[perm], atol=1e-5)
    assert tower.encode([]).shape == (0, 384)


def test_frozen_stays_eval_without_grad(tower, captions):
    parent = nn.Sequential(tower, nn.Linear(384, 8))
    parent.train()
    assert parent[1].training
    assert not tower.training and not any(m.training for m in tower.modules())
    assert not any(p.requires_grad for p in tower.parameters())
    batch = tower.tokenize(captions[:4])
    a, b = tower(**batch), tower(**batch)  # no dropout
    assert torch.equal(a, b) and not a.requires_grad


def test_trainable_top_layers():
    tt = TextTower(TextTowerConfig(trainable_layers=2))
    layers = tt.model.encoder.layer
    trainable = {n for n, p in tt.named_parameters() if p.requires_grad}
    expected = {f"model.encoder.layer.{i}.{n}" for i in (4, 5) for n, _ in layers[i].named_parameters()}
    assert trainable == expected  # pooler stays frozen: neither pooling reads it
    nn.Sequential(tt).train()
    assert tt.training and layers[5].training and layers[4].training
    assert not layers[3].training and not tt.model.embeddings.training
    batch = tt.tokenize(["a cubic perovskite", "a layered oxide"])
    tt(**batch).sum().backward()
    assert all(p.grad is not None for n, p in tt.named_parameters() if n in expected)
    assert all(p.grad is None for n, p in tt.named_parameters() if n not in expected)
    assert get_text_tower("minilm", trainable_layers=2) is not get_text_tower("minilm", trainable_layers=2)


def test_local_directory_equals_minilm(tower, tmp_path):
    local = tmp_path / "my-minilm"
    local.mkdir()
    src = default_text_model_path()
    for f in src.iterdir():
        if f.is_file():
            (local / f.name).symlink_to(f)
    other = TextTower(TextTowerConfig(model=str(local)))
    texts = ["superconducting cuprate", "a wide band gap insulator"]
    assert torch.allclose(other.encode(texts), tower.encode(texts), atol=1e-6)
    # same content hash, max_length and pooling; only the directory name differs
    assert other.identity().rsplit("-", 3)[1:] == tower.identity().rsplit("-", 3)[1:]
    assert other.identity().startswith("my-minilm-")
    assert get_text_tower(str(src)) is tower  # same resolved path + config: one shared tower


def test_missing_path_fails_fast_offline(tmp_path):
    t = time.perf_counter()
    for bad in (tmp_path / "nope", "m3rg-iitd/matscibert-not-here", tmp_path):  # tmp_path: no config
        with pytest.raises(FileNotFoundError):
            TextTower(TextTowerConfig(model=str(bad)))
    assert time.perf_counter() - t < 2.0


def test_cache_computes_once_and_keeps_order(tower, captions, tmp_path, monkeypatch):
    calls = []
    real = tower.encode

    def counting(texts, **kw):
        calls.append(list(texts))
        return real(texts, **kw)

    monkeypatch.setattr(tower, "encode", counting)
    texts = [captions[0], captions[1], captions[0], captions[2], captions[1]]
    first = cached_text_embeddings(tmp_path, texts, tower)
    assert first.dtype == np.float32 and first.shape == (5, 384)
    assert calls == [[captions[0], captions[1], captions[2]]]  # unique texts only
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[1], first[4])
    ref = real(texts).numpy()
    assert np.abs(first - ref).max() < 1e-5

    again = cached_text_embeddings(tmp_path, texts[::-1], tower)
    assert len(calls) == 1  # no forward pass
    assert np.array_equal(again, first[::-1])

    more = cached_text_embeddings(tmp_path, [captions[3], captions[0], captions[3]], tower)
    assert calls[1] == [captions[3]]  # appended, not recomputed
    assert np.array_equal(more[1], first[0]) and np.array_equal(more[0], more[2])
    root = cache_path(tmp_path, tower)
    assert np.load(root / "embeddings.npy").shape == (4, 384)
    assert not [p for p in root.iterdir() if p.suffix == ".tmp"]
    assert cached_text_embeddings(tmp_path, [], tower).shape == (0, 384)


def test_cache_keeps_finished_parts_of_a_killed_run(tower, captions, tmp_path, monkeypatch):
    real = tower.encode
    calls = []

    def dies_on_second_part(texts, **kw):
        calls.append(list(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed in the middle of the second part
        return real(texts, **kw)

    monkeypatch.setattr(tower, "encode", dies_on_second_part)
    texts = captions[:5]
    with pytest.raises(KeyboardInterrupt):
        cached_text_embeddings(tmp_path, texts, tower, part=2)
    calls.clear()
    monkeypatch.setattr(tower, "encode", lambda t, **kw: calls.append(list(t)) or real(t, **kw))
    out = cached_text_embeddings(tmp_path, texts, tower, part=2)
    assert calls == [texts[2:4], texts[4:]]  # the first part was kept, only the rest is encoded
    assert np.abs(out - real(texts).numpy()).max() < 1e-5


def test_bf16_precision_is_close_and_cached_apart(captions, tmp_path):
    fp32 = get_text_tower("minilm")
    bf16 = get_text_tower("minilm", precision="bf16")
    assert bf16 is not fp32 and bf16.identity() == fp32.identity() + "-bf16"
    a, b = fp32.encode(captions[:6]), bf16.encode(captions[:6])
    assert not torch.equal(a, b)  # it did run in bfloat16
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.99
    assert cache_path(tmp_path, fp32) != cache_path(tmp_path, bf16)
    with pytest.raises(ValueError, match="precision"):
        TextTowerConfig(precision="fp16")
