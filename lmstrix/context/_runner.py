"""`find_context_limit`: measure the context a model really loads at and really works at.

The strategy lives in :mod:`lmstrix.context._strategy`; this module runs it against a server:
it loads and unloads through the :class:`~lmstrix.client.Client`, builds the needle
probes (:mod:`lmstrix.context._probe`), calibrates characters per token from the server's own
``usage.prompt_tokens``, classifies every failure, and writes each step to the
registry as it happens, so a crash leaves "attempted N, no result" behind and a later
search resumes from what is known.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple, TypeVar

from .._log import logger
from ..errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ContextOverflowError,
    ContextSearchError,
    ModelLoadError,
    StreamError,
)
from ..registry._records import ModelRecord, ProbeRecord
from . import _probe, _transient
from ._conditions import TestConditions
from ._observed import check_bounds, observed_search
from ._report import ContextReport, SearchProgress, fresh_record, progress_step
from ._strategy import Bounds, LoadOutcome, ProbeOutcome, after_load, after_probe, run_search
from ._transient import RETRY_DELAYS, load_failure_is_measurement, overflow_tokens, retrying

if TYPE_CHECKING:
    from ..client._client import Client
    from ..registry._registry import Registry
    from ..types import ModelInfo

__all__ = ["ContextReport", "SearchProgress", "find_context_limit"]

_T = TypeVar("_T")
log = logger(__name__)

ANSWER_TOKENS = 24  # room for the reply: six digits and some politeness


def find_context_limit(
    client: Client,
    model: str,
    *,
    registry: Optional[Registry] = None,
    min_context: int = 2048,
    max_context: Optional[int] = None,
    resolution: int = 1024,
    trials: int = 3,
    on_progress: Optional[Callable[[SearchProgress], None]] = None,
    reset: bool = False,
    seed: Optional[int] = None,
    keep_loaded: bool = False,
    retry_delays: Sequence[float] = RETRY_DELAYS,
) -> ContextReport:
    """Find the loadable and the working context of ``model`` on ``client``'s server.

    ``min_context`` is the smallest load tried, ``max_context`` caps the largest
    (default: the declared maximum), ``resolution`` is how close (in tokens) the
    reported limits are to the truth, never above it. A size counts as working only
    when all ``trials`` needles pass there. With a ``registry``, every step is
    recorded as it happens and a search resumes from earlier results; ``reset``
    forgets them first. ``on_progress`` receives a :class:`SearchProgress` per step.
    ``seed`` fixes the needles and filler (for repeatable runs); ``keep_loaded`` leaves
    the last instance loaded instead of unloading it at the end. A step that fails for
    a reason that says nothing about the model (a 5xx that is no load failure, a reset,
    a timeout) is retried after each of ``retry_delays`` seconds.

    Raises:
        ContextSearchError: bad bounds, an unknown or non-chat model, or a step that
            kept failing transiently (the registry record stays ``testing``, with its
            bounds, so the next search resumes).
        ModelNotFoundError, APIConnectionError: the server says so or is unreachable.
    """
    check_bounds(resolution, trials, min_context, max_context)
    delays = tuple(retry_delays)
    models = _transient.list_models(client, delays)  # the neighbours too
    info = next((m for m in models if m.key == model), None) or _transient.get_model(
        client, model, delays
    )  # get_model also matches instance ids, and names close keys when there is none
    if info.type == "embedding":
        raise ContextSearchError(
            f"{model} is an embedding model; the context search needs a chat model"
        )
    runner = _Runner(client, info, registry, trials, on_progress, seed)
    runner.conditions.models = models
    runner.retry_delays = delays
    settings = {"min_context": min_context, "max_context": max_context}
    settings.update(resolution=resolution, trials=trials)
    run = lambda: runner.run(min_context, max_context, resolution, reset, keep_loaded)  # noqa: E731
    return observed_search(client, model, settings, run)


class _Runner:
    """One search of one model: a :class:`~lmstrix.context._strategy.Prober` plus bookkeeping."""

    def __init__(
        self,
        client: Client,
        info: ModelInfo,
        registry: Optional[Registry],
        trials: int,
        on_progress: Optional[Callable[[SearchProgress], None]],
        seed: Optional[int],
    ) -> None:
        self.client = client
        self.info = info
        self.key = info.key
        self.registry = registry
        self.trials = trials
        self.on_progress = on_progress
        rng = random.Random(seed)
        count = max(2, trials)  # the search may switch to a second needle (see _search)
        self.needles = [(_probe.make_secret(rng), rng.randrange(1 << 30)) for _ in range(count)]
        self.can_load = client.supports_load
        self.instance: Optional[str] = None
        self.instance_context: Optional[int] = None
        self.loads = 0
        self.requests = 0
        self.prompt_tokens = 0
        self.probes: List[ProbeRecord] = []
        self.calibration = _probe.Calibration()
        self.retry_delays: Tuple[float, ...] = RETRY_DELAYS
        # Instances of the model that were there before the search (not ours to unload).
        self.foreign = {i.id for i in info.loaded_instances}
        self.strays_possible = False  # True once a load's answer was lost
        self.conditions = TestConditions(client, info)  # fingerprint, neighbours, speed

    # ------------------------------------------------------------------ the run

    def run(
        self,
        min_context: int,
        max_context: Optional[int],
        resolution: int,
        reset: bool,
        keep_loaded: bool,
    ) -> ContextReport:
        started = time.perf_counter()
        declared = self.info.max_context_length
        top = declared if max_context is None else min(max_context, declared or max_context)
        bounds, resumed = self._resume(reset)
        if not self.can_load:
            self._adopt_loaded_instance()
        self.conditions.start(self.instance)
        try:
            result = run_search(
                self,
                top=top,
                floor=min_context,
                resolution=resolution,
                trials=self.trials,
                can_load=self.can_load,
                bounds=bounds,
            )
        finally:
            if not keep_loaded:
                self._unload()
            if self.strays_possible:  # a load whose answer was lost may still complete
                try:
                    self._drop(self._strays())
                except APIError as exc:
                    log.info("looking for instances left by lost loads failed: %s", exc)
        reason = result.reason
        if not self.can_load:
            note = (
                f"the server at {self.client.base_url} cannot load models over HTTP; "
                "the working limit is that of the instance it serves"
            )
            reason = f"{reason}; {note}" if reason else note
        report = ContextReport(
            model=self.key,
            server=self.client.base_url,
            declared_context=declared,
            loadable_context=result.loadable,
            working_context=result.working,
            status=result.status,
            reason=reason,
            loads=self.loads,
            requests=self.requests,
            prompt_tokens=self.prompt_tokens,
            seconds=time.perf_counter() - started,
            chars_per_token=self.calibration.measured(),
            can_load=self.can_load,
            resumed=resumed,
            probes=tuple(self.probes),
            **self.conditions.report_fields(),
        )
        self._record_final(report)
        return report

    def _resume(self, reset: bool) -> Tuple[Bounds, bool]:
        if self.registry is None:
            return Bounds(), False
        record = self.registry.get(self.key, server=self.client.base_url)
        if record is None or reset:
            self._save(lambda rec: fresh_record(rec, self.info, self.client.base_url))
            return Bounds(), False
        bounds = Bounds(
            load_good=record.load_good,
            load_bad=record.load_bad,
            work_good=record.work_good,
            work_bad=record.work_bad,
        )
        # A load attempted with no result means the server (or host) died during it.
        crashed = [p for p in record.pending_probes if p.kind == "load"]
        for probe in crashed:
            bounds.load_good, bounds.load_bad = after_load(
                bounds.load_good, bounds.load_bad, probe.size, LoadOutcome(False)
            )
        if record.chars_per_token:
            self.calibration.chars_per_token = record.chars_per_token

        def mark(rec: Optional[ModelRecord]) -> ModelRecord:
            rec = fresh_record(rec, self.info, self.client.base_url) if rec is None else rec
            for probe in crashed:
                rec = rec.with_probe(replace(probe, ok=False, failure="crashed"))
            return replace(
                rec, status="testing", load_good=bounds.load_good, load_bad=bounds.load_bad
            )

        self._save(mark)
        resumed = any(v is not None for v in (record.load_good, record.load_bad, record.work_good))
        return bounds, resumed or bool(crashed)

    # ------------------------------------------------------------------ Prober

    def load(self, size: int) -> LoadOutcome:
        return self._retrying(lambda last: self._load_once(size), f"loading at {size:,} tokens")

    def _load_once(self, size: int) -> Optional[LoadOutcome]:
        """One load attempt: its outcome, or None when it failed transiently."""
        self._unload()
        pending = ProbeRecord(kind="load", size=size)
        self._save(lambda rec: _need(rec, self).with_probe(pending))
        self.loads += 1
        self.requests += 1
        started = time.perf_counter()
        try:
            instance = self.client.load(self.key, context_length=size)
        except ModelLoadError as exc:
            measured, refused = load_failure_is_measurement(exc)
            failure = "load_failed" if measured else "server_error"
            self.strays_possible |= not measured
            outcome = self._load_done(
                size, False, None, failure, str(exc), started, refused=refused, bound=measured
            )
            return outcome if measured else None
        except APITimeoutError as exc:
            self.strays_possible = True
            self._load_done(size, False, None, "timeout", str(exc), started, bound=False)
            return None
        except APIConnectionError as exc:
            self.strays_possible = True
            self._after_reset(size, exc)
            self._load_done(size, False, None, "disconnected", str(exc), started, bound=False)
            return None
        self.instance = instance.id
        self.instance_context = instance.context_length or size
        self.requests += self.conditions.loaded(instance)
        if instance.context_length is not None and instance.context_length < size:
            detail = f"asked {size}, the server applied {instance.context_length}"
            return self._load_done(
                size, False, instance.context_length, "auto_fit", detail, started
            )
        return self._load_done(size, True, self.instance_context, None, "", started)

    def _after_reset(self, size: int, exc: APIConnectionError) -> None:
        """A load whose connection broke: if the server is gone, the load took it down
        (the pending mark stays: a crash at ``size`` on resume); else clean up."""
        try:
            strays = self._strays()
        except APIConnectionError as gone:
            raise ContextSearchError(
                f"the server went away while loading {self.key} at {size:,} tokens ({exc}); "
                "a resumed search counts this as a crash at that size"
            ) from gone
        self._drop(strays)

    def _strays(self) -> List[str]:
        """Instances of the model this search may have loaded unknowingly (a load whose
        answer was lost completed anyway)."""
        self.requests += 1
        info = self.client.get_model(self.key)
        known = self.foreign | {self.instance}
        return [i.id for i in info.loaded_instances if i.id not in known]

    def _drop(self, instances: List[str]) -> None:
        for instance in instances:
            self.requests += 1
            try:
                self.client.unload(instance)
            except APIError as exc:  # it may already be gone (crash, eviction)
                log.info("unloading %s failed: %s", instance, exc)

    def _load_done(
        self,
        size: int,
        ok: bool,
        applied: Optional[int],
        failure: Optional[str],
        detail: str,
        started: float,
        *,
        refused: bool = False,
        bound: bool = True,
    ) -> LoadOutcome:
        probe = ProbeRecord(
            kind="load",
            size=size,
            ok=ok,
            failure=failure,
            applied_context=applied,
            seconds=round(time.perf_counter() - started, 4),
            detail=detail[:300],
        )
        self.probes.append(probe)

        outcome = LoadOutcome(ok, applied, failure, refused)

        def apply(rec: Optional[ModelRecord]) -> ModelRecord:
            rec = _need(rec, self).with_probe(probe)
            if not bound:  # a transient failure: history, not a bound
                return rec
            good, bad = after_load(rec.load_good, rec.load_bad, size, outcome)
            return replace(rec, load_good=good, load_bad=bad)

        self._save(apply)
        self._progress(probe, f"load at {size:,} tokens")
        return outcome

    def ceiling(self) -> Optional[int]:
        if self.instance_context is None:
            return None
        return max(1, self.instance_context - ANSWER_TOKENS)

    def probe(self, tokens: int, trial: int) -> ProbeOutcome:
        return self._retrying(
            lambda last: self._probe_once(tokens, trial, last=last), f"a probe of {tokens:,} tokens"
        )

    def _retrying(self, step: Callable[[bool], Optional[_T]], what: str) -> _T:
        outcome = retrying(step, self.retry_delays)
        if outcome is not None:
            return outcome
        last = self.probes[-1]  # each failed try is in the history
        raise ContextSearchError(
            f"the search of {self.key} stopped: {what} failed {len(self.retry_delays) + 1} "
            f"times in a row for reasons that say nothing about the model (last: "
            f"{last.failure}: {last.detail}). Nothing was recorded as a limit; run it "
            "again to resume from what is known"
        )

    def _probe_once(self, tokens: int, trial: int, *, last: bool) -> Optional[ProbeOutcome]:
        """One probe: its outcome, or None when it failed transiently."""
        secret, filler_seed = self.needles[trial % len(self.needles)]
        chars = max(_probe.min_probe_chars(secret), self.calibration.chars_for(tokens, trial))
        text = _probe.build_probe(secret, chars, seed=filler_seed)
        model = self.instance or self.key
        expected = self.calibration.tokens_for(len(text))
        self.requests += 1
        started = time.perf_counter()
        failure: Optional[str] = None
        measured: Optional[int] = None
        transient = False
        detail = ""
        try:
            answer = self.client.chat(model, text, temperature=0, max_tokens=ANSWER_TOKENS)
        except ContextOverflowError as exc:
            failure, detail = "overflow_error", str(exc)
            measured = overflow_tokens(exc)
        except APITimeoutError as exc:
            # Every retry timing out too is a genuine long-prefill timeout: a verdict.
            failure, detail, transient = "timeout", str(exc), not last
        except APIConnectionError as exc:
            failure, detail, transient = "disconnected", str(exc), True
        except StreamError as exc:  # an answer with no text at all (kind "empty")
            empty = exc.kind == "empty"
            failure, detail, transient = ("empty" if empty else "server_error"), str(exc), not empty
        except APIStatusError as exc:  # a 500, or another answer that is no reply
            failure, detail, transient = "server_error", str(exc), True
        else:
            measured = answer.usage.prompt_tokens
            cpt = self.calibration.chars_per_token
            self.conditions.answered(model, text, answer, measured, started, cpt)
            reply = answer.text.strip()
            right = bool(reply) and _probe.answer_is_correct(reply, secret)
            detail = reply[:80]
            # One sample (or several of about one size) cannot separate characters per
            # token from the chat template's fixed overhead, so truncation is judged
            # only once the fit spans sizes at least 1.5x apart.
            fitted = self.calibration.fitted
            context = self.instance_context
            if measured is not None and fitted and _probe.was_cut(measured, expected, context):
                failure = "truncated"
            elif measured is not None and context is not None and measured >= context and not right:
                failure = "truncated"  # counted up to the instance's size: cut to fit
            elif not reply:
                failure = "empty"
            elif not right:
                failure = "wrong_answer"
            if measured is not None and failure != "truncated":
                self.calibration.add(len(text), measured)
        size = measured if measured is not None else max(tokens, expected)
        self.prompt_tokens += measured if measured is not None else expected
        ceiling = self.ceiling()
        fits = failure not in ("overflow_error", "truncated") and (
            measured is None or ceiling is None or measured <= ceiling
        )
        outcome = ProbeOutcome(failure is None, size, failure, fits)
        probe = ProbeRecord(
            kind="prompt",
            size=tokens,
            ok=failure is None,
            failure=failure,
            applied_context=self.instance_context,
            prompt_tokens=measured,
            seconds=round(time.perf_counter() - started, 4),
            trial=trial,
            detail=detail[:300],
        )
        self.probes.append(probe)
        self._save(lambda rec: self._after_probe(rec, probe, None if transient else outcome))
        self._progress(probe, f"probe of {size:,} tokens (needle {trial + 1})")
        return None if transient else outcome

    def _after_probe(
        self, rec: Optional[ModelRecord], probe: ProbeRecord, outcome: Optional[ProbeOutcome]
    ) -> ModelRecord:
        rec = _need(rec, self).with_probe(probe)
        good, bad = rec.work_good, rec.work_bad
        if outcome is not None:  # bounds for a resumed search, from every needle
            good, bad = after_probe(good, bad, outcome)
        cpt = self.calibration.measured() or rec.chars_per_token
        return replace(rec, work_good=good, work_bad=bad, chars_per_token=cpt)

    # ------------------------------------------------------------------ helpers

    def _adopt_loaded_instance(self) -> None:
        """Without a load endpoint, probe the instance the server already has."""
        inst = next(iter(self.info.loaded_instances), None)
        if inst is not None:
            self.instance = inst.id
            self.instance_context = inst.context_length
            self.conditions.loaded(inst)

    def _unload(self) -> None:
        if self.instance is not None and self.can_load:
            instance, self.instance = self.instance, None
            self.instance_context = None
            self._drop([instance])

    def _save(self, fn: Callable[[Optional[ModelRecord]], ModelRecord]) -> None:
        if self.registry is not None:
            self.registry.update(self.key, fn, server=self.client.base_url)

    def _record_final(self, report: ContextReport) -> None:
        def apply(rec: Optional[ModelRecord]) -> ModelRecord:
            rec = _need(rec, self)
            return replace(
                rec,
                status=report.status,
                failure_reason=report.reason if report.status == "failed" else "",
                loadable_context=report.loadable_context,
                working_context=report.working_context,
                tested_at=time.time(),
                chars_per_token=report.chars_per_token or rec.chars_per_token,
                fingerprint=report.fingerprint,
                speed=report.speed,
                stale=False,
                stale_reason="",
            )

        self._save(apply)

    def _progress(self, probe: ProbeRecord, what: str) -> None:
        if self.on_progress is not None:
            step = progress_step(
                self.key, probe, what, self.loads, self.requests, self.client.base_url
            )
            self.on_progress(step)


def _need(rec: Optional[ModelRecord], runner: _Runner) -> ModelRecord:
    if rec is None:
        return fresh_record(None, runner.info, runner.client.base_url)
    return rec
