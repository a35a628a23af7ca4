"""The Python facade: load a model, encode structures and texts, classify zero-shot, open an index.

    import crystalclip as cc
    model = cc.load("default")
    z = model.encode_structures(cc.read_structures("folder/"))   # (N, D), unit rows
    t = model.encode_texts(["layered sulfide superconductor"])    # (M, D), unit rows
    p = model.classify(structures, ["superconductor", "insulator"])  # (N, L) probabilities
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .data.batching import collate_graphs
from .errors import BadInput
from .graphs import build_graph
from .index import Index
from .models.clip import CrystalClip
from .structures import Crystal, ReadFailure, StructureError, expand_inputs, read_input
from .structures.symmetry import symmetry_features

DEFAULT_MODEL = "default"
FORMULA_CACHE_SIZE = 50_000
MAX_LABELS, MAX_LABEL_CHARS = 20, 200
FEATURIZE_CHUNK = 32  # crystals a worker featurizes per task
# as torch's DataLoader: fork where the platform has it (no re-import of the caller's script, no
# `if __name__ == "__main__"` needed); the workers run numpy and spglib only, never torch
START_METHOD = "fork" if sys.platform == "linux" else "spawn"


def packaged_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Models shipped inside the package: "default" and its composition-only baseline "composition"."""
    return Path(str(resources.files("crystalclip") / "pretrained" / name))


def load(name_or_path: str | os.PathLike = DEFAULT_MODEL, device: str = "cpu") -> "Model":
    """A trained model by packaged name ("default", "composition") or run directory; never downloads.
    device: "cpu", "cuda", "cuda:1", ... or "auto" (a GPU when there is one): where the towers run."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and len(path.parts) == 1 and packaged_model_path(name_or_path).is_dir():
        path = packaged_model_path(name_or_path)
    return Model(CrystalClip.load(path), path).to(device)


def open_index(directory: str | os.PathLike, model=None) -> Index:
    """An index with the model that embeds its queries attached: `model` (a name, a run directory or a
    loaded Model), else the one the index records; ModelMismatch if they differ."""
    index = Index.load(directory)
    if model is None:
        model = index.info["model"]["path"]
    if not isinstance(model, Model):
        model = load(model)
    index.check_model(model)
    index.model = model
    return index


def check_prompts(labels: Sequence[str], template: str = "{}") -> list[str]:
    """The labels, stripped, if they and the template make prompts; BadInput with the reason otherwise."""
    names = [str(label).strip() for label in labels if str(label).strip()]
    if not names:
        raise BadInput("give at least one label, e.g. superconductor,insulator")
    if len(names) > MAX_LABELS:
        raise BadInput(f"at most {MAX_LABELS} labels, not {len(names)}")
    if len(set(names)) != len(names):
        raise BadInput("a label is given twice")
    if any(len(n) > MAX_LABEL_CHARS for n in names):
        raise BadInput(f"a label is longer than {MAX_LABEL_CHARS} characters")
    try:
        template.format("label")
        one_slot = template.count("{}") == 1
    except (IndexError, KeyError, ValueError):
        one_slot = False
    if not one_slot:
        raise BadInput(f"the template {template!r} must hold one '{{}}' where the label goes, like 'a {{}} material'")
    return names


def featurize(task: tuple[Crystal, object, float | None]):
    """(graph or the reason there is none, reduced formula, symmetry-channel inputs or None) of one
    crystal: the per-structure work before the model, the same in this process and in workers."""
    crystal, graph_config, symprec = task
    try:
        graph = build_graph(crystal, graph_config)
    except StructureError as error:
        return str(error), None, None
    return graph, crystal.reduced_formula(), symmetry_features(crystal, symprec) if symprec is not None else None


class Encoded(NamedTuple):
    """What `errors="skip"` returns: the rows that encoded, which inputs they are, and the rest."""

    embeddings: np.ndarray  # (n encoded, D) unit rows
    index: list[int]  # position in the inputs of each row
    failures: list[tuple[int, str]]  # (position in the inputs, reason)


def to_crystals(structures, errors: str = "raise") -> tuple[list[Crystal], list[tuple[int, str]]]:
    """pymatgen Structures, Crystals, CIF texts or paths (files, folders, tables) -> Crystals, and the
    inputs that gave none as (position, "where: reason"). errors="raise" raises at the first."""
    crystals, failures = [], []
    for item in expand_inputs(structures):
        for found, _ in read_input(item):
            if isinstance(found, ReadFailure):
                if errors == "raise":
                    raise StructureError(str(found))
                failures.append((len(crystals) + len(failures), str(found)))
            else:
                crystals.append(found)
    return crystals, failures


class Model:
    def __init__(self, clip: CrystalClip, path: Path | None = None):
        self.clip = clip.eval()
        self.path = path
        self.graph_config = clip.config.graph  # the model's: training and every encode build the same graphs
        self._formulas: dict[str, torch.Tensor] = {}  # formula -> tower features: formulas repeat a lot
        self._pool, self._pool_size = None, 0  # featurizing processes, started on the first encode with workers > 0

    def _formula_features(self, formulas: list[str]) -> torch.Tensor:
        missing = [f for f in dict.fromkeys(formulas) if f not in self._formulas]
        if missing:
            if len(self._formulas) + len(missing) > FORMULA_CACHE_SIZE:
                self._formulas.clear()  # and this batch's formulas that were cached go with it
                missing = list(dict.fromkeys(formulas))
            self._formulas.update(zip(missing, self.clip.formula_tower.encode(missing)))
        return torch.stack([self._formulas[f] for f in formulas])

    def _featurizing(self, crystals: Sequence[Crystal], workers: int):
        """Each crystal's featurize() result, in order: computed here, or by `workers` processes while
        this one runs the model (pool.imap keeps them busy ahead of it)."""
        symmetry = self.clip.config.symmetry
        tasks = ((c, self.graph_config, symmetry.symprec if symmetry.enabled else None) for c in crystals)
        if workers <= 0 or len(crystals) < 2 * FEATURIZE_CHUNK:
            yield from map(featurize, tasks)
            return
        if self._pool is None or self._pool_size != workers:
            import multiprocessing

            if self._pool is not None:
                self._pool.terminate()
            self._pool, self._pool_size = multiprocessing.get_context(START_METHOD).Pool(workers), workers
        yield from self._pool.imap(featurize, tasks, chunksize=FEATURIZE_CHUNK)

    def to(self, device: str) -> "Model":
        """Run the towers on `device` (batches move there, embeddings come back as numpy on the CPU)."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.clip.to(torch.device(device))
        except (RuntimeError, AssertionError) as error:  # torch says "Torch not compiled with CUDA" etc.
            raise BadInput(f"cannot run the model on {device!r}: {str(error).splitlines()[0]}") from None
        return self

    @property
    def device(self) -> torch.device:
        return next(self.clip.parameters()).device

    @property
    def dim(self) -> int:
        return self.clip.config.embed_dim

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        features = self.clip.text_tower.encode(texts, batch_size=batch_size)
        return self.clip.embed_text_features(features.to(self.device)).cpu().numpy()

    @torch.no_grad()
    def encode_crystals(self, crystals: Sequence[Crystal], batch_size: int = 128, progress=None,
                        errors: str = "raise", workers: int = 0):
        """(N, D) unit rows. errors="raise": a structure the model cannot take raises, naming it;
        errors="skip": an `Encoded` of the rows that encoded and the failures with their reasons.
        workers > 0: graphs and symmetry inputs are built in that many processes while this one encodes."""
        if errors not in ("raise", "skip"):
            raise BadInput(f"errors must be 'raise' or 'skip', not {errors!r}")
        out, kept, failures = [], [], []
        featurized = self._featurizing(crystals, workers)
        for start in range(0, len(crystals), batch_size):
            chunk, graphs, formulas, symmetry = [], [], [], []
            for position in range(start, min(start + batch_size, len(crystals))):
                graph, formula, found = next(featurized)
                if isinstance(graph, str):
                    if errors == "raise":
                        raise StructureError(f"{crystals[position].id}: {graph}")
                    failures.append((position, graph))
                    continue
                chunk.append(position)
                graphs.append(graph)
                formulas.append(formula)
                symmetry.append(found)
            if chunk:
                some = [crystals[p] for p in chunk]
                potential = None
                if self.clip.reads_potential:
                    from .models.chgnet import chgnet_features

                    potential = torch.from_numpy(chgnet_features(some))
                device = self.device
                symmetry_inputs = None
                if symmetry[0] is not None:
                    symmetry_inputs = (torch.tensor([n for n, _ in symmetry], dtype=torch.long, device=device),
                                       torch.from_numpy(np.stack([v for _, v in symmetry])).to(device))
                formula_features = None
                if self.clip.config.composition_channel:
                    formula_features = self._formula_features(formulas).to(device)
                if potential is not None:
                    potential = potential.to(device)
                out.append(self.clip.embed_crystals(collate_graphs(graphs).to(device), formula_features,
                                                    symmetry_inputs, potential).cpu().numpy())
                kept += chunk
            if progress:
                progress(min(start + batch_size, len(crystals)), len(crystals))
        embeddings = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return embeddings if errors == "raise" else Encoded(embeddings, kept, failures)

    def encode_structures(self, structures, batch_size: int = 128, errors: str = "raise"):
        """(N, D) unit rows, one per structure (pymatgen Structures, paths, CIF text or Crystals).

        errors="raise" (default) stops at the first unusable input, naming it; errors="skip" returns an
        `Encoded`: the rows that encoded, their positions among the structures read, and the failures."""
        crystals, unread = to_crystals(structures, errors=errors)
        encoded = self.encode_crystals(crystals, batch_size=batch_size, errors=errors)
        if errors == "raise":
            return encoded
        # positions count every structure read or not, in input order
        unreadable = {u for u, _ in unread}
        read = [p for p in range(len(crystals) + len(unread)) if p not in unreadable]
        failures = sorted(unread + [(read[p], f"{crystals[p].id}: {reason}") for p, reason in encoded.failures])
        return Encoded(encoded.embeddings, [read[p] for p in encoded.index], failures)

    def classify(self, structures, labels: Sequence[str], template: str = "{}", errors: str = "raise"):
        """(N, L) zero-shot probabilities: softmax over the labels of the scaled cosine similarities.

        errors="skip": an `Encoded` whose rows are the probabilities of the structures that encoded."""
        labels = check_prompts(labels, template)
        encoded = self.encode_structures(structures, errors=errors)
        z = encoded if errors == "raise" else encoded.embeddings
        t = self.encode_texts([template.format(label) for label in labels])
        logits = float(self.clip.logit_scale.detach()) * z @ t.T
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        return p if errors == "raise" else encoded._replace(embeddings=p)
