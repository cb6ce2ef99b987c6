"""A self-contained HTML document: sections with a table of contents, tables and PNG figures.

Every figure is inlined as a PNG (so the HTML is one file) and, when the document has a figure
folder, also written there as PNG and SVG for papers (``fig03-forest.png``, ``.svg``).
"""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from migraine_bayes.store import atomic

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { margin-top: 1.4em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.warn { color: #a00; font-weight: bold; } .meta { color: #555; font-size: 0.9em; }
section.box { background: #f6f8fb; border: 1px solid #d7dde6; border-radius: 6px;
              padding: 0.2em 1.2em 0.8em; }
section.box h2 { margin-top: 0.6em; }
.headline { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 0.6em 0; }
.headline div { background: white; border: 1px solid #d7dde6; border-radius: 4px;
                padding: 0.3em 0.7em; min-width: 9em; }
.headline b { display: block; font-size: 1.25em; }
nav#toc ol { columns: 2; font-size: 0.95em; }
table.text td, table.text th, td.text, th.text { text-align: left; }
"""
PNG_DPI = 90  # inlined figures: sharp on screen, small files; the SVGs are for print


def slug(text: str) -> str:
    """A file- and anchor-safe name: lower case, words joined by '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


class Document:
    """An HTML report being written: add parts in order, then :meth:`render`.

    ``figure_dir``: where each figure is also written as PNG and SVG (none if ``None``).
    """

    def __init__(self, title: str, figure_dir: Path | None = None) -> None:
        self.title = title
        self.parts: list[str] = []
        self.sections: list[tuple[int, str, str]] = []  # (level, id, title)
        self.n_figures = 0
        self.figure_dir = figure_dir
        self.exported: list[Path] = []

    def section(self, key: str, text: str, level: int = 2) -> None:
        """A heading with anchor ``key``, listed in the table of contents."""
        self.sections.append((level, key, text))
        self.parts.append(f'<h{level} id="{key}">{html.escape(text)}</h{level}>')

    def open_box(self, key: str, text: str) -> None:
        """Start a boxed section with anchor ``key`` (listed in the contents).

        End it with :meth:`close_box`.
        """
        self.sections.append((2, key, text))
        self.parts.append(f'<section class="box" id="{key}"><h2>{html.escape(text)}</h2>')

    def close_box(self) -> None:
        """End the boxed section."""
        self.parts.append("</section>")

    def heading(self, text: str, level: int = 3) -> None:
        """A heading that the table of contents does not list."""
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def raw(self, markup: str) -> None:
        """Markup built by the caller (it escapes what it inserts)."""
        self.parts.append(markup)

    def table(self, df: pd.DataFrame, digits: int = 3, index: bool = False,
              css: str | None = None) -> None:
        """A table; floats rounded to ``digits`` significant digits."""
        self.parts.append(df.to_html(index=index, border=0, na_rep="–", classes=css,
                                     float_format=lambda v: f"{v:.{digits}g}"))

    def contents(self) -> None:
        """The place of the table of contents (filled in by :meth:`render`)."""
        self.parts.append("<!--toc-->")

    def figure(self, fig: Figure, caption: str, name: str) -> None:
        """Embed ``fig`` as a PNG with its caption (and export it as PNG and SVG); close it."""
        self.n_figures += 1
        key = f"fig{self.n_figures:02d}-{slug(name)}"
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=PNG_DPI, bbox_inches="tight")
        if self.figure_dir is not None:
            self.figure_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for ext, dpi in (("png", 200), ("svg", None)):
                path = self.figure_dir / f"{key}.{ext}"
                with atomic.atomic_path(path) as tmp:  # private: figures name patients
                    fig.savefig(tmp, format=ext, dpi=dpi, bbox_inches="tight",
                                metadata={"Date": None} if ext == "svg" else None)
                self.exported.append(path)
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self.parts.append(
            f'<figure id="{key}"><img class="report-figure" alt="'
            f'{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>Figure {self.n_figures}. {html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        """The whole document."""
        items = "".join(f'<li><a href="#{key}">{html.escape(text)}</a></li>'
                        for level, key, text in self.sections if level == 2 and key != "summary")
        toc = f'<nav id="toc"><h2>Contents</h2><ol>{items}</ol></nav>'
        body = "\n".join(self.parts).replace("<!--toc-->", toc, 1)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
                f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
