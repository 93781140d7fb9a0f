"""The knowledge pipeline on documents of growing length: generate and train (and, with --evaluate, the held-out
key-fact score), timed per document, with seconds per 1,000 words; it says whether the cost grows linearly.

Documents (ours, invented): halvane (the example, ~600 words), orsk-ferry (~1,200), tessaly-observatory (~3,000),
varden-river (~12,000 in six files); each has its seeds (qna.yaml) and held-out questions under bench/documents/.
`--format pdf` commits each document as a PDF made from its Markdown (headings and paragraphs) instead, to compare
the PDF path's score with the Markdown one. `--plan-only` prints the plan `data generate` would follow.
Run: .venv/bin/python bench/knowledge_scaling.py [--docs halvane orsk-ferry] [--evaluate] [--format pdf]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "bench" / "documents"
EXAMPLE = ROOT / "seedlab" / "examples"
ORDER = ("halvane", "orsk-ferry", "tessaly-observatory", "varden-river")


def sources(name: str) -> tuple[list[Path], Path, Path]:
    """The document files, the qna.yaml and the held-out questions of one benchmark document."""
    if name == "halvane":
        leaf = EXAMPLE / "taxonomy" / "knowledge" / "community" / "seed_libraries" / "halvane"
        return [EXAMPLE / "docs" / "halvane-seed-library" / "halvane.md"], leaf / "qna.yaml", leaf / "heldout.jsonl"
    folder = DOCS / name
    return sorted(folder.glob("[0-9]*.md")) or [folder / "document.md"], folder / "qna.yaml", folder / "heldout.jsonl"


def as_pdf(markdown: str, target: Path) -> None:
    """A PDF of a Markdown text: headings in larger bold type, paragraphs and list items as body text."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    line = {"new_x": "LMARGIN", "new_y": "NEXT"}
    for block in re.split(r"\n\s*\n", markdown):
        block = block.strip()
        heading = re.match(r"^(#+)\s+(.*)", block)
        if heading:
            pdf.set_font("Helvetica", "B", {1: 20, 2: 15}.get(len(heading.group(1)), 13))
            pdf.multi_cell(0, 9, heading.group(2).encode("latin-1", "replace").decode("latin-1"), **line)
        elif block:
            pdf.set_font("Helvetica", "", 11)
            text = " ".join(block.split()).encode("latin-1", "replace").decode("latin-1")
            pdf.multi_cell(0, 6, text, **line)
            pdf.ln(2)
    pdf.output(str(target))


def setup(name: str, home_root: Path, fmt: str) -> tuple[Any, str, int]:
    """A home with the example workspace plus this document's leaf committed on top; (settings, base, words)."""
    import git

    from seedlab.config import Home, load_settings
    from seedlab.workspace import init_workspace

    home = Home.under(home_root / f"{name}-{fmt}")
    if home.data.exists():
        shutil.rmtree(home.data)
    init_workspace(load_settings(home=home))
    settings = load_settings(home=home)
    files, qna, heldout = sources(name)
    docs = settings.docs_path / f"bench-{name}"
    docs.mkdir(parents=True)
    words = 0
    for source in files:
        text = source.read_text(encoding="utf-8")
        words += len(text.split())
        if fmt == "pdf":
            as_pdf(text, docs / (source.stem + ".pdf"))
        else:
            shutil.copy(source, docs / source.name)
    repo = git.Repo.init(docs, initial_branch="main")
    repo.git.add("--all")
    actor = git.Actor("seedlab-bench", "bench@localhost")
    commit = repo.index.commit("benchmark document", author=actor, committer=actor).hexsha
    leaf_text = qna.read_text().replace("{{DOCS_REPO}}", str(docs)).replace("{{DOCS_COMMIT}}", commit)
    if fmt == "pdf":
        leaf_text = re.sub(r"(\S+)\.md\b", r"\1.pdf", leaf_text)
    leaf = settings.taxonomy_path / "knowledge" / "bench" / name.replace("-", "_")
    leaf.mkdir(parents=True)
    (leaf / "qna.yaml").write_text(leaf_text)
    shutil.copy(heldout, leaf / "heldout.jsonl")
    taxonomy = git.Repo(settings.taxonomy_path)
    base = taxonomy.head.commit.hexsha
    taxonomy.git.add("--all")
    taxonomy.index.commit(f"benchmark leaf {name}", author=actor, committer=actor)
    return settings, base, words


def run_one(name: str, home_root: Path, fmt: str, evaluate: bool, plan_only: bool,
            max_minutes: float | None) -> dict[str, Any]:
    from seedlab.cli.data_cmd import print_plan
    from seedlab.sdg import GenerateOptions, generate
    from seedlab.train import TrainOptions, train

    settings, base, words = setup(name, home_root, fmt)
    row: dict[str, Any] = {"document": name, "format": fmt, "words": words}
    plans: list[Any] = []

    def on_plan(leaf_plans: list[Any], rates: Any) -> None:
        print_plan(leaf_plans, rates)
        plans.extend(leaf_plans)
        if plan_only:
            raise SystemExit(0)

    options = GenerateOptions(taxonomy_base=base, max_minutes=max_minutes)
    start = time.perf_counter()
    try:
        result = generate(settings, options, on_plan=on_plan)
    except SystemExit:
        row["planned_generate_s"] = round(sum(p.seconds for p in plans), 1)
        return row
    row["generate_s"] = round(time.perf_counter() - start, 1)
    row["planned_generate_s"] = round(sum(p.seconds for p in plans), 1)
    stats = next(iter(result.stats["leaves"].values()))
    row["facts"] = stats["facts"]
    row["samples"] = result.stats["files"]["knowledge.jsonl"]
    knowledge = tuple(p for p in settings.config.train.phases if p.data == "knowledge")
    start = time.perf_counter()
    trained = train(settings, TrainOptions(data=result.run_dir.name, phase_configs=knowledge), print)
    row["train_s"] = round(time.perf_counter() - start, 1)
    if evaluate:
        from seedlab.eval import EvaluateOptions
        from seedlab.eval import evaluate as run_evaluate

        leaf = settings.taxonomy_path / "knowledge" / "bench" / name.replace("-", "_")
        report = run_evaluate(settings, EvaluateOptions(candidate=str(trained.adapter), taxonomy_base=base,
                                                        benchmarks=("knowledge-branch",),
                                                        questions=leaf / "heldout.jsonl"), print)
        row["heldout"] = report.uplift
    seconds = row["generate_s"] + row["train_s"]
    row["s_per_1000_words"] = round(1000 * seconds / words, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", nargs="+", choices=ORDER, default=list(ORDER))
    parser.add_argument("--home", type=Path, help="a folder for the homes (default: a new temporary one)")
    parser.add_argument("--format", choices=("md", "pdf"), default="md")
    parser.add_argument("--evaluate", action="store_true", help="also score the held-out questions")
    parser.add_argument("--plan-only", action="store_true", help="print the generate plans and stop")
    parser.add_argument("--max-minutes", type=float, help="the generate budget per document")
    args = parser.parse_args()
    from seedlab.cli import quiet_libraries

    quiet_libraries()
    root = args.home or Path(tempfile.mkdtemp(prefix="seedlab-scaling-"))
    rows = []
    for name in args.docs:
        rows.append(run_one(name, root, args.format, args.evaluate, args.plan_only, args.max_minutes))
        print(f"row: {json.dumps(rows[-1])}", flush=True)  # each document's figures as soon as it is done
    print(f"\n{'document':22} {'fmt':4} {'words':>6} {'facts':>6} {'samples':>7} {'plan s':>7} {'gen s':>7} "
          f"{'train s':>8} {'s/1k words':>10} {'held-out':>16}")
    for r in rows:
        held = r.get("heldout")
        score = f"{held['base']:.1f} -> {held['candidate']:.1f}" if held else "-"
        print(f"{r['document']:22} {r['format']:4} {r['words']:6} {r.get('facts', '-'):>6} {r.get('samples', '-'):>7} "
              f"{r['planned_generate_s']:7.0f} {r.get('generate_s', 0):7.0f} {r.get('train_s', 0):8.0f} "
              f"{r.get('s_per_1000_words', 0):10.1f} {score:>16}")
    timed = [r for r in rows if "s_per_1000_words" in r]
    if len(timed) >= 2:
        low, high = min(r["s_per_1000_words"] for r in timed), max(r["s_per_1000_words"] for r in timed)
        verdict = "linear (within 1.5x)" if high <= 1.5 * low else "NOT linear"
        print(f"seconds per 1,000 words range {low:.1f}-{high:.1f}: {verdict}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
