"""A batch whose calls run on a Dask cluster (extra ``[dask]``): a LocalCluster of two
worker processes, the simulated server on loopback, the output written here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")

import lmstrix  # noqa: E402
from lmstrix.batch import run_batch  # noqa: E402
from lmstrix.integrations.dask import executor  # noqa: E402
from lmstrix.testing import FakeLMStudio, SimModel  # noqa: E402


@pytest.fixture(scope="module")
def dask_client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_a_batch_runs_on_a_local_cluster(dask_client: distributed.Client, tmp_path: Path) -> None:
    items = [{"id": i, "prompt": f"What is {i}+3?"} for i in range(60)]
    output = tmp_path / "out.jsonl"
    # The server wants a token: the workers' clients must carry it.
    with FakeLMStudio([SimModel("m/dask", 8192, parallel=4)], api_token="secret-token") as fake:
        fake.preload("m/dask")
        with lmstrix.Client(fake.base_url, api_token="secret-token") as client:
            summary = run_batch(
                items, client, "m/dask", output=output, executor=executor(dask_client)
            )
        # The calls reached the server from the cluster's worker processes.
        assert fake.counters.requests["/v1/chat/completions"] == 60
    assert summary.done == 60 and summary.failed == 0
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(row["id"] for row in rows) == list(range(60))
    assert all(str(row["id"] + 3) in row["output"] for row in rows)
    workers = dask_client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2  # two processes did the work


def test_errors_come_back_from_the_cluster(dask_client: distributed.Client, tmp_path: Path) -> None:
    items = [{"id": 1, "prompt": "words " * 5000}]  # overflows the 2048 context
    with FakeLMStudio([SimModel("m/small", 2048)]) as fake:
        fake.preload("m/small", 2048)
        with lmstrix.Client(fake.base_url) as client:
            summary = run_batch(
                items,
                client,
                "m/small",
                output=tmp_path / "o.jsonl",
                executor=executor(dask_client),
            )
    assert summary.failed == 1
    row = json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))
    assert row["error"]["type"] == "ContextOverflowError"
    assert row["error"]["status_code"] == 400
