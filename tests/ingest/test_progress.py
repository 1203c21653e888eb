"""The live ingest bar (ingest.progress.RichProgress) as a run leaves it."""

from __future__ import annotations

import io

from rich.console import Console

from ingest.pipeline import IngestPipeline
from ingest.progress import RichProgress
from rag.config import Settings
from rag.encoder import Encoder
from rag.store import MilvusStore
from tests.conftest import EXAMPLES


def test_live_tokens_per_second_is_the_reports_rate(settings: Settings, encoder: Encoder) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=200)
    with MilvusStore(settings.milvus) as store, RichProgress(console) as progress:
        report = IngestPipeline(settings, encoder, store).run([EXAMPLES], progress=progress)
    fields = progress.progress.tasks[0].fields
    assert report.tokens_encoded > 0 and fields["chunks"] == f"{report.texts_encoded}/{report.texts_encoded}"
    shown = float(fields["rate"].replace(",", ""))
    # The same tokens over the same encoding time, measured a few calls apart: equal but for timer noise.
    # (Counting from the first finished batch gave a rate thousands of times too high.)
    assert report.tokens_per_second / 3 < shown < report.tokens_per_second * 3, (shown, report.tokens_per_second)
