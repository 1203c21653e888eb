"""ragscope web app: `streamlit run ui/app.py` (settings from $RAG_CONFIG and RAG_* environment variables)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run ui/app.py` puts ui/ on the path, not the project root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException  # noqa: E402

from rag.errors import RagError  # noqa: E402
from ui import sidebar  # noqa: E402
from ui.i18n import t  # noqa: E402
from ui.safe_markdown import escape_markdown  # noqa: E402
from ui.state import app_settings, init_defaults  # noqa: E402

log = logging.getLogger("ragscope.ui")
PAGES = ROOT / "ui" / "pages_"


def main() -> None:
    st.set_page_config(page_title="ragscope", page_icon="🔎", layout="wide")
    try:
        settings = app_settings()
    except RagError as exc:
        st.error(escape_markdown(str(exc)))
        st.stop()
    init_defaults(settings)
    sidebar.language_switch()
    page = st.navigation([
        st.Page(PAGES / "chat.py", title=t("page_chat"), icon="💬", url_path="chat", default=True),
        st.Page(PAGES / "retrieval_check.py", title=t("page_retrieval"), icon="🔍", url_path="retrieval"),
        st.Page(PAGES / "chunks.py", title=t("page_chunks"), icon="🧩", url_path="chunks"),
        st.Page(PAGES / "similarity.py", title=t("page_similarity"), icon="📏", url_path="similarity"),
        st.Page(PAGES / "knowledge_bases.py", title=t("page_kbs"), icon="📚", url_path="knowledge-bases"),
        st.Page(PAGES / "evaluation.py", title=t("page_evaluation"), icon="📊", url_path="evaluation"),
    ])
    try:
        sidebar.render(settings)
        page.run()
    except ScriptControlException:
        raise  # st.rerun / st.stop
    except RagError as exc:
        st.error(escape_markdown(str(exc)))
    except Exception as exc:  # never a traceback on the page; the log has it
        log.exception("page %s failed", page.title)
        st.error(t("unexpected", kind=type(exc).__name__, message=escape_markdown(str(exc)[:300])))


main()
