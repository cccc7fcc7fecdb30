"""Data shapes of the triage engine: departments, urgency levels, red flags and the result.

The result's ``to_dict()`` is the public JSON shape of issue #3 (CLI ``--json``, ``--jsonl`` and, later,
``POST /api/triage``); keep its keys stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xinglin.core.errors import BadRequest

GENERATED_BY = "xinglin-triage 0.1"

LABEL = {
    "zh": "机器生成的分诊建议，不是诊断，也不是处方。",
    "en": "Machine-generated triage advice: not a diagnosis and not a prescription.",
}
DISCLAIMER = {
    "zh": "如症状加重、出现新的危险信号，请立即到急诊就诊或拨打 120。",
    "en": "If symptoms get worse or new danger signs appear, go to the emergency department or call 120.",
}


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    name_en: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "name_en": self.name_en}


# 诊疗科目 (1994 list) as used by the hospital front door; names are the clinic names patients see.
DEPARTMENTS: dict[str, Department] = {
    d.code: d
    for d in (
        Department("01", "预防保健科", "Preventive Care"),
        Department("02", "全科医疗科", "General Practice"),
        Department("03", "内科", "Internal Medicine"),
        Department("03.01", "呼吸内科", "Respiratory Medicine"),
        Department("03.02", "消化内科", "Gastroenterology"),
        Department("03.03", "神经内科", "Neurology"),
        Department("03.04", "心血管内科", "Cardiology"),
        Department("03.05", "血液内科", "Hematology"),
        Department("03.06", "肾内科", "Nephrology"),
        Department("03.07", "内分泌科", "Endocrinology"),
        Department("03.08", "风湿免疫科", "Rheumatology and Immunology"),
        Department("03.09", "变态反应科", "Allergy"),
        Department("03.10", "老年病科", "Geriatrics"),
        Department("04", "外科", "Surgery"),
        Department("04.01", "普通外科", "General Surgery"),
        Department("04.02", "神经外科", "Neurosurgery"),
        Department("04.03", "骨科", "Orthopedics"),
        Department("04.04", "泌尿外科", "Urology"),
        Department("04.05", "胸外科", "Thoracic Surgery"),
        Department("04.06", "心脏大血管外科", "Cardiac and Great Vessel Surgery"),
        Department("04.07", "烧伤科", "Burns"),
        Department("04.08", "整形外科", "Plastic Surgery"),
        Department("05", "妇产科", "Obstetrics and Gynecology"),
        Department("05.01", "妇科", "Gynecology"),
        Department("05.02", "产科", "Obstetrics"),
        Department("07", "儿科", "Pediatrics"),
        Department("08", "小儿外科", "Pediatric Surgery"),
        Department("10", "眼科", "Ophthalmology"),
        Department("11", "耳鼻咽喉科", "Otorhinolaryngology (ENT)"),
        Department("12", "口腔科", "Stomatology (Dental)"),
        Department("13", "皮肤科", "Dermatology"),
        Department("15", "精神科", "Psychiatry"),
        Department("16", "传染科", "Infectious Diseases"),
        Department("17", "结核病科", "Tuberculosis"),
        Department("19", "肿瘤科", "Oncology"),
        Department("20", "急诊医学科", "Emergency Medicine"),
        Department("21", "康复医学科", "Rehabilitation Medicine"),
        Department("26", "麻醉科", "Anesthesiology"),
        Department("27", "疼痛科", "Pain Medicine"),
        Department("28", "重症医学科", "Critical Care Medicine"),
        Department("50", "中医科", "Traditional Chinese Medicine"),
        Department("52", "中西医结合科", "Integrated Chinese and Western Medicine"),
    )
}


@dataclass(frozen=True, slots=True)
class Level:
    number: int
    name: str
    name_en: str
    max_wait_minutes: int
    colour: str


# Four-level emergency triage (急诊预检分诊专家共识, 2018).
LEVELS: dict[int, Level] = {
    1: Level(1, "急危", "resuscitation (immediate)", 0, "red"),
    2: Level(2, "急重", "emergent", 10, "red"),
    3: Level(3, "急症", "urgent", 30, "yellow"),
    4: Level(4, "亚急/非急", "less urgent / non-urgent", 60, "green"),
}

RED_FLAG_CODES: tuple[str, ...] = (
    "chest_pain_acs",
    "stroke",
    "breathing_difficulty",
    "anaphylaxis",
    "seizure_ongoing",
    "altered_consciousness",
    "heavy_bleeding",
    "poisoning",
    "suicidal_intent",
    "thunderclap_headache",
    "hematemesis",
    "pregnancy_bleeding_pain",
    "infant_fever",
    "chemical_eye_injury",
    "airway_foreign_body",
    "abnormal_vitals",
)

VITAL_FIELDS: tuple[str, ...] = (
    "heart_rate",
    "systolic_bp",
    "diastolic_bp",
    "resp_rate",
    "spo2",
    "temperature",
    "gcs",
    "pain",
)

# Plausible ranges: values outside are typing errors, refused with a message naming the field.
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (0, 350),
    "systolic_bp": (0, 350),
    "diastolic_bp": (0, 250),
    "resp_rate": (0, 120),
    "spo2": (0, 100),
    "temperature": (20, 46),
    "gcs": (3, 15),
    "pain": (0, 10),
}


class TriageInputError(BadRequest):
    """A bad argument (not bad text: any text is accepted). ``element`` names the field."""

    def __init__(self, field_name: str, zh: str, en: str):
        super().__init__(zh, en, element=field_name)
        self.field = field_name

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.zh, "message_en": self.en}


@dataclass(frozen=True, slots=True)
class RedFlag:
    code: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class Alternative:
    department: Department
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.department.to_dict(), "score": self.score}


@dataclass(frozen=True, slots=True)
class TriageResult:
    department: Department
    alternatives: tuple[Alternative, ...]
    level: int
    red_flags: tuple[RedFlag, ...]
    escalate: bool
    explanation: str
    explanation_en: str = ""
    score: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def level_name(self) -> str:
        return LEVELS[self.level].name

    @property
    def max_wait_minutes(self) -> int:
        return LEVELS[self.level].max_wait_minutes

    def to_dict(self) -> dict[str, Any]:
        return {
            "department": self.department.to_dict(),
            "alternatives": [a.to_dict() for a in self.alternatives],
            "level": self.level,
            "level_name": self.level_name,
            "max_wait_minutes": self.max_wait_minutes,
            "red_flags": [f.to_dict() for f in self.red_flags],
            "escalate": self.escalate,
            "explanation": self.explanation,
            "explanation_en": self.explanation_en,
            "warnings": list(self.warnings),
            "label": LABEL,
            "disclaimer": DISCLAIMER,
            "generated_by": GENERATED_BY,
        }
