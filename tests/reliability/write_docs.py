"""Copy the reports of the last runs into docs/reliability.md, between its markers.

Run from the repository root, after the tests and the soak::

    pytest tests/reliability
    python bench/soak.py --report reports/soak.md
    python -m tests.reliability.write_docs

Each block of the docs between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` is
replaced by ``reports/NAME.md``; a block whose report is missing is left as it is.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BLOCKS = ("fault-matrix", "soak")


def fill(doc: str, name: str, content: str) -> str:
    """Return doc with the block ``name`` holding content; ValueError if it has no markers."""
    pattern = re.compile(
        rf"(<!-- {re.escape(name)}:begin -->\n).*?(<!-- {re.escape(name)}:end -->)", re.DOTALL
    )
    if not pattern.search(doc):
        raise ValueError(f"{DOC}: no <!-- {name}:begin --> ... <!-- {name}:end --> markers")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), doc,
                       count=1)


def main() -> int:
    """Fill every block whose report exists; return 1 when none did."""
    doc = DOC.read_text(encoding="utf-8")
    filled = 0
    for name in BLOCKS:
        report = ROOT / "reports" / f"{name}.md"
        if not report.is_file():
            print(f"write_docs: {report.relative_to(ROOT)} not found; block {name!r} kept",
                  file=sys.stderr)
            continue
        doc = fill(doc, name, report.read_text(encoding="utf-8"))
        filled += 1
        print(f"write_docs: {name} <- {report.relative_to(ROOT)}")
    DOC.write_text(doc, encoding="utf-8")
    return 0 if filled else 1


if __name__ == "__main__":
    sys.exit(main())
