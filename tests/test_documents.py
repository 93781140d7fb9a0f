"""Knowledge documents in PDF, HTML, DOCX and marked-up Markdown: converted to readable text with their structure,
unreadable files named in one clear error, the conversion cached, and no markup reaching the samples."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import git
import pytest
import yaml
from click.testing import CliRunner
from helpers import commit_all, knowledge_leaf, new_repo, write
from test_sdg_generate import good_responder

from seedlab.backends import FakeBackend
from seedlab.cli import cli
from seedlab.config import load_settings
from seedlab.errors import TaxonomyError
from seedlab.sdg import GenerateOptions, generate
from seedlab.taxonomy import KnowledgeLeaf, convert_document, load_leaf, readable_text
from seedlab.workspace import init_workspace

TITLE = "The Orsk Sound Ferry"
PARAGRAPH = ("The Orsk Sound Ferry Company was founded in 1887 by Ada Lorn. Its first boat carried 40 passengers "
             "across the sound in about ninety minutes.")
SECTION = "Vessels"
ITEMS = ["Kestrel, built in 1961", "Tern, built in 1978"]
TABLE = [["Ship", "Length", "Built"], ["Kestrel", "42 m", "1961"], ["Tern", "38 m", "1978"]]


def pdf_bytes(*, password: str | None = None, text: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    if password:
        pdf.set_encryption(owner_password="owner", user_password=password)
    if not text:  # a "scanned" page: drawing only, no text layer
        pdf.rect(20, 20, 100, 60, style="F")
        return bytes(pdf.output())
    line = {"new_x": "LMARGIN", "new_y": "NEXT"}
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 12, TITLE, **line)
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, PARAGRAPH, **line)
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 10, SECTION, **line)
    pdf.set_font("Helvetica", "", 11)
    for item in ITEMS:
        pdf.multi_cell(0, 6, "- " + item, **line)
    pdf.ln(3)
    with pdf.table() as table:
        for cells in TABLE:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(TITLE, 1)
    document.add_paragraph(PARAGRAPH)
    document.add_heading(SECTION, 2)
    for item in ITEMS:
        document.add_paragraph(item, style="List Bullet")
    table = document.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for i, cells in enumerate(TABLE):
        for j, cell in enumerate(cells):
            table.cell(i, j).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def html_bytes() -> bytes:
    rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{c}</{'th' if i == 0 else 'td'}>" for c in cells)
                   + "</tr>" for i, cells in enumerate(TABLE))
    items = "".join(f"<li>{item}</li>" for item in ITEMS)
    page = (f"<html><head><title>x</title><style>p {{color: red}}</style><script>var x = 1;</script></head><body>"
            f"<nav><a href='/'>Home</a></nav><h1>{TITLE}</h1><p>{PARAGRAPH.replace('1887', '<b>1887</b>')}"
            f"<sup class='reference'><a href='#n1'>[1]</a></sup></p><h2>{SECTION}</h2><ul>{items}</ul>"
            f"<table>{rows}</table></body></html>")
    return page.encode()


@pytest.mark.parametrize("name, make", [("orsk.pdf", pdf_bytes), ("orsk.docx", docx_bytes), ("orsk.html", html_bytes)])
def test_formats_keep_headings_paragraphs_lists_and_tables(name: str, make: object) -> None:
    assert callable(make)
    text = convert_document(name, make())
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == f"# {TITLE}"
    assert f"## {SECTION}" in lines
    assert " ".join(PARAGRAPH.split()) in " ".join(text.split())  # the paragraph, whole (its line breaks aside)
    for item in ITEMS:
        assert f"- {item}" in lines
    assert "- Ship: Kestrel; Length: 42 m; Built: 1961." in lines  # a table row restated as one fact
    assert "- Ship: Tern; Length: 38 m; Built: 1978." in lines
    assert lines.index(f"## {SECTION}") < lines.index(f"- {ITEMS[0]}")  # in reading order
    assert not re.search(r"[<>*|\[\]]|var x|color|Home", text)


@pytest.mark.parametrize("data, message", [
    (pdf_bytes(password="secret"), "orsk.pdf: the PDF is encrypted; commit a copy without a password"),
    (b"%PDF-1.4\n1 0 obj << /Type /Catalog", "orsk.pdf: not a readable PDF"),
    (pdf_bytes(text=False), "orsk.pdf: the PDF has no text layer"),
])
def test_unreadable_pdfs_give_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(TaxonomyError) as caught:
        convert_document("orsk.pdf", data)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_other_unreadable_files_name_the_fix() -> None:
    with pytest.raises(TaxonomyError, match=r"a.docx: not a readable \.docx file .*save it again"):
        convert_document("a.docx", b"not a zip file")
    with pytest.raises(TaxonomyError, match="a.md: byte 3 is not UTF-8; save the file as UTF-8"):
        convert_document("a.md", b"abc\xff")
    with pytest.raises(TaxonomyError, match=r"a.png: seedlab reads .*fix document.patterns"):
        convert_document("a.png", b"\x89PNG")


WIKI = """# Halvane seed library

![The vault door](File:Vault_door.jpg "thumb|right|The vault")
The **Halvane Seed Library** is a [seed bank](Seed_bank "wikilink") in <small>the mountain town of</small>
[[Ostrel Vey|Ostrel Vey]].[1] It was founded on 14 March 2009<ref name="a">Town record, 2009.</ref> by the
[botanist](Botany "wikilink") Mirela Kostandin.[^note]<sup>[2]</sup> Its vault holds 4,860&nbsp;varieties
[citation needed].

<!-- an editor's comment -->
[^note]: Kostandin also founded the town herbarium.
[ref]: https://example.org/halvane

## Members

* A member may take up to *12 packets* each season, as the [lending rules][ref] say.
* Membership costs `8 silver marks` a year.
"""


def test_markup_reduces_to_the_text_a_reader_sees() -> None:
    text = readable_text(WIKI)
    flat = " ".join(text.split())
    assert "The Halvane Seed Library is a seed bank in the mountain town of Ostrel Vey." in flat
    assert "It was founded on 14 March 2009 by the botanist Mirela Kostandin." in flat
    assert "Its vault holds 4,860 varieties." in flat
    assert "* A member may take up to 12 packets each season, as the lending rules say." in text
    assert "## Members" in text and text.startswith("# Halvane seed library")
    for markup in ("](", "[[", "wikilink", "<", ">", "**", "`", "[1]", "[^", "&nbsp;", "Town record", "herbarium",
                   "example.org", "File:", "citation needed", "editor's comment"):
        assert markup not in text, markup


def test_a_marked_up_document_yields_samples_without_markup(seedlab_home: Path) -> None:
    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None
    docs_repo = git.Repo(next(settings.docs_path.iterdir()))
    original = Path(docs_repo.working_dir, "halvane.md").read_text()
    marked = re.sub(r"(Ostrel Vey|Kellan Ridge|Lantern Night)", r'[\1](\1 "wikilink")', original)
    marked = re.sub(r"(\d{4})\b", r"<small>\1</small>[3]", marked)
    marked = marked.replace("## Lending", "## Lending\n\n![A packet](File:Packet.jpg \"thumb\")\n")
    assert marked.count("wikilink") >= 3 and marked.count("<small>") >= 3
    Path(docs_repo.working_dir, "halvane.md").write_text(marked)
    commit = commit_all(docs_repo, "the document as a wiki export")
    leaf = settings.taxonomy_path / "knowledge/community/seed_libraries/halvane/qna.yaml"
    data = yaml.safe_load(leaf.read_text())
    data["document"]["commit"] = commit
    leaf.write_text(yaml.safe_dump(data, sort_keys=False))
    commit_all(git.Repo(settings.taxonomy_path), "pin the wiki export")

    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1), teacher=FakeBackend(good_responder))
    samples = [json.loads(line) for line in (result.run_dir / "knowledge.jsonl").read_text().splitlines()]
    generated = [s for s in samples if s["metadata"]["source"] != "seed"]
    assert len(generated) >= 50
    for sample in generated:
        for message in sample["messages"]:
            assert not re.search(r"\]\(|wikilink|<small|</|!\[|\[3\]|File:", message["content"]), message
    assert any("Ostrel Vey" in s["messages"][1]["content"] for s in generated)


def test_documents_convert_once_and_validate_names_an_unreadable_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import seedlab.taxonomy._leaf as leaf_module

    docs = new_repo(tmp_path / "docs", {"README.md": "Docs.\n"})
    (tmp_path / "docs" / "orsk.pdf").write_bytes(pdf_bytes())
    good = commit_all(docs, "a PDF")
    (tmp_path / "docs" / "orsk.pdf").write_bytes(pdf_bytes(password="secret"))
    locked = commit_all(docs, "the PDF, encrypted")
    taxonomy = tmp_path / "tax"
    new_repo(taxonomy, {"knowledge/ferries/orsk/qna.yaml": knowledge_leaf(str(tmp_path / "docs"), good, ["*.pdf"]),
                        "knowledge/ferries/locked/qna.yaml": knowledge_leaf(str(tmp_path / "docs"), locked,
                                                                             ["*.pdf"])})
    cache = tmp_path / "cache"
    conversions = []
    real = leaf_module.convert_document
    monkeypatch.setattr(leaf_module, "convert_document", lambda p, d: conversions.append(p) or real(p, d))
    for _ in range(2):
        loaded = load_leaf(taxonomy, "knowledge/ferries/orsk/qna.yaml", cache)
        assert isinstance(loaded, KnowledgeLeaf) and loaded.documents[0].path == "orsk.pdf"
        assert "- Ship: Kestrel; Length: 42 m; Built: 1961." in loaded.documents[0].text
    assert conversions == ["orsk.pdf"]  # the second load read the cache

    monkeypatch.setenv("SEEDLAB_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(cli, ["taxonomy", "validate", str(taxonomy)])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if ": error:" in line]
    assert len(errors) == 1
    assert re.match(r".*knowledge/ferries/locked/qna\.yaml:\d+:1: error: document: .*@[0-9a-f]{8}:orsk\.pdf: "
                    r"the PDF is encrypted; commit a copy without a password$", errors[0]), errors
    assert "Traceback" not in result.output


def test_show_doc_prints_the_text_the_pipeline_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = new_repo(tmp_path / "docs", {"README.md": "Docs.\n"})
    (tmp_path / "docs" / "orsk.docx").write_bytes(docx_bytes())
    commit = commit_all(docs, "a Word document")
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    taxonomy = load_settings().taxonomy_path
    write(taxonomy, "knowledge/ferries/orsk/qna.yaml", knowledge_leaf(str(tmp_path / "docs"), commit, ["*.docx"]))
    result = runner.invoke(cli, ["taxonomy", "show-doc", "knowledge/ferries/orsk"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("==> orsk.docx (")
    assert f"# {TITLE}" in result.output and "- Ship: Tern; Length: 38 m; Built: 1978." in result.output
    skill = runner.invoke(cli, ["taxonomy", "show-doc", "compositional_skills/writing/rewriting/formal_tone"])
    assert skill.exit_code == 1 and "is a skill leaf" in skill.output and "Traceback" not in skill.output
    missing = runner.invoke(cli, ["taxonomy", "show-doc", "knowledge/nowhere"])
    assert missing.exit_code == 1 and "no such leaf" in missing.output


RIVER = {
    "01-upper.md": "# The Varden River\n\nThe Varden River rises on Mount Orrel at 2,210 metres above the sea.\n\n"
                   "## Dunmere\n\nThe town of Dunmere has a stone bridge of nine arches built in 1702. "
                   "Its market opens every Thursday at dawn.\n\n"
                   "## Climate\n\nSnow covers the upper valley for about 140 days in a year.\n",
    "02-lower.md": "# The Lower Varden\n\n## Kestrin Mill\n\nThe waterwheel of Kestrin Mill is 7.5 metres across "
                   "and turns six times a minute.\n",
}


def test_facts_keep_their_file_and_section_and_questions_name_its_subject(seedlab_home: Path) -> None:
    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None
    docs = new_repo(settings.docs_path / "varden", RIVER)
    leaf = knowledge_leaf(str(settings.docs_path / "varden"), docs.head.commit.hexsha, ["*.md"])
    write(settings.taxonomy_path, "knowledge/rivers/varden/qna.yaml", leaf)
    commit_all(git.Repo(settings.taxonomy_path), "a river in two files")

    result = generate(settings, GenerateOptions(taxonomy_base="empty", scale=1), teacher=FakeBackend(good_responder))
    samples = [json.loads(line) for line in (result.run_dir / "knowledge.jsonl").read_text().splitlines()]
    recall = [s for s in samples if s["metadata"]["leaf"] == "knowledge/rivers/varden/qna.yaml"
              and s["metadata"]["source"] == "recall"]
    by_fact = {s["metadata"]["fact"]: s for s in recall}
    expected = {  # fact -> (file, section, the subject its questions name)
        "The Varden River rises on Mount Orrel at 2,210 metres above the sea.":
            ("01-upper.md", ["The Varden River"], "the Varden River"),
        "The town of Dunmere has a stone bridge of nine arches built in 1702.":
            ("01-upper.md", ["The Varden River", "Dunmere"], "Dunmere"),
        "Snow covers the upper valley for about 140 days in a year.":
            ("01-upper.md", ["The Varden River", "Climate"], "the Varden River"),  # "Climate" names nothing
        "The waterwheel of Kestrin Mill is 7.5 metres across and turns six times a minute.":
            ("02-lower.md", ["The Lower Varden", "Kestrin Mill"], "Kestrin Mill"),
    }
    for fact, (file, section, subject) in expected.items():
        sample = by_fact[fact]
        assert (sample["metadata"]["document"], sample["metadata"]["section"]) == (file, section)
        asked = [s["messages"][0]["content"] for s in recall if s["metadata"]["fact"] == fact]
        assert asked and all(subject in q or subject.capitalize() in q for q in asked), asked
    dunmere = [s for s in samples if s["metadata"].get("fact", "").startswith("Its market")]
    assert dunmere and all(s["metadata"]["section"][-1] == "Dunmere" for s in dunmere)
    assert any("Dunmere" in s["messages"][0]["content"] for s in dunmere if s["metadata"]["source"] == "recall")


def test_damaged_pdfs_give_a_clear_error_never_a_traceback() -> None:
    import random

    good, rng, outcomes = pdf_bytes(), random.Random(7), {"converted": 0, "clear error": 0}
    for _ in range(150):  # byte mutations and truncations of a valid PDF of ours
        damaged = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[: rng.randrange(len(damaged))]
        try:
            convert_document("x.pdf", bytes(damaged))
            outcomes["converted"] += 1
        except TaxonomyError as exc:
            assert str(exc).startswith("x.pdf: ") and "\n" not in str(exc)
            outcomes["clear error"] += 1
    assert outcomes["clear error"] > 100  # (no other exception type escaped, or the test would have failed)
