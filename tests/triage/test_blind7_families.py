"""Wording families found with blind set 7: a red flag told after a question about a refill or a routine
visit (the framing must not hide it), suicide plans told as a story, medication given to the wrong
patient, wasp stings with breathlessness in Hunan/Jiangxi wording ("喘不赢气"), and level-2/3 conditions
without a red flag (incarcerated hernia, appendicitis pattern, hip fracture in the elderly, a dehydrated
vomiting child). The sentences are new variants of each family, not the evaluation cases."""

from __future__ import annotations

import pytest

from xinglin.triage import assess


def outcome(text: str, **kwargs: object) -> tuple[str, int, list[str]]:
    result = assess(text, **kwargs)  # type: ignore[arg-type]
    return result.department.code, result.level, sorted(f.code for f in result.red_flags)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # a red flag in a later sentence than the refill / follow-up / drug question
        (
            "你好，我爸的降糖药想在网上续方，他一直在吃二甲双胍。今天早上他刷牙时杯子掉地上了，右手没力气，讲话也含糊。药怎么续？",
            {"age": 68},
            ("03.03", 2, ["stroke"]),
        ),
        ("想问下复查要预约哪个科。我妈刚才突然嘴歪了，说话说不清楚。", {"age": 70}, ("03.03", 2, ["stroke"])),
        (
            "我一直吃阿司匹林，能不能换成别的药？另外我爸今天右边手脚突然没劲了。",
            {"age": 75},
            ("03.03", 2, ["stroke"]),
        ),
        # suicide told as a story
        (
            "自从老头子走了，我活着也没什么意思，想着过几天喝瓶敌敌畏跟他去算了",
            {"age": 78},
            ("20", 1, ["poisoning", "suicidal_intent"]),
        ),
        ("银行卡都交代给女儿了，活着也没啥意思", {"age": 70}, ("15", 2, ["suicidal_intent"])),
        # medication given to the wrong patient
        ("养老院阿姨把隔壁床的降压药错喂给我奶奶了，现在头晕", {"age": 88}, ("03.04", 2, ["poisoning"])),
        ("护士发错了药，我爸把别的病人的药吃了", {"age": 80}, ("20", 2, ["poisoning"])),
        # wasp stings with breathlessness, Hunan/Jiangxi wording
        (
            "被马蜂叮了好几口，全身起红疙瘩，喘不赢气",
            {"age": 45},
            ("20", 1, ["anaphylaxis", "breathing_difficulty"]),
        ),
        (
            "掏蜂子被蜂子叮了，出气不赢，脸也肿了",
            {"age": 50},
            ("20", 1, ["anaphylaxis", "breathing_difficulty"]),
        ),
        # a hernia that will not go back
        ("小肠气鼓出来塞不回去了，硬硬的，吐了一次", {"age": 65}, ("04.01", 2, [])),
        ("腹股沟的疝推不回去了，有点疼", {"age": 60}, ("04.01", 3, [])),
        # appendicitis pattern
        ("肚脐周围先痛的，后来转到右下腹了", {"age": 25}, ("04.01", 3, [])),
        ("右下腹疼，一按下去再松开更痛", {"age": 30}, ("04.01", 3, [])),
        ("Pain started around my belly button, now it moved to the lower right", {"age": 25}, ("03.02", 3, [])),
        # hip fracture in the elderly
        ("奶奶在浴室跌倒了，左边胯骨痛，起不来了，左腿看着短了一截", {"age": 86}, ("04.03", 3, [])),
        ("爷爷摔了一跤，髋部痛，站不起来", {"age": 79}, ("04.03", 3, [])),
        # a vomiting or diarrhoeal child with signs of dehydration
        ("宝宝一天吐了七八次，嘴巴干干的，尿很少", {"age": 1.5}, ("07", 3, [])),
        ("孩子拉肚子一整天，小便少，没精神", {"age": 4}, ("07", 3, [])),
    ],
)
def test_blind7_family(text: str, kwargs: dict[str, object], expected: tuple[str, int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # framing in the same sentence as a chronic mention still keeps it routine
        ("脑梗后遗症多年，说话一直不太清楚，来复查开药", {"age": 72}, ("21", 4, [])),
        # a hernia that goes back, a child who vomited once and pees normally
        ("疝气站着出来躺下就没了，想约手术", {"age": 55}, ("04.01", 4, [])),
        ("孩子吐了一次，吐完就好了，尿也正常", {"age": 5}, ("07", 4, [])),
    ],
)
def test_blind7_not_escalated(text: str, kwargs: dict[str, object], expected: tuple[str, int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected
