from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from seedlab.cli import cli
from seedlab.config import Config, Home, load_settings, parse_config, write_config
from seedlab.errors import ConfigError


def test_defaults_resolve_under_seedlab_home(seedlab_home: Path) -> None:
    settings = load_settings()
    assert settings.home.config_file == seedlab_home / "config.yaml"
    assert settings.taxonomy_path == seedlab_home / "taxonomy"
    assert settings.models_path == seedlab_home / "cache" / "models"


def test_xdg_dirs_without_seedlab_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEEDLAB_HOME")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    home = Home.current()
    assert home.config_file == tmp_path / "cfg" / "seedlab" / "config.yaml"
    assert home.data == tmp_path / "data" / "seedlab"


def test_round_trip_and_override(seedlab_home: Path) -> None:
    config = Config()
    config.taxonomy.base = "upstream/main"
    config.paths.datasets = "/abs/datasets"
    write_config(seedlab_home / "config.yaml", config)
    settings = load_settings()
    assert settings.config == config
    assert settings.datasets_path == Path("/abs/datasets")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("taxonomy:\n  bse: main\n", "unknown key 'taxonomy.bse'; did you mean 'taxonomy.base'?"),
        ("colour: blue\n", "unknown key 'colour'; known keys: taxonomy, paths"),
        ("taxonomy:\n  path: 3\n", "key 'taxonomy.path' must be str, got int 3"),
        ("taxonomy: [a]\n", "'taxonomy' must be a mapping"),
        ("taxonomy: {path: [\n", "config.yaml:2:1: not valid YAML"),
    ],
)
def test_bad_config_names_key_and_file(seedlab_home: Path, text: str, fragment: str) -> None:
    path = seedlab_home / "config.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_config(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_cli_bad_config_is_one_line_exit_1(seedlab_home: Path) -> None:
    seedlab_home.mkdir()
    (seedlab_home / "config.yaml").write_text("taxonomy:\n  bse: main\n")
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ") and "taxonomy.bse" in result.output
    assert "Traceback" not in result.output


def test_debug_flag_shows_the_traceback(seedlab_home: Path) -> None:
    seedlab_home.mkdir()
    (seedlab_home / "config.yaml").write_text("nope: 1\n")
    result = CliRunner().invoke(cli, ["--debug", "config", "show"])
    assert isinstance(result.exception, ConfigError)


def test_config_init_and_show(seedlab_home: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["config", "init"])
    assert first.exit_code == 0 and (seedlab_home / "config.yaml").exists()
    again = runner.invoke(cli, ["config", "init"])
    assert "Nothing changed" in again.output
    shown = runner.invoke(cli, ["config", "show"])
    assert shown.exit_code == 0
    assert "base: auto" in shown.output and f"taxonomy_path: {seedlab_home / 'taxonomy'}" in shown.output


def test_config_show_prints_every_resolved_path(seedlab_home: Path) -> None:
    shown = CliRunner().invoke(cli, ["config", "show"]).output
    for name in ("taxonomy", "datasets", "checkpoints", "evaluations", "judges", "tao", "docs", "models",
                 "prompt_log"):
        assert f"#   {name}_path: " in shown


def test_run_options_come_back_typed_from_their_json(tmp_path: Path) -> None:
    from seedlab.config import PhaseConfig
    from seedlab.errors import SeedlabError
    from seedlab.runs import open_run
    from seedlab.tao import TaoOptions
    from seedlab.train import TrainOptions

    options = TrainOptions(knowledge_data=tmp_path / "k.jsonl", replay_ratio=0.3, runs=tmp_path / "runs",
                           phase_configs=(PhaseConfig("judge", "skills", 1, 1e-3, 0.1),))
    run_dir, _info, same = open_run(tmp_path, None, options, "training")
    assert same is options
    _, _, saved = open_run(tmp_path, run_dir.name, TrainOptions(), "training")
    assert saved == options and isinstance(saved.phase_configs[0], PhaseConfig)
    tao_dir, _, _ = open_run(tmp_path / "tao", None, TaoOptions(scorers=("json", "judge=2")), "tao")
    assert open_run(tmp_path / "tao", str(tao_dir), TaoOptions(), "tao")[2].scorers == ("json", "judge=2")
    (run_dir / "run.json").write_text('{"options": {"epochs": 3}}')  # written by some other version
    with pytest.raises(SeedlabError, match="unknown key 'epochs'.*start a new one"):
        open_run(tmp_path, run_dir.name, TrainOptions(), "training")
