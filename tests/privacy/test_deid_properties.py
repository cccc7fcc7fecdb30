"""Property-based: identifiers planted in generated sentences never survive masking."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xinglin.core.identity import id_check_char
from xinglin.privacy.deid import mask

FILLER = st.sampled_from(
    ["患者", "诉", "腹痛三天", "，", "。", "既往高血压", "复查", "联系", "今日", "查体无殊", " ", "帕金森病", "遵医嘱"]
)


@st.composite
def id_number(draw: st.DrawFn) -> str:
    region = draw(st.integers(110000, 659999))
    y, m, d = draw(st.integers(1920, 2024)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    body = f"{region}{y}{m:02d}{d:02d}{draw(st.integers(0, 999)):03d}"
    check = id_check_char(body)
    return body + (check.lower() if draw(st.booleans()) else check)


@st.composite
def phone(draw: st.DrawFn) -> str:
    digits = f"1{draw(st.sampled_from('3456789'))}{draw(st.integers(0, 999999999)):09d}"
    style = draw(st.integers(0, 4))
    if style == 0:
        return digits
    if style == 1:
        return f"+86 {digits}"
    if style == 2:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if style == 3:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    return f"0{draw(st.integers(10, 999))}-{draw(st.integers(2000000, 89999999))}"


email = st.builds(
    lambda u, d, t: f"{u}@{d}.{t}",
    st.from_regex(r"[a-z][a-z0-9._]{0,10}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9]{1,10}", fullmatch=True),
    st.sampled_from(["com", "cn", "org", "com.cn", "edu.cn"]),
)
record = st.builds(
    lambda label, value: (label, value),
    st.sampled_from(["门诊号", "住院号", "病案号", "检验号", "影像号", "病历号", "MRN", "医保卡号", "社保卡号"]),
    st.from_regex(r"[A-Z]{0,3}[0-9]{5,12}", fullmatch=True),
)


@st.composite
def date(draw: st.DrawFn) -> str:
    y, m, d = draw(st.integers(1950, 2030)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    return draw(
        st.sampled_from(
            [f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{y}.{m}.{d}", f"{m}月{d}日", f"{y}年{m}月"]
        )
    )


plate = st.builds(
    lambda p, letter, tail: f"{p}{letter}{tail}",
    st.sampled_from("京津沪渝冀豫云辽黑湘皖鲁苏浙赣鄂桂甘晋陕吉闽贵粤川"),
    st.sampled_from("ABCDEFGHJK"),
    st.from_regex(r"[0-9]{5}|D[0-9]{5}|[A-HJ-NP-Z][0-9]{4}", fullmatch=True),
)


@st.composite
def planted(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    parts: list[str] = []
    secrets: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 5))):
        parts.append(draw(FILLER))
        kind = draw(st.sampled_from(["id", "phone", "email", "record", "date", "plate"]))
        if kind == "id":
            value = draw(id_number())
            parts.append("身份证号" + value)
        elif kind == "phone":
            value = draw(phone())
            parts.append("电话" + value)
        elif kind == "email":
            value = draw(email)
            parts.append("邮箱" + value + " ")
        elif kind == "record":
            label, value = draw(record)
            parts.append(f"{label}：{value}")
        elif kind == "date":
            value = draw(date())
            parts.append(value)
        else:
            value = draw(plate)
            parts.append("车牌" + value)
        secrets.append((kind, value))
        parts.append(draw(FILLER))
    return "".join(parts), secrets


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(planted())
def test_no_planted_identifier_survives(case: tuple[str, list[tuple[str, str]]]) -> None:
    text, secrets = case
    masked = mask(text).masked
    for _, secret in secrets:
        assert secret not in masked


@settings(max_examples=100, deadline=None)
@given(planted(), st.binary(min_size=8, max_size=32), st.integers(-400, 400))
def test_no_planted_identifier_survives_pseudonym_mode(
    case: tuple[str, list[tuple[str, str]]], key: bytes, days: int
) -> None:
    text, secrets = case
    result = mask(text, mode="pseudonym", key=key, date_shift_days=days)
    for kind, secret in secrets:
        if kind != "date":  # dates are shifted, not hidden (a month-precision date may stay the same)
            assert secret not in result.masked
    assert len(result.entities) >= len(secrets)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_offsets_are_valid(text: str) -> None:
    result = mask(text)
    last = 0
    for ent in result.entities:
        assert last <= ent.start < ent.end <= len(text)
        last = ent.end
