"""Mapping profiles: which source column (or HL7 field) becomes which FHIR element, and how to read it.

A profile is declarative YAML, one per source, reviewed by a person::

    source: renji-lis
    encoding: gb18030
    columns:
      病人姓名: {element: Patient.name}
      性别: {element: Patient.gender, value_map: {"1": male, "2": female}}
      出生日期: {element: Patient.birthDate, date_formats: ["%d/%m/%Y"]}
      身份证号: {element: "Patient.identifier:id-card"}
      空腹血糖(mg/dL): {element: Observation.value, analyte: fasting_glucose, unit: mg/dL}
    identity: [身份证号, 病人姓名, 出生日期, 性别]

Without one, :func:`infer_profile` proposes a profile from the headers (Chinese or English), which
``xinglin ingest suggest-profile FILE`` prints for review.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from xinglin.core.errors import BadRequest
from xinglin.ingest.normalise import analytes, find_analyte, ucum_unit

# FHIR element -> the key the ingest pipeline uses for it.
ELEMENTS: dict[str, str] = {
    "Patient.name": "name",
    "Patient.gender": "sex",
    "Patient.birthDate": "birth_date",
    "Patient.identifier:id-card": "id_number",
    "Patient.identifier:mrn": "patient_id",
    "Patient.telecom:phone": "phone",
    "Patient.address": "address",
    "Encounter.period.start": "visit_date",
    "Encounter.identifier": "visit_id",
    "Condition.code": "diagnosis",
    "Observation.code": "test",
    "Observation.value": "result",  # with `analyte`: a wide column holding one analyte's result
    "Observation.valueQuantity.unit": "unit",
    "Observation.referenceRange": "ref_range",
    "Observation.effectiveDateTime": "observed_at",
    "ignore": "ignore",
}
PERSON_KEYS = ("id_number", "patient_id", "name", "birth_date", "sex", "phone")

# Header synonyms per key, compared after folding (see _hkey). Order matters: earlier keys win a column.
SYNONYMS: dict[str, list[str]] = {
    "id_number": [
        "身份证号",
        "身份证",
        "身份证号码",
        "证件号",
        "证件号码",
        "公民身份号码",
        "居民身份证号",
        "患者身份证号",
        "id_card",
        "idcard",
        "id_number",
        "idno",
        "id_no",
        "national_id",
        "citizen_id",
        "id",
    ],
    "patient_id": [
        "病历号",
        "住院号",
        "门诊号",
        "患者id",
        "患者编号",
        "病人id",
        "病人编号",
        "就诊卡号",
        "病案号",
        "登记号",
        "patient_id",
        "patientid",
        "mrn",
        "medical_record_number",
        "pid",
    ],
    "name": [
        "姓名",
        "患者姓名",
        "病人姓名",
        "患者",
        "病人",
        "名字",
        "name",
        "patient_name",
        "patientname",
        "full_name",
        "fullname",
    ],
    "sex": ["性别", "患者性别", "病人性别", "sex", "gender"],
    "birth_date": [
        "出生日期",
        "出生年月",
        "出生年月日",
        "生日",
        "出生",
        "dob",
        "birth_date",
        "birthdate",
        "date_of_birth",
        "birthday",
    ],
    "phone": [
        "联系电话",
        "电话",
        "电话号码",
        "手机",
        "手机号",
        "手机号码",
        "联系方式",
        "患者电话",
        "phone",
        "mobile",
        "tel",
        "telephone",
        "phone_number",
        "contact",
    ],
    "address": ["地址", "住址", "家庭住址", "现住址", "联系地址", "户籍地址", "address", "addr", "home_address"],
    "visit_id": [
        "就诊号",
        "就诊编号",
        "就诊流水号",
        "流水号",
        "门诊流水号",
        "住院流水号",
        "visit_id",
        "visitid",
        "encounter_id",
        "visit_no",
    ],
    "visit_date": [
        "就诊日期",
        "就诊时间",
        "门诊日期",
        "入院日期",
        "入院时间",
        "就诊日",
        "挂号日期",
        "visit_date",
        "visitdate",
        "visit_time",
        "admission_date",
        "encounter_date",
        "日期",
        "date",
    ],
    "diagnosis": [
        "诊断",
        "诊断名称",
        "临床诊断",
        "门诊诊断",
        "主要诊断",
        "入院诊断",
        "出院诊断",
        "diagnosis",
        "diagnoses",
        "dx",
        "diagnosis_name",
    ],
    "test": [
        "检验项目",
        "项目",
        "项目名称",
        "检验名称",
        "检验项目名称",
        "检查项目",
        "化验项目",
        "test",
        "item",
        "test_name",
        "lab_item",
        "analyte",
        "item_name",
    ],
    "result": ["结果", "检验结果", "结果值", "数值", "检验值", "result", "value", "result_value"],
    "unit": ["单位", "结果单位", "unit", "units"],
    "ref_range": [
        "参考范围",
        "参考值",
        "参考区间",
        "正常值",
        "正常范围",
        "参考值范围",
        "ref_range",
        "reference_range",
        "reference",
        "normal_range",
        "range",
    ],
    "observed_at": [
        "检验日期",
        "检验时间",
        "报告日期",
        "报告时间",
        "采样时间",
        "采样日期",
        "送检日期",
        "test_date",
        "collected",
        "result_date",
        "report_date",
        "collection_date",
    ],
}

# Default HL7 v2 field per key, first present wins.
HL7_FIELDS: dict[str, list[str]] = {
    "id_number": ["PID-3[NNCHN]", "PID-3[ID]", "PID-3[NI]", "PID-19"],
    "patient_id": ["PID-3[PI]", "PID-3[MR]", "PID-2", "PID-3.1"],
    "name": ["PID-5"],
    "sex": ["PID-8"],
    "birth_date": ["PID-7"],
    "phone": ["PID-13", "PID-14"],
    "address": ["PID-11"],
    "visit_id": ["PV1-19"],
    "visit_date": ["PV1-44", "EVN-2"],
    "diagnosis": ["DG1-3.2", "DG1-4", "DG1-3"],
    "test": ["OBX-3"],
    "result": ["OBX-5"],
    "unit": ["OBX-6.1", "OBX-6"],
    "ref_range": ["OBX-7"],
    "observed_at": ["OBX-14", "OBR-7"],
}


class FieldMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    element: str = Field(description="FHIR element the column fills (see ELEMENTS)")
    value_map: dict[str, str] = Field(default_factory=dict, description="Source value -> value before normalising")
    date_formats: list[str] = Field(default_factory=list, description="strptime formats tried before the built-in ones")
    unit: str | None = Field(default=None, description="Unit of the values when the row does not state one")
    code_system: str | None = Field(default=None, description="Code system of coded values (LOINC, icd10-cn ...)")
    analyte: str | None = Field(default=None, description="For a wide lab column: the analyte it holds")
    required: bool = False

    @field_validator("element")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in ELEMENTS:
            raise ValueError(f"unknown element {v!r}; one of: {', '.join(ELEMENTS)}")
        return v

    @field_validator("value_map", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        return {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _analyte(self) -> FieldMap:
        if self.analyte is not None:
            if self.analyte not in analytes()[0]:
                raise ValueError(f"unknown analyte {self.analyte!r}")
            if self.element != "Observation.value":
                raise ValueError("analyte is only for element Observation.value")
        return self

    @property
    def key(self) -> str:
        return ELEMENTS[self.element]


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(default=None, description="Source name: the identifier system of its records")
    format: str | None = None  # csv | tsv | xlsx | jsonl | hl7; None = from the file
    encoding: str | None = None  # None = detected
    delimiter: str | None = None
    utc_offset: str = "+08:00"
    columns: dict[str, FieldMap] = Field(default_factory=dict)
    identity: list[str] = Field(default_factory=list, description="Columns that identify a person")
    match_threshold: float = 0.9
    review_threshold: float = 0.6

    @field_validator("columns", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        # `姓名: Patient.name` is accepted as short for `姓名: {element: Patient.name}`
        if isinstance(v, dict):
            return {str(k): ({"element": x} if isinstance(x, str) else x) for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _checks(self) -> Profile:
        singles: dict[str, str] = {}
        for col, fm in self.columns.items():
            if fm.key in ("ignore",) or fm.analyte:
                continue
            if fm.key in singles:
                raise ValueError(f"columns {singles[fm.key]!r} and {col!r} both map to {fm.element}")
            singles[fm.key] = col
        unknown = [c for c in self.identity if c not in self.columns]
        if unknown:
            raise ValueError(f"identity names columns the profile does not map: {unknown}")
        return self

    # --- lookups ------------------------------------------------------------------------------------

    def column(self, key: str) -> str | None:
        for col, fm in self.columns.items():
            if fm.key == key and not fm.analyte:
                return col
        return None

    def field(self, key: str) -> FieldMap | None:
        col = self.column(key)
        return self.columns[col] if col else None

    def wide_columns(self) -> list[tuple[str, FieldMap]]:
        return [(c, fm) for c, fm in self.columns.items() if fm.analyte]

    def identity_columns(self) -> list[str]:
        if self.identity:
            return self.identity
        return [c for k in PERSON_KEYS if (c := self.column(k))]

    def check_columns(self, headers: list[str], file: str) -> None:
        """Clear error before anything is written when the file lacks what the profile needs."""
        present = set(headers)
        missing = [c for c, fm in self.columns.items() if fm.required and c not in present]
        if self.format != "hl7" and not any(self.column(k) in present for k in ("id_number", "name", "patient_id")):
            missing.append("姓名/身份证号/病历号 (name / ID number / patient id)")
        if missing:
            raise BadRequest(
                f"{file}：缺少必需的列 {', '.join(missing)}",
                f"{file}: missing required columns {', '.join(missing)}",
                element="columns",
            )

    # --- YAML ---------------------------------------------------------------------------------------

    def to_yaml(self) -> str:
        data = self.model_dump(exclude_defaults=True)
        data["columns"] = {c: fm.model_dump(exclude_defaults=True) for c, fm in self.columns.items()}
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)

    @classmethod
    def from_yaml(cls, text: str) -> Profile:
        try:
            data = yaml.safe_load(text) or {}
            return cls.model_validate(data)
        except (yaml.YAMLError, ValidationError) as exc:
            raise BadRequest(
                f"映射配置文件有误：{exc}", f"The mapping profile is invalid: {exc}", element="profile"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Profile:
        return cls.from_yaml(Path(path).read_text(encoding="utf-8"))


def _hkey(header: str) -> tuple[str, str | None]:
    """A header's matching form and the unit in its brackets: ``血糖（mg/dL）`` -> (``血糖``, ``mg/dL``)."""
    text = unicodedata.normalize("NFKC", str(header)).strip()
    unit = None
    m = re.search(r"[(\[](.+?)[)\]]\s*$", text)
    if m:
        if ucum_unit(m.group(1)):
            unit = m.group(1).strip()
        text = text[: m.start()]
    text = text.casefold()
    text = re.sub(r"[\s\-.]+", "_", text).strip("_")
    return text, unit


_SYN_INDEX = {(_hkey(s)[0]): key for key, syns in SYNONYMS.items() for s in syns}


def infer_profile(headers: list[str], *, format: str | None = None, source: str | None = None) -> Profile:
    """Proposes a profile from headers: Chinese and English synonyms, then lab analyte names as wide columns."""
    columns: dict[str, FieldMap] = {}
    taken: set[str] = set()
    if format == "hl7":
        present = set(headers)
        for key, fields in HL7_FIELDS.items():
            for f in fields:
                if f in present:
                    columns[f] = FieldMap(element=_element_of(key))
                    break
        return Profile(source=source, format="hl7", columns=columns)
    keys = [(h, *_hkey(h)) for h in headers]
    # exact synonyms first
    for header, hk, _unit in keys:
        key = _SYN_INDEX.get(hk) or _SYN_INDEX.get(hk.replace("_", ""))
        if key and key not in taken:
            columns[header] = FieldMap(element=_element_of(key))
            taken.add(key)
    # then headers that contain a Chinese synonym (病人性别 -> 性别), longest synonym first
    contains = sorted(
        ((s, k) for k, syns in SYNONYMS.items() for s in syns if re.search(r"[\u4e00-\u9fff]", s) and len(s) >= 2),
        key=lambda p: -len(p[0]),
    )
    for header, hk, _unit in keys:
        if header in columns:
            continue
        for syn, key in contains:
            if key not in taken and syn in hk and not find_analyte(header):
                columns[header] = FieldMap(element=_element_of(key))
                taken.add(key)
                break
    # remaining columns that name an analyte hold its results (wide layout)
    for header, _hk, unit in keys:
        if header in columns:
            continue
        analyte = find_analyte(header)
        if analyte is not None:
            columns[header] = FieldMap(element="Observation.value", analyte=analyte.key, unit=unit)
    # in header order, unmapped ones listed as `ignore` for the reviewer, so every column is accounted for
    columns = {h: columns.get(h) or FieldMap(element="ignore") for h in headers}
    return Profile(source=source, format=format, columns=columns)


def _element_of(key: str) -> str:
    return next(e for e, k in ELEMENTS.items() if k == key)
