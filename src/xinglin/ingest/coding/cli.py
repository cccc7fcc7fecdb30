"""``xinglin code-dx`` and ``xinglin codes load``: diagnosis coding from the command line.

Registered by the main app, e.g. ``app.command("code-dx")(code_dx_command)`` and
``codes_app.command("load")(codes_load_command)``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table

from xinglin.core.errors import XinglinError
from xinglin.ingest.coding import default_index_path
from xinglin.ingest.coding.coder import DiagnosisCoder
from xinglin.ingest.coding.codeset import load_code_set

SYSTEMS = {"icd10-cn": "ICD-10 中国临床版 / Chinese clinical edition (diagnoses)"}
MAX_TEXT = 2000  # characters of one diagnosis string accepted in batch mode


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _error(line_no: int, field: str, zh: str, en: str, record_id: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"line": line_no, "error": {"field": field, "message": zh, "message_en": en}}
    if record_id is not None:
        out["id"] = record_id
    return out


def code_line(coder: DiagnosisCoder, raw: str, line_no: int, top_k: int) -> dict[str, Any]:
    """One JSON line ``{"text": ...}`` -> ``{"text", "codes": [...]}`` or an error object naming the field."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return _error(
            line_no, "json", f"第{line_no}行不是有效的 JSON：{exc.msg}", f"line {line_no} is not valid JSON: {exc.msg}"
        )
    if not isinstance(obj, dict):
        return _error(
            line_no, "text", '每行应为 JSON 对象 {"text": ...}', 'each line must be a JSON object {"text": ...}'
        )
    record_id = obj.get("id")
    text = obj.get("text")
    if text is None:
        return _error(line_no, "text", "缺少字段 text（诊断文本）", "missing field text (the diagnosis)", record_id)
    if not isinstance(text, str):
        return _error(line_no, "text", "字段 text 必须是字符串", "field text must be a string", record_id)
    if not text.strip():
        return _error(line_no, "text", "字段 text 为空", "field text is empty", record_id)
    if len(text) > MAX_TEXT:
        return _error(
            line_no,
            "text",
            f"字段 text 超过 {MAX_TEXT} 个字符",
            f"field text is longer than {MAX_TEXT} characters",
            record_id,
        )
    out: dict[str, Any] = {} if record_id is None else {"id": record_id}
    out["text"] = text
    out["codes"] = [d.to_dict() for d in coder.code(text, top_k=top_k)]
    return out


def run_batch(coder: DiagnosisCoder, stream: TextIO, out: TextIO, *, top_k: int = 3) -> tuple[int, int]:
    """One result line per non-blank input line, same order; a bad line gives an error object and we go on."""
    done = errors = 0
    for line_no, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        done += 1
        result = code_line(coder, raw, line_no, top_k)
        errors += "error" in result
        out.write(_dumps(result) + "\n")
    out.flush()
    return done, errors


def _open_index(index: str | None, err: Console) -> DiagnosisCoder:
    if index is None and default_index_path().is_file():
        index = str(default_index_path())
    if index is None:
        err.print(
            "[red]请用 --index 指定诊断编码索引（由 xinglin codes load 生成）/ "
            "give --index PATH (written by xinglin codes load)[/]"
        )
        raise typer.Exit(2)
    try:
        return DiagnosisCoder.load(index)
    except XinglinError as exc:
        err.print(f"[red]{exc.zh} / {exc.en}[/]")
        raise typer.Exit(2) from None


def code_dx_command(
    text: Annotated[
        str | None, typer.Argument(help="诊断文本（可含多个诊断）/ diagnosis text, may hold several")
    ] = None,
    jsonl: Annotated[
        str | None, typer.Option("--jsonl", help="批量：JSON Lines 文件，- 为标准输入 / batch file, - for stdin")
    ] = None,
    index: Annotated[str | None, typer.Option("--index", help="诊断编码索引 / index written by codes load")] = None,
    top_k: Annotated[
        int,
        typer.Option("--top-k", min=0, max=20, help="无确定结果时给出的候选数 / suggestions when nothing is certain"),
    ] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="输出 JSON / print JSON")] = False,
) -> None:
    """诊断编码：自由文本 -> ICD 编码 / Code free-text diagnoses with the loaded code set."""
    err = Console(stderr=True)
    if (text is None) == (jsonl is None):
        err.print("[red]请给出 TEXT 或 --jsonl 之一 / give either TEXT or --jsonl[/]")
        raise typer.Exit(2)
    if jsonl is not None and jsonl != "-" and not Path(jsonl).is_file():
        err.print(f"[red]找不到文件 / file not found: {jsonl}[/]")
        raise typer.Exit(2)
    coder = _open_index(index, err)
    if jsonl is not None:
        if jsonl == "-":
            done, errors = run_batch(coder, sys.stdin, sys.stdout, top_k=top_k)
        else:
            with Path(jsonl).open(encoding="utf-8-sig") as fh:
                done, errors = run_batch(coder, fh, sys.stdout, top_k=top_k)
        err.print(f"已处理 {done} 行，{errors} 行有错误 / {done} lines, {errors} with errors")
        return
    assert text is not None
    if not text.strip():
        err.print("[red]诊断文本为空 / the diagnosis text is empty[/]")
        raise typer.Exit(2)
    found = coder.code(text, top_k=top_k)
    if json_output:
        typer.echo(_dumps({"text": text, "codes": [d.to_dict() for d in found]}))
        return
    table = Table(title=f"诊断编码 / coded: {text}", title_justify="left")
    table.add_column("编码 Code", style="bold")
    table.add_column("名称 Name")
    table.add_column("分数 Score", justify="right")
    for d in found:
        style = "" if d.score >= coder.model.threshold else "dim"
        table.add_row(d.code, d.name, f"{d.score:.2f}", style=style)
    Console().print(table)
    if not found:
        typer.echo("未找到编码 / no code found")
    elif all(d.score < coder.model.threshold for d in found):
        typer.echo("（低分候选，请人工确认 / low-score suggestions: please review）")


def codes_load_command(
    path: Annotated[Path, typer.Argument(help="代码表 .xlsx 或 code,name CSV / code list (.xlsx or CSV)")],
    system: Annotated[str, typer.Option("--system", help="编码体系 / code system: icd10-cn")] = "icd10-cn",
    out: Annotated[Path | None, typer.Option("--out", help="索引输出路径 / where to write the index (.npz)")] = None,
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="CSV 编码（默认自动识别）/ CSV encoding (detected if omitted)")
    ] = None,
) -> None:
    """读取医院提供的代码表并建立诊断编码索引 / Read a hospital's code list and build the coding index."""
    err = Console(stderr=True)
    if system not in SYSTEMS:
        err.print(f"[red]不支持的编码体系 / unsupported system: {system} (supported: {', '.join(SYSTEMS)})[/]")
        raise typer.Exit(2)
    target = out or default_index_path(system)
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        code_set = load_code_set(path, encoding=encoding)
        read_s = time.perf_counter() - t0
        coder = DiagnosisCoder.build(code_set.concepts)
        build_s = time.perf_counter() - t0 - read_s
        coder.dump(target)
    except XinglinError as exc:
        err.print(f"[red]{exc.zh}\n{exc.en}[/]")
        problems = getattr(exc, "problems", [])
        for p in problems[1:]:
            err.print(f"  第{p.row}行 {p.field}：{p.zh} / row {p.row}, {p.field}: {p.en}")
        raise typer.Exit(1) from None
    learned = sum(1 for t in coder.model.targets if t in coder.name_id)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("体系 System", f"{system} — {SYSTEMS[system]}")
    table.add_row("文件 File", f"{path.name} ({code_set.encoding})")
    table.add_row("读取行 Rows read", str(code_set.rows_read))
    table.add_row("编码 Codes", str(len(code_set.concepts)))
    table.add_row("不同名称 Distinct names", str(len(coder.names)))
    table.add_row("重复行（已忽略）Duplicate rows dropped", str(code_set.duplicates))
    conflicts = code_set.conflicts
    shown = ", ".join(conflicts[:5]) + (" …" if len(conflicts) > 5 else "")
    table.add_row("编码冲突（保留首行）Conflicting codes (first kept)", f"{len(conflicts)} {shown}".strip())
    table.add_row("已匹配的学习名称 Learned names matched", f"{learned}/{len(coder.model.targets)}")
    table.add_row("耗时 Time", f"read {read_s:.1f}s, build {build_s:.1f}s")
    table.add_row("索引 Index", f"{target} ({target.stat().st_size / 1e6:.1f} MB)")
    Console().print(table)
