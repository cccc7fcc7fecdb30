"""Families of danger wording beyond the fixed terms: gaps between trigger words, dialect, understatement,
third person, English paraphrase, numbers in words, and the safety net of single strong cues.

The phrases here were written for these tests (from everyday and clinical usage), not taken from any
evaluation set.
"""

from __future__ import annotations

import re

import pytest

from tests.triage.conftest import flags
from xinglin.triage import assess
from xinglin.triage import text as textmod
from xinglin.triage.knowledge import compile_pattern


def _flag(text: str, **kw: object) -> set[str]:
    return flags(assess(text, **kw))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# every family: (text, expected red flag, most lenient acceptable level)
FAMILIES = [
    # suicidal intent: understated, indirect, dialect, English
    ("觉得自己就是家里的累赘，拖累了大家", "suicidal_intent", 2),
    ("感觉真的熬不下去了，药都攒好了", "suicidal_intent", 2),
    ("我媳妇这两天总说不想再醒过来", "suicidal_intent", 2),
    ("我真系唔想再活落去", "suicidal_intent", 2),
    ("my brother says we'd all be better off without him and he's been giving his stuff away", "suicidal_intent", 2),
    ("用刀片在胳膊上划了好几道", "suicidal_intent", 2),
    # poisoning: children and tablets, household chemicals, gas and stoves, groups, English counts
    ("三岁孩子偷吃了奶奶的降压药", "poisoning", 2),
    ("老人把洁厕灵当成饮料喝了一口", "poisoning", 2),
    ("屋里生着煤炉子，一家四口早上都头疼想吐", "poisoning", 2),
    ("took about 25 of my sleeping pills an hour ago", "poisoning", 2),
    ("炒了一盘山上捡的菌子，吃完上吐下泻", "poisoning", 2),
    # altered consciousness: words between the parts, dialect, English
    ("外公叫了好几声才睁眼，问他话也答不上来", "altered_consciousness", 2),
    ("奶奶今天突然不认得人了", "altered_consciousness", 2),
    ("my mum doesn't know where she is and keeps falling asleep", "altered_consciousness", 2),
    ("爸爸倒在厕所地上，怎么叫都没反应", "altered_consciousness", 1),
    # stroke
    ("奶奶左边手脚突然使不上劲", "stroke", 2),
    ("吃饭时勺子突然从手里滑落，嘴角往一边歪", "stroke", 2),
    ("his face looks lopsided and his speech is garbled", "stroke", 2),
    # thunderclap headache
    ("搬东西的时候后脑勺突然像被人敲了一闷棍，接着就吐了", "thunderclap_headache", 2),
    ("从来不头疼的人，今天突然头疼得受不了", "thunderclap_headache", 2),
    ("the headache came out of nowhere, like my head exploded", "thunderclap_headache", 2),
    # heavy bleeding
    ("菜刀切到手腕，血一直往外涌，毛巾都湿透了", "heavy_bleeding", 2),
    ("nosebleed for two hours, he is on blood thinners", "heavy_bleeding", 2),
    ("拉了五六次，拉的全是鲜血，人站不起来", "heavy_bleeding", 2),
    # airway foreign body
    ("宝宝嘴里含着小珠子玩，突然呛咳不止", "airway_foreign_body", 2),
    ("孩子吃葡萄噎住了，脸憋得发紫", "airway_foreign_body", 1),
    ("toddler put a coin in her mouth and now she's wheezing", "airway_foreign_body", 2),
    # breathing
    ("喘得一句话要分几次才说完", "breathing_difficulty", 2),
    ("一躺平就憋得慌，只能坐着睡", "breathing_difficulty", 2),
    ("孩子吸气的时候锁骨上面凹进去", "breathing_difficulty", 2),
    ("嘴唇都发紫了", "breathing_difficulty", 1),
    ("I can't get enough air even sitting still", "breathing_difficulty", 2),
    # anaphylaxis
    ("吃了腰果之后舌头变厚，声音也哑了", "anaphylaxis", 1),
    ("输完液全身起风团，胸口发紧喘不上气", "anaphylaxis", 1),
    ("被马蜂蛰了以后眼皮嘴唇都肿起来，浑身痒", "anaphylaxis", 2),
    # chemical eye injury
    ("修电动车时电瓶液溅到眼睛里", "chemical_eye_injury", 2),
    ("染头发的药水流进眼里了", "chemical_eye_injury", 2),
    # seizure
    ("抽完一次接着又抽，中间一直没醒", "seizure_ongoing", 1),
    ("孩子全身发硬，一下一下地抽", "seizure_ongoing", 2),
    # GI bleeding
    ("大便黑乎乎的像柏油一样", "hematemesis", 2),
    # chest pain: the quality far from the body part in one sentence
    ("胸口正中间像被一只手死死攥住那样地疼", "chest_pain_acs", 2),
]


@pytest.mark.parametrize(("text", "code", "level"), FAMILIES)
def test_family_is_recognised(text: str, code: str, level: int) -> None:
    result = assess(text)
    assert code in flags(result), (text, result.red_flags)
    assert result.level <= level
    assert result.escalate


@pytest.mark.parametrize(
    ("text", "pregnant"),
    [("孕36周，刚刚突然浑身抽起来", True), ("抽了一阵又来一阵，已经十几分钟了", None)],
)
def test_dangerous_seizures_are_level_1(text: str, pregnant: bool | None) -> None:
    result = assess(text, pregnant=pregnant)
    assert result.level == 1
    assert "seizure_ongoing" in flags(result)


def test_sedative_overdose_with_intent_is_level_1() -> None:
    result = assess("吃了一整瓶安眠药，说不想活了")
    assert {"suicidal_intent", "poisoning"} <= flags(result)
    assert result.level == 1


def test_shock_in_words_or_measured_makes_bleeding_level_1() -> None:
    assert assess("摔伤后流了好多血，地上一大滩，脸白得像纸").level == 1
    assert assess("腿被划开一个大口子，血一直往外冒", vitals={"systolic_bp": 75}).level == 1


# ------------------------------------------------------------------------------------------------
# safety net: a strong cue alone escalates, names its words, and respects negation


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("他好像喘不上来", "breathing_difficulty"),
        ("刚才吐血了", "hematemesis"),
        ("东西卡住了", "airway_foreign_body"),
        ("过敏以后眼睛肿", "anaphylaxis"),
        ("吃了一大把药", "poisoning"),
        ("人昏过去了", "altered_consciousness"),
        ("孩子在抽", "seizure_ongoing"),
        ("I think he is choking", "airway_foreign_body"),
    ],
)
def test_safety_net_escalates_single_cues(text: str, code: str) -> None:
    result = assess(text)
    assert code in flags(result)
    assert result.level <= 2
    assert result.escalate
    evidence = " ".join(f.evidence for f in result.red_flags if f.code == code)
    assert evidence and all(part in textmod.normalise(text) for part in evidence.split(" + "))


@pytest.mark.parametrize(
    "text",
    [
        "没有晕倒，也没有吐血",
        "头有点昏，睡不好",
        "小腿抽筋，疼醒了",
        "肚子一抽一抽地疼",
        "明天去抽血检查",
        "腿上磕了一下，淤青发紫",
        "手指被门夹了，指甲发紫",
        "累得想死，天天加班",
        "热得想死",
        "滴了眼药水眼睛还是有点涩",
        "鱼刺卡在喉咙里了",
        "我也说不清楚哪里不舒服，该挂哪个科",
        "身上总是青一块紫一块的",
    ],
)
def test_no_false_alarm(text: str) -> None:
    found = _flag(text)
    assert not found & {
        "altered_consciousness",
        "hematemesis",
        "seizure_ongoing",
        "breathing_difficulty",
        "suicidal_intent",
        "chemical_eye_injury",
        "airway_foreign_body",
        "stroke",
    }, (text, found)


def test_new_wording_never_hides_a_body_part() -> None:
    # "剧痛" is a severe-pain word; the lower abdomen + pain inside it must still be read.
    result = assess("停经七周，下腹剧痛", pregnant=True)
    assert "pregnancy_bleeding_pain" in flags(result)
    assert result.level <= 2


# ------------------------------------------------------------------------------------------------
# numbers and patterns


@pytest.mark.parametrize(("text", "age"), [("我妈五十多岁", 50), ("爷爷七十来岁", 70), ("60出头的男性", 60)])
def test_approximate_ages(text: str, age: float) -> None:
    assert textmod.read_age(textmod.numeric_view(text)) == age


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("took like 40 ibuprofen", 40),
        ("吃了二十多片安眠药", 20),
        ("吞了三十几颗", 30),
        ("took 2 hours to get here", None),
        ("吃了3天药", None),
    ],
)
def test_pill_counts(text: str, count: int | None) -> None:
    assert textmod.read_pill_count(textmod.numeric_view(text)) == count


def test_chest_pain_in_a_fifty_something_is_flagged() -> None:
    assert "chest_pain_acs" in _flag("我爸五十多岁，心口闷闷地疼了一个钟头")


def test_gap_macro_stays_in_one_clause() -> None:
    rx = re.compile(compile_pattern("叫~不醒", "test"))
    assert rx.search("叫了他半天不醒")
    assert not rx.search("叫他,不醒")
    assert not rx.search("叫他。不醒")
