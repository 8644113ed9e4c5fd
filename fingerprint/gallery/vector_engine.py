"""A distributed vector engine as the first stage of identify: Milvus (pymilvus; milvus-lite embedded).

The engine holds one collection per model version: each template's search vector (its centred view)
under its template id, nothing else (no subject, no finger). It answers which ids are nearest a probe;
the service re-scores them itself (gallery/index.py), so the engine only has to find candidates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

# the engine's own limit on one search's result count (Milvus: topk <= 16384)
MAX_LIMIT = 16384
_PAGE = 5000


class VectorCollection(Protocol):
    def search(self, vectors: np.ndarray, limit: int) -> list[list[str]]:
        """For each row of `vectors` (P, D), the ids of its `limit` nearest by inner product, best first."""
        ...

    def upsert(self, ids: list[str], vectors: np.ndarray) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def seal(self) -> None:
        """Make what was written searchable at full speed (Milvus: flush its growing segments)."""
        ...

    def all_ids(self) -> Iterator[list[str]]:
        """Every id the collection holds, in pages."""
        ...


VectorEngine = Callable[[str, int], VectorCollection]  # (model version, dimension) -> its collection


class EngineUnavailable(Exception):
    """The engine could not be reached or refused the call: identify falls back to the in-memory scan."""


def collection_name(model_version: str) -> str:
    """Milvus names allow letters, digits and underscores: 5.1.0 -> fingerprint_5_1_0."""
    return "fingerprint_" + re.sub(r"[^0-9A-Za-z_]", "_", model_version)


class MilvusCollection:
    """One model version's search vectors in Milvus; created (FLAT index, inner product) if missing.

    FLAT is exact: the engine's shortlist is the in-memory scan's (lab/benchmarks/engine.py measures
    recall and latency). `uri` is a Milvus address (http://milvus:19530) or a local file (milvus-lite)."""

    def __init__(self, uri: str, token: str, model_version: str, dim: int, timeout: float = 10.0) -> None:
        try:
            from pymilvus import DataType, MilvusClient
        except ImportError as exc:  # an optional extra: say how to get it
            raise EngineUnavailable("VECTOR_ENGINE=milvus needs pymilvus: pip install 'fingerprint-api[milvus]'") from exc
        except Exception as exc:  # pymilvus checks its own environment (MILVUS_URI) as it is imported
            raise EngineUnavailable(f"pymilvus failed to load: {type(exc).__name__}: {exc}") from exc
        self.name = collection_name(model_version)
        self._timeout = timeout
        try:
            self._client = MilvusClient(uri=uri, token=token, timeout=timeout)
            if not self._client.has_collection(self.name):
                schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
                schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
                index = self._client.prepare_index_params()
                index.add_index(field_name="v", index_type="FLAT", metric_type="IP")
                # Strong: a search sees every write acknowledged before it (an erasure is never found again)
                self._client.create_collection(self.name, schema=schema, index_params=index, consistency_level="Strong")
            self._client.load_collection(self.name)
        except EngineUnavailable:
            raise
        except Exception as exc:
            raise EngineUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(self.name, *args, timeout=self._timeout, **kwargs)
        except Exception as exc:
            raise EngineUnavailable(f"{method}: {type(exc).__name__}: {exc}") from exc

    def search(self, vectors: np.ndarray, limit: int) -> list[list[str]]:
        data = np.ascontiguousarray(vectors, dtype=np.float32).tolist()
        found = self._call("search", data, limit=min(limit, MAX_LIMIT), output_fields=["id"],
                           search_params={"metric_type": "IP"})
        return [[str(hit["id"]) for hit in hits] for hits in found]

    def upsert(self, ids: list[str], vectors: np.ndarray) -> None:
        rows = np.asarray(vectors, dtype=np.float32)
        for start in range(0, len(ids), _PAGE):
            self._call("upsert", [{"id": i, "v": v.tolist()} for i, v in
                                  zip(ids[start : start + _PAGE], rows[start : start + _PAGE], strict=True)])

    def delete(self, ids: list[str]) -> None:
        for start in range(0, len(ids), _PAGE):
            self._call("delete", ids=ids[start : start + _PAGE])

    def seal(self) -> None:
        self._call("flush")

    def all_ids(self) -> Iterator[list[str]]:
        try:
            pages = self._client.query_iterator(self.name, batch_size=_PAGE, output_fields=["id"], timeout=self._timeout)
            try:
                while page := pages.next():
                    yield [str(r["id"]) for r in page]
            finally:
                pages.close()
        except Exception as exc:
            raise EngineUnavailable(f"query_iterator: {type(exc).__name__}: {exc}") from exc
