"""Population rules: children, infants, pregnancy, sex, the elderly."""

from __future__ import annotations

from xinglin.triage import assess


def dept(text: str, **kw) -> str:
    return assess(text, **kw).department.code


def test_children_go_to_paediatrics() -> None:
    assert dept("发烧咳嗽两天", age=5) == "07"
    assert dept("孩子5岁，发烧咳嗽两天") == "07"
    assert dept("宝宝没有发烧，就是有点流鼻涕") == "07"
    assert dept("拉肚子", age=3) == "07"


def test_children_keep_specialty_clinics() -> None:
    assert dept("孩子眼睛红，有眼屎", age=6) == "10"
    assert dept("小孩耳朵疼，晚上哭闹", age=3) == "11"
    assert dept("孩子牙疼", age=7) == "12"
    assert dept("宝宝湿疹", age=0.5) == "13"


def test_injured_children_go_to_paediatric_surgery() -> None:
    result = assess("孩子从床上摔下来，胳膊肿了", age=5)
    assert [result.department.code, result.alternatives[0].department.code] == ["08", "04.03"]
    assert result.level == 3
    assert dept("小孩疝气", age=3) == "08"


def test_burnt_child_goes_to_burns() -> None:
    assert dept("孩子被开水烫伤胳膊", age=3) == "04.07"


def test_adult_same_complaint_is_not_paediatrics() -> None:
    assert dept("发烧咳嗽两天", age=30) == "03.01"


def test_age_is_read_from_text() -> None:
    assert assess("宝宝两个月，发烧").level == 2
    assert assess("my baby is 6 weeks old and has a fever of 38.3").level == 2
    assert assess("宝宝发烧3天了").red_flags == ()  # "3天" is a duration, not an age


def test_infant_fever_from_measured_temperature() -> None:
    result = assess("哭闹", age=0.2, vitals={"temperature": 38.2})
    assert {f.code for f in result.red_flags} == {"infant_fever"}


def test_fever_after_three_months_is_not_infant_fever() -> None:
    result = assess("发烧", age=0.5)
    assert result.red_flags == ()
    assert (result.department.code, result.level) == ("07", 3)


def test_pregnancy_goes_to_obstetrics() -> None:
    assert dept("感冒发烧", pregnant=True, sex="female", age=28) == "05.02"
    assert dept("孕期能吃感冒药吗") == "05.02"
    result = assess("孕妇，牙疼")
    assert [result.department.code, result.alternatives[0].department.code] == ["12", "05.02"]


def test_pregnancy_ignored_for_men() -> None:
    result = assess("肚子疼，有点出血", pregnant=True, sex="male")
    assert "pregnancy_bleeding_pain" not in {f.code for f in result.red_flags}


def test_male_is_not_sent_to_gynaecology() -> None:
    assert dept("下腹疼", sex="male") != "05.01"
    assert dept("小腹痛", sex="female") == "05.01"


def test_elderly_get_geriatrics_as_an_alternative() -> None:
    result = assess("头晕", age=80)
    assert result.department.code == "03.03"
    assert "03.10" in [a.department.code for a in result.alternatives]
