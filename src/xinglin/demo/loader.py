"""Loads a demo hospital into a tenant: directory, schedules, synthetic patients and their records.

All data goes through the repository as FHIR transaction bundles (validated, indexed and audited like any
other write). The directory (hospital, departments, clinics, practitioners, roles, schedules, slots) is one
transaction; patients follow in chunks of `CHUNK` with all their records, one transaction per chunk.

Idempotent and resumable: when the hospital Organization (identifier `https://xinglin.dev/demo|hospital`)
exists the directory is not loaded again, and only patients whose medical-record number is missing are
loaded (none, after a complete run: a second run with the same arguments writes nothing and just prints the
login details; after an interrupted run it finishes the job). Every patient draws from its own random stream
(seed + index), so a resumed run produces the same people.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from xinglin.core.config import Settings
from xinglin.core.errors import Conflict, NotFound
from xinglin.core.identity import id_check_char
from xinglin.security.principal import system_principal
from xinglin.store import bundles
from xinglin.store.db import analyze
from xinglin.store.repository import Repository, Store
from xinglin.tenancy import service as tenancy

CHUNK = 25  # patients per transaction

# --- code systems -----------------------------------------------------------------------------------

DEMO_SYSTEM = "https://xinglin.dev/demo"
DEPARTMENT_SYSTEM = "https://xinglin.dev/demo/department"
CLINIC_SYSTEM = "https://xinglin.dev/demo/clinic"
PRACTITIONER_SYSTEM = "https://xinglin.dev/demo/practitioner"
SCHEDULE_SYSTEM = "https://xinglin.dev/demo/schedule"
MRN_SYSTEM = "https://xinglin.dev/demo/mrn"
ID_NUMBER_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # 居民身份证号码
ZLKM = "https://xinglin.dev/CodeSystem/zlkm"  # 诊疗科目
TAG = {
    "system": "https://xinglin.dev/tags",
    "code": "synthetic",
    "display": "合成演示数据 synthetic demo data",
}
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ATC = "http://www.whocc.no/atc"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

HOSPITAL_NAME = ("杏林示范医院", "Xinglin Demo Hospital")

# --- the directory ----------------------------------------------------------------------------------

# 诊疗科目 code, display (Chinese), English, practitioners, clinic floor
DEPARTMENTS: tuple[tuple[str, str, str, int, str], ...] = (
    ("02", "全科医疗科", "General Practice", 1, "门诊楼1层"),
    ("03.01", "呼吸内科", "Respiratory Medicine", 2, "门诊楼2层"),
    ("03.02", "消化内科", "Gastroenterology", 2, "门诊楼2层"),
    ("03.03", "神经内科", "Neurology", 2, "门诊楼3层"),
    ("03.04", "心血管内科", "Cardiology", 3, "门诊楼3层"),
    ("03.05", "血液内科", "Haematology", 1, "门诊楼3层"),
    ("03.06", "肾病学科", "Nephrology", 1, "门诊楼4层"),
    ("03.07", "内分泌科", "Endocrinology", 2, "门诊楼4层"),
    ("04.01", "普通外科", "General Surgery", 1, "门诊楼5层"),
    ("04.03", "骨科", "Orthopaedics", 2, "门诊楼5层"),
    ("05.01", "妇科", "Gynaecology", 2, "门诊楼6层"),
    ("05.02", "产科", "Obstetrics", 1, "门诊楼6层"),
    ("07", "儿科", "Paediatrics", 2, "门诊楼1层"),
    ("10", "眼科", "Ophthalmology", 1, "门诊楼7层"),
    ("11", "耳鼻咽喉科", "Otorhinolaryngology", 1, "门诊楼7层"),
    ("12", "口腔科", "Stomatology", 1, "门诊楼7层"),
    ("13", "皮肤科", "Dermatology", 1, "门诊楼8层"),
    ("15", "精神科", "Psychiatry", 1, "门诊楼8层"),
    ("20", "急诊医学科", "Emergency Medicine", 2, "急诊楼1层"),
    ("50", "中医科", "Traditional Chinese Medicine", 1, "门诊楼8层"),
)
DEPT_NAMES = {code: zh for code, zh, *_ in DEPARTMENTS}
TITLES = ("主任医师", "副主任医师", "主治医师", "住院医师")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN_MALE = "伟强磊军洋勇杰涛明超华建国志鹏浩宇俊博文斌辉刚健峰凯晨昊然轩睿泽"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞玲婷雪慧莹颖琳晶欣怡佳月萍红燕丹倩璐瑶琪蕾悦"

# province, city, district, region code (GB/T 2260), streets
REGIONS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("北京市", "北京市", "朝阳区", "110105", ("建国路", "朝阳北路", "望京街")),
    ("北京市", "北京市", "海淀区", "110108", ("中关村大街", "学院路", "西三环北路")),
    ("上海市", "上海市", "浦东新区", "310115", ("世纪大道", "张杨路", "浦东南路")),
    ("上海市", "上海市", "徐汇区", "310104", ("漕溪北路", "肇嘉浜路", "宜山路")),
    ("天津市", "天津市", "和平区", "120101", ("南京路", "解放北路", "成都道")),
    ("重庆市", "重庆市", "渝中区", "500103", ("解放碑步行街", "中山一路", "民生路")),
    ("广东省", "广州市", "天河区", "440106", ("天河路", "体育西路", "黄埔大道")),
    ("广东省", "深圳市", "南山区", "440305", ("深南大道", "科技园路", "南海大道")),
    ("浙江省", "杭州市", "西湖区", "330106", ("文三路", "天目山路", "学院路")),
    ("江苏省", "南京市", "鼓楼区", "320106", ("中山北路", "湖南路", "北京西路")),
    ("四川省", "成都市", "武侯区", "510107", ("人民南路", "科华北路", "武侯祠大街")),
    ("湖北省", "武汉市", "武昌区", "420106", ("中南路", "武珞路", "中北路")),
    ("陕西省", "西安市", "雁塔区", "610113", ("长安南路", "小寨东路", "高新路")),
    ("山东省", "济南市", "历下区", "370102", ("泉城路", "解放路", "经十路")),
    ("河南省", "郑州市", "金水区", "410105", ("花园路", "农业路", "经三路")),
    ("湖南省", "长沙市", "岳麓区", "430104", ("麓山南路", "枫林一路", "银盆南路")),
    ("福建省", "厦门市", "思明区", "350203", ("中山路", "厦禾路", "湖滨南路")),
    ("辽宁省", "沈阳市", "和平区", "210102", ("中山路", "南京北街", "太原北街")),
    ("云南省", "昆明市", "五华区", "530102", ("东风西路", "人民中路", "西昌路")),
    ("黑龙江省", "哈尔滨市", "南岗区", "230103", ("西大直街", "红军街", "学府路")),
)

# --- measurements -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One quantity we measure. Ranges and normal values may differ by sex: (male, female)."""

    code: str
    loinc_display: str
    zh: str
    ucum: str
    unit: str
    low: tuple[float, float]
    high: tuple[float, float]
    mean: tuple[float, float]
    sd: float
    decimals: int
    vital: bool = False


def _pair(value) -> tuple[float, float]:
    return value if isinstance(value, tuple) else (value, value)


def _m(code, display, zh, ucum, unit, low, high, mean, sd, decimals, vital=False) -> Measure:
    return Measure(code, display, zh, ucum, unit, _pair(low), _pair(high), _pair(mean), sd, decimals, vital)


MEASURES: dict[str, Measure] = {
    "HR": _m("8867-4", "Heart rate", "心率", "/min", "次/分", 60, 100, 76, 7, 0, True),
    "SBP": _m("8480-6", "Systolic blood pressure", "收缩压", "mm[Hg]", "mmHg", 90, 139, 118, 9, 0, True),
    "DBP": _m("8462-4", "Diastolic blood pressure", "舒张压", "mm[Hg]", "mmHg", 60, 89, 75, 6, 0, True),
    "TEMP": _m("8310-5", "Body temperature", "体温", "Cel", "℃", 36.1, 37.2, 36.6, 0.2, 1, True),
    # Chinese laboratories report molar units; these are the LOINC codes of the molar properties.
    "GLU": _m(
        "14749-6", "Glucose [Moles/volume] in Serum or Plasma", "空腹血糖", "mmol/L", "mmol/L",
        3.9, 6.1, 5.0, 0.45, 1,
    ),
    "HBA1C": _m(
        "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "糖化血红蛋白", "%", "%",
        4.0, 6.0, 5.3, 0.3, 1,
    ),
    "CREA": _m(
        "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "肌酐", "umol/L", "μmol/L",
        (57, 41), (111, 81), (82, 61), 9, 0,
    ),
    "CHOL": _m(
        "14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "总胆固醇", "mmol/L", "mmol/L",
        2.8, 5.2, 4.4, 0.4, 2,
    ),
    "TG": _m(
        "14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "甘油三酯", "mmol/L", "mmol/L",
        0.45, 1.7, 1.1, 0.25, 2,
    ),
    "HGB": _m(
        "718-7", "Hemoglobin [Mass/volume] in Blood", "血红蛋白", "g/L", "g/L",
        (130, 115), (175, 150), (146, 128), 7, 0,
    ),
    "WBC": _m(
        "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "白细胞计数", "10*9/L", "×10^9/L",
        3.5, 9.5, 6.2, 1.1, 1,
    ),
    "ALT": _m(
        "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        "丙氨酸氨基转移酶", "U/L", "U/L", (9, 7), (50, 40), (26, 20), 6, 0,
    ),
    "K": _m(
        "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "钾", "mmol/L", "mmol/L",
        3.5, 5.3, 4.2, 0.3, 1,
    ),
    "TSH": _m(
        "3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "促甲状腺激素", "m[IU]/L", "mIU/L",
        0.27, 4.2, 1.8, 0.5, 2,
    ),
}  # fmt: skip
# Children (under 15): adult vital-sign ranges do not apply.
CHILD_VITALS = {
    "HR": ((70, 120), 96, 9),
    "SBP": ((80, 120), 102, 7),
    "DBP": ((50, 80), 63, 5),
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional", "血压")

# --- medicines --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drug:
    name: str  # Chinese name with strength, as printed on a prescription
    atc: str | None
    text: str  # dosage instruction in Chinese
    per_day: int | None  # None: as needed
    dose: float
    unit: str
    route: str
    days: int


DRUGS: dict[str, Drug] = {
    d.name: d
    for d in (
        Drug("氨氯地平片 5mg", "C08CA01", "口服，每日1次，每次1片（5mg）", 1, 1, "片", "口服", 30),
        Drug("缬沙坦胶囊 80mg", "C09CA03", "口服，每日1次，每次1粒（80mg）", 1, 1, "粒", "口服", 30),
        Drug("阿司匹林肠溶片 100mg", "B01AC06", "口服，每日1次，每次1片，餐前服用", 1, 1, "片", "口服", 30),
        Drug("阿托伐他汀钙片 20mg", "C10AA05", "口服，每日1次，每次1片，睡前服用", 1, 1, "片", "口服", 30),
        Drug("琥珀酸美托洛尔缓释片 47.5mg", "C07AB02", "口服，每日1次，每次1片", 1, 1, "片", "口服", 30),
        Drug("利伐沙班片 20mg", "B01AF01", "口服，每日1次，每次1片，随晚餐服用", 1, 1, "片", "口服", 30),
        Drug("二甲双胍片 0.5g", "A10BA02", "口服，每日2次，每次1片（0.5g），随餐服用", 2, 1, "片", "口服", 30),
        Drug("格列美脲片 2mg", "A10BB12", "口服，每日1次，每次1片，早餐前服用", 1, 1, "片", "口服", 30),
        Drug("甲巯咪唑片 10mg", "H03BB02", "口服，每日3次，每次1片", 3, 1, "片", "口服", 30),
        Drug(
            "对乙酰氨基酚片 0.5g",
            "N02BE01",
            "口服，发热（≥38.5℃）时服用，每次1片，间隔不少于4小时，每日不超过4次",
            None,
            1,
            "片",
            "口服",
            3,
        ),
        Drug("阿莫西林胶囊 0.5g", "J01CA04", "口服，每日3次，每次1粒，疗程7天", 3, 1, "粒", "口服", 7),
        Drug("阿莫西林颗粒 0.125g", "J01CA04", "温水冲服，每日3次，每次2袋，疗程5天", 3, 2, "袋", "口服", 5),
        Drug("左氧氟沙星片 0.5g", "J01MA12", "口服，每日1次，每次1片，疗程7天", 1, 1, "片", "口服", 7),
        Drug("噻托溴铵吸入粉雾剂 18μg", "R03BB04", "吸入，每日1次，每次1粒", 1, 1, "粒", "吸入", 30),
        Drug(
            "奥美拉唑肠溶胶囊 20mg",
            "A02BC01",
            "口服，每日2次，每次1粒，餐前半小时服用",
            2,
            1,
            "粒",
            "口服",
            14,
        ),
        Drug("布洛芬缓释胶囊 0.3g", "M01AE01", "口服，每日2次，每次1粒，疼痛时服用", 2, 1, "粒", "口服", 5),
        Drug("琥珀酸亚铁片 0.1g", "B03AA06", "口服，每日3次，每次1片，饭后服用", 3, 1, "片", "口服", 30),
        Drug("塞来昔布胶囊 0.2g", "M01AH01", "口服，每日1次，每次1粒", 1, 1, "粒", "口服", 14),
        Drug("熊去氧胆酸胶囊 250mg", "A05AA02", "口服，每日2次，每次1粒", 2, 1, "粒", "口服", 30),
        Drug("叶酸片 0.4mg", "B03BB01", "口服，每日1次，每次1片", 1, 1, "片", "口服", 30),
        Drug(
            "甲硝唑阴道泡腾片 0.2g",
            "G01AF01",
            "阴道给药，每晚1次，每次1片，疗程7天",
            1,
            1,
            "片",
            "阴道给药",
            7,
        ),
        Drug("妥布霉素滴眼液 0.3%", "S01AA12", "滴眼，每日4次，每次1滴", 4, 1, "滴", "滴眼", 7),
        Drug("氯雷他定片 10mg", "R06AX13", "口服，每日1次，每次1片", 1, 1, "片", "口服", 14),
        Drug("糠酸莫米松鼻喷雾剂 50μg", "R01AD09", "喷鼻，每日1次，每侧鼻孔2喷", 1, 2, "喷", "喷鼻", 30),
        Drug("丁酸氢化可的松乳膏 0.1%", "D07AB02", "外用，每日2次，薄涂患处", 2, 1, "次", "外用", 7),
        Drug("舍曲林片 50mg", "N06AB06", "口服，每日1次，每次1片，早餐后服用", 1, 1, "片", "口服", 30),
        Drug("蒙脱石散 3g", "A07BC05", "温水冲服，每日3次，每次半袋", 3, 0.5, "袋", "口服", 3),
        Drug("复方α-酮酸片 0.63g", None, "口服，每日3次，每次4片，用餐期间服用", 3, 4, "片", "口服", 30),
        Drug("枣仁安神胶囊 0.45g", None, "口服，每日1次，每次5粒，临睡前服用", 1, 5, "粒", "口服", 14),
    )
}

# --- diagnoses --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    code: str  # ICD-10
    zh: str
    en: str
    dept: str
    chronic: bool
    weight: float
    ages: tuple[int, int]
    sex: str | None
    abnormal: dict[str, tuple[float, float]] = field(default_factory=dict)  # measure -> (mean, sd)
    labs: tuple[str, ...] = ()  # measured at a visit for this diagnosis (besides the abnormal ones)
    drugs: tuple[str, ...] = ()
    worsens: bool = False


def _dx(code, zh, en, dept, chronic, weight, ages, sex=None, abnormal=None, labs=(), drugs=(), worsens=False):
    return Diagnosis(code, zh, en, dept, chronic, weight, ages, sex, abnormal or {}, labs, drugs, worsens)


DIAGNOSES: tuple[Diagnosis, ...] = (
    _dx("I10", "高血压", "Essential hypertension", "03.04", True, 10, (35, 95),
        abnormal={"SBP": (158, 9), "DBP": (96, 5)}, labs=("K", "CREA"),
        drugs=("氨氯地平片 5mg", "缬沙坦胶囊 80mg")),
    _dx("I25.1", "冠状动脉粥样硬化性心脏病", "Atherosclerotic heart disease", "03.04", True, 4, (45, 95),
        abnormal={"CHOL": (6.1, 0.5)}, drugs=("阿司匹林肠溶片 100mg", "阿托伐他汀钙片 20mg")),
    _dx("I48.9", "心房颤动", "Atrial fibrillation, unspecified", "03.04", True, 2, (55, 95),
        abnormal={"HR": (108, 8)}, drugs=("琥珀酸美托洛尔缓释片 47.5mg", "利伐沙班片 20mg")),
    _dx("E11.9", "2型糖尿病", "Type 2 diabetes mellitus without complications", "03.07", True, 9, (30, 95),
        abnormal={"GLU": (9.3, 1.2), "HBA1C": (8.4, 0.8)}, labs=("CREA",),
        drugs=("二甲双胍片 0.5g", "格列美脲片 2mg")),
    _dx("E78.5", "高脂血症", "Hyperlipidaemia, unspecified", "03.07", True, 5, (30, 95),
        abnormal={"CHOL": (6.5, 0.5), "TG": (2.7, 0.5)}, labs=("ALT",), drugs=("阿托伐他汀钙片 20mg",)),
    _dx("E05.9", "甲状腺功能亢进症", "Thyrotoxicosis, unspecified", "03.07", True, 2, (18, 65),
        abnormal={"TSH": (0.05, 0.02), "HR": (104, 7)}, drugs=("甲巯咪唑片 10mg",)),
    _dx("J06.9", "急性上呼吸道感染", "Acute upper respiratory infection", "03.01", False, 8, (1, 95),
        abnormal={"TEMP": (37.9, 0.4)}, drugs=("对乙酰氨基酚片 0.5g",)),
    _dx("J18.9", "肺炎", "Pneumonia, unspecified", "03.01", False, 2, (15, 95),
        abnormal={"TEMP": (38.6, 0.4), "WBC": (13.8, 1.8)}, drugs=("左氧氟沙星片 0.5g",)),
    _dx("J44.9", "慢性阻塞性肺疾病", "Chronic obstructive pulmonary disease", "03.01", True, 2, (50, 95),
        labs=("WBC",), drugs=("噻托溴铵吸入粉雾剂 18μg",)),
    _dx("K29.5", "慢性胃炎", "Chronic gastritis, unspecified", "03.02", True, 5, (18, 95),
        labs=("HGB",), drugs=("奥美拉唑肠溶胶囊 20mg",)),
    _dx("K76.0", "脂肪肝", "Fatty liver", "03.02", True, 3, (25, 80),
        abnormal={"ALT": (74, 12)}, labs=("TG",)),
    _dx("G43.9", "偏头痛", "Migraine, unspecified", "03.03", False, 3, (15, 60),
        drugs=("布洛芬缓释胶囊 0.3g",)),
    _dx("I63.9", "脑梗死", "Cerebral infarction, unspecified", "03.03", True, 2, (50, 95),
        abnormal={"SBP": (150, 9)}, labs=("CHOL", "GLU"),
        drugs=("阿司匹林肠溶片 100mg", "阿托伐他汀钙片 20mg")),
    _dx("D50.9", "缺铁性贫血", "Iron deficiency anaemia, unspecified", "03.05", True, 2, (15, 70), "female",
        abnormal={"HGB": (93, 7)}, drugs=("琥珀酸亚铁片 0.1g",)),
    _dx("N18.9", "慢性肾脏病", "Chronic kidney disease, unspecified", "03.06", True, 2, (40, 95),
        abnormal={"CREA": (185, 30), "K": (5.2, 0.2)}, labs=("HGB",), drugs=("复方α-酮酸片 0.63g",),
        worsens=True),
    _dx("N39.0", "泌尿道感染", "Urinary tract infection, site not specified", "03.06", False, 2, (18, 95),
        abnormal={"WBC": (11.2, 1.2)}, drugs=("左氧氟沙星片 0.5g",)),
    _dx("K80.2", "胆囊结石", "Calculus of gallbladder without cholecystitis", "04.01", True, 2, (30, 85),
        labs=("ALT",), drugs=("熊去氧胆酸胶囊 250mg",)),
    _dx("M17.9", "膝关节骨关节炎", "Gonarthrosis, unspecified", "04.03", True, 3, (45, 95),
        drugs=("塞来昔布胶囊 0.2g",)),
    _dx("M54.5", "腰痛", "Low back pain", "04.03", False, 3, (20, 80), drugs=("布洛芬缓释胶囊 0.3g",)),
    _dx("N76.0", "急性阴道炎", "Acute vaginitis", "05.01", False, 2, (18, 60), "female",
        drugs=("甲硝唑阴道泡腾片 0.2g",)),
    _dx("Z34.9", "正常妊娠监督", "Supervision of normal pregnancy, unspecified", "05.02", True, 2, (20, 40),
        "female", labs=("HGB", "GLU"), drugs=("叶酸片 0.4mg",)),
    _dx("J02.9", "急性咽炎", "Acute pharyngitis, unspecified", "07", False, 4, (1, 14),
        abnormal={"TEMP": (38.2, 0.4)}, drugs=("阿莫西林颗粒 0.125g",)),
    _dx("A09.9", "胃肠炎", "Gastroenteritis and colitis of unspecified origin", "07", False, 3, (1, 14),
        drugs=("蒙脱石散 3g",)),
    _dx("H10.9", "结膜炎", "Conjunctivitis, unspecified", "10", False, 2, (3, 95),
        drugs=("妥布霉素滴眼液 0.3%",)),
    _dx("J30.4", "变应性鼻炎", "Allergic rhinitis, unspecified", "11", True, 3, (6, 70),
        drugs=("氯雷他定片 10mg", "糠酸莫米松鼻喷雾剂 50μg")),
    _dx("K02.9", "龋病", "Dental caries, unspecified", "12", False, 2, (5, 95)),
    _dx("L30.9", "皮炎", "Dermatitis, unspecified", "13", False, 3, (1, 95),
        drugs=("丁酸氢化可的松乳膏 0.1%",)),
    _dx("F32.9", "抑郁发作", "Depressive episode, unspecified", "15", True, 2, (16, 75),
        drugs=("舍曲林片 50mg",)),
    _dx("R50.9", "发热", "Fever, unspecified", "20", False, 2, (1, 95),
        abnormal={"TEMP": (39.0, 0.4), "WBC": (10.8, 1.5)}, drugs=("对乙酰氨基酚片 0.5g",)),
    _dx("G47.0", "失眠", "Disorders of initiating and maintaining sleep", "50", True, 2, (18, 95),
        drugs=("枣仁安神胶囊 0.45g",)),
    _dx("Z00.0", "健康体检", "General medical examination", "02", False, 3, (18, 95),
        labs=("HGB", "WBC", "GLU", "CHOL", "ALT", "CREA")),
)  # fmt: skip
ADULT_ONLY_DEPTS = {"03.01", "03.02", "03.03", "03.04", "03.05", "03.06", "03.07", "04.01", "04.03", "02"}

# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    role: str
    username: str
    password: str
    note: str = ""


@dataclass
class DemoSummary:
    tenant: str
    tenant_name: str
    loaded: bool  # False when the demo hospital was already there and nothing new was written
    counts: dict[str, int]  # resources created by this call, per type
    credentials: list[Credential]
    seconds: float
    hospital_id: str | None = None
    doctor_practitioner_id: str | None = None
    patient_id: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


CREDENTIALS = (
    Credential("admin", "admin", "Admin#2026", "管理员"),
    Credential("physician", "doctor", "Doctor#2026", "心血管内科医生"),
    Credential("nurse", "nurse", "Nurse#2026", "护士"),
    Credential("pharmacist", "pharmacist", "Pharma#2026", "药师"),
    Credential("registrar", "registrar", "Regist#2026", "挂号员"),
    Credential("researcher", "researcher", "Research#2026", "研究人员（不可见可识别数据）"),
    Credential("patient", "patient", "Patient#2026", "患者（第一位合成患者）"),
    Credential("integration", "his-client", "HisClient#2026", "HIS 集成客户端"),
)

# --- helpers ----------------------------------------------------------------------------------------


def _meta() -> dict:
    return {"tag": [dict(TAG)]}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _zlkm(code: str) -> dict:
    return {"coding": [{"system": ZLKM, "code": code, "display": DEPT_NAMES[code]}], "text": DEPT_NAMES[code]}


def _ref(reference: str, display: str | None = None) -> dict:
    return {"reference": reference, "display": display} if display else {"reference": reference}


def _post(full_url: str, resource: dict) -> dict:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _tz(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone(timedelta(hours=8))


def _name(rng: random.Random, sex: str) -> tuple[str, str]:
    pool = GIVEN_MALE if sex == "male" else GIVEN_FEMALE
    given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(SURNAMES), given


def _human_name(family: str, given: str) -> dict:
    return {"use": "official", "text": family + given, "family": family, "given": [given]}


# --- the directory ----------------------------------------------------------------------------------


def _directory_bundle(rng: random.Random, hospital_zh: str, hospital_en: str, today: date, tz) -> dict:
    entries: list[dict] = []
    hospital_url = _urn()
    entries.append(
        _post(
            hospital_url,
            {
                "resourceType": "Organization",
                "meta": _meta(),
                "identifier": [{"system": DEMO_SYSTEM, "value": "hospital"}],
                "active": True,
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                "code": "prov",
                                "display": "Healthcare Provider",
                            }
                        ],
                        "text": "医院",
                    }
                ],
                "name": hospital_zh,
                "alias": [hospital_en],
                "telecom": [{"system": "phone", "value": "0571-00000000", "use": "work"}],
                "address": [
                    {
                        "use": "work",
                        "text": "浙江省杭州市西湖区杏林路1号（演示地址）",
                        "line": ["杏林路1号"],
                        "city": "杭州市",
                        "district": "西湖区",
                        "state": "浙江省",
                        "country": "CN",
                    }
                ],
            },
        )
    )
    days = [today + timedelta(days=i) for i in range(14)]
    horizon_end = days[-1] + timedelta(days=1)
    number = 0
    for code, zh, en, n_staff, floor in DEPARTMENTS:
        dept_url, clinic_url = _urn(), _urn()
        entries.append(
            _post(
                dept_url,
                {
                    "resourceType": "Organization",
                    "meta": _meta(),
                    "identifier": [{"system": DEPARTMENT_SYSTEM, "value": code}],
                    "active": True,
                    "type": [_zlkm(code)],
                    "name": zh,
                    "alias": [en],
                    "partOf": _ref(hospital_url, hospital_zh),
                },
            )
        )
        clinic_name = f"{zh}{'诊区' if code == '20' else '门诊'}"
        entries.append(
            _post(
                clinic_url,
                {
                    "resourceType": "Location",
                    "meta": _meta(),
                    "identifier": [{"system": CLINIC_SYSTEM, "value": code}],
                    "status": "active",
                    "name": clinic_name,
                    "alias": [f"{en} clinic"],
                    "mode": "instance",
                    "type": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                    "code": "ER" if code == "20" else "OF",
                                    "display": "Emergency room" if code == "20" else "Outpatient facility",
                                }
                            ],
                            "text": clinic_name,
                        }
                    ],
                    "physicalType": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                "code": "area",
                                "display": "Area",
                            }
                        ]
                    },
                    "address": {"text": f"{hospital_zh}{floor}"},
                    "managingOrganization": _ref(dept_url, zh),
                },
            )
        )
        for k in range(n_staff):
            number += 1
            sex = rng.choice(("male", "female"))
            family, given = _name(rng, sex)
            title = TITLES[0] if k == 0 else rng.choice(TITLES[1:])
            prac_url = _urn()
            entries.append(
                _post(
                    prac_url,
                    {
                        "resourceType": "Practitioner",
                        "meta": _meta(),
                        "identifier": [{"system": PRACTITIONER_SYSTEM, "value": f"P{number:04d}"}],
                        "active": True,
                        "name": [_human_name(family, given)],
                        "gender": sex,
                        "qualification": [{"code": {"text": title}}],
                    },
                )
            )
            display = family + given
            entries.append(
                _post(
                    _urn(),
                    {
                        "resourceType": "PractitionerRole",
                        "meta": _meta(),
                        "active": True,
                        "practitioner": _ref(prac_url, display),
                        "organization": _ref(dept_url, zh),
                        "code": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                                        "code": "doctor",
                                        "display": "Doctor",
                                    }
                                ],
                                "text": title,
                            }
                        ],
                        "specialty": [_zlkm(code)],
                        "location": [_ref(clinic_url, clinic_name)],
                        "availableTime": [
                            {
                                "daysOfWeek": ["mon", "tue", "wed", "thu", "fri"],
                                "availableStartTime": "08:00:00",
                                "availableEndTime": "17:00:00",
                            }
                        ],
                    },
                )
            )
            schedule_url = _urn()
            entries.append(
                _post(
                    schedule_url,
                    {
                        "resourceType": "Schedule",
                        "meta": _meta(),
                        "identifier": [{"system": SCHEDULE_SYSTEM, "value": f"P{number:04d}"}],
                        "active": True,
                        "serviceType": [_zlkm(code)],
                        "specialty": [_zlkm(code)],
                        "actor": [_ref(prac_url, display), _ref(clinic_url, clinic_name)],
                        "planningHorizon": {
                            "start": datetime.combine(days[0], datetime.min.time(), tz).isoformat(),
                            "end": datetime.combine(horizon_end, datetime.min.time(), tz).isoformat(),
                        },
                        "comment": f"{zh} {display}（{title}）门诊出诊",
                    },
                )
            )
            for day in days:
                if day.weekday() >= 5:
                    continue
                for start_hour, end_hour in ((8, 12), (14, 17)):
                    start = datetime(day.year, day.month, day.day, start_hour, tzinfo=tz)
                    while start.hour < end_hour:
                        end = start + timedelta(minutes=30)
                        entries.append(
                            _post(
                                _urn(),
                                {
                                    "resourceType": "Slot",
                                    "meta": _meta(),
                                    "schedule": {"reference": schedule_url},
                                    "serviceType": [_zlkm(code)],
                                    "specialty": [_zlkm(code)],
                                    "status": "free",
                                    "start": start.isoformat(),
                                    "end": end.isoformat(),
                                },
                            )
                        )
                        start = end
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass
class Clinician:
    id: str
    name: str


@dataclass
class Directory:
    hospital_id: str
    hospital_name: str
    depts: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (org id, location id)
    staff: dict[str, list[Clinician]] = field(default_factory=dict)  # code -> clinicians, by identifier

    def doctor(self) -> Clinician:
        return self.staff["03.04"][0]


def _all(repo: Repository, rtype: str, params: list[tuple[str, str]]) -> list[dict]:
    page = repo.search(rtype, [*params, ("_count", "1000")])
    return [m.as_dict() for m in page.matches]


def _find_hospital(repo: Repository) -> dict | None:
    found = _all(repo, "Organization", [("identifier", f"{DEMO_SYSTEM}|hospital")])
    return found[0] if found else None


def _read_directory(repo: Repository, hospital: dict) -> Directory:
    directory = Directory(hospital["id"], hospital.get("name", ""))
    numbers = {
        p["id"]: next(i["value"] for i in p["identifier"] if i["system"] == PRACTITIONER_SYSTEM)
        for p in _all(repo, "Practitioner", [("identifier", f"{PRACTITIONER_SYSTEM}|")])
    }
    staff: dict[str, list[tuple[str, Clinician]]] = {}
    for role in _all(repo, "PractitionerRole", [("specialty", f"{ZLKM}|")]):
        prac = role["practitioner"]
        pid = prac["reference"].split("/")[-1]
        if pid not in numbers:
            continue
        code = role["specialty"][0]["coding"][0]["code"]
        directory.depts[code] = (
            role["organization"]["reference"].split("/")[-1],
            role["location"][0]["reference"].split("/")[-1],
        )
        staff.setdefault(code, []).append((numbers[pid], Clinician(pid, prac.get("display", ""))))
    directory.staff = {code: [c for _, c in sorted(items, key=lambda x: x[0])] for code, items in staff.items()}
    return directory


# --- patients ---------------------------------------------------------------------------------------


def _pick_age(rng: random.Random) -> int:
    bucket = rng.choices(((1, 14), (15, 39), (40, 64), (65, 92)), weights=(10, 25, 35, 30))[0]
    return rng.randint(*bucket)


def _eligible(dx: Diagnosis, age: int, sex: str) -> bool:
    return dx.ages[0] <= age <= dx.ages[1] and (dx.sex is None or dx.sex == sex)


def _choose(rng: random.Random, age: int, sex: str, *, chronic: bool | None = None, exclude=()) -> Diagnosis:
    pool = [
        d
        for d in DIAGNOSES
        if _eligible(d, age, sex) and (chronic is None or d.chronic == chronic) and d.code not in exclude
    ]
    return rng.choices(pool, weights=[d.weight for d in pool])[0]


def _dept_for(dx: Diagnosis, age: int) -> str:
    return "07" if age < 15 and dx.dept in ADULT_ONLY_DEPTS else dx.dept


def _quantity(m: Measure, value: float) -> dict:
    return {"value": value, "unit": m.unit, "system": UCUM, "code": m.ucum}


def _interpretation(value: float, low: float, high: float) -> dict:
    code, display, zh = (
        ("L", "Low", "偏低") if value < low else ("H", "High", "偏高") if value > high else ("N", "Normal", "正常")
    )
    return {"coding": [{"system": INTERPRETATION, "code": code, "display": display}], "text": zh}


class PatientFactory:
    """Builds one synthetic patient and their records as transaction entries."""

    def __init__(self, directory: Directory, seed: int, today: date, tz):
        self.directory = directory
        self.seed = seed
        self.today = today
        self.tz = tz
        self.used_ids: set[str] = set()

    @staticmethod
    def mrn(index: int) -> str:
        return f"XL{index + 1:08d}"

    def build(self, index: int) -> list[dict]:
        rng = random.Random(f"{self.seed}/patient/{index}")
        sex = rng.choice(("male", "female"))
        age = _pick_age(rng)
        birth = self.today - timedelta(days=age * 365 + rng.randint(0, 364))
        family, given = _name(rng, sex)
        province, city, district, region, streets = rng.choice(REGIONS)
        id_number = self._id_number(rng, region, birth, sex)
        street = f"{rng.choice(streets)}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋{rng.randint(101, 2808)}室"
        patient_url = _urn()
        patient = {
            "resourceType": "Patient",
            "meta": _meta(),
            "identifier": [
                {
                    "use": "official",
                    "type": {
                        "coding": [
                            {
                                "system": V2_0203,
                                "code": "NI",
                                "display": "National unique individual identifier",
                            }
                        ],
                        "text": "居民身份证",
                    },
                    "system": ID_NUMBER_SYSTEM,
                    "value": id_number,
                },
                {
                    "use": "usual",
                    "type": {
                        "coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}],
                        "text": "病历号",
                    },
                    "system": MRN_SYSTEM,
                    "value": self.mrn(index),
                },
            ],
            "active": True,
            "name": [_human_name(family, given)],
            "telecom": [
                {
                    "system": "phone",
                    "value": f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}",
                    "use": "mobile",
                }
            ],
            "gender": sex,
            "birthDate": birth.isoformat(),
            "address": [
                {
                    "use": "home",
                    "type": "physical",
                    "text": f"{province if province != city else ''}{city}{district}{street}",
                    "line": [street],
                    "city": city,
                    "district": district,
                    "state": province,
                    "country": "CN",
                }
            ],
            "managingOrganization": _ref(f"Organization/{self.directory.hospital_id}", self.directory.hospital_name),
        }
        entries = [_post(patient_url, patient)]
        entries += self._records(rng, patient_url, family + given, sex, age, birth)
        return entries

    def _id_number(self, rng: random.Random, region: str, birth: date, sex: str) -> str:
        while True:
            seq = rng.randrange(1, 999, 2) if sex == "male" else rng.randrange(2, 999, 2)
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            number = first17 + id_check_char(first17)
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def _records(self, rng: random.Random, patient_url: str, name: str, sex: str, age: int, birth: date) -> list[dict]:
        primary = _choose(rng, age, sex)
        problems = [primary]
        if primary.chronic and age >= 40 and rng.random() < 0.35:
            problems.append(_choose(rng, age, sex, chronic=True, exclude={primary.code}))
        visits = rng.choices((1, 2, 3, 4), weights=(25, 25, 25, 25))[0] if primary.chronic else rng.randint(1, 3)
        earliest = max(1, min(730, (self.today - birth).days))
        offsets = sorted(rng.sample(range(1, earliest + 1), min(visits, earliest)), reverse=True)
        chronic_state = {}  # measure -> (mean, sd, worsens) for the patient's chronic abnormal values
        for dx in problems:
            if dx.chronic:
                for key, spec in dx.abnormal.items():
                    chronic_state[key] = (*spec, dx.worsens)
        subject = _ref(patient_url, name)
        entries: list[dict] = []
        condition_urls: dict[str, str] = {}
        doctors: dict[str, Clinician] = {}
        drug_entries: dict[str, list[dict]] = {}  # chronic diagnosis -> its MedicationRequests, in order
        n = len(offsets)
        for k, days_ago in enumerate(offsets):
            if k == 0:
                focus = problems
            elif primary.chronic and rng.random() < 0.7:
                focus = [primary]
            else:
                focus = [_choose(rng, age, sex, chronic=False)]
            dept = _dept_for(focus[0], age)
            org_id, location_id = self.directory.depts[dept]
            doctor = doctors.get(dept) or rng.choice(self.directory.staff[dept])
            doctors[dept] = doctor
            day = self.today - timedelta(days=days_ago)
            hour = rng.choice((8, 9, 10, 11, 14, 15, 16))
            start = datetime(day.year, day.month, day.day, hour, rng.randrange(0, 60, 5), tzinfo=self.tz)
            end = start + timedelta(minutes=rng.randint(8, 25))
            enc_url = _urn()
            new_conditions = []
            for dx in focus:
                if dx.code in condition_urls and dx.chronic:
                    continue
                url = _urn()
                if dx.chronic:
                    condition_urls[dx.code] = url
                new_conditions.append((url, dx))
            diag_urls = [condition_urls.get(dx.code) or next(u for u, d in new_conditions if d is dx) for dx in focus]
            entries.append(
                _post(
                    enc_url,
                    {
                        "resourceType": "Encounter",
                        "meta": _meta(),
                        "status": "finished",
                        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
                        "type": [{"text": "门诊初诊" if k == 0 or not focus[0].chronic else "门诊复诊"}],
                        "subject": subject,
                        "participant": [
                            {
                                "type": [
                                    {
                                        "coding": [
                                            {
                                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                "code": "ATND",
                                                "display": "attender",
                                            }
                                        ]
                                    }
                                ],
                                "individual": _ref(f"Practitioner/{doctor.id}", doctor.name),
                            }
                        ],
                        "period": {"start": start.isoformat(), "end": end.isoformat()},
                        "diagnosis": [
                            {"condition": {"reference": url}, "rank": rank}
                            for rank, url in enumerate(diag_urls, start=1)
                        ],
                        "location": [{"location": _ref(f"Location/{location_id}")}],
                        "serviceProvider": _ref(f"Organization/{org_id}", DEPT_NAMES[dept]),
                    },
                )
            )
            for url, dx in new_conditions:
                entries.append(_post(url, self._condition(rng, dx, subject, enc_url, doctor, start, age)))
            # measurements: vital signs at every visit, laboratory tests for what the visit was about
            progress = k / (n - 1) if n > 1 else 0.0
            acute = {key: spec for dx in focus if not dx.chronic for key, spec in dx.abnormal.items()}
            when = (start + timedelta(minutes=3)).isoformat()
            ctx = (rng, subject, enc_url, when, sex, age, chronic_state, acute, progress)
            entries.append(self._vital(ctx, "HR"))
            entries.append(self._blood_pressure(ctx))
            entries.append(self._vital(ctx, "TEMP"))
            labs: list[str] = []
            for dx in focus:
                for key in (*dx.abnormal, *dx.labs):
                    if not MEASURES[key].vital and key not in labs:
                        labs.append(key)
            if k == 0 and age >= 15 and rng.random() < 0.4:
                labs += [key for key in ("HGB", "WBC", "GLU") if key not in labs]
            lab_time = (start + timedelta(minutes=40)).isoformat()
            for key in labs:
                entries.append(self._observation((rng, subject, enc_url, lab_time, *ctx[4:]), key, "laboratory"))
            # prescriptions
            for dx in focus:
                for drug_name in dx.drugs:
                    if drug_name == "缬沙坦胶囊 80mg" and rng.random() < 0.5:
                        continue  # not everyone needs a second antihypertensive
                    req = self._prescription(DRUGS[drug_name], dx, subject, enc_url, diag_urls, focus, doctor, start)
                    entries.append(req)
                    if dx.chronic:
                        drug_entries.setdefault(dx.code, []).append(req)
        # the latest prescription of each chronic drug is still being taken; earlier ones are done
        for reqs in drug_entries.values():
            latest: dict[str, dict] = {}
            for req in reqs:
                latest[req["resource"]["medicationCodeableConcept"]["text"]] = req
            for req in latest.values():
                req["resource"]["status"] = "active"
        return entries

    def _condition(
        self,
        rng: random.Random,
        dx: Diagnosis,
        subject: dict,
        enc_url: str,
        doctor: Clinician,
        start,
        age: int,
    ) -> dict:
        if dx.chronic:
            onset = start - timedelta(days=rng.randint(0, 365 * min(10, max(1, age // 10))))
            status, abatement = "active", None
        else:
            onset = start - timedelta(days=rng.randint(0, 5))
            abatement = start + timedelta(days=rng.randint(5, 14))
            status = "resolved" if abatement.date() < self.today else "active"
            if dx.code == "Z00.0":
                abatement, status = start, "resolved"
        if dx.code == "Z34.9":  # a pregnancy ends
            abatement = start + timedelta(days=rng.randint(120, 250))
            status = "resolved" if abatement.date() < self.today else "active"
        condition = {
            "resourceType": "Condition",
            "meta": _meta(),
            "clinicalStatus": {"coding": [{"system": CLINICAL_STATUS, "code": status}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION_STATUS, "code": "confirmed"}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": CONDITION_CATEGORY,
                            "code": "encounter-diagnosis",
                            "display": "Encounter Diagnosis",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": ICD10, "code": dx.code, "display": dx.en}], "text": dx.zh},
            "subject": subject,
            "encounter": {"reference": enc_url},
            "onsetDateTime": onset.date().isoformat(),
            "recordedDate": start.isoformat(),
            "recorder": _ref(f"Practitioner/{doctor.id}", doctor.name),
            "asserter": _ref(f"Practitioner/{doctor.id}", doctor.name),
        }
        if abatement is not None and status == "resolved":
            condition["abatementDateTime"] = abatement.date().isoformat()
        return condition

    @staticmethod
    def _value(ctx, key: str) -> tuple[float | int, float, float]:
        """(value, low, high) of a measure for this patient at this visit."""
        rng, _, _, _, sex, age, chronic_state, acute, progress = ctx
        m = MEASURES[key]
        i = 0 if sex == "male" else 1
        low, high, mean, sd = m.low[i], m.high[i], m.mean[i], m.sd
        if age < 15 and key in CHILD_VITALS:
            (low, high), mean, sd = CHILD_VITALS[key]
        if key in acute:
            mean, sd = acute[key]
        elif key in chronic_state:
            sick_mean, sick_sd, worsens = chronic_state[key]
            # treatment brings values most of the way back towards normal over the visits
            shift = 0.18 * sick_mean * progress if worsens else -0.7 * (sick_mean - mean) * progress
            mean, sd = sick_mean + shift, sick_sd * 0.6
        value = max(rng.gauss(mean, sd), 10.0**-m.decimals)
        return (round(value, m.decimals) if m.decimals else round(value)), low, high

    def _observation(self, ctx, key: str, category: str) -> dict:
        _, subject, enc_url, when, *_ = ctx
        m = MEASURES[key]
        value, low, high = self._value(ctx, key)
        return _post(
            _urn(),
            {
                "resourceType": "Observation",
                "meta": _meta(),
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": OBS_CATEGORY,
                                "code": category,
                                "display": "Vital Signs" if category == "vital-signs" else "Laboratory",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": LOINC, "code": m.code, "display": m.loinc_display}],
                    "text": m.zh,
                },
                "subject": subject,
                "encounter": {"reference": enc_url},
                "effectiveDateTime": when,
                "valueQuantity": _quantity(m, value),
                "interpretation": [_interpretation(value, low, high)],
                "referenceRange": [{"low": _quantity(m, low), "high": _quantity(m, high)}],
            },
        )

    def _vital(self, ctx, key: str) -> dict:
        return self._observation(ctx, key, "vital-signs")

    def _blood_pressure(self, ctx) -> dict:
        """The FHIR vital-signs blood pressure panel: systolic and diastolic as components."""
        _, subject, enc_url, when, *_ = ctx
        components = []
        for key in ("SBP", "DBP"):
            m = MEASURES[key]
            value, low, high = self._value(ctx, key)
            components.append(
                {
                    "code": {
                        "coding": [{"system": LOINC, "code": m.code, "display": m.loinc_display}],
                        "text": m.zh,
                    },
                    "valueQuantity": _quantity(m, value),
                    "interpretation": [_interpretation(value, low, high)],
                    "referenceRange": [{"low": _quantity(m, low), "high": _quantity(m, high)}],
                }
            )
        code, display, zh = BP_PANEL
        return _post(
            _urn(),
            {
                "resourceType": "Observation",
                "meta": _meta(),
                "status": "final",
                "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": zh},
                "subject": subject,
                "encounter": {"reference": enc_url},
                "effectiveDateTime": when,
                "component": components,
            },
        )

    def _prescription(self, drug: Drug, dx: Diagnosis, subject, enc_url, diag_urls, focus, doctor, start) -> dict:
        dosage: dict[str, Any] = {
            "sequence": 1,
            "text": drug.text,
            "route": {"text": drug.route},
            "doseAndRate": [{"doseQuantity": {"value": drug.dose, "unit": drug.unit}}],
        }
        if drug.per_day is None:
            dosage["asNeededBoolean"] = True
        else:
            dosage["timing"] = {"repeat": {"frequency": drug.per_day, "period": 1, "periodUnit": "d"}}
        medication: dict[str, Any] = {"text": drug.name}
        if drug.atc:
            medication["coding"] = [{"system": ATC, "code": drug.atc}]
        ended = (start.date() + timedelta(days=drug.days)) < self.today
        return _post(
            _urn(),
            {
                "resourceType": "MedicationRequest",
                "meta": _meta(),
                "status": "completed" if ended or dx.chronic else "active",
                "intent": "order",
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                                "code": "outpatient",
                                "display": "Outpatient",
                            }
                        ]
                    }
                ],
                "medicationCodeableConcept": medication,
                "subject": subject,
                "encounter": {"reference": enc_url},
                "authoredOn": start.isoformat(),
                "requester": _ref(f"Practitioner/{doctor.id}", doctor.name),
                "reasonReference": [{"reference": diag_urls[focus.index(dx)]}],
                "dosageInstruction": [dosage],
                "dispenseRequest": {
                    "expectedSupplyDuration": {"value": drug.days, "unit": "天", "system": UCUM, "code": "d"}
                },
            },
        )


# --- loading ----------------------------------------------------------------------------------------


def _tenant(engine: Engine, code: str) -> tuple[tenancy.Tenant, bool]:
    with engine.begin() as conn:
        try:
            return tenancy.get_tenant(conn, code), False
        except NotFound:
            pass
    zh, en = HOSPITAL_NAME if code == "demo" else (f"杏林示范医院（{code}）", f"Xinglin Demo Hospital ({code})")
    try:
        with engine.begin() as conn:
            return tenancy.create_tenant(conn, code, zh, name_en=en, actor="demo-loader"), True
    except Conflict:  # created meanwhile by someone else
        with engine.begin() as conn:
            return tenancy.get_tenant(conn, code), False


def _count(response: dict, counts: Counter) -> None:
    for entry in response.get("entry", []):
        location = entry.get("response", {}).get("location")
        if location:
            counts[location.split("/", 1)[0]] += 1


def _missing_patients(repo: Repository, patients: int) -> list[int]:
    """Indexes of the demo patients not in the store yet, looked up by medical-record number."""
    missing: list[int] = []
    for start in range(0, patients, CHUNK):
        wanted = {PatientFactory.mrn(i): i for i in range(start, min(start + CHUNK, patients))}
        values = ",".join(f"{MRN_SYSTEM}|{mrn}" for mrn in wanted)
        found = {
            ident.get("value")
            for match in repo.search("Patient", [("identifier", values), ("_count", str(CHUNK))]).matches
            for ident in match.as_dict().get("identifier", [])
            if ident.get("system") == MRN_SYSTEM
        }
        missing += [i for mrn, i in wanted.items() if mrn not in found]
    return missing


def _users(engine: Engine, tenant_code: str, doctor: Clinician, patient_id: str | None, patient_name: str) -> None:
    for cred in CREDENTIALS:
        kwargs: dict[str, Any] = {}
        if cred.username == "doctor":
            kwargs = {"practitioner_id": doctor.id, "display_name": doctor.name}
        elif cred.role == "patient":
            if patient_id is None:
                continue
            kwargs = {"patient_id": patient_id, "display_name": patient_name}
        try:
            with engine.begin() as conn:
                tenancy.create_user(
                    conn, tenant_code, cred.username, cred.password, cred.role, actor="demo-loader", **kwargs
                )
        except Conflict:
            pass  # already there: keep it (and its password) as it is


def load_demo(
    engine: Engine,
    settings: Settings,
    tenant_code: str,
    *,
    patients: int = 500,
    seed: int = 20261125,
    console: Console | None = None,
) -> DemoSummary:
    """Loads the demo hospital into `tenant_code` (created when missing) and prints the login details."""
    console = console or Console(quiet=True)
    started = time.perf_counter()
    tenant, _ = _tenant(engine, tenant_code)
    store = Store(engine, settings)
    principal = system_principal(tenant.id, tenant.code, name="demo-loader")
    base = (settings.public_base_url or "http://127.0.0.1:8000").rstrip("/") + "/fhir/R4"
    tz = _tz(tenant.time_zone)
    today = datetime.now(tz).date()
    counts: Counter = Counter()

    with store.unit_of_work(principal) as repo:
        already = _find_hospital(repo) is not None
        missing = _missing_patients(repo, patients) if already else list(range(patients))

    columns = (
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    if not already or missing:
        with Progress(*columns, console=console) as progress:
            if not already:
                task = progress.add_task("科室、医生与号源 / directory and schedules", total=1)
                bundle = _directory_bundle(
                    random.Random(f"{seed}/directory"), tenant.name_zh, tenant.name_en, today, tz
                )
                with store.unit_of_work(principal) as repo:
                    if _find_hospital(repo) is None:  # not loaded by a concurrent run meanwhile
                        _count(bundles.run_transaction(repo, bundle, base), counts)
                progress.advance(task)
            with store.unit_of_work(principal) as repo:
                hospital = _find_hospital(repo)
                assert hospital is not None
                directory = _read_directory(repo, hospital)
            factory = PatientFactory(directory, seed, today, tz)
            task = progress.add_task("合成患者 / synthetic patients", total=patients)
            progress.advance(task, patients - len(missing))
            for start in range(0, len(missing), CHUNK):
                chunk = missing[start : start + CHUNK]
                entries = [e for i in chunk for e in factory.build(i)]
                bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
                with store.unit_of_work(principal) as repo:
                    _count(bundles.run_transaction(repo, bundle, base), counts)
                progress.advance(task, len(chunk))
        analyze(engine)  # fresh statistics, so the first searches get good plans

    with store.unit_of_work(principal) as repo:
        hospital = _find_hospital(repo)
        assert hospital is not None
        directory = _read_directory(repo, hospital)
        first = repo.search("Patient", [("identifier", f"{MRN_SYSTEM}|{PatientFactory.mrn(0)}"), ("_count", "1")])
        first_patient = first.matches[0].as_dict() if first.matches else None
    doctor = directory.doctor()
    _users(
        engine,
        tenant.code,
        doctor,
        first_patient["id"] if first_patient else None,
        first_patient["name"][0]["text"] if first_patient else "",
    )
    summary = DemoSummary(
        tenant=tenant.code,
        tenant_name=tenant.name_zh,
        loaded=bool(counts),
        counts=dict(sorted(counts.items())),
        credentials=list(CREDENTIALS),
        seconds=time.perf_counter() - started,
        hospital_id=directory.hospital_id,
        doctor_practitioner_id=doctor.id,
        patient_id=first_patient["id"] if first_patient else None,
    )
    _print(console, summary, settings)
    return summary


def _print(console: Console, summary: DemoSummary, settings: Settings) -> None:
    if summary.loaded:
        counts = Table(title=f"已载入 / loaded in {summary.seconds:.1f} s", show_header=True)
        counts.add_column("资源 / resource")
        counts.add_column("数量 / count", justify="right")
        for rtype, n in summary.counts.items():
            counts.add_row(rtype, str(n))
        counts.add_row("[bold]合计 / total[/bold]", f"[bold]{summary.total}[/bold]")
        console.print(counts)
    else:
        console.print(
            f"[yellow]租户 {summary.tenant} 已有示范医院，未载入新数据 / "
            f"the demo hospital is already in tenant {summary.tenant}; nothing new was written[/yellow]"
        )
    users = Table(title=f"{summary.tenant_name} — 登录信息 / sign-in details", show_header=True)
    for title in ("租户 tenant", "角色 role", "用户名 username", "密码 password", "说明 note"):
        users.add_column(title)
    for cred in summary.credentials:
        users.add_row(summary.tenant, cred.role, cred.username, cred.password, cred.note)
    console.print(users)
    base = (settings.public_base_url or "http://127.0.0.1:8000").rstrip("/")
    console.print(f"FHIR 能力声明 / CapabilityStatement: {base}/fhir/R4/metadata")
    console.print(f"令牌端点 / token endpoint: {base}/auth/token")
    console.print(
        f"curl -s {base}/auth/token -d grant_type=password -d tenant={summary.tenant} "
        "-d username=doctor -d 'password=Doctor#2026'",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"curl -s {base}/auth/token -d grant_type=client_credentials -d tenant={summary.tenant} "
        "-d client_id=his-client -d 'client_secret=HisClient#2026'",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'curl -s -H "Authorization: Bearer $TOKEN" "{base}/fhir/R4/Patient?_count=5"',
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
