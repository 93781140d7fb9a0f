"""`seedlab taxonomy validate|diff|show-doc`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from seedlab.taxonomy import FileReport

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
    help="text: path:line:col: level: message; json: one object per problem; github: Actions annotations.",
)


@click.group()
def taxonomy() -> None:
    """Validate qna.yaml leaves and list what changed against a git base."""


@taxonomy.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@FORMAT
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Validate qna.yaml files and every leaf under the given folders (default: the taxonomy).

    Exit code 0 when every file is valid, 1 when any has an error, 2 on a usage error.
    """
    from seedlab.config import load_settings
    from seedlab.taxonomy import validate_paths

    settings = load_settings()
    targets = list(paths) or [str(settings.taxonomy_path)]
    reports = validate_paths(targets, settings.home.cache / "docs")
    _emit(reports, fmt)
    sys.exit(1 if any(r.errors for r in reports) else 0)


@taxonomy.command()
@click.option("--taxonomy-path", type=click.Path(file_okay=False), help="The taxonomy folder (default: from config).")
@click.option("--taxonomy-base", help="Git ref to compare against, or 'empty' for the whole tree "
              "(default: origin/main if it exists, else the first commit).")
@FORMAT
def diff(taxonomy_path: str | None, taxonomy_base: str | None, fmt: str) -> None:
    """List new and changed leaves against a git base, and validate them."""
    from seedlab.config import load_settings
    from seedlab.taxonomy import FileReport, changed_leaves, document_problems, validate_file

    settings = load_settings()
    given = taxonomy_path or str(settings.taxonomy_path)
    result = changed_leaves(Path(given), taxonomy_base or settings.config.taxonomy.base)
    reports = []
    for rel in result.files:
        display = os.path.normpath(os.path.join(given, rel))
        problems = validate_file(Path(given) / rel, display)
        if not any(p.level == "error" for p in problems):
            problems += document_problems(Path(given) / rel, display, settings.home.cache / "docs")
        reports.append(FileReport(display, problems))
    listing = sys.stderr if fmt == "json" else sys.stdout
    click.echo(f"Taxonomy {given}, base: {result.base}: {len(result.files)} new or changed leaves", file=listing)
    for rel, report in zip(result.files, reports, strict=True):
        state = "invalid" if report.errors else "valid"
        click.echo(f"  {state:8} {rel}", file=listing)
    _emit(reports, fmt)
    sys.exit(1 if any(r.errors for r in reports) else 0)


@taxonomy.command("show-doc")
@click.argument("leaf")
def show_doc(leaf: str) -> None:
    """Print the text the knowledge pipeline reads from a leaf's documents (converted from PDF, HTML, DOCX or
    Markdown, markup reduced). LEAF: the leaf's qna.yaml or its folder, in the taxonomy or as a path."""
    from seedlab.config import load_settings
    from seedlab.errors import TaxonomyError
    from seedlab.taxonomy import KnowledgeLeaf, load_leaf

    settings = load_settings()
    root = settings.taxonomy_path.resolve()
    given = Path(leaf)
    candidates = [given, root / given] if not given.is_absolute() else [given]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        raise TaxonomyError(f"{leaf}: no such leaf in {root} or here; give a qna.yaml or its folder")
    path = found / "qna.yaml" if found.is_dir() else found
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError as exc:
        raise TaxonomyError(f"{leaf} is not inside the taxonomy {root}") from exc
    loaded = load_leaf(root, rel, settings.home.cache / "docs")
    if not isinstance(loaded, KnowledgeLeaf):
        raise TaxonomyError(f"{rel} is a skill leaf; only knowledge leaves have documents")
    for document in loaded.documents:
        click.echo(f"==> {document.path} ({len(document.text.split())} words) <==")
        click.echo(document.text)


def _emit(reports: list[FileReport], fmt: str) -> None:
    from seedlab.taxonomy import format_problem

    for report in reports:
        for problem in report.problems:
            click.echo(format_problem(problem, fmt))
    errors = sum(r.errors for r in reports)
    warnings = sum(r.warnings for r in reports)
    invalid = sum(1 for r in reports if r.errors)
    summary = (f"{len(reports)} files checked: {len(reports) - invalid} valid, {invalid} invalid "
               f"({errors} errors, {warnings} warnings)")
    click.echo(summary, file=sys.stderr if fmt == "json" else sys.stdout)
