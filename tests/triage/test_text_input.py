"""Traditional Chinese, English, typos, and inputs that must never crash."""

from __future__ import annotations

import time

import pytest

from xinglin.triage import assess
from xinglin.triage.text import normalise, numeric_view, read_age, read_vitals


def test_traditional_chinese_is_converted() -> None:
    assert normalise("頭痛發燒，喉嚨痛") == "头痛发烧,喉咙痛"
    result = assess("我胸口悶，喘不過氣", age=60)
    assert result.department.code == "03.01"
    assert {f.code for f in result.red_flags} == {"breathing_difficulty"}
    assert assess("眼睛癢，流眼淚").department.code == "10"


def test_full_width_is_folded() -> None:
    assert normalise("ＣＨＥＳＴ　ＰＡＩＮ，３９℃") == "chest pain,39°c"
    assert assess("体温３９．５℃，咳嗽").level == 3


@pytest.mark.parametrize(
    ("text", "department"),
    [
        ("I have had a cough and a runny nose for three days", "03.01"),
        ("itchy rash on my arms", "13"),
        ("toothache for a week", "12"),
        ("pain when peeing and need to go all the time", "04.04"),
        ("my eyes are red and itchy", "10"),
        ("I have a lump in my breast", "04.01"),
        ("ear pain and hearing loss on the left", "11"),
        ("I need a refill of my blood pressure medication", "03.04"),
        ("my period is two weeks late", "05.01"),
    ],
)
def test_english(text: str, department: str) -> None:
    assert assess(text).department.code == department


def test_english_red_flags() -> None:
    result = assess("crushing chest pain spreading to my left arm, sweating", age=60)
    assert ({f.code for f in result.red_flags}, result.level) == ({"chest_pain_acs"}, 2)
    result = assess("sudden weakness on one side and slurred speech", age=70)
    assert ({f.code for f in result.red_flags}, result.department.code) == ({"stroke"}, "03.03")


def test_typos_are_tolerated() -> None:
    assert assess("头通，发骚").department.code == "03.03"
    assert assess("拉肚紫").department.code == "03.02"
    assert assess("stomache ache and diarhea").department.code == "03.02"
    assert {f.code for f in assess("he is unconcious").red_flags} == {"altered_consciousness"}


def test_spelling_correction_leaves_ordinary_words() -> None:
    # "cooking" is one letter from "choking": no airway red flag.
    result = assess("I cut my finger while cooking and it won't stop bleeding")
    assert {f.code for f in result.red_flags} == {"heavy_bleeding"}


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "😭", "？？？", "asdfghjkl", "哈哈哈哈", "...", None])
def test_unusable_input_goes_to_general_practice_and_escalates(text) -> None:
    result = assess(text)
    assert result.department.code == "02"
    assert result.level == 4
    assert result.escalate is True
    assert result.red_flags == ()
    assert result.warnings and result.explanation


def test_empty_text_message() -> None:
    result = assess("")
    assert result.warnings == ("empty_text",)
    assert "没有收到症状描述" in result.explanation


def test_emoji_message() -> None:
    assert assess("😀😀😀").warnings == ("no_words",)


def test_very_long_text_is_analysed_and_escalated() -> None:
    text = "我最近身体不太好，" * 300 + "今天突然胸口压榨样疼痛，出冷汗。"
    assert len(text) > 2000
    start = time.perf_counter()
    result = assess(text, age=60)
    assert time.perf_counter() - start < 0.5
    assert "text_too_long" in result.warnings
    assert result.escalate is True
    assert {f.code for f in result.red_flags} == {"chest_pain_acs"}


def test_long_text_without_symptoms() -> None:
    result = assess("啊" * 5000)
    assert (result.department.code, result.escalate) == ("02", True)
    assert set(result.warnings) == {"text_too_long", "unrecognised"}


def test_non_string_text_is_accepted() -> None:
    assert assess(12345).department.code == "02"  # type: ignore[arg-type]


def test_numbers_in_chinese() -> None:
    assert numeric_view("体温三十九度五") == "体温39度5"
    assert read_vitals(numeric_view("体温三十九度五")) == {"temperature": 39.5}
    assert read_vitals("血压180/100，心率130次，血氧92%") == {
        "heart_rate": 130.0,
        "systolic_bp": 180.0,
        "diastolic_bp": 100.0,
        "spo2": 92.0,
    }
    assert read_vitals("发烧3天，疼了5分钟") == {}


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("宝宝两个月", 0.167),
        ("出生20天的宝宝", 0.055),
        ("孩子3岁半", 3.5),
        ("70岁老人", 70.0),
        ("a 45-year-old man", 45.0),
        ("my baby is 6 weeks old", 0.115),
        ("我30岁，孩子2岁", 2.0),
        ("宝宝发烧3天了", None),
        ("咳嗽3个月", None),
    ],
)
def test_read_age(text: str, age: float | None) -> None:
    assert read_age(numeric_view(normalise(text))) == age
