"""Vital-sign thresholds at every boundary of the four-level standard."""

from __future__ import annotations

import pytest

from xinglin.triage import TriageInputError, assess

BOUNDARIES = [
    # (vital, value, expected level)
    ("heart_rate", 39, 1),
    ("heart_rate", 40, 2),
    ("heart_rate", 49, 2),
    ("heart_rate", 50, 3),
    ("heart_rate", 55, 3),
    ("heart_rate", 56, 4),
    ("heart_rate", 99, 4),
    ("heart_rate", 100, 3),
    ("heart_rate", 148, 3),
    ("heart_rate", 149, 2),
    ("heart_rate", 180, 2),
    ("heart_rate", 181, 1),
    ("systolic_bp", 69, 1),
    ("systolic_bp", 70, 2),
    ("systolic_bp", 79, 2),
    ("systolic_bp", 80, 3),
    ("systolic_bp", 90, 3),
    ("systolic_bp", 91, 4),
    ("systolic_bp", 179, 4),
    ("systolic_bp", 180, 3),
    ("systolic_bp", 200, 3),
    ("systolic_bp", 201, 2),
    ("spo2", 79, 1),
    ("spo2", 80, 2),
    ("spo2", 89, 2),
    ("spo2", 90, 3),
    ("spo2", 94, 3),
    ("spo2", 95, 4),
    ("temperature", 41.1, 1),
    ("temperature", 41.0, 3),
    ("temperature", 39.0, 3),
    ("temperature", 38.9, 3),  # below the table's threshold, but an adult with fever is level 3
    ("temperature", 37.4, 4),
    ("temperature", 34.9, 3),
    ("temperature", 31.9, 2),
    ("gcs", 8, 1),
    ("gcs", 9, 2),
    ("gcs", 12, 2),
    ("gcs", 13, 3),
    ("gcs", 15, 4),
    ("pain", 10, 2),
    ("pain", 7, 2),
    ("pain", 6, 3),
    ("pain", 4, 3),
    ("pain", 3, 4),
    ("resp_rate", 7, 1),
    ("resp_rate", 9, 2),
    ("resp_rate", 31, 2),
    ("resp_rate", 37, 1),
    ("resp_rate", 25, 3),
    ("resp_rate", 16, 4),
]


@pytest.mark.parametrize(("name", "value", "level"), BOUNDARIES, ids=[f"{b[0]}={b[1]}" for b in BOUNDARIES])
def test_threshold(name: str, value: float, level: int) -> None:
    # A complaint that is level 4 by itself, so the vital sign alone sets the level.
    result = assess("手上长了个小疙瘩", age=40, vitals={name: value})
    assert result.level == level
    assert ("abnormal_vitals" in {f.code for f in result.red_flags}) is (level <= 2)
    assert result.escalate is (level <= 2)


def test_abnormal_vitals_evidence_lists_the_values() -> None:
    result = assess("咳嗽", vitals={"spo2": 88, "heart_rate": 120})
    assert [(f.code, f.evidence) for f in result.red_flags] == [
        ("breathing_difficulty", "咳嗽 + SpO2 88%"),
        ("abnormal_vitals", "spo2=88"),
    ]
    assert result.level == 2


def test_level_1_vitals_send_to_emergency() -> None:
    result = assess("头晕", age=50, vitals={"systolic_bp": 65})
    assert (result.department.code, result.level) == ("20", 1)


def test_vitals_read_from_text() -> None:
    assert assess("发烧，体温41.5度").level == 1
    assert assess("血压200/120，头疼").level == 3
    assert assess("血压210/120，头疼").level == 2
    assert assess("心率40次，头晕").level == 2
    assert assess("temp 102F and a cough").level == 3  # 38.9 °C: adult fever
    assert assess("temp 99F and a cough").level == 4
    assert assess("temperature 39.5 and a cough").level == 3


def test_request_vitals_win_over_text() -> None:
    assert assess("血氧85", vitals={"spo2": 97}).level == 4


def test_vital_aliases_and_bp_string() -> None:
    assert assess("头晕", vitals={"hr": 30}).level == 1
    assert assess("头晕", vitals={"bp": "60/40"}).level == 1


@pytest.mark.parametrize(
    ("vitals", "field"),
    [({"spo2": 120}, "vitals.spo2"), ({"heartrate": 80}, "vitals.heartrate"), ({"gcs": "x"}, "vitals.gcs")],
)
def test_bad_vitals_name_the_field(vitals: dict, field: str) -> None:
    with pytest.raises(TriageInputError) as info:
        assess("头晕", vitals=vitals)
    assert info.value.field == field
    assert info.value.zh and info.value.en
