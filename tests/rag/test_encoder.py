"""The bge-m3 encoder: equal to FlagEmbedding's BGEM3FlagModel.encode, clear errors when the model is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import EmbeddingSettings
from rag.encoder import BGEM3Encoder, Encoder, load_encoder
from rag.encoder.bge_m3 import lexical_weights
from rag.errors import ModelNotAvailableError

TEXTS = [
    "我喜欢看书。",
    "阅读使我快乐",
    "The sync engine resolves conflicts with a vector clock. " * 12,
    "How are you?",
    "员工每年享有十五天带薪年假，请提前一周申请。",
    "x",
]


def test_matches_flagembedding_reference(encoder: Encoder) -> None:
    ours = encoder.encode(TEXTS, colbert=True)
    ref = encoder.flag_model.encode(  # type: ignore[attr-defined]
        TEXTS, batch_size=4, max_length=512, return_dense=True, return_sparse=True, return_colbert_vecs=True
    )
    assert ours.dense.shape == (len(TEXTS), encoder.dim)
    assert ours.dense.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours.dense, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours.dense, ref["dense_vecs"], atol=1e-5)
    for mine, theirs in zip(ours.sparse, ref["lexical_weights"], strict=True):
        assert set(mine) == {int(k) for k in theirs}
        for token, weight in theirs.items():
            assert mine[int(token)] == pytest.approx(float(weight), abs=1e-5)
    for mine, theirs in zip(ours.colbert, ref["colbert_vecs"], strict=True):
        assert mine.shape == theirs.shape
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_lexical_weights_of_a_batch_keep_each_tokens_largest_positive_weight() -> None:
    """The rule of FlagEmbedding's ``_process_token_weights`` (a loop over one row), on random batches with
    repeated tokens, zero and negative weights, special tokens and padding."""
    rng = np.random.default_rng(7)
    unused = np.array([0, 1, 2, 3])
    for rows, width in [(1, 1), (5, 40), (32, 200)]:
        ids = rng.integers(0, 30, (rows, width))
        ids[:, rng.integers(1, width + 1):] = 1  # padding
        weights = rng.choice([-0.5, 0.0, 0.25, 0.5], (rows, width)) * rng.random((rows, width)).astype(np.float32)
        expected = []
        for row_weights, row_ids in zip(weights.tolist(), ids.tolist(), strict=True):
            best: dict[int, float] = {}
            for w, token in zip(row_weights, row_ids, strict=True):
                if token not in unused and w > 0 and w > best.get(token, 0):
                    best[token] = w
            expected.append(best)
        assert lexical_weights(weights, ids, unused) == expected
    assert lexical_weights(np.zeros((2, 3), np.float32), np.ones((2, 3), np.int64), unused) == [{}, {}]


def test_counts_encoded_texts_and_reports_batches(encoder: Encoder) -> None:
    before = encoder.texts_encoded
    batches: list[tuple[int, int]] = []
    out = encoder.encode(TEXTS, on_batch=lambda n, tokens: batches.append((n, tokens)))
    assert encoder.texts_encoded - before == len(TEXTS)
    assert sum(n for n, _ in batches) == len(TEXTS)
    assert sum(t for _, t in batches) == sum(out.token_counts)
    assert out.colbert is None
    assert encoder.encode([]).dense.shape == (0, encoder.dim)


def test_loaded_once_per_process(encoder: Encoder, tiny_model_dir: Path) -> None:
    same = EmbeddingSettings(model=str(tiny_model_dir), device="cpu", batch_size=8, max_length=512)
    assert load_encoder(same) is encoder
    assert encoder.dim == 32
    assert encoder.model_name == str(tiny_model_dir)
    assert encoder.tokenizer("我喜欢看书")["input_ids"][0] == 0


def _message(settings: EmbeddingSettings) -> str:
    with pytest.raises(ModelNotAvailableError) as info:
        BGEM3Encoder(settings)
    return str(info.value)


def test_missing_directory_explains_how_to_get_the_model(tmp_path: Path) -> None:
    msg = _message(EmbeddingSettings(model=str(tmp_path / "nowhere" / "bge-m3")))
    assert "does not exist" in msg
    assert "huggingface-cli download BAAI/bge-m3" in msg
    assert "ModelScope" in msg and "RAG_EMBEDDING__MODEL" in msg
    assert "\n" not in msg  # one paragraph


def test_hub_name_offline_is_an_immediate_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    msg = _message(EmbeddingSettings(model="BAAI/bge-m3"))
    assert "not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE" in msg
    assert "huggingface-cli download" in msg


def test_incomplete_directory_names_missing_heads(tiny_model_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tiny_model_dir, partial)
    (partial / "sparse_linear.pt").unlink()
    msg = _message(EmbeddingSettings(model=str(partial)))
    assert "incomplete" in msg and "sparse_linear.pt" in msg


def test_modelscope_without_sdk_says_what_to_install() -> None:
    pytest.importorskip("torch")
    try:
        import modelscope  # noqa: F401
    except ImportError:
        msg = _message(EmbeddingSettings(model="BAAI/bge-m3", hub="modelscope"))
        assert "pip install 'ragscope[modelscope]'" in msg
    else:
        pytest.skip("modelscope is installed")


def test_cuda_requested_without_gpu(tiny_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    msg = _message(EmbeddingSettings(model=str(tiny_model_dir), device="cuda"))
    assert "no CUDA GPU" in msg
