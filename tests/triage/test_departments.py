"""Department recommendations: the clinic a patient should register with (exact codes)."""

from __future__ import annotations

import pytest

from xinglin.triage import assess

CASES = [
    # (text, kwargs, department)
    ("高血压能吃党参吗？", {}, "03.04"),
    ("甲亢复查", {}, "03.07"),
    ("拉肚子两天了", {}, "03.02"),
    ("脑壳疼", {}, "03.03"),
    ("肚子胀", {}, "03.02"),
    ("心口疼", {}, "03.04"),
    ("喘不上气", {}, "03.01"),
    ("咳嗽两周了，有黄痰", {"age": 40}, "03.01"),
    ("胃疼，反酸烧心", {}, "03.02"),
    ("右下腹疼，一开始是肚脐周围疼", {"age": 22}, "04.01"),
    ("乳房摸到一个硬块", {"sex": "female"}, "04.01"),
    ("痔疮出血", {}, "04.01"),
    ("腰疼好几年了，腰椎间盘突出", {}, "04.03"),
    ("打篮球崴脚了，脚踝肿", {"age": 20}, "04.03"),
    ("尿频尿急尿痛", {}, "04.04"),
    ("前列腺增生，夜尿多", {"age": 70, "sex": "male"}, "04.04"),
    ("体检发现肺部结节8毫米", {}, "04.05"),
    ("被开水烫伤了手背，起了水泡", {}, "04.07"),
    ("脸上有疤痕，想去掉", {}, "04.08"),
    ("月经推迟一周", {"sex": "female"}, "05.01"),
    ("白带多，外阴瘙痒", {}, "05.01"),
    ("怀孕30周，来产检", {}, "05.02"),
    ("眼睛干涩，看久了电脑疼", {}, "10"),
    ("看东西有黑影飘", {}, "10"),
    ("耳鸣，听力下降", {}, "11"),
    ("鱼刺卡在喉咙里", {}, "11"),
    ("牙疼好几天", {}, "12"),
    ("口腔溃疡反复发作", {}, "12"),
    ("全身起红疹子，很痒", {}, "13"),
    ("脸上长痘痘", {}, "13"),
    ("头发掉得厉害", {}, "13"),
    ("最近心情很低落，什么都不想做", {}, "15"),
    ("总听到有人在说我坏话，别人都要害我", {}, "15"),
    ("乙肝大三阳复查", {}, "16"),
    ("肺结核", {}, "17"),
    ("肺癌术后化疗", {}, "19"),
    ("脑梗后遗症，想做康复训练", {}, "21"),
    ("做胃镜前想做麻醉评估", {}, "26"),
    ("带状疱疹好了以后一直神经痛", {"age": 70}, "27"),
    ("家里老人在ICU，想咨询探视", {}, "28"),
    ("想找中医调理一下体质", {}, "50"),
    ("想看中西医结合科", {}, "52"),
    ("想打HPV疫苗", {}, "01"),
    ("入职体检", {}, "01"),
    ("浑身没劲，不想吃饭", {}, "02"),
    ("糖尿病，血糖控制不好", {}, "03.07"),
    ("类风湿关节炎，手指关节肿痛", {}, "03.08"),
    ("贫血，脸色苍白，乏力", {}, "03.05"),
    ("身上经常青一块紫一块", {}, "03.05"),
    ("尿里有泡沫，腿肿", {}, "03.06"),
    ("查过敏原", {}, "03.09"),
    ("老人记性越来越差，吃好几种药", {"age": 82}, "03.10"),
    ("以前得过心梗，现在复查", {}, "03.04"),
    ("心里头发慌，手心出汗", {}, "03.04"),
]


@pytest.mark.parametrize(("text", "kwargs", "department"), CASES, ids=[c[0] for c in CASES])
def test_department(text: str, kwargs: dict, department: str) -> None:
    assert assess(text, **kwargs).department.code == department


def test_disease_names_from_icd_table() -> None:
    # Names learnt from the ICD-10 list (not in the hand lexicon) still find their clinic.
    assert assess("我有肾盂肾炎").department.code == "03.06"
    assert assess("得了青光眼").department.code == "10"
    assert assess("确诊帕金森病两年").department.code == "03.03"


def test_alternatives_are_two_distinct_other_clinics() -> None:
    result = assess("咳嗽两周了，有黄痰")
    alts = [a.department.code for a in result.alternatives]
    assert alts == ["02", "17"]
    assert result.department.code not in alts


def test_emergency_is_an_alternative_at_level_2() -> None:
    result = assess("胸口压榨样疼痛半小时，出冷汗", age=58)
    assert [result.department.code, result.alternatives[0].department.code] == ["03.04", "20"]


def test_level_1_goes_to_emergency_medicine() -> None:
    result = assess("喘不上气，嘴唇发紫", age=72)
    assert (result.department.code, result.alternatives[0].department.code) == ("20", "03.01")
