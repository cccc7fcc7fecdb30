"""The ``xinglin triage`` command, through a small typer app (the lead registers it in the main app)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from xinglin.triage.cli import parse_vitals, triage_command

app = typer.Typer()
app.command("triage")(triage_command)


@app.callback()
def _root() -> None:
    """Test app."""


runner = CliRunner()


def test_single_json() -> None:
    result = runner.invoke(app, ["triage", "胸口疼，出冷汗", "--age", "60", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["department"]["code"] == "03.04"
    assert data["level"] == 2
    assert [f["code"] for f in data["red_flags"]] == ["chest_pain_acs"]


def test_single_with_options() -> None:
    result = runner.invoke(
        app,
        [
            "triage",
            "肚子疼",
            "--age",
            "28",
            "--sex",
            "female",
            "--pregnant",
            "--vitals",
            "spo2=97,heart_rate=90",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["department"]["code"], data["level"]) == ("05.02", 2)
    assert [f["code"] for f in data["red_flags"]] == ["pregnancy_bleeding_pain"]


def test_single_human_output() -> None:
    result = runner.invoke(app, ["triage", "牙疼好几天"])
    assert result.exit_code == 0, result.output
    assert "口腔科" in result.stdout
    assert "4级" in result.stdout


def test_bad_vitals_option() -> None:
    result = runner.invoke(app, ["triage", "头晕", "--vitals", "spo2"])
    assert result.exit_code == 2
    assert "--vitals" in result.output


def test_bad_sex_option() -> None:
    result = runner.invoke(app, ["triage", "头晕", "--sex", "x"])
    assert result.exit_code == 2
    assert "sex" in result.output


def test_no_text() -> None:
    result = runner.invoke(app, ["triage"])
    assert result.exit_code == 2


def test_parse_vitals() -> None:
    assert parse_vitals("spo2=88, heart_rate=120,bp=150/90") == {
        "spo2": 88.0,
        "heart_rate": 120.0,
        "systolic_bp": 150.0,
        "diastolic_bp": 90.0,
    }


LINES = [
    json.dumps({"text": "头疼", "age": 30}, ensure_ascii=False),
    json.dumps({"text": "x", "age": "abc"}),
    "not json",
    "",
    json.dumps({"text": "咳嗽", "vitals": {"spo2": 200}}, ensure_ascii=False),
    json.dumps({"id": 7, "text": "牙疼", "sex": "female", "pregnant": False}, ensure_ascii=False),
    json.dumps({"text": "发烧", "age": 0.1, "vitals": {"temperature": 38.5}}, ensure_ascii=False),
]


def _check_batch(stdout: str) -> None:
    out = [json.loads(line) for line in stdout.splitlines()]
    assert len(out) == 6  # the blank line is skipped
    assert out[0]["department"]["code"] == "03.03"
    assert out[1] == {
        "error": {
            "line": 2,
            "field": "age",
            "message": "年龄必须是数字：'abc'",
            "message_en": "age must be a number: 'abc'",
        }
    }
    assert out[2]["error"]["field"] == "json" and out[2]["error"]["line"] == 3
    assert out[3]["error"]["field"] == "vitals.spo2" and out[3]["error"]["line"] == 5
    assert (out[4]["id"], out[4]["department"]["code"]) == (7, "12")
    assert [f["code"] for f in out[5]["red_flags"]] == ["infant_fever"]


def test_jsonl_stdin() -> None:
    result = runner.invoke(app, ["triage", "--jsonl", "-"], input="\n".join(LINES) + "\n")
    assert result.exit_code == 0, result.output
    _check_batch(result.stdout)


def test_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["triage", "--jsonl", str(path)])
    assert result.exit_code == 0, result.output
    _check_batch(result.stdout)


def test_jsonl_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["triage", "--jsonl", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2


def test_jsonl_and_text_together() -> None:
    result = runner.invoke(app, ["triage", "头疼", "--jsonl", "-"], input="")
    assert result.exit_code == 2
