"""The container files: the Dockerfile's final stage runs the lite CLI as a non-root user
from a wheel built in an earlier stage, and the compose example is well formed.

``scripts/check_docker.sh`` (run by CI) lints the Dockerfile with hadolint and builds the
image when a container engine answers; these tests hold the promises the docs make.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _stages() -> List[List[str]]:
    stages: List[List[str]] = []
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_the_final_stage_installs_a_built_wheel_and_runs_unprivileged() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a build stage and a final stage"
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert any("COPY --from=build /wheels" in line for line in final)
    assert not any("apt-get" in line or "build-essential" in line for line in final)
    assert any(line.startswith("ENTRYPOINT") and '"lmstrix"' in line for line in final)
    assert not any(line.startswith(("COPY lmstrix", "COPY .")) for line in final)


def test_the_compose_example_runs_a_batch_against_the_simulator() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "examples/docker/compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["simulator"]["command"][0] == "simulate"
    batch = services["batch"]
    assert batch["network_mode"] == "service:simulator"  # the simulator listens on loopback
    assert batch["command"][0] == "batch"
    assert (ROOT / "examples/docker/data/questions.jsonl").is_file()
