"""Dynamic context adjustment: load a model at the smallest tested size that holds a prompt.

``client.chat(model, messages, fit_context=True)`` (and ``complete``, the streamed
calls, and each model of a fallback chain) first checks the loaded instance of the
model: when its context cannot hold the estimated prompt plus ``max_tokens``, the model
is reloaded at the smallest context size the registry has seen load and work (the
context search's load and prompt probes, its loadable context) that holds them, instead
of overflowing. When no tested size can hold the prompt,
:class:`~lmstrix.errors.ContextOverflowError` is raised before anything is sent.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from .._log import logger
from ..errors import ContextOverflowError

if TYPE_CHECKING:
    from ..registry import ModelRecord, Registry
    from ..registry._fit import Prompt
    from ..types import LoadedInstance

__all__ = ["FitContextMixin", "proven_sizes"]

log = logger(__name__)

_LOCKS: Dict[Tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(server: str, model: str) -> threading.Lock:
    """One lock per server and model: concurrent calls reload a model once, not each."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((server, model), threading.Lock())


def proven_sizes(record: ModelRecord) -> List[int]:
    """Context sizes ``record`` has seen load and work, smallest first.

    A load probe that passed gives the context applied (the size asked when not
    read back); a prompt probe that passed gives the context it ran at; the loadable
    context is tested by definition. None above the loadable context is kept.
    """
    sizes: Set[int] = set()
    for probe in record.probes:
        if probe.ok is not True:
            continue
        if probe.kind == "load":
            sizes.add(probe.applied_context or probe.size)
        elif probe.kind == "prompt" and probe.applied_context:
            sizes.add(probe.applied_context)
    if record.loadable_context:
        sizes.add(record.loadable_context)
        sizes = {s for s in sizes if s <= record.loadable_context}
    return sorted(s for s in sizes if s > 0)


class FitContextMixin:
    """:meth:`fit_context` for :class:`~lmstrix.Client` (the ``fit_context=True`` option)."""

    if TYPE_CHECKING:
        registry: Optional[Registry]
        base_url: str

        @property
        def supports_load(self) -> bool: ...

        def loaded_instances(self) -> List[LoadedInstance]: ...

        def load(
            self, key: str, *, context_length: Optional[int] = None, **options: Any
        ) -> LoadedInstance: ...

        def unload(self, instance_id: str) -> None: ...

    def fit_context(
        self, model: str, messages: Prompt, max_tokens: Optional[int] = None
    ) -> Optional[LoadedInstance]:
        """Make sure ``model`` is loaded with a context that holds ``messages`` plus a
        ``max_tokens`` answer, reloading it at the smallest tested size if need be.

        The prompt is estimated with the registry's calibrated characters per token
        (see :func:`lmstrix.fit`). Returns the instance loaded, or None when the one
        already loaded holds the prompt. Other instances of ``model`` that are too small
        are unloaded first (a request still running on one is cut).

        Raises:
            ContextOverflowError: no tested size holds the prompt (or the model has no
                tested sizes, or the server cannot load models), before sending anything.
        """
        with _lock_for(self.base_url, model):
            return self._fit_context(model, messages, max_tokens)

    def _fit_context(
        self, model: str, messages: Prompt, max_tokens: Optional[int]
    ) -> Optional[LoadedInstance]:
        record = self.registry.get(model, server=self.base_url) if self.registry else None
        from ..registry._fit import answer_tokens, estimate_tokens  # on use: a light import

        need = estimate_tokens(messages, record.chars_per_token if record else None)
        need += answer_tokens(max_tokens)
        limit = (record.working_context or record.loadable_context) if record else None
        loaded = [i for i in self.loaded_instances() if i.model_key == model]
        holds = [i for i in loaded if (i.context_length or 0) >= need]
        if holds and (limit is None or need <= limit):
            return None
        sizes = [s for s in proven_sizes(record) if s >= need] if record else []
        problem = self._no_size(model, record, need, limit, sizes)
        if problem is not None:
            raise ContextOverflowError(problem, url=self.base_url, model=model)
        size = sizes[0]
        for instance in loaded:
            log.info(
                "%s: unloading %s (context %s)", self.base_url, instance.id, instance.context_length
            )
            self.unload(instance.id)
        log.info("%s: loading %s at %s tokens to hold about %s", self.base_url, model, size, need)
        instance = self.load(model, context_length=size)
        if instance.context_length is not None and instance.context_length < need:
            raise ContextOverflowError(
                f"{model} was loaded at {size:,} tokens but the server applied "
                f"{instance.context_length:,}, short of the about {need:,} needed",
                url=self.base_url,
                model=model,
            )
        return instance

    def _no_size(
        self,
        model: str,
        record: Optional[ModelRecord],
        need: int,
        limit: Optional[int],
        sizes: List[int],
    ) -> Optional[str]:
        """Why no reload can hold ``need`` tokens (None: ``sizes[0]`` can)."""
        where = f"{model} on {self.base_url}"
        if record is None or not limit:
            return (
                f"{where} is too small for about {need:,} tokens (prompt + answer) or not "
                "loaded, and the registry has no tested context sizes to reload it at; "
                f"run `lmstrix test {model}` first"
            )
        if need > limit:
            return (
                f"about {need:,} tokens (prompt + answer) exceed the tested working context "
                f"of {where} ({limit:,}); split the text (lmstrix.text.split_text) or "
                "choose a model with a larger context"
            )
        if not sizes:
            return f"no tested context size of {where} holds about {need:,} tokens"
        if not self.supports_load:
            return (
                f"{where} must be reloaded at {sizes[0]:,} tokens to hold about {need:,}, "
                "but the server cannot load models over HTTP (LM Studio 0.4 or newer can)"
            )
        return None
