"""Text similarity: the scores equal FlagEmbedding's, levels at their edges, clear errors for empty text."""

from __future__ import annotations

import json

import pytest

from rag.config import LevelSettings
from rag.encoder import Encoder
from rag.errors import InvalidInputError, RagError
from rag.similarity import compare_texts, level_for, level_label

PAIRS = [
    ("我喜欢看书。", "阅读使我快乐"),
    ("员工每年享有十五天带薪年假。", "员工每年享有十五天带薪年假，请提前一周申请。"),
    ("How are you?", "The sync engine resolves conflicts with a vector clock."),
    ("Employees may work remotely up to three days per week.", "员工每周最多可以远程办公三天。"),
]


@pytest.fixture(scope="module")
def m3(encoder: Encoder) -> Encoder:
    return encoder


def test_scores_equal_flagembedding(m3: Encoder) -> None:
    flag = m3.flag_model  # type: ignore[attr-defined]
    kw = {"max_length": 512, "return_dense": True, "return_sparse": True, "return_colbert_vecs": True}
    shared_tokens = 0
    for a, b in PAIRS:
        result = compare_texts(m3, a, b)
        ref = flag.compute_score([(a, b)], max_query_length=512, max_passage_length=512)
        enc = flag.encode([a, b], **kw)
        assert result.dense == pytest.approx(ref["dense"][0], abs=1e-5)
        assert result.sparse == pytest.approx(
            float(flag.compute_lexical_matching_score(enc["lexical_weights"][0], enc["lexical_weights"][1])), abs=1e-5
        )
        assert result.colbert == pytest.approx(float(flag.colbert_score(enc["colbert_vecs"][0],
                                                                         enc["colbert_vecs"][1])), abs=1e-5)
        assert result.hybrid == pytest.approx((result.dense + 0.3 * result.sparse + result.colbert) / 2.3)
        assert result.formula == "hybrid = (1.0 x dense + 0.3 x sparse + 1.0 x colbert) / 2.3"
        assert result.dense_percent == pytest.approx(result.dense * 100)
        assert result.level == level_for(result.dense) and result.label == level_label(result.level)
        assert sum(t["contribution"] for t in result.matched_terms) == pytest.approx(result.sparse)
        shared_tokens += len(result.matched_terms)
    assert shared_tokens > 0


def test_identical_texts_are_very_similar(m3: Encoder) -> None:
    result = compare_texts(m3, "检索增强生成根据你自己的文档回答问题", "检索增强生成根据你自己的文档回答问题")
    assert result.dense == pytest.approx(1.0, abs=1e-5) and result.colbert == pytest.approx(1.0, abs=1e-5)
    assert (result.level, result.label) == ("very_similar", "very similar / 极度相似")
    assert json.loads(json.dumps(result.to_dict()))["label"] == "very similar / 极度相似"


def test_custom_weights(m3: Encoder) -> None:
    result = compare_texts(m3, *PAIRS[1], weights={"dense": 1.0, "sparse": 0.0, "colbert": 0.0})
    assert result.hybrid == pytest.approx(result.dense)
    assert result.formula == "hybrid = (1.0 x dense + 0.0 x sparse + 0.0 x colbert) / 1.0"


def test_levels_are_inclusive_at_the_thresholds() -> None:
    assert [level_for(x) for x in (1.0, 0.85, 0.8499999, 0.6, 0.5999999, 0.0, -0.3)] == [
        "very_similar", "very_similar", "related", "related", "unrelated", "unrelated", "unrelated"]
    custom = LevelSettings(very_similar=0.9, related=0.5)
    assert [level_for(x, custom) for x in (0.9, 0.89, 0.5, 0.49)] == [
        "very_similar", "related", "related", "unrelated"]
    assert level_label("related") == "related / 语义相关"
    assert level_label("unrelated") == "unrelated / 不相关"


def test_level_uses_configured_thresholds(m3: Encoder) -> None:
    result = compare_texts(m3, *PAIRS[2])
    at = LevelSettings(very_similar=max(result.dense, 0.0), related=0.0)
    assert compare_texts(m3, *PAIRS[2], levels=at).level == ("very_similar" if result.dense >= 0 else "unrelated")
    above = LevelSettings(very_similar=1.0, related=1.0)
    assert compare_texts(m3, *PAIRS[2], levels=above).level == "unrelated"


@pytest.mark.parametrize(("a", "b", "which"), [("", "text", "Text A"), ("text", "  \n\t", "Text B"),
                                               ("   ", "", "Text A")])
def test_empty_text_is_a_clear_error(m3: Encoder, a: str, b: str, which: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{which} is empty") as info:
        compare_texts(m3, a, b)
    assert isinstance(info.value, RagError) and "\n" not in str(info.value)
