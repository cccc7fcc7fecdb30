"""``xinglin codes load`` and ``xinglin code-dx`` through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from xinglin.ingest.coding.cli import code_dx_command, codes_load_command

app = typer.Typer()
app.command("code-dx")(code_dx_command)
codes_app = typer.Typer()
codes_app.command("load")(codes_load_command)
app.add_typer(codes_app, name="codes")
runner = CliRunner()

SMALL_LIST = "代码,名称\nI10.x00x002,高血压\nE11.900,2型糖尿病\nJ18.900,肺炎\nI10.x00x002,高血压\n"


def test_codes_load_and_code_small_list(tmp_path: Path) -> None:
    src = tmp_path / "clinical-2.0.csv"
    src.write_bytes(SMALL_LIST.encode("gb18030"))
    out = tmp_path / "idx.npz"
    res = runner.invoke(app, ["codes", "load", "--system", "icd10-cn", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "gb18030" in res.output
    assert "Codes" in res.output and " 3" in res.output
    assert "Duplicate rows dropped" in res.output
    assert out.is_file()
    res = runner.invoke(app, ["code-dx", "高血压；Ⅱ型糖尿病", "--index", str(out), "--json"])
    assert res.exit_code == 0, res.output
    codes = {c["code"] for c in json.loads(res.stdout)["codes"]}
    assert codes == {"I10.x00x002", "E11.900"}


def test_codes_load_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\nA01,\n", encoding="utf-8")
    res = runner.invoke(app, ["codes", "load", str(bad), "--out", str(tmp_path / "x.npz")])
    assert res.exit_code == 1
    assert "bad.csv row 2, field name: the name is empty" in res.output
    res = runner.invoke(app, ["codes", "load", "--system", "loinc", str(bad)])
    assert res.exit_code == 2 and "unsupported system" in res.output


def test_code_dx_single(index_path: Path) -> None:
    res = runner.invoke(app, ["code-dx", "高血压冠心病", "--index", str(index_path)])
    assert res.exit_code == 0, res.output
    assert "I10xx02" in res.output and "I25.105" in res.output
    res = runner.invoke(app, ["code-dx", "高血压冠心病", "--index", str(index_path), "--json"])
    body = json.loads(res.stdout)
    assert body["text"] == "高血压冠心病"
    assert {c["code"] for c in body["codes"]} == {"I10xx02", "I25.105"}
    assert set(body["codes"][0]) == {"code", "name", "score"}


def test_code_dx_needs_index_or_text(index_path: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["code-dx", "高血压"])
    assert res.exit_code == 2 and "--index" in res.output
    res = runner.invoke(app, ["code-dx", "--index", str(index_path)])
    assert res.exit_code == 2
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not an index")
    res = runner.invoke(app, ["code-dx", "高血压", "--index", str(junk)])
    assert res.exit_code == 2 and "not a valid diagnosis-coding index" in res.output


def test_code_dx_jsonl_file_and_stdin(index_path: Path, tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "肺炎"}, ensure_ascii=False),
        "{not json",
        json.dumps({"id": 7, "txt": "高血压"}),
        "",
        json.dumps({"text": 42}),
        json.dumps({"id": "b", "text": "2型糖尿病;高血压"}, ensure_ascii=False),
        json.dumps(["高血压"], ensure_ascii=False),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args, stdin in (([str(src)], None), (["-"], src.read_text(encoding="utf-8"))):
        res = runner.invoke(app, ["code-dx", "--index", str(index_path), "--jsonl", *args], input=stdin)
        assert res.exit_code == 0, res.output
        out = [json.loads(x) for x in res.stdout.splitlines()]
        assert len(out) == 6  # blank line skipped, order kept
        assert out[0]["text"] == "肺炎" and out[0]["codes"][0]["code"] == "J18.901"
        assert out[1]["error"]["field"] == "json" and out[1]["line"] == 2
        assert out[2] == {
            "line": 3,
            "id": 7,
            "error": {
                "field": "text",
                "message": "缺少字段 text（诊断文本）",
                "message_en": "missing field text (the diagnosis)",
            },
        }
        assert out[3]["error"]["message_en"] == "field text must be a string"
        assert out[4]["id"] == "b" and {c["code"] for c in out[4]["codes"]} >= {"E11.901", "I10xx02"}
        assert out[5]["error"]["field"] == "text"
        assert "6 lines, 4 with errors" in res.stderr
