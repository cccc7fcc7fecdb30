"""`xinglin deid --jsonl`: the typer command, driven through CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from xinglin.privacy.deid.cli import deid_command

app = typer.Typer()
app.command("deid")(deid_command)
app.command("noop")(lambda: None)  # a second command keeps "deid" a sub-command as in xinglin's CLI
runner = CliRunner()


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_lines_in_same_order_with_offsets(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    texts = ["患者王建国，电话13812345678。", "诊断：帕金森病。", "邮箱a.b@163.com"]
    src.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in texts) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["deid", "--jsonl", str(src)])
    assert result.exit_code == 0, result.output
    out = _lines(result.stdout)
    assert [o["masked"] for o in out] == ["患者[PERSON]，电话[PHONE]。", "诊断：帕金森病。", "邮箱[EMAIL]"]
    assert out[0]["entities"] == [{"type": "PERSON", "start": 2, "end": 5}, {"type": "PHONE", "start": 8, "end": 19}]
    assert out[1]["entities"] == []


def test_stdin_and_bad_lines_continue() -> None:
    data = '{"text": "电话13812345678"}\nnot json\n{"txt": "王建国"}\n[1]\n{"text": 5}\n\n{"text": "2024年3月5日"}\n'
    result = runner.invoke(app, ["deid", "--jsonl", "-"], input=data)
    assert result.exit_code == 1  # some lines failed, all were processed
    out = _lines(result.stdout)
    assert len(out) == 7
    assert out[0]["masked"] == "电话[PHONE]"
    assert out[6]["masked"] == "[DATE]"
    for line_no, item in zip(range(2, 7), out[1:6], strict=True):
        err = item["error"]
        assert item["line"] == line_no
        assert err["field"] == "text"
        assert "text" in err["message_zh"] and "text" in err["message_en"]
    assert "王建国" not in result.output  # bad input is never echoed


def test_pseudonym_mode_with_key_file(tmp_path: Path) -> None:
    key = tmp_path / "export.key"
    key.write_bytes(b"0123456789abcdef")
    data = '{"text": "王建国于2024年3月5日入院，王建国电话13812345678"}\n'
    args = ["deid", "--jsonl", "-", "--mode", "pseudonym", "--key-file", str(key), "--date-shift-days", "7"]
    first = runner.invoke(app, args, input=data)
    second = runner.invoke(app, args, input=data)
    assert first.exit_code == 0, first.output
    masked = _lines(first.stdout)[0]["masked"]
    assert masked == _lines(second.stdout)[0]["masked"]
    assert "王建国" not in masked and "2024年3月12日" in masked
    person = masked.split("]")[0] + "]"
    assert masked.count(person) == 2


def test_bad_mode_and_missing_key_file() -> None:
    assert runner.invoke(app, ["deid", "--jsonl", "-", "--mode", "other"], input="").exit_code == 2
    result = runner.invoke(
        app, ["deid", "--jsonl", "-", "--mode", "pseudonym", "--key-file", "/nonexistent/k"], input=""
    )
    assert result.exit_code == 2
