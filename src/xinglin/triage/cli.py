"""``xinglin triage``: triage one complaint, or a JSON-lines batch.

Registered by the main app as ``app.command("triage")(triage_command)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from xinglin.triage.engine import assess, check_request, check_vitals
from xinglin.triage.models import LABEL, LEVELS, TriageInputError, TriageResult

_LEVEL_STYLE = {1: "bold white on red", 2: "bold red", 3: "bold yellow", 4: "bold green"}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def parse_vitals(spec: str) -> dict[str, Any]:
    """``spo2=88,heart_rate=120,bp=150/90`` → dict (checked by the engine's rules)."""
    out: dict[str, Any] = {}
    for part in spec.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TriageInputError(
                "--vitals", f"生命体征格式应为 名称=数值：{part!r}", f"vital signs must look like name=value: {part!r}"
            )
        out[name.strip()] = value.strip()
    return check_vitals(out)


def _error_line(line_no: int, field: str, zh: str, en: str, record_id: Any = None) -> str:
    err: dict[str, Any] = {"line": line_no, "field": field, "message": zh, "message_en": en}
    payload: dict[str, Any] = {"error": err}
    if record_id is not None:
        payload["id"] = record_id
    return _dumps(payload)


def run_batch(stream: TextIO, out: TextIO) -> tuple[int, int]:
    """One JSON object per input line → one JSON result (or error object) per line, same order."""
    done = errors = 0
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        done += 1
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors += 1
            out.write(
                _error_line(
                    line_no,
                    "json",
                    f"第{line_no}行不是有效的 JSON：{exc.msg}",
                    f"line {line_no} is not valid JSON: {exc.msg}",
                )
                + "\n"
            )
            continue
        record_id = obj.get("id") if isinstance(obj, dict) else None
        try:
            kwargs = check_request(obj)
            result = assess(**kwargs).to_dict()
        except TriageInputError as exc:
            errors += 1
            out.write(_error_line(line_no, exc.field, exc.zh, exc.en, record_id) + "\n")
            continue
        if record_id is not None:
            result = {"id": record_id, **result}
        out.write(_dumps(result) + "\n")
    out.flush()
    return done, errors


def render(result: TriageResult, console: Console) -> None:
    """Human-readable result for a terminal."""
    level = LEVELS[result.level]
    d = result.department
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("科室 Clinic", f"[bold]{d.name}[/] {d.name_en} ({d.code})")
    table.add_row(
        "分级 Level",
        f"[{_LEVEL_STYLE[result.level]}] {result.level}级 {level.name} [/] {level.name_en}, "
        + ("立即 immediately" if result.level == 1 else f"≤{level.max_wait_minutes} 分钟 min"),
    )
    alts = "；".join(
        f"{a.department.name} {a.department.name_en} ({a.department.code}, {a.score:.2f})" for a in result.alternatives
    )
    table.add_row("备选 Alternatives", alts)
    if result.red_flags:
        table.add_row("危险信号 Red flags", "\n".join(f"[red]{f.code}[/]: {f.evidence}" for f in result.red_flags))
    table.add_row(
        "转人工 Escalate",
        "[bold red]是 YES — 请立即由医护人员评估 / a clinician must assess now[/]" if result.escalate else "否 no",
    )
    table.add_row("说明 Why", result.explanation)
    table.add_row("", result.explanation_en)
    console.print(Panel(table, title="xinglin triage", subtitle=f"{LABEL['zh']} {LABEL['en']}", expand=False))


def triage_command(
    text: Annotated[str | None, typer.Argument(help="主诉 / the complaint, in Chinese or English")] = None,
    age: Annotated[float | None, typer.Option("--age", help="年龄（岁，婴儿可用小数）/ age in years")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="male | female")] = None,
    pregnant: Annotated[bool, typer.Option("--pregnant", help="怀孕 / pregnant")] = False,
    vitals: Annotated[
        str | None, typer.Option("--vitals", help="生命体征 / vital signs, e.g. spo2=88,heart_rate=120,bp=150/90")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="输出 JSON / print JSON")] = False,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="批量：JSON Lines 文件，- 为标准输入 / batch file, - for stdin")
    ] = None,
) -> None:
    """智能导诊：推荐科室、分级和危险信号 / Triage a complaint: clinic, urgency level, red flags."""
    err = Console(stderr=True)
    if jsonl is not None:
        if text is not None:
            err.print("[red]请只给出 TEXT 或 --jsonl 之一 / give either TEXT or --jsonl, not both[/]")
            raise typer.Exit(2)
        if jsonl == "-":
            done, errors = run_batch(sys.stdin, sys.stdout)
        else:
            path = Path(jsonl)
            if not path.is_file():
                err.print(f"[red]找不到文件 / file not found: {jsonl}[/]")
                raise typer.Exit(2)
            with path.open(encoding="utf-8-sig") as fh:
                done, errors = run_batch(fh, sys.stdout)
        err.print(f"已处理 {done} 行，{errors} 行有错误 / {done} lines, {errors} with errors")
        return
    if text is None:
        err.print("[red]请提供主诉文本，或使用 --jsonl / give the complaint TEXT, or --jsonl FILE[/]")
        raise typer.Exit(2)
    try:
        parsed_vitals = parse_vitals(vitals) if vitals else None
        result = assess(text, age=age, sex=sex, pregnant=True if pregnant else None, vitals=parsed_vitals)
    except TriageInputError as exc:
        err.print(f"[red]{exc.field}: {exc.zh} / {exc.en}[/]")
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(_dumps(result.to_dict()))
    else:
        render(result, Console())
