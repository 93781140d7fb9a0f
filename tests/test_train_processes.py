"""The trainer as users run it, in real processes: two ranks under torchrun (gloo), and `kill -9` then resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_train import tiny_loader, write_samples


def tiny_model_folder(tmp_path: Path) -> Path:
    model, tokenizer = tiny_loader("tiny")
    folder = tmp_path / "tiny-model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_config(home: Path, epochs: int, grad_accum: int, checkpoints: Path, strategy: str = "ddp") -> None:
    home.mkdir(parents=True, exist_ok=True)
    # fp32 on every CPU: these tests compare sharding and accumulation, whose float sums differ in order; under
    # bf16 a last-bit difference can flip a rounding and grow (on a bf16 CPU FSDP drifted 2 % by step 12).
    train = {"lora_dropout": 0.0, "tokens_per_batch": 32, "max_length": 128, "grad_accum": grad_accum, "save_every": 5,
             "strategy": strategy, "precision": "fp32",
             "phases": [{"name": "knowledge", "data": "knowledge", "epochs": epochs, "lr": 1e-2, "warmup": 0.0},
                        {"name": "skills", "data": "skills", "epochs": 2, "lr": 5e-3, "warmup": 0.0}]}
    (home / "config.yaml").write_text(yaml.safe_dump({"train": train, "paths": {"checkpoints": str(checkpoints)}}))


def train_command(model: Path, data: Path) -> list[str]:
    return ["-m", "seedlab", "model", "train", "--model", str(model), "--knowledge-data", str(data),
            "--skills-data", str(data)]


def step_losses(run: Path) -> list[tuple[str, int, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["phase"], r["step"], r["loss"]) for r in rows]


def only_run(checkpoints: Path) -> Path:
    runs = [p for p in checkpoints.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_two_gloo_ranks_under_torchrun_match_one_process(tmp_path: Path, seedlab_home: Path) -> None:
    model = tiny_model_folder(tmp_path)
    data = write_samples(tmp_path / "k.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    write_config(seedlab_home, epochs=4, grad_accum=2, checkpoints=tmp_path / "one")
    subprocess.run([sys.executable, *train_command(model, data)], check=True, env=env, capture_output=True)
    write_config(seedlab_home, epochs=4, grad_accum=1, checkpoints=tmp_path / "two")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           *train_command(model, data)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("trained:") == 1  # rank 0 alone prints
    one, two = step_losses(only_run(tmp_path / "one")), step_losses(only_run(tmp_path / "two"))
    assert [r[:2] for r in one] == [r[:2] for r in two] and len(one) > 8
    assert [r[2] for r in two] == pytest.approx([r[2] for r in one], rel=1e-3, abs=1e-4)


def test_kill_9_then_resume_reaches_the_unbroken_loss(tmp_path: Path, seedlab_home: Path) -> None:
    model = tiny_model_folder(tmp_path)
    data = write_samples(tmp_path / "k.jsonl")
    write_config(seedlab_home, epochs=60, grad_accum=1, checkpoints=tmp_path / "unbroken")
    subprocess.run([sys.executable, *train_command(model, data)], check=True, capture_output=True)
    unbroken = step_losses(only_run(tmp_path / "unbroken"))

    write_config(seedlab_home, epochs=60, grad_accum=1, checkpoints=tmp_path / "killed")
    process = subprocess.Popen([sys.executable, *train_command(model, data)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "killed").glob("*/phase-knowledge/step-000010")) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for a file, not timing anything
    process.send_signal(signal.SIGKILL)
    process.wait()
    run = only_run(tmp_path / "killed")
    assert not (run / "phase-knowledge" / "done.json").exists(), "the run finished before it could be killed"
    resumed = subprocess.run([sys.executable, "-m", "seedlab", "model", "train", "--resume", run.name],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    losses = step_losses(run)
    assert [r[:2] for r in losses] == [r[:2] for r in unbroken]
    assert [r[2] for r in losses] == pytest.approx([r[2] for r in unbroken], rel=1e-4, abs=1e-5)


def test_fsdp_ranks_match_one_process_and_resume_from_their_sharded_checkpoints(tmp_path: Path,
                                                                                seedlab_home: Path) -> None:
    """Two gloo ranks with weights sharded (FSDP) take the steps of one process; a run cut after a mid-phase
    checkpoint resumes from the gathered checkpoint to the same losses and adapter."""
    from safetensors.torch import load_file

    model = tiny_model_folder(tmp_path)
    data = write_samples(tmp_path / "k.jsonl")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    write_config(seedlab_home, epochs=4, grad_accum=2, checkpoints=tmp_path / "one")
    subprocess.run([sys.executable, *train_command(model, data)], check=True, env=env, capture_output=True)
    write_config(seedlab_home, epochs=4, grad_accum=1, checkpoints=tmp_path / "fsdp", strategy="fsdp")
    done = subprocess.run([*torchrun, *train_command(model, data)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    one, fsdp = step_losses(only_run(tmp_path / "one")), step_losses(only_run(tmp_path / "fsdp"))
    assert [r[:2] for r in one] == [r[:2] for r in fsdp] and len(one) > 8
    assert [r[2] for r in fsdp] == pytest.approx([r[2] for r in one], rel=1e-3, abs=1e-4)
    run = only_run(tmp_path / "fsdp")
    whole = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    alone = load_file(str(only_run(tmp_path / "one") / "adapter" / "adapter_model.safetensors"))
    assert whole.keys() == alone.keys() and all(whole[k].shape == alone[k].shape for k in whole)

    # Cut the run back to its skills checkpoint at step 5, as if killed there, and resume it under FSDP.
    skills = run / "phase-skills"
    last = max(step for phase, step, _ in fsdp if phase == "skills")
    assert (skills / "step-000005").is_dir() and last > 5
    for gone in (skills / "done.json", skills / f"step-{last:06d}"):
        gone.unlink() if gone.is_file() else shutil.rmtree(gone)
    shutil.rmtree(skills / "final")
    shutil.rmtree(run / "adapter")
    resumed = subprocess.run([*torchrun, "-m", "seedlab", "model", "train", "--resume", str(run)], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = step_losses(run)
    assert [r[:2] for r in again] == [r[:2] for r in fsdp]
    assert [r[2] for r in again] == pytest.approx([r[2] for r in fsdp], rel=1e-4, abs=1e-5)
    redone = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    assert all(float((redone[k] - whole[k]).abs().max()) < 1e-5 for k in whole)
