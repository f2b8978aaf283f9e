"""`recheck_limits`: re-confirm a model's recorded limits cheaply, and flag drift.

A full context search costs many loads. A recheck costs one: it loads the model at the
recorded loadable limit ``L`` and sends one probe set (``trials`` needles) of about the
recorded working limit ``W``. If the load fails (or the server applies less than ``L``),
a needle overflows, or two needles answer wrong (after one wrong answer, which may be
the noise real models show near their limit, a second set of ``trials`` needles
decides), the limits have drifted (a new LM Studio runtime, another
quantization, less free memory...): the record keeps ``status="done"`` but gets
``stale=True`` and a ``stale_reason``. Like the search, a recheck writes each attempt to
the registry before it runs, so a crash of the server during the load leaves "attempted,
no result" behind; the next recheck counts that as the load failing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .. import errors
from .._log import logger
from ..errors import APIError, ContextSearchError
from ..registry._fingerprint import Fingerprint, fingerprint_changes
from ..registry._records import ModelRecord, ProbeRecord
from . import _probe
from ._conditions import TestConditions

if TYPE_CHECKING:
    from ..client import Client
    from ..registry import Registry
    from ..types import LoadedInstance, ModelInfo

__all__ = ["RecheckResult", "recheck_limits"]

log = logger(__name__)

RECHECK_DETAIL = "recheck"
"""``ProbeRecord.detail`` prefix of the steps a recheck writes."""

NO_VERDICT = ("timeout", "disconnected", "server_error")
"""Failures that say nothing about the model: the recheck is ``inconclusive``."""

ANSWER_TOKENS = 24
MARGIN_TOKENS = 64  # probes aim this far (or 2%) under W: tokenizers vary a little per text


@dataclass(frozen=True)
class RecheckResult:
    """The outcome of :func:`recheck_limits`.

    ``outcome`` is ``confirmed`` (the load at ``loadable_context`` passed, and the
    needles at about ``working_context`` with at most one wrong answer, which ``reason``
    then notes), ``drifted`` (see ``reason``) or
    ``inconclusive`` (a failure that says nothing about the model, such as a dropped
    connection; the record is left as it was). ``changes`` lists fingerprint changes
    since the test; ``fingerprint`` is the one seen now. ``applied_context`` is what the
    server applied to the load, ``prompt_tokens`` the server's count of each needle sent,
    ``loads`` and ``requests`` what the recheck cost, ``warnings`` things that may
    explain a drift (other models loaded). ``stale`` says whether the record is now
    marked stale.
    """

    model: str
    server: str
    outcome: str
    loadable_context: Optional[int]
    working_context: Optional[int]
    reason: str = ""
    applied_context: Optional[int] = None
    prompt_tokens: Tuple[int, ...] = ()
    changes: Tuple[str, ...] = ()
    fingerprint: Optional[Fingerprint] = None
    stale: bool = False
    loads: int = 0
    requests: int = 0
    warnings: Tuple[str, ...] = ()
    probes: Tuple[ProbeRecord, ...] = field(default=(), repr=False)

    @property
    def confirmed(self) -> bool:
        """True when the recorded limits held."""
        return self.outcome == "confirmed"

    @property
    def drifted(self) -> bool:
        """True when a load or a needle failed at the recorded limits."""
        return self.outcome == "drifted"

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (the ``--json`` shape of ``lmstrix test --recheck``)."""
        return {
            "key": self.model,
            "server": self.server,
            "outcome": self.outcome,
            "loadable_context": self.loadable_context,
            "working_context": self.working_context,
            "reason": self.reason,
            "applied_context": self.applied_context,
            "prompt_tokens": list(self.prompt_tokens),
            "changes": list(self.changes),
            "fingerprint": None if self.fingerprint is None else self.fingerprint.to_dict(),
            "stale": self.stale,
            "loads": self.loads,
            "requests": self.requests,
            "warnings": list(self.warnings),
            "probes": [p.to_dict() for p in self.probes],
        }


def recheck_limits(
    client: Client,
    model: str,
    *,
    registry: Registry,
    trials: int = 3,
    seed: Optional[int] = None,
    keep_loaded: bool = False,
) -> RecheckResult:
    """Re-confirm the recorded limits of ``model``: one load at ``L``, ``trials`` needles at ``W``.

    The record (of ``client``'s server in ``registry``) must be a finished test
    (``status="done"`` with a working limit). On a server without a load endpoint the
    load is skipped and the needles go to the instance it serves. The record gets
    ``recheck``, ``rechecked_at``, and ``stale``/``stale_reason`` when the limits drifted
    or the fingerprint changed without the limits being confirmed; a confirmed recheck
    clears ``stale`` and stores the new fingerprint.

    Raises:
        ContextSearchError: no finished test of ``model`` to recheck, or ``trials`` < 1.
        ModelNotFoundError, APIConnectionError: the server says so or is unreachable.
    """
    if trials < 1:
        raise ContextSearchError("trials must be at least 1")
    record = registry.get(model, server=client.base_url)
    if record is None or record.status != "done" or not record.working_context:
        raise ContextSearchError(
            f"{model} has no finished context test on {client.base_url} to recheck "
            "(run `lmstrix test` first)"
        )
    models = client.list_models()  # the neighbours too; get_model matches instance ids
    info = next((m for m in models if m.key == model), None) or client.get_model(model)
    check = _Recheck(client, info, registry, record, trials, seed)
    check.conditions.models = models
    return check.run(keep_loaded)


class _Recheck:
    """One recheck of one model."""

    def __init__(
        self,
        client: Client,
        info: ModelInfo,
        registry: Registry,
        record: ModelRecord,
        trials: int,
        seed: Optional[int],
    ) -> None:
        self.client = client
        self.info = info
        self.registry = registry
        self.record = record
        self.trials = trials
        self.rng = random.Random(seed)
        self.loads = 0
        self.requests = 1  # the model list of get_model
        self.probes: List[ProbeRecord] = []
        self.instance: Optional[LoadedInstance] = None
        self.prompt_tokens: List[int] = []
        self.conditions = TestConditions(client, info)

    def run(self, keep_loaded: bool) -> RecheckResult:
        record = self.record
        if not self.client.supports_load:
            self.instance = next(iter(self.info.loaded_instances), None)
            if self.instance is not None:
                self.conditions.loaded(self.instance)
        self.conditions.start(self.instance.id if self.instance else None)
        crashed = [
            p
            for p in record.pending_probes
            if p.kind == "load" and p.detail.startswith(RECHECK_DETAIL)
        ]
        if crashed:
            outcome, reason = self._after_crash(crashed)
        else:
            try:
                outcome, reason = self._measure()
            finally:
                if not keep_loaded:
                    self._unload()
        now: Fingerprint = self.conditions.report_fields()["fingerprint"]
        if now.server_version is None and record.fingerprint is not None:
            now = dataclasses.replace(now, server_version=record.fingerprint.server_version)
        changes = tuple(fingerprint_changes(record.fingerprint, now))
        warnings = self.conditions.warnings
        if changes and outcome != "confirmed":
            reason = "; ".join(filter(None, [reason, "fingerprint changed: " + "; ".join(changes)]))
        stale = outcome == "drifted" or (bool(changes) and outcome != "confirmed")
        if outcome == "inconclusive" and not changes:
            stale = record.stale
        self._store(outcome, reason, stale, now)
        if outcome != "confirmed":
            log.warning(
                "recheck of %s on %s: %s: %s", self.info.key, self.client.base_url, outcome, reason
            )
        return RecheckResult(
            model=self.info.key,
            server=self.client.base_url,
            outcome=outcome,
            loadable_context=record.loadable_context,
            working_context=record.working_context,
            reason=reason,
            applied_context=self.instance.context_length if self.instance else None,
            prompt_tokens=tuple(self.prompt_tokens),
            changes=changes,
            fingerprint=now,
            stale=stale,
            loads=self.loads,
            requests=self.requests,
            warnings=warnings,
            probes=tuple(self.probes),
        )

    # ------------------------------------------------------------------ steps

    def _after_crash(self, crashed: List[ProbeRecord]) -> Tuple[str, str]:
        """An earlier recheck died during its load: that load failed."""
        for probe in crashed:
            done = dataclasses.replace(probe, ok=False, failure="crashed")
            self.probes.append(done)
            self._save(lambda rec, done=done: rec.with_probe(done))
        return "drifted", (
            f"an earlier recheck's load at {crashed[0].size:,} tokens never finished "
            "(the server or the host crashed)"
        )

    def _measure(self) -> Tuple[str, str]:
        loadable = self.record.loadable_context
        if self.client.supports_load and loadable:
            verdict = self._load(loadable)
            if verdict is not None:
                return verdict
        return self._needles()

    def _load(self, size: int) -> Optional[Tuple[str, str]]:
        pending = ProbeRecord(kind="load", size=size, detail=RECHECK_DETAIL)
        self._save(lambda rec: rec.with_probe(pending))
        self.loads += 1
        self.requests += 1
        started = time.perf_counter()
        failure: Optional[str] = None
        applied: Optional[int] = None
        detail = ""
        try:
            inst = self.client.load(self.info.key, context_length=size)
        except APIError as exc:
            failure, detail = _failure_of(exc), str(exc)
        else:
            self.instance = inst
            self.requests += self.conditions.loaded(inst)
            applied = inst.context_length
            if applied is not None and applied < size:
                failure, detail = "auto_fit", f"asked {size}, the server applied {applied}"
        probe = dataclasses.replace(
            pending,
            ok=failure is None,
            failure=failure,
            applied_context=applied,
            seconds=round(time.perf_counter() - started, 4),
            detail=f"{RECHECK_DETAIL}: {detail}"[:300] if detail else RECHECK_DETAIL,
        )
        self.probes.append(probe)
        self._save(lambda rec: rec.with_probe(probe))
        if failure is None:
            return None
        if failure in NO_VERDICT:
            return "inconclusive", f"the load at {size:,} tokens got no answer ({failure})"
        return "drifted", f"the load at {size:,} tokens failed ({failure}: {detail[:120]})"

    def _needles(self) -> Tuple[str, str]:
        working = self.record.working_context or 0
        target = max(1, min(int(working * 0.98), working - MARGIN_TOKENS))
        cpt = self.record.chars_per_token or 4.0
        model = self.instance.id if self.instance is not None else self.info.key
        failed: List[int] = []
        needles, trial = self.trials, 0
        while trial < needles:
            secret = _probe.make_secret(self.rng)
            chars = max(_probe.min_probe_chars(secret), int(target * cpt))
            text = _probe.build_probe(secret, chars, seed=self.rng.randrange(1 << 30))
            failure, measured, detail, seconds = self._ask(model, text, secret)
            if measured:
                self.prompt_tokens.append(measured)
                cpt = len(text) / measured  # aim the next needle with this one's count
            probe = ProbeRecord(
                "prompt",
                target,
                ok=failure is None,
                failure=failure,
                applied_context=self.instance.context_length if self.instance else None,
                prompt_tokens=measured,
                seconds=seconds,
                trial=trial,
                detail=f"{RECHECK_DETAIL}: {detail}"[:300],
            )
            self.probes.append(probe)
            self._save(lambda rec, probe=probe: rec.with_probe(probe))
            if failure in NO_VERDICT:
                return "inconclusive", f"needle {trial + 1} got no answer ({failure})"
            trial += 1
            if failure is None:
                continue
            failed.append(trial)
            size = f"{measured:,}" if measured else f"about {target:,}"
            if failure == "overflow_error" or len(failed) > 1:
                which = "s " + " and ".join(map(str, failed)) if failed[1:] else f" {trial}"
                return "drifted", f"needle{which} of {size} tokens failed ({failure})"
            needles = 2 * self.trials  # one wrong answer may be noise: a second set decides
        if failed:
            return "confirmed", (
                f"needle {failed[0]} of {needles} failed near the working limit and no other "
                "did: noise, not drift"
            )
        return "confirmed", ""

    def _ask(
        self, model: str, text: str, secret: str
    ) -> Tuple[Optional[str], Optional[int], str, float]:
        self.requests += 1
        started = time.perf_counter()
        try:
            answer = self.client.chat(model, text, temperature=0, max_tokens=ANSWER_TOKENS)
        except APIError as exc:
            return _failure_of(exc), None, str(exc), _since(started)
        self.conditions.answered(model, text, answer, answer.usage.prompt_tokens, started, 4.0)
        reply = answer.text.strip()
        failure: Optional[str] = None
        if not reply:
            failure = "empty"
        elif not _probe.answer_is_correct(reply, secret):
            failure = "wrong_answer"
        return failure, answer.usage.prompt_tokens, reply[:80], _since(started)

    # ------------------------------------------------------------------ helpers

    def _unload(self) -> None:
        """Unload the instance this recheck loaded (it may already be gone: a crash)."""
        if self.instance is not None and self.loads and self.client.supports_load:
            self.requests += 1
            with contextlib.suppress(APIError):
                self.client.unload(self.instance.id)

    def _save(self, fn: Any) -> None:
        def apply(rec: Optional[ModelRecord]) -> Optional[ModelRecord]:
            return None if rec is None else fn(rec)

        self.registry.update(self.info.key, apply, server=self.client.base_url)

    def _store(self, outcome: str, reason: str, stale: bool, now: Fingerprint) -> None:
        def apply(rec: ModelRecord) -> ModelRecord:
            changes: Dict[str, Any] = {
                "recheck": outcome,
                "rechecked_at": time.time(),
                "stale": stale,
                "stale_reason": reason if stale else "",
            }
            if outcome == "confirmed":
                changes["fingerprint"] = now
            return dataclasses.replace(rec, **changes)

        self._save(apply)


def _failure_of(exc: APIError) -> str:
    """The :data:`~lmstrix.registry._records.FAILURE_KINDS` name of a load or chat error."""
    for kind, name in (
        (errors.ContextOverflowError, "overflow_error"),
        (errors.ModelLoadError, "load_failed"),
        (errors.APITimeoutError, "timeout"),  # before its base class, APIConnectionError
        (errors.APIConnectionError, "disconnected"),
    ):
        if isinstance(exc, kind):
            return name
    return "server_error"


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)
