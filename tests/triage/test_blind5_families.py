"""Wording families found with blind set 5 (issue #3): indirect amounts of blood, metabolic emergencies given
as a number, bowel obstruction, scalds, the level 3 / 4 boundary, and clauses cut by spaces."""

from __future__ import annotations

import pytest

from xinglin.triage import assess
from xinglin.triage import text as textmod


def outcome(text: str, **kwargs: object) -> tuple[str, int, list[str]]:
    result = assess(text, **kwargs)  # type: ignore[arg-type]
    return result.department.code, result.level, sorted(f.code for f in result.red_flags)


def test_a_space_between_chinese_words_ends_a_clause() -> None:
    assert textmod.normalise("头痛  发烧") == "头痛\u3000发烧"
    assert textmod.normalise("fever  and cough") == "fever and cough"
    # "之前" no longer makes the vomited blood a thing of the past.
    assert outcome("吐血了 之前胃就不好") == ("03.02", 2, ["hematemesis"])


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # haemoptysis by the mouthful or the bowlful
        ("咳嗽咳出血来 满嘴是血", {}, ("03.01", 2, ["heavy_bleeding"])),
        ("咳血 一口一口的鲜血 有小半碗", {}, ("03.01", 2, ["heavy_bleeding"])),
        ("呕了一大口暗红的 像咖啡渣 以前有胃溃疡", {}, ("03.02", 2, ["hematemesis"])),
        # hypoglycaemia described by a relative; drink and no response; carbon monoxide in the bathroom
        ("外公打胰岛素的 中午叫他半天才应 一身汗", {"age": 75}, ("03.07", 2, ["altered_consciousness"])),
        ("老伴喝完酒睡下 怎么叫都不醒", {"age": 65}, ("20", 1, ["altered_consciousness", "poisoning"])),
        (
            "爸爸在浴室洗澡 叫他没反应 用的是燃气热水器",
            {"age": 60},
            ("20", 1, ["altered_consciousness", "poisoning"]),
        ),
        ("把降压药当成维生素 多吃了好几片", {"age": 80}, ("20", 2, ["poisoning"])),
        ("走两步 喘气费劲", {"age": 70}, ("03.01", 2, ["breathing_difficulty"])),
        # metabolic emergencies given as numbers
        ("糖尿病 血糖28 尿酮体阳性 有点恶心", {"age": 30}, ("03.07", 2, [])),
        ("type 1 diabetic, sugar 22, ketones positive", {"age": 19}, ("03.07", 2, [])),
        ("透析病人 化验血钾6.8", {"age": 60}, ("03.06", 2, [])),
        # bowel obstruction
        ("肚子一阵阵绞痛 两天没放屁 也没大便", {"age": 60}, ("03.02", 2, [])),
        ("肚子胀 不排气 吐了两次", {"age": 60}, ("04.01", 3, [])),
        # scalds
        ("宝宝被开水泼到大腿和肚子 起泡了", {"age": 2}, ("04.07", 2, [])),
        ("孩子手背被热汤烫红了一小块", {"age": 4}, ("04.07", 3, [])),
        # level 3 / 4: sprains, fever in young children, low-grade fever, teeth, urine retention
        ("崴脚了 脚踝肿得很厉害", {"age": 30}, ("04.03", 3, [])),
        ("脚崴了 有点肿 能走", {"age": 30}, ("04.03", 4, [])),
        ("打篮球崴脚了，脚踝肿", {"age": 20}, ("04.03", 4, [])),
        ("崴脚了 脚踝肿得跟馒头似的", {"age": 20}, ("04.03", 3, [])),
        ("twisted my knee skiing, it's swollen and I can't fully straighten it", {"age": 31}, ("04.03", 3, [])),
        ("I'm 38 weeks pregnant, clear fluid leaking", {"age": 30, "pregnant": True}, ("05.02", 2, [])),
        ("孩子4岁 发烧39度 流鼻涕", {"age": 4}, ("07", 3, [])),
        ("孩子4岁 发烧38度 精神好", {"age": 4}, ("07", 4, [])),
        ("有点低烧37.6 嗓子疼", {"age": 25}, ("11", 4, [])),
        ("发烧38.6 嗓子疼", {"age": 25}, ("11", 3, [])),
        ("门牙摔掉了 牙还在", {"age": 9}, ("12", 3, [])),
        ("尿不出来 憋得小肚子胀痛", {"age": 74}, ("04.04", 3, [])),
        # over-triage that was tightened
        ("去年吃虾过敏嘴肿过 现在想查过敏原", {"age": 30}, ("12", 3, [])),
        ("加班累得要命 想死的心都有 头疼", {"age": 30}, ("03.03", 4, [])),
        ("胸口针扎样痛 按着更疼 就几秒", {"age": 30}, ("03.04", 3, [])),
        ("咳咗一个礼拜 冇发烧", {"age": 40}, ("03.01", 4, [])),
        # bleeding and pain both denied: the safety check may not add a pregnancy flag
        (
            "pregnant 20 weeks, no bleeding, no pain, want to book a scan",
            {"age": 30, "pregnant": True},
            ("05.02", 4, []),
        ),
        ("眼睛 有点肿", {"age": 20}, ("10", 4, [])),
    ],
)
def test_blind5_families(text: str, kwargs: dict[str, object], expected: tuple[str, int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected
