"""The report document: a list of blocks rendered to Markdown and to one self-contained HTML file."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    """A table with a caption above it and the convention it follows stated under it."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


@dataclass
class Figure:
    """A PNG under the output folder (``path`` relative to it) with its caption."""

    path: str
    caption: str


@dataclass
class Document:
    title: str
    blocks: list[Heading | Paragraph | Table | Figure] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Figure) -> None:
        self.blocks.extend(blocks)


CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1250px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 .2em; font-size: 0.92em; }
p.caption { font-weight: 600; margin: 1.4em 0 .3em; }
th, td { border: 1px solid #bbb; padding: .25em .7em; }
th { background: #eef1f5; }
td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
p.note { font-size: .85em; color: #555; margin: 0 0 1.2em; max-width: 70em; }
/* an inline table: small figures (ROC, confusion) sit side by side and the caption wraps at the image width */
figure { display: inline-table; vertical-align: top; margin: 1em 1.5em 1.6em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { display: table-caption; caption-side: bottom; font-size: .88em; color: #444; margin-top: .3em; }
"""


def to_markdown(doc: Document) -> str:
    """The document as GitHub-flavoured Markdown; figures link to their PNG files."""
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines += [f"**{block.caption}**", "", _md_row(block.header), _md_row(["---"] * len(block.header))]
            lines += [_md_row(row) for row in block.rows]
            lines += ["", f"*{block.note}*" if block.note else "", ""]
        else:
            lines += [f"![{Path(block.path).stem}]({block.path})", "", f"*{block.caption}*", ""]
    return "\n".join(lines)


def to_html(doc: Document, root: Path) -> str:
    """The document as one HTML page with CSS inline and every figure under ``root`` embedded as base64 PNG."""
    parts = [f"<h1>{html.escape(doc.title)}</h1>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{html.escape(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            # caption as a paragraph, not <caption>: a <caption> wraps to the width of a narrow table
            parts.append(
                f'<p class="caption">{html.escape(block.caption)}</p>'
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            )
            if block.note:
                parts.append(f'<p class="note">{html.escape(block.note)}</p>')
        else:
            data = base64.b64encode((root / block.path).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
            )
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(doc.title)}</title>'
        f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _md_row(cells: list[str]) -> str:
    # a literal '|' inside a cell would split it
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
