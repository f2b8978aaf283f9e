"""The batch's worker threads: started, and replaced when one ends before the batch does.

Workers end only when the batch does, so a worker that has ended early died before its
first line (:mod:`lmstrix._threads` says when CPython does that). Its place is
taken by a new thread; when they keep dying, the batch stops.
"""

from __future__ import annotations

import threading
from typing import Callable

from .._log import logger

__all__ = ["Workers"]

log = logger(__name__)

_MAX_LOST = 3  # worker threads lost per worker before the batch gives up


class Workers:
    """``count`` threads running ``work``, named ``lmstrix-batch-N``."""

    def __init__(self, work: Callable[[], None], count: int, output: str) -> None:
        self._work, self._output, self._lost = work, output, 0
        self.threads = [self._start(number) for number in range(count)]

    def _start(self, number: int) -> threading.Thread:
        thread = threading.Thread(target=self._work, name=f"lmstrix-batch-{number}", daemon=True)
        thread.start()
        return thread

    def replace_lost(self) -> None:
        """Start a worker in place of each one that has ended; raise ``RuntimeError``
        once ``_MAX_LOST`` per worker have been lost."""
        for number, thread in enumerate(self.threads):
            if thread.is_alive():
                continue
            if self._lost >= _MAX_LOST * len(self.threads):
                raise RuntimeError(
                    f"the batch's worker threads keep ending before they start "
                    f"({self._lost} lost); what was done is in {self._output}: "
                    f"run the batch again to go on from there"
                )
            log.warning("batch: worker %d ended unexpectedly; starting another", number)
            self.threads[number] = self._start(number)
            self._lost += 1
