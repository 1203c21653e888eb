"""The tuned config file: load_settings reads back the learned fusion, over the user's own config when given."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rag.config import RetrievalSettings, load_settings
from rag.errors import ConfigError, InvalidInputError
from rag.workbench.tune import FusionChoice, apply_fusion
from rag.workbench.tuned_config import tuned_config, write_tuned_config

CHANGES = {"fusion": "weighted", "weights": {"dense": 1.0, "sparse": 1.5, "colbert": 0.5}}


@pytest.fixture(autouse=True)
def no_environment_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    monkeypatch.delenv("RAG_RETRIEVAL__WEIGHTS", raising=False)
    monkeypatch.delenv("RAG_RETRIEVAL__FUSION", raising=False)


def test_without_a_base_config_the_file_holds_only_the_tuned_keys_and_loads_back(tmp_path: Path) -> None:
    path = write_tuned_config(tmp_path / "out" / "tuned.yaml", CHANGES)
    assert yaml.safe_load(path.read_text(encoding="utf-8")) == {"retrieval": CHANGES}
    settings = load_settings(path)
    assert settings.retrieval.weights.model_dump() == CHANGES["weights"]
    assert settings.retrieval.fusion == "weighted"
    assert settings.retrieval.top_k == load_settings().retrieval.top_k  # everything else as before


def test_with_a_base_config_its_content_is_kept_and_only_the_fusion_changes(tmp_path: Path) -> None:
    base = tmp_path / "mine.yaml"
    base.write_text("kb:\n  name: manuals\nretrieval:\n  top_k: 7\n  fusion: rrf\n  weights:\n    sparse: 0.2\n",
                    encoding="utf-8")
    path = write_tuned_config(tmp_path / "tuned.yaml", CHANGES, base)
    settings = load_settings(path)
    assert (settings.kb.name, settings.retrieval.top_k) == ("manuals", 7)
    assert (settings.retrieval.fusion, settings.retrieval.weights.model_dump()) == ("weighted", CHANGES["weights"])
    assert load_settings(base).retrieval.fusion == "rrf"  # the base file itself is untouched


def test_rrf_and_a_mode_change_round_trip(tmp_path: Path) -> None:
    changes = {"fusion": "rrf", "weights": {"dense": 1.0, "sparse": 0.3, "colbert": 1.0}, "mode": "hybrid"}
    base = tmp_path / "dense.yaml"
    base.write_text("retrieval:\n  mode: dense\n", encoding="utf-8")
    retrieval = load_settings(write_tuned_config(tmp_path / "tuned.yaml", changes, base)).retrieval
    assert (retrieval.mode, retrieval.fusion) == ("hybrid", "rrf")


def test_a_base_config_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    base = tmp_path / "list.yaml"
    base.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        tuned_config(CHANGES, base)
    with pytest.raises(ConfigError, match="not found"):
        tuned_config(CHANGES, tmp_path / "missing.yaml")


def test_apply_fusion_sets_the_weights_of_a_session_and_checks_them() -> None:
    current = RetrievalSettings(top_k=3, mode="dense")
    applied = apply_fusion(current, FusionChoice("hybrid", "weighted", CHANGES["weights"]))
    assert (applied.mode, applied.fusion, applied.top_k) == ("hybrid", "weighted", 3)
    assert applied.weights.model_dump() == CHANGES["weights"]
    assert current.mode == "dense"  # a copy
    with pytest.raises(InvalidInputError, match="weights"):
        apply_fusion(current, FusionChoice("hybrid", "weighted", {"dense": -1.0, "sparse": 1.0, "colbert": 1.0}))
