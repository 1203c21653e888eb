"""Significance between modes: ranx.compare's paired t-test, and "not significant" said plainly with few questions."""

from __future__ import annotations

import math

import pytest

from rag.evaluation import ModeResult, compare_modes, evaluate_run
from rag.evaluation.significance import MIN_QUESTIONS

METRICS = ["recall@1", "mrr@10"]


def modes(questions: int) -> tuple[dict[str, dict[str, int]], list[ModeResult]]:
    """``good`` finds each question's answer first; ``poor`` finds it third on every other question, else misses."""
    qrels = {f"q{n}": {f"a{n}": 1} for n in range(questions)}
    good = {q: {f"a{n}": 1.0, "x": 0.5} for n, q in enumerate(qrels)}
    poor = {q: ({"x": 0.9, "y": 0.8, f"a{n}": 0.7} if n % 2 else {"x": 0.9}) for n, q in enumerate(qrels)}
    results = [ModeResult(name, evaluate_run(qrels, run, [1]), questions, run=run)
               for name, run in (("good", good), ("poor", poor))]
    return qrels, results


def test_many_questions_a_real_difference_is_significant_with_the_paired_t_test_p() -> None:
    qrels, results = modes(30)
    comparisons = compare_modes(qrels, results, METRICS)
    assert [(c.metric, c.first, c.second) for c in comparisons] == [("recall@1", "good", "poor"),
                                                                    ("mrr@10", "good", "poor")]
    mrr = comparisons[1]
    assert (mrr.first_score, mrr.second_score) == (pytest.approx(1.0), pytest.approx(15 * (1 / 3) / 30))
    assert mrr.significant and mrr.better == "good" and mrr.p < 1e-6
    assert mrr.verdict == f"good better (paired Student's t-test, p = {mrr.p:.3g}, 30 questions)"


def test_few_questions_are_not_significant_but_the_figures_and_the_paired_p_stay() -> None:
    qrels = {"q0": {"a0": 1}, "q1": {"a1": 1}}
    good = {"q0": {"a0": 1.0}, "q1": {"a1": 1.0}}
    poor = {"q0": {"x": 0.9, "y": 0.8, "a0": 0.7}, "q1": {"x": 0.9, "a1": 0.8}}  # ranks 3 and 2
    results = [ModeResult(name, evaluate_run(qrels, run, [1]), 2, run=run) for name, run in (("good", good),
                                                                                             ("poor", poor))]
    [recall, mrr] = compare_modes(qrels, results, METRICS)
    # Paired t-test on the per-question differences 1 - 1/3 and 1 - 1/2: t = 7 with 1 degree of freedom, whose
    # two-sided p is 1 - 2 atan(t) / pi (the t distribution with one degree of freedom is Cauchy's).
    assert mrr.p == pytest.approx(1 - 2 * math.atan(7) / math.pi, rel=1e-6)
    assert (mrr.first_score, mrr.second_score) == (1.0, pytest.approx(5 / 12))
    assert recall.p < 0.05 and (recall.first_score, recall.second_score) == (1.0, 0.0)  # a clear p, yet ...
    for comparison in (recall, mrr):
        assert not comparison.significant and MIN_QUESTIONS > 2
        assert comparison.verdict == "not significant (2 questions)"  # ... two questions mean nothing


def test_equal_modes_are_not_significant_and_unavailable_modes_are_left_out() -> None:
    qrels, (good, _) = modes(30)
    twin = ModeResult("twin", good.metrics, 30, run=good.run)
    [comparison] = compare_modes(qrels, [good, twin, ModeResult("sparse", unavailable="dense only")], ["mrr@10"])
    assert (comparison.p, comparison.significant, comparison.better) == (1.0, False, "")
    assert comparison.verdict == "not significant (30 questions)"
    assert compare_modes(qrels, [good], ["mrr@10"]) == []
