"""``lmstrix.integrations.plot`` (extra ``[plot]``) and ``lmstrix show --plot``: the
probes of a context search and the speed profile, drawn from a real search's record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("matplotlib", reason="the [plot] extra is not installed")

import lmstrix
from lmstrix.integrations.plot import plot_limits
from lmstrix.testing import FakeLMStudio
from tests._cli_helpers import front_ends, run_cli

MODEL = "lmstrix-demo/qwen-like-4b"


@pytest.fixture
def tested(tmp_path: Path) -> Iterator[Any]:
    """A simulator, and a registry holding one tested model."""
    with FakeLMStudio() as fake:
        registry = lmstrix.Registry(tmp_path / "registry.json")
        with lmstrix.Client(fake.base_url) as client:
            lmstrix.find_context_limit(client, MODEL, registry=registry, seed=3)
        yield fake, registry


def test_the_figure_shows_probes_limits_and_speed(tested: Any, tmp_path: Path) -> None:
    _, registry = tested
    record = registry.get(MODEL, server=tested[0].base_url)
    figure = plot_limits(record, tmp_path / "limits.png")
    assert (tmp_path / "limits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    top, bottom = figure.axes
    labels = top.get_legend_handles_labels()[1]
    assert "needle: passed" in labels and "load: failed" in labels  # the auto-fit load
    limits = {round(line.get_xdata()[0]) for line in top.get_lines()}
    assert {record.declared_context, record.loadable_context, record.working_context} <= limits
    assert bottom.get_legend_handles_labels()[1] == ["prefill tokens/s"]
    assert MODEL in figure.get_suptitle()
    plot_limits(record.to_dict(), tmp_path / "limits.svg")  # the show --json shape too
    assert (tmp_path / "limits.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_an_untested_record_has_nothing_to_draw() -> None:
    with pytest.raises(ValueError, match="test it first"):
        plot_limits({"key": "m/x", "probes": [], "speed_profile": []})
    figure = plot_limits({"key": "m/x", "probes": [{"kind": "load", "size": 4096, "ok": None}]})
    assert figure.axes[1].texts[0].get_text() == "no speed measured"


@pytest.mark.parametrize(("name", "entry"), front_ends())
def test_lmstrix_show_plot(
    tested: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, entry: Any
) -> None:
    fake, registry = tested
    out = tmp_path / f"{name}.png"
    common = ["--server", fake.base_url, "--registry", str(registry.path)]
    code, _, err = run_cli(capsys, entry, *common, "show", MODEL, "--plot", str(out))
    assert code == 0 and f"plot: {out}" in err and out.stat().st_size > 1000
    code, _, err = run_cli(
        capsys, entry, *common, "show", MODEL, "--plot", str(tmp_path / "no/x.png")
    )
    assert code == 1 and "cannot write the plot" in err


def test_show_plot_without_matplotlib_says_how_to_get_it(
    tested: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, registry = tested
    monkeypatch.setitem(sys.modules, "lmstrix.integrations.plot", None)
    common = ["--server", fake.base_url, "--registry", str(registry.path)]
    code, _, err = run_cli(capsys, front_ends()[0][1], *common, "show", MODEL, "--plot", "x.png")
    assert code == 2 and "pip install 'lmstrix[plot]'" in err
