"""Negated symptoms must not count; the same symptom without negation must."""

from __future__ import annotations

import pytest

from xinglin.triage import assess


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("没有胸痛，只是有点咳嗽", "chest_pain"),
        ("没有胸痛，也不发烧，就是有点咳嗽", "fever"),
        ("不发烧，嗓子疼", "fever"),
        ("否认胸痛，头晕两天", "chest_pain"),
        ("no chest pain, just a cough", "chest_pain"),
        ("no fever, no cough, just a sore throat", "fever"),
        ("denies chest pain, has a headache", "chest_pain"),
        ("宝宝没有发烧，就是有点流鼻涕", "fever"),
    ],
)
def test_negated_concepts(text: str, absent: str) -> None:
    result = assess(text)
    assert absent not in result.explanation_en.split("Negated:")[0]
    assert "Negated:" in result.explanation_en


def test_negated_chest_pain_has_no_flag_and_goes_to_respiratory() -> None:
    result = assess("没有胸痛，只是有点咳嗽", age=60)
    assert result.red_flags == ()
    assert result.department.code == "03.01"


def test_same_text_without_negation_flags() -> None:
    assert {f.code for f in assess("胸痛，出冷汗", age=60).red_flags} == {"chest_pain_acs"}
    assert assess("没有胸痛，没有出冷汗", age=60).red_flags == ()


def test_breathing_negation() -> None:
    assert assess("没有呼吸困难，咳嗽三天").red_flags == ()
    assert {f.code for f in assess("呼吸困难，咳嗽三天").red_flags} == {"breathing_difficulty"}
    assert assess("no shortness of breath, mild cough").red_flags == ()


def test_negation_stops_at_but() -> None:
    result = assess("不发烧，但是胸口疼得厉害，出冷汗", age=50)
    assert {f.code for f in result.red_flags} == {"chest_pain_acs"}


def test_negation_does_not_cross_clauses() -> None:
    result = assess("没有发烧，胸口压榨样疼痛", age=50)
    assert {f.code for f in result.red_flags} == {"chest_pain_acs"}


def test_pseudo_negations_are_not_negations() -> None:
    # "无明显诱因" = no obvious cause; "喘不上气" contains 不; "止不住" is a symptom.
    assert {f.code for f in assess("无明显诱因出现胸痛，伴大汗").red_flags} == {"chest_pain_acs"}
    assert {f.code for f in assess("喘不上气").red_flags} == {"breathing_difficulty"}
    assert {f.code for f in assess("流鼻血止不住").red_flags} == {"heavy_bleeding"}
    assert {f.code for f in assess("不知道是不是中风，嘴歪了").red_flags} == {"stroke"}


def test_question_is_not_negation() -> None:
    assert {f.code for f in assess("是不是心梗？胸口压着疼，出冷汗").red_flags} == {"chest_pain_acs"}


def test_negated_severity_does_not_raise_level() -> None:
    result = assess("胸口有点闷，不是很疼，也没有出汗")
    assert result.red_flags == ()
    assert result.level == 3


def test_negated_pregnancy() -> None:
    result = assess("没有怀孕，肚子疼，有点出血", sex="female", age=30)
    assert "pregnancy_bleeding_pain" not in {f.code for f in result.red_flags}
