"""The real default model through `judge train` and `tao run`, each cut to a handful of prompts and one round:
every step runs for real (teacher, judge, trainer, GGUF export) and writes its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from seedlab.cli import cli

pytestmark = pytest.mark.integration


def _config(home: Path, values: dict[str, object]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump(values))


def test_judge_train_runs_a_round_and_scores_it(tmp_path: Path, seedlab_home: Path) -> None:
    from seedlab.workspace import shipped

    instructions = tmp_path / "instructions.jsonl"
    instructions.write_text("".join(shipped("judge", "instructions.jsonl").read_text().splitlines(keepends=True)[:12]))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(shipped("judge", "heldout_pairs.jsonl").read_text().splitlines(keepends=True)[:4]))
    _config(seedlab_home, {"judge": {"max_traces": 8}, "train": {"tokens_per_batch": 1024}})
    result = CliRunner().invoke(cli, ["judge", "train", "--instructions", str(instructions), "--heldout",
                                      str(heldout), "--iterations", "1", "--samples", "4", "--kind", "generative"])
    assert result.exit_code == 0, result.output
    run_dir = next((seedlab_home / "judges").iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert all(r["unparseable"] <= 0.25 for r in report["rounds"])  # constrained verdicts nearly always parse
    traces = (run_dir / "round-1" / "traces.jsonl").read_text().splitlines()
    labels = [json.loads(line)["metadata"]["label"] for line in traces]
    assert labels and labels.count("A") == labels.count("B")
    assert (run_dir / "judge.gguf").is_file() and (run_dir / "chart.png").is_file()
    assert "held-out accuracy: starting judge" in result.output
    score = CliRunner().invoke(cli, ["judge", "evaluate", "--judge", str(run_dir / "judge.gguf"), "--pairs",
                                     str(heldout)])
    assert score.exit_code == 0 and score.output.strip().splitlines()[-1].startswith("accuracy: "), score.output


def test_judge_train_reward_scores_both_held_out_sets(tmp_path: Path, seedlab_home: Path) -> None:
    from seedlab.workspace import shipped

    instructions = tmp_path / "instructions.jsonl"
    instructions.write_text("".join(shipped("judge", "instructions.jsonl").read_text().splitlines(keepends=True)[:12]))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(shipped("judge", "heldout_pairs.jsonl").read_text().splitlines(keepends=True)[:6]))
    _config(seedlab_home, {"train": {"tokens_per_batch": 1024}})
    result = CliRunner().invoke(cli, ["judge", "train", "--instructions", str(instructions), "--heldout",
                                      str(heldout), "--kind", "reward"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("reward judge accuracy: held-out ")
    judge = next((seedlab_home / "judges").iterdir()) / "judge"
    info = json.loads((judge / "judge.json").read_text())
    assert info["kind"] == "reward" and info["heldout"]["pairs"] == 6 and info["quality"]["pairs"] == 48
    low, high = info["thresholds"]
    assert low <= high
    score = CliRunner().invoke(cli, ["judge", "evaluate", "--judge", str(judge), "--pairs", str(heldout)])
    assert score.exit_code == 0 and "100% by construction" in score.output, score.output
    assert CliRunner().invoke(cli, ["judge", "list"]).output.startswith("reward")


def test_tao_run_tunes_and_reports(tmp_path: Path, seedlab_home: Path) -> None:
    from seedlab.workspace import shipped

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(shipped("tao", "prompts.jsonl").read_text().splitlines(keepends=True)[:10]))
    _config(seedlab_home, {"tao": {"heldout_share": 0.3, "max_tokens": 48}, "train": {"tokens_per_batch": 1024}})
    result = CliRunner().invoke(cli, ["tao", "run", "--prompts", str(prompts), "--scorer",
                                      "seedlab.tao.examples:json_ab", "--samples", "5", "--method", "rft"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("held-out score: start ") and last.endswith("(3 prompts)"), last
    run_dir = next((seedlab_home / "tao").iterdir())
    report = json.loads((run_dir / "report.json").read_text())
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert report["rounds"][1]["compute_candidates"] == 7 * 5
    assert (Path(report["adapter"]) / "adapter_config.json").is_file() and (run_dir / "chart.png").is_file()
