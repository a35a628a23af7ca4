"""Short summaries of a structure's texts (CLAMP): documents in, summaries out.

CLAMP pairs crystals with Pegasus summaries of paper abstracts: a text tower reads ~77 tokens, so a
long document is better represented by its gist than by its first sentence. The document of a
structure is all its texts (titles, minerals, captions, ...) plus its ``abstract`` when the dataset
has one. Documents of at most ``max_words`` words are kept as they are; longer ones are summarised by

* ``"extractive"`` (default, offline): the document's most central sentences, by the frozen MiniLM
  tower (cosine to the mean sentence vector), kept in their original order up to ``max_words``;
* a local seq2seq model directory (Pegasus, BART, T5, ...): beam search. Nothing is downloaded.

Writing them for a dataset is `crystalclip.derive.dataset_summaries` (`crystalclip data summarize`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import BadInput, NotFound
from .sentences import split_sentences

EXTRACTIVE = "extractive"
_DUPLICATE = 0.95  # cosine above which a candidate sentence repeats one already chosen


def document_parts(texts, abstract=None) -> list[str]:
    """The distinct non-empty texts of a structure, each ending in sentence punctuation (so a title
    is a sentence of its own when the parts are joined)."""
    parts = []
    for t in [*(texts if texts is not None else []), abstract]:
        if t is None or (isinstance(t, float) and t != t):  # missing abstract (None / NaN)
            continue
        t = " ".join(str(t).split())
        if t:
            parts.append(t if t[-1] in ".!?" else t + ".")
    return list(dict.fromkeys(parts))


def n_words(text: str) -> int:
    return len(text.split())


def _cut(text: str, max_words: int) -> str:
    """The first max_words words of text (a prefix of it, so still a substring of the document)."""
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words])


# ---------------------------------------------------------------------- summarisers
class ExtractiveSummarizer:
    """Central sentences by a frozen sentence encoder; every summary is made of the document's sentences."""

    def __init__(self, tower, batch_size: int = 128):
        self.tower = tower  # anything with encode(texts, batch_size) -> (N, D) tensor
        self.batch_size = batch_size

    def __call__(self, documents: list[str], max_words: int) -> list[str]:
        sentences = [split_sentences(d) for d in documents]
        unique = list(dict.fromkeys(s for ss in sentences for s in ss))
        index = {s: i for i, s in enumerate(unique)}
        vectors = torch.nn.functional.normalize(self.tower.encode(unique, batch_size=self.batch_size), dim=-1)
        return [self._pick(ss, vectors[[index[s] for s in ss]], max_words) if ss else "" for ss in sentences]

    @staticmethod
    def _pick(sentences: list[str], vectors: torch.Tensor, max_words: int) -> str:
        """Most central first; skip near-duplicates and what does not fit; output in document order."""
        centre = torch.nn.functional.normalize(vectors.mean(0), dim=0)
        order = torch.argsort(vectors @ centre, descending=True).tolist()
        chosen, words = [], 0
        for i in order:
            w = n_words(sentences[i])
            if words + w > max_words:
                continue
            if chosen and (vectors[chosen] @ vectors[i]).max() > _DUPLICATE:
                continue
            chosen.append(i)
            words += w
        if not chosen:  # every sentence is longer than max_words: the most central one, cut
            return _cut(sentences[order[0]], max_words)
        return " ".join(sentences[i] for i in sorted(chosen))


class Seq2SeqSummarizer:
    """A local Hugging Face seq2seq model (Pegasus, BART, T5, ...), beam search, CPU or given device."""

    def __init__(self, path: str | os.PathLike, num_beams: int | None = None, batch_size: int = 8,
                 device: str = "cpu"):
        from transformers import AutoModelForSeq2SeqLM

        from ..hf import load_local

        self.path = check_model_dir(path)
        self.tokenizer, self.model = load_local(AutoModelForSeq2SeqLM, self.path)
        self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        model_beams = getattr(self.model.generation_config, "num_beams", 1) or 1
        self.num_beams = num_beams or (model_beams if model_beams > 1 else 4)
        # T5 is told its task by a prefix ("summarize: "), kept in its config.
        params = (getattr(self.model.config, "task_specific_params", None) or {}).get("summarization", {})
        self.prefix = params.get("prefix", "") or (getattr(self.model.config, "prefix", None) or "")
        limit = self.tokenizer.model_max_length
        if not limit or limit > 100_000:  # "unset" in HF is a huge number
            limit = getattr(self.model.config, "max_position_embeddings", None) or 512
        self.max_input = int(limit)

    @torch.no_grad()
    def __call__(self, documents: list[str], max_words: int) -> list[str]:
        out = []
        for start in range(0, len(documents), self.batch_size):
            batch = [self.prefix + d for d in documents[start:start + self.batch_size]]
            enc = self.tokenizer(batch, truncation=True, max_length=self.max_input, padding=True,
                                 return_tensors="pt")
            # ~1.5 subword tokens per word in scientific English; the words are cut to max_words after.
            ids = self.model.generate(input_ids=enc["input_ids"].to(self.device),
                                      attention_mask=enc["attention_mask"].to(self.device),
                                      num_beams=self.num_beams, max_new_tokens=int(1.5 * max_words) + 2,
                                      early_stopping=True)
            out += [_cut(" ".join(t.split()), max_words)
                    for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return out


def get_summarizer(summarizer: str | os.PathLike = EXTRACTIVE, tower=None):
    """"extractive" (over `tower`, a frozen sentence encoder) or a local seq2seq model directory."""
    if isinstance(summarizer, str) and summarizer == EXTRACTIVE:
        if tower is None:
            raise BadInput("the extractive summarizer needs a sentence encoder (tower=...)")
        return ExtractiveSummarizer(tower)
    return Seq2SeqSummarizer(summarizer)


def check_model_dir(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise NotFound(
            f"summarizer {str(path)!r} is not a local model directory with config.json "
            f"(crystalclip never downloads; use 'extractive' or the folder of a saved seq2seq model)")
    return path.resolve()
