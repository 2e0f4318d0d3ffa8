"""House rules that a reader of the project sees: papers called by method and authors, never by file number."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO

# the numbers of the team's paper files (a word "paper" and a three-digit number) mean nothing to a reader
PAPER_NUMBER = re.compile(r"paper[ -]?00\d", re.IGNORECASE)


def test_papers_are_named_by_method_not_by_number():
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.json", "*.md", "*.yml", "*.toml", "*.sh"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in files:
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), start=1):
            if PAPER_NUMBER.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
