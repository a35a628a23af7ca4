"""`crystalclip train --devices 2 --strategy ddp` end to end on CPU (gloo): one model and one metrics
file (rank 0), the loss sees the global batch, and --resume works under DDP; `crystalclip index` on two
ranks equals one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

from .conftest import SHARED

BATCH = 32


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from crystalclip.data.build import build_dataset

    root = tmp_path_factory.mktemp("ddp")
    (root / "mp").mkdir()
    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_00.parquet").read_row_group(0).slice(0, 200).to_pandas()
    table.to_parquet(root / "mp" / "part.parquet", index=False)
    build_dataset([root / "mp"], root / "data", workers=1)
    return root


def _train(root, out, *extra):
    command = [sys.executable, "-m", "crystalclip.cli", "train", "--data", str(root / "data"), "--out", str(out),
               "--set", f"train.batch_size={BATCH}", "--set", "train.warmup_steps=1", "--set", "model.cgcnn.atom_dim=32",
               "--json", *extra]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_ddp_on_two_cpu_processes_trains_with_the_global_batch_and_resumes(dataset, tmp_path):
    out = tmp_path / "run"
    printed = _train(dataset, out, "--devices", "2", "--strategy", "ddp", "--set", "train.epochs=2")
    assert len(printed) == 1  # rank 0 reports, the other rank is quiet
    summary = printed[0]
    assert summary["world_size"] == 2 and summary["global_batch"] == 2 * BATCH and summary["epochs"] == 2
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1]
    assert (metrics["negatives"] == 2 * BATCH).all()  # every step's loss compared the rows of both ranks
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".json", ".safetensors", ".csv")) == \
        ["config.json", "metrics.csv", "model.safetensors"]
    resumed = _train(dataset, out, "--devices", "2", "--strategy", "ddp", "--set", "train.epochs=3", "--resume")[0]
    assert resumed["epochs"] == 3 and pd.read_csv(out / "metrics.csv")["epoch"].tolist() == [0, 1, 2]

    import crystalclip as cc

    model = cc.load(out)  # a plain CPU model, loadable anywhere
    assert model.encode_texts(["a cubic oxide"]).shape == (1, model.dim)


def test_one_process_sees_its_own_batch_and_bf16_runs_on_cpu(dataset, tmp_path):
    summary = _train(dataset, tmp_path / "run", "--precision", "bf16-mixed", "--set", "train.epochs=1")[0]
    assert summary["world_size"] == 1 and summary["engine"]["precision"] == "bf16-mixed"
    assert (pd.read_csv(tmp_path / "run" / "metrics.csv")["negatives"] == BATCH).all()


def test_index_on_two_cpu_ranks_equals_one_process(tmp_path):
    """`crystalclip index --devices 2 --strategy ddp`: each rank embeds half of the inputs, rank 0
    merges the shards; the result holds the same structures and vectors as a one-process index."""
    import numpy as np

    from crystalclip.index import Index

    cifs = tmp_path / "cifs"
    cifs.mkdir()
    table = pq.ParquetFile(SHARED / "mp-cifs" / "mp_cifs_00.parquet").read_row_group(0).slice(0, 24).to_pandas()
    for material_id, cif in zip(table["material_id"], table["cif"]):
        (cifs / f"{material_id}.cif").write_text(cif)
    (cifs / "broken.cif").write_text("data_x\n_cell_length_a 3\n")

    def index(out, *extra):
        result = subprocess.run([sys.executable, "-m", "crystalclip.cli", "index", str(cifs), "--out", str(out),
                                 "--json", *extra], capture_output=True, text=True, timeout=600,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 0, result.stderr[-3000:]
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    (two,) = index(tmp_path / "two", "--devices", "2", "--strategy", "ddp")  # rank 0 alone reports
    (one,) = index(tmp_path / "one", "--device", "cpu")
    assert two["indexed"] == one["indexed"] == 24 and two["failed"] == one["failed"] == 1 and two["count"] == 24
    a, b = Index.load(tmp_path / "one"), Index.load(tmp_path / "two")
    assert sorted(a.meta["id"]) == sorted(b.meta["id"])
    va = a.faiss.reconstruct_n(0, a.count)
    vb = b.faiss.reconstruct_n(0, b.count)[[list(b.meta["id"]).index(i) for i in a.meta["id"]]]
    assert np.abs(va - vb).max() < 1e-5
    assert not list(tmp_path.glob(".two.rank-*"))  # the shards were merged and removed
