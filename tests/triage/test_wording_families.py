"""Wording families added for issue #3 after blind set 4: Cantonese, Hokkien and Wu dialect, typos of the
same sound, understatement, third person, English colloquial, and negation inside patterns.

The phrases were written for these tests, not taken from an evaluation set.
"""

from __future__ import annotations

import re

import pytest

from tests.triage.conftest import codes, flags
from xinglin.triage import assess
from xinglin.triage.engine import assess_rules_only
from xinglin.triage.knowledge import compile_pattern

# (text, red flag the rules must find, exact level)
FAMILIES = [
    # altered consciousness in dialect and English
    ("阿婆瞓喺床度 点叫都唔应", "altered_consciousness", 1),
    ("外婆坐在沙发上 叫伊也不响", "altered_consciousness", 1),
    ("阿公叫伊有时应有时无应", "altered_consciousness", 2),
    ("grandad keeled over and won't open his eyes", "altered_consciousness", 1),
    # stroke
    ("阿伯讲嘢唔清楚 左手冇晒力", "stroke", 2),
    ("阮阿嬷讲话大舌 行路歪一爿", "stroke", 2),
    # breathing: Cantonese, talking, a few steps
    ("阿妈好气促 吸唔到气", "breathing_difficulty", 2),
    ("老爷子说话都会喘", "breathing_difficulty", 2),
    ("行两步就喘到要停", "breathing_difficulty", 2),
    # suicidal intent: despair, and an attempt after a quarrel
    ("感觉自己是个负担 不如消失算了", "suicidal_intent", 2),
    ("跟老公吵完架 她把一整瓶降压药都吃了", "suicidal_intent", 2),
    ("after a breakup he took like 25 paracetamol", "suicidal_intent", 2),
    # poisoning
    ("食咗成樽安眠药 而家好想瞓 叫佢唔应", "poisoning", 1),
    ("几个人喝了散装白酒 今天都看东西模糊", "poisoning", 2),
    # bleeding: spurting is arterial
    ("大腿被玻璃划开 血一股一股往外冒", "heavy_bleeding", 1),
    # chest pain in Cantonese, and pain spreading to the jaw with sweating
    ("心口好翳 好似有旧石压住", "chest_pain_acs", 2),
    ("胃那块疼 往下巴上窜 出了一身冷汗", "chest_pain_acs", 2),
    # anaphylaxis: hoarse voice after an allergen
    ("吃了腰果 嗓子发紧 声音变得很沙哑", "anaphylaxis", 1),
    # choking: cannot speak, clutching the neck
    ("阿爷食汤圆哽住 讲唔到嘢", "airway_foreign_body", 1),
    # seizure still going on, in dialect
    ("个女抽咗好耐都未停 两只眼反白", "seizure_ongoing", 1),
    # typos of the same sound
    ("投疼得要命 突然开始的 从来没这样疼过", "thunderclap_headache", 2),
    ("呼吸困南 喘不上起", "breathing_difficulty", 2),
]


@pytest.mark.parametrize(("text", "code", "level"), FAMILIES)
def test_family_flag_and_level(text: str, code: str, level: int) -> None:
    result = assess_rules_only(text)
    assert code in flags(result)
    assert result.level == level
    assert result.escalate is True


@pytest.mark.parametrize(
    "text",
    [
        "吃了海鲜身上起了几个疙瘩 痒 但是嘴巴不肿 喘气也正常",  # "嘴巴不肿": no swelling
        "吃了虾 身上有点痒 嗓子也不紧",
        "不喘不咳，就是鼻子塞了一个礼拜",
        "没有胸痛，也没有气短，就是最近老是打嗝",
        "不会想不开的 放心 就是最近压力大",
        "之前吐过血，做了胃镜说是溃疡，现在好了，来复查",
    ],
)
def test_negated_or_past_wording_raises_no_flag(text: str) -> None:
    assert flags(assess(text)) == set()


def test_english_negation_inside_a_pattern_gap() -> None:
    # "vomit ... blood" must not match across "no"; "food poisoning" is a tummy bug, not a poisoning flag
    result = assess_rules_only("vomiting since last night, think it's food poisoning, no blood, keeping water down")
    assert flags(result) == set()
    assert result.level == 3


@pytest.mark.parametrize(
    "text",
    [
        "不是很痛，但是就是喘不上气来",
        "打了造影剂，出来没两分钟就喘不上气",  # "没两分钟" is a time, not a negation
    ],
)
def test_negation_stops_at_but_and_time_words(text: str) -> None:
    assert "breathing_difficulty" in flags(assess(text))


def test_pattern_gap_does_not_cross_a_negation() -> None:
    pattern = re.compile(compile_pattern("(嘴巴|脸)~(肿)", "test"))
    assert pattern.search("嘴巴都肿了")
    assert pattern.search("嘴巴不肿") is None
    assert pattern.search("脸没肿") is None


def test_measured_low_blood_pressure_with_chest_pain_is_level_1() -> None:
    shock = assess("胸口压榨样疼四十分钟 出冷汗", age=70, vitals={"systolic_bp": 75, "diastolic_bp": 40})
    assert shock.level == 1
    assert shock.department.code == "20"
    assert "chest_pain_acs" in flags(shock)
    borderline = assess("胸口压榨样疼四十分钟 出冷汗", age=70, vitals={"systolic_bp": 86, "diastolic_bp": 50})
    assert borderline.level == 2


def test_fever_with_measured_shock_is_level_1() -> None:
    result = assess("尿路感染几天了 今天发抖 烧到39.6 血压76/45")
    assert result.level == 1


def test_baby_words_in_pregnancy_are_about_the_fetus() -> None:
    result = assess("I'm 38 weeks pregnant, clear fluid leaking, baby is moving")
    assert codes(result)[0] == "05.02"


@pytest.mark.parametrize(
    ("text", "level", "department"),
    [
        ("孕32周 今天胎动比平时少很多", 3, "05.02"),
        ("被邻居家的狗挠了一下 破了点皮", 3, "01"),
        ("右边耳朵这几天听力下降了", 3, "11"),
        ("耳朵里进了个虫子 嗡嗡响", 3, "11"),
        ("孩子手背被开水烫红了", 3, "04.07"),
    ],
)
def test_level_3_families(text: str, level: int, department: str) -> None:
    result = assess(text, age=30 if "孩子" not in text else 4)
    assert result.level == level
    assert codes(result)[0] == department


def test_a_little_breathless_is_level_3_without_a_danger_context() -> None:
    plain = assess_rules_only("孩子咳嗽发烧，有点喘", age=5)
    assert plain.level == 3
    assert "breathing_difficulty" not in flags(plain)
    after_allergen = assess_rules_only("吃了花生以后嘴唇肿了 有点喘")
    assert "breathing_difficulty" in flags(after_allergen)
    assert after_allergen.level == 1


@pytest.mark.parametrize(
    ("text", "code", "level"),
    [
        ("he snorted something at a party and now he's barely breathing", "poisoning", 1),
        ("工地上好几个工人吃完盒饭都吐了，嘴唇发麻", "poisoning", 2),
        ("活着真没意思，药都准备好了", "suicidal_intent", 2),
        # drowsy after an overdose but still answering: level 2 (blind set 3 grades it so), escalated
        ("把一整板安眠药都吃了，现在很困，眼睛睁不开", "altered_consciousness", 2),
        ("怀孕32周，下面出血，量挺多的，肚子发硬", "heavy_bleeding", 1),
        ("biggest headache of my life hit me out of nowhere", "thunderclap_headache", 2),
    ],
)
def test_more_families(text: str, code: str, level: int) -> None:
    result = assess_rules_only(text)
    assert code in flags(result)
    assert result.level == level


@pytest.mark.parametrize(
    ("text", "temperature"),
    [
        ("宝宝摸着很烫，三十八度", 38.0),
        ("烧了两天39度5", 39.5),
        ("屋里空调开到38度", None),
        ("喝了两杯52度的白酒", None),
    ],
)
def test_bare_degrees_read_as_body_temperature(text: str, temperature: float | None) -> None:
    from xinglin.triage import text as textmod

    assert textmod.read_vitals(textmod.numeric_view(text)).get("temperature") == temperature


def test_newborn_felt_hot_with_bare_degrees_is_infant_fever() -> None:
    result = assess_rules_only("宝宝出生二十天，今天摸着很烫，三十八度")
    assert "infant_fever" in flags(result)
    assert result.level == 2


def test_a_rule_can_settle_a_code_for_the_safety_check() -> None:
    from xinglin.triage.knowledge import load

    kb = load()
    swallowed = [r for r in kb.flags if r.code is None and r.settles]
    assert sorted(r.settles for r in swallowed) == [
        ("airway_foreign_body",),
        ("chest_pain_acs",),
        ("pregnancy_bleeding_pain",),
    ]
    result = assess("my son swallowed a coin", age=4)
    assert (result.level, flags(result)) == (3, set())


def test_safety_check_adds_no_pregnancy_flag_for_a_man() -> None:
    result = assess("肚子疼，有点出血", pregnant=True, sex="male")
    assert "pregnancy_bleeding_pain" not in flags(result)
