"""`rag eval`: metrics on a small BEIR set with known answers, against an independent brute-force reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from rag.config import Settings
from rag.encoder import Encoder
from rag.evaluation import append_judgment, judgments_path
from rag.retrieval import HybridRetriever
from rag.store import MilvusStore
from tests.conftest import cli_env

DOCS = {
    "d1": ("Leave", "Employees get fifteen days of paid annual leave each year."),
    "d2": ("Remote work", "Staff may work remotely up to three days per week."),
    "d3": ("Sync", "The sync engine orders edits with a vector clock."),
    "d4": ("Backups", "A backup of every notebook is made every night."),
    "d5": ("年假", "员工每年享有十五天带薪年假。"),
    "d6": ("远程办公", "员工每周最多可以远程办公三天。"),
    "d7": ("Export", "Notes can be exported as Markdown or PDF files."),
    "d8": ("Billing", "Questions about billing go to the support desk."),
}
QUERIES = {
    "q1": "How many days of paid annual leave do employees get?",
    "q2": "远程办公每周几天？",
    "q3": "How are edits ordered during sync?",
    "q4": "Can I export my notes?",
    "q5": "Who answers billing questions?",
}
QRELS = {"q1": {"d1": 1, "d5": 1}, "q2": {"d6": 1}, "q3": {"d3": 1}, "q4": {"d7": 1}, "q5": {"d8": 1}}


def write_beir(folder: Path, docs: dict, queries: dict, qrels: dict) -> list[str]:
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc_id, (title, text) in docs.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n")
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, ds in qrels.items() for d, g in ds.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
            "--qrels", str(folder / "qrels" / "test.tsv")]


def run_eval(args: list[str], settings: Settings, monkeypatch: pytest.MonkeyPatch, out: Path) -> dict:
    for name, value in cli_env(settings).items():
        if name.startswith("RAG_"):
            monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["eval", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(out.read_text(encoding="utf-8"))


def reference_metrics(ranking: dict[str, list[str]], qrels: dict[str, dict[str, int]], ks: list[int]) -> dict:
    """Recall@k, MRR@10 and nDCG@10 (binary gains) computed by hand."""
    out: dict[str, list[float]] = {f"recall@{k}": [] for k in ks} | {"mrr@10": [], "ndcg@10": []}
    for qid, relevant in qrels.items():
        ranked = ranking[qid]
        rel = {d for d, g in relevant.items() if g > 0}
        for k in ks:
            out[f"recall@{k}"].append(len(rel & set(ranked[:k])) / len(rel))
        first = next((i for i, d in enumerate(ranked[:10], start=1) if d in rel), None)
        out["mrr@10"].append(1 / first if first else 0.0)
        dcg = sum(1 / math.log2(i + 1) for i, d in enumerate(ranked[:10], start=1) if d in rel)
        ideal = sum(1 / math.log2(i + 1) for i in range(1, min(len(rel), 10) + 1))
        out["ndcg@10"].append(dcg / ideal)
    return {name: float(np.mean(values)) for name, values in out.items()}


def brute_force_rankings(encoder: Encoder, settings: Settings) -> dict[str, dict[str, list[str]]]:
    """Every document scored against every query with FlagEmbedding directly, ranked per mode."""
    flag = encoder.flag_model  # type: ignore[attr-defined]
    ids = list(DOCS)
    texts = [f"{title}\n{text}" for title, text in DOCS.values()]
    d = flag.encode(texts, max_length=512, return_dense=True, return_sparse=True, return_colbert_vecs=True)
    q = flag.encode(list(QUERIES.values()), max_length=512, return_dense=True, return_sparse=True,
                    return_colbert_vecs=True)
    w = settings.retrieval.weights
    rankings: dict[str, dict[str, list[str]]] = {m: {} for m in ("dense", "sparse", "hybrid", "hybrid+colbert")}
    for qi, qid in enumerate(QUERIES):
        dense = d["dense_vecs"] @ q["dense_vecs"][qi]
        sparse = np.array([flag.compute_lexical_matching_score(q["lexical_weights"][qi], lw)
                           for lw in d["lexical_weights"]])
        colbert = np.array([float(flag.colbert_score(q["colbert_vecs"][qi], cv)) for cv in d["colbert_vecs"]])
        finals = {
            "dense": dense, "sparse": sparse, "hybrid": (w.dense * dense + w.sparse * sparse) / (w.dense + w.sparse),
            "hybrid+colbert": (w.dense * dense + w.sparse * sparse + w.colbert * colbert)
            / (w.dense + w.sparse + w.colbert),
        }
        for mode, scores in finals.items():
            order = np.argsort(-scores, kind="stable")
            # the sparse search only returns documents sharing a token with the query
            rankings[mode][qid] = [ids[i] for i in order if mode != "sparse" or scores[i] > 0]
    return rankings


def test_known_answers_in_dense_mode(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    docs = {f"d{i}": ("", text) for i, text in enumerate(QUERIES.values(), start=1)}
    queries = {"q1": QUERIES["q1"], "q2": QUERIES["q2"], "q3": "an unanswerable question"}
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"missing-doc": 1}}
    args = write_beir(tmp_path / "known", docs, queries, qrels)
    result = run_eval([*args, "--modes", "dense", "--k", "1,5"], settings, monkeypatch, tmp_path / "out.json")
    [dense] = result["results"]
    assert dense["mode"] == "dense" and result["queries"] == 3
    # q1 and q2 find their own text first (dense = 1.0); q3's relevant document is not in the corpus.
    for name in ("recall@1", "recall@5", "mrr@10", "ndcg@10"):
        assert dense["metrics"][name] == pytest.approx(2 / 3, abs=1e-9), name
    assert dense["queries_per_second"] > 0


def test_every_mode_equals_a_brute_force_reference(
    settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = write_beir(tmp_path / "set", DOCS, QUERIES, QRELS)
    result = run_eval([*args, "--k", "1,3,5"], settings, monkeypatch, tmp_path / "out.json")
    rankings = brute_force_rankings(encoder, settings)
    assert [r["mode"] for r in result["results"]] == ["dense", "sparse", "hybrid", "hybrid+colbert"]
    for mode_result in result["results"]:
        expected = reference_metrics(rankings[mode_result["mode"]], QRELS, [1, 3, 5])
        for name, value in expected.items():
            assert mode_result["metrics"][name] == pytest.approx(value, abs=1e-9), (mode_result["mode"], name)


def test_the_cross_encoder_modes_equal_a_brute_force_reference(
    settings: Settings, encoder: Encoder, tiny_reranker_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from FlagEmbedding import FlagReranker

    args = write_beir(tmp_path / "set", DOCS, QUERIES, QRELS)
    result = run_eval([*args, "--modes", "hybrid+rerank,dense+rerank", "--k", "1,3,5"], settings, monkeypatch,
                      tmp_path / "out.json")
    assert [r["mode"] for r in result["results"]] == ["hybrid+rerank", "dense+rerank"]
    flag = encoder.flag_model  # type: ignore[attr-defined]
    reranker = FlagReranker(str(tiny_reranker_dir), use_fp16=False, devices="cpu")
    texts = [f"{title}\n{text}" for title, text in DOCS.values()]
    d = flag.encode(texts, max_length=512, return_dense=True, return_sparse=True)
    q = flag.encode(list(QUERIES.values()), max_length=512, return_dense=True, return_sparse=True)
    w = settings.retrieval.weights
    rankings: dict[str, dict[str, list[str]]] = {"hybrid+rerank": {}, "dense+rerank": {}, "dense": {}}
    for qi, (qid, query) in enumerate(QUERIES.items()):  # 8 documents: all within rerank_candidates (20)
        dense = d["dense_vecs"] @ q["dense_vecs"][qi]
        sparse = np.array([flag.compute_lexical_matching_score(q["lexical_weights"][qi], lw)
                           for lw in d["lexical_weights"]])
        rerank = np.array(reranker.compute_score([(query, t) for t in texts], normalize=True))
        finals = {"hybrid+rerank": (w.dense * dense + w.sparse * sparse + rerank) / (w.dense + w.sparse + 1.0),
                  "dense+rerank": (w.dense * dense + rerank) / (w.dense + 1.0), "dense": dense}
        for mode, scores in finals.items():
            rankings[mode][qid] = [list(DOCS)[i] for i in np.argsort(-scores, kind="stable")]
    # the cross-encoder changes the outcome: the dense ranking alone scores differently
    assert reference_metrics(rankings["dense"], QRELS, [1, 3, 5]) != reference_metrics(
        rankings["dense+rerank"], QRELS, [1, 3, 5])
    for mode_result in result["results"]:
        expected = reference_metrics(rankings[mode_result["mode"]], QRELS, [1, 3, 5])
        for name, value in expected.items():
            assert mode_result["metrics"][name] == pytest.approx(value, abs=1e-9), (mode_result["mode"], name)


def test_second_run_encodes_no_document(
    settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = write_beir(tmp_path / "set", DOCS, QUERIES, QRELS)
    first = run_eval([*args, "--modes", "dense"], settings, monkeypatch, tmp_path / "1.json")
    encoded = encoder.texts_encoded
    second = run_eval([*args, "--modes", "dense"], settings, monkeypatch, tmp_path / "2.json")
    assert encoder.texts_encoded == encoded  # documents unchanged, queries from the encoding cache
    assert second["results"] == [{**first["results"][0], "queries_per_second": second["results"][0]
                                  ["queries_per_second"]}]


def test_judgments_from_the_web_app(
    settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    args = write_beir(tmp_path / "set", DOCS, QUERIES, QRELS)
    run_eval([*args, "--modes", "dense", "--kb", settings.kb.name], settings, monkeypatch, tmp_path / "b.json")
    data_dir = tmp_path / "data"
    with MilvusStore(settings.milvus) as store:
        retriever = HybridRetriever.from_store(encoder, store, settings.kb.name, settings.retrieval)
        hits = retriever.search(QUERIES["q3"], mode="dense", top_k=3).documents
    # the user marks the dense top hit not relevant and the third relevant: dense MRR = 1/3
    for kb, hit, label in [(settings.kb.name, hits[0], "not_relevant"), (settings.kb.name, hits[2], "relevant"),
                           ("other_kb", hits[0], "relevant")]:  # marks of another knowledge base are ignored
        append_judgment(data_dir, kb=kb, query=QUERIES["q3"], chunk_id=hit.metadata["id"],
                        source=hit.metadata["source"], label=label)
    args = ["--judgments", str(judgments_path(data_dir)), "--kb", settings.kb.name, "--modes", "dense", "--k", "1,3"]
    result = run_eval(args, settings, monkeypatch, tmp_path / "j.json")
    metrics = result["results"][0]["metrics"]
    assert result["queries"] == 1
    assert (metrics["recall@1"], metrics["recall@3"]) == (0.0, 1.0)
    assert metrics["mrr@10"] == pytest.approx(1 / 3)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(4))


def test_bad_arguments_are_clear(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in cli_env(settings).items():
        if name.startswith("RAG_"):
            monkeypatch.setenv(name, value)
    runner = CliRunner()
    for args, message in [
        (["eval"], "give --corpus, --queries and --qrels"),
        (["eval", "--judgments", str(tmp_path / "none.jsonl")], "no judgments at"),
        (["eval", "--judgments", "x", "--modes", "dense,bm25"], "unknown mode 'bm25'"),
        (["eval", "--judgments", "x", "--k", "ten"], "whole numbers"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code != 0 and message in str(result.exception), (args, result.exception)


def test_whole_documents_makes_one_chunk_per_document(
    settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    long_docs = {**DOCS, "d9": ("Long", " ".join(["The sync engine keeps every edit in order."] * 80))}
    args = write_beir(tmp_path / "set", long_docs, QUERIES, QRELS)
    result = run_eval([*args, "--modes", "dense", "--whole-documents"], settings, monkeypatch, tmp_path / "w.json")
    assert result["kb"] == "eval_set_whole"
    with MilvusStore(settings.milvus) as store:
        documents = store.open("eval_set_whole").documents()
    assert len(documents) == len(long_docs) and all(d.chunks == 1 for d in documents.values())
    assert encoder.count_tokens(long_docs["d9"][1]) > settings.embedding.max_length  # cut by the encoder
