"""Urgency levels and red flags (exact levels and codes)."""

from __future__ import annotations

import pytest

from xinglin.triage import assess

FLAG_CASES = [
    # (text, kwargs, level, red flags)
    ("胸口压榨样疼痛半小时，出冷汗", {"age": 58}, 2, {"chest_pain_acs"}),
    ("心口疼，像压了块大石头，疼到左肩膀", {"age": 62}, 2, {"chest_pain_acs"}),
    ("无明显诱因出现胸痛，伴大汗", {"age": 60}, 2, {"chest_pain_acs"}),
    ("胸背部撕裂样剧痛", {"age": 55}, 1, {"chest_pain_acs"}),
    ("我爸突然嘴歪了，说话含糊不清", {"age": 70}, 2, {"stroke"}),
    ("左边手脚突然没劲", {"age": 65}, 2, {"stroke"}),
    ("突然一只眼睛看不见了", {"age": 60}, 2, {"stroke"}),
    ("喘不上气，嘴唇发紫", {}, 1, {"breathing_difficulty"}),
    ("喘不上气", {}, 2, {"breathing_difficulty"}),
    ("吃了虾以后全身起疹子，喉咙发紧喘不上气", {}, 1, {"anaphylaxis", "breathing_difficulty"}),
    ("被马蜂蛰了好几下，头晕", {}, 2, {"anaphylaxis"}),
    ("抽搐口吐白沫，现在还在抽", {}, 1, {"seizure_ongoing", "altered_consciousness"}),
    ("人晕倒了叫不醒", {"age": 70}, 1, {"altered_consciousness"}),
    ("突然晕倒了，现在醒了", {}, 2, {"altered_consciousness"}),
    ("手被机器绞伤，血流不止", {}, 2, {"heavy_bleeding"}),
    ("例假量特别大，一小时就湿透一片卫生巾", {}, 2, {"heavy_bleeding"}),
    ("喝了农药", {}, 2, {"poisoning"}),
    ("被毒蛇咬了", {}, 2, {"poisoning"}),
    ("不想活了，想吃安眠药", {}, 2, {"suicidal_intent"}),
    ("I want to kill myself", {}, 2, {"suicidal_intent"}),
    ("突然剧烈头痛，这辈子没这么痛过，还吐了", {}, 2, {"thunderclap_headache"}),
    ("高烧不退，脖子发硬", {}, 2, {"thunderclap_headache"}),
    ("吐血了，吐了半碗", {}, 2, {"hematemesis"}),
    ("怀孕8周，阴道少量出血", {"pregnant": True}, 2, {"pregnancy_bleeding_pain"}),
    ("停经40天，下腹剧痛，阴道出血", {"sex": "female", "age": 27}, 2, {"pregnancy_bleeding_pain"}),
    ("宝宝两个月，发烧38.5度", {}, 2, {"infant_fever"}),
    ("发烧", {"age": 0.1}, 2, {"infant_fever"}),
    ("眼睛被石灰烧到了", {}, 2, {"chemical_eye_injury"}),
    ("孩子吃果冻呛住了，脸发紫", {"age": 2}, 1, {"airway_foreign_body", "breathing_difficulty"}),
    ("孩子吃花生呛到了，一直咳嗽", {"age": 3}, 2, {"airway_foreign_body"}),
    ("血氧只有85，喘", {"age": 75}, 2, {"abnormal_vitals", "breathing_difficulty"}),
]


@pytest.mark.parametrize(("text", "kwargs", "level", "expected"), FLAG_CASES, ids=[c[0] for c in FLAG_CASES])
def test_red_flags(text: str, kwargs: dict, level: int, expected: set[str]) -> None:
    result = assess(text, **kwargs)
    assert {f.code for f in result.red_flags} == expected
    assert result.level == level
    assert result.escalate is True


LEVEL_CASES = [
    # (text, kwargs, level) — no red flag expected
    ("高血压吃药三年了，想开药", {"age": 66}, 4),
    ("活动后胸闷，休息几分钟就好了，已经一个月", {"age": 55}, 3),
    ("头晕，天旋地转，一动就想吐", {}, 3),
    ("咳嗽两周了，有黄痰", {}, 4),
    ("右下腹疼，发烧", {}, 3),
    ("摔了一跤，手腕肿了，动不了", {"age": 70}, 3),
    ("打篮球崴脚了，脚踝肿", {}, 4),
    ("肚子疼得打滚", {}, 2),
    ("车祸，头部受伤，吐了两次", {}, 2),
    ("低血糖，出冷汗手抖", {}, 2),
    ("睾丸突然剧痛", {"age": 15, "sex": "male"}, 2),
    ("吞了纽扣电池", {"age": 3}, 2),
    ("孕36周，胎动明显减少", {"pregnant": True}, 2),
    ("孩子高热惊厥，抽了一下现在好了", {"age": 2}, 2),
    ("孩子拉肚子，吐了好几次", {"age": 2}, 3),
    ("my son swallowed a coin", {"age": 4}, 3),
    ("痔疮出血", {}, 4),
    ("脸上长痘痘", {}, 4),
]


@pytest.mark.parametrize(("text", "kwargs", "level"), LEVEL_CASES, ids=[c[0] for c in LEVEL_CASES])
def test_levels_without_red_flags(text: str, kwargs: dict, level: int) -> None:
    result = assess(text, **kwargs)
    assert result.red_flags == ()
    assert result.level == level
    assert result.escalate is (level <= 2)


def test_level_names_and_waits() -> None:
    expected = {1: ("急危", 0), 2: ("急重", 10), 3: ("急症", 30), 4: ("亚急/非急", 60)}
    for text, level in (("人晕倒了叫不醒", 1), ("喘不上气", 2), ("右下腹疼，发烧", 3), ("脸上长痘痘", 4)):
        result = assess(text)
        assert result.level == level
        assert (result.level_name, result.max_wait_minutes) == expected[level]


def test_history_does_not_raise_a_stroke_flag() -> None:
    assert assess("以前中风过，现在来复查开药").red_flags == ()
    result = assess("以前中风过，今天突然说话不清")
    assert [f.code for f in result.red_flags] == ["stroke"]
    assert result.red_flags[0].evidence == "说话不清"


def test_idioms_are_not_suicidal_intent() -> None:
    assert assess("牙疼得想死").red_flags == ()
    assert assess("累死了，腰疼").red_flags == ()


def test_evidence_names_the_words() -> None:
    result = assess("胸口疼，出冷汗，疼到左胳膊")
    assert [(f.code, f.evidence) for f in result.red_flags] == [("chest_pain_acs", "胸口疼 + 左胳膊")]
