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
    # chunk browser page and "explain a miss" on the Retrieval check page (issue #12, sections 1 and 2)
    "page_chunks": ("Chunk browser", "片段浏览"),
    "cb_title": ("Chunk browser", "片段浏览器"),
    "cb_caption": ("The chunks of the active knowledge base as they are stored: pick a document, or search by words "
                   "in the chunks' text or file name.",
                   "按存储原样查看当前知识库的片段：选择文档，或按片段文本或文件名中的词搜索。"),
    "cb_documents": ("Documents {first}-{last}", "文档 {first}-{last}"),
    "cb_document": ("Document", "文档"),
    "cb_doc_option": ("{source} · {chunks} chunks", "{source} · {chunks} 个片段"),
    "cb_contains": ("Search chunks by words in their text or file name", "按片段文本或文件名中的词搜索"),
    "cb_query": ("Query to explain a chunk against", "用于解释片段的查询"),
    "cb_shown": ("Chunks {first}-{last}", "片段 {first}-{last}"),
    "cb_no_chunks": ("No chunk matches.", "没有匹配的片段。"),
    "cb_previous": ("Previous", "上一页"),
    "cb_next": ("Next", "下一页"),
    "cb_tokens": ("{n} tokens", "{n} 个词元"),
    "cb_explain": ("Explain against the query", "针对该查询解释"),
    "rcx_title": ("Explain a miss", "解释未命中"),
    "rcx_caption": ("Why a chunk was or was not retrieved for the query above with the settings above: its exact "
                    "scores and ranks among all chunks, the cut that lost it, and changes checked by searching again.",
                    "在上面的查询和设置下，某个片段为何被（或未被）检索到：它的精确分数与在全部片段中的排名、"
                    "在哪一步被淘汰，以及经重新检索验证的修改建议。"),
    "rcx_target": ("Chunk id, or the file name of a document", "片段 id，或文档的文件名"),
    "rcx_button": ("Explain", "解释"),
    "rcx_empty_target": ("Type the id of a chunk (copy it in the Chunk browser) or a document's file name.",
                         "请输入片段 id（可在片段浏览器中复制）或文档的文件名。"),
    "rcx_not_found": ("Knowledge base '{kb}' has no chunk with id '{target}' and no document '{target}'.",
                      "知识库“{kb}”中没有 id 为“{target}”的片段，也没有文档“{target}”。"),
    "rcx_kb_missing": ("Knowledge base '{kb}' asked for by the other page does not exist; explaining in '{active}'.",
                       "另一页面请求的知识库“{kb}”不存在；将在“{active}”中解释。"),
    "rcx_verdict": ("{source} · {number} · id {chunk}: {reason}", "{source} · {number} · id {chunk}：{reason}"),
    "rcx_candidates": ("Candidate lists: {n} chunks each (top_k x candidate_factor).",
                       "候选列表：每个 {n} 个片段（top_k x candidate_factor）。"),
    "rcx_lost_at": ("Lost at: {cut}.", "淘汰环节：{cut}。"),
    "rcx_col_score": ("score", "分数"),
    "rcx_col_value": ("value", "数值"),
    "rcx_col_rank": ("rank among all chunks", "在全部片段中的排名"),
    "rcx_col_position": ("position in Milvus' list", "在 Milvus 列表中的位置"),
    "rcx_matched": ("Matched query terms", "命中的查询词"),
    "rcx_missing": ("Missing query terms (the query's heaviest tokens the chunk lacks)",
                    "缺失的查询词（片段中没有的查询高权重词）"),
    "rcx_none": ("none", "无"),
    "rcx_neighbour": ("The chunk {relation} ({number}, id {chunk}): final {final}, {higher}{where}",
                      "{relation}的片段（{number}，id {chunk}）：final {final}，{higher}{where}"),
    "rcx_before": ("before", "之前"),
    "rcx_after": ("after", "之后"),
    "rcx_higher": ("higher", "更高"),
    "rcx_not_higher": ("not higher", "不更高"),
    "rcx_neighbour_rank": (", retrieved at rank {rank}", "，检索排名 {rank}"),
    "rcx_spans": ("A chunk next to it scores higher: the answer may span two chunks.",
                  "相邻片段得分更高：答案可能跨越两个片段。"),
    "rcx_fixes": ("What would bring it in (each checked by searching again)", "如何让它被检索到（均经重新检索验证）"),
    "rcx_fix": ("{setting} = {value}: {outcome}", "{setting} = {value}：{outcome}"),
    "rcx_fix_works": ("retrieved at rank {rank}", "检索排名 {rank}"),
    "rcx_fix_fails": ("still not in top_k", "仍不在 top_k 内"),
    "rcx_fix_none": ("No {setting} within its limits brings it into the candidate lists.",
                     "在允许范围内，没有任何 {setting} 能让它进入候选列表。"),
    "rcx_fix_config": ("Not a control of this page: set it with --config FILE or the environment variable:",
                       "本页没有此项控件：可通过 --config 配置文件或环境变量设置："),
    "rcx_apply": ("Apply", "应用"),
    "rcx_document": ("Every chunk of {source}", "{source} 的全部片段"),
    "rcx_pick": ("Details of chunk", "查看片段详情"),
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
