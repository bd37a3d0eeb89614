"""Checks of the per-step conda envs (envs/*.yaml; envs/README.md explains their layout).

Static (no network): every rule has `conda:`; each env holds exactly the third-party distributions its
rules' scripts import (directly or through the htct modules they use, followed transitively, lazy
imports included) plus the plugins those libraries load by entry point; conda-forge gives only the
interpreter and pip; every pip pin is exact and equal to pyproject.toml's.

Registry (network): every pip pin has a wheel on PyPI for the env's Python on each platform of
PLATFORMS, i.e. `pip install --only-binary=:all:` of the env succeeds there. These tests read PyPI's
metadata (PEP 691 JSON, one request per package, in parallel) and download no wheel. Without network
they fail, naming the URL: CI has PyPI access. PyTorch's CPU index (envs/torch.yaml) is not
reachable from CI; envs/README.md says how its pin is known to exist and how to check it by hand.
"""

import ast
import json
import re
import sys
import tomllib
import urllib.error
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from htct.dicom.series import CODEC_PACKAGES

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))

# What the conda part of an env may hold: the interpreter and the installer of the pip block; and
# per env the C libraries no wheel carries (WeasyPrint's pango; envs/README.md).
CONDA_INFRASTRUCTURE = {"python", "pip"}
CONDA_LIBRARIES = {"manuscript.yaml": {"pango"}}
# Requirement-file options the pip blocks may carry (envs/README.md explains each).
ONLY_WHEELS = "--only-binary=:all:"
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
PIP_OPTIONS = {"torch.yaml": {ONLY_WHEELS, TORCH_CPU_INDEX}}
DEFAULT_PIP_OPTIONS = {ONLY_WHEELS}
# Distributions a library loads by entry point, never imported by name: pydicom's pixel-data
# decoders for compressed series (the same list the QC reason for a missing codec names).
PLUGINS = {
    "pydicom": {canonicalize_name(name) for names in CODEC_PACKAGES.values() for name in names.split()}
}

PYPI_SIMPLE = "https://pypi.org/simple"


def _manylinux(arch: str, glibc_minor: int) -> list[str]:
    """Platform tags a glibc 2.<glibc_minor> Linux accepts, newest first (PEP 600 and legacy aliases)."""
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    platforms = []
    for minor in range(glibc_minor, 4, -1):
        platforms.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy and (arch in ("x86_64", "i686") or minor == 17):
            platforms.append(f"{legacy[minor]}_{arch}")
    return platforms


# The platforms every pin must have a wheel for. glibc 2.28 (RHEL/Rocky 8, common on clusters) and
# macOS 14 are the oldest that torch 2.13.0's own wheels support, so no other pin may need more.
PLATFORMS = {
    "linux-64 (glibc 2.28)": _manylinux("x86_64", 28),
    "linux-aarch64 (glibc 2.28)": _manylinux("aarch64", 28),
    "osx-arm64 (macOS 14)": list(tags.mac_platforms((14, 0), "arm64")),
}


@dataclass(frozen=True)
class CondaEnv:
    """An env file: its conda packages, its pip pins and the options of its pip block."""

    name: str
    channels: tuple[str, ...]
    conda: dict[str, str]  # conda package -> version spec ('' when unpinned)
    pip: dict[str, str | None]  # canonical PyPI name -> exact version (None when not an exact pin)
    pip_options: frozenset[str]

    @property
    def python_version(self) -> tuple[int, int]:
        major, minor = self.conda["python"].split(".")[:2]
        return int(major), int(minor)


def read_env(env_file: Path) -> CondaEnv:
    """Parse an env file the way conda does: strings are conda specs, the `pip:` list a requirements file."""
    env = yaml.safe_load(env_file.read_text())
    conda: dict[str, str] = {}
    pip: dict[str, str | None] = {}
    options: set[str] = set()
    for spec in env["dependencies"]:
        if isinstance(spec, str):
            name, _, version = spec.partition("=")
            conda[name.strip()] = version.strip().lstrip("=").split("=")[0].strip()
            continue
        for line in spec["pip"]:
            if line.startswith("-"):
                options.add(" ".join(line.split()))
                continue
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                pip[line] = None
                continue
            specifiers = list(requirement.specifier)
            exact = (
                len(specifiers) == 1
                and specifiers[0].operator == "=="
                and not (requirement.marker or requirement.extras or requirement.url)
            )
            pip[canonicalize_name(requirement.name)] = specifiers[0].version if exact else None
    return CondaEnv(env_file.name, tuple(env["channels"]), conda, pip, frozenset(options))


def parse_rules(rules_dir: Path = REPO / "rules") -> dict[str, dict[str, str]]:
    """Map each rule to its `conda:` env file and `script:` (read from the snakefmt-formatted .smk files).

    Rules inside `if`/`else` blocks are indented; a rule's body is every line indented deeper than its
    `rule` line.
    """
    rules: dict[str, dict[str, str]] = {}
    header = re.compile(r"^(?P<indent>[ \t]*)(?:rule|checkpoint) (?P<name>\w+):[ \t]*$", flags=re.M)
    for smk in sorted(rules_dir.glob("*.smk")):
        text = smk.read_text()
        for match in header.finditer(text):
            body = []
            for line in text[match.end() :].splitlines()[1:]:
                if line.strip() and len(line) - len(line.lstrip()) <= len(match["indent"]):
                    break
                body.append(line)
            entry = {"file": smk.name}
            for directive in ("conda", "script"):
                found = re.search(rf"^\s+{directive}:\s*\n\s+\"([^\"]+)\"", "\n".join(body), flags=re.M)
                if found:
                    entry[directive] = found.group(1)
            rules[match["name"]] = entry
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


_distributions_by_module = cache(packages_distributions)  # scans every installed distribution


def distribution_of(module: str) -> str:
    """The PyPI distribution (canonical name) that provides an importable top-level module."""
    names = {canonicalize_name(name) for name in _distributions_by_module().get(module, [])}
    if len(names) != 1:
        return f"<import {module}: {'not installed here' if not names else 'in ' + ', '.join(sorted(names))}>"
    return names.pop()


@cache
def needed_distributions(script: Path) -> frozenset[str]:
    """The distributions a script needs at run time: what it imports, and the plugins of those."""
    needed = {distribution_of(module) for module in third_party_imports(script)}
    return frozenset(needed | {plugin for library in needed & set(PLUGINS) for plugin in PLUGINS[library]})


def missing_packages(rule: dict[str, str]) -> set[str]:
    """Distributions a rule's script needs that its env does not pin."""
    script = (REPO / "rules" / rule["script"]).resolve()
    env = read_env((REPO / "rules" / rule["conda"]).resolve())
    return needed_distributions(script) - set(env.pip)


def env_needs(rules: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """Per env file name: the union of what the scripts of its rules need."""
    needs: dict[str, set[str]] = defaultdict(set)
    for rule in rules.values():
        if "conda" in rule and "script" in rule:
            env_file = (REPO / "rules" / rule["conda"]).resolve()
            needs[env_file.name] |= needed_distributions((REPO / "rules" / rule["script"]).resolve())
    return needs


def unexpected_packages(env: CondaEnv, needed: set[str]) -> tuple[set[str], set[str]]:
    """(pinned but not needed, needed but not pinned) for one env."""
    return set(env.pip) - needed, needed - set(env.pip)


RULES = parse_rules()


def test_rules_were_found():
    # train and merge_folds sit inside `if K_FOLDS < 2:` / `else:` in rules/train.smk.
    expected = {"synth_cohort", "convert_dicom", "preprocess", "split", "table1", "train", "merge_folds"}
    assert expected <= set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_has_a_conda_env(name):
    rule = RULES[name]
    assert "conda" in rule, f"rule {name} in rules/{rule['file']} has no conda: directive"
    assert (REPO / "rules" / rule["conda"]).resolve().is_file(), rule["conda"]


@pytest.mark.parametrize("name", sorted(name for name, rule in RULES.items() if "script" in rule))
def test_env_provides_every_import_of_the_script(name):
    assert missing_packages(RULES[name]) == set(), f"rule {name}: env {RULES[name]['conda']} lacks these"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_env_holds_exactly_what_its_scripts_need(env_file):
    needs = env_needs(RULES)
    assert env_file.name in needs, f"{env_file.name}: no rule uses it; delete it"
    extra, missing = unexpected_packages(read_env(env_file), needs[env_file.name])
    assert not extra, f"{env_file.name} pins {sorted(extra)}, which none of its rules' scripts imports"
    assert not missing, f"{env_file.name} lacks {sorted(missing)}, imported by its rules' scripts"


def test_a_missing_package_is_detected(tmp_path):
    rule = dict(RULES["convert_dicom"])
    env = yaml.safe_load((REPO / "rules" / rule["conda"]).resolve().read_text())
    pip_block = next(spec for spec in env["dependencies"] if isinstance(spec, dict))
    pip_block["pip"] = [
        line for line in pip_block["pip"] if not line.startswith(("pydicom", "pylibjpeg-rle"))
    ]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(env))
    rule["conda"] = str(broken)
    # pydicom is imported; pylibjpeg-rle is its plugin, never imported by name
    assert missing_packages(rule) == {"pydicom", "pylibjpeg-rle"}


def test_an_extra_package_is_detected():
    env = read_env(REPO / "envs" / "stats.yaml")
    with_extra = CondaEnv(
        env.name, env.channels, env.conda, {**env.pip, "tableone": "0.9.6"}, env.pip_options
    )
    assert unexpected_packages(with_extra, env_needs(RULES)["stats.yaml"]) == ({"tableone"}, set())


def test_transitive_imports_are_followed():
    # scripts/split.py imports only htct modules; pandas/sklearn come through them.
    assert {"pandas", "sklearn", "jsonschema", "yaml"} <= third_party_imports(REPO / "scripts" / "split.py")


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_conda_gives_only_python_and_pip(env_file):
    env = read_env(env_file)
    assert env.channels == ("conda-forge", "nodefaults"), f"{env.name}: channels {env.channels}"
    assert set(env.conda) == CONDA_INFRASTRUCTURE | CONDA_LIBRARIES.get(env.name, set()), (
        f"{env.name}: conda packages {sorted(env.conda)}; take everything but python and pip from PyPI "
        "(no conda channel can be checked from CI, see envs/README.md)"
    )
    assert re.fullmatch(r"3\.\d+", env.conda["python"]), f"{env.name}: python ={env.conda['python']}"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda path: path.name)
def test_pip_block_options_are_the_documented_ones(env_file):
    env = read_env(env_file)
    assert env.pip_options == PIP_OPTIONS.get(env.name, DEFAULT_PIP_OPTIONS), env.name


def test_env_pins_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[canonicalize_name(name)] = version
    for env_file in ENV_FILES:
        env = read_env(env_file)
        for package, version in env.pip.items():
            assert version, f"{env.name}: {package} is not an exact pin (name==version)"
            assert package in pins, f"{env.name}: {package} is not a requirement in pyproject.toml"
            assert version == pins[package], (
                f"{env.name}: {package}=={version}, pyproject pins {pins[package]}"
            )


# --- the registry: every pip pin exists on PyPI -------------------------------------------------


@cache
def _compatible_tags(python: tuple[int, int], platform: str) -> frozenset[tags.Tag]:
    platforms = PLATFORMS[platform]
    interpreter = f"cp{python[0]}{python[1]}"
    return frozenset(tags.cpython_tags(python, platforms=platforms)) | frozenset(
        tags.compatible_tags(python, interpreter, platforms)
    )


def index_files(project: str, index: str = PYPI_SIMPLE) -> list[dict]:
    """The files an index lists for a project (PEP 691 JSON simple API: metadata only, no download)."""
    request = urllib.request.Request(
        f"{index}/{canonicalize_name(project)}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["files"]
        except urllib.error.HTTPError:
            raise  # an answer (e.g. 404: no such project there), not a dropped connection
        except (urllib.error.URLError, TimeoutError):
            if attempt == attempts:
                raise
    return []  # not reached: the last attempt returns or raises


def platforms_without_wheel(files: list[dict], version: str, python: tuple[int, int]) -> list[str]:
    """The PLATFORMS on which pip finds no wheel of `version` for `python` among an index's `files`.

    As pip does: the version must match (`==2.13.0` also matches `2.13.0+cpu`), a yanked file or one
    whose Requires-Python excludes `python` does not count, and a wheel counts for a platform when one
    of its tags is compatible with CPython `python` there.
    """
    wanted = SpecifierSet(f"=={version}")
    found: set[str] = set()
    for file in files:
        # the substring test only skips parsing the thousands of files of other versions
        if (
            not file["filename"].endswith(".whl")
            or f"-{version}" not in file["filename"]
            or file.get("yanked")
        ):
            continue
        try:
            _, wheel_version, _, wheel_tags = parse_wheel_filename(file["filename"])
            requires_python = SpecifierSet(file.get("requires-python") or "")
        except (InvalidWheelFilename, InvalidSpecifier):
            continue
        if wheel_version not in wanted or not requires_python.contains(f"{python[0]}.{python[1]}"):
            continue
        found |= {platform for platform in PLATFORMS if wheel_tags & _compatible_tags(python, platform)}
    return [platform for platform in PLATFORMS if platform not in found]


PIP_PINS = sorted({(env_file.name, package) for env_file in ENV_FILES for package in read_env(env_file).pip})


@pytest.fixture(scope="module")
def pypi_listings() -> dict[str, list[dict] | Exception]:
    """Each pinned project's PyPI file list (or the error that prevented reading it), fetched in parallel."""
    projects = sorted({package for _, package in PIP_PINS})

    def fetch(project: str) -> list[dict] | Exception:
        try:
            return index_files(project)
        except Exception as error:  # reported by the test of each pin, with the env and package
            return error

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(projects, pool.map(fetch, projects), strict=True))


@pytest.mark.parametrize(("env_name", "package"), PIP_PINS, ids=[f"{e}:{p}" for e, p in PIP_PINS])
def test_pip_pin_has_a_wheel_on_pypi(env_name, package, pypi_listings):
    env = read_env(REPO / "envs" / env_name)
    version = env.pip[package]
    assert version, f"{env_name}: {package} is not an exact pin (name==version)"
    listing = pypi_listings[package]
    if isinstance(listing, Exception):
        pytest.fail(
            f"{env_name}: cannot check {package}=={version}: {PYPI_SIMPLE}/{package}/ could not be read "
            f"({listing!r}). This test needs network access to PyPI (CI has it)."
        )
    missing = platforms_without_wheel(listing, version, env.python_version)
    python = "{}.{}".format(*env.python_version)
    assert not missing, (
        f"{env_name}: PyPI has no wheel of {package}=={version} for Python {python} on {', '.join(missing)}"
    )


def test_a_pin_without_a_wheel_is_detected(pypi_listings):
    for project in ("pylibjpeg-libjpeg", "captum"):
        assert not isinstance(pypi_listings[project], Exception), (
            f"{PYPI_SIMPLE}/{project}/: {pypi_listings[project]!r}"
        )
    libjpeg, captum = pypi_listings["pylibjpeg-libjpeg"], pypi_listings["captum"]
    # pylibjpeg-libjpeg 2.5.0 has x86_64 Linux wheels for glibc >= 2.31 only (2.4.0, the pin, has
    # manylinux2014 ones); a version never released has no wheel anywhere.
    assert platforms_without_wheel(libjpeg, "2.5.0", (3, 11)) == ["linux-64 (glibc 2.28)"]
    assert platforms_without_wheel(libjpeg, "2.4.0", (3, 11)) == []
    assert platforms_without_wheel(libjpeg, "0.0.0", (3, 11)) == list(PLATFORMS)
    # captum 0.9.0 is one py3-none-any wheel with Requires-Python >=3.10: fine for 3.11, not for 3.9
    assert platforms_without_wheel(captum, "0.9.0", (3, 11)) == []
    assert platforms_without_wheel(captum, "0.9.0", (3, 9)) == list(PLATFORMS)
