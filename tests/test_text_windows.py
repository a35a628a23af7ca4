"""Long-text windows of the text tower: mean of max_length windows, same vector for short texts, gradients."""
import ast
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # guard only: the code must not need it

from .conftest import mp40_table  # noqa: E402
from crystalclip.models.text import TextTowerConfig, get_text_tower  # noqa: E402

MAX = 32


pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def windows():
    return get_text_tower(TextTowerConfig(max_length=MAX, long_text="windows"))


@pytest.fixture(scope="module")
def truncate():
    return get_text_tower(TextTowerConfig(max_length=MAX))


@pytest.fixture(scope="module")
def captions():
    return [c for p in mp40_table()["prompt"][:6] for c in ast.literal_eval(p)]


@pytest.fixture(scope="module")
def long_text(captions):
    return " ".join(captions[:10])  # two structures' captions: several 32-token windows


def by_hand(tower, text):
    """Tokenize without special tokens, cut into MAX-2 token pieces, add [CLS]/[SEP], encode each alone."""
    tok = tower.tokenizer
    ids = tok(text, add_special_tokens=False)["input_ids"]
    body = MAX - 2
    pieces = [ids[i:i + body] for i in range(0, len(ids), body)]
    vectors = []
    with torch.no_grad():
        for piece in pieces:
            window = torch.tensor([[tok.cls_token_id, *piece, tok.sep_token_id]])
            vectors.append(tower(input_ids=window, attention_mask=torch.ones_like(window),
                                 token_type_ids=torch.zeros_like(window))[0])
    return torch.stack(vectors).mean(0), len(pieces)


def test_config_and_identity(windows, truncate):
    with pytest.raises(ValueError):
        TextTowerConfig(long_text="chunks")
    assert TextTowerConfig.from_dict(windows.config.to_dict()).long_text == "windows"
    assert windows is not truncate  # the shared-tower cache keys on the mode
    assert windows.identity() != truncate.identity() and "windows" in windows.identity()
    assert "windows" not in truncate.identity()
    assert "long_text='windows'" in repr(windows)


def test_long_text_is_mean_of_windows(windows, truncate, long_text):
    expected, n = by_hand(windows, long_text)
    assert n >= 3
    tokens, owner = windows.tokenize_windows([long_text])
    assert owner.tolist() == [0] * n and tokens["input_ids"].shape == (n, MAX)
    got = windows.encode([long_text])[0]
    assert (got - expected).abs().max().item() < 1e-5
    # and it is not what truncation gives (the first window only)
    first = truncate.encode([long_text])[0]
    assert (got - first).abs().max().item() > 1e-2


def test_short_texts_unchanged(windows, truncate, captions, long_text):
    short = captions[:12]
    assert all(len(windows.tokenizer(c)["input_ids"]) <= MAX for c in short)
    assert torch.equal(windows.encode(short), truncate.encode(short))
    # mixed with a long text in the same batches, short texts still get their own vectors
    mixed = windows.encode([long_text, *short], batch_size=4)
    assert (mixed[1:] - truncate.encode(short)).abs().max().item() < 1e-5
    tokens, owner = windows.tokenize_windows(short)
    assert torch.equal(owner, torch.arange(len(short)))
    assert torch.equal(tokens["input_ids"], truncate.tokenize(short)["input_ids"])


def test_window_tokens_and_owner(windows, captions, long_text):
    texts = [captions[0], long_text, "", captions[1]]
    tokens, owner = windows.tokenize_windows(texts)
    assert owner.shape[0] == tokens["input_ids"].shape[0] == tokens["attention_mask"].shape[0]
    assert owner.tolist() == sorted(owner.tolist()) and set(owner.tolist()) == {0, 1, 2, 3}
    tok = windows.tokenizer
    for ids, mask in zip(tokens["input_ids"], tokens["attention_mask"]):
        real = ids[mask.bool()].tolist()
        assert len(real) <= MAX and real[0] == tok.cls_token_id and real[-1] == tok.sep_token_id
    # windows are consecutive: together they hold every token of the text once
    body = [t for ids, mask, o in zip(tokens["input_ids"], tokens["attention_mask"], owner) if o == 1
            for t in ids[mask.bool()].tolist()[1:-1]]
    assert body == tok(long_text, add_special_tokens=False)["input_ids"]


def test_encode_matches_forward_texts_and_progress(windows, captions, long_text):
    texts = [captions[2], long_text, captions[3], long_text[: len(long_text) // 2]]
    calls = []
    encoded = windows.encode(texts, batch_size=3, progress=lambda done, total: calls.append(done))
    with torch.no_grad():
        direct = windows.forward_texts(texts)
    assert direct.shape == (4, windows.dim)
    assert (encoded - direct).abs().max().item() < 1e-5
    assert calls == sorted(calls) and calls[-1] == len(texts) and len(calls) > 1


def test_gradients_flow_through_every_window(captions, long_text):
    tower = get_text_tower(TextTowerConfig(max_length=MAX, long_text="windows", trainable_layers=1))
    assert tower is not get_text_tower(TextTowerConfig(max_length=MAX, long_text="windows"))
    tower.train()
    z = tower.forward_texts([long_text, captions[0]])
    assert z.shape == (2, tower.dim) and z.requires_grad
    z[0].pow(2).sum().backward()  # only the long text's (windowed) vector
    top = [p for n, p in tower.model.named_parameters() if p.requires_grad]
    assert top and all(p.grad is not None and p.grad.abs().sum() > 0 for p in top if p.dim() > 1)
    assert all(p.grad is None for p in tower.model.embeddings.parameters())
    # the gradient reaches the last window: changing only its tokens changes the output
    tower.eval()
    with torch.no_grad():
        a = tower.forward_texts([long_text])
        b = tower.forward_texts([long_text + " cubic perovskite oxide"])
    assert (a - b).abs().max().item() > 1e-4
    # the trainable tower in eval mode computes what encode computes
    texts = [long_text, captions[0]]
    with torch.no_grad():
        assert (tower.forward_texts(texts) - tower.encode(texts)).abs().max() < 1e-5
