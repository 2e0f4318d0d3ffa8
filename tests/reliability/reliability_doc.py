"""The generated parts of ``docs/reliability.md``: the bad-input table and the index of the reliability tests.

Both are rendered from the tests themselves, so the page cannot drift from what is checked:
``test_reliability_doc.py`` fails when the page differs, and ``python tests/reliability/reliability_doc.py``
rewrites it. The index is read from the test modules' source (docstring and test names), so adding a
test to this folder adds a line to the page.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DOC = REPO / "docs" / "reliability.md"
TABLE = ("<!-- corpus table: start -->", "<!-- corpus table: end -->")
INDEX = ("<!-- test index: start -->", "<!-- test index: end -->")


def test_index() -> str:
    """One paragraph per test module of this folder: what it holds, then each test's name as a sentence."""
    parts = []
    for module in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        summary = (ast.get_docstring(tree) or "").split("\n\n", 1)[0].replace("\n", " ")
        tests = [node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
        lines = [f"**`{module.relative_to(REPO).as_posix()}`**: {summary}", ""]
        lines += [f"- {name.removeprefix('test_').replace('_', ' ')} (`{name}`)" for name in tests]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _replace(text: str, markers: tuple[str, str], body: str) -> str:
    start, end = markers
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def rendered() -> str:
    """``docs/reliability.md`` with both generated parts brought up to date."""
    from test_input_corpus import corpus_table

    text = DOC.read_text(encoding="utf-8")
    return _replace(_replace(text, TABLE, corpus_table()), INDEX, test_index())


if __name__ == "__main__":
    sys.path[:0] = [str(HERE.parent), str(HERE)]  # conftest.py and generated.py, as pytest sees them
    DOC.write_text(rendered(), encoding="utf-8")
    print(f"updated {DOC}")
