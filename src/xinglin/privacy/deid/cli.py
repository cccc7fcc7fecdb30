"""``xinglin deid``: de-identify JSON lines.  The lead registers ``app.command("deid")(deid_command)``."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from .service import apply, detect_many

_BATCH = 256  # lines per batch: batching amortises the per-call cost of the tagger


class DeidMode(StrEnum):
    tag = "tag"
    pseudonym = "pseudonym"


def _error(line_no: int, zh: str, en: str) -> dict:
    # Never echo the input line: it may hold personal data.
    return {"line": line_no, "error": {"field": "text", "message_zh": zh, "message_en": en}}


def _parse(line: str, line_no: int) -> str | dict:
    """The ``text`` of one input line, or an error object."""
    if not line.strip():
        return _error(line_no, "空行：缺少 text 字段", "empty line: field 'text' is missing")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return _error(line_no, "不是有效的 JSON：无法读取 text 字段", "not valid JSON: field 'text' cannot be read")
    if not isinstance(obj, dict):
        return _error(line_no, "应为 JSON 对象，含 text 字段", "expected a JSON object with field 'text'")
    if "text" not in obj:
        return _error(line_no, "缺少 text 字段", "field 'text' is missing")
    if not isinstance(obj["text"], str):
        return _error(line_no, "text 字段必须是字符串", "field 'text' must be a string")
    return obj["text"]


def _lines(source: TextIO) -> Iterator[str]:
    for raw in source:
        yield raw.rstrip("\r\n")


def run(source: TextIO, sink: TextIO, *, mode: str, key: bytes | None, date_shift_days: int) -> tuple[int, int]:
    """Process a JSON-lines stream; returns (lines, errors).  Output keeps the input order."""
    total = errors = 0
    batch: list[tuple[int, str | dict]] = []

    def flush() -> None:
        texts = [item for _, item in batch if isinstance(item, str)]
        found = iter(detect_many(texts))
        for _, item in batch:
            if isinstance(item, dict):
                out: dict = item
            else:
                ents = next(found)
                masked = apply(item, ents, mode=mode, key=key, date_shift_days=date_shift_days)  # type: ignore[arg-type]
                out = {"masked": masked, "entities": [e.to_dict() for e in ents]}
            sink.write(json.dumps(out, ensure_ascii=False) + "\n")
        batch.clear()

    for line_no, line in enumerate(_lines(source), start=1):
        item = _parse(line, line_no)
        total += 1
        errors += isinstance(item, dict)
        batch.append((line_no, item))
        if len(batch) >= _BATCH:
            flush()
    flush()
    sink.flush()
    return total, errors


def deid_command(
    jsonl: Annotated[
        str,
        typer.Option("--jsonl", help='JSON-lines file with {"text": ...} per line, or - for standard input.'),
    ],
    mode: Annotated[DeidMode, typer.Option("--mode", help="tag: [PERSON] ...; pseudonym: keyed pseudonyms.")] = (
        DeidMode.tag
    ),
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="Export key for pseudonym mode (raw bytes). Default: a new random key."),
    ] = None,
    date_shift_days: Annotated[int, typer.Option("--date-shift-days", help="Shift dates (pseudonym mode).")] = 0,
) -> None:
    """De-identify clinical text: lines {"text"} -> lines {"masked", "entities"} in the same order.

    去标识化：每行 {"text"} 输出 {"masked", "entities"}，顺序不变；错误行输出错误对象并继续处理。
    """
    key: bytes | None = None
    if mode is DeidMode.pseudonym:
        if key_file is not None:
            try:
                key = key_file.read_bytes().strip()
            except OSError:
                typer.echo("无法读取密钥文件 / cannot read --key-file", err=True)
                raise typer.Exit(2) from None
            if not key:
                typer.echo("密钥文件为空 / --key-file is empty", err=True)
                raise typer.Exit(2)
        else:
            key = secrets.token_bytes(32)
            typer.echo(
                "未指定密钥，已为本次导出生成随机密钥 / no --key-file: using a random key for this run", err=True
            )
    if jsonl == "-":
        total, errors = run(sys.stdin, sys.stdout, mode=mode.value, key=key, date_shift_days=date_shift_days)
    else:
        try:
            source = open(jsonl, encoding="utf-8-sig")  # noqa: SIM115 - closed below
        except OSError:
            typer.echo("无法打开输入文件 / cannot open --jsonl file", err=True)
            raise typer.Exit(2) from None
        with source:
            total, errors = run(source, sys.stdout, mode=mode.value, key=key, date_shift_days=date_shift_days)
    typer.echo(f"共 {total} 行，错误 {errors} 行 / {total} lines, {errors} errors", err=True)
    if errors:
        raise typer.Exit(1)
