"""Is one mode really better than another on these questions? ranx.compare's paired test, said plainly.

Each pair of modes is compared per metric with a paired two-sided Student's t-test over the per-question scores
(``ranx.compare(stat_test="student")``). A difference counts as significant only when p is below ``max_p`` and at
least ``min_questions`` questions are judged; otherwise it is reported as "not significant (n questions)", figures
included, never hidden.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from ranx import compare

from rag.evaluation.metrics import ModeResult, ranx_inputs

STAT_TEST = "student"
TEST_NAME = "paired Student's t-test"
MAX_P = 0.05
MIN_QUESTIONS = 10  # below this many judged questions a paired test says nothing worth acting on


@dataclass(frozen=True)
class Comparison:
    """Two modes compared on one metric over the same questions."""

    metric: str
    first: str
    second: str
    first_score: float
    second_score: float
    p: float  # the paired test's p-value (1.0 when the scores are equal on every question)
    questions: int
    significant: bool

    @property
    def better(self) -> str:
        """The mode with the higher mean ("" when equal)."""
        if self.first_score == self.second_score:
            return ""
        return self.first if self.first_score > self.second_score else self.second

    @property
    def verdict(self) -> str:
        if not self.significant:
            return f"not significant ({self.questions} questions)"
        return f"{self.better} better ({TEST_NAME}, p = {self.p:.3g}, {self.questions} questions)"


def compare_modes(
    qrels: Mapping[str, Mapping[str, int]],
    results: Sequence[ModeResult],
    metrics: Sequence[str],
    *,
    max_p: float = MAX_P,
    min_questions: int = MIN_QUESTIONS,
) -> list[Comparison]:
    """Every pair of the modes that ran, per metric, in table order."""
    ran = [r for r in results if not r.unavailable]
    if len(ran) < 2:
        return []
    judged = None
    runs = []
    for result in ran:
        judged, run = ranx_inputs(qrels, result.run, name=result.mode)
        runs.append(run)
    assert judged is not None
    questions = len(judged)
    with warnings.catch_warnings():  # scipy warns when a metric differs by the same amount on every question
        warnings.simplefilter("ignore", RuntimeWarning)
        report = compare(judged, runs, list(metrics), stat_test=STAT_TEST, max_p=max_p, make_comparable=True)
    table = report.to_dict()
    found = []
    for first, second in combinations([r.mode for r in ran], 2):
        for metric in metrics:
            p = float(table[first]["comparisons"][second][metric])
            p = 1.0 if math.isnan(p) else p  # equal on every question: no difference to test
            found.append(Comparison(
                metric, first, second, float(table[first]["scores"][metric]), float(table[second]["scores"][metric]),
                p, questions, significant=questions >= min_questions and p < max_p,
            ))
    return found
