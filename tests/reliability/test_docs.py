"""docs/reliability.md carries the fault matrix of a run, and write_docs fills it."""

from __future__ import annotations

import pytest

from tests.reliability.test_fault_matrix import CASES
from tests.reliability.write_docs import DOC, fill


def test_fill_replaces_only_the_named_block() -> None:
    doc = ("a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n"
           "<!-- y:begin -->\nkeep\n<!-- y:end -->\n")
    assert fill(doc, "x", "new\n") == ("a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n"
                                       "<!-- y:begin -->\nkeep\n<!-- y:end -->\n")
    with pytest.raises(ValueError, match="z:begin"):
        fill(doc, "z", "new")


def test_the_docs_table_has_a_row_for_every_case_of_the_matrix() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- fault-matrix:begin -->")[1].split("<!-- fault-matrix:end -->")[0]
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3])
            for line in block.splitlines() if line.startswith("| ")}
    missing = [c.id for c in CASES if (c.fault, c.call) not in rows]
    assert missing == [], "run the matrix, then python -m tests.reliability.write_docs"
