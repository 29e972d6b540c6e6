"""Repository invariants: the README's quick start and CI agree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_has_exactly_two_commands():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), commands
    main_job, tests = commands
    assert main_job.startswith("pip install -e . &&")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    test_command = quick_start_commands()[1]
    assert test_command in [line.strip() for line in ci]


def test_kernel_templates_ship_in_the_wheel():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"kernels" = "dredux/_kernels"' in text


def test_the_test_command_runs_the_doctests():
    """The README's test command collects the docstring examples of dredux/ too."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]
    assert "dredux" in options["testpaths"]
    assert "--doctest-modules" in options["addopts"].split()


def test_ci_runs_ruff_and_checks_the_wheel():
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "ruff check ." in ci
    assert any(line.startswith("python -m pip wheel") for line in ci)
    assert any(line.startswith("python .ci/check_wheel.py") for line in ci)
