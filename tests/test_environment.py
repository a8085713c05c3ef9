"""The environment files agree, the Makefile explains itself, helpers import cleanly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def requirement_pins(lines: list[str]) -> dict[str, str]:
    """Map lower-case package names (extras kept) to their exact pinned version."""
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"requirement {line!r} is not pinned with ==; pin an exact version"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def pip_section_of_environment_yml() -> list[str]:
    lines = (REPO / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    section = []
    for line in lines[start + 1 :]:
        if not line.strip().startswith("- "):
            break
        section.append(line.strip()[2:])
    return section


def test_environment_yml_matches_requirements():
    from_pip = requirement_pins((REPO / "requirements.txt").read_text().splitlines())
    from_conda = requirement_pins(pip_section_of_environment_yml())
    assert set(from_conda) == set(from_pip), (
        f"packages only in requirements.txt: {sorted(set(from_pip) - set(from_conda))}; "
        f"only in environment.yml: {sorted(set(from_conda) - set(from_pip))}"
    )
    for name, version in from_pip.items():
        assert from_conda[name] == version, f"{name}: requirements.txt pins {version}, environment.yml {from_conda[name]}"


def test_environment_yml_uses_python_311():
    text = (REPO / "environment.yml").read_text()
    assert re.search(r"^\s*- python=3\.11\s*$", text, re.MULTILINE), "environment.yml must ask for python=3.11"


def test_core_pins_are_the_course_versions():
    pins = requirement_pins((REPO / "requirements.txt").read_text().splitlines())
    assert pins["mlflow[auth]"] == "3.17.2"
    assert pins["torch"] == "2.13.0", "torch must stay pinned: an unpinned torch pulls a CUDA build"


def test_installed_versions_match_pins():
    from importlib.metadata import version

    pins = requirement_pins((REPO / "requirements.txt").read_text().splitlines())
    for name, pinned in pins.items():
        installed = version(re.sub(r"\[.*\]", "", name))
        assert installed.split("+")[0] == pinned, f"{name}: installed {installed}, pinned {pinned}; run make test again"


def make_targets() -> list[str]:
    text = (REPO / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z-]*):", text, re.MULTILINE)


def test_make_help_is_first_and_lists_every_target():
    targets = make_targets()
    assert targets[0] == "help", f"the first target is {targets[0]!r}; make help must come first"
    output = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for target in targets:
        assert f"make {target} " in output, f"make help does not list the {target!r} target"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"], f".ci/run runs {commands}, not exactly `make test`"
    assert "make test" in readme and "make lab" in readme


def copy_make_skeleton(tmp_path: Path) -> Path:
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "scripts", tmp_path / "scripts")
    return tmp_path


def test_missing_python_gets_clear_message(tmp_path):
    folder = copy_make_skeleton(tmp_path)
    result = subprocess.run(
        ["make", "--no-print-directory", "test", "PYTHON=/nonexistent/python3.11"],
        cwd=folder, capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "/nonexistent/python3.11 was not found" in result.stdout + result.stderr
    assert not (folder / ".venv").exists(), "no venv may be created without a usable Python"


def test_old_python_gets_clear_message(tmp_path):
    folder = copy_make_skeleton(tmp_path)
    fake = folder / "python3.9"
    fake.write_text(
        "#!/bin/sh\n"
        f'exec {sys.executable} -c "import sys; sys.version_info = (3, 9, 18); '
        f'sys.argv = sys.argv[1:]; exec(open(sys.argv[0]).read())" "$@"\n'
    )
    fake.chmod(0o755)
    result = subprocess.run(
        ["make", "--no-print-directory", "test", f"PYTHON={fake}"], cwd=folder, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "Python 3.9.18" in result.stderr and "needs 3.11 or newer" in result.stderr
    assert not (folder / ".venv").exists()


def test_importing_helpers_changes_nothing(tmp_path):
    store = tmp_path / "no-store-here"
    code = (
        "import importlib, pkgutil, helpers, mlflow\n"
        "for module in pkgutil.iter_modules(helpers.__path__):\n"
        "    importlib.import_module(f'helpers.{module.name}')\n"
        "from mlflow.tracking._tracking_service.utils import is_tracking_uri_set\n"
        "print('uri set' if is_tracking_uri_set() else 'uri unset')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(COURSE_STORE_DIR=str(store), COURSE_STATE_DIR=str(tmp_path / "state"), MLFLOW_DISABLE_TELEMETRY="true")
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uri unset"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd"], "importing helpers created folders"
    assert list(work.iterdir()) == [], "importing helpers wrote into the working directory"


@pytest.mark.parametrize("variable", ["MLFLOW_DISABLE_TELEMETRY"])
def test_makefile_exports_offline_settings(variable):
    assert re.search(rf"^export {variable} := true$", (REPO / "Makefile").read_text(), re.MULTILINE)
