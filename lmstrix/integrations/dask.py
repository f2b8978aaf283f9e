"""Run a batch's calls across machines on a Dask cluster (extra ``[dask]``).

:func:`executor` gives a :class:`concurrent.futures.Executor` over a
``dask.distributed`` cluster; pass it to :func:`lmstrix.batch.run_batch` as
``executor=``. The calls run on the cluster's workers, each of which opens its own
connection to the LM Studio servers (clients travel as their settings); the output file
is written by the one process that drives the batch, so the crash-safe, resumable
output works as without Dask::

    from dask.distributed import Client as DaskClient
    from lmstrix.integrations.dask import executor

    with DaskClient("tcp://scheduler:8786") as dask:
        run_batch(items, lmstrix.Client(url), model, output="out.jsonl",
                  executor=executor(dask))
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, Optional

from distributed import Client as DaskClient

__all__ = ["executor"]


def executor(dask: Optional[DaskClient] = None, **options: Any) -> Executor:
    """A ``concurrent.futures`` executor over ``dask`` (or a new ``distributed.Client``).

    ``options`` go to ``distributed.Client(...)`` when no client is given (an
    ``address``, or nothing for a local cluster).
    """
    client = dask if dask is not None else DaskClient(**options)
    made: Executor = client.get_executor(pure=False)
    return made
