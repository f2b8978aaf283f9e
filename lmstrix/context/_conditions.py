"""What a context search notes besides its limits: the test's conditions and speed.

:class:`TestConditions` is filled in by the search as it goes (the model list at the
start, the instance tested, each answered probe) and yields the report's and the
record's ``fingerprint``, ``speed`` and ``warnings``. Its only request is one model
list after the first load, when the load reply did not say the parallel slots.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .._log import logger
from ..errors import APIError
from ..registry._fingerprint import neighbours_of
from ..registry._speed import SpeedLog
from ._fingerprints import current_fingerprint

if TYPE_CHECKING:
    from ..client import Client
    from ..types import Completion, LoadedInstance, ModelInfo

__all__ = ["TestConditions", "neighbour_warnings"]

log = logger(__name__)


def neighbour_warnings(key: str, neighbours: Tuple[str, ...]) -> Tuple[str, ...]:
    """The warning (logged, and returned for reports) about other loaded instances."""
    if not neighbours:
        return ()
    text = (
        f"{key}: other models were loaded during the test ({', '.join(neighbours)}); "
        "they take memory, so the loadable limit may be lower than with the model alone"
    )
    log.warning("%s", text)
    return (text,)


class TestConditions:
    """The fingerprint, neighbours and speed profile of one context search."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, client: Client, info: ModelInfo) -> None:
        self.client = client
        self.info = info
        self.models: List[ModelInfo] = []
        self.tested: Optional[LoadedInstance] = None
        self.neighbours: Tuple[str, ...] = ()
        self.warnings: Tuple[str, ...] = ()
        self.speed = SpeedLog()

    def start(self, own_instance: Optional[str]) -> None:
        """Note the instances loaded as the search starts (all but ``own_instance``)."""
        self.neighbours = neighbours_of(self.models, own_instance)
        self.warnings = neighbour_warnings(self.info.key, self.neighbours)

    def loaded(self, instance: LoadedInstance) -> int:
        """Note an instance the search loaded (or adopted); return the requests this sent.

        Auto-fitted instances do not count. LM Studio's load reply leaves out the
        parallel slots and its model list shows them, so the first instance loaded as
        asked costs one model list request when they are not known yet.
        """
        if instance.auto_fitted:
            return 0
        known = self.tested.parallel if self.tested is not None else None
        if instance.parallel is None and known is not None:
            instance = replace(instance, parallel=known)  # a setting of the model
        self.tested = instance
        return self._read_parallel(instance)

    def _read_parallel(self, instance: LoadedInstance) -> int:
        if instance.parallel is not None or not self.client.supports_load:
            return 0
        try:
            models = self.client.list_models()
        except APIError as exc:  # the fingerprint goes without; the search result stands
            log.info("listing models for the parallel slots failed: %s", exc)
            return 1
        for info in models:
            for inst in info.loaded_instances:
                if inst.id == instance.id and inst.parallel is not None:
                    self.tested = replace(instance, parallel=inst.parallel)
        return 1

    def answered(
        self,
        instance: str,
        text: str,
        answer: Completion,
        prompt_tokens: Optional[int],
        started: float,
        chars_per_token: float,
    ) -> None:
        """Note a probe's answer (its speed, and the server version it names)."""
        elapsed = time.perf_counter() - started
        self.speed.note(instance, text, answer, prompt_tokens, elapsed, chars_per_token)

    def report_fields(self) -> Dict[str, Any]:
        """``fingerprint``, ``speed`` and ``warnings`` for the :class:`ContextReport`."""
        fingerprint = current_fingerprint(
            self.client,
            self.info,
            instance=self.tested,
            server_version=self.speed.server_version,
            neighbours=self.neighbours,
        )
        return {
            "fingerprint": fingerprint,
            "speed": tuple(self.speed.points),
            "warnings": self.warnings,
        }
