"""One long command on fake models and a tiny trainer model, run in this process; with KILL_AFTER=N it SIGKILLs
itself at the N-th hook call (a teacher request or a training step), like a machine losing power mid-run. Run by
tests/test_kill_anywhere.py; not a test itself.

Usage: python tests/kill_harness.py COMMAND HOME OUT
(COMMAND: generate | train | evaluate | judge | tao | build)
A finished run writes its result (what an unbroken run must equal) as JSON to OUT."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
command, home, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
home.mkdir(parents=True, exist_ok=True)
os.environ["SEEDLAB_HOME"] = str(home)
KILL_AFTER = int(os.environ.get("KILL_AFTER", "0"))
calls = 0


def tick(*_args: Any) -> None:
    """A hook call: the N-th one kills this process outright (no cleanup, no finally blocks)."""
    global calls
    calls += 1
    if calls == KILL_AFTER:
        os.kill(os.getpid(), signal.SIGKILL)


def ticking(respond: Any) -> Any:
    def wrapped(request: Any, index: int) -> str:
        tick()
        return str(respond(request, index))

    return wrapped


def generate() -> Any:
    from helpers import good_responder

    from seedlab.backends import FakeBackend
    from seedlab.config import load_settings
    from seedlab.sdg import GenerateOptions
    from seedlab.sdg import generate as run
    from seedlab.workspace import init_workspace

    init_workspace(load_settings())
    settings = load_settings()
    settings.config.eval.judge = None
    result = run(settings, GenerateOptions(taxonomy_base="empty"), teacher=FakeBackend(ticking(good_responder)))
    return {"samples": [json.loads(line)["messages"] for name in ("knowledge.jsonl", "skills.jsonl")
                        for line in (result.run_dir / name).read_text().splitlines()]}


def train() -> Any:
    from test_train import fast_phases, tiny_loader, write_samples

    from seedlab.config import load_settings
    from seedlab.train import TrainOptions
    from seedlab.train import train as run

    settings = load_settings()
    fast_phases(settings, epochs=6)
    runs = list(settings.checkpoints_path.glob("*/run.json"))
    if runs:
        options = TrainOptions(resume=runs[0].parent.name)
    else:
        data = write_samples(home / "k.jsonl", unmask=True)
        options = TrainOptions(knowledge_data=data, skills_data=data)
    result = run(settings, options, lambda _line: None, tiny_loader, progress=tick)
    return {"losses": {p: v["last_loss"] for p, v in result.phases.items()}}


def judge() -> Any:
    import test_judge_train
    from test_judge_train import Stand, _files

    from seedlab.config import load_settings
    from seedlab.judge import JudgeTrainOptions, train_judge

    for name in ("_teacher", "_biased", "_skilled"):  # every judge and teacher request is a hook call
        setattr(test_judge_train, name, ticking(getattr(test_judge_train, name)))
    runs = list(load_settings().judges_path.glob("*/run.json"))
    if runs:
        options = JudgeTrainOptions(resume=runs[0].parent.name)
    else:
        instructions, heldout = _files(home)
        options = JudgeTrainOptions(instructions, iterations=2, samples=4, teacher="teacher", heldout=heldout,
                                    kind="generative")
    result = train_judge(load_settings(), options, echo=lambda _line: None, models=Stand())
    return {"rounds": result.rounds, "best": result.best}


def tao() -> Any:
    import test_tao_run
    from test_tao_run import Stand, _prompts

    from seedlab.config import load_settings
    from seedlab.tao import TaoOptions, run_tao

    for name in ("_start", "_tuned"):
        setattr(test_tao_run, name, ticking(getattr(test_tao_run, name)))
    runs = list(load_settings().tao_path.glob("*/run.json"))
    if runs:
        options = TaoOptions(resume=runs[0].parent.name)
    else:
        options = TaoOptions(_prompts(home), judge="fake-judge", scorers=("seedlab.tao.examples:json_ab",),
                             samples=5, rounds=2)
    result = run_tao(load_settings(), options, echo=lambda _line: None, models=Stand())
    return {"rounds": result.rounds}


def evaluate() -> Any:
    from test_eval import HELDOUT, _judge_prefers, _knows

    from seedlab.backends import FakeBackend
    from seedlab.config import load_settings
    from seedlab.eval import EvaluateOptions
    from seedlab.eval import evaluate as run
    from seedlab.workspace import init_workspace

    init_workspace(load_settings())
    trained = _knows({"rarest": "The Vey Crimson bean.", "motto": "Every seed comes home."})
    backends = {"base": FakeBackend(ticking(lambda _r, _i: "I do not know."), model_id="base"),
                "candidate": FakeBackend(ticking(trained.responder), model_id="knows"),
                "judge": FakeBackend(ticking(_judge_prefers("Dear").responder), model_id="judge")}
    options = EvaluateOptions("cand", taxonomy_base="empty", questions=load_settings().taxonomy_path / HELDOUT)
    report = run(load_settings(), options, lambda _line: None, backends.__getitem__)
    return {"rows": report.rows, "uplift": report.uplift}


def build() -> Any:
    from test_build import FakeModels, known_answers, tiny_build_settings

    from seedlab.build import BuildOptions
    from seedlab.build import build as run
    from seedlab.config import load_settings
    from seedlab.workspace import init_workspace

    init_workspace(load_settings())
    settings = tiny_build_settings()
    models = FakeModels(settings, known_answers(settings))
    models.teacher_backend.responder = ticking(models.teacher_backend.responder)
    builds = [p.parent.name for p in settings.builds_path.glob("*/run.json")]
    options = BuildOptions(resume=builds[0]) if builds else BuildOptions()
    result = run(settings, options, lambda _line: None, step_progress=tick, models=models)
    assert result is not None
    return json.loads((result.release / "report.json").read_text())


def stable(value: Any) -> Any:
    """What must equal between a broken and an unbroken run: no times, no run ids, no paths of this home."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()
                if not any(w in k for w in ("second", "time", "created", "finished", "tokens_per_s", "run", "id"))}
    if isinstance(value, list | tuple):
        return [stable(v) for v in value]
    if isinstance(value, str) and (str(home) in value or "/tmp/" in value):
        return "<path>"
    return value


result = {"generate": generate, "train": train, "evaluate": evaluate, "judge": judge, "tao": tao,
          "build": build}[command]()
out.write_text(json.dumps({"result": stable(json.loads(json.dumps(result, default=str))), "calls": calls}))
