"""Wording families found with blind set 6 (issue #3): Cantonese, Henan and English paraphrase of danger
signs, atypical presentations (a heart attack felt in the stomach, hypoglycaemia, a reaction during an
infusion) and indirect descriptions (pill bottles beside someone, blood everywhere, a wound gaping open).
The sentences are new variants of each family, not the evaluation cases."""

from __future__ import annotations

import pytest

from xinglin.triage import assess, safety, train_safety


def outcome(text: str, **kwargs: object) -> tuple[str, int, list[str]]:
    result = assess(text, **kwargs)  # type: ignore[arg-type]
    return result.department.code, result.level, sorted(f.code for f in result.red_flags)


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # suicidal talk in Cantonese and English, at a height
        ("我真系唔想再生存落去", {"age": 30}, ("15", 2, ["suicidal_intent"])),
        ("不想再存在了 现在站在桥上", {"age": 25}, ("15", 2, ["suicidal_intent"])),
        ("I'm standing on the roof, I don't want to exist anymore", {"age": 22}, ("15", 2, ["suicidal_intent"])),
        # wild or picked mushrooms with gut symptoms
        ("昨天食咗山上采返嚟嘅菌 今日一路呕", {"age": 50}, ("20", 2, ["poisoning"])),
        ("我们吃了路边捡的蘑菇 现在都拉肚子 肚子疼", {"age": 40}, ("03.02", 2, ["poisoning"])),
        # black or coffee-like vomit, black stool in dialect
        ("吐的都是黑色的东西", {"age": 66}, ("03.02", 2, ["hematemesis"])),
        ("他吐出来像咖啡一样", {"age": 58}, ("03.02", 2, ["hematemesis"])),
        ("俺爹拉哩也是黑哩", {"age": 70}, ("03.02", 2, ["hematemesis"])),
        ("vomited something dark brown like coffee", {"age": 60}, ("03.02", 2, ["hematemesis"])),
        # a heart attack felt in the stomach
        ("胃那块压得慌 出冷汗 气短", {"age": 65, "sex": "female"}, ("03.04", 2, ["chest_pain_acs"])),
        ("心窝子堵得难受 一直冒冷汗 有高血压", {"age": 72}, ("03.04", 2, ["chest_pain_acs"])),
        # hypoglycaemia, dazed
        ("打胰岛素的 出了一身冷汗 手抖 人呆呆的", {"age": 45}, ("03.07", 2, ["altered_consciousness"])),
        ("奶奶早上起来人有点呆呆的 问话也不怎么答", {"age": 85}, ("20", 2, ["altered_consciousness"])),
        # one side not moving
        ("爷爷在卫生间摔了 左边身子动不了", {"age": 80}, ("03.03", 2, ["stroke"])),
        ("his left side isn't moving after he fell", {"age": 77}, ("03.03", 2, ["stroke"])),
        # found drowsy with pill bottles
        ("她躺在床上叫不醒 旁边有个空药瓶", {"age": 30}, ("20", 1, ["altered_consciousness", "poisoning"])),
        (
            "found her asleep and I can't wake her, there's an empty pill bottle by the bed",
            {"age": 19},
            ("20", 1, ["altered_consciousness", "poisoning"]),
        ),
        # a fit going on for minutes, in English
        (
            "my son has epilepsy and he has been jerking for over five minutes",
            {"age": 15},
            ("20", 1, ["altered_consciousness", "seizure_ongoing"]),  # a fit in progress: consciousness lost
        ),
        # a drug or an infusion, then itch, then a tight chest or throat
        ("在社区打点滴 打着打着身上发痒 胸口发紧", {"age": 50}, ("13", 2, ["anaphylaxis"])),
        ("吃了头孢 全身起疙瘩 嗓子眼儿发紧", {"age": 33}, ("20", 1, ["anaphylaxis"])),
        (
            "started new antibiotics, now itchy all over and my chest feels tight",
            {"age": 41},
            ("03.04", 2, ["anaphylaxis"]),
        ),
        # blood everywhere, a toilet full of blood
        ("切菜切到手 血流得满地都是", {"age": 35}, ("20", 2, ["heavy_bleeding"])),
        ("there was so much blood in the toilet and I feel faint", {"age": 50}, ("20", 1, ["heavy_bleeding"])),
        # stimulants with paranoia and a racing heart
        ("他吸了冰 说有人要害他 心跳得很快", {"age": 28}, ("20", 2, ["poisoning"])),
        # level-2/3 conditions without a red flag
        ("孩子拉的大便像果酱一样 一阵一阵哭", {"age": 1}, ("08", 2, [])),
        ("宝宝咳嗽的声音像小狗叫", {"age": 2}, ("07", 3, [])),
        ("我弟这几天几乎不睡觉 到处乱花钱", {"age": 27}, ("15", 3, [])),
        ("鸡骨头卡在喉咙了 咽不下去", {"age": 45}, ("11", 3, [])),
        ("孩子被大人拉了一下手臂 手臂不能动了", {"age": 3}, ("08", 3, [])),
        ("32 weeks pregnant, bad headache and seeing spots", {"age": 30, "pregnant": True}, ("05.02", 2, [])),
        ("lost the vision in my left eye an hour ago, like a curtain came down", {"age": 64}, ("10", 2, [])),
        ("怀孕39周 肚子一阵一阵发硬 五分钟一次", {"age": 28, "pregnant": True}, ("05.02", 3, [])),
    ],
)
def test_blind6_family(text: str, kwargs: dict[str, object], expected: tuple[str, int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # the families do not fire on their harmless neighbours
        ("吐了两次 吐的是早上吃的东西 没有血", {"age": 30}, ("03.02", 4, [])),
        ("胃那块有点胀 吃多了", {"age": 30}, ("03.02", 4, [])),
        ("被男朋友拉黑了 好难过", {"age": 20}, ("02", 4, [])),
    ],
)
def test_blind6_family_neighbours(text: str, kwargs: dict[str, object], expected: tuple[str, int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected


def test_safety_layer_is_trained_on_every_labelled_set_and_stays_small() -> None:
    assert train_safety.SETS[-2:] == ("triage_eval_blind5", "triage_eval_blind6")
    assert len(train_safety.SETS) == 8
    assert safety.MODEL_PATH.stat().st_size < 2_000_000
