"""bench/run_all.py rewrites the measured sections and keeps the notes written between them."""

from __future__ import annotations

from pathlib import Path

from bench.run_all import existing_notes, existing_sections, render


def test_a_rerun_keeps_hand_written_notes_after_their_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\nheader\n\n"
        "<!-- bench:bench_a -->\nold A\n<!-- /bench:bench_a -->\n\n"
        "## A on a GPU\n\nwritten by hand\n\n"
        "<!-- bench:bench_b -->\nold B\n<!-- /bench:bench_b -->\n", encoding="utf-8")
    sections = existing_sections(doc)
    sections["bench_a"] = "new A\n"
    out = render(sections, ["bench_a", "bench_b"], existing_notes(doc))
    assert "new A" in out and "old A" not in out and "old B" in out
    assert out.index("new A") < out.index("## A on a GPU\n\nwritten by hand") < out.index(
        "old B")
