"""A simulated LM Studio server on loopback, for tests, benchmarks and ``lmstrix demo``.

>>> from lmstrix.testing import FakeLMStudio
>>> with FakeLMStudio() as fake:           # doctest: +SKIP
...     url = fake.base_url                # http://127.0.0.1:PORT

Standard library only; importing this package starts nothing.
"""

from __future__ import annotations

from ._documents import MARKER_PATTERN, long_document
from ._engine import Counters, InstanceInfo
from ._fake import FakeLMStudio, serve
from ._faults import FAULT_KINDS, Fault
from ._fleet import demo_fleet, test_fleet
from ._machine import machine_fleet
from ._models import SimModel
from ._server import ReceivedRequest
from ._tools import SimToolCall, ToolScript

__all__ = [
    "FAULT_KINDS",
    "MARKER_PATTERN",
    "Counters",
    "FakeLMStudio",
    "Fault",
    "InstanceInfo",
    "ReceivedRequest",
    "SimModel",
    "SimToolCall",
    "demo_fleet",
    "long_document",
    "machine_fleet",
    "serve",
    "test_fleet",
    "ToolScript",
]
