"""The ingest report: counts that add up, completeness, invalid values, unmapped codes, rejections.

As JSON (``--report R.json``) for machines and as HTML (``--report R.html``) for people, with two inline
SVG bar charts. No report holds a personal value: rows are named by file and number only.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

MAX_LISTED = 10_000  # rejections / warnings listed one by one; all are counted

REASONS: dict[str, tuple[str, str]] = {
    "field_count": ("列数与表头不一致", "Number of fields differs from the header"),
    "invalid_json": ("不是合法的 JSON 对象", "Not a valid JSON object"),
    "hl7_parse": ("HL7 消息无法解析", "HL7 message cannot be parsed"),
    "unsupported_message": ("不支持的 HL7 消息类型", "Unsupported HL7 message type"),
    "no_identity": (
        "没有可识别患者的信息（姓名、身份证号或病历号）",
        "Nothing identifies the patient (name, ID number, patient id)",
    ),
    "id_format": ("身份证号格式错误", "ID number has the wrong format"),
    "id_checksum": ("身份证号校验位错误", "ID number check character is wrong"),
    "id_region": ("身份证号地区码不存在", "ID number region code does not exist"),
    "id_birth_date": ("身份证号中的出生日期不存在", "ID number holds an impossible birth date"),
    "id_birth_date_mismatch": ("出生日期与身份证号不符", "Birth date differs from the ID number"),
    "id_sex_mismatch": ("性别与身份证号不符", "Sex differs from the ID number"),
    "name_invalid": ("姓名含有数字或符号", "Name contains digits or symbols"),
    "name_missing": ("姓名为空", "Name is empty"),
    "sex_invalid": ("无法识别的性别", "Unrecognised sex"),
    "date_format": ("日期格式无法识别", "Unrecognised date format"),
    "date_invalid": ("日期不存在", "The date does not exist"),
    "date_missing": ("日期为空", "The date is empty"),
    "birth_date_range": ("出生日期不在合理范围内", "Birth date out of range"),
    "phone_invalid": ("无法识别的电话号码", "Unrecognised phone number"),
    "address_missing": ("地址为空", "Address is empty"),
    "lab_item_missing": ("检验项目为空", "Test item is empty"),
    "result_missing": ("检验结果为空", "Result is empty"),
    "unit_unknown": ("无法识别的单位", "Unrecognised unit"),
    "unit_unconvertible": ("该项目的单位无法换算", "Unit cannot be converted for this test"),
    "fhir_invalid": ("生成的 FHIR 资源未通过校验", "The FHIR resource built from the row is invalid"),
}


def reason_text(reason: str) -> tuple[str, str]:
    return REASONS.get(reason, (reason, reason))


@dataclass
class Rejection:
    file: str
    row: int
    field: str
    reason: str
    reason_zh: str
    reason_en: str
    segment: int | None = None


@dataclass
class IngestReport:
    files: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    dry_run: bool = False
    rows_read: int = 0
    rows_stored: int = 0  # rows that created their Patient
    rows_matched: int = 0  # rows attached to a Patient that existed (before the run or from an earlier row)
    rows_rejected: int = 0
    rows_already_ingested: int = 0  # matched rows a previous run had stored (nothing written)
    patients_created: int = 0
    patients_matched: int = 0  # distinct Patients that existed before this run and rows matched
    patients_updated: int = 0  # existing Patients that gained a source identifier
    reviews_created: int = 0  # uncertain matches sent to the review queue (Task mpi-review)
    resources_written: int = 0
    resources_by_type: Counter = field(default_factory=Counter)
    lab_units_converted: int = 0
    diagnoses_coded: int = 0
    present: Counter = field(default_factory=Counter)  # column -> rows with a value
    valid: Counter = field(default_factory=Counter)  # column -> rows with a valid value
    invalid_values: dict[str, Counter] = field(default_factory=dict)  # reason -> column -> count
    unmapped: dict[str, Counter] = field(default_factory=dict)  # kind (lab_item, unit, diagnosis) -> value -> n
    rejections: list[Rejection] = field(default_factory=list)
    rejections_by_reason: Counter = field(default_factory=Counter)
    warnings: list[Rejection] = field(default_factory=list)  # invalid values in rows that were still stored
    columns: dict[str, str] = field(default_factory=dict)  # column -> FHIR element
    seconds: float = 0.0

    # --- recording ----------------------------------------------------------------------------------

    def reject(
        self, file: str, row: int, fld: str, reason: str, segment: int | None = None, zh: str = "", en: str = ""
    ):
        rzh, ren = reason_text(reason)
        self.rows_rejected += 1
        self.rejections_by_reason[reason] += 1
        if len(self.rejections) < MAX_LISTED:
            self.rejections.append(Rejection(file, row, fld, reason, zh or rzh, en or ren, segment))

    def invalid(self, file: str, row: int, fld: str, reason: str, segment: int | None = None) -> None:
        self.invalid_values.setdefault(reason, Counter())[fld] += 1

    def warn(self, file: str, row: int, fld: str, reason: str, segment: int | None = None) -> None:
        self.invalid(file, row, fld, reason, segment)
        if len(self.warnings) < MAX_LISTED:
            rzh, ren = reason_text(reason)
            self.warnings.append(Rejection(file, row, fld, reason, rzh, ren, segment))

    def unmapped_value(self, kind: str, value: str) -> None:
        self.unmapped.setdefault(kind, Counter())[value] += 1

    def merge(self, other: IngestReport) -> None:
        """Adds a chunk's figures (kept apart until the chunk commits)."""
        for name in (
            "rows_stored", "rows_matched", "rows_rejected", "rows_already_ingested", "patients_created",
            "patients_matched", "patients_updated", "reviews_created", "resources_written", "lab_units_converted",
            "diagnoses_coded",
        ):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.resources_by_type.update(other.resources_by_type)
        self.present.update(other.present)
        self.valid.update(other.valid)
        for reason, counts in other.invalid_values.items():
            self.invalid_values.setdefault(reason, Counter()).update(counts)
        for kind, counts in other.unmapped.items():
            self.unmapped.setdefault(kind, Counter()).update(counts)
        self.rejections_by_reason.update(other.rejections_by_reason)
        self.rejections.extend(other.rejections[: MAX_LISTED - len(self.rejections)])
        self.warnings.extend(other.warnings[: MAX_LISTED - len(self.warnings)])

    def check(self) -> None:
        """Every row read is stored, matched or rejected."""
        accounted = self.rows_stored + self.rows_matched + self.rows_rejected
        assert self.rows_read == accounted, f"rows_read {self.rows_read} != {accounted} stored+matched+rejected"

    # --- output -------------------------------------------------------------------------------------

    def completeness(self) -> dict[str, dict[str, Any]]:
        out = {}
        for col, element in self.columns.items():
            if element == "ignore":
                continue
            out[col] = {
                "element": element,
                "present": self.present[col],
                "valid": self.valid[col],
                "completeness": round(self.valid[col] / self.rows_read, 4) if self.rows_read else 0.0,
            }
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "sources": self.sources,
            "dry_run": self.dry_run,
            "rows_read": self.rows_read,
            "rows_stored": self.rows_stored,
            "rows_matched": self.rows_matched,
            "rows_rejected": self.rows_rejected,
            "rows_already_ingested": self.rows_already_ingested,
            "patients_created": self.patients_created,
            "patients_matched": self.patients_matched,
            "patients_updated": self.patients_updated,
            "reviews_created": self.reviews_created,
            "resources_written": self.resources_written,
            "resources_by_type": dict(sorted(self.resources_by_type.items())),
            "lab_units_converted": self.lab_units_converted,
            "diagnoses_coded": self.diagnoses_coded,
            "completeness": self.completeness(),
            "invalid_values": {r: dict(c) for r, c in sorted(self.invalid_values.items())},
            "unmapped": {k: dict(c.most_common()) for k, c in sorted(self.unmapped.items())},
            "rejections_by_reason": dict(self.rejections_by_reason.most_common()),
            "rejections": [_drop_none(asdict(r)) for r in self.rejections],
            "warnings": [_drop_none(asdict(r)) for r in self.warnings],
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2)

    def to_html(self) -> str:
        data = self.as_dict()
        comp = [(c, v["completeness"]) for c, v in data["completeness"].items()]
        rej = [(reason_text(r)[0], float(n)) for r, n in data["rejections_by_reason"].items()]
        max_rej = max((n for _, n in rej), default=1.0) or 1.0
        return _template().render(
            r=data,
            completeness_svg=_bars(comp, 1.0, percent=True, color="#0f766e"),
            rejections_svg=_bars(rej, max_rej, percent=False, color="#b45309"),
            reason_text=reason_text,
        )

    def write(self, path: str | Path) -> None:
        path = Path(path)
        text = self.to_html() if path.suffix.lower() in (".html", ".htm") else self.to_json()
        path.write_text(text, encoding="utf-8")


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _bars(items: list[tuple[str, float]], scale: float, *, percent: bool, color: str) -> str:
    """A horizontal bar chart as inline SVG (no script, no external files)."""
    if not items:
        return '<p class="none">—</p>'
    row_h, label_w, bar_w = 24, 220, 360
    height = row_h * len(items) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 80}" height="{height}" '
        f'role="img" font-family="sans-serif" font-size="13">'
    ]
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        w = 0 if scale <= 0 else max(1.0, bar_w * value / scale) if value else 0
        shown = f"{value * 100:.1f}%" if percent else f"{int(value)}"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{_esc(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{color}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{shown}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>数据导入报告 / Ingest report</title>
<style>
body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;margin:2rem;color:#1f2937}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse}
td,th{border:1px solid #d1d5db;padding:.25rem .6rem;text-align:left}th{background:#f3f4f6}
.num{text-align:right}.none{color:#6b7280}
</style></head><body>
<h1>数据导入报告 / Ingest report{% if r.dry_run %}（试运行 / dry run）{% endif %}</h1>
<p>{{ r.files|join(", ") }}</p>
<table>
<tr><th>读取行数 / rows read</th><td class="num">{{ r.rows_read }}</td></tr>
<tr><th>新建患者的行 / rows stored (new patient)</th><td class="num">{{ r.rows_stored }}</td></tr>
<tr><th>匹配到已有患者的行 / rows matched</th><td class="num">{{ r.rows_matched }}</td></tr>
<tr><th>其中此前已导入 / of which already ingested</th><td class="num">{{ r.rows_already_ingested }}</td></tr>
<tr><th>拒收行数 / rows rejected</th><td class="num">{{ r.rows_rejected }}</td></tr>
<tr><th>新建患者 / patients created</th><td class="num">{{ r.patients_created }}</td></tr>
<tr><th>匹配的已有患者 / patients matched</th><td class="num">{{ r.patients_matched }}</td></tr>
<tr><th>待人工复核 / sent to review</th><td class="num">{{ r.reviews_created }}</td></tr>
<tr><th>写入资源 / resources written</th><td class="num">{{ r.resources_written }}
 {% for t, n in r.resources_by_type.items() %}<br>{{ t }}: {{ n }}{% endfor %}</td></tr>
</table>
<h2>字段完整率 / Completeness per field</h2>
{{ completeness_svg|safe }}
<h2>拒收原因 / Rejections per reason</h2>
{{ rejections_svg|safe }}
<h2>无效取值 / Invalid values</h2>
{% if r.invalid_values %}<table><tr><th>原因 / reason</th><th>列 / column</th><th>数量 / count</th></tr>
{% for reason, cols in r.invalid_values.items() %}{% for col, n in cols.items() %}
<tr><td>{{ reason_text(reason)[0] }} / {{ reason_text(reason)[1] }}</td><td>{{ col }}</td>
<td class="num">{{ n }}</td></tr>
{% endfor %}{% endfor %}</table>{% else %}<p class="none">—</p>{% endif %}
<h2>未映射的代码 / Unmapped codes</h2>
{% if r.unmapped %}<table><tr><th>类别 / kind</th><th>取值 / value</th><th>数量 / count</th></tr>
{% for kind, values in r.unmapped.items() %}{% for v, n in values.items() %}
<tr><td>{{ kind }}</td><td>{{ v }}</td><td class="num">{{ n }}</td></tr>{% endfor %}{% endfor %}
</table>{% else %}<p class="none">—</p>{% endif %}
<h2>拒收的行 / Rejected rows</h2>
{% if r.rejections %}<table><tr><th>文件 / file</th><th>行 / row</th><th>字段 / field</th><th>原因 / reason</th></tr>
{% for x in r.rejections %}<tr><td>{{ x.file }}</td>
<td class="num">{{ x.row }}{% if x.segment %}:{{ x.segment }}{% endif %}</td>
<td>{{ x.field }}</td><td>{{ x.reason_zh }} / {{ x.reason_en }}</td></tr>{% endfor %}</table>
{% else %}<p class="none">—</p>{% endif %}
</body></html>
"""


def _template():
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_HTML)
