"""The README's commands are the ones CI runs."""

import re


def readme_commands(repo_root):
    text = (repo_root / "README.md").read_text()
    return [line.strip() for line in re.findall(r"^    (pip install .*)$", text, flags=re.M)]


def test_ci_runs_the_readme_test_command(repo_root):
    test_commands = [c for c in readme_commands(repo_root) if "pytest" in c]
    assert len(test_commands) == 1
    ci_lines = [line.strip() for line in (repo_root / ".ci" / "run").read_text().splitlines()]
    assert test_commands[0] in ci_lines
