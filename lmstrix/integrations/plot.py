"""A picture of a model's tested limits: the probes of its context search and its speed
profile (extra ``[plot]``: matplotlib).

:func:`plot_limits` takes a registry record (a
:class:`~lmstrix.registry.ModelRecord`, or its ``to_dict()`` as ``lmstrix show --json``
prints it) and returns a matplotlib ``Figure``; with ``path`` it also saves it (PNG, SVG,
PDF by the suffix). No pyplot and no global backend: the figure draws on its own canvas,
so nothing changes in the program that calls it. ``lmstrix show MODEL --plot FILE``
draws the same picture.

- Top: each probe at its size in tokens. Load attempts on one row, needle prompts on the
  other; a filled dot passed, a cross failed, a hollow dot was attempted without a
  result. Vertical lines mark the declared, loadable and working context.
- Bottom: the speed profile, prefill and decode tokens per second by prompt size.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from matplotlib.figure import Figure

__all__ = ["plot_limits"]

_ROWS = {"load": 1.0, "prompt": 0.0}
_LIMITS = (
    ("declared_context", "declared", "#888888", ":"),
    ("loadable_context", "loadable", "#1f77b4", "--"),
    ("working_context", "working", "#2ca02c", "-"),
)


def plot_limits(record: Any, path: Union[str, os.PathLike[str], None] = None) -> Figure:
    """Draw ``record``'s probes and speed profile; save to ``path`` when given.

    Raises:
        ValueError: the record has no probes and no speed profile (it was never tested).
    """
    data: Mapping[str, Any] = record.to_dict() if hasattr(record, "to_dict") else record
    probes: Sequence[Mapping[str, Any]] = data.get("probes") or []
    speed: Sequence[Mapping[str, Any]] = data.get("speed_profile") or data.get("speed") or []
    if not probes and not speed:
        raise ValueError(
            f"{data.get('key', 'this model')} has no probes and no speed profile: "
            "test it first (lmstrix test MODEL)"
        )
    figure = Figure(figsize=(9, 6), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    _draw_probes(top, probes)
    for name, label, color, style in _LIMITS:
        value = data.get(name)
        if value:
            for axes in (top, bottom):
                axes.axvline(value, color=color, linestyle=style, linewidth=1)
            top.annotate(
                f"{label} {value:,}",
                (value, 1.35),
                rotation=90,
                fontsize=8,
                color=color,
                ha="right",
                va="top",
                annotation_clip=False,
            )
    _draw_speed(bottom, speed)
    title = str(data.get("key", ""))
    if data.get("server"):
        title += f" on {data['server']}"
    figure.suptitle(title, fontsize=11)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=120)
    return figure


def _draw_probes(axes: Any, probes: Sequence[Mapping[str, Any]]) -> None:
    groups: Dict[Tuple[str, Optional[bool]], List[Tuple[float, float]]] = {}
    for probe in probes:
        row = _ROWS.get(str(probe.get("kind")))
        size = probe.get("size")
        if row is None or not size:
            continue
        jitter = 0.08 * (int(probe.get("trial") or 0) % 3)
        groups.setdefault((str(probe["kind"]), probe.get("ok")), []).append((size, row + jitter))
    styles = {True: ("o", "#2ca02c", "passed"), False: ("x", "#d62728", "failed")}
    for (kind, ok), points in sorted(groups.items(), key=lambda g: (g[0][0], str(g[0][1]))):
        marker, color, word = styles.get(ok, ("o", "#7f7f7f", "no result"))  # type: ignore[arg-type]
        xs, ys = zip(*points)
        filled = {"c": color} if ok is not None else {"c": "none", "edgecolors": color}
        axes.scatter(
            xs,
            ys,
            marker=marker,
            label=f"{'load' if kind == 'load' else 'needle'}: {word}",
            zorder=3,
            **filled,
        )
    axes.set_yticks([0.0, 1.0], ["needle\nprompts", "loads"])
    axes.set_ylim(-0.5, 1.5)
    axes.set_xscale("log", base=2)
    axes.set_title("context search: probes by size (tokens)", fontsize=10)
    axes.legend(fontsize=7, loc="upper left", ncols=2)
    axes.grid(axis="x", alpha=0.3)


def _draw_speed(axes: Any, speed: Sequence[Mapping[str, Any]]) -> None:
    points = sorted(speed, key=lambda p: p.get("prompt_tokens") or 0)
    for field, label, color in (
        ("prefill_tps", "prefill", "#9467bd"),
        ("decode_tps", "decode", "#ff7f0e"),
    ):
        xs = [p["prompt_tokens"] for p in points if p.get(field) and p.get("prompt_tokens")]
        ys = [p[field] for p in points if p.get(field) and p.get("prompt_tokens")]
        if xs:
            axes.plot(xs, ys, marker="o", color=color, label=f"{label} tokens/s")
    axes.set_xlabel("tokens")
    axes.set_ylabel("tokens per second")
    axes.set_title("speed profile", fontsize=10)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
        axes.set_yscale("log")
    else:
        axes.text(0.5, 0.5, "no speed measured", transform=axes.transAxes, ha="center")
    axes.grid(alpha=0.3)
