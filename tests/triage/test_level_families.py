"""General level rules added after blind set 8, where most level misses were a new acute problem graded 4
(seen within hours by a nurse: visible blood in the urine, a limp after a blow, a chip in the eye, vomiting with
loose stools in a toddler, a rash days into a new drug, a measured high or low blood sugar ...), level 3 where a
nurse says 2 (fever with a non-blanching rash, paranoid ideas with a weapon), and level 1 given for a red flag
with consciousness that is only dulled. Each test sentence is new wording of a family, not an evaluation case."""

from __future__ import annotations

import pytest

from xinglin.triage import assess


def outcome(text: str, **kwargs: object) -> tuple[int, list[str]]:
    result = assess(text, **kwargs)  # type: ignore[arg-type]
    return result.level, sorted(f.code for f in result.red_flags)


@pytest.mark.parametrize(
    ("text", "kwargs", "level"),
    [
        # a new acute problem that should be seen the same day: level 3
        ("孩子两岁，早上吐了两回，中午又拉了一次稀的", {"age": 2}, 3),
        ("骑自行车被汽车撞了，小腿擦伤，现在走路一瘸一拐", {"age": 30}, 3),
        ("早上在家量了血压165/105，有点头晕，以前没查出过高血压", {"age": 55}, 3),
        ("我爸这几天小便是红的，像洗肉水，不痛不痒", {"age": 68}, 3),
        ("尿里有点红，尿的时候疼", {"age": 30}, 3),
        ("外婆打了胰岛素没吃饭，刚才手抖出汗，测血糖3.4，喝了糖水好了", {"age": 78}, 3),
        ("最近总口渴，测血糖17.2", {"age": 45}, 3),
        ("砂轮打磨的时候有个铁渣崩到右眼里了，一直流泪", {"age": 35}, 3),
        ("眼睛被树枝划了一下，现在怕光流泪", {"age": 40}, 3),
        ("吃了五天卡马西平，身上起了好多红疹子", {"age": 40}, 3),
        ("查出右边卵巢囊肿4厘米，今天右下腹一阵阵地疼", {"age": 30, "sex": "female"}, 3),
        ("一边肚子上起了一串水泡，火辣辣地疼", {"age": 66}, 3),
        ("孩子把一颗珠子塞进右边鼻孔里了，呼吸正常", {"age": 4}, 3),
        ("我爸75岁，咳嗽三天，低烧37.6，吃饭还行", {"age": 75}, 3),
        ("咳嗽一个多月了，夜里出汗，瘦了六斤", {"age": 40}, 3),
        ("宝宝7个月，从床上掉下来磕到头了，哭了一会", {"age": 0.6}, 3),
        ("他老说有人在监视他，别的还好", {"age": 30}, 3),
        # a whole-year age of 0 gives way to the months in the text: 4 months is not "under 3 months"
        ("宝宝4个多月，发烧38.2，精神好", {"age": 0}, 3),
        # ... while minor, stable or administrative questions stay level 4
        ("血压165/105，没有任何不舒服，想问要不要吃药", {"age": 55}, 4),
        ("卵巢囊肿复查，不疼", {"age": 30, "sex": "female"}, 4),
        ("带状疱疹好了以后还是疼", {"age": 66}, 4),
        ("感冒两天，流鼻涕，不发烧", {"age": 30}, 4),
        ("想续开降压药", {"age": 70}, 4),
        ("情绪低落半年了，不想死，就是想找医生聊聊", {"age": 30}, 4),
        ("打呼噜很响，睡着了憋气停一会儿，白天犯困", {"age": 50}, 4),
        ("老公说我晚上睡觉会憋气，打呼很响", {"age": 35}, 4),
        # a named flu outbreak with fever is an adult fever (level 3), not a poisoning ...
        ("宿舍好几个人都得了甲流，我也发烧38.5，浑身疼", {"age": 20}, 3),
    ],
)
def test_level(text: str, kwargs: dict[str, object], level: int) -> None:
    assert outcome(text, **kwargs)[0] == level


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        # danger to others, meningism, a non-blanching rash with fever, hyperpyrexia in a young child: level 2
        ("我哥好几天没睡觉，说有人在跟踪他要害他，今天拿着剪刀不让家里人靠近", {"age": 30}, (2, [])),
        ("孩子4岁，发烧39度，腿上起了些紫红色的点，按了不褪色", {"age": 4}, (2, [])),
        ("发烧头痛，低头的时候下巴碰不到胸口", {"age": 20}, (2, ["thunderclap_headache"])),
        ("孩子3岁，烧到40.3度，手脚冰凉", {"age": 3, "vitals": {"temperature": 40.3}}, (2, ["abnormal_vitals"])),
        ("发现桌上空了一整板安眠药，还有一张字条写着对不起", {"age": 20}, (2, ["suicidal_intent"])),
        # ... but a fuel source with a household ill together still is, whatever they think it is
        ("屋里烧着炭盆取暖，全家都头疼恶心，还以为是流感", {"age": 35}, (2, ["poisoning"])),
        # a red flag with consciousness only dulled (drowsy but rousable, talking nonsense, listless): level 2
        ("喝了一斤白酒，叫他能嗯一声，说胡话，吐了一地", {"age": 40}, (2, ["altered_consciousness", "poisoning"])),
        ("宝宝两个月大，发烧38.6，人蔫了", {"age": 0.17}, (2, ["altered_consciousness", "infant_fever"])),
        # ... and hard to rouse, or fits without coming round in between: level 1
        ("家里烧炭取暖，老人叫半天才哼一声，我们都头疼", {"age": 80}, (1, ["altered_consciousness", "poisoning"])),
        (
            "孩子刚才抽了一次，停了以后一直没缓过来，又抽起来了",
            {"age": 3},
            (1, ["altered_consciousness", "seizure_ongoing"]),
        ),
    ],
)
def test_level_and_flags(text: str, kwargs: dict[str, object], expected: tuple[int, list[str]]) -> None:
    assert outcome(text, **kwargs) == expected


def test_shock_index_is_an_abnormal_vital_sign() -> None:
    """Heart rate at or above a systolic pressure under 100 (shock index >= 1) is flagged even though each value
    alone is only level 3 in the published table."""
    result = assess("拉了很多黑便，头晕", age=60, vitals={"heart_rate": 110, "systolic_bp": 95})
    vital_flags = [f for f in result.red_flags if f.code == "abnormal_vitals"]
    assert vital_flags and "shock index" in vital_flags[0].evidence
    assert result.level <= 2 and result.escalate
    calm = assess("膝盖扭了一下", age=30, vitals={"heart_rate": 80, "systolic_bp": 120})
    assert "abnormal_vitals" not in {f.code for f in calm.red_flags}
