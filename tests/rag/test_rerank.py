"""The cross-encoder: the tiny model in bge-reranker-v2-m3's format, scores equal FlagReranker's, loading rules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from FlagEmbedding import FlagReranker

from rag.config import RerankerSettings
from rag.errors import ConfigError, ModelNotAvailableError
from rag.rerank import FlagCrossEncoder, Reranker, load_reranker, loaded_rerankers
from rag.testing.tiny_bge_reranker import reranker_config
from tests.conftest import ROOT

QUERY = "员工每年享有多少天带薪年假？"
PASSAGES = [
    "正式员工每年享有带薪年假，工作满一年后为 10 天。",
    "How does the sync engine resolve conflicts? The newest edit wins and the other is kept as a copy.",
    "Are my notes encrypted?",
    "remote work " * 300,  # longer than max_length: cut as FlagReranker cuts it
    "入职第一周需要做什么",
    "",
]


def tiny(model: Path, **changes: object) -> RerankerSettings:
    return RerankerSettings(model=str(model), device="cpu", **changes)  # type: ignore[arg-type]


def test_the_tiny_model_has_bge_reranker_v2_m3s_files_and_loads_with_flag_reranker(tiny_reranker_dir: Path) -> None:
    names = {p.name for p in tiny_reranker_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json"} <= names
    config = json.loads((tiny_reranker_dir / "config.json").read_text())
    assert config["architectures"] == ["XLMRobertaForSequenceClassification"]
    assert config["model_type"] == "xlm-roberta" and config["id2label"] == {"0": "LABEL_0"}
    flag = FlagReranker(str(tiny_reranker_dir), use_fp16=False, devices="cpu")
    scores = flag.compute_score([(QUERY, p) for p in PASSAGES[:3]])
    assert len(set(scores)) == 3  # a real, seeded model: different pairs, different scores


def test_the_tiny_model_is_the_same_in_every_process(tiny_reranker_dir: Path, tmp_path: Path) -> None:
    code = ("import sys; from rag.testing.tiny_bge_reranker import build_bge_reranker_like; "
            "from tests.conftest import example_texts; "
            "build_bge_reranker_like(sys.argv[1], seed=0, extra_texts=example_texts(), max_length=512)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "again")], check=True, cwd=ROOT, timeout=300)
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tiny_reranker_dir / name).read_bytes()


@pytest.mark.parametrize("batching", [{}, {"batch_tokens": 0, "batch_size": 2}, {"batch_tokens": 200}])
def test_scores_equal_flag_rerankers_raw_and_normalised(tiny_reranker_dir: Path, batching: dict[str, int]) -> None:
    reranker = FlagCrossEncoder(tiny(tiny_reranker_dir, max_length=128, **batching))
    batches: list[tuple[int, int]] = []
    found = reranker.score(QUERY, PASSAGES, on_batch=lambda n, tokens: batches.append((n, tokens)))
    flag = FlagReranker(str(tiny_reranker_dir), use_fp16=False, devices="cpu", max_length=128)
    pairs = [(QUERY, p) for p in PASSAGES]
    assert [s.raw for s in found] == pytest.approx(flag.compute_score(pairs), abs=1e-5)
    assert [s.normalised for s in found] == pytest.approx(flag.compute_score(pairs, normalize=True), abs=1e-5)
    assert all(0 < s.normalised < 1 for s in found)
    assert sum(n for n, _ in batches) == len(PASSAGES) == reranker.pairs_scored
    if batching.get("batch_tokens") == 200:
        assert batches[0] == (1, 128)  # the long pair, cut to max_length, fills a pass on its own


def test_no_passages_no_forward_pass(tiny_reranker_dir: Path) -> None:
    reranker = load_reranker(tiny(tiny_reranker_dir))
    before = reranker.pairs_scored
    assert reranker.score(QUERY, []) == [] and reranker.pairs_scored == before


def test_loaded_once_per_process_and_settings(tiny_reranker_dir: Path) -> None:
    first = load_reranker(tiny(tiny_reranker_dir))
    assert isinstance(first, Reranker) and load_reranker(tiny(tiny_reranker_dir)) is first
    other = load_reranker(tiny(tiny_reranker_dir, batch_size=3))
    assert other is not first and {id(first), id(other)} <= {id(r) for r in loaded_rerankers()}


def message(settings: RerankerSettings) -> str:
    with pytest.raises(ModelNotAvailableError) as info:
        load_reranker(settings)
    return str(info.value)


def test_missing_weights_are_one_clear_paragraph(tiny_reranker_dir: Path, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(tiny_reranker_dir, partial)
    (partial / "model.safetensors").unlink()
    loaded = len(loaded_rerankers())
    msg = message(tiny(partial))
    assert "Reranker model directory" in msg and "incomplete" in msg and "model.safetensors" in msg
    assert "huggingface-cli download BAAI/bge-reranker-v2-m3" in msg and "RAG_RETRIEVAL__RERANKER__MODEL" in msg
    assert "retrieval.reranker.hub: modelscope" in msg and "\n" not in msg
    assert len(loaded_rerankers()) == loaded
    msg = message(tiny(tmp_path / "nowhere" / "bge-reranker-v2-m3"))
    assert "No reranker model at" in msg and "does not exist" in msg and "\n" not in msg


def test_damaged_weights_are_a_clear_error_not_a_traceback(tiny_reranker_dir: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_reranker_dir, damaged)
    (damaged / "model.safetensors").write_bytes(b"not weights")
    msg = message(tiny(damaged))
    assert f"Reranker model at {damaged} could not be loaded" in msg
    assert "complete bge-reranker-v2-m3 download (config.json, weights, tokenizer)" in msg


def test_a_hub_name_offline_is_an_immediate_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    msg = message(RerankerSettings(device="cpu"))
    assert "'BAAI/bge-reranker-v2-m3' is not in the Hugging Face cache" in msg and "HF_HUB_OFFLINE is set" in msg
    msg = message(RerankerSettings(device="cpu", download=False, model="BAAI/another-reranker"))
    assert "HF_HUB_OFFLINE is set" in msg and "huggingface-cli download" in msg


def test_the_full_size_option_has_the_real_architecture() -> None:
    config = reranker_config(386, full_size=True, max_length=8192)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (1024, 24, 250002)
    assert config.max_position_embeddings == 8194 and config.num_labels == 1
    assert reranker_config(386).vocab_size == 386


def order_agreement(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of two score lists (Pearson of their ranks)."""
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def quantised_linears(reranker: Reranker) -> int:
    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in reranker.module.modules())  # type: ignore[attr-defined]


def test_int8_is_its_own_instance_and_orders_as_fp32_does(tiny_reranker_dir: Path) -> None:
    fp32 = load_reranker(tiny(tiny_reranker_dir))
    int8 = load_reranker(tiny(tiny_reranker_dir, quantize="int8"))
    assert int8 is not fp32 and load_reranker(tiny(tiny_reranker_dir, quantize="int8")) is int8
    assert quantised_linears(int8) > 0 and quantised_linears(fp32) == 0
    exact = [s.raw for s in fp32.score(QUERY, PASSAGES)]
    approx = [s.raw for s in int8.score(QUERY, PASSAGES)]
    assert approx != pytest.approx(exact, abs=1e-4)  # int8 arithmetic, not the fp32 model again
    assert order_agreement(exact, approx) >= 0.9


def test_int8_runs_on_the_cpu_and_refuses_cuda(tiny_reranker_dir: Path) -> None:
    assert FlagCrossEncoder(RerankerSettings(model=str(tiny_reranker_dir), quantize="int8")).device == "cpu"
    with pytest.raises(ConfigError) as info:
        FlagCrossEncoder(RerankerSettings(model=str(tiny_reranker_dir), device="cuda", quantize="int8"))
    assert "retrieval.reranker.quantize is int8 but retrieval.reranker.device is cuda" in str(info.value)
