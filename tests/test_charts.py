from pathlib import Path

import pytest

from seedlab.charts import chart


def test_chart_writes_a_png_when_the_block_ends(tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    with chart(target) as axes:
        axes.plot([0, 1], [1, 0])
        assert not target.exists()  # written at the end, whole
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]


def test_a_failing_block_leaves_the_old_chart(tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    target.write_bytes(b"old")
    with pytest.raises(ValueError), chart(target) as axes:
        axes.plot([0, 1], [1, 0])
        raise ValueError("no data")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]
