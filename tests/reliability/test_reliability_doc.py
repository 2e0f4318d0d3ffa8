"""docs/reliability.md shows every bad input of the corpus and every reliability test, as they are."""

from __future__ import annotations

from reliability_doc import DOC, rendered


def test_the_reliability_page_matches_the_tests():
    assert (
        DOC.read_text(encoding="utf-8") == rendered()
    ), "docs/reliability.md is out of date: run python tests/reliability/reliability_doc.py"
