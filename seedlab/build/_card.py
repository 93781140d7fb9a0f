"""MODEL_CARD.md of a release: what it was built from, on what data, how it trained, what it scores, whether it
regressed, and the command that builds it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seedlab.config import Settings


def model_card(build: str, info: dict[str, Any], state: dict[str, Any], settings: Settings) -> str:
    """The card as Markdown; every figure comes from the build's state."""
    regression = state["regression"]
    lines = [f"# seedlab release {build}", ""]
    if regression["regressed"]:
        lines += ["> **Regressed**: " + "; ".join(regression["reasons"]) + ". Check before publishing.", ""]
    lines += [
        f"- Base model: `{info['base']}`",
        f"- Taxonomy commit: `{info['taxonomy']['commit']}` ({len(info['taxonomy']['leaves'])} leaves)",
        f"- Continues: {info['previous'] or 'nothing (first release: trained from the base model)'}",
        f"- Teacher: `{state['generate'].get('teacher', settings.config.sdg.teacher)}`; judge: "
        f"`{settings.config.eval.judge or 'the teacher'}`",
        "- Files: `model.gguf` (merged, " + settings.config.build.quantize + "), `adapter/` (LoRA), `data/` "
        "(the phases' training data and the replay buffer, each sample with its origin), `report.json`, "
        "`config.yaml`, `manifest.json` (sha256 of every file; `seedlab build verify FOLDER`)", ""]
    lines += _leaves(info, state) + _mix(state) + _training(state) + _evaluation(state) + _regression(regression)
    times = [f"{name} {value['seconds'] / 60:.1f}" for name, value in state.items() if "seconds" in value]
    lines += ["## Time", "", "Minutes per stage: " + ", ".join(times) + f"; total {_minutes(state):.1f}.", ""]
    previous = f" --previous {info['previous']}" if info.get("previous") else ""
    lines += ["## Reproduce", "", "In a seedlab home whose taxonomy holds the commit above"
              + (f" and whose builds hold {info['previous']}" if previous else "") + ":", "", "```",
              "cp RELEASE/config.yaml $SEEDLAB_HOME/config.yaml", "git -C $SEEDLAB_HOME/taxonomy checkout "
              + info["taxonomy"]["commit"], f"seedlab build{previous}", "```", "",
              "Sampling and training are seeded; other hardware may differ in the last digits of its arithmetic, "
              "and so in some samples and scores.", ""]
    return "\n".join(lines)


def _leaves(info: dict[str, Any], state: dict[str, Any]) -> list[str]:
    lines = ["## Leaves", "", "| leaf | kind | status | teacher requests | samples made | replayed | in buffer |",
             "|---|---|---|---:|---:|---:|---:|"]
    generated, mixed = state["generate"]["leaves"], state["data"]["leaves"]
    for leaf in info["taxonomy"]["leaves"]:
        g, m = generated.get(leaf, {}), mixed.get(leaf, {})
        lines.append(f"| `{leaf}` | {g.get('kind', '?')} | {m.get('status', '?')} | {g.get('teacher_requests', 0)} | "
                     f"{g.get('samples', 0)} | {m.get('replayed', 0)} | {m.get('in_buffer', 0)} |")
    return lines + [""]


def _mix(state: dict[str, Any]) -> list[str]:
    counts = state["data"]["counts"]
    return ["## Data mix", "", f"- Knowledge phase: {counts['knowledge_new']} new samples + "
            f"{counts['knowledge_replayed']} replayed from earlier releases + "
            f"{counts.get('self_replay_knowledge', 0)} self-replay (the base's own answers to general instructions)",
            f"- Skills phase: {counts['skills_new']} new + {counts['skills_replayed']} replayed skill samples + "
            f"{counts['knowledge_in_skills']} knowledge samples + {counts.get('self_replay_skills', 0)} self-replay",
            f"- Replay buffer: {state['data']['buffer']} "
            "samples (earlier releases' still-current leaves and this release's)", ""]


def _training(state: dict[str, Any]) -> list[str]:
    lines = ["## Training", "", "![loss](loss.png)", ""]
    for key, phase in state.items():
        if not key.startswith("phase-"):
            continue
        if phase.get("skipped"):
            lines.append(f"- {key}: skipped (no new data)")
            continue
        r = phase["result"]
        lines.append(f"- {key}: {r['steps']} steps, loss {r['first_loss']:.3f} -> {r['last_loss']:.3f} (epoch means)")
    return lines + [""]


def _evaluation(state: dict[str, Any]) -> list[str]:
    lines = ["## Checkpoint choice and evaluation", "", "![candidates](candidates.png)", "",
             "Scores in points on the leaves' questions: key facts of the seed and held-out answers, the judge's "
             "rating of skill answers.", "", "| phase | checkpoint | seed | held-out | skills | chosen |",
             "|---|---|---:|---:|---:|---|"]
    lines.append(f"| base model | - | {_cells(state['base']['scores'])} | |")
    rule = ""
    for key, phase in state.items():
        if key.startswith("phase-") and not phase.get("skipped"):
            rule = phase["rule"]
            for k, row in enumerate(phase["candidates"]):
                mark = "yes" if k == phase["chosen_index"] else ""
                lines.append(f"| {key[6:]} | {Path(row['checkpoint']).name} | {_cells(row['scores'])} | {mark} |")
    lines += ["", f"Rule: {rule}.", "", "Per leaf (the chosen checkpoint of the last phase, base in brackets):", "",
              "| leaf | seed | held-out | skills |", "|---|---:|---:|---:|"]
    last = [p for k, p in state.items() if k.startswith("phase-") and not p.get("skipped")][-1]
    chosen = last["candidates"][last["chosen_index"]]["scores"]["leaves"]
    base = state["base"]["scores"]["leaves"]
    for leaf, scores in chosen.items():
        cells = [_pair(scores.get(k), base.get(leaf, {}).get(k)) for k in ("seed", "heldout", "skill")]
        lines.append(f"| `{leaf}` | " + " | ".join(cells) + " |")
    return lines + [""]


def _cells(scores: dict[str, Any]) -> str:
    return " | ".join(f"{100 * scores[k]:.1f}" if k in scores else "-" for k in ("seed", "heldout", "skill"))


def _pair(value: float | None, base: float | None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} ({100 * base:.1f})" if base is not None else f"{100 * value:.1f}"


def _regression(r: dict[str, Any]) -> list[str]:
    lines = ["## Regression check", "", "![regression](regression.png)", "",
             f"{r['questions']} general questions (arithmetic, everyday facts, instructions, formats), answered by "
             "the base and by this model.", "", "| kind | n | base | built |", "|---|---:|---:|---:|"]
    lines += [f"| {k['kind']} | {k['questions']} | {k['base']:.1f} | {k['built']:.1f} |" for k in r["kinds"]]
    lines += ["", f"- Accuracy: {r['accuracy']['base']:.1f} -> {r['accuracy']['built']:.1f} points (limit: a drop of "
              f"{r['limits']['max_accuracy_drop']:g})",
              f"- Drift: the base's own answers' log-likelihood per token {r['base_answer_logp']['base']:.3f} under "
              f"the base, {r['base_answer_logp']['built']:.3f} under this model ({r['nll_increase']:+.3f} nats; limit "
              f"{r['limits']['max_nll_increase']:g}); {r['changed_answers']} of {r['questions']} answers changed, "
              f"token F1 to the base's answers {r['answer_f1_to_base']:.2f}"]
    if "judge" in r:
        j = r["judge"]
        lines.append(f"- Judge, this model against the base: {j['win']} wins, {j['tie']} ties, {j['loss']} losses")
    lines.append(f"- Status: {'REGRESSED' if r['regressed'] else 'within the limits'}")
    return lines + [""]


def _minutes(state: dict[str, Any]) -> float:
    return sum(value.get("seconds", 0.0) for value in state.values()) / 60
