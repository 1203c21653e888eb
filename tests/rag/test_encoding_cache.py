"""The SQLite encoding cache: seen text is never encoded twice, results are identical, keys separate models."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import IngestPipeline
from rag.config import EmbeddingSettings, Settings
from rag.encoder import CachedEncoder, Encoder, EncodingCache, cache_path, load_encoder
from rag.encoder.cache import model_key, pack_sparse, unpack_sparse
from rag.store import MilvusStore
from tests.conftest import EXAMPLES

TEXTS = [
    "我喜欢看书。",
    "The sync engine resolves conflicts with a vector clock. " * 8,
    "员工每年享有十五天带薪年假，请提前一周申请。",
    "How are you?",
    "x",
]


@pytest.fixture
def cached_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(tmp_path, app={"data_dir": str(tmp_path / "data")})


@pytest.fixture
def cached(cached_settings: Settings) -> CachedEncoder:
    enc = load_encoder(cached_settings.embedding, data_dir=cached_settings.app.data_dir)
    assert isinstance(enc, CachedEncoder)
    return enc


def assert_same(a, b) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_allclose(a.dense, b.dense, atol=1e-6)
    assert a.token_counts == b.token_counts
    for x, y in zip(a.sparse, b.sparse, strict=True):
        assert x.keys() == y.keys()
        assert all(abs(x[k] - y[k]) <= 1e-6 for k in x)


def test_second_encode_runs_no_model_pass_and_returns_identical_vectors(
    cached: CachedEncoder, encoder: Encoder, cached_settings: Settings
) -> None:
    assert cached.inner is encoder  # the same loaded model, wrapped
    first = cached.encode(TEXTS)
    assert cached.texts_encoded == len(TEXTS)
    assert_same(first, encoder.encode(TEXTS))
    progress: list[tuple[int, int]] = []
    second = cached.encode(TEXTS, on_batch=lambda n, tokens: progress.append((n, tokens)))
    assert cached.texts_encoded == len(TEXTS)  # zero new model passes
    assert progress == [(len(TEXTS), 0)]  # the progress bar still advances, with no tokens encoded
    assert_same(second, first)
    path = Path(cached_settings.app.data_dir) / "encoding-cache.sqlite"
    assert path.is_file() and cache_path(cached_settings.app.data_dir) == path


def test_a_new_process_reads_the_file_not_memory(cached: CachedEncoder, encoder: Encoder) -> None:
    first = cached.encode(TEXTS)
    fresh = CachedEncoder(encoder, EncodingCache(cached.store.path), memory_items=0)  # as a later run would
    again = fresh.encode(list(reversed(TEXTS)))
    assert fresh.texts_encoded == 0 and fresh.hits == len(TEXTS)
    np.testing.assert_array_equal(again.dense, first.dense[::-1])
    assert again.sparse == first.sparse[::-1]


def test_only_unseen_and_distinct_texts_are_encoded(cached: CachedEncoder) -> None:
    cached.encode(TEXTS[:2])
    batches: list[tuple[int, int]] = []
    out = cached.encode([*TEXTS, TEXTS[3], TEXTS[3]], on_batch=lambda n, tokens: batches.append((n, tokens)))
    assert cached.texts_encoded == len(TEXTS)  # 2 then the 3 new ones; the duplicates once
    assert len(out.token_counts) == len(TEXTS) + 2
    assert batches[0] == (4, 0)  # 2 cached + 2 repeats, reported up front so progress reaches the total
    assert sum(n for n, _ in batches) == len(TEXTS) + 2
    np.testing.assert_array_equal(out.dense[3], out.dense[-1])


def test_texts_encoded_in_slices_longest_first_come_back_in_their_order(
    cached: CachedEncoder, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rag.encoder.cache.MISS_SLICE", 2)
    calls: list[list[str]] = []
    inner_encode = encoder.encode

    def recorded(texts, **options):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return inner_encode(texts, **options)

    monkeypatch.setattr(encoder, "encode", recorded)
    out = cached.encode(TEXTS)
    assert [len(t) for call in calls for t in call] == sorted((len(t) for t in TEXTS), reverse=True)
    assert [len(call) for call in calls] == [2, 2, 1]
    monkeypatch.undo()
    assert_same(out, encoder.encode(TEXTS))
    assert_same(cached.encode(TEXTS), out)  # and stored under the right texts


def test_another_model_fingerprint_misses(cached: CachedEncoder, tiny_model_dir: Path) -> None:
    cached.encode(TEXTS)
    int8 = load_encoder(EmbeddingSettings(model=str(tiny_model_dir), device="cpu", batch_size=8, max_length=512,
                                          quantize="int8"))
    other = CachedEncoder(int8, EncodingCache(cached.store.path))
    assert other.key != cached.key and int8.fingerprint in other.key
    other.encode(TEXTS)
    assert other.texts_encoded == len(TEXTS) and other.hits == 0
    assert cached.store.count(cached.key) == cached.store.count(other.key) == len(TEXTS)


def test_colbert_always_runs_the_model(cached: CachedEncoder) -> None:
    cached.encode(TEXTS)
    out = cached.encode(TEXTS, colbert=True)
    assert cached.texts_encoded == 2 * len(TEXTS)
    assert out.colbert is not None and len(out.colbert) == len(TEXTS)


def test_cache_off_gives_the_bare_encoder(make_settings: Callable[..., Settings], tmp_path: Path,
                                          encoder: Encoder) -> None:
    settings = make_settings(tmp_path, embedding={"cache": False}, app={"data_dir": str(tmp_path / "d")})
    assert load_encoder(settings.embedding, data_dir=settings.app.data_dir) is encoder
    assert load_encoder(settings.embedding) is encoder
    assert not (tmp_path / "d").exists()


def test_rebuilding_a_knowledge_base_encodes_nothing(cached: CachedEncoder, cached_settings: Settings) -> None:
    with MilvusStore(cached_settings.milvus) as store:
        first = IngestPipeline(cached_settings, cached, store).run([EXAMPLES], kb="first")
        encoded = cached.texts_encoded
        assert 0 < encoded <= first.chunks_written
        second = IngestPipeline(cached_settings, cached, store).run([EXAMPLES], kb="second")
    assert second.chunks_written == first.chunks_written
    assert cached.texts_encoded == encoded  # every chunk came from the cache


def test_sparse_bytes_round_trip_exactly() -> None:
    sparse = {0: 0.5, 7: 0.1234567, 250001: 3.0e-4}
    stored = {k: float(np.float32(v)) for k, v in sparse.items()}
    assert unpack_sparse(pack_sparse(sparse)) == stored
    assert unpack_sparse(pack_sparse({})) == {}


def _writer(path: str, model: str, start: int) -> None:
    store = EncodingCache(path, timeout_s=30)
    rng = np.random.default_rng(start)
    for batch in range(20):
        entries = [
            ((start + batch * 10 + i).to_bytes(32, "big"), (rng.random(32, dtype=np.float32), {i: 0.5}, 3))
            for i in range(10)
        ]
        store.put_many(model, entries)
        store.get_many(model, [digest for digest, _ in entries])
    store.close()


def test_two_processes_write_the_same_file(tmp_path: Path, encoder: Encoder) -> None:
    path = tmp_path / "shared.sqlite"
    EncodingCache(path).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), model_key(encoder), s)) for s in (0, 100_000)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert EncodingCache(path).count() == 400


def test_in_process_cache_answers_repeated_queries_without_a_file(encoder: Encoder) -> None:
    memory_only = CachedEncoder(encoder, None, memory_items=2)
    first = memory_only.encode(["what is the leave policy?"])
    again = memory_only.encode(["what is the leave policy?"])
    assert memory_only.texts_encoded == 1 and memory_only.hits == 1
    np.testing.assert_array_equal(first.dense, again.dense)
    memory_only.encode(["a", "b"])  # evicts the oldest entry (LRU of 2)
    memory_only.encode(["what is the leave policy?"])
    assert memory_only.texts_encoded == 4
