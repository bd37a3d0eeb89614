"""docs/architecture.md stays true to the code: every rule, script and library package appears in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = (REPO / "docs" / "architecture.md").read_text()


def _rules() -> dict[str, str]:
    """rule name -> its .smk file, from the rule files (rules inside `if` blocks included)."""
    rules = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for name in re.findall(r"^\s*rule (\w+):", path.read_text(), flags=re.M):
            rules[name] = path.name
    return rules


def test_every_rule_is_in_the_architecture():
    missing = [f"{name} ({smk})" for name, smk in _rules().items() if f"`{name}`" not in ARCHITECTURE]
    assert not missing, f"rules missing from docs/architecture.md: {', '.join(missing)}"


def test_every_rule_file_and_script_is_in_the_architecture():
    files = [f"rules/{p.name}" for p in sorted((REPO / "rules").glob("*.smk"))]
    files += [f"scripts/{p.name}" for p in sorted((REPO / "scripts").glob("*.py"))]
    missing = [name for name in files if f"`{name}`" not in ARCHITECTURE]
    assert not missing, f"files missing from docs/architecture.md: {', '.join(missing)}"


def test_every_script_is_used_by_a_rule_and_every_package_is_described():
    rules_text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    unused = [p.name for p in (REPO / "scripts").glob("*.py") if f"../scripts/{p.name}" not in rules_text]
    assert not unused, f"scripts no rule runs: {unused}"
    packages = [p.name for p in sorted((REPO / "src" / "htct").iterdir()) if (p / "__init__.py").is_file()]
    missing = [name for name in packages if f"`htct.{name}`" not in ARCHITECTURE]
    assert not missing, f"packages missing from docs/architecture.md: {missing}"


def test_the_architecture_names_no_file_that_does_not_exist():
    named = set(re.findall(r"`((?:rules|scripts)/[\w./]+)`", ARCHITECTURE))
    absent = sorted(name for name in named if not (REPO / name).exists())
    assert not absent, f"docs/architecture.md names files that do not exist: {absent}"
