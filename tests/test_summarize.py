"""Summaries of each structure's texts: sentence splitting, extractive summaries of real mp40 captions,
a local seq2seq model (tiny, random, built here), dataset file written and read back."""
import ast
import os

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # guard only: the code must not need it

from .conftest import mp40_table  # noqa: E402
from crystalclip.data.build import PAIRS_FILE, build_dataset  # noqa: E402
from crystalclip.data.dataset import Dataset  # noqa: E402
from crystalclip.derive import dataset_summaries, structure_documents  # noqa: E402
from crystalclip.models.text import get_text_tower  # noqa: E402
from crystalclip.text.summarize import ExtractiveSummarizer, document_parts, n_words  # noqa: E402
from crystalclip.text.sentences import split_sentences  # noqa: E402

ROWS = 30


pytestmark = pytest.mark.usefixtures("no_network")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The first 30 mp40 structures (5 captions each); the last 5 rows reuse row 0's captions."""
    root = tmp_path_factory.mktemp("summaries")
    table = mp40_table().head(ROWS).copy()
    table.loc[table.index[-5:], "prompt"] = table["prompt"].iloc[0]
    table.to_csv(root / "mp40.csv", index=False)
    build_dataset([root / "mp40.csv"], root / "data", workers=1)
    return root / "data"


def documents_of(dataset):
    pairs = pd.read_parquet(dataset / PAIRS_FILE, columns=["id", "texts"])
    return {i: " ".join(document_parts(t)) for i, t in zip(pairs["id"], pairs["texts"])}


def test_split_sentences_keeps_decimals_formulas_and_abbreviations():
    text = ("The Fe-O distance is 3.8 Å. Dy7In(CoGe3)4 crystallises in P4/m (Fig. 2), as found by "
            "J. Smith et al. in 2001! Measured at 300 K. Is Li2NaSb metallic vs. insulating? B.C.C. "
            "structures are common.")
    assert split_sentences(text) == [
        "The Fe-O distance is 3.8 Å.",
        "Dy7In(CoGe3)4 crystallises in P4/m (Fig. 2), as found by J. Smith et al. in 2001!",
        "Measured at 300 K.",
        "Is Li2NaSb metallic vs. insulating?",
        "B.C.C. structures are common.",
    ]
    assert split_sentences("  no final period  ") == ["no final period"]
    assert split_sentences("") == []
    # every mp40 caption of the first 300 structures is one sentence (incl. "B.C.C." and "vs.")
    captions = [c for p in mp40_table()["prompt"][:300] for c in ast.literal_eval(p)]
    assert all(split_sentences(c) == [" ".join(c.split())] for c in captions)


def test_document_parts():
    parts = document_parts(["Rutile TiO2", "Rutile TiO2", " ", "It is tetragonal."], abstract=float("nan"))
    assert parts == ["Rutile TiO2.", "It is tetragonal."]
    assert document_parts(["A title"], abstract="An abstract. Two sentences.") == [
        "A title.", "An abstract. Two sentences."]


def test_extractive_prefers_central_sentences():
    doc = ("SrTiO3 is a cubic perovskite oxide. The perovskite SrTiO3 has corner-sharing TiO6 octahedra. "
           "We thank the funding agency for financial support. Cubic SrTiO3 perovskite is an insulator.")
    summary = ExtractiveSummarizer(get_text_tower("minilm"))([doc], max_words=20)[0]
    assert "funding" not in summary and 0 < n_words(summary) <= 20
    assert all(s in doc for s in split_sentences(summary))
    # order of the document is kept
    chosen = split_sentences(summary)
    assert [doc.index(s) for s in chosen] == sorted(doc.index(s) for s in chosen)
    # a single sentence longer than max_words is cut, never empty
    assert ExtractiveSummarizer(get_text_tower("minilm"))([doc.split(". ")[1] + "."], max_words=4)[0] == "The perovskite SrTiO3 has"


def test_extractive_dataset_summaries(dataset):
    docs = documents_of(dataset)
    max_words = 25
    long_docs = {d for d in docs.values() if n_words(d) > max_words}
    assert len(long_docs) > 5
    calls = []
    info = dataset_summaries(dataset, max_words=max_words, progress=lambda done, total: calls.append((done, total)))
    assert info["structures"] == info["written"] == ROWS and info["failed"] == []
    assert info["documents"] == len(set(docs.values())) == ROWS - 5  # six rows share one document
    assert info["shortened"] == sum(n_words(d) > max_words for d in docs.values())
    assert calls[-1] == (len(long_docs), len(long_docs))
    assert info["summarizer"] == "extractive" and info["path"].endswith("texts/summaries.parquet")

    summaries = Dataset(dataset).read_texts("summaries")
    assert set(summaries) == set(docs)
    for sid, texts in summaries.items():
        assert len(texts) == 1
        summary, doc = texts[0], docs[sid]
        if n_words(doc) <= max_words:
            assert summary == doc
            continue
        assert 0 < n_words(summary) <= max_words and summary != doc
        assert all(s in split_sentences(doc) for s in split_sentences(summary))
    shared = pd.read_parquet(dataset / PAIRS_FILE, columns=["id"])["id"].tolist()
    assert len({summaries[i][0] for i in [shared[0], *shared[-5:]]}) == 1


def test_a_failing_summariser_loses_only_its_documents(dataset, monkeypatch):
    """Failure injected into the summariser: the long documents are reported, the short ones written."""
    def broken(self, documents, max_words):
        raise RuntimeError("generation failed\nlong traceback")
    monkeypatch.setattr(ExtractiveSummarizer, "__call__", broken)
    docs = documents_of(dataset)
    info = dataset_summaries(dataset, max_words=25)
    long_ids = {sid for sid, d in docs.items() if n_words(d) > 25}
    assert info["failed_count"] == len(long_ids) > 0 and info["written"] == ROWS - len(long_ids)
    assert info["failed"][0][1] == "summariser failed: generation failed"
    assert set(Dataset(dataset).read_texts("summaries")) == set(docs) - long_ids


def test_limit_and_abstract_column(dataset, tmp_path):
    info = dataset_summaries(dataset, max_words=60, limit=5)
    summaries, docs = Dataset(dataset).read_texts("summaries"), documents_of(dataset)
    assert info["structures"] == len(summaries) == 5
    # documents of at most max_words words are kept as they are
    assert all(n_words(docs[i]) <= 60 for i in summaries) and info["shortened"] == 0
    assert all(summary == [docs[i]] for i, summary in summaries.items())
    # a dataset with an abstract column: the abstract is part of the document
    copy = tmp_path / "data"
    copy.mkdir()
    pairs = pd.read_parquet(dataset / PAIRS_FILE)
    pairs["abstract"] = None
    pairs.loc[0, "abstract"] = "We report a new intermetallic. Its magnetism is unusual at 2 K."
    pairs.to_parquet(copy / PAIRS_FILE, index=False)
    docs = structure_documents(Dataset(copy), limit=2)
    assert docs[pairs["id"][0]].endswith("We report a new intermetallic. Its magnetism is unusual at 2 K.")
    assert "report" not in docs[pairs["id"][1]]


def test_missing_model_or_dataset(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads"):
        dataset_summaries(dataset, summarizer="google/pegasus-xsum")
    with pytest.raises(FileNotFoundError, match="config.json"):
        dataset_summaries(dataset, summarizer=str(tmp_path))  # a directory, but no model in it
    with pytest.raises(FileNotFoundError, match="not a crystalclip dataset"):
        dataset_summaries(tmp_path)


def test_local_seq2seq_model(dataset, tmp_path):
    """A tiny random BART with the MiniLM WordPiece tokenizer, saved and loaded like a real model."""
    import torch
    from transformers import AutoTokenizer, BartConfig, BartForConditionalGeneration

    from crystalclip.models.text import default_text_model_path

    tok = AutoTokenizer.from_pretrained(str(default_text_model_path()), local_files_only=True)
    config = BartConfig(vocab_size=tok.vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                        decoder_ffn_dim=32, max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                        decoder_start_token_id=tok.cls_token_id, forced_eos_token_id=tok.sep_token_id)
    torch.manual_seed(0)
    model = BartForConditionalGeneration(config)
    model.generation_config.min_new_tokens = 3  # random weights could stop at once
    model.save_pretrained(tmp_path / "bart")
    tok.save_pretrained(tmp_path / "bart")

    max_words = 12
    info = dataset_summaries(dataset, summarizer=str(tmp_path / "bart"), max_words=max_words, limit=6)
    assert info["structures"] == info["written"] == 6 and info["failed"] == []
    assert info["summarizer"] == str((tmp_path / "bart").resolve())
    summaries = Dataset(dataset).read_texts("summaries")
    docs = documents_of(dataset)
    assert len(summaries) == 6
    for sid, (summary,) in summaries.items():
        assert isinstance(summary, str) and 0 < n_words(summary) <= max_words
        assert summary != docs[sid]  # every mp40 document is longer than 12 words: the model wrote it
