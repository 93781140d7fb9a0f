"""`tao run`'s rounds on FakeBackend policies, with tuning and GGUF writing replaced by stand-ins: the held-out
split, which policy samples each round, what is tuned, the report's last line, and resuming a killed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from seedlab.backends import Backend, FakeBackend, Request
from seedlab.config import load_settings
from seedlab.errors import SeedlabError
from seedlab.judge.rounds import RoundModels
from seedlab.tao import TaoOptions, render_report, run_tao


def _start(request: Request, _index: int) -> str:
    """The starting policy: JSON when told to follow the request exactly, prose otherwise (longer)."""
    told = any("exactly" in m["content"] for m in request.messages or [] if m["role"] == "system")
    return '{"a": "x", "b": "y"}' if told else "Here is a long prose answer."


def _tuned(request: Request, _index: int) -> str:
    """A tuned policy: JSON, but for the hottest samples."""
    return "Some prose." if request.temperature >= 1.0 else '{"a": "x", "b": "y"}'


class Stand(RoundModels):
    """The run's models with the heavy steps replaced: FakeBackend policies chosen by what the GGUF stand-in file
    says, and tuning that records what it was given."""

    def __init__(self, fail_round: int | None = None, written: str | None = None) -> None:
        super().__init__(load_settings())
        self.opened: list[str] = []
        self.tuned: list[tuple[int, Path | None, list[dict[str, Any]], str]] = []
        self.fail = fail_round
        self.text = written  # what every policy file says (default: "start", or the adapter it came from)

    def model(self, ref: str) -> Backend:
        if ref not in self._open:
            self.opened.append(ref)
            start = Path(ref).is_file() and Path(ref).read_text() == "start"
            self._open[ref] = FakeBackend(_start if start else _tuned, model_id=ref)
        return self._open[ref]

    def write(self, model: str, target: Path, adapter: Path | None = None) -> Path:
        target.write_text(self.text or (str(adapter) if adapter else "start"))
        return target

    def tune(self, _model: str, start_adapter: Path | None, items: list[dict[str, Any]], folder: Path,
             config: Any, _echo: object, _progress: object) -> Path:
        number = int(folder.parent.name.split("-")[1])
        if number == self.fail:
            self.fail = None
            raise KeyboardInterrupt
        self.tuned.append((number, start_adapter, items, config.method))
        (folder / "adapter").mkdir(parents=True)
        return folder / "adapter"


def _prompts(tmp_path: Path, count: int = 10) -> Path:
    path = tmp_path / "prompts.jsonl"
    lines = [json.dumps({"prompt": f"Give JSON number {k}."}) for k in range(count)]
    lines.append(json.dumps({"messages": [{"role": "user", "content": "Give JSON number 3."}]}))  # a duplicate
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rounds_tune_from_the_last_policy_and_report_against_the_start(tmp_path: Path) -> None:
    stand = Stand()
    options = TaoOptions(_prompts(tmp_path), judge="fake-judge", scorers=("seedlab.tao.examples:json_ab",), samples=5,
                         rounds=2)
    result = run_tao(load_settings(), options, echo=lambda _line: None, models=stand)
    split = json.loads((result.run_dir / "prompts.json").read_text())
    assert len(split["heldout"]) == 2 and len(split["train"]) == 8  # 10 distinct prompts, a fifth held out
    assert [r["round"] for r in result.rounds] == [0, 1, 2]
    assert result.rounds[0]["score"] == 0.0 and result.rounds[1]["score"] == 1.0
    assert result.rounds[1]["compute_candidates"] == 8 * 5 and result.rounds[2]["compute_tokens"] > \
        result.rounds[1]["compute_tokens"]
    first, second = stand.tuned
    assert first[0] == 1 and first[1] is None and first[3] == "dpo"
    assert all(p["chosen"] == '{"a": "x", "b": "y"}' and p["rejected"] != p["chosen"] for p in first[2])
    assert second[1] == result.run_dir / "round-1" / "tune" / "adapter"  # round 2 goes on from round 1
    lines = render_report(result).splitlines()
    ratio = result.rounds[2]["length"] / result.rounds[0]["length"]
    assert lines[-1] == f"held-out score: start 0.00 -> tuned 1.00; length ratio {ratio:.2f} (2 prompts)"
    assert (result.run_dir / "chart.png").stat().st_size > 0


def test_a_killed_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    stand = Stand(fail_round=1)
    options = TaoOptions(_prompts(tmp_path), judge="fake-judge", scorers=("json",), samples=3, rounds=1, method="rft")
    with pytest.raises(KeyboardInterrupt):
        run_tao(load_settings(), options, echo=lambda _line: None, models=stand)
    [run_dir] = load_settings().tao_path.iterdir()
    assert (run_dir / "round-1" / "candidates.json").is_file()
    stand.opened.clear()
    result = run_tao(load_settings(), TaoOptions(resume=run_dir.name), echo=lambda _line: None, models=stand)
    assert [number for number, *_ in stand.tuned] == [1]
    assert all(set(item) == {"prompt", "response"} for item in stand.tuned[0][2])  # rft: best responses only
    assert str(run_dir / "round-0" / "policy.gguf") not in stand.opened  # candidates came from disk
    assert result.rounds[-1]["round"] == 1


def test_no_margin_anywhere_stops_with_a_clear_message(tmp_path: Path) -> None:
    options = TaoOptions(_prompts(tmp_path), judge="fake-judge", scorers=("json",), samples=3, rounds=1)
    with pytest.raises(SeedlabError, match="round 1: no prompt's candidates differ"):
        run_tao(load_settings(), options, echo=lambda _line: None, models=Stand(written="same"))


def test_a_bad_scorer_fails_before_any_run_folder(tmp_path: Path) -> None:
    with pytest.raises(SeedlabError, match="cannot import"):
        run_tao(load_settings(), TaoOptions(_prompts(tmp_path), judge="fake-judge", scorers=("nowhere:f",)),
                echo=lambda _line: None)
    assert not load_settings().tao_path.exists()


def test_from_log_reads_the_rotated_prompt_logs_too(tmp_path: Path) -> None:
    from seedlab.prompts import rotated

    settings = load_settings()
    log = settings.prompt_log_path
    log.parent.mkdir(parents=True)
    for number, file in enumerate([log, rotated(log, 1), rotated(log, 3)]):
        file.write_text("".join(json.dumps({"prompt": f"Give JSON log {number}-{k}."}) + "\n" for k in range(3)))
    options = TaoOptions(_prompts(tmp_path, 2), judge="fake-judge", scorers=("seedlab.tao.examples:json_ab",),
                         samples=2, rounds=1, from_log=True)
    result = run_tao(settings, options, echo=lambda _line: None, models=Stand())
    split = json.loads((result.run_dir / "prompts.json").read_text())
    assert len(split["train"]) + len(split["heldout"]) == 3 + 9  # the 3 given prompts and all three log files
