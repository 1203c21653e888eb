"""The exact index of an embedded collection on disk, so that a new process need not read it from Milvus again.

Reading a collection's vectors back from milvus-lite is slow (100,000 chunks at 1024-d: 42 s on 2 cores), and a new
process (the web app started again, every ``rag search``) would do it each time. So once this process has read an
index from Milvus, or kept one current through an ingest's writes, it writes it beside the database
(``<milvus.uri>.exact/<collection>.npz``: numpy arrays, no pickle), tagged with the collection's write stamp and
row count (rag.store.exact_search). A later process loads it only when both still match what the collection
records: any write through rag.store replaces the stamp, a writer that records none (raw pymilvus inserts and
deletes) changes the count. The file is written to a temporary name and renamed, so a reader sees a whole snapshot
or none, and one that cannot be read is ignored: the index is then read from Milvus, as without snapshots.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rag.store.exact_index import ATTRS, ExactIndex

FORMAT = 2  # 2: chunk_index and title kept too


def snapshot_path(location: str, name: str) -> Path:
    """Where the snapshot of collection ``name`` of the embedded database at ``location`` lives."""
    return Path(f"{location}.exact") / f"{name}.npz"


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), np.uint8)


def write(index: ExactIndex, path: Path, stamp: str) -> Path:
    """``index`` written next to ``path`` under a temporary name, returned: rename it to ``path`` to publish it."""
    ids, attrs, dense, sparse_rows = index.live()
    lengths = np.fromiter((len(tokens) for tokens, _ in sparse_rows), np.int64, len(sparse_rows))
    header = {"format": FORMAT, "stamp": stamp, "rows": len(ids), "dim": index.dim, "norm_max": index.norm_max}
    rows = [[chunk_id, *(a[name] for name in ATTRS)] for chunk_id, a in zip(ids, attrs, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            np.savez(
                out, header=_bytes(json.dumps(header)), rows=_bytes(json.dumps(rows, ensure_ascii=False)),
                dense=dense, lengths=lengths,
                tokens=np.concatenate([t for t, _ in sparse_rows]) if sparse_rows else np.zeros(0, np.int64),
                weights=np.concatenate([w for _, w in sparse_rows]) if sparse_rows else np.zeros(0, np.float64),
            )
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def header(path: Path) -> dict[str, Any]:
    """The snapshot's format, stamp, rows and dim (reads only that part of the file)."""
    with np.load(path, allow_pickle=False) as data:
        return dict(json.loads(data["header"].tobytes()))


def read(path: Path) -> ExactIndex:
    """The index a snapshot holds."""
    with np.load(path, allow_pickle=False) as data:
        head = json.loads(data["header"].tobytes())
        rows = json.loads(data["rows"].tobytes())
        dense, lengths = data["dense"], data["lengths"]
        tokens, weights = data["tokens"], data["weights"]
    if head.get("format") != FORMAT or len(rows) != head["rows"] or len(lengths) != len(rows):
        raise ValueError(f"{path} is not a snapshot of this format")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    sparse_rows = [(tokens[a:b], weights[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    attrs = [dict(zip(ATTRS, row[1:], strict=True)) for row in rows]
    return ExactIndex.of_rows(int(head["dim"]), [row[0] for row in rows], attrs, dense, sparse_rows,
                              float(head["norm_max"]))
