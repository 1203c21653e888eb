"""`rag eval`: Recall@k, MRR@10 and nDCG@10 per retrieval mode, on BEIR-layout data or on users' judgments."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import ConfigOption, KbOption, console, err, load_encoder_with_status
from clikit import safe, visible
from rag.config import Settings, load_settings
from rag.errors import InvalidInputError
from rag.evaluation.modes import ALL_MODES, CHUNKS_PER_DOCUMENT, MODES  # noqa: F401 - MODES: the CLI's modes, re-exported

WHOLE_DOCUMENT_TOKENS = 1_000_000  # --whole-documents: never split; the encoder cuts at the model's length


def _split(value: str, name: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise InvalidInputError(f"--{name} is empty")
    return items


def parse_modes(value: str) -> list[str]:
    modes = _split(value, "modes")
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        raise InvalidInputError(f"unknown mode {unknown[0]!r}; choose from {', '.join(ALL_MODES)}")
    return modes


def parse_ks(value: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in _split(value, "k")})
    except ValueError:
        raise InvalidInputError(f"--k takes whole numbers separated by commas, not {value!r}") from None
    if ks[0] < 1:
        raise InvalidInputError("--k values must be at least 1")
    return ks


def default_kb(corpus: Path) -> str:
    """eval_<folder of the corpus>, e.g. eval_scifact, made a valid knowledge-base name."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", corpus.resolve().parent.name or "corpus")
    return f"eval_{name}"[:64]


def ingest_corpus(settings: Settings, encoder: Any, corpus: Path, kb: str) -> None:
    """Ingest the corpus rows (title + text, one document per _id); unchanged rows are not encoded again."""
    from ingest import IngestPipeline, RichProgress, print_summary
    from rag.store import MilvusStore

    records = {"id_field": "_id", "title_field": "title", "text_field": "text", "title_in_text": True}
    corpus_settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update=records)})
    with (MilvusStore(settings.milvus) as store,
          IngestPipeline(corpus_settings, encoder, store, data_dir=settings.app.data_dir) as pipeline,
          RichProgress(err) as progress):
        report = pipeline.run([corpus], kb=kb, progress=progress)
    if report.failed:
        print_summary(err, report)
        raise InvalidInputError(f"the corpus could not be ingested: {report.failed[0].reason}")
    err.print(f"corpus in knowledge base '{kb}': {report.added} added, {report.updated} updated, "
              f"{report.unchanged} unchanged; {report.texts_encoded} chunks encoded", highlight=False)


def evaluate(
    corpus: Annotated[Path | None, typer.Option(help="BEIR corpus.jsonl ({_id, title, text} per line).")] = None,
    queries: Annotated[Path | None, typer.Option(help="BEIR queries.jsonl ({_id, text} per line).")] = None,
    qrels: Annotated[Path | None, typer.Option(help="BEIR qrels .tsv (query-id, corpus-id, score).")] = None,
    judgments: Annotated[Path | None, typer.Option(help="judgments.jsonl written by the web app.")] = None,
    kb: KbOption = None,
    modes: Annotated[str, typer.Option(help=f"Comma-separated: {','.join(ALL_MODES)} (+rerank: the cross-encoder "
                                            "of retrieval.reranker).")] = (
        "dense,sparse,hybrid,hybrid+colbert"
    ),
    k: Annotated[str, typer.Option("--k", help="Cut-offs of Recall@k, comma-separated.")] = "1,5,10,100",
    whole_documents: Annotated[bool, typer.Option(
        "--whole-documents", help="One chunk per document, cut at the model's length (the MTEB/BEIR protocol)."
    )] = False,
    out: Annotated[Path | None, typer.Option(help="Also write the results as JSON to this file.")] = None,
    config: ConfigOption = None,
) -> None:
    """Measure retrieval quality: a BEIR data set (--corpus --queries --qrels) or web-app judgments (--judgments)."""
    from rag.evaluation import documents_run, load_beir, load_judgments, markdown_table, metric_names, run_modes
    from rag.retrieval import HybridRetriever
    from rag.store import MilvusStore

    mode_list, ks = parse_modes(modes), parse_ks(k)
    settings = load_settings(config)
    if whole_documents:
        chunking = settings.chunking
        chunking.chunk_tokens, chunking.overlap_tokens, chunking.truncate = WHOLE_DOCUMENT_TOKENS, 0, True
    if judgments is not None:
        name = kb or settings.kb.name
        truth = load_judgments(judgments, name)
        query_texts = {q: q for q in truth}
        key, prefix, dataset = "id", "", f"judgments {judgments} ({name})"
    elif corpus and queries and qrels:
        data = load_beir(corpus, queries, qrels)
        truth, query_texts = data.qrels, data.queries
        name = kb or default_kb(corpus) + ("_whole" if whole_documents else "")
        key, prefix, dataset = "doc_id", f"{corpus.name}#", str(corpus.parent)
    else:
        raise InvalidInputError("give --corpus, --queries and --qrels (a BEIR data set), or --judgments FILE")

    encoder = load_encoder_with_status(settings)
    if judgments is None:
        ingest_corpus(settings, encoder, corpus, name)  # type: ignore[arg-type]
    chunk_k = max(ks) * (CHUNKS_PER_DOCUMENT if key == "doc_id" else 1)
    status = console.status("") if console.is_terminal else contextlib.nullcontext()
    with MilvusStore(settings.milvus) as store, status as spinner:
        retriever = HybridRetriever.from_store(encoder, store, name, settings.retrieval)

        def progress(done: int, total: int, mode: str) -> None:
            if spinner is not None:
                spinner.update(f"{mode}: {len(query_texts)} queries ...")

        results = run_modes(retriever, query_texts, truth, mode_list, ks,
                            lambda docs: documents_run(docs, key, prefix), chunk_k, progress)
    names = metric_names(ks)
    console.print(f"{safe(dataset)}: {len(query_texts)} queries, model {safe(settings.embedding.model)}",
                  highlight=False)
    console.out(visible(markdown_table(results, names), multiline=True))
    if out:
        payload = {
            "dataset": dataset, "kb": name, "model": settings.embedding.model, "queries": len(query_texts),
            "k": ks, "results": [{"mode": r.mode, "metrics": r.metrics, "queries_per_second": r.queries_per_second,
                                  "unavailable": r.unavailable or None} for r in results],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
