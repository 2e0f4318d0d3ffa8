"""House rules that a reader of the project sees: papers called by method and authors, never by file number."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO

# the numbers of the team's paper files (a word "paper" and a three-digit number) mean nothing to a reader
PAPER_NUMBER = re.compile(r"paper[ -]?00\d", re.IGNORECASE)
# summary.json keys kept for the runs already written (their values name the method)
LEGACY_KEYS = ("segmentation_paper003", "paper003_table", "PAPER003")


def test_papers_are_named_by_method_not_by_number():
    files = subprocess.run(["git", "ls-files", "*.py", "*.json", "*.md", "*.yml", "*.toml", "*.sh"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in files:
        if name.startswith("reports/"):  # measured results, regenerated with each run
            continue
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), start=1):
            text = line
            for key in LEGACY_KEYS:
                text = text.replace(key, "")
            if PAPER_NUMBER.search(text):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
