"""Static checks of the per-step conda envs (no conda channel is reachable where the tests run).

Every rule has `conda:`; every third-party module that a rule's script imports, directly or through
the htct modules it uses (followed transitively, lazy imports included), is provided by that rule's
env; the env pins agree with pyproject.toml.
"""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# import name -> conda-forge package name
CONDA_PACKAGE = {
    "numpy": "numpy",
    "pandas": "pandas",
    "scipy": "scipy",
    "pydicom": "pydicom",
    "nibabel": "nibabel",
    "sklearn": "scikit-learn",
    "statsmodels": "statsmodels",
    "matplotlib": "matplotlib",
    "seaborn": "seaborn",
    "docutils": "docutils",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "torch": "pytorch",
    "captum": "captum",
    "tqdm": "tqdm",
    "pylibjpeg": "pylibjpeg",
    "libjpeg": "pylibjpeg-libjpeg",
    "openjpeg": "pylibjpeg-openjpeg",
    "rle": "pylibjpeg-rle",
    "isal": "python-isal",
}
# pip distribution name -> conda-forge package name, where they differ
PIP_TO_CONDA = {"torch": "pytorch", "isal": "python-isal"}


def parse_rules(rules_dir: Path = REPO / "rules") -> dict[str, dict[str, str]]:
    """Map each rule to its `conda:` env file and `script:` (read from the snakefmt-formatted .smk files)."""
    rules: dict[str, dict[str, str]] = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        blocks = re.split(r"^(?:rule|checkpoint) (\w+):\n", smk.read_text(), flags=re.M)
        for name, body in zip(blocks[1::2], blocks[2::2], strict=True):
            body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # up to the next top-level statement
            entry = {"file": smk.name}
            for directive in ("conda", "script"):
                match = re.search(rf"^\s+{directive}:\s*\n\s+\"([^\"]+)\"", body, flags=re.M)
                if match:
                    entry[directive] = match.group(1)
            rules[name] = entry
    return rules


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    base = REPO / "src" / Path(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _walk_runtime(tree: ast.AST):
    """ast.walk, minus `if TYPE_CHECKING:` blocks (never run); lazy imports in functions are kept."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def third_party_imports(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level third-party modules imported by `path`, following imports of htct modules."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    # the package a relative import starts from (for a/b/__init__.py and a/b/c.py alike: a.b)
    package = (
        path.relative_to(REPO / "src").with_suffix("").parts[:-1] if REPO / "src" in path.parents else ()
    )
    for node in _walk_runtime(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level and package:
                anchor = list(package[: len(package) - (node.level - 1)])
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for module in modules:
            top = module.split(".")[0]
            if top == "htct":
                # the package itself and every parent package's __init__ that Python runs on import
                parts = module.split(".")
                for depth in range(1, len(parts) + 1):
                    file = _module_file(".".join(parts[:depth]))
                    if file is not None:
                        found |= third_party_imports(file, seen)
            elif top and top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)
    return found


def env_packages(env_file: Path) -> dict[str, str]:
    """Conda packages of an env file with their pinned versions ('' when unpinned)."""
    env = yaml.safe_load(env_file.read_text())
    packages = {}
    for spec in env["dependencies"]:
        if isinstance(spec, str):
            name, _, version = spec.partition("=")
            packages[name.strip()] = version.strip().lstrip("=").split("=")[0].strip()
    return packages


def missing_packages(rule: dict[str, str]) -> set[str]:
    """Conda packages a rule's script needs that its env lacks."""
    script = (REPO / "rules" / rule["script"]).resolve()
    env = env_packages((REPO / "rules" / rule["conda"]).resolve())
    needed = {
        CONDA_PACKAGE.get(module, f"<unmapped import {module}>") for module in third_party_imports(script)
    }
    return needed - set(env)


RULES = parse_rules()


def test_rules_were_found():
    assert {"synth_cohort", "convert_dicom", "preprocess", "split", "table1"} <= set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_has_a_conda_env(name):
    rule = RULES[name]
    assert "conda" in rule, f"rule {name} in rules/{rule['file']} has no conda: directive"
    assert (REPO / "rules" / rule["conda"]).resolve().is_file(), rule["conda"]


@pytest.mark.parametrize("name", sorted(name for name, rule in RULES.items() if "script" in rule))
def test_env_provides_every_import_of_the_script(name):
    assert missing_packages(RULES[name]) == set(), f"rule {name}: env {RULES[name]['conda']} lacks these"


def test_a_missing_package_is_detected(tmp_path, monkeypatch):
    rule = dict(RULES["convert_dicom"])
    env = yaml.safe_load((REPO / "rules" / rule["conda"]).resolve().read_text())
    env["dependencies"] = [spec for spec in env["dependencies"] if not str(spec).startswith("pydicom")]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(env))
    rule["conda"] = str(broken)
    assert missing_packages(rule) == {"pydicom"}


def test_transitive_imports_are_followed():
    # scripts/split.py imports only htct modules; pandas/sklearn come through them.
    assert {"pandas", "sklearn", "jsonschema", "yaml"} <= third_party_imports(REPO / "scripts" / "split.py")


def test_env_pins_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[PIP_TO_CONDA.get(name.lower(), name.lower())] = version
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        assert "conda-forge" in env["channels"] and "nodefaults" in env["channels"], env_file.name
        for package, version in env_packages(env_file).items():
            if package == "python":
                continue
            assert version, f"{env_file.name}: {package} is not pinned"
            assert package in pins, f"{env_file.name}: {package} is not a requirement in pyproject.toml"
            assert version == pins[package], (
                f"{env_file.name}: {package} ={version}, pyproject pins {pins[package]}"
            )
