"""General families added after blind set 9: danger words typed in pinyin or in regional wording (闽南, 粤语 ...),
danger mentioned in passing after a booking or refill question, what one red flag implies (an overdose regretted
or far beyond any dose is self-harm; a convulsion in progress means consciousness is lost; clutching the chest and
collapsing without breath is an arrest), a dangerous diagnosis named in a report with breathlessness now, and
adrenaline already given for an allergy. Each sentence is new wording of a family, not an evaluation case."""

from __future__ import annotations

import pytest

from xinglin.triage import assess
from xinglin.triage.knowledge import load, pinyin_key


def outcome(text: str, age: float) -> tuple[int, list[str]]:
    result = assess(text, age=age)
    return result.level, sorted(f.code for f in result.red_flags)


@pytest.mark.parametrize(
    ("text", "age", "level", "flags"),
    [
        # pinyin, with or without tone marks
        ("zhen de bu xiang huo le, yao ping dou zhun bei hao le", 30, 2, ["suicidal_intent"]),
        ("Wǒ xiǎng sǐ, huó zhe méi yì si", 25, 2, ["suicidal_intent"]),
        ("wo ba zui wai le, shuo hua bu qing chu", 70, 2, ["stroke"]),
        ("chuan bu shang qi, zui chun fa zi", 60, 1, ["breathing_difficulty"]),
        ("xiong kou teng de li hai, chu le hen duo leng han", 55, 2, ["chest_pain_acs"]),
        ("ye ye jiao bu xing le", 80, 1, ["altered_consciousness"]),
        ("wo ba he le nong yao", 60, 2, ["poisoning"]),
        ("tou tong yu lie, tu ran de", 45, 2, ["thunderclap_headache"]),
        ("tu xue le, tu le hao duo", 50, 2, ["hematemesis"]),
        ("huai yun 8 zhou, jian hong le, du zi teng", 28, 2, ["pregnancy_bleeding_pain"]),
        ("xiao du ye jian dao yan jing li le", 30, 2, ["chemical_eye_injury"]),
        ("hai zi chi hua sheng ye zhu le, chuan bu shang qi", 2, 1, ["airway_foreign_body", "breathing_difficulty"]),
        # pinyin that names no danger, and English that only looks like pinyin, stay as they were
        ("wo de ya teng, xiang gua hao kou qiang ke", 30, 4, []),
        ("I paid the fare, my chest hurts", 40, 3, []),
        # 闽南 / 台语
        ("恁爸毋想活矣", 40, 2, ["suicidal_intent"]),
        ("阿公讲话讲袂清楚 倒手袂振动", 78, 2, ["stroke"]),
        ("心肝头闷闷痛 冒冷汗", 60, 2, ["chest_pain_acs"]),
        ("阿公叫袂醒", 85, 1, ["altered_consciousness"]),
        ("手割到了 血流袂停", 30, 2, ["heavy_bleeding"]),
        # an overdose regretted, or far beyond any dose, is self-harm; a mistake is poisoning only
        ("她一口气吞了半瓶安眠药 现在有点后悔", 30, 2, ["poisoning", "suicidal_intent"]),
        ("took 40 tylenol an hour ago, kind of regret it now", 20, 2, ["poisoning", "suicidal_intent"]),
        ("我吃了两片布洛芬 有点后悔 胃不太舒服", 30, 4, []),
        ("孩子不小心把奶奶的一整瓶降压药吃了", 3, 2, ["poisoning"]),
        ("奶奶记错了 把一整板降压药都吃了", 80, 2, ["poisoning"]),
        # arrest: a hand to the chest, a collapse, no breath
        (
            "我爸刚才打牌的时候抓着胸口栽倒了 现在没呼吸了",
            60,
            1,
            ["altered_consciousness", "breathing_difficulty", "chest_pain_acs"],
        ),
        ("he collapsed and is not breathing", 60, 1, ["altered_consciousness", "breathing_difficulty"]),
        # a convulsion in progress: consciousness is lost
        ("我儿子正在抽搐 口吐白沫", 6, 1, ["altered_consciousness", "seizure_ongoing"]),
        # a known allergy, an exposure, mouth or throat signs; adrenaline already used
        ("对虾过敏 刚才吃到了一只 嘴巴麻 喉咙痒 应该问题不大吧", 30, 2, ["anaphylaxis"]),
        ("she used her epipen after eating cashews, her mouth is tingling", 16, 1, ["anaphylaxis"]),
        ("想问要不要备个肾上腺素笔 去年被蜂蜇过", 30, 4, []),
        # a dangerous diagnosis in a report, with breathlessness now; not a past one
        ("医生说我有肺栓塞 这两天走路有点气短", 50, 2, ["breathing_difficulty"]),
        ("以前得过肺栓塞 现在吃着利伐沙班 没什么不舒服 来复查", 50, 4, []),
        ("气胸又复发了，有点胸闷", 25, 3, []),
        # chest pressure for minutes today, told in passing after a refill or booking, even if gone now
        ("续开降压药 顺便说一下今天早上胸口压着疼了半小时 现在好了", 65, 2, ["chest_pain_acs"]),
        ("约了下周的体检 对了 昨晚胸口闷痛了二十分钟 出了点汗", 60, 2, ["chest_pain_acs"]),
        # same-day problems without a red flag
        ("怀孕34周 宝宝今天好像没怎么动", 30, 3, []),
        ("外公这几天腿肿 晚上要垫两个枕头才睡得着", 80, 3, []),
    ],
)
def test_blind9_family(text: str, age: float, level: int, flags: list[str]) -> None:
    assert outcome(text, age) == (level, flags)


def test_seizure_that_has_stopped_does_not_imply_lost_consciousness() -> None:
    _, flags = outcome("孩子昨天发烧抽了一下 一分钟就好了 现在精神很好", 2)
    assert "altered_consciousness" not in flags


def test_pinyin_and_dialect_tables_load() -> None:
    kb = load()
    assert kb.pinyin is not None and kb.pinyin.search("wo xiang si le")
    assert kb.pinyin_words[pinyin_key("xiang si le")] == "想死了"
    assert pinyin_key("Xiang-si3 le") == "xiangsile"
    # single characters (variant spellings) are replaced before longer wordings
    singles = [i for i, (w, _) in enumerate(kb.dialect) if len(w) == 1]
    assert singles == list(range(len(singles)))
    # two syllables must be written apart: "fare" is not "fa re"
    assert kb.pinyin.search("turan") is None
