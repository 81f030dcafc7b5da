"""Plain text out of uploaded files: text, Markdown, HTML (stdlib parser) and PDF (pypdf)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from domain.errors import BadUserInput

TEXT_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".log", ".json", ".org")
HTML_SUFFIXES = (".html", ".htm", ".xhtml")


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "pre",
            "blockquote",
            "table",
            "ul",
            "ol",
            "title",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\s*\n\s*\n\s*", "\n\n", text).strip()


def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "utf-16"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def pdf_to_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise BadUserInput(f"cannot read PDF: {exc}") from None
    return "\n\n".join(p.strip() for p in pages if p.strip())


class FileTextExtractor:
    def extract(self, *, name: str, data: bytes) -> str:
        lower = name.lower()
        if lower.endswith(".pdf") or data[:5] == b"%PDF-":
            return pdf_to_text(data)
        if lower.endswith(HTML_SUFFIXES):
            return html_to_text(_decode(data))
        if lower.endswith(TEXT_SUFFIXES) or "." not in lower.rsplit("/", 1)[-1]:
            return _decode(data)
        raise BadUserInput(
            f"unsupported file type: {name} (text, Markdown, HTML or PDF)", details={"file": name}
        )
