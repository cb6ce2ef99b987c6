"""A self-contained HTML document: headings, paragraphs, tables and PNG figures inlined."""

from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.warn { color: #a00; font-weight: bold; } .meta { color: #555; font-size: 0.9em; }
"""


class Document:
    """An HTML report being written: add parts in order, then :meth:`render`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []
        self.n_figures = 0

    def heading(self, text: str, level: int = 2) -> None:
        """A section heading."""
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str | None = None) -> None:
        """A paragraph of plain text (escaped)."""
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, df: pd.DataFrame, digits: int = 3, index: bool = False) -> None:
        """A table; floats rounded to ``digits``."""
        self.parts.append(df.to_html(index=index, border=0, na_rep="–",
                                     float_format=lambda v: f"{v:.{digits}g}"))

    def figure(self, fig: Figure, caption: str) -> None:
        """Embed ``fig`` as a PNG (base64) with its caption, and close it."""
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self.n_figures += 1
        self.parts.append(
            f'<figure id="fig{self.n_figures}"><img class="report-figure" alt="'
            f'{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>Figure {self.n_figures}. {html.escape(caption)}</figcaption></figure>")

    def render(self) -> str:
        """The whole document."""
        body = "\n".join(self.parts)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head>"
                f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n</body></html>\n")
