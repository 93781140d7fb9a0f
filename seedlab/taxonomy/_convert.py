"""Knowledge documents of any supported format turned into the plain Markdown text the pipeline reads.

Each format is first converted to Markdown (headings, paragraphs, lists and tables kept), then every format's
markup is reduced to readable text: links to their words, images, footnote marks and HTML tags dropped, and
each table row restated as one line ("Vessel: Kestrel; Length: 42 m.") so that a row is a fact like a sentence.

Converters, chosen because they work offline and download nothing at run time:
- PDF: pdfplumber (on pdfminer.six): characters with their font sizes, so headings can be told from body text,
  and table detection from ruling lines. No OCR: a scanned PDF without a text layer is an error, not a guess.
- HTML: markdownify (on BeautifulSoup).
- DOCX: mammoth (Word's own heading and list styles to HTML), then the HTML path.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from seedlab.errors import TaxonomyError

CONVERTER_VERSION = 1  # part of the cache key: bump it when a converter's output changes
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text", ".pdf": "pdf",
            ".html": "html", ".htm": "html", ".docx": "docx"}


def document_format(path: str) -> str | None:
    """The format a document path is read as, or None for a file seedlab cannot read."""
    return SUFFIXES.get(PurePosixPath(path).suffix.lower())


def convert_document(path: str, data: bytes) -> str:
    """The readable Markdown text of one document file (`path` names it in errors and picks the format)."""
    kind = document_format(path)
    if kind is None:
        known = ", ".join(sorted(SUFFIXES))
        raise TaxonomyError(f"{path}: seedlab reads {known} documents; convert this file or fix document.patterns")
    if kind == "pdf":
        markdown = pdf_to_markdown(path, data)
    elif kind == "docx":
        markdown = docx_to_markdown(path, data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TaxonomyError(f"{path}: byte {exc.start} is not UTF-8; save the file as UTF-8 text") from exc
        markdown = html_to_markdown(text) if kind == "html" else text
    readable = readable_text(markdown)
    if not readable.strip():
        raise TaxonomyError(f"{path}: no text in this document; check that it is the file you meant")
    return readable


# --- HTML and DOCX -----------------------------------------------------------------------------------------------


def html_to_markdown(text: str) -> str:
    """Markdown of an HTML page: ATX headings, lists and tables; scripts, styles and page furniture dropped."""
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "img"]):
        tag.decompose()
    for tag in soup.select("sup.reference, sup[class*=footnote], a[class*=footnote]"):
        tag.decompose()  # footnote marks
    body = soup.body or soup
    return str(markdownify(str(body), heading_style="ATX", bullets="-", strip=["a"]))


def docx_to_markdown(path: str, data: bytes) -> str:
    """Markdown of a Word document through mammoth's HTML (headings from Word's Heading styles)."""
    import zipfile

    import mammoth

    try:
        result = mammoth.convert_to_html(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise TaxonomyError(f"{path}: not a readable .docx file ({exc}); save it again from Word as .docx") from exc
    return html_to_markdown(str(result.value))


# --- PDF ---------------------------------------------------------------------------------------------------------

BULLETS = ("•", "◦", "▪", "‣", "●", "–", "-", "*")


def pdf_to_markdown(path: str, data: bytes) -> str:
    """Markdown of a PDF's text layer: lines in a larger font than the body become headings (largest first),
    bulleted lines list items, ruled tables Markdown tables, and lines with a gap above them new paragraphs."""
    import struct
    import zlib

    import pdfplumber
    from pdfminer.pdfdocument import PDFEncryptionError
    from pdfminer.psexceptions import PSException
    from pdfplumber.utils.exceptions import MalformedPDFException, PdfminerException

    pages: list[list[tuple[float, str, float | None]]] = []  # per page: (top, markdown block, font size or None)
    # pdfminer's and pdfplumber's own errors, and the plain ones pdfminer lets out of a damaged file's streams and
    # tables (a byte-mutation fuzz of our test PDF raised TypeError in 44 of 300 files)
    damaged = (PdfminerException, MalformedPDFException, PSException, ValueError, KeyError, TypeError, EOFError,
               struct.error, zlib.error)
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            for page in pdf.pages:
                pages.append(_page_blocks(page))
    except damaged as exc:
        cause = exc.args[0] if isinstance(exc, PdfminerException) and exc.args else exc
        if isinstance(cause, PDFEncryptionError) or "password" in str(cause).lower():
            raise TaxonomyError(f"{path}: the PDF is encrypted; commit a copy without a password") from exc
        raise TaxonomyError(f"{path}: not a readable PDF ({cause or type(cause).__name__}); export it again") from exc
    sizes = Counter(round(size, 1) for blocks in pages for _, text, size in blocks if size for _ in text.split())
    if not sizes:
        raise TaxonomyError(f"{path}: the PDF has no text layer (a scanned document?); seedlab does no OCR: commit "
                            "a PDF with text or a Markdown version")
    body = sizes.most_common(1)[0][0]
    larger = sorted({s for s in sizes if s > body * 1.15}, reverse=True)[:3]
    out = []
    for blocks in pages:
        for _, text, size in blocks:
            if size is not None and round(size, 1) in larger and len(text) < 120 and "\n" not in text:
                out.append("#" * (larger.index(round(size, 1)) + 1) + " " + text)
            else:
                out.append(text)
    return "\n\n".join(out)


def _page_blocks(page: Any) -> list[tuple[float, str, float | None]]:
    tables = page.find_tables()
    boxes = [t.bbox for t in tables]

    def outside(obj: dict[str, Any]) -> bool:
        x = (obj["x0"] + obj["x1"]) / 2
        y = (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    blocks: list[tuple[float, str, float | None]] = [(t.bbox[1], _markdown_table(t.extract()), None) for t in tables]
    lines = page.filter(outside).extract_text_lines(return_chars=True, keep_blank_chars=False)
    paragraph: list[str] = []
    para_top, para_size, last_bottom = 0.0, 0.0, None
    for line in lines:
        text = line["text"].strip()
        if not text:
            continue
        size = max(c["size"] for c in line["chars"])
        height = line["bottom"] - line["top"]
        bullet = text.startswith(BULLETS) and len(text) > 2 and text[1] == " "
        new_block = (last_bottom is None or line["top"] - last_bottom > 0.6 * height or abs(size - para_size) > 0.5
                     or bullet or re.match(r"^\d+[.)] ", text))
        if new_block and paragraph:
            blocks.append((para_top, " ".join(paragraph), para_size))
            paragraph = []
        if not paragraph:
            para_top, para_size = line["top"], size
        paragraph.append("- " + text[2:].strip() if bullet else text)
        last_bottom = line["bottom"]
    if paragraph:
        blocks.append((para_top, " ".join(paragraph), para_size))
    return sorted(blocks, key=lambda b: b[0])


def _markdown_table(rows: list[list[str | None]]) -> str:
    cells = [[" ".join((c or "").split()) for c in row] for row in rows if any(c for c in row)]
    if not cells:
        return ""
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * width]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells[1:]])


# --- markup to readable text ---------------------------------------------------------------------------------------

_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")  # target and title may hold spaces, one level of ()
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_WIKI_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]]+)\]\]")
_REF_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s+\S.*$", re.MULTILINE)
_FOOTNOTE = re.compile(r"\[\^[^\]]+\]|\[(?:\d{1,3}|[a-z]|citation needed|note \d+|clarification needed)\]")
_DROPPED_ELEMENTS = re.compile(r"<(ref|sup|script|style)\b[^>]*>.*?</\1\s*>|<ref\b[^>]*/>|<!--.*?-->",
                               re.IGNORECASE | re.DOTALL)
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\3(?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def readable_text(markdown: str) -> str:
    """Markdown with its markup reduced to the text a reader sees; headings and list items stay as structure,
    and each table row becomes one line naming its columns."""
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    text = _DROPPED_ELEMENTS.sub("", text)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    text = _REF_DEFINITION.sub("", text)
    text = _IMAGE.sub("", text)
    for pattern in (_LINK, _REF_LINK, _WIKI_LINK):
        text = pattern.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _CODE.sub(r"\1", text)
    text = _EMPHASIS.sub(lambda m: m.group(2) or m.group(4), text)
    text = html.unescape(text).replace("\u00a0", " ")
    lines = _tables_to_lines(text.split("\n"))
    cleaned = [re.sub(r"[ \t]+", " ", line).rstrip() for line in lines]
    text = re.sub(r"[ \t]*\n?[ \t]+([,.;:])(?=\s|$)|[ \t]*\n([,.;:])(?=\s|$)", r"\1\2", "\n".join(cleaned))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"  # (punctuation left apart by a dropped mark rejoined)


def _tables_to_lines(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1].strip()):
            header = _cells(lines[i])
            i += 2
            if not any(header) and i < len(lines) and lines[i].lstrip().startswith("|"):
                header, i = _cells(lines[i]), i + 1  # a table without header cells (Word's): its first row names
            out.append("")
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = _cells(lines[i])
                pairs = [f"{h}: {c}" if h else c for h, c in zip(header, row, strict=False) if c]
                if pairs:
                    out.append("- " + "; ".join(pairs) + ".")
                i += 1
            out.append("")
        else:
            out.append(lines[i])
            i += 1
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]
