"""Keywords per structure (CLaSP): offline keyphrases on real AMCSD titles, the OpenAI-compatible
client against a local fake server, and `dataset_keywords` end to end on a small real dataset."""
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from crystalclip.text.keywords import (GENERIC_TERMS, PROPERTY_TERMS, STOPWORDS, candidate_phrases,
                                       clean_keywords, document_text, extract_keywords,
                                       is_generic, llm_keywords, property_terms)
from crystalclip.derive import dataset_keywords
from crystalclip.text.llm import ChatClient, LLMError, parse_json_object

from .conftest import MP40

GENERIC_WORDS = {t for t in GENERIC_TERMS if " " not in t}


def _plain(text: str) -> str:
    return text.lower().translate(str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789"))


@pytest.fixture(scope="module")
def tower():
    from crystalclip.models.text import get_text_tower

    return get_text_tower("minilm")


@pytest.fixture(scope="module")
def titles():
    """~50 distinct real AMCSD titles spread over the database, and one on a superconductor."""
    from crystalclip.sources import amcsd

    distinct = list(dict.fromkeys(e.columns["title"] for e in amcsd.iter_entries()
                                  if hasattr(e, "columns") and e.columns["title"]))
    sample = distinct[:: len(distinct) // 50][:50]
    sample.append(next(t for t in distinct if re.search(r"\bsuperconducting\b", t) and t not in sample))
    return sample


# ---------------------------------------------------------------------- offline
def test_offline_keywords_on_amcsd_titles(titles, tower):
    keywords = extract_keywords(titles, tower, max_keywords=10)
    assert len(keywords) == len(titles)
    assert sum(bool(k) for k in keywords) >= 0.9 * len(titles)
    for title, kws in zip(titles, keywords):
        assert len(kws) <= 10 and len(set(kws)) == len(kws)
        found = property_terms(title)
        assert kws[: len(found)] == found[:10]  # the curated terms come first
        low = _plain(title)
        for k in kws:
            assert not is_generic(k), (title, k)
            if k in PROPERTY_TERMS:
                continue
            words = k.lower().split()
            assert all(w in low for w in words), (title, k)  # taken from the document
            if not any(c.isdigit() for c in k):  # formulas may hold "La", "Co", "In"
                assert not any(w in GENERIC_WORDS or w in STOPWORDS for w in words), (title, k)
            assert not re.fullmatch(r"[\d.,\s]+", k)
    superconducting = keywords[-1]
    assert superconducting[0] == "superconductor" or "superconductor" in superconducting
    assert not any("superconduct" in k.lower() for k in superconducting if k != "superconductor")


def test_max_keywords_and_empty_documents(titles, tower):
    long = " ".join(titles[:10])  # many candidates
    out = extract_keywords([long, "", "The crystal structure"], tower, max_keywords=3)
    assert len(out[0]) == 3
    assert out[1] == [] and out[2] == []  # nothing to say about the material


def test_candidate_phrases_rules():
    title = ("A neutron diffraction study of the superconductor Y Ba2 Cu3 O7 at 100 K, and of "
             "(Mg,Fe)2SiO4 olivine: high-pressure phase transitions")
    cands = candidate_phrases(title)
    assert "Y Ba2 Cu3 O7" in cands  # a formula written with spaces is one word
    assert "(Mg,Fe)2SiO4" in cands and "olivine" in cands
    assert "superconductor" in cands and "high-pressure" in cands
    for c in cands:
        words = c.lower().split()
        assert len(c.split()) <= 3 or c == "Y Ba2 Cu3 O7"
        assert not {"neutron", "diffraction", "study", "of", "the", "100", "k"} & set(words), c
    # the same composition written three ways is one candidate
    assert sum(c in ("Sm2Ga2Co5", "Sm2 Co5 Ga2", "Co5Ga2Sm2") for c in candidate_phrases(
        "Sm2Ga2Co5 is metallic. Sm2 Co5 Ga2 is trigonal. Co5Ga2Sm2 is metastable.")) == 1


def test_property_terms_and_generic_filter():
    doc = "Pressure-induced phase transition in a superconducting, antiferromagnetic spinel"
    assert property_terms(doc) == ["high-pressure", "phase transition", "superconductor",
                                   "antiferromagnetic", "spinel"]  # in order of appearance
    assert property_terms("The crystal structure of magnetite") == []
    for generic in ("X-ray diffraction", "crystal structure", "Neutron powder diffraction study",
                    "single-crystal refinement", "new mineral", "the structure"):
        assert is_generic(generic), generic
    for specific in ("ferroelectric", "high-pressure phase", "crystal structure of perovskite"):
        assert not is_generic(specific), specific
    assert clean_keywords(["Zeolite", " zeolite ", "X-ray diffraction", "", "catalyst", "porous"], 2) == \
        ["Zeolite", "catalyst"]


def test_document_text():
    assert document_text({"title": "Marcasite at high pressure", "texts": ["Marcasite"]}) == \
        "Marcasite at high pressure"  # a mineral name is not the cleaned title
    assert document_text({"title": "Quartz", "abstract": "It is  piezoelectric.", "texts": []}) == \
        "Quartz\nIt is piezoelectric."
    assert document_text({"title": float("nan"), "texts": ["A metallic phase.", "Cubic."]}) == \
        "A metallic phase.\nCubic."
    assert document_text({"texts": []}) == ""


# ---------------------------------------------------------------------- a fake chat-completions server
class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        status, payload = self.server.respond(self.path, body, len(self.server.requests))
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _answer(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def _check_shape(path, body):
    """What the real servers need; a 400 like vLLM's otherwise."""
    problems = []
    if path != "/v1/chat/completions":
        return 404, {"error": f"no route {path}"}
    if body.get("model") != "test-model":
        problems.append("model")
    msgs = body.get("messages")
    if not (isinstance(msgs, list) and msgs and all({"role", "content"} <= set(m) for m in msgs)):
        problems.append("messages")
    if body.get("response_format") != {"type": "json_object"} or body.get("temperature") != 0:
        problems.append("response_format/temperature")
    return (400, {"error": {"message": f"bad request: {problems}"}}) if problems else None


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    httpd.respond = lambda path, body, n: (500, {"error": "no responder"})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_client_retries_503_then_succeeds(server):
    def respond(path, body, n):
        if n == 1:
            return 503, {"error": "model is loading"}
        return _check_shape(path, body) or (200, _answer('{"keywords": ["zeolite"]}'))

    server.respond = respond
    with ChatClient(server.url + "/", "test-model", api_key="secret", backoff=0.01) as client:
        assert client.complete_json([{"role": "user", "content": "hi"}]) == {"keywords": ["zeolite"]}
    assert len(server.requests) == 2
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer secret"


def test_client_errors_are_clear(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    server.respond = lambda path, body, n: (400, {"error": {"message": "unknown model 'test-model'"}})
    client = ChatClient(server.url, "test-model", backoff=0.01, max_retries=2)
    with pytest.raises(LLMError, match=r"HTTP 400.*unknown model"):
        client.complete_json([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1  # a client error is not retried
    assert server.requests[0]["headers"]["Authorization"] == "Bearer from-env"

    server.respond = lambda path, body, n: (502, "upstream down")
    with pytest.raises(LLMError, match=r"failed 3 times.*HTTP 502"):
        client.complete_json([{"role": "user", "content": "hi"}])
    assert len(server.requests) == 1 + 3

    server.respond = lambda path, body, n: (200, _answer("I cannot answer that."))
    with pytest.raises(LLMError, match="not a JSON object"):
        client.complete_json([{"role": "user", "content": "hi"}])

    server.respond = lambda path, body, n: _check_shape(path, body) or (200, _answer("{}"))
    with pytest.raises(LLMError, match="/v1"):  # a base URL without /v1
        ChatClient(server.url[: -len("/v1")], "test-model").complete_json([{"role": "user", "content": "x"}])

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(LLMError, match="failed 2 times.*Connect"):
        ChatClient(f"http://127.0.0.1:{port}/v1", "m", backoff=0.01, max_retries=1).complete(
            [{"role": "user", "content": "hi"}])


def test_parse_json_object_tolerates_fences_and_text():
    expected = {"keywords": ["ferroelectric", "perovskite"]}
    for content in ('{"keywords": ["ferroelectric", "perovskite"]}',
                    '```json\n{"keywords": ["ferroelectric", "perovskite"]}\n```',
                    'Here are the keywords:\n{"keywords": ["ferroelectric", "perovskite"]}\nDone {ok}',
                    '<think>maybe {"keywords": []}</think>{"keywords": ["ferroelectric", "perovskite"]}'):
        assert parse_json_object(content) == expected, content
    for content in ("", "no json here", '["a list", "not an object"]', '{"keywords": [unquoted]}'):
        with pytest.raises(LLMError):
            parse_json_object(content)


def test_llm_keywords_filters_generic_and_truncates(server):
    answer = ["crystal structure", "superconductor", "X-ray diffraction", "cuprate", "Superconductor"] + \
        [f"term {i}" for i in range(12)]
    server.respond = lambda path, body, n: _check_shape(path, body) or (
        200, _answer("```json\n" + json.dumps({"keywords": answer}) + "\n```"))
    doc = "A new 90K superconductor: Y0.6Ca0.4Ba2(Hg1-xMx)Cu2O6+y"
    with ChatClient(server.url, "test-model") as client:
        kws = llm_keywords(doc, client, max_keywords=10)
    assert kws == ["superconductor", "cuprate"] + [f"term {i}" for i in range(8)]
    prompt = server.requests[0]["body"]["messages"][-1]["content"]
    assert doc in prompt and "features, functions or applications" in prompt and "10" in prompt

    server.respond = lambda path, body, n: (200, _answer('{"words": ["superconductor"]}'))
    with ChatClient(server.url, "test-model") as client, pytest.raises(LLMError, match="keywords"):
        llm_keywords(doc, client)


# ---------------------------------------------------------------------- datasets
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """30 AMCSD structures (titles shared by several) + 30 MP-40 structures (captions, no title)."""
    from crystalclip.data.build import build_dataset

    root = tmp_path_factory.mktemp("kw")
    pd.read_csv(MP40 / "captions_1000.csv", nrows=30).to_csv(root / "mp40.csv", index=False)
    build_dataset(["amcsd", root / "mp40.csv"], root / "data", source_options={"limit": 30}, workers=1)
    table = pd.read_parquet(root / "data" / "pairs.parquet", columns=["id", "source", "title", "texts"])
    return root / "data", table


def test_dataset_keywords_offline(dataset):
    from crystalclip.data.dataset import Dataset

    directory, table = dataset
    calls = []
    summary = dataset_keywords(directory, progress=lambda done, total: calls.append((done, total)))
    docs = {document_text(r) for r in table.to_dict("records")}
    assert summary["backend"] == "offline" and summary["structures"] == len(table)
    assert summary["documents"] == len(docs) < len(table)  # shared titles are processed once
    assert calls and calls[-1] == (len(docs), len(docs))
    texts = Dataset(directory).read_texts("keywords")
    assert len(texts) == summary["written"] >= 0.8 * len(table) and set(texts) <= set(table["id"])
    by_id = table.set_index("id")
    for id_, (text,) in texts.items():
        kws = text.split(", ")
        assert 1 <= len(kws) <= 10 and not any(is_generic(k) for k in kws)
        row = by_id.loc[id_]
        if row["source"] == "mp40":  # from its captions: no title
            assert pd.isna(row["title"])
        source_text = _plain(document_text(row.to_dict()))
        for k in kws:
            assert k in PROPERTY_TERMS or all(w in source_text for w in k.lower().split()), (id_, k)
    same_title = table[table["source"] == "amcsd"].groupby("title")["id"].apply(list)
    for ids in same_title[same_title.map(len) > 1]:
        assert len({texts.get(i, [""])[0] for i in ids}) == 1

    trial = dataset_keywords(directory, limit=5)
    assert trial["structures"] == 5 and len(Dataset(directory).read_texts("keywords")) <= 5


def test_dataset_keywords_llm(dataset, server):
    from crystalclip.data.dataset import Dataset

    directory, table = dataset
    docs = list(dict.fromkeys(document_text(r) for r in table.to_dict("records")))
    bad = docs[3]  # the model answers this one with prose

    def respond(path, body, n):
        if n == 1:
            return 503, {"error": "busy"}
        shape = _check_shape(path, body)
        if shape:
            return shape
        prompt = body["messages"][-1]["content"]
        i = max((i for i, d in enumerate(docs) if d in prompt), key=lambda i: len(docs[i]))
        if docs[i] == bad:
            return 200, _answer("Sorry, here are some keywords: ferroelectric, magnetic")
        return 200, _answer(json.dumps({"keywords": ["crystal structure", f"topic {i}", "X-ray diffraction",
                                                     f"use {i}", "extra", "more"]}))

    server.respond = respond
    summary = dataset_keywords(directory, backend="llm", llm_url=server.url, llm_model="test-model",
                               max_keywords=3, workers=2)
    assert len(server.requests) == len(docs) + 1  # one request per distinct document, one retried
    bad_ids = [r["id"] for r in table.to_dict("records") if document_text(r) == bad]
    assert summary["failed_count"] == 1 and summary["failed"][0][0] == bad_ids[0]
    assert "JSON" in summary["failed"][0][1]
    texts = Dataset(directory).read_texts("keywords")
    assert summary["written"] == len(texts) == len(table) - len(bad_ids)
    for row in table.to_dict("records"):
        i = docs.index(document_text(row))
        if row["id"] in bad_ids:
            assert row["id"] not in texts
        else:
            assert texts[row["id"]] == [f"topic {i}, use {i}, extra"]

    with pytest.raises(ValueError, match="llm_url"):
        dataset_keywords(directory, backend="llm")


def test_dataset_keywords_llm_gives_up_when_nothing_works(dataset, server):
    server.respond = lambda path, body, n: (200, _answer("I am a language model."))
    with pytest.raises(ValueError, match="first 5 documents all failed.*JSON"):
        dataset_keywords(dataset[0], backend="llm", llm_url=server.url, llm_model="test-model", workers=1)
    assert 5 <= len(server.requests) <= 6  # it stops early (a request may be under way)
