"""``lmstrix demo``: the whole job on the built-in simulator, in well under a minute.

Starts a simulated LM Studio fleet on loopback, lists it, finds the loadable and
working context of every chat model with a progress display, prints a table of
declared / loadable / working context, and streams one answer.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any, Dict, List

from ._output import EXIT_FAILURE, EXIT_OK, emit_json, note, table


def run_demo(*, as_json: bool = False, trials: int = 3) -> int:
    """Run the demo; return the exit code."""
    from ..client import Client
    from ..context import SearchProgress, find_context_limit
    from ..registry import Registry
    from ..testing import FakeLMStudio, demo_fleet

    reports: List[Dict[str, Any]] = []
    # The simulated fleet's results go to a throw-away registry, never the user's own.
    with tempfile.TemporaryDirectory(prefix="lmstrix-demo-") as home, FakeLMStudio(
        models=demo_fleet()
    ) as fake, Client(fake.base_url) as client:
        note(f"lmstrix demo: a simulated LM Studio is listening at {fake.base_url}")
        models = [m for m in client.list_models() if m.type != "embedding"]
        note(f"found {len(models)} chat models; measuring their real context limits...")
        registry = Registry(f"{home}/registry.json", server=fake.base_url)

        for index, info in enumerate(models, 1):

            def progress(step: SearchProgress, index: int = index) -> None:
                mark = "ok" if step.ok else f"fail: {step.failure}"
                what = "load " if step.kind == "load" else "probe"
                note(f"  [{index}/{len(models)}] {step.model}: {what} {step.size:>7,} -> {mark}")

            report = find_context_limit(
                client,
                info.key,
                registry=registry,
                trials=trials,
                on_progress=progress,
                reset=True,
                seed=index,
            )
            reports.append(report.to_dict())
        question = "What is 2+3?"
        chosen = models[0].key
        if not as_json:
            print(
                table(
                    ["model", "declared", "loadable", "working", "status", "loads"],
                    [
                        [
                            r["key"],
                            r["declared_context"],
                            r["loadable_context"],
                            r["working_context"],
                            r["status"],
                            r["loads"],
                        ]
                        for r in reports
                    ],
                )
            )
            print(f"\n{chosen} > {question}")
        stream = client.stream_chat(chosen, question, temperature=0)
        answer: List[str] = []
        for chunk in stream:
            answer.append(chunk.text)
            if not as_json:
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
        if not as_json:
            print()
    if as_json:
        for r in reports:
            r.pop("probes", None)
        emit_json({"models": reports, "answer": "".join(answer)})
    failed = [r for r in reports if r["status"] not in ("done", "failed")]
    return EXIT_FAILURE if failed else EXIT_OK
