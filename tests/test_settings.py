"""Settings come from the environment, typed and checked before the service starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fingerprint.settings import SettingsError, load_settings


def test_the_match_threshold_defaults_to_the_model_card_and_is_checked() -> None:
    assert load_settings({}).match_threshold is None
    assert load_settings({"MATCH_THRESHOLD": "0.78"}).match_threshold == 0.78
    for bad in ("1.5", "-0.1", "strict"):
        with pytest.raises(SettingsError, match="MATCH_THRESHOLD"):
            load_settings({"MATCH_THRESHOLD": bad})


def test_fast_probes_are_on_and_accept_only_clear_answers_unless_told_otherwise() -> None:
    assert load_settings({}).fast_probes is True and load_settings({}).fast_accept == 1.1
    assert load_settings({}).fast_reject == 0.4
    assert load_settings({"FAST_PROBES": "false"}).fast_probes is False
    assert load_settings({"FAST_ACCEPT": "0"}).fast_accept == 0.0
    for bad in ("-1", "nan", "inf", "often"):
        with pytest.raises(SettingsError, match="FAST_ACCEPT"):
            load_settings({"FAST_ACCEPT": bad})
    assert load_settings({"FAST_REJECT": "0.4"}).fast_reject == 0.4
    for bad in ("-0.1", "1.5", "nan"):
        with pytest.raises(SettingsError, match="FAST_REJECT"):
            load_settings({"FAST_REJECT": bad})


def test_inference_precision_is_one_of_three() -> None:
    assert load_settings({}).inference_precision == "auto"
    assert load_settings({"INFERENCE_PRECISION": "float32"}).inference_precision == "float32"
    with pytest.raises(SettingsError, match="INFERENCE_PRECISION"):
        load_settings({"INFERENCE_PRECISION": "float16"})


def test_the_enrolment_minutiae_minimum_defaults_to_ten_and_is_checked() -> None:
    assert load_settings({}).min_enroll_minutiae == 10
    assert load_settings({"MIN_ENROLL_MINUTIAE": "0"}).min_enroll_minutiae == 0
    for bad in ("-1", "1001", "many"):
        with pytest.raises(SettingsError, match="MIN_ENROLL_MINUTIAE"):
            load_settings({"MIN_ENROLL_MINUTIAE": bad})


def test_identifys_minutiae_shortlist_is_the_comparators_unless_set_and_is_checked() -> None:
    assert load_settings({}).identify_minutiae_shortlist == 64
    assert load_settings({"IDENTIFY_MINUTIAE_SHORTLIST": "8"}).identify_minutiae_shortlist == 8
    for bad in ("0", "257"):
        with pytest.raises(SettingsError, match="IDENTIFY_MINUTIAE_SHORTLIST"):
            load_settings({"IDENTIFY_MINUTIAE_SHORTLIST": bad})
    assert load_settings({}).identify_sketch_shortlist == 16
    assert load_settings({"IDENTIFY_SKETCH_SHORTLIST": "0"}).identify_sketch_shortlist == 0
    for bad in ("-1", "257"):
        with pytest.raises(SettingsError, match="IDENTIFY_SKETCH_SHORTLIST"):
            load_settings({"IDENTIFY_SKETCH_SHORTLIST": bad})


def test_the_vector_engine_is_memory_unless_milvus_is_named_with_its_address(tmp_path: Path) -> None:
    assert load_settings({}).vector_engine == "memory"
    with pytest.raises(SettingsError, match="VECTOR_ENGINE"):
        load_settings({"VECTOR_ENGINE": "faiss"})
    with pytest.raises(SettingsError, match="VECTOR_ENGINE_URI"):
        load_settings({"VECTOR_ENGINE": "milvus"})
    with pytest.raises(SettingsError, match="VECTOR_ENGINE_TOKEN_FILE"):
        load_settings({"VECTOR_ENGINE": "milvus", "VECTOR_ENGINE_URI": "http://milvus:19530",
                       "VECTOR_ENGINE_TOKEN_FILE": str(tmp_path / "missing")})
    s = load_settings({"VECTOR_ENGINE": "milvus", "VECTOR_ENGINE_URI": "http://milvus:19530"})
    assert (s.vector_engine, s.vector_engine_uri) == ("milvus", "http://milvus:19530")
