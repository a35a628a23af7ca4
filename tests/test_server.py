"""The HTTP API (FastAPI TestClient): health, search, filters, structures by id, classify, every 4xx.

The model is a random init of the default recipe (no training) over a dozen mp40 CIFs."""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient

import crystalclip
from crystalclip.index import Index
from crystalclip.server import create_app
from crystalclip.server.app import MAX_UPLOAD_BYTES

MP40 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mp40"
torch.set_num_threads(1)


def build_index(root: Path, n: int = 12) -> tuple[Path, object]:
    """A random-init model in root/model and an index of n mp40 CIFs (+ one broken file) in root/index.

    Each CIF gets its first mp40 caption as `_publ_section_title`: the index's paired text."""
    from crystalclip.models.clip import CrystalClip, ModelConfig
    from crystalclip.recipe import load_recipe

    torch.manual_seed(0)
    CrystalClip(load_recipe("default").model).save(root / "model")
    model = crystalclip.load(root / "model")
    cifs = root / "cifs"
    cifs.mkdir(parents=True, exist_ok=True)
    for row in pd.read_csv(MP40 / "captions_1000.csv").iloc[:n].itertuples():
        caption = ast.literal_eval(row.prompt)[0].strip()
        cif = re.sub(r"^(data_.*)$", lambda m: f"{m[1]}\n_publ_section_title\n;\n{caption}\n;", row.cif,
                     count=1, flags=re.M)
        (cifs / f"{row.material_id}.cif").write_text(cif)
    (cifs / "broken.cif").write_text("data_broken\n_cell_length_a 3.0\n")
    Index.build(cifs, model).save(root / "index")
    return root / "index", model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    index_dir, model = build_index(root)
    return {"root": root, "index": Index.load(index_dir), "model": model,
            "client": TestClient(create_app(index_dir, model), raise_server_exceptions=False)}


def test_health_and_schema(served):
    client = served["client"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["structures"] == 12
    assert health["model"] == Path(served["model"].path).name
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/api/search", "/api/classify", "/api/structures/{structure_id}"} <= set(paths)
    page = client.get("/")
    assert page.status_code == 200 and "search-form" in page.text and "3Dmol-min.js" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_search_ranks_like_the_index(served):
    client, index, model = served["client"], served["index"], served["model"]
    response = client.get("/api/search", params={"q": "a cubic perovskite oxide", "k": 5})
    assert str(served["root"]) not in response.text  # no response names a file on the server
    body = response.json()
    assert body["query"] == "a cubic perovskite oxide"
    expected = index.search("a cubic perovskite oxide", k=5, model=model)
    assert [r["id"] for r in body["results"]] == [r["id"] for r in expected]
    assert [r["rank"] for r in body["results"]] == [1, 2, 3, 4, 5]
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    first = body["results"][0]
    assert set(first) == {"rank", "id", "source", "formula", "spacegroup_number", "spacegroup_symbol", "crystal_system", "score", "text"}
    titles = served["index"].meta.set_index("id")["text"]
    assert all(r["text"] == titles[r["id"]] and r["text"] for r in body["results"])


def test_search_filters(served):
    client, meta = served["client"], served["index"].meta.set_index("id")
    oxides = client.get("/api/search", params={"q": "oxide", "k": 12, "elements": "O"}).json()["results"]
    assert oxides and all("O" in meta.loc[r["id"], "elements"] for r in oxides)
    assert len(oxides) == sum("O" in e for e in meta["elements"])
    system = meta["crystal_system"].dropna().iloc[0]
    found = client.get("/api/search", params={"q": "x", "crystal_system": system}).json()["results"]
    assert found and {r["crystal_system"] for r in found} == {system}
    number = int(meta["spacegroup_number"].dropna().iloc[0])
    found = client.get("/api/search", params={"q": "x", "spacegroup": str(number)}).json()["results"]
    assert found and {r["spacegroup_number"] for r in found} == {number}
    assert client.get("/api/search", params={"q": "x", "elements": "Og"}).json()["results"] == []


def test_structure_by_id(served):
    client, meta = served["client"], served["index"].meta
    row = meta.iloc[0]
    response = client.get(f"/api/structures/{row['id']}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.text == Path(row["path"]).read_text() and "_publ_section_title" in response.text
    optimade = client.get(f"/api/structures/{row['id']}", params={"format": "optimade"})
    assert optimade.status_code == 200 and str(served["root"]) not in optimade.text
    resource = optimade.json()["data"]
    from crystalclip.structures import parse_cif

    crystal = parse_cif(response.text, row["id"])[0]
    attributes = resource["attributes"]
    assert resource["id"] == row["id"] and resource["type"] == "structures"
    assert attributes["nsites"] == len(crystal) == len(attributes["cartesian_site_positions"])
    assert attributes["elements"] == sorted(attributes["elements"]) == sorted(crystal.composition())
    assert attributes["nelements"] == len(attributes["elements"])
    assert {s["name"] for s in attributes["species"]} == set(attributes["species_at_sites"])
    import numpy as np

    np.testing.assert_allclose(attributes["lattice_vectors"], crystal.lattice, atol=1e-5)
    assert client.get(f"/api/structures/{row['id']}", params={"format": "xml"}).status_code == 422
    for bad in ("nothing-here", "broken", "..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%2Fetc%2Fpasswd"):
        response = client.get(f"/api/structures/{bad}")
        assert response.status_code == 404, bad
        assert "root:" not in response.text and "detail" in response.json()


def test_structures_from_multi_block_cifs_and_csvs(served, tmp_path):
    cifs = [Path(p).read_text() for p in served["index"].meta["path"].iloc[:2]]
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "two.cif").write_text(cifs[0].replace("data_", "data_first\n#", 1) + "\n" +
                                    cifs[1].replace("data_", "data_second\n#", 1))
    pd.DataFrame({"id": ["row-a"], "cif": [cifs[1]]}).to_csv(folder / "table.csv", index=False)
    Index.build([folder / "two.cif", folder / "table.csv"], served["model"]).save(tmp_path / "ix")
    client = TestClient(create_app(tmp_path / "ix", served["model"]))
    assert sorted(Index.load(tmp_path / "ix").meta["id"]) == ["row-a", "two#first", "two#second"]
    first = client.get("/api/structures/two%23first").text
    assert first.startswith("data_first") and "data_second" not in first
    assert client.get("/api/structures/two%23second").text.startswith("data_second")
    assert client.get("/api/structures/row-a").text == cifs[1]


def test_classify_upload(served):
    client, meta = served["client"], served["index"].meta
    path = Path(meta["path"].iloc[1])
    response = client.post("/api/classify", files={"file": (path.name, path.read_bytes())},
                           data={"labels": "superconductor, ferromagnet,insulator", "template": "a {} material"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["labels"] == ["superconductor", "ferromagnet", "insulator"] and body["template"] == "a {} material"
    [result] = body["results"]
    assert result["id"] == path.stem and sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    expected = served["model"].classify([str(path)], body["labels"], template="a {} material")[0]
    assert list(result["probabilities"].values()) == pytest.approx(expected.tolist(), abs=1e-3)


def _post(client, content: bytes, labels="a,b", **extra):
    return client.post("/api/classify", files={"file": ("x.cif", content)}, data={"labels": labels, **extra})


def test_every_bad_request_is_a_clear_4xx(served):
    client = served["client"]
    cif = Path(served["index"].meta["path"].iloc[0]).read_bytes()
    cases = [
        (client.get("/api/search", params={"q": "  "}), 400, "empty query"),
        (client.get("/api/search"), 422, "q"),
        (client.get("/api/search", params={"q": "x" * 501}), 422, "q"),
        (client.get("/api/search", params={"q": "oxide", "k": 0}), 422, "k"),
        (client.get("/api/search", params={"q": "oxide", "k": 101}), 422, "k"),
        (client.get("/api/search", params={"q": "oxide", "k": "many"}), 422, "k"),
        (client.get("/api/search", params={"q": "oxide", "elements": "Xx"}), 400, "element"),
        (client.get("/api/search", params={"q": "oxide", "crystal_system": "cubical"}), 400, "crystal system"),
        (client.get("/api/search", params={"q": "oxide", "spacegroup": "999"}), 400, "space group"),
        (_post(client, b"this is not a CIF at all\n"), 400, "not a usable CIF"),
        (_post(client, b""), 400, "empty"),
        (_post(client, b"\xff\xfe\x00binary"), 400, "UTF-8"),
        (_post(client, cif, labels=" , "), 400, "at least one label"),
        (_post(client, cif, labels=",".join(f"l{i}" for i in range(21))), 400, "at most 20 labels"),
        (_post(client, cif, labels="a,a"), 400, "twice"),
        (_post(client, cif, template="no slot"), 400, "template"),
        (client.post("/api/classify", data={"labels": "a,b"}), 422, "file"),
        (client.post("/api/classify", files={"file": ("x.cif", cif)}), 422, "labels"),
        (_post(client, b"x" * (MAX_UPLOAD_BYTES + 1)), 413, "larger than 5 MB"),
    ]
    for response, status, words in cases:
        assert response.status_code == status, (words, response.status_code, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and words in detail and "Traceback" not in response.text, (words, detail)


def test_upload_limit_without_and_with_a_lying_content_length(served):
    import anyio

    app = served["client"].app
    big = b"x" * (MAX_UPLOAD_BYTES * 2)

    async def call(headers: list, chunks: list[bytes]):
        sent, queue = [], list(chunks)

        async def receive():
            body = queue.pop(0) if queue else b""
            return {"type": "http.request", "body": body, "more_body": bool(queue)}

        async def send(message):
            sent.append(message)

        boundary = b"----b"
        scope = {"type": "http", "method": "POST", "path": "/api/classify", "raw_path": b"/api/classify",
                 "query_string": b"", "root_path": "", "scheme": "http", "server": ("test", 80), "client": ("t", 1),
                 "http_version": "1.1", "asgi": {"version": "3.0"},
                 "headers": [(b"content-type", b"multipart/form-data; boundary=" + boundary), *headers]}
        await app(scope, receive, send)
        return sent[0]["status"], sum(len(m.get("body", b"")) for m in sent[1:])

    head = b'------b\r\nContent-Disposition: form-data; name="file"; filename="x.cif"\r\n\r\n'
    # the declared length alone is refused before any body is read
    assert anyio.run(call, [(b"content-length", str(50 * 2**20).encode())], [head])[0] == 413
    # no Content-Length (chunked) or a lying one: the body is cut off once it passes the limit
    chunks = [head] + [big[i:i + 2**20] for i in range(0, len(big), 2**20)]
    assert anyio.run(call, [], chunks)[0] == 413
    assert anyio.run(call, [(b"content-length", b"100")], chunks)[0] == 413


def test_empty_index_and_wrong_model(served, tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.cif").write_text("not a cif\n")
    Index.build(tmp_path / "bad", served["model"]).save(tmp_path / "empty")
    client = TestClient(create_app(tmp_path / "empty", served["model"]))
    assert client.get("/health").json()["structures"] == 0
    response = client.get("/api/search", params={"q": "oxide"})
    assert response.status_code == 409 and "empty" in response.json()["detail"]
    from crystalclip.models.clip import CrystalClip, ModelConfig
    from crystalclip.recipe import load_recipe

    torch.manual_seed(1)
    CrystalClip(load_recipe("default").model).save(tmp_path / "other")
    with pytest.raises(ValueError, match="built with the model"):
        create_app(tmp_path / "empty", tmp_path / "other")


def test_cli_serve_errors_are_clean(served, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cases = [(["--index", tmp_path / "missing"], "no index"),
             (["--index", served["root"] / "index", "--model", served["root"] / "cifs"], "not a crystalclip model")]
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "crystalclip.cli", "serve", *map(str, args)],
                                capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 2 and message in " ".join(result.stderr.split()), result.stderr
        assert "Traceback" not in result.stderr


def test_concurrent_searches_are_batched_and_answer_as_one_by_one(served, monkeypatch):
    """The server's batcher: queries waiting together share one text-tower call; each gets the results
    (or the error) it would get alone."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from crystalclip.errors import BadInput
    from crystalclip.server.batching import SearchBatcher

    index, model = served["index"], served["model"]
    index.model = model
    expected = {}
    queries = [("a cubic perovskite oxide", {}), ("layered sulfide", {"crystal_system": "cubic"}),
               ("metallic alloy", {"elements": "Xx"}), ("porous framework", {})] * 6
    for text, filters in queries:
        if "elements" not in filters:
            expected[text] = [r["id"] for r in index.search(text, k=5, model=model, **filters)]
    calls = []
    encode = model.encode_texts

    def slow_encode(texts):
        calls.append(len(texts))
        time.sleep(0.2 if len(calls) == 1 else 0)  # the first batch runs while the others queue
        return encode(texts)

    monkeypatch.setattr(model, "encode_texts", slow_encode)
    batcher = SearchBatcher(index)
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(batcher.search, text, 5, **filters) for text, filters in queries]
        for (text, filters), future in zip(queries, futures):
            if "elements" in filters:
                with pytest.raises(BadInput, match="unknown element"):
                    future.result()
            else:
                assert [r["id"] for r in future.result()] == expected[text]
    assert sum(calls) == len(queries) and max(calls) > 1
