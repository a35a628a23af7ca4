"""Several indexes made by one model, used as one: searched together (each shard answers its top k,
the best k of all are ranked again) or merged into one index (`crystalclip index-merge`)."""
from __future__ import annotations

import pandas as pd

from .errors import BadInput
from .index import Index
from .index_kinds import configure, empty_exact, without_direct_map


def search_together(indexes: list[Index], query, k: int = 10, model=None, **filters) -> list[dict]:
    """Top-k over several indexes of one model (shards), as if they were one: the query is embedded
    once, each shard returns its top-k under the filters, and the best k of all are ranked again."""
    if not indexes:
        raise BadInput("no index to search")
    model = model or indexes[0].model
    vector = indexes[0].query_vector(query, model)[0]
    found = []
    for shard in indexes:
        shard.check_model_identity(indexes[0].info["model"])
        if shard.count:
            found += shard.search(vector, k=k, **filters)
    found.sort(key=lambda r: -r["score"])
    return [{**r, "rank": rank} for rank, r in enumerate(found[:k], 1)]


def merge(shards: list[Index]) -> Index:
    """One index of several shards made by one model. flat shards merge always; sq8 and ivfpq shards
    merge when they were trained together (`faiss.clone_index` of one trained index, then filled)."""
    import faiss

    if not shards:
        raise BadInput("no index to merge")
    first = shards[0]
    for shard in shards[1:]:
        shard.check_model_identity(first.info["model"])
        if shard.kind != first.kind:
            raise BadInput(f"cannot merge a {shard.kind} index into a {first.kind} one")
    if first.kind == "hnsw":
        combined = empty_exact(first.info["dim"], "hnsw")
        for shard in shards:
            combined.add(shard.faiss.reconstruct_n(0, shard.count))
    else:
        combined = without_direct_map(faiss.clone_index(first.faiss))
        for shard in shards[1:]:
            try:
                # merge_from empties its argument (so: a copy); IVF ids of the shard follow the ones before
                combined.merge_from(without_direct_map(faiss.clone_index(shard.faiss)),
                                  combined.ntotal if first.kind == "ivfpq" else 0)
            except RuntimeError as error:
                raise BadInput(f"these {first.kind} shards were trained separately and cannot be merged "
                               f"({str(error).splitlines()[-1]}): search them together instead") from None
        configure(combined, first.info)
    meta = pd.concat([s.meta for s in shards], ignore_index=True)
    failed = pd.concat([s.failed for s in shards], ignore_index=True)
    index = Index(combined, meta, {**first.info, "count": int(combined.ntotal)}, failed)
    if index.kind == "hnsw":
        index.measure_recall()
    return index
