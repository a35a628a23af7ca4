"""Concurrent text searches answered together: the texts of every request waiting at that moment go
through the text tower in one call, and the unfiltered ones through faiss in one call.

Leader and followers: each request thread queues its query and takes the work lock; whoever holds it
answers everything queued (its own query included), so at low load a query is answered alone and at
once, and under load the batch grows to what arrived while the previous one ran. One thread at a time
runs the model, which HF tokenizers need.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

MAX_BATCH = 64


@dataclass
class _Query:
    text: str
    k: int
    filters: dict
    done: threading.Event = field(default_factory=threading.Event)
    results: list | None = None
    error: Exception | None = None


class SearchBatcher:
    def __init__(self, index):
        self.index = index
        self.work = threading.Lock()  # held while a batch runs the model: also guards other model calls
        self._queue: list[_Query] = []
        self._queue_lock = threading.Lock()

    def search(self, text: str, k: int, **filters) -> list[dict]:
        """Index.search(text, k, **filters), answered in a batch with whatever else is waiting."""
        query = _Query(text, k, {key: value for key, value in filters.items() if value not in (None, "")})
        with self._queue_lock:
            self._queue.append(query)
        while not query.done.is_set():
            with self.work:
                if not query.done.is_set():
                    with self._queue_lock:
                        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                    self._answer(batch)
        if query.error is not None:
            raise query.error
        return query.results

    def _answer(self, batch: list[_Query]) -> None:
        try:
            vectors = self.index.model.encode_texts([q.text for q in batch])
            plain = [i for i, q in enumerate(batch) if not q.filters]
            if plain:
                found = self.index.search_vectors(vectors[plain], k=max(batch[i].k for i in plain))
                for i, results in zip(plain, found):
                    batch[i].results = results[: batch[i].k]
            for i, q in enumerate(batch):
                if q.filters:
                    try:
                        q.results = self.index.search(vectors[i], k=q.k, **q.filters)
                    except Exception as error:  # a bad filter: that request's error, not the batch's
                        q.error = error
        except Exception as error:  # the model failed: every request of the batch hears why
            for q in batch:
                if q.results is None and q.error is None:
                    q.error = error
        finally:
            for q in batch:
                q.done.set()
