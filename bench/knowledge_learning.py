"""How much of a document the default model learns: generate -> train (knowledge phase) -> evaluate on held-out
questions, for named configurations of the data and the training, on documents of ours; one table of held-out
key-fact score and F1 (base and trained), samples and minutes, with the mean over documents.

Documents: halvane (the example leaf's 361 words, 31 reworded held-out questions in bench/documents/halvane/) and
orsk-ferry (1,181 words, 24 held-out questions). A configuration is a data filter (which sources of knowledge.jsonl
the student reads: document chunks, seed pairs, recall questions, teacher questions, span questions), config
overrides (dotted keys of config.yaml; `sdg.*`, `endpoint.*` and `llama_cpp.*` ones need their own generation, the
rest reuse it) and knowledge-phase overrides. Generation runs once per document and such overrides, and is reused
from --home on a later call; so an ablation of sources or training costs only its training and evaluation. --seeds
trains with each training seed; --set KEY=VALUE adds a config override to every configuration (another teacher:
--set sdg.teacher=PATH.gguf, or --set endpoint.url=http://127.0.0.1:8000/v1).
Run: .venv/bin/python bench/knowledge_learning.py --configs default recall-only [--docs halvane] [--seeds 0 1]
     [--home DIR] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from knowledge_scaling import DOCS, setup  # noqa: E402  (a sibling bench script: the same leaf setup)

GENERATION = ("sdg.", "endpoint.", "llama_cpp.")  # config sections that change what the teacher writes
SOURCES = ("document", "seed", "recall", "generated", "span", "rephrased")  # metadata.source of knowledge.jsonl rows
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    # The default before session 15: loss on the questions too (knowledge samples' unmask true) at lr 1e-3.
    "previous-default": {"unmask": True, "phase": {"lr": 1e-3}},
    "documents-only": {"sources": ["document"]},
    "seeds-only": {"sources": ["seed"]},
    "recall-only": {"sources": ["recall"]},
    "teacher-only": {"sources": ["generated"]},
    "no-documents": {"sources": ["seed", "recall", "generated"]},
    "no-recall": {"sources": ["document", "seed", "generated"]},
    "no-teacher": {"sources": ["document", "seed", "recall"]},
    "epochs-3": {"phase": {"epochs": 3}},
    "epochs-10": {"phase": {"epochs": 10}},
    "lr-5e-4": {"phase": {"lr": 5e-4}},
    "lr-2e-3": {"phase": {"lr": 2e-3}},
    "rank-32": {"config": {"train.lora_rank": 32, "train.lora_alpha": 64}},
    "recall-8": {"config": {"sdg.recall_per_fact": 8}},
    "scale-8": {"config": {"sdg.scale": 8}},
    "teacher-gemma": {"config": {"sdg.teacher": "gemma3-270m"}},
    "answers-only": {"unmask": False},  # loss on the answers only, not on the questions and the answers
    "answers-only-lr-2e-3": {"unmask": False, "phase": {"lr": 2e-3}},
    "answers-only-lr-3e-3": {"unmask": False, "phase": {"lr": 3e-3}},
    "answers-only-lr-2e-3-epochs-10": {"unmask": False, "phase": {"lr": 2e-3, "epochs": 10}},
    "answers-only-lr-2e-3-rank-32": {"unmask": False, "phase": {"lr": 2e-3},
                                     "config": {"train.lora_rank": 32, "train.lora_alpha": 64}},
    "answers-only-lr-2e-3-scale-8": {"unmask": False, "phase": {"lr": 2e-3}, "config": {"sdg.scale": 8}},
    "answers-only-lr-2e-3-no-recall": {"unmask": False, "phase": {"lr": 2e-3},
                                       "sources": ["document", "seed", "generated"]},
    "rephrase-2": {"unmask": False, "phase": {"lr": 2e-3}, "config": {"sdg.rephrase_per_question": 2}},
    "rephrase-2-gemma": {"unmask": False, "phase": {"lr": 2e-3},
                         "config": {"sdg.rephrase_per_question": 2, "sdg.teacher": "gemma3-270m"}},
    "answers-only-lr-2e-3-spans-2": {"unmask": False, "phase": {"lr": 2e-3}, "config": {"sdg.span_per_fact": 2}},
    "spans-2": {"config": {"sdg.span_per_fact": 2}},
    "spans-4": {"config": {"sdg.span_per_fact": 4}},
    "spans-2-no-recall": {"config": {"sdg.span_per_fact": 2}, "sources": ["document", "seed", "generated", "span"]},
    # Every weight tuned (`model train --full`) instead of a LoRA adapter, at full fine-tuning's learning rates
    # (added in session 18; measured in session 19, README).
    "full-lr-3e-4": {"full": True, "phase": {"lr": 3e-4}},
    "full-lr-1e-4": {"full": True, "phase": {"lr": 1e-4}},
    "full-lr-3e-5": {"full": True, "phase": {"lr": 3e-5}},
}


def heldout_file(name: str) -> Path:
    """The benchmark's held-out questions: the reworded set under bench/documents/ (halvane's has 31)."""
    return DOCS / name / "heldout.jsonl"


def with_overrides(settings: Any, overrides: dict[str, Any]) -> Any:
    """The home's config.yaml with dotted keys set (as a user would edit it), loaded again."""
    import yaml

    from seedlab.config import load_settings

    path = settings.home.config_file
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        data.setdefault(section, {})[name] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_settings(home=settings.home)


def dataset(name: str, root: Path, generation: dict[str, Any]) -> tuple[Any, str, Path, float]:
    """(settings, taxonomy base, knowledge.jsonl, generate minutes) of one document under these generation overrides,
    generated now or reused from an earlier call."""
    from seedlab.config import Home, load_settings
    from seedlab.sdg import GenerateOptions, generate

    key = "-".join(f"{k.removeprefix('sdg.')}={v}" for k, v in sorted(generation.items())) or "defaults"
    home_root = root / key
    done = home_root / f"{name}-md" / "bench-dataset.json"
    if done.is_file():
        saved = json.loads(done.read_text())
        settings = load_settings(home=Home.under(home_root / f"{name}-md"))
        return settings, saved["base"], Path(saved["knowledge"]), saved["generate_min"]
    settings, base, _words = setup(name, home_root, "md")
    settings = with_overrides(settings, generation)
    start = time.perf_counter()
    result = generate(settings, GenerateOptions(taxonomy_base=base))
    minutes = (time.perf_counter() - start) / 60
    knowledge = result.run_dir / "knowledge.jsonl"
    done.write_text(json.dumps({"base": base, "knowledge": str(knowledge), "generate_min": round(minutes, 2)}))
    return settings, base, knowledge, minutes


def filtered(knowledge: Path, sources: list[str], target: Path, unmask: bool | None = None) -> int:
    """The rows of knowledge.jsonl whose metadata.source is one of `sources`, written to `target` (with
    metadata.unmask set when `unmask` is given); their count."""
    rows = [json.loads(line) for line in knowledge.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row.get("metadata", {}).get("source") in sources]
    if unmask is not None:
        for row in rows:
            row["metadata"]["unmask"] = unmask
    target.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def run_one(name: str, config: str, seed: int, root: Path, extra: dict[str, Any]) -> dict[str, Any]:
    from seedlab.eval import EvaluateOptions, evaluate
    from seedlab.train import TrainOptions, train

    spec = CONFIGS[config]
    overrides = {**spec.get("config", {}), **extra}
    generation = {k: v for k, v in overrides.items() if k.startswith(GENERATION)}
    settings, base, knowledge, generate_min = dataset(name, root, generation)
    settings = with_overrides(settings, {**{k: v for k, v in overrides.items() if k not in generation},
                                         "train.seed": seed})
    data = root / "data" / f"{name}-{config}-{seed}.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    samples = filtered(knowledge, spec.get("sources", list(SOURCES)), data, spec.get("unmask"))
    phase = next(p for p in settings.config.train.phases if p.data == "knowledge")
    phase = dataclasses.replace(phase, **spec.get("phase", {}))
    start = time.perf_counter()
    trained = train(settings, TrainOptions(knowledge_data=data, phase_configs=(phase,), runs=root / "runs",
                                           full=spec.get("full", False)), lambda _line: None)
    train_min = (time.perf_counter() - start) / 60
    report = evaluate(settings, EvaluateOptions(candidate=str(trained.adapter), taxonomy_base=base,
                                                benchmarks=("knowledge-branch",), questions=heldout_file(name)),
                      lambda _line: None)
    held = [r for r in report.answers if r.get("held_out")]
    f1 = {role: round(100 * statistics.mean(r[role]["f1"] for r in held), 1) for role in ("base", "candidate")}
    outcomes = (report.coverage or {}).get("outcomes", {})
    return {"config": config, "document": name, "seed": seed, "samples": samples,
            "generate_min": round(generate_min, 1), "train_min": round(train_min, 1), "heldout": report.uplift,
            "f1": f1, "outcomes": outcomes, "leaked": len((report.coverage or {}).get("verbatim", []))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["default"])
    parser.add_argument("--docs", nargs="+", choices=("halvane", "orsk-ferry"), default=["halvane", "orsk-ferry"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (train.seed)")
    parser.add_argument("--home", type=Path, help="a folder for the homes, reused across calls (default: temporary)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config.yaml override (dotted key, YAML value) added to every configuration")
    args = parser.parse_args()
    import yaml

    extra = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            parser.error(f"--set {item!r}: write SECTION.KEY=VALUE, e.g. sdg.teacher=gemma3-270m")
        extra[key] = yaml.safe_load(value)
    from seedlab.cli import quiet_libraries

    quiet_libraries()
    root = args.home or Path(tempfile.mkdtemp(prefix="seedlab-learning-"))
    rows = []
    for config in args.configs:
        for name in args.docs:
            for seed in args.seeds:
                rows.append(run_one(name, config, seed, root, extra))
                print(f"row: {json.dumps(rows[-1])}", flush=True)
    print(f"\n{'config':16} {'document':12} {'seed':>4} {'samples':>7} {'gen min':>7} {'train min':>9} "
          f"{'held-out key facts':>19} {'F1':>12}  learned / not learned / never asked")
    for r in rows:
        held, f1, o = r["heldout"], r["f1"], r["outcomes"]
        print(f"{r['config']:16} {r['document']:12} {r['seed']:4d} {r['samples']:7d} {r['generate_min']:7.1f} "
              f"{r['train_min']:9.1f} {held['base']:8.1f} -> {held['candidate']:5.1f} "
              f"{f1['base']:5.1f} -> {f1['candidate']:4.1f}  "
              f"{o.get('learned', 0)} / {o.get('asked but not learned', 0)} / {o.get('never asked', 0)}")
    for config in args.configs:
        mine = [r for r in rows if r["config"] == config]
        gain = statistics.mean(r["heldout"]["points"] for r in mine)
        minutes = statistics.mean(r["train_min"] for r in mine)
        print(f"{config}: mean held-out gain {gain:+.1f} points over {len(mine)} runs, mean training "
              f"{minutes:.1f} min ({gain / max(minutes, 0.01):.1f} points per training minute)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
