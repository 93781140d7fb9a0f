"""The release folder of a build: the merged GGUF, the adapter, the training data with provenance, charts,
MODEL_CARD.md and manifest.json (the sha256 of every file), which `seedlab build verify` checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from seedlab.build.models import BuildModels
from seedlab.charts import chart
from seedlab.config import Settings
from seedlab.fsutil import read_json_object, write_text_atomic

MANIFEST = "manifest.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def write_release(build_dir: Path, state: dict[str, Any], settings: Settings, info: dict[str, Any],
                  models: BuildModels) -> dict[str, Any]:
    """Write build_dir/release (staged beside it, then renamed into place) and return where it is."""
    from seedlab.build._card import model_card

    final = Path(_final_adapter(state))
    staging = build_dir / ".release.partial"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "adapter").mkdir(parents=True)
    for name in ADAPTER_FILES:
        shutil.copy2(final / name, staging / "adapter" / name)
    models.export(info["base"], staging / "adapter", staging / "model.gguf")
    for name in ("knowledge", "skills", "buffer"):
        _copy_into(build_dir / "data" / f"{name}.jsonl", staging / "data")
    _charts(build_dir, state, staging)
    config = dataclasses.asdict(settings.config)
    write_text_atomic(staging / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    report = {k: v for k, v in state.items() if k != "release"}
    write_text_atomic(staging / "report.json", json.dumps(report, indent=2))
    write_text_atomic(staging / "MODEL_CARD.md", model_card(build_dir.name, info, state, settings))
    write_manifest(staging, {"build": build_dir.name, "base": info["base"],
                             "taxonomy_commit": info["taxonomy"]["commit"], "previous": info.get("previous"),
                             "regressed": state["regression"]["regressed"]})
    target = build_dir / "release"
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return {"folder": str(target)}


def _copy_into(source: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, folder / source.name)


def _final_adapter(state: dict[str, Any]) -> str:
    chosen = [v["chosen"] for k, v in state.items() if k.startswith("phase-") and v.get("chosen")]
    return chosen[-1]


def write_manifest(folder: Path, about: dict[str, Any]) -> None:
    """manifest.json: what the release is, and the sha256 and size of every other file in it."""
    files = {str(p.relative_to(folder)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    write_text_atomic(folder / MANIFEST, json.dumps({**about, "files": files}, indent=2))


def verify_release(folder: Path) -> list[str]:
    """What is wrong with a release folder against its manifest: missing, changed or unlisted files."""
    manifest = read_json_object(folder / MANIFEST)
    if not manifest.get("files"):
        return [f"{folder / MANIFEST}: missing or without a file list"]
    problems = []
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    listed = set(manifest["files"])
    problems += [f"{p.relative_to(folder)}: not in the manifest" for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != MANIFEST and str(p.relative_to(folder)) not in listed]
    return problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _charts(build_dir: Path, state: dict[str, Any], folder: Path) -> None:
    """loss.png (every trained phase), candidates.png (the checkpoints' scores), regression.png (per kind)."""
    phases = {k[len("phase-"):]: v for k, v in state.items() if k.startswith("phase-") and not v.get("skipped")}
    with chart(folder / "loss.png", (7, 4)) as axes:
        offset = 0
        for name, result in phases.items():
            rows = [json.loads(line) for line in (Path(result["run"]) / "metrics.jsonl").read_text().splitlines()]
            axes.plot([offset + r["step"] for r in rows], [r["loss"] for r in rows], label=name)
            offset += max((r["step"] for r in rows), default=0)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.legend()
    with chart(folder / "candidates.png", (7, 4)) as axes:
        labels, kinds = [], {"seed": [], "heldout": [], "skill": []}  # type: ignore[var-annotated]
        for name, result in {"base": {"candidates": [{"checkpoint": "base", "scores": state["base"]["scores"]}]},
                             **phases}.items():
            for row in result["candidates"]:
                labels.append(f"{name}\n{Path(row['checkpoint']).name}")
                for kind in kinds:
                    kinds[kind].append(100 * row["scores"].get(kind, 0.0))
        for k, (kind, values) in enumerate(kinds.items()):
            axes.bar([i + (k - 1) * 0.27 for i in range(len(labels))], values, 0.27, label=kind)
        axes.set_xticks(range(len(labels)), labels, fontsize=7)
        axes.set_ylabel("points")
        axes.set_ylim(0, 100)
        axes.legend()
    regression = state["regression"]
    with chart(folder / "regression.png", (6, 4)) as axes:
        rows = regression["kinds"]
        axes.bar([i - 0.2 for i in range(len(rows))], [r["base"] for r in rows], 0.4, label="base")
        axes.bar([i + 0.2 for i in range(len(rows))], [r["built"] for r in rows], 0.4, label="built")
        axes.set_xticks(range(len(rows)), [r["kind"] for r in rows])
        axes.set_ylabel("general questions right (points)")
        axes.set_ylim(0, 100)
        axes.legend()
