"""The contract report's verdicts, inconclusive included, as a reader of the table sees them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from contracts import report
from contracts.report import ClauseResult, Report


def _report() -> Report:
    rep = Report(target="llama-server SmolLM2-135M-Instruct", kind="real", url="(started)")
    rep.add(ClauseResult("C05", "a reply has text", "pass"))
    rep.add(ClauseResult("C08", "a native tool call", "unsupported", "no native tools"))
    rep.add(ClauseResult("C10", "a call parsed from text", "inconclusive",
                         "the model answered in text instead of calling the tool"))
    rep.add(ClauseResult("C12", "json_schema", "fail", "not JSON"))
    return rep


def test_an_inconclusive_skip_becomes_its_own_verdict_with_the_reason() -> None:
    assert report.outcome_of(False, "Skipped: inconclusive: the model said nothing") == (
        "inconclusive", "the model said nothing")
    assert report.outcome_of(False, "unsupported: no key") == ("unsupported", "no key")
    # A skip that names neither is still a failure: nothing may pass by skipping.
    assert report.outcome_of(False, "Skipped: flaky")[0] == "fail"


def test_counts_keep_inconclusive_apart_from_fail_and_unsupported() -> None:
    assert _report().counts() == {"pass": 1, "fail": 1, "unsupported": 1, "inconclusive": 1}
    assert report.count_text(_report().counts()) == (
        "1 pass, 1 fail, 1 unsupported, 1 inconclusive")
    assert report.count_text({"pass": 3, "fail": 0, "unsupported": 0, "inconclusive": 0}) == (
        "3 pass, 0 fail, 0 unsupported")


def test_the_table_and_summary_show_inconclusive_with_its_reason() -> None:
    table = report.markdown_table([_report()])
    row = next(line for line in table.splitlines() if line.startswith("| C10 "))
    assert "inconclusive (the model answered in text instead of calling the tool)" in row
    lines = report.summary_lines(_report())
    assert lines[0].endswith("1 pass, 1 fail, 1 unsupported, 1 inconclusive")
    assert any("C10  inconclusive" in line and "[the model answered" in line for line in lines)


def test_a_report_with_inconclusive_survives_json(tmp_path: Path) -> None:
    json_path, _ = report.write(_report(), tmp_path)
    again = Report.from_json(json_path.read_text(encoding="utf-8"))
    assert again.counts()["inconclusive"] == 1
    assert json_path.name == "conformance-llama-server-smollm2-135m-instruct.json"


def test_the_joined_page_explains_every_verdict(tmp_path: Path) -> None:
    json_path, _ = report.write(_report(), tmp_path)
    out = tmp_path / "conformance.md"
    assert report.main([str(out), str(json_path)]) == 0
    page = out.read_text(encoding="utf-8")
    for verdict in ("**pass**", "**fail**", "**unsupported**", "**inconclusive**"):
        assert verdict in page
    assert "1 pass, 1 fail, 1 unsupported, 1 inconclusive" in page


CLAUSES = '''
from contracts.test_clauses import clause, inconclusive, unsupported

@clause("C90", "a clause the model could not be made to exercise")
def test_model_did_not_comply():
    inconclusive("the model ended its reply without text (1 token(s))")

@clause("C91", "a clause the server lacks")
def test_server_lacks_it():
    unsupported("no such feature")

@clause("C92", "a clause that holds")
def test_holds():
    pass
'''


def test_a_clause_calling_inconclusive_is_reported_so_by_the_suite(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "test_model_choice.py").write_text(CLAUSES, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        str(root / p) for p in ("sdk", "fakeserver", ".")))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_model_choice.py"), "-q",
         "-p", "no:cacheprovider", "-p", "contracts.conftest", "--rootdir", str(tmp_path),
         "--report-dir", str(tmp_path / "reports")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 pass, 0 fail, 1 unsupported, 1 inconclusive" in done.stdout
    data = json.loads((tmp_path / "reports" / "conformance-fakellama.json").read_text())
    outcomes = {r["clause"]: (r["outcome"], r["detail"]) for r in data["results"]}
    assert outcomes == {
        "C90": ("inconclusive", "the model ended its reply without text (1 token(s))"),
        "C91": ("unsupported", "no such feature"),
        "C92": ("pass", ""),
    }


def test_an_unknown_real_model_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        str(root / p) for p in ("sdk", "fakeserver", ".")))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "contracts/test_clauses.py", "-q", "-p",
         "no:cacheprovider", "--real-model", "no-such-model",
         "--report-dir", str(tmp_path)],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "--real-model 'no-such-model' is neither a known model (smollm2) nor a .gguf " \
           "file" in done.stdout + done.stderr
