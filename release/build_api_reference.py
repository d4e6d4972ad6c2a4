"""Build the HTML API reference from the docstrings with pdoc; any warning fails the build.

Run by `tox -e docs` (python release/build_api_reference.py OUTDIR; the tox env writes
build/api/, open build/api/index.html). It documents the public API that README.md's
"Versioning and public API" names: `pedrollm` (pdoc follows its `__all__`), and
fakellama's package page with the modules behind its documented entry points
(`FakeServer`, the pytest plugin, the fixture format). Then it checks that every name
in `pedrollm.__all__` has its own entry on the `pedrollm` page and a docstring of its
own, and that fakellama's entry points are there too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.render

import pedrollm

# pdoc module specs: a "!" spec drops the modules its regex matches from those before it.
MODULES = [
    "pedrollm",
    "fakellama",
    r"!fakellama\.(?!(server|pytest_plugin|fixtures)$)",
]

# fakellama's documented entry points: page (relative to the output) -> anchor ids.
FAKELLAMA_ENTRY_POINTS = {
    "fakellama/server.html": ["FakeServer"],
    "fakellama/pytest_plugin.html": ["fake_llama_server"],
    "fakellama/fixtures.html": ["FORMAT_VERSION"],
}


def build(outdir: Path) -> list[str]:
    """Write the reference into outdir; return every warning raised while building it."""
    # Google style is what the docstrings use ("Args:", "Returns:").
    pdoc.render.configure(docformat="google", search=True, show_source=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=outdir)
    return [
        f"{Path(w.filename).name}:{w.lineno}: {w.category.__name__}: {w.message}" for w in caught
    ]


def missing_entries(page: str, names: list[str]) -> list[str]:
    """The names among `names` that have no anchor (id="NAME") on the HTML page."""
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    return [name for name in names if name not in ids]


def own_docstring(obj: object) -> str:
    """The docstring obj itself declares: not one inherited, nor a dataclass's signature."""
    doc = vars(obj).get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    if not isinstance(doc, str):
        return ""
    if isinstance(obj, type) and doc.startswith(f"{obj.__name__}("):
        return ""  # what @dataclass writes when the class has none
    return doc.strip()


def check(outdir: Path) -> list[str]:
    """One line for each public name the reference lacks or shows without a docstring."""
    problems = []
    top = (outdir / "pedrollm.html").read_text(encoding="utf-8")
    for name in missing_entries(top, list(pedrollm.__all__)):
        problems.append(f"pedrollm.html has no entry for pedrollm.{name} (in pedrollm.__all__)")
    for name in pedrollm.__all__:
        obj = getattr(pedrollm, name)
        # a plain value (__version__) is shown with its value; it has no docstring to give
        if not isinstance(obj, str) and not own_docstring(obj):
            problems.append(f"pedrollm.{name} has no docstring of its own to show")
    for page, names in FAKELLAMA_ENTRY_POINTS.items():
        path = outdir / page
        if not path.is_file():
            problems.append(f"{page} was not written")
            continue
        for name in missing_entries(path.read_text(encoding="utf-8"), names):
            problems.append(f"{page} has no entry for {name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Build into a fresh OUTDIR; 0 with no warning and every public name documented."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="output folder, emptied first")
    outdir: Path = parser.parse_args(argv).outdir
    shutil.rmtree(outdir, ignore_errors=True)
    problems = build(outdir)
    if not problems:
        problems = check(outdir)
    if problems:
        print(f"FAIL API reference in {outdir}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"ok  API reference: {outdir / 'index.html'}; all {len(pedrollm.__all__)} names in "
          "pedrollm.__all__ and fakellama's entry points documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
