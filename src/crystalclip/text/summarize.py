"""Short summaries of each structure's texts, stored as the derived kind ``summaries``.

CLAMP pairs crystals with Pegasus summaries of paper abstracts: a text tower reads ~77 tokens, so a
long document is better represented by its gist than by its first sentence. The document of a
structure is all its texts (titles, minerals, captions, ...) plus its ``abstract`` when the dataset
has one. Documents of at most ``max_words`` words are kept as they are; longer ones are summarised by

* ``"extractive"`` (default, offline): the document's most central sentences, by the frozen MiniLM
  tower (cosine to the mean sentence vector), kept in their original order up to ``max_words``;
* a local seq2seq model directory (Pegasus, BART, T5, ...): beam search. Nothing is downloaded.

    from crystalclip.text.summarize import dataset_summaries
    info = dataset_summaries("data/mp40", max_words=30)   # -> data/mp40/texts/summaries.parquet
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..data.derived import write_texts

KIND = "summaries"
EXTRACTIVE = "extractive"
_DOCS_PER_CHUNK = 256  # documents whose sentences are embedded together (one progress step)
_DUPLICATE = 0.95  # cosine above which a candidate sentence repeats one already chosen

# Words that end in a period without ending the sentence ("et al. 2001", "Fig. 3", "vs. insulating").
_ABBREVIATIONS = {
    "al", "approx", "ca", "cf", "co", "dr", "e.g", "eg", "eq", "eqs", "etc", "fig", "figs", "i.e", "ie",
    "inc", "ltd", "mr", "mrs", "ms", "no", "nos", "prof", "ref", "refs", "resp", "sp", "st", "vol", "vs",
    "viz", "wt", "gr", "temp", "calc", "obs", "exp", "min", "max", "ibid", "jr", "sr", "mt", "u.s",
}
# A candidate boundary: ., ! or ? (plus closing quotes/brackets), whitespace, then the next sentence.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*\s+(?=["'“‘(\[]?[A-Z0-9])""")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each a substring of it (whitespace collapsed).

    A period ends a sentence only before whitespace and a capital or digit, so decimals ("3.8 Å"),
    formulas and "vs. insulating" stay whole, and not after a known abbreviation ("et al.", "Fig.")
    or initials ("J. Smith", "B.C.C."), unless the letter is a unit after a number ("at 300 K. The").
    """
    text = " ".join(str(text).split())
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if text[m.start()] == "." and not _period_ends_sentence(text[start:m.start()]):
            continue
        sentences.append(text[start:m.end()].strip())
        start = m.end()
    if text[start:].strip():
        sentences.append(text[start:].strip())
    return sentences


def _period_ends_sentence(before: str) -> bool:
    tokens = before.split()
    if not tokens:
        return False
    word = tokens[-1].lower().lstrip("([{\"'“‘").rstrip(".")
    if word in _ABBREVIATIONS:
        return False
    if re.fullmatch(r"[a-z](\.[a-z])*", word):  # an initial, unless a unit: "300 K", "5 T"
        return len(tokens) > 1 and re.fullmatch(r"[-+~≈]?\d+([.,]\d+)?", tokens[-2]) is not None
    return True


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

    def __init__(self, tower=None, batch_size: int = 128):
        if tower is None:
            from ..models.text import get_text_tower

            tower = get_text_tower("minilm")
        self.tower = tower
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

        from ..models.text import load_local

        self.path = _check_model_dir(path)
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


def get_summarizer(summarizer: str | os.PathLike = EXTRACTIVE):
    """"extractive" or a local seq2seq model directory (else FileNotFoundError)."""
    if isinstance(summarizer, str) and summarizer == EXTRACTIVE:
        return ExtractiveSummarizer()
    return Seq2SeqSummarizer(summarizer)


def _check_model_dir(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir() or not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"summarizer {str(path)!r} is not a local model directory with config.json "
            f"(crystalclip never downloads; use 'extractive' or the folder of a saved seq2seq model)")
    return path.resolve()


# ---------------------------------------------------------------------- dataset
def structure_documents(dataset_dir: str | os.PathLike, limit: int | None = None) -> dict[str, str]:
    """{id: document} of the first ``limit`` structures of a built dataset (empty string: no text)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from ..data.build import PAIRS_FILE

    path = Path(dataset_dir) / PAIRS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{dataset_dir} is not a crystalclip dataset (no {PAIRS_FILE}); "
                                f"build one with `crystalclip data build`")
    columns = ["id", "texts"] + (["abstract"] if "abstract" in pq.read_schema(path).names else [])
    table = pd.read_parquet(path, columns=columns)
    if limit is not None:
        table = table.head(limit)
    abstracts = table["abstract"] if "abstract" in table else [None] * len(table)
    return {str(i): " ".join(document_parts(t, a)) for i, t, a in zip(table["id"], table["texts"], abstracts)}


def dataset_summaries(dataset_dir: str | os.PathLike, summarizer: str | os.PathLike = EXTRACTIVE,
                      max_words: int = 60, limit: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> dict:
    """Summarise every structure's document into DATASET/texts/summaries.parquet.

    Identical documents are summarised once. ``progress(done, total)`` counts the distinct documents
    longer than max_words (the only ones a summariser reads). Returns counts: structures, summarized
    (structures with a summary written), shortened (of those, by the summariser rather than kept as
    they were), documents (distinct), failed ([(id, reason)], first 10), path, summarizer, seconds.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be >= 1, not {max_words}")
    if not (isinstance(summarizer, str) and summarizer == EXTRACTIVE):
        summarizer = str(_check_model_dir(summarizer))  # fail early, even if nothing is long
    t0 = time.perf_counter()
    documents = structure_documents(dataset_dir, limit)
    owners: dict[str, list[str]] = {}
    for sid, doc in documents.items():
        owners.setdefault(doc, []).append(sid)
    long_docs = [d for d in owners if d and n_words(d) > max_words]
    model = get_summarizer(summarizer) if long_docs else None
    summary_of = {d: d for d in owners if d and n_words(d) <= max_words}
    failures: list[tuple[str, str]] = [(sid, "no text") for sid in owners.get("", [])]
    chunk = model.batch_size if isinstance(model, Seq2SeqSummarizer) else _DOCS_PER_CHUNK
    for start in range(0, len(long_docs), chunk):
        batch = long_docs[start:start + chunk]
        try:
            texts = model(batch, max_words)
        except (RuntimeError, ValueError) as error:  # e.g. a seq2seq model that cannot generate: the rest go on
            reason = f"summariser failed: {str(error).splitlines()[0][:200]}"
            failures += [(sid, reason) for doc in batch for sid in owners[doc]]
            texts = []
        for doc, text in zip(batch, texts):
            if text.strip():
                summary_of[doc] = text.strip()
            else:
                failures += [(sid, "empty summary") for sid in owners[doc]]
        if progress is not None:
            progress(min(start + chunk, len(long_docs)), len(long_docs))
    out = {sid: [summary_of[doc]] for sid, doc in documents.items() if doc in summary_of}
    path = write_texts(dataset_dir, KIND, out)
    seconds = time.perf_counter() - t0
    return {
        "structures": len(documents),
        "summarized": len(out),
        "shortened": sum(len(owners[d]) for d in long_docs if d in summary_of),
        "documents": len(owners),
        "failed": failures[:10],
        "n_failed": len(failures),
        "path": str(path),
        "summarizer": str(summarizer),
        "seconds": round(seconds, 3),
    }
