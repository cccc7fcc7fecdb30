"""Evaluate the de-identification engine against Microsoft Presidio; prints JSON.

    .venv/bin/python benchmarks/deid_eval.py [--cluener ../shared/data/cluener/train.json]
        [--icd ../shared/data/icd10-cn/icd10-beijing-clinical-v601.csv] [--notes 3000] [--no-presidio]

Evaluation corpus (built deterministically from a fixed seed, disjoint from training):
* synthetic clinical notes (Chinese, some English) from templates written here, with names whose
  given-name characters, street names, estates and districts come from pools disjoint from
  those in ``xinglin.privacy.deid.train`` (asserted below), and planted identifiers of every
  type (ID numbers with valid checksums, phones, e-mails, record and insurance numbers, dates in
  many forms, ages over 89, plates);
* the last 20% of CLUENER ``train.json`` (the tagger trains on the first 80% only), gold labels
  ``name`` -> PERSON and ``address`` -> ADDRESS;
* medical terms: a seeded sample of disease names from the ICD-10 Beijing clinical list (read
  from ../shared at run time, never copied), minus any that are in our protection lexicon,
  each set in a short clinical sentence.

Metrics
* recall per type: share of gold entities whose every character is masked (by any type: what
  matters is that nothing leaks); ``typed_recall`` additionally requires the right type.
* character precision: masked characters that lie inside a gold entity / all masked characters.
  On CLUENER only PERSON/ADDRESS predictions count (CLUENER does not label dates, phones ...).
* medical-term masking rate: share of medical terms with at least one masked character.
* MB/s: UTF-8 bytes of all documents / seconds of ``detect`` on one core (single process), one
  call per document (``mb_per_s``) and, for us, all documents through ``detect_many`` as the CLI
  does (``mb_per_s_batch``).  Timed with ``time.process_time`` (CPU seconds of this process), so
  other load on a shared machine does not distort the single-core figure.

Presidio configuration: ``presidio-analyzer`` wants a spaCy model (``en_core_web_lg``) fetched from
the internet, which this machine cannot do.  We run ``AnalyzerEngine`` with Presidio's own
``NoOpNlpEngine`` (no spaCy model, no NER) for languages ``zh`` and ``en``, and register its stock
pattern recognisers for both languages: e-mail, phone (``phonenumbers`` with regions CN, US, GB),
date/time, credit card, IP, URL, IBAN, crypto, MAC, UUID, US SSN / passport / driver licence,
medical licence.  Its NER-based PERSON/LOCATION detection is therefore unavailable (with a model
its stock recognisers still find few Chinese names).  Presidio types map to ours as PERSON->PERSON,
LOCATION->ADDRESS, PHONE_NUMBER->PHONE, EMAIL_ADDRESS->EMAIL, DATE_TIME->DATE; every other type
still counts as masked text.  Its ``tldextract`` dependency is pointed at the bundled suffix list
so it makes no network call.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from xinglin.core.identity import id_check_char
from xinglin.privacy.deid import detect, detect_many
from xinglin.privacy.deid.lexicon import medical_terms, surnames
from xinglin.privacy.deid.train import (
    COMMON_SURNAMES,
    HELD_OUT_GIVEN,
    TRAIN_DISTRICTS,
    TRAIN_ESTATES,
    TRAIN_FOREIGN_NAMES,
    TRAIN_GIVEN,
    TRAIN_ROADS,
    cluener_split,
)

SEED = 7_2024_11
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"

# --- evaluation pools: disjoint from the training pools in xinglin.privacy.deid.train -----------
EVAL_GIVEN = HELD_OUT_GIVEN  # never used by train.py (its broad pool excludes them too)
EVAL_FOREIGN = [
    "迪丽娜尔",
    "阿卜杜拉",
    "帕提古丽",
    "达瓦次仁",
    "央金卓玛",
    "乌兰图雅",
    "托马斯·穆勒",
    "伊丽莎白",
    "凯瑟琳",
    "亚历山大",
]
EVAL_ROADS = [
    "胜利路",
    "青年路",
    "文三路",
    "庆春路",
    "凤起路",
    "天目山路",
    "莫干山路",
    "秋涛路",
    "体育场路",
    "教工路",
    "黄龙路",
    "古墩路",
    "紫金港路",
    "钱江路",
    "新业路",
    "丰潭路",
    "沈塘桥街",
    "学院路",
    "劳动路",
    "中河北路",
    "梧桐路",
    "银杏大道",
    "槐荫街",
    "樱花巷",
    "竹溪路",
]
EVAL_ESTATES = [
    "晴川名邸",
    "望江家园",
    "桂花城",
    "香樟公寓",
    "御景华府",
    "橡树湾小区",
    "杨柳郡",
    "西溪诚园",
    "滨河苑",
    "云栖山庄",
]
EVAL_DISTRICTS = [
    "上城区",
    "滨江区",
    "江干区",
    "下城区",
    "吴中区",
    "姑苏区",
    "虎丘区",
    "思明区",
    "湖里区",
    "集美区",
    "岳麓区",
    "芙蓉区",
    "开福区",
]
EVAL_TOWNS = ["良渚街道", "仓前街道", "五常街道", "瓶窑镇", "径山镇", "塘栖镇", "百丈镇", "鸬鸟镇"]
EVAL_VILLAGES = ["东溪村", "前山村", "塘坞村", "后畈村", "青石村", "溪口村"]
EVAL_EN_FIRST = ["Olivia", "Liam", "Noah", "Emma", "Ava", "Lucas", "Mia", "Ethan", "Harper", "Mason"]
EVAL_EN_LAST = ["Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Moore"]
EVAL_EN_STREETS = ["Maple", "Oak", "Cedar", "Pine", "Elm", "Birch", "Willow", "Chestnut"]

EVAL_TEMPLATES_ZH = (
    "入院记录\n姓名：{P}  性别：{S}  年龄：{AGE}岁  住院号：{REC}\n身份证号：{ID}\n现住址：{A}\n"
    "联系电话：{PH}  联系人：{P2}（{KIN}）\n入院日期：{D}\n主诉：{M}{DUR}。\n"
    "现病史：患者于{D2}无明显诱因出现{M}，伴{M2}，在当地医院治疗效果不佳，遂来我院就诊。\n"
    "既往史：{EP}病史多年。\n记录医师：{P3}",
    "门诊病历  门诊号：{REC}  就诊日期：{D}\n患者{P}，{S}，{AGE}岁，医保卡号：{INS}。\n"
    "主诉：{M}{DUR}。诊断：{EP}；{M2}。处理：请{P3}主任会诊，{D2}复查。",
    "出院小结：患者{P}于{D}入院，{D2}出院，住院{DUR}。出院诊断：{M}。出院医嘱：定期复查，"
    "如有不适联系{P3}医生（电话{PH}，邮箱{EM}）。家属{P2}已知情。",
    "护理记录 {D} 患者{P}，床号12，{M}较前好转。家属{P2}陪护，联系方式{PH}。护士签名：{P3}",
    "病程记录：今日{P3}主任医师查房，{P}诉{M}。查体：{M2}。考虑{EP}，继续观察。{D}",
    "检查报告  检查号：{REC}\n姓名：{P}  影像号：{REC2}\n检查日期：{D}\n印象：{M}。报告医师：{P3}",
    "转诊单：兹有{P}（身份证{ID}），住{A}，因{M}转至上级医院。陪同人：{P2}，手机{PH}。",
    "知情同意书：患者{P}之{KIN}{P2}已详细了解{M2}风险，同意手术。签字日期：{D}。谈话医师：{P3}",
    "随访记录：{D}电话随访{P}（{PH}），患者诉{M}已缓解，{EP}控制良好，下次随访{D2}。",
    "急诊记录：{AGE_OLD}老人{P}，由家属驾车（车牌{PLATE}）送至急诊，{M}。联系人{P2} {PH}",
    "患者{P}，{AGE_OLD}，住{A}，医保号{INS}，病案号{REC}，因{EP}长期随访。",
    "体检报告 体检号：{REC} 受检者：{P} 电子邮箱：{EM} 出生日期：{D} 结论：{M}。",
    "家庭住址：{A}。户籍：{A2}。紧急联系人：{P2}，电话{PH}。",
    "{P}之子{P2}代诉：患者{DUR}前出现{M}，曾于{D}在外院就诊，诊断{EP}。",
    "检验号{REC}：{P}，{S}，标本采集时间{D}，结果：{M2}异常，已通知{P3}医生。",
)
EVAL_TEMPLATES_EN = (
    "Patient: {EN_P}, MRN: {REC}, DOB: {EN_D}. Seen by Dr. {EN_P2} on {EN_D2} for {EN_M}. "
    "Contact {EM} or {EN_PH}. Lives at {EN_A}.",
    "Discharge summary for Mrs. {EN_P}, aged {EN_AGE}, admitted {EN_D} with {EN_M}. Phone {EN_PH}.",
)
EN_MEDICAL = [
    "Parkinson's disease",
    "Down syndrome",
    "Kawasaki disease",
    "Hashimoto's thyroiditis",
    "Hodgkin lymphoma",
    "Crohn's disease",
    "Alzheimer's disease",
    "hypertension",
    "cataract",
]
EVAL_KIN = ["儿子", "女儿", "妻子", "丈夫", "侄子", "外甥女", "儿媳", "女婿"]
EVAL_DUR = ["两天", "4日", "半月", "3个月", "十余年", "6小时", "1年", "两周"]
EVAL_CLINICAL = [
    "胸痛",
    "气短",
    "反酸",
    "嗳气",
    "便秘",
    "眩晕",
    "耳鸣",
    "视物模糊",
    "言语不清",
    "肢体麻木",
    "步态不稳",
    "吞咽困难",
    "声音嘶哑",
    "咯血",
    "多饮多尿",
    "心律失常",
    "房颤",
    "心衰",
    "低钾血症",
    "高尿酸血症",
    "甲亢",
    "甲减",
    "骨质疏松",
    "带状疱疹",
    "湿疹",
    "荨麻疹",
    "银屑病",
    "慢性胃炎",
    "胆结石",
]
EVAL_EPONYMS = [
    "帕金森病",
    "唐氏综合征",
    "川崎病",
    "桥本甲状腺炎",
    "霍奇金淋巴瘤",
    "克罗恩病",
    "阿尔茨海默病",
    "库欣综合征",
    "白塞病",
    "干燥综合征",
    "梅尼埃病",
    "马凡综合征",
    "吉兰-巴雷综合征",
    "雷诺现象",
    "贝尔面瘫",
    "格雷夫斯病",
    "威尔逊病",
    "法洛四联症",
]

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _check_disjoint() -> None:
    assert not set(EVAL_GIVEN) & set(TRAIN_GIVEN), "eval given-name characters overlap training"
    assert not set(EVAL_ROADS) & set(TRAIN_ROADS)
    assert not set(EVAL_ESTATES) & set(TRAIN_ESTATES)
    assert not set(EVAL_DISTRICTS) & set(TRAIN_DISTRICTS)
    assert not set(EVAL_FOREIGN) & set(TRAIN_FOREIGN_NAMES)


# --- planted identifiers --------------------------------------------------------------------
def id_number(rng: random.Random) -> str:
    if rng.random() < 0.1:  # old 15-digit form: YYMMDD birth date
        region, yy = rng.randint(110000, 659999), rng.randint(30, 99)
        return f"{region}{yy}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    body = f"{rng.randint(110000, 659999)}{rng.randint(1925, 2022)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    check = id_check_char(body)
    return body + (check.lower() if check == "X" and rng.random() < 0.5 else check)


def phone(rng: random.Random) -> str:
    mobile = f"1{rng.choice('3456789')}{rng.randint(0, 9)}{rng.randint(0, 99999999):08d}"
    style = rng.randrange(7)
    if style == 0:
        return f"+86 {mobile}"
    if style == 1:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    if style == 2:
        return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if style == 3:
        return f"0{rng.randint(10, 999)}-{rng.randint(2000000, 89999999)}"
    if style == 4:
        return f"(0{rng.randint(10, 99)}){rng.randint(20000000, 89999999)}"
    return mobile


def email(rng: random.Random) -> str:
    user = rng.choice(["zhang", "li.na", "wangwei", "chen_88", "liu-yang", "dr.zhou", "hz2024"]) + str(
        rng.randint(1, 999)
    )
    return f"{user}@{rng.choice(['163.com', 'qq.com', 'hospital.org.cn', 'mail.zju.edu.cn', 'gmail.com'])}"


def record_number(rng: random.Random) -> str:
    return rng.choice(
        [
            f"{rng.randint(10**6, 10**9)}",
            f"ZY{rng.randint(2015, 2025)}{rng.randint(0, 99999):05d}",
            f"MZ-{rng.randint(10**5, 10**7)}",
            f"B{rng.randint(10**6, 10**8)}",
        ]
    )


def insurance_number(rng: random.Random) -> str:
    return rng.choice(
        [f"{rng.randint(10**9, 10**12)}", f"H{rng.randint(10**9, 10**11)}", f"3301{rng.randint(10**8, 10**9)}"]
    )


_CN_NUM = "〇一二三四五六七八九"


def _cn_small(n: int) -> str:
    if n < 10:
        return _CN_NUM[n]
    t, o = divmod(n, 10)
    return ("十" if t == 1 else _CN_NUM[t] + "十") + (_CN_NUM[o] if o else "")


def date_zh(rng: random.Random) -> str:
    y, m, d = rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{y}年{m}月{d}日",
            f"{y}-{m:02d}-{d:02d}",
            f"{y}/{m}/{d}",
            f"{y}.{m}.{d}",
            f"{y}{m:02d}{d:02d}",
            f"{m}月{d}日",
            f"{y}年{m}月",
            "".join(_CN_NUM[int(c)] for c in str(y)) + f"年{_cn_small(m)}月{_cn_small(d)}日",
        ]
    )


def date_en(rng: random.Random) -> str:
    y, m, d = rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [f"{MONTHS[m - 1]} {d}, {y}", f"{d} {MONTHS[m - 1][:3]} {y}", f"{m}/{d}/{y}", f"{y}-{m:02d}-{d:02d}"]
    )


def age_old(rng: random.Random) -> str:
    n = rng.randint(90, 104)
    if rng.random() < 0.3:
        return (
            "九十" + (_CN_NUM[n - 90] if n > 90 else "")
            if n < 100
            else "一百" + ("零" + _CN_NUM[n - 100] if n > 100 else "")
        ) + "岁"
    return f"{n}岁"


def plate(rng: random.Random) -> str:
    prov = rng.choice("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤川")
    letter = rng.choice("ABCDEFGHJK")
    tail = "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(4)) + str(rng.randint(0, 9))
    if rng.random() < 0.3:
        return f"{prov}{letter}·D{rng.randint(10000, 99999)}"
    return f"{prov}{letter}{tail}"


def person(rng: random.Random) -> str:
    single, compound = surnames()
    r = rng.random()
    if r < 0.03:
        return rng.choice(EVAL_FOREIGN)
    if r < 0.1:
        sur = rng.choice(compound[:30])
    elif r < 0.25:
        sur = rng.choice(sorted(single))
    else:
        sur = rng.choice(COMMON_SURNAMES)
    n = 2 if rng.random() < 0.7 else 1
    return sur + "".join(rng.choice(EVAL_GIVEN) for _ in range(n))


def address(rng: random.Random) -> str:
    provs = ["浙江省", "江苏省", "福建省", "湖南省", "广东省", "四川省", "河北省"]
    cities = ["杭州市", "苏州市", "厦门市", "长沙市", "东莞市", "绵阳市", "保定市", "宁波市", "温州市"]
    n = rng.randint(1, 300)
    style = rng.randrange(5)
    if style == 0:
        return (
            f"{rng.choice(provs)}{rng.choice(cities)}{rng.choice(EVAL_DISTRICTS)}{rng.choice(EVAL_ROADS)}{n}号"
            f"{rng.choice(EVAL_ESTATES)}{rng.randint(1, 20)}幢{rng.randint(1, 4)}单元"
            f"{rng.randint(1, 28)}0{rng.randint(1, 4)}室"
        )
    if style == 1:
        return f"{rng.choice(cities)}{rng.choice(EVAL_DISTRICTS)}{rng.choice(EVAL_ROADS)}{n}号"
    if style == 2:
        return (
            f"{rng.choice(EVAL_DISTRICTS)}{rng.choice(EVAL_TOWNS)}{rng.choice(EVAL_VILLAGES)}{rng.randint(1, 9)}组{n}号"
        )
    if style == 3:
        return (
            f"{rng.choice(EVAL_ROADS)}{n}号{rng.choice(EVAL_ESTATES)}{rng.randint(1, 20)}栋{rng.randint(101, 2604)}室"
        )
    return f"{rng.choice(provs)}{rng.choice(cities)}{rng.choice(EVAL_DISTRICTS)}{rng.choice(EVAL_TOWNS)}"


Gold = list[tuple[int, int, str]]


def _fill(rng: random.Random, slot: str) -> tuple[str, str]:
    table: dict[str, Callable[[], tuple[str, str]]] = {
        "P": lambda: (person(rng), "PERSON"),
        "A": lambda: (address(rng), "ADDRESS"),
        "ID": lambda: (id_number(rng), "ID_NUMBER"),
        "PH": lambda: (phone(rng), "PHONE"),
        "EM": lambda: (email(rng), "EMAIL"),
        "REC": lambda: (record_number(rng), "RECORD_NUMBER"),
        "INS": lambda: (insurance_number(rng), "INSURANCE_NUMBER"),
        "D": lambda: (date_zh(rng), "DATE"),
        "AGE_OLD": lambda: (age_old(rng), "AGE"),
        "PLATE": lambda: (plate(rng), "PLATE"),
        "S": lambda: (rng.choice("男女"), ""),
        "AGE": lambda: (str(rng.randint(18, 89)), ""),
        "KIN": lambda: (rng.choice(EVAL_KIN), ""),
        "DUR": lambda: (rng.choice(EVAL_DUR), ""),
        "M": lambda: (rng.choice(EVAL_CLINICAL), ""),
        "EP": lambda: (rng.choice(EVAL_EPONYMS), ""),
        "EN_P": lambda: (f"{rng.choice(EVAL_EN_FIRST)} {rng.choice(EVAL_EN_LAST)}", "PERSON"),
        "EN_D": lambda: (date_en(rng), "DATE"),
        "EN_PH": lambda: (f"+86 {phone(rng)}" if rng.random() < 0.2 else phone(rng), "PHONE"),
        "EN_M": lambda: (rng.choice(EN_MEDICAL), ""),
        "EN_AGE": lambda: (str(rng.randint(90, 104)), "AGE"),
        "EN_A": lambda: (
            f"{rng.randint(1, 9999)} {rng.choice(EVAL_EN_STREETS)} {rng.choice(['Street', 'Road', 'Avenue'])}",
            "ADDRESS",
        ),
    }
    key = slot.rstrip("0123456789")
    if key == "EN_P" or slot.startswith("EN_P"):
        key = "EN_P" if not slot.startswith("EN_PH") else "EN_PH"
    if slot.startswith("EN_D"):
        key = "EN_D"
    return table[key]()


def synth_note(rng: random.Random, template: str) -> tuple[str, Gold]:
    out: list[str] = []
    gold: Gold = []
    pos, i = 0, 0
    while i < len(template):
        if template[i] == "{":
            j = template.index("}", i)
            value, label = _fill(rng, template[i + 1 : j])
            if value.startswith("+86 +86"):
                value = value[4:]
            if label:
                gold.append((pos, pos + len(value), label))
            out.append(value)
            pos += len(value)
            i = j + 1
        else:
            out.append(template[i])
            pos += 1
            i += 1
    return "".join(out), gold


def build_corpus(n_notes: int, cluener: Path, icd: Path) -> dict[str, list]:
    _check_disjoint()
    rng = random.Random(SEED)
    notes = []
    for k in range(n_notes):
        templates = EVAL_TEMPLATES_EN if k % 10 == 9 else EVAL_TEMPLATES_ZH
        notes.append(synth_note(rng, rng.choice(templates)))
    _, held_out = cluener_split(cluener)
    clue = [(t, [(s, e, "PERSON" if tag == "PER" else "ADDRESS") for s, e, tag in spans]) for t, spans in held_out]
    lexicon = set(medical_terms())
    with icd.open(encoding="utf-8") as fh:
        names = sorted({row["name"] for row in csv.DictReader(fh)} - lexicon)
    terms = random.Random(SEED + 1).sample(names, 3000)
    carriers = ("诊断：{}。", "既往有{}病史。", "患者因{}入院治疗。", "考虑{}，建议进一步检查。")
    med = []
    for k, term in enumerate(terms):
        carrier = carriers[k % len(carriers)]
        start = carrier.index("{}")
        med.append((carrier.format(term), (start, start + len(term))))
    return {"notes": notes, "cluener": clue, "medical": med}


# --- scoring ---------------------------------------------------------------------------------
Pred = list[tuple[int, int, str]]


def score(
    corpus: dict[str, list], detector: Callable[[str], Pred], batch: Callable[[list[str]], object] | None = None
) -> dict:
    found: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # type -> [total, covered, typed]
    parts = [part for part in ("notes", "cluener", "blind") if corpus.get(part)]
    prec = {part: [0, 0] for part in parts}  # [masked chars inside gold, masked chars]
    n_bytes = 0
    elapsed = 0.0
    for part in parts:
        for text, gold in corpus[part]:
            n_bytes += len(text.encode())
            t0 = time.process_time()
            pred = detector(text)
            elapsed += time.process_time() - t0
            mask_any = bytearray(len(text))
            mask_type: dict[str, bytearray] = defaultdict(lambda: bytearray(len(text)))  # noqa: B023
            for s, e, typ in pred:
                if part == "cluener" and typ not in ("PERSON", "ADDRESS"):
                    continue
                for i in range(s, e):
                    mask_any[i] = 1
                    mask_type[typ][i] = 1
            gold_chars = bytearray(len(text))
            for s, e, typ in gold:
                for i in range(s, e):
                    gold_chars[i] = 1
                key = typ if part == "notes" else f"{typ}_{part}"
                found[key][0] += 1
                found[key][1] += all(mask_any[s:e])
                found[key][2] += all(mask_type[typ][s:e])
            prec[part][0] += sum(1 for a, g in zip(mask_any, gold_chars, strict=True) if a and g)
            prec[part][1] += sum(mask_any)
    med_total = med_hit = 0
    for text, (s, e) in corpus["medical"]:
        n_bytes += len(text.encode())
        t0 = time.process_time()
        pred = detector(text)
        elapsed += time.process_time() - t0
        med_total += 1
        med_hit += any(ps < e and pe > s for ps, pe, _ in pred)
    result: dict = {
        "recall": {k: round(v[1] / v[0], 4) for k, v in sorted(found.items())},
        "typed_recall": {k: round(v[2] / v[0], 4) for k, v in sorted(found.items())},
        "entities": {k: v[0] for k, v in sorted(found.items())},
        "char_precision": {part: round(hit / max(1, masked), 4) for part, (hit, masked) in prec.items()}
        | {"all": round(sum(h for h, _ in prec.values()) / max(1, sum(m for _, m in prec.values())), 4)},
        "medical_terms_masked": round(med_hit / med_total, 4),
        "medical_terms": med_total,
        "mb_per_s": round(n_bytes / 1e6 / elapsed, 2),
        "bytes": n_bytes,
    }
    if batch is not None:
        docs = [t for part in parts for t, _ in corpus[part]] + [t for t, _ in corpus["medical"]]
        t0 = time.process_time()
        batch(docs)
        result["mb_per_s_batch"] = round(n_bytes / 1e6 / (time.process_time() - t0), 2)
    return result


def ours(text: str) -> Pred:
    return [(e.start, e.end, e.type) for e in detect(text)]


def presidio_detector() -> Callable[[str], Pred]:
    import tldextract

    # the bundled public-suffix snapshot only: no network at run time
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        DateRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        MedicalLicenseRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsLicenseRecognizer,
        UsPassportRecognizer,
        UsSsnRecognizer,
    )

    langs = ["zh", "en"]
    nlp = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in langs])
    registry = RecognizerRegistry(supported_languages=langs)
    for lang in langs:
        for cls in (
            CreditCardRecognizer,
            CryptoRecognizer,
            DateRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            IpRecognizer,
            MacAddressRecognizer,
            MedicalLicenseRecognizer,
            UrlRecognizer,
            UsLicenseRecognizer,
            UsPassportRecognizer,
            UsSsnRecognizer,
        ):
            registry.add_recognizer(cls(supported_language=lang))
        registry.add_recognizer(PhoneRecognizer(supported_language=lang, supported_regions=("CN", "US", "GB")))
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=langs)
    type_map = {
        "PERSON": "PERSON",
        "LOCATION": "ADDRESS",
        "PHONE_NUMBER": "PHONE",
        "EMAIL_ADDRESS": "EMAIL",
        "DATE_TIME": "DATE",
    }

    def run(text: str) -> Pred:
        han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
        lang = "zh" if han * 4 >= len(text) else "en"
        results = engine.analyze(text=text, language=lang)
        return [(r.start, r.end, type_map.get(r.entity_type, r.entity_type)) for r in results]

    return run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="De-identification evaluation (prints JSON).")
    ap.add_argument("--cluener", type=Path, default=SHARED / "cluener" / "train.json")
    ap.add_argument("--icd", type=Path, default=SHARED / "icd10-cn" / "icd10-beijing-clinical-v601.csv")
    ap.add_argument("--notes", type=int, default=3000)
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument(
        "--blind",
        type=Path,
        default=ROOT / "benchmarks" / "data" / "deid_blind1.jsonl",
        help="clinical texts with gold entities written by someone who never saw the engine (figures *_blind)",
    )
    args = ap.parse_args(argv)
    corpus = build_corpus(args.notes, args.cluener, args.icd)
    if args.blind and args.blind.exists():
        rows = [json.loads(line) for line in args.blind.read_text(encoding="utf-8").splitlines() if line.strip()]
        corpus["blind"] = [(r["text"], [(e["start"], e["end"], e["type"]) for e in r["entities"]]) for r in rows]
    detect("预热 warm-up 王建国 13812345678")  # load the tagger outside the timing
    report: dict = {
        "corpus": {
            "synthetic_notes": len(corpus["notes"]),
            "cluener_held_out": len(corpus["cluener"]),
            "medical_terms": len(corpus["medical"]),
            "blind_texts": len(corpus.get("blind", [])),
            "seed": SEED,
        },
        "xinglin": score(corpus, ours, detect_many),
    }
    if not args.no_presidio:
        try:
            report["presidio"] = score(corpus, presidio_detector())
        except ImportError as exc:  # presidio is a dev-only dependency
            report["presidio"] = {"error": f"presidio-analyzer not installed: {exc}"}
    json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
