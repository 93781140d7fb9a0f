"""`judge train`'s rounds on FakeBackend judges, with training and GGUF writing replaced by stand-ins: which judge
samples each round, what trains, how the best round is chosen, the report, and resuming a killed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.backends import Backend, FakeBackend, Request
from seedlab.cli import cli
from seedlab.config import load_settings
from seedlab.errors import SeedlabError
from seedlab.judge import JudgeTrainOptions, train_judge
from seedlab.judge.rounds import RoundModels
from seedlab.train import TrainOptions, TrainResult


def _teacher(request: Request, _index: int) -> str:
    if request.prompt is not None:  # the few-shot completion that asks for x'
        asked = request.prompt.rsplit("Request: ", 1)[1].split("\n")[0]
        return " " + asked.replace("thing", "item").replace(".", " backwards.")
    return f"About {(request.messages or [])[-1]['content']}"


def _answers(request: Request) -> tuple[str, str, str]:
    content = (request.messages or [])[-1]["content"]
    prompt = content.split("Request:\n")[1].split("\n\n[Answer A]")[0]
    return (prompt, content.split("[Answer A]\n")[1].split("\n[End of answer A]")[0],
            content.split("[Answer B]\n")[1].split("\n[End of answer B]")[0])


def _biased(request: Request, index: int) -> str:
    """The starting judge: greedy it always says A; sampled, it alternates."""
    return "I pick [[A]]" if request.temperature == 0.0 or index % 2 == 0 else "I pick [[B]]"


def _skilled(request: Request, _index: int) -> str:
    """A trained judge: picks the answer about the request."""
    prompt, a, _b = _answers(request)
    return "A answers it. [[A]]" if a == f"About {prompt}" else "B answers it. [[B]]"


class Stand(RoundModels):
    """The run's models with the heavy steps replaced: FakeBackend judges chosen by what the GGUF stand-in file
    says, training that records the traces it was given, and writing that notes where a judge came from."""

    def __init__(self, fail_training_round: int | None = None, always: str | None = None) -> None:
        super().__init__(load_settings())
        self.trained: list[tuple[int, list[str]]] = []
        self.opened: list[str] = []
        self.fail = fail_training_round
        self.always = always  # a judge that gives this reply to everything

    def model(self, ref: str) -> Backend:
        if ref not in self._open:
            self.opened.append(ref)
            text = Path(ref).read_text() if Path(ref).is_file() else ref
            if self.always and ref != "teacher":
                self._open[ref] = FakeBackend(lambda _r, _i: self.always or "", model_id=ref)
            else:
                self._open[ref] = FakeBackend(_teacher if ref == "teacher" else _biased if text.startswith("start")
                                              else _skilled, model_id=ref)
        return self._open[ref]

    def write(self, model: str, target: Path, adapter: Path | None = None) -> Path:
        target.write_text(f"from {adapter}" if adapter else f"start {model}")
        return target

    def train(self, _settings: object, options: TrainOptions, _echo: object, _progress: object) -> TrainResult:
        assert options.model == "smollm2-135m-instruct"  # every round trains from the starting judge
        assert [p.name for p in options.phase_configs] == ["judge"] and options.skills_data is not None
        folder = options.skills_data.parent
        number = int(folder.name.split("-")[1])
        if number == self.fail:
            self.fail = None
            raise KeyboardInterrupt
        lines = options.skills_data.read_text().splitlines()
        self.trained.append((number, [json.loads(line)["messages"][-1]["content"] for line in lines]))
        adapter = folder / "train" / "run" / "adapter"
        adapter.mkdir(parents=True)
        return TrainResult(adapter.parent, adapter, {})


def _files(tmp_path: Path, count: int = 10) -> tuple[Path, Path]:
    instructions = tmp_path / "instructions.jsonl"
    instructions.write_text("".join(json.dumps({"prompt": f"Name thing number {k}."}) + "\n" for k in range(count)))
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps({"prompt": f"Q{k}?", "chosen": f"About Q{k}?", "rejected": "About X?"})
                               + "\n" for k in range(4)))
    return instructions, heldout


def test_rounds_sample_with_the_latest_judge_train_from_the_start_and_select_the_best(
        tmp_path: Path) -> None:
    stand = Stand()
    instructions, heldout = _files(tmp_path)
    options = JudgeTrainOptions(instructions, iterations=2, samples=4, teacher="teacher", heldout=heldout,
                                kind="generative")
    result = train_judge(load_settings(), options, echo=lambda _line: None, models=stand)

    assert [(r["round"], r["accuracy"], r["consistent"]) for r in result.rounds] == [(0, 0.5, 0.0), (1, 1.0, 1.0),
                                                                                      (2, 1.0, 1.0)]
    assert result.best == 1  # ties go to the earlier round
    assert result.judge.read_text() == (result.run_dir / "round-1" / "judge.gguf").read_text()
    # round 1 sampled with the starting judge (half its samples right in each order), round 2 with round 1's
    assert stand.opened[:2] == ["teacher", str(result.run_dir / "round-0" / "judge.gguf")]
    assert str(result.run_dir / "round-1" / "judge.gguf") in stand.opened
    first, second = stand.trained
    assert first[0] == 1 and len(first[1]) == 10 and sorted(t[-5:] for t in first[1]) == ["[[A]]"] * 5 + ["[[B]]"] * 5
    assert second[0] == 2 and len(second[1]) == 10
    pairs = [json.loads(line) for line in (result.run_dir / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 10 and all(p["chosen"] == f"About {p['prompt']}" for p in pairs)
    report = json.loads((result.run_dir / "report.json").read_text())
    assert report["best"] == 1 and len(report["rounds"]) == 3
    assert (result.run_dir / "chart.png").stat().st_size > 0
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "finished"


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    stand = Stand(fail_training_round=2)
    instructions, heldout = _files(tmp_path)
    options = JudgeTrainOptions(instructions, iterations=2, samples=4, teacher="teacher", heldout=heldout,
                                kind="generative")
    with pytest.raises(KeyboardInterrupt):
        train_judge(load_settings(), options, echo=lambda _line: None, models=stand)
    [run_dir] = load_settings().judges_path.iterdir()
    assert (run_dir / "round-2" / "verdicts.json").is_file() and not (run_dir / "round-2" / "eval.json").exists()
    stand.opened.clear()
    result = train_judge(load_settings(), JudgeTrainOptions(resume=run_dir.name), echo=lambda _line: None,
                         models=stand)
    assert [number for number, _ in stand.trained] == [1, 2]  # round 1 trained once, before the kill
    assert "teacher" not in stand.opened  # pairs and round 2's verdicts came from disk
    assert [r["round"] for r in result.rounds] == [0, 1, 2]


def test_a_judge_that_never_picks_both_positions_stops_with_a_clear_message(
        tmp_path: Path) -> None:
    instructions, heldout = _files(tmp_path)
    options = JudgeTrainOptions(instructions, iterations=1, samples=2, teacher="teacher", heldout=heldout,
                                kind="generative")
    with pytest.raises(SeedlabError, match="round 1: .*raise --samples"):
        train_judge(load_settings(), options, echo=lambda _line: None, models=Stand(always="[[A]]"))


def test_cli_rejects_an_adapter_as_the_starting_judge(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    result = CliRunner().invoke(cli, ["judge", "train", "--judge", str(adapter)])
    assert result.exit_code != 0 and "not an adapter" in result.output and "Traceback" not in result.output


def test_an_odd_number_of_samples_is_refused(tmp_path: Path) -> None:
    instructions, heldout = _files(tmp_path)
    result = CliRunner().invoke(cli, ["judge", "train", "--instructions", str(instructions), "--heldout",
                                      str(heldout), "--samples", "3"])
    assert result.exit_code == 1 and "give an even number" in result.output


def test_a_bad_instructions_file_fails_in_one_line_before_any_run_folder(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
    result = CliRunner().invoke(cli, ["judge", "train", "--instructions", str(bad)])
    assert result.exit_code == 1 and f"{bad}:2: needs a" in result.output and "Traceback" not in result.output
    assert not load_settings().judges_path.exists()
