"""Findings the patient copies from a report, and readings written only in the text."""

from xinglin.triage.engine import assess


def test_st_elevation_on_an_ecg_report_with_chest_tightness_now_is_an_acs_flag():
    r = assess("社区医院的心电图报告写着：II、III、aVF导联ST段抬高，医生叫我马上去大医院，现在胸口还闷闷的")
    assert (r.level, [f.code for f in r.red_flags]) == (2, ["chest_pain_acs"])
    assert r.escalate


def test_an_old_report_since_normal_does_not_flag():
    r = assess("前年体检心电图说ST段抬高，后来复查都正常，这次想开点降压药")
    assert list(r.red_flags) == []


def test_a_hypothermic_temperature_written_in_the_text_is_read():
    measured = assess("老人在外面冻了一夜，测体温只有33度，手脚冰凉")
    assert "temperature=33" in measured.explanation_en
    assert measured.level == 3  # below 35 °C: level III in the vital-sign table
    assert assess("老人在外面冻了一夜，手脚冰凉").level == 4
