"""Validation of resources against the FHIR R4 definitions, done once, on write.

Structure and datatypes come from `fhir.resources` (its R4B models: R4B is R4 with a handful of
medication-definition resources reworked, so every R4 clinical resource validates the same). Required
value-set bindings (Patient.gender, Observation.status ...) are checked here from the `enum_values` the
models carry, because pydantic alone accepts any code string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import BaseModel, ValidationError

from xinglin.core.errors import InvalidResource

_REASONS_ZH = {
    "missing": "缺少必填元素",
    "extra_forbidden": "不是该资源类型的元素",
    "string_type": "应为字符串",
    "list_type": "应为数组",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "decimal_type": "应为数字",
    "decimal_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "value_error": "取值格式不正确",
    "string_pattern_mismatch": "取值格式不正确",
    "date_from_datetime_parsing": "日期格式不正确",
}


@lru_cache(maxsize=512)
def model_class(resource_type: str) -> type[FHIRAbstractModel] | None:
    """The model of a resource type, or None when the name is not a FHIR resource."""
    if not resource_type or not resource_type[0].isupper():
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except (ValueError, AttributeError):
        return None
    resource_base = get_fhir_model_class("Resource")
    return cls if issubclass(cls, resource_base) else None


def is_resource_type(resource_type: str) -> bool:
    return model_class(resource_type) is not None


def _element(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part != "__root__":
            path += f".{part}"
    return path


def validate(resource: Any, *, expected_type: str | None = None) -> None:
    """Raises InvalidResource naming the first offending element; returns quietly when valid."""
    if not isinstance(resource, dict):
        raise InvalidResource("请求体应为 FHIR 资源（JSON 对象）", "The body must be a FHIR resource (a JSON object)")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise InvalidResource("缺少 resourceType", "resourceType is missing", element="resourceType")
    if expected_type and rtype != expected_type:
        raise InvalidResource(
            f"resourceType 为 {rtype}，与地址中的 {expected_type} 不一致",
            f"resourceType {rtype} does not match the {expected_type} in the URL",
            element="resourceType",
        )
    cls = model_class(rtype)
    if cls is None:
        raise InvalidResource(f"未知的资源类型 {rtype}", f"Unknown resource type {rtype}", element="resourceType")
    try:
        model = cls.model_validate(resource)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        element = _element(rtype, tuple(err.get("loc", ())))
        reason_zh = _REASONS_ZH.get(err.get("type", ""), "取值无效")
        raise InvalidResource(
            f"资源内容无效：{element} {reason_zh}",
            f"Invalid resource: {element}: {err.get('msg')}",
            element=element,
        ) from None
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        # fhir_core raises plain errors for some malformed shapes (e.g. an unknown contained resource type)
        raise InvalidResource(
            f"资源内容无效：{rtype}", f"Invalid resource {rtype}: {type(exc).__name__} {exc}"[:300], element=rtype
        ) from None
    _check_bindings(model, rtype)


# fhir.resources abbreviates a few long value sets with "+"; their complete R4 lists.
_COMPLETE_VALUE_SETS = [
    # observation-status (Observation, RiskAssessment, DetectedIssue)
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    # diagnostic-report-status
    {
        "registered",
        "partial",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "appended",
        "cancelled",
        "entered-in-error",
        "unknown",
    },
    # task-status
    {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    },
    # udi-entry-type
    {"barcode", "rfid", "manual", "card", "self-reported", "unknown"},
    # device-statement-status
    {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold"},
    # supplyrequest-status
    {"draft", "active", "suspended", "cancelled", "completed", "entered-in-error", "unknown"},
]


def _allowed_codes(enum: list[str]) -> frozenset[str] | None:
    if "+" not in enum:
        return frozenset(enum)
    listed = set(enum) - {"+"}
    for complete in _COMPLETE_VALUE_SETS:
        if listed <= complete:
            return frozenset(complete)
    return None  # a list we cannot complete is not enforced rather than wrongly enforced


@lru_cache(maxsize=2048)
def _coded_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, frozenset[str] | None], ...]:
    """(attribute, json name, allowed codes or None) for fields that are bound or may hold elements."""
    out = []
    for attr, field in cls.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        enum = extra.get("enum_values")
        out.append((attr, field.alias or attr, _allowed_codes(enum) if enum else None))
    return tuple(out)


def _check_bindings(model: BaseModel, path: str) -> None:
    for attr, name, allowed in _coded_fields(type(model)):
        value = getattr(model, attr, None)
        if value is None:
            continue
        many = isinstance(value, list)
        for i, item in enumerate(value if many else (value,)):
            if allowed is not None and isinstance(item, str):
                if item not in allowed:
                    where = f"{path}.{name}" + (f"[{i}]" if many else "")
                    codes = ", ".join(sorted(allowed))
                    raise InvalidResource(
                        f"{where} 的取值 “{item}” 不在规定的值集中（可选：{codes}）",
                        f"{where}: '{item}' is not in the required value set ({codes})",
                        element=where,
                    )
            elif isinstance(item, BaseModel):
                _check_bindings(item, f"{path}.{name}" + (f"[{i}]" if many else ""))
