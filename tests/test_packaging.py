import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower()


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_normalise(r) for r in pip_section} == declared
    assert "python=3.11" in env["dependencies"]


def test_every_dependency_has_a_lower_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert ">=" in requirement, requirement


def commands(script: str) -> list[list[str]]:
    """The commands a shell script runs, one token list per simple command (comments, `&&`, `;` and `|` split)."""
    found: list[list[str]] = []
    for line in script.splitlines():
        tokens = shlex.split(line, comments=True)
        command: list[str] = []
        for token in [*tokens, ";"]:
            if token in {";", "&&", "||", "|"}:
                if command:
                    found.append(command)
                command = []
            else:
                command.append(token)
    return found


def readme_test_command() -> list[str]:
    """The test command the README's "Start here" block names: the line commented as running the tests."""
    readme = (ROOT / "README.md").read_text()
    start = readme.split("## Start here", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].split() for line in start.splitlines() if "#" in line and "test" in line.split("#", 1)[1]]
    assert len(lines) == 1, f"the README's Start here block should name one test command, found {lines}"
    return lines[0]


def test_the_readme_names_make_test():
    assert readme_test_command() == ["make", "test"]


def test_ci_runs_the_readme_test_command():
    assert readme_test_command() in commands((ROOT / ".ci" / "run").read_text())


@pytest.mark.parametrize(("script", "runs"), [
    ("make test\nmake test-browser\n", True),
    ("set -e\ncd x && make test\n", True),
    ("make test-browser\n", False),        # the old check passed on this: "make test" is a substring of it
    ("# make test\nmake lint\n", False),   # commented out
    ("echo 'make test'\n", False),          # printed, not run
])
def test_the_ci_check_fails_without_make_test(script: str, runs: bool):
    assert (["make", "test"] in commands(script)) is runs


def test_pre_commit_hooks_are_the_projects_own_tools():
    """Each hook runs a tool the venv installs (no hook repository fetched), and the three checks are there."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    assert {hook["id"] for hook in hooks} == {"ruff", "mypy", "duplicate-code"}
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    declared = {re.split(r"[<>=\[]", requirement)[0].lower() for requirement in dev}
    for hook in hooks:
        tool = shlex.split(hook["entry"])[0]
        assert tool.startswith(".venv/bin/"), hook
        assert tool.removeprefix(".venv/bin/") in declared, f"{tool} is not in the dev extra"
