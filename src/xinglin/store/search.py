"""FHIR search: parses query parameters and builds the SQL that finds matching resources."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true

from xinglin.core.errors import BadRequest
from xinglin.store.indexer import date_range, fold
from xinglin.store.models import INDEX_TABLES, idx_reference, resource
from xinglin.store.search_params import DEFINITIONS, PATIENT_COMPARTMENT, SearchParam, params_for
from xinglin.store.subsetting import Subset, parse_subset

CONTROL = {
    "_count",
    "_offset",
    "_sort",
    "_summary",
    "_include",
    "_revinclude",
    "_total",
    "_format",
    "_pretty",
    "_elements",
}
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


@dataclass
class Include:
    source_type: str
    param: str
    target_type: str | None
    reverse: bool = False


@dataclass
class SearchQuery:
    resource_type: str
    conditions: list[ColumnElement] = field(default_factory=list)
    order_by: list = field(default_factory=list)
    count: int = 20
    offset: int = 0
    summary_count: bool = False
    total: bool = True
    includes: list[Include] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)  # what was understood, for self links
    subset: Subset | None = None  # _summary=true|text|data or _elements


def _bad(zh: str, en: str, element: str) -> BadRequest:
    return BadRequest(zh, en, element=element)


def _split_values(raw: str) -> list[str]:
    # Commas separate alternatives (OR); "\," is a literal comma.
    return [v.replace("\\,", ",") for v in re.split(r"(?<!\\),", raw)]


def _prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-."):
        return value[:2], value[2:]
    return "eq", value


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def parse(
    resource_type: str,
    raw: list[tuple[str, str]],
    *,
    tenant_id: int,
    page_size: int,
    max_page_size: int,
    strict: bool = True,
) -> SearchQuery:
    q = SearchQuery(resource_type=resource_type, count=page_size)
    known = params_for(resource_type)
    for key, value in raw:
        name, _, modifier = key.partition(":")
        if name in CONTROL:
            _control(q, name, value, known, max_page_size)
            if name not in ("_format", "_pretty"):
                q.params.append((key, value))
            continue
        if name in ("_id", "_lastUpdated"):
            q.conditions.append(_column_condition(name, modifier, value))
            q.params.append((key, value))
            continue
        if "." in key:
            q.conditions.append(_chained_condition(resource_type, key, value, tenant_id))
            q.params.append((key, value))
            continue
        sp = known.get(name)
        if sp is None and name.startswith("_"):
            continue  # result parameters we do not implement (_contained ...) may be ignored
        if sp is None:
            if strict:
                raise _bad(
                    f"{resource_type} 不支持搜索参数 {name}",
                    f"Unknown search parameter '{name}' for {resource_type}",
                    element=name,
                )
            continue
        q.conditions.append(_param_condition(sp, modifier, value, resource_type, tenant_id))
        q.params.append((key, value))
    if not q.order_by:
        q.order_by = [resource.c.pk]
    given = dict(raw)
    q.subset = parse_subset(given.get("_summary"), given.get("_elements"))
    return q


def _control(q: SearchQuery, name: str, value: str, known: dict[str, SearchParam], max_page_size: int) -> None:
    if name == "_count":
        if not value.isdigit() or len(value) > 12:
            raise _bad("_count 应为非负整数", "_count must be a non-negative integer", "_count")
        q.count = min(int(value), max_page_size)
    elif name == "_offset":
        if not value.isdigit() or len(value) > 12:
            raise _bad("_offset 应为非负整数", "_offset must be a non-negative integer", "_offset")
        q.offset = int(value)
    elif name == "_summary":
        q.summary_count = value == "count"
    elif name == "_total":
        q.total = value != "none"
    elif name == "_sort":
        for item in filter(None, value.split(",")):
            desc = item.startswith("-")
            key = item.lstrip("-")
            col = _sort_column(key, known, q.resource_type)
            q.order_by.append(col.desc() if desc else col.asc())
    elif name in ("_include", "_revinclude"):
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise _bad(f"{name} 格式应为 类型:参数[:目标类型]", f"{name} must be Type:param[:TargetType]", name)
        source, param = parts[0], parts[1]
        sp = params_for(source).get(param)
        if sp is None or sp.type != "reference":
            raise _bad(
                f"{name} 中的 {value} 不是引用类搜索参数",
                f"{name}: '{value}' is not a reference parameter",
                name,
            )
        if name == "_include" and source != q.resource_type:
            raise _bad(
                f"_include 的源类型应为 {q.resource_type}",
                f"_include must start with {q.resource_type}",
                name,
            )
        q.includes.append(Include(source, param, parts[2] if len(parts) == 3 else None, name == "_revinclude"))


def _sort_column(key: str, known: dict[str, SearchParam], resource_type: str):
    if key == "_lastUpdated":
        return resource.c.last_updated
    if key == "_id":
        return resource.c.id
    sp = known.get(key)
    if sp is None or sp.type == "reference":
        raise _bad(f"不能按 {key} 排序", f"Cannot sort {resource_type} by '{key}'", "_sort")
    table = INDEX_TABLES["quantity" if sp.type == "number" else sp.type]
    value_col = {"string": "value", "token": "code", "date": "low", "quantity": "value", "number": "value"}[sp.type]
    return (
        select(func.min(table.c[value_col]))
        .where(table.c.resource_pk == resource.c.pk, table.c.param == sp.name)
        .scalar_subquery()
    )


def _column_condition(name: str, modifier: str, raw: str) -> ColumnElement:
    values = _split_values(raw)
    if name == "_id":
        return resource.c.id.in_(values)
    return or_(
        *(_date_condition(resource.c.last_updated, resource.c.last_updated, v, name, point=True) for v in values)
    )


def _indexed(sp: SearchParam, resource_type: str, tenant_id: int, cond: ColumnElement):
    table = INDEX_TABLES["quantity" if sp.type == "number" else sp.type]
    # Never correlated: a chain nests one index subquery in another, possibly of the same table.
    return (
        select(table.c.resource_pk)
        .where(
            table.c.tenant_id == tenant_id,
            table.c.resource_type == resource_type,
            table.c.param == sp.name,
            cond,
        )
        .correlate(None)
    )


def _param_condition(
    sp: SearchParam, modifier: str, raw: str, resource_type: str, tenant_id: int, pk=resource.c.pk
) -> ColumnElement:
    """The condition on the resource whose primary key is `pk` (the searched table, or a chain's target)."""
    if modifier == "missing":
        present = pk.in_(_indexed(sp, resource_type, tenant_id, true()))
        if raw not in ("true", "false"):
            raise _bad(f"{sp.name}:missing 应为 true 或 false", f"{sp.name}:missing must be true or false", sp.name)
        return not_(present) if raw == "true" else present
    table = INDEX_TABLES["quantity" if sp.type == "number" else sp.type]
    alternatives = [_value_condition(sp, modifier, v, table) for v in _split_values(raw) if v != ""]
    if not alternatives:
        raise _bad(f"搜索参数 {sp.name} 缺少取值", f"Search parameter '{sp.name}' has no value", sp.name)
    matched = pk.in_(_indexed(sp, resource_type, tenant_id, or_(*alternatives)))
    return not_(matched) if modifier == "not" else matched


def _chained_condition(resource_type: str, key: str, value: str, tenant_id: int) -> ColumnElement:
    """One level of chaining: `subject:Patient.name=王` (or `subject.name=王`, every type that has `name`)
    matches resources whose reference points at a current resource matching the chained parameter."""
    link, _, chained = key.partition(".")
    name, _, target_type = link.partition(":")
    sp = params_for(resource_type).get(name)
    if sp is None or sp.type != "reference":
        raise _bad(
            f"{resource_type} 的 {name} 不是引用类搜索参数，不能链式搜索",
            f"'{name}' is not a reference parameter of {resource_type}, so it cannot be chained",
            key,
        )
    if "." in chained:
        raise _bad("只支持一级链式搜索", "Only one level of chaining is supported", key)
    chained_name, _, chained_modifier = chained.partition(":")
    if target_type:
        targets = [target_type] if chained_name in params_for(target_type) else []
    else:
        targets = sorted(t for t in DEFINITIONS if chained_name in params_for(t))
    if not targets:
        raise _bad(
            f"链式搜索 {key} 的目标类型没有搜索参数 {chained_name}",
            f"No target type of '{key}' has the search parameter '{chained_name}'",
            key,
        )
    target = resource.alias("chain_target")
    pointed_at = [
        and_(
            idx_reference.c.target_id.in_(
                select(target.c.id)
                .where(
                    target.c.tenant_id == tenant_id,
                    target.c.resource_type == ttype,
                    target.c.deleted.is_(False),
                    _param_condition(
                        params_for(ttype)[chained_name], chained_modifier, value, ttype, tenant_id, pk=target.c.pk
                    ),
                )
                .correlate(None)
            ),
            or_(idx_reference.c.target_type == ttype, idx_reference.c.target_type.is_(None)),
        )
        for ttype in targets
    ]
    return resource.c.pk.in_(_indexed(sp, resource_type, tenant_id, or_(*pointed_at)))


def _value_condition(sp: SearchParam, modifier: str, value: str, table) -> ColumnElement:
    t = sp.type
    if t == "string":
        if modifier == "exact":
            return table.c.exact == value
        if modifier == "contains":
            return table.c.value.like("%" + _like_escape(fold(value)) + "%", escape="\\")
        if modifier:
            raise _unsupported_modifier(sp, modifier)
        # "starts with" as a range, which a B-tree index serves on both backends (LIKE needs special indexes)
        prefix = fold(value)
        return and_(table.c.value >= prefix, table.c.value < prefix + "\U0010ffff")
    if t == "token":
        if modifier not in ("", "not"):
            raise _unsupported_modifier(sp, modifier)
        if "|" not in value:
            return table.c.code == value
        system, code = value.split("|", 1)
        if not system:
            return and_(table.c.system.is_(None), table.c.code == code)
        if not code:
            return table.c.system == system
        return and_(table.c.system == system, table.c.code == code)
    if t == "date":
        if modifier:
            raise _unsupported_modifier(sp, modifier)
        return _date_condition(table.c.low, table.c.high, value, sp.name)
    if t == "reference":
        return _reference_condition(sp, modifier, value, table)
    if t in ("quantity", "number"):
        if modifier:
            raise _unsupported_modifier(sp, modifier)
        return _number_condition(sp, value, table)
    raise _unsupported_modifier(sp, modifier)  # pragma: no cover


def _unsupported_modifier(sp: SearchParam, modifier: str) -> BadRequest:
    return _bad(
        f"搜索参数 {sp.name} 不支持修饰符 :{modifier}",
        f"Modifier ':{modifier}' is not supported on '{sp.name}'",
        f"{sp.name}:{modifier}",
    )


def _date_condition(low_col, high_col, value: str, name: str, *, point: bool = False) -> ColumnElement:
    prefix, text = _prefix(value)
    rng = date_range(text)
    if rng is None:
        raise _bad(f"{name} 的日期“{text}”格式不正确", f"'{text}' is not a valid date for {name}", name)
    plow, phigh = rng
    if point:  # a column holding one instant: compare it with the search period
        return {
            "eq": and_(low_col >= plow, low_col < phigh),
            "ne": or_(low_col < plow, low_col >= phigh),
            "gt": low_col >= phigh,
            "sa": low_col >= phigh,
            "lt": low_col < plow,
            "eb": low_col < plow,
            "ge": low_col >= plow,
            "le": low_col < phigh,
            "ap": and_(low_col >= plow, low_col < phigh),
        }[prefix]
    return {
        "eq": and_(low_col >= plow, high_col <= phigh),
        "ne": or_(low_col < plow, high_col > phigh),
        "gt": high_col > phigh,
        "lt": low_col < plow,
        "ge": high_col > plow,
        "le": low_col < phigh,
        "sa": low_col >= phigh,
        "eb": high_col <= plow,
        "ap": and_(low_col < phigh, high_col > plow),
    }[prefix]


def _number_condition(sp: SearchParam, value: str, table) -> ColumnElement:
    number, system, code = value, None, None
    if "|" in value:
        parts = value.split("|")
        if len(parts) != 3:
            raise _bad(f"{sp.name} 的取值应为 数值|系统|单位", f"'{sp.name}' must be number|system|code", sp.name)
        number, system, code = parts
    prefix, number = _prefix(number)
    try:
        dec = Decimal(number)
        if not dec.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise _bad(
            f"{sp.name} 的取值“{number}”不是数字", f"'{number}' is not a number for {sp.name}", sp.name
        ) from None
    num = float(dec)
    # "eq 5.4" means the interval the written precision implies: [5.35, 5.45).
    half = float(Decimal(1).scaleb(dec.as_tuple().exponent)) / 2
    col = table.c.value
    cond = {
        "eq": and_(col >= num - half, col < num + half),
        "ap": and_(col >= num * 0.9, col <= num * 1.1),
        "ne": or_(col < num - half, col >= num + half),
        "gt": col > num,
        "lt": col < num,
        "ge": col >= num,
        "le": col <= num,
        "sa": col > num,
        "eb": col < num,
    }[prefix]
    if system:
        cond = and_(cond, table.c.system == system)
    if code:
        cond = and_(cond, table.c.code == code)
    return cond


def _reference_condition(sp: SearchParam, modifier: str, value: str, table) -> ColumnElement:
    target_type = modifier or None
    if modifier and not modifier[:1].isupper():
        raise _unsupported_modifier(sp, modifier)
    parts = value.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2:
        target_type, target_id = parts[-2], parts[-1]
    else:
        target_id = parts[-1]
    cond = table.c.target_id == target_id
    if target_type:
        cond = and_(cond, or_(table.c.target_type == target_type, table.c.target_type.is_(None)))
    return cond


def compartment_condition(resource_type: str, patient_id: str, tenant_id: int) -> ColumnElement:
    """Limits a query on `resource` to one patient's compartment."""
    if resource_type == "Patient":
        return resource.c.id == patient_id
    params = PATIENT_COMPARTMENT.get(resource_type)
    if not params:
        return false()
    return resource.c.pk.in_(
        select(idx_reference.c.resource_pk).where(
            idx_reference.c.tenant_id == tenant_id,
            idx_reference.c.resource_type == resource_type,
            idx_reference.c.param.in_(params),
            idx_reference.c.target_id == patient_id,
            or_(idx_reference.c.target_type == "Patient", idx_reference.c.target_type.is_(None)),
        )
    )
