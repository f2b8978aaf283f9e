"""``lmstrix.fit``: does a prompt fit a model's tested working context, and by how much?

The estimate is the registry's (``registry/_fit.py``): the prompt's characters over the
characters per token calibrated for the model on its server, with a safety margin and a
few tokens per message for the chat template. After the call, :meth:`FitReport.confirm`
compares the estimate with the server's ``usage.prompt_tokens`` and refines the
calibration in the registry, so the next estimate is closer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List, Optional, Union

from .._log import logger
from ..errors import APIError
from ..registry._fit import (
    DEFAULT_CHARS_PER_TOKEN,
    Prompt,
    answer_tokens,
    estimate_tokens,
    prompt_size,
    refined_chars_per_token,
)
from ._counter import servers_of

if TYPE_CHECKING:
    from ..registry import ModelRecord, Registry
    from ..types import Completion

__all__ = ["FitReport", "fit"]

log = logger(__name__)


@dataclass(frozen=True)
class FitReport:
    """What :func:`fit` found for one model (on the server that suits it best).

    ``fits`` is True or False when the registry holds a tested working context, and
    None when it does not (never tested: the prompt may or may not fit); it is False
    even then when the prompt exceeds the declared context, an upper bound.
    ``estimated_tokens`` is the prompt's estimate (the answer's ``max_tokens`` not
    included), ``margin`` the tokens left over (negative: short by that many) once the
    prompt and the answer are in the working context, and ``calibrated`` whether the
    estimate used a characters-per-token ratio measured for this model. ``reason``
    says it in words. ``actual_tokens`` is the server's count, after :meth:`confirm`.
    """

    model: str
    fits: Optional[bool]
    estimated_tokens: int
    max_tokens: int
    working_context: Optional[int]
    margin: Optional[int]
    calibrated: bool
    chars_per_token: float
    server: Optional[str] = None
    declared_context: Optional[int] = None
    reason: str = ""
    actual_tokens: Optional[int] = None
    prompt_chars: int = 0
    messages: int = 1
    registry: Optional[Registry] = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        """True only when the prompt is known to fit."""
        return self.fits is True

    @property
    def held(self) -> Optional[bool]:
        """Whether the estimate was at least the server's count (None before confirm)."""
        if self.actual_tokens is None:
            return None
        return self.actual_tokens <= self.estimated_tokens

    def confirm(self, completion: Union[Completion, int]) -> FitReport:
        """Check the estimate against the server's count of the prompt, and learn from it.

        ``completion`` is the answer to the prompt this report was made for (its
        ``usage.prompt_tokens`` is read) or that count itself. With a registry, the
        model's calibrated characters per token on this server is refined: raised a
        little when the estimate was high, lowered at once to what was seen when it was
        low. Returns a copy with ``actual_tokens`` (and the new ``chars_per_token``);
        without a count (a server that gives no usage) the report comes back unchanged.
        """
        if isinstance(completion, int):
            counted: Optional[int] = completion
        else:
            usage = completion.usage
            counted = usage.prompt_tokens if usage is not None else None
        if counted is None:
            log.info("fit.confirm: %s gave no usage; nothing to confirm", self.model)
            return self
        done = dataclasses.replace(self, actual_tokens=counted)
        if self.registry is None or self.server is None:
            return done
        server = self.server
        learnt: List[float] = []

        def refine(old: Optional[ModelRecord]) -> Optional[ModelRecord]:
            from ..registry import ModelRecord

            record = old if old is not None else ModelRecord(key=self.model, server=server)
            calibration = old.chars_per_token if old is not None else None
            new = refined_chars_per_token(calibration, self.prompt_chars, self.messages, counted)
            if new is None:
                return old
            learnt.append(new)
            return dataclasses.replace(record, chars_per_token=new)

        self.registry.update(self.model, refine, server=server)
        if learnt:
            log.info("fit.confirm: %s chars per token now %s", self.model, learnt[0])
            return dataclasses.replace(done, chars_per_token=learnt[0], calibrated=True)
        return done


def _report(
    model: str,
    record: Optional[ModelRecord],
    messages: Prompt,
    max_tokens: Optional[int],
    server: Optional[str],
    registry: Optional[Registry],
    declared: Optional[int],
) -> FitReport:
    calibration = record.chars_per_token if record is not None else None
    calibrated = bool(calibration and calibration > 0)
    cpt = calibration if calibration and calibration > 0 else DEFAULT_CHARS_PER_TOKEN
    prompt = estimate_tokens(messages, cpt)
    answer = answer_tokens(max_tokens)
    chars, count = prompt_size(messages)
    working = record.working_context if record is not None else None
    if record is not None and record.declared_context:
        declared = record.declared_context
    need = f"about {prompt:,} prompt tokens + {answer:,} for the answer"
    if working:
        left = working - prompt - answer
        margin: Optional[int] = left
        fits: Optional[bool] = left >= 0
        verb = "fit in" if fits else "exceed"
        reason = f"{need} {verb} the tested working context of {working:,}"
        if record is not None and record.stale:
            reason += f" (the record may be out of date: {record.stale_reason or 'stale'})"
    else:
        margin, fits = None, None
        reason = f"{model} has no tested working context" + (
            " in the registry" if registry is not None else " (no registry given)"
        )
        reason += "; run `lmstrix test` to measure it"
        if declared and prompt + answer > declared:
            fits = False
            reason = f"{need} exceed the declared context of {declared:,}; " + reason
        elif declared:
            reason += f"; the declared context ({declared:,}) is an upper bound"
    return FitReport(
        model=model,
        fits=fits,
        estimated_tokens=prompt,
        max_tokens=answer,
        working_context=working,
        margin=margin,
        calibrated=calibrated,
        chars_per_token=cpt,
        server=server,
        declared_context=declared,
        reason=reason,
        prompt_chars=chars,
        messages=count,
        registry=registry,
    )


def _declared(client_or_pool: Any, model: str) -> Optional[int]:
    """The context the server declares for ``model`` (None when it cannot say)."""
    try:
        info = client_or_pool.get_model(model)
    except APIError as exc:
        log.info("fit: no declared context for %s: %s", model, exc)
        return None
    value = getattr(info, "max_context_length", None)
    return value if isinstance(value, int) and value > 0 else None


def _rank(report: FitReport) -> Any:
    known = report.margin is not None
    return (report.fits is True, known, report.margin if known else 0)


def fit(
    client_or_pool: Any, model: str, messages: Prompt, max_tokens: Optional[int] = None
) -> FitReport:
    """Say whether ``messages`` plus a ``max_tokens`` answer fit ``model``'s tested
    working context.

    ``client_or_pool`` is a :class:`~lmstrix.Client` or :class:`~lmstrix.Pool`; its
    registry holds the working context and the calibrated characters per token of the
    model on its server(s) (a pool reports the server where it fits best). Without a
    record, ``fits`` is None (unknown) unless the prompt exceeds even the declared
    context (asked of the server), then False. ``max_tokens`` None keeps the default
    room for the answer that fallback chains keep.

    After sending the prompt, ``report.confirm(completion)`` checks the estimate with
    the server's count and refines the registry's calibration.
    """
    registry: Optional[Registry] = getattr(client_or_pool, "registry", None)
    reports = []
    for server in servers_of(client_or_pool):
        record = registry.get(model, server=server) if registry is not None else None
        if record is not None:
            reports.append(_report(model, record, messages, max_tokens, server, registry, None))
    if not reports or all(r.working_context is None for r in reports):
        declared = _declared(client_or_pool, model)
        where = reports[0].server if reports else None
        where = where or servers_of(client_or_pool)[0]
        record = registry.get(model, server=where) if registry is not None else None
        return _report(model, record, messages, max_tokens, where, registry, declared)
    return max(reports, key=_rank)
