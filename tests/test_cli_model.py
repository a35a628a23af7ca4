"""`crystalclip evaluate` and `crystalclip search` end to end, on the short real run."""
import json
import os
import subprocess
import sys


def _cli(*args, cache=None, timeout=600):
    env = {**os.environ, **({"XDG_CACHE_HOME": str(cache)} if cache else {})}
    return subprocess.run([sys.executable, "-m", "crystalclip.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_evaluate_json_has_the_protocol_keys(trained_run, tmp_path):
    root, _ = trained_run
    result = _cli("evaluate", "--model", root / "run", "--data", root / "data", "--composition-baseline",
                  root / "run", "--plots", tmp_path / "plots", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pool_size"] == report["by_source"]["mp40"]["pool_size"] > 50
    for system in (report, report["composition_baseline"], report["formula_baseline"]):
        for direction in ("text_to_crystal", "crystal_to_text"):
            assert set(system[direction]) == {"R@1", "R@5", "R@10", "MRR"}
        assert {"metallic", "stable"} <= set(system["zero_shot"])
        assert {"roc_auc", "ap", "n_pos", "n_neg"} <= set(system["zero_shot"]["metallic"])
    assert report["random"]["R@10"] < report["text_to_crystal"]["R@10"]
    lo, hi = report["ci"]["text_to_crystal"]["R@10"]
    assert lo <= report["text_to_crystal"]["R@10"] <= hi
    # captions name the formula: the formula-string baseline reads them, and masking takes that away
    formula = report["formula_baseline"]
    assert formula["by_source"]["mp40_masked"]["text_to_crystal"]["R@10"] < formula["text_to_crystal"]["R@10"]
    for png in ("recall_at_k.png", "map_by_source.png", "map_by_crystal_system.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 1000


def test_search_ranks_a_dataset_and_caches_embeddings(trained_run, tmp_path):
    root, _ = trained_run
    first = _cli("search", "cubic perovskite oxide", "--model", root / "run", "--data", root / "data", "-k", "5",
                 "--json", cache=tmp_path)
    assert first.returncode == 0, first.stderr
    results = json.loads(first.stdout)["results"]
    assert [r["rank"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0]["score"] >= results[-1]["score"]
    assert list((tmp_path / "crystalclip" / "indexes").glob("*/faiss.index"))  # built once per model
    again = _cli("search", "cubic perovskite oxide", "--model", root / "run", "--data", root / "data", "-k", "5",
                 "--json", cache=tmp_path)
    assert json.loads(again.stdout)["results"] == results
    table = _cli("search", "layered sulfide", "--model", root / "run", "--data", root / "data", cache=tmp_path)
    assert table.returncode == 0 and "SG " in table.stdout and "mp40" in table.stdout
    lines = table.stdout.splitlines()
    assert len(lines) <= 1 + 2 * 10 and all(len(line) <= 80 for line in lines)  # fits an 80-column terminal


def test_search_and_evaluate_errors_are_clear(trained_run, tmp_path):
    root, _ = trained_run
    empty = _cli("search", "  ", "--model", root / "run", "--data", root / "data", cache=tmp_path)
    assert empty.returncode == 2 and "empty query" in empty.stderr
    missing = _cli("evaluate", "--model", tmp_path / "nope", "--data", root / "data")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_search_filters_by_source(trained_run, tmp_path):
    root, _ = trained_run
    args = ("search", "cubic perovskite oxide", "--model", root / "run", "--data", root / "data", "--json")
    found = _cli(*args, "--filter", "source=mp40", cache=tmp_path)
    assert found.returncode == 0, found.stderr
    results = json.loads(found.stdout)["results"]
    assert results and all(r["source"] == "mp40" for r in results)
    unknown = _cli(*args, "--filter", "source=cod", cache=tmp_path)
    assert unknown.returncode == 2 and "unknown source 'cod'" in unknown.stderr
