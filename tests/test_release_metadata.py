"""The release metadata agrees with itself: supported Pythons, licence, changelog, version.

The package's own checks (tox -e package, tox -e docs) build and use the files; these
tests catch the slower drift: a Python added to the classifiers that tox never runs, a
licence named in setup.cfg that LICENSE does not carry, a version with no changelog entry.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pedrollm

ROOT = Path(__file__).resolve().parents[1]


def read_ini(name: str) -> configparser.ConfigParser:
    """setup.cfg or tox.ini as written (no interpolation: tox's {posargs} stays as text)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / name, encoding="utf-8")
    return parser


def lines(value: str) -> list[str]:
    """A multi-line ini value as its non-empty, non-comment lines."""
    return [s for line in value.splitlines() if (s := line.strip()) and not s.startswith("#")]


def classifier_pythons() -> list[str]:
    """The 3.X versions the classifiers declare, in order."""
    classifiers = lines(read_ini("setup.cfg")["metadata"]["classifiers"])
    return [m.group(1) for c in classifiers
            if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))]


def test_tox_runs_the_unit_tests_on_every_python_the_classifiers_declare() -> None:
    declared = classifier_pythons()
    tox = read_ini("tox.ini")
    envs = [e.strip() for e in tox["tox"]["envlist"].split(",")]
    tox_pythons = [f"{e[2]}.{e[3:]}" for e in envs if re.fullmatch(r"py3\d+", e)]
    assert tox_pythons == declared, (
        f"tox envlist runs {tox_pythons}, setup.cfg classifiers declare {declared}"
    )
    pyenv = next(
        line.split("=", 1)[1].strip() for line in lines(tox["testenv"]["setenv"])
        if line.startswith("PYENV_VERSION")
    )
    assert pyenv.split(":") == declared, (
        f"tox.ini PYENV_VERSION makes {pyenv} discoverable, classifiers declare {declared}"
    )


def test_python_requires_starts_at_the_oldest_declared_python() -> None:
    requires = read_ini("setup.cfg")["options"]["python_requires"].strip()
    assert requires == f">={classifier_pythons()[0]}"


def test_license_file_carries_the_license_the_metadata_names() -> None:
    expression = read_ini("setup.cfg")["metadata"]["license_expression"].strip()
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert expression == "MIT"
    assert text.startswith("MIT License\n")
    assert re.search(r"^Copyright \(c\) \d{4} pedrollm developers$", text, re.MULTILINE)


def test_changelog_has_an_entry_for_the_current_version_or_unreleased() -> None:
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text("utf-8"),
                          re.MULTILINE)
    assert headings, "CHANGELOG.md has no '## [VERSION]' heading"
    assert headings[0] in {"Unreleased", pedrollm.__version__}, (
        f"CHANGELOG.md starts with [{headings[0]}], "
        f"expected [Unreleased] or [{pedrollm.__version__}]"
    )
