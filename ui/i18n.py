"""Interface strings in English and Chinese; ``t(key, **values)`` picks the session's language."""

from __future__ import annotations

from typing import Any

import streamlit as st

LANGUAGES = {"en": "English", "zh": "中文"}
LANG_KEY = "opt_lang"

STRINGS: dict[str, tuple[str, str]] = {
    # navigation and sidebar
    "page_chat": ("Chat", "问答"),
    "page_retrieval": ("Retrieval check", "检索检查"),
    "page_similarity": ("Similarity", "相似度"),
    "page_kbs": ("Knowledge bases", "知识库"),
    "language": ("Language / 语言", "Language / 语言"),
    "active_kb": ("Active knowledge base", "当前知识库"),
    "no_kb": ("No knowledge base yet: upload files on the Knowledge bases page.",
              "还没有知识库：请在“知识库”页面上传文件。"),
    "top_k": ("Top-k chunks", "返回片段数 (top-k)"),
    "mode": ("Retrieval mode", "检索模式"),
    "min_score": ("Minimum score", "最低分数"),
    "colbert": ("ColBERT rerank", "ColBERT 重排序"),
    "colbert_unavailable": ("This embedding model has no ColBERT head.", "当前向量模型不支持 ColBERT。"),
    "llm_model": ("LLM model (Ollama)", "大模型 (Ollama)"),
    "status": ("Status", "状态"),
    "status_milvus": ("Milvus", "Milvus"),
    "status_encoder": ("Encoder", "向量模型"),
    "status_ollama": ("Ollama", "Ollama"),
    "reachable": ("reachable", "可连接"),
    "unreachable": ("unreachable", "无法连接"),
    "loaded": ("loaded", "已加载"),
    "not_loaded": ("not loaded", "未加载"),
    "model_present": ("model present", "模型已下载"),
    "model_missing": ("model missing", "模型缺失"),
    "loading_encoder": ("Loading the embedding model {model} on {device}…", "正在加载向量模型 {model}（{device}）…"),
    "loading_store": ("Opening the Milvus database {uri}…", "正在打开 Milvus 数据库 {uri}…"),
    "unexpected": ("Something went wrong ({kind}: {message}). The details are in the server log; reload the "
                   "page or check the settings.",
                   "出现错误（{kind}: {message}）。详情见服务器日志；请刷新页面或检查配置。"),
    # chat
    "chat_title": ("Ask the knowledge base", "向知识库提问"),
    "chat_placeholder": ("Ask a question…", "输入问题…"),
    "searching": ("Searching the knowledge base…", "正在检索知识库…"),
    "llm_banner": ("The answer could not be generated; the retrieved chunks are shown below. {message}",
                   "无法生成回答；下面仍显示检索到的片段。{message}"),
    "partial_banner": ("The answer broke off: the part above is incomplete; the retrieved chunks are shown below. "
                       "{message}", "回答中断：上面的回答不完整；下面仍显示检索到的片段。{message}"),
    "sources": ("Sources ({n})", "来源（{n}）"),
    "no_sources": ("No chunk passed the minimum score.", "没有片段达到最低分数。"),
    "clear_chat": ("Clear conversation", "清空对话"),
    "rewritten": ("Searched for: {q}", "检索问题：{q}"),
    # cards
    "chunk": ("chunk {n}", "片段 {n}"),
    "page": ("p. {n}", "第 {n} 页"),
    "cited": ("cited", "已引用"),
    "formula": ("How the scores are fused", "分数如何融合"),
    "relevant": ("Relevant", "相关"),
    "not_relevant": ("Not relevant", "不相关"),
    "judged": ("Marked: {label}", "已标注：{label}"),
    "download_csv": ("Download CSV", "下载 CSV"),
    "download_json": ("Download JSON", "下载 JSON"),
    "matched_terms": ("matched terms", "匹配词"),
    # retrieval check
    "rc_title": ("Retrieval check", "检索检查"),
    "rc_caption": ("The chunks a query retrieves, with every score, without the LLM.",
                   "不调用大模型，只查看检索到的片段及各项分数。"),
    "query": ("Query", "查询"),
    "fusion": ("Fusion", "融合方式"),
    "weight": ("Weight: {name}", "权重：{name}"),
    "search": ("Search", "检索"),
    "table_view": ("Table", "表格"),
    "cards_view": ("Cards", "卡片"),
    "timings": ("{n} chunks · {candidates} candidates scored · {ms:.0f} ms",
                "{n} 个片段 · 评分候选 {candidates} 个 · {ms:.0f} 毫秒"),
    "empty_query": ("The query is empty: type a question or a few words to search for.",
                    "查询为空：请输入问题或关键词。"),
    # similarity
    "sim_title": ("Similarity analyser", "语义相似度分析"),
    "text_a": ("Text A", "文本 A"),
    "text_b": ("Text B", "文本 B"),
    "examples": ("Examples", "示例"),
    "compare": ("Compare", "比较"),
    "empty_text": ("Text {name} is empty: type two texts to compare.", "文本 {name} 为空：请输入两段文本。"),
    "dense_similarity": ("Dense similarity", "稠密相似度"),
    # knowledge bases
    "kb_title": ("Knowledge bases", "知识库"),
    "kb_documents": ("documents", "文档数"),
    "kb_chunks": ("chunks", "片段数"),
    "kb_model": ("model", "模型"),
    "kb_none": ("No knowledge base yet: upload files below to create one.", "还没有知识库：在下方上传文件即可创建。"),
    "kb_manage": ("Knowledge base", "知识库"),
    "kb_make_active": ("Use as active knowledge base", "设为当前知识库"),
    "kb_is_active": ("Active knowledge base: {kb}", "当前知识库：{kb}"),
    "upload": ("Upload files", "上传文件"),
    "upload_target": ("Into knowledge base", "导入到知识库"),
    "upload_help": ("Up to {mb:g} MB per file; types: {types}", "每个文件最大 {mb:g} MB；类型：{types}"),
    "ingest": ("Ingest", "导入"),
    "ingest_none": ("Choose files to upload first.", "请先选择要上传的文件。"),
    "ingesting": ("Ingesting {files} files…", "正在导入 {files} 个文件…"),
    "progress": ("files {done}/{files} · chunks {chunks_done}/{chunks}",
                 "文件 {done}/{files} · 片段 {chunks_done}/{chunks}"),
    "chunking": ("files {done}/{files} · splitting a large file into chunks: {percent}%",
                 "文件 {done}/{files} · 正在切分大文件：{percent}%"),
    "summary": ("Knowledge base '{kb}'", "知识库“{kb}”"),
    "failed_files": ("Failed files", "失败的文件"),
    "too_large": ("file is {size:.1f} MB, over the {mb:g} MB upload limit (app.max_upload_mb)",
                  "文件大小 {size:.1f} MB，超过上传上限 {mb:g} MB（app.max_upload_mb）"),
    "bad_kb_name": ("'{name}' is not a valid knowledge-base name: use letters, digits and underscores, starting "
                    "with a letter or underscore.",
                    "“{name}”不是有效的知识库名：只能用字母、数字和下划线，且不能以数字开头。"),
    "documents": ("Documents", "文档"),
    "delete_doc": ("Delete document", "删除文档"),
    "confirm_delete_doc": ("Yes, delete {doc}", "确认删除 {doc}"),
    "deleted_doc": ("Deleted {doc} ({chunks} chunks) from '{kb}'.", "已从“{kb}”删除 {doc}（{chunks} 个片段）。"),
    "drop_kb": ("Delete the whole knowledge base", "删除整个知识库"),
    "confirm_drop": ("Type '{kb}' to confirm", "输入“{kb}”以确认"),
    "dropped": ("Deleted knowledge base '{kb}'.", "已删除知识库“{kb}”。"),
    "no_documents": ("This knowledge base has no documents.", "该知识库没有文档。"),
    # evaluation page (ui/pages_/evaluation.py)
    "page_evaluation": ("Evaluation", "评测"),
    "ev_title": ("Evaluation on your marks", "基于标注的检索评测"),
    "ev_caption": ("Every retrieval mode over the questions you marked relevant / not relevant on the cards: "
                   "Recall@k, MRR@10 and nDCG@10, where each question's chunk ranked, and whether the differences "
                   "are significant.",
                   "用你在卡片上标注的“相关 / 不相关”问题评测每种检索模式：Recall@k、MRR@10、nDCG@10，"
                   "每个问题的相关片段排在第几，以及差异是否显著。"),
    "ev_source": ("{questions} questions with a relevant mark · {marks} marks in {path}",
                  "{questions} 个问题有“相关”标注 · 共 {marks} 条标注，文件 {path}"),
    "ev_no_marks": ("No question of this knowledge base has a chunk marked relevant yet: mark chunks on the "
                    "Chat or Retrieval check page (or import marks below).",
                    "该知识库还没有标注为“相关”的问题：请在“问答”或“检索检查”页面标注片段（或在下方导入标注）。"),
    "ev_run": ("Run every mode", "运行全部模式"),
    "ev_progress": ("{mode}: {done}/{total} searches", "{mode}：已检索 {done}/{total}"),
    "ev_results": ("Results ({questions} questions, top {depth} chunks)",
                   "结果（{questions} 个问题，前 {depth} 个片段）"),
    "ev_stale": ("The marks changed since this run: run again to include them.",
                 "标注在本次运行后有改动：请重新运行。"),
    "ev_metrics_chart": ("Metrics per mode", "各模式指标"),
    "ev_rank_chart": ("Rank of each question's first relevant chunk", "每个问题第一个相关片段的排名"),
    "ev_rank_caption": ("missed: not in the top {depth} chunks of that mode",
                        "未命中：不在该模式的前 {depth} 个片段中"),
    "ev_missed": ("missed", "未命中"),
    "ev_significance": ("Significance", "显著性"),
    "ev_significance_caption": ("{test} per metric over the same questions (ranx.compare); significant when "
                                "p < {max_p} with at least {min} questions.",
                                "对同一批问题按指标做{test}（ranx.compare）；"
                                "p < {max_p} 且至少 {min} 个问题时才算显著。"),
    "ev_one_mode": ("Only one mode ran: nothing to compare.", "只运行了一种模式：无可比较。"),
    "ev_misses": ("Missed questions", "未命中的问题"),
    "ev_missed_by": ("missed by {modes}", "未命中的模式：{modes}"),
    "ev_no_misses": ("Every question's relevant chunk was found in every mode.",
                     "每种模式都找到了每个问题的相关片段。"),
    "ev_explain": ("Explain", "解释"),
    "ev_marks": ("Marks", "标注"),
    "ev_remove_help": ("Tick the wrong marks, then remove them.", "勾选错误的标注，然后删除。"),
    "ev_remove": ("Remove ticked marks", "删除勾选的标注"),
    "ev_removed": ("Removed {n} marks.", "已删除 {n} 条标注。"),
    "ev_nothing_ticked": ("Tick the marks to remove first.", "请先勾选要删除的标注。"),
    "ev_export": ("Download marks (JSONL)", "下载标注（JSONL）"),
    "ev_import_file": ("Import marks (JSONL) into this knowledge base", "导入标注（JSONL）到当前知识库"),
    "ev_import": ("Import", "导入"),
    "ev_imported": ("Imported {n} marks.", "已导入 {n} 条标注。"),
    "ev_import_none": ("Choose a JSONL file to import first.", "请先选择要导入的 JSONL 文件。"),
    "ev_questions": ("Questions", "问题来源"),
    "ev_from_marks": ("My marks", "我的标注"),
    "ev_from_beir": ("BEIR folder", "BEIR 文件夹"),
    "ev_beir_help": ("A BEIR folder (queries.jsonl and qrels/*.tsv) whose corpus is in this knowledge base, "
                     "matched on document id as `rag eval` does.",
                     "BEIR 文件夹（queries.jsonl 和 qrels/*.tsv），其语料已导入当前知识库，"
                     "按文档 id 匹配（与 `rag eval` 相同）。"),
    "ev_beir_folder": ("Folder on the server", "服务器上的文件夹"),
    "ev_beir_prefix": ("Document id prefix in the knowledge base", "知识库中文档 id 的前缀"),
    "ev_beir_qrels": ("Judgments file", "评测标注文件"),
    "ev_beir_loaded": ("{questions} judged queries from {path}", "{path} 中有 {questions} 个已标注的查询"),
    "ev_not_in_kb": ("Document {doc} is not in this knowledge base.", "文档 {doc} 不在当前知识库中。"),
}


def lang() -> str:
    """The session's interface language (``en`` or ``zh``)."""
    value = st.session_state.get(LANG_KEY, "en")
    return value if value in LANGUAGES else "en"


def t(key: str, **values: Any) -> str:
    """The string ``key`` in the session's language, formatted with ``values``."""
    en, zh = STRINGS[key]
    text = zh if lang() == "zh" else en
    return text.format(**values) if values else text
