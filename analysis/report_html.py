"""A report as a small document (sections of tables, figures, text and code) and its two
renderings: one self-contained HTML5 page and one Markdown file.

The HTML page needs nothing beside it: the CSS is inline, every figure is a base64 PNG data URI,
there is no JavaScript and no external URL. Every text that came from a file is HTML-escaped
here, so callers pass plain text. The Markdown file links the figures' PNG and SVG files by
paths relative to the folder it is written in. Numbers are formatted in one place
(``analysis.labels.cell_text``): NaN and missing values show as "–", numbers are right-aligned.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.labels import LABELS as LABELS  # re-exported: they were defined here first
from analysis.labels import MISSING as MISSING
from analysis.labels import cell_text as cell_text
from analysis.labels import label as label


@dataclass(frozen=True)
class Table:
    """Rows of cells under ``headers``; numbers are formatted by ``cell_text``."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A figure already saved as ``png`` (embedded in HTML) and ``svg`` (linked from Markdown)."""

    title: str
    png: Path
    svg: Path | None = None
    caption: str = ""


@dataclass(frozen=True)
class Text:
    """One paragraph of plain text."""

    text: str


@dataclass(frozen=True)
class Code:
    """Preformatted text (the resolved scenario as JSON)."""

    text: str
    language: str = "json"


Block = Table | Figure | Text | Code


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        slug = "".join(c if c.isalnum() else "-" for c in self.title.lower())
        return "-".join(part for part in slug.split("-") if part) or "section"


@dataclass(frozen=True)
class Document:
    title: str
    sections: Sequence[Section]
    subtitle: str = ""


def is_number(value: Any) -> bool:
    """Numbers (and missing values, which stand in for numbers) are right-aligned."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML5 page."""
    toc = "".join(
        f'<li><a href="#{s.anchor}">{_esc(s.title)}</a></li>' for s in doc.sections if s.title
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(doc.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_esc(doc.title)}</h1>",
    ]
    if doc.subtitle:
        parts.append(f'<p class="subtitle">{_esc(doc.subtitle)}</p>')
    if toc:
        parts.append(f'<nav aria-label="contents"><ul>{toc}</ul></nav>')
    for section in doc.sections:
        parts.append(f'<section id="{section.anchor}">')
        if section.title:
            parts.append(f"<h2>{_esc(section.title)}</h2>")
        parts.extend(_html_block(block) for block in section.blocks)
        parts.append("</section>")
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def render_markdown(doc: Document, base: Path) -> str:
    """The document as Markdown; figure links are relative to ``base`` (where it is written)."""
    parts = [f"# {_md_text(doc.title)}", ""]
    if doc.subtitle:
        parts += [f"_{_md_text(doc.subtitle)}_", ""]
    for section in doc.sections:
        if section.title:
            parts += [f"## {_md_text(section.title)}", ""]
        for block in section.blocks:
            parts += [_md_block(block, base), ""]
    return "\n".join(parts).rstrip() + "\n"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{_esc(block.text)}</p>"
    if isinstance(block, Code):
        return f'<pre class="code"><code>{_esc(block.text)}</code></pre>'
    if isinstance(block, Figure):
        data = base64.b64encode(block.png.read_bytes()).decode("ascii")
        caption = block.caption or block.title
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(block.title)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    return _html_table(block)


def _html_table(table: Table) -> str:
    head = "".join(f'<th scope="col">{_esc(h)}</th>' for h in table.headers)
    numeric = _numeric_columns(table)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{_esc(cell_text(v))}</td>'
            if numeric[i] and is_number(v)
            else f"<td>{_esc(cell_text(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{_esc(table.caption)}</caption>" if table.caption else ""
    return (
        f'<div class="table"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _numeric_columns(table: Table) -> list[bool]:
    """Columns whose every cell is a number (or missing), with at least one real number."""
    width = len(table.headers)
    return [
        all(is_number(row[i]) for row in table.rows)
        and any(row[i] is not None for row in table.rows)
        for i in range(width)
    ]


def _md_text(text: Any) -> str:
    """Plain text for Markdown: one line, and no raw HTML (``&`` and ``<`` become entities;
    ``>`` stays readable: mid-line it starts nothing)."""
    one_line = " ".join(str(text).split())
    return one_line.replace("&", "&amp;").replace("<", "&lt;")


def _md_block(block: Block, base: Path) -> str:
    if isinstance(block, Text):
        return _md_text(block.text)
    if isinstance(block, Code):
        fence = "````" if "```" in block.text else "```"
        return f"{fence}{block.language}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Figure):
        link = f"![{_md_text(block.title)}]({_relative(block.png, base)})"
        svg = f" ([SVG]({_relative(block.svg, base)}))" if block.svg is not None else ""
        caption = f"\n\n_{_md_text(block.caption)}_" if block.caption else ""
        return link + svg + caption
    return _md_table(block)


def _md_table(table: Table) -> str:
    numeric = _numeric_columns(table)

    def cell(value: Any) -> str:
        return _md_text(cell_text(value)).replace("|", "\\|") or " "

    lines = []
    if table.caption:
        lines += [f"**{_md_text(table.caption)}**", ""]
    lines.append("| " + " | ".join(cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


_CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6678; --line: #d9dee7;
  --band: #f5f7fa; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 12px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
.subtitle { color: var(--muted); margin: 0 0 16px; }
nav ul { list-style: none; padding: 0; margin: 8px 0 0; display: flex; flex-wrap: wrap;
  gap: 6px 16px; }
nav a, a { color: var(--accent); text-decoration: none; }
nav a:hover { text-decoration: underline; }
.table { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 4px 0; white-space: nowrap; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9em; }
pre.code { background: var(--band); border: 1px solid var(--line); padding: 12px;
  overflow-x: auto; font-size: 0.82em; line-height: 1.4; max-height: 520px; }
"""
