"""The map-reduce engine behind :func:`~lmstrix.text.summarize` and :func:`~lmstrix.text.ask`.

Every request goes through :func:`lmstrix.batch.run_batch`, whose crash-safe JSONL output
is the run's state: a run that is killed continues where it stopped when it is started
again with the same state file, and answers already there are not asked again. Ids carry
a digest of the document and the settings, so one state file never mixes two runs.

One request holds a prompt and its answer within the model's *tested* working context
(the registry's record), less a margin for the chat template; the instance answering is
loaded at that size when the model is not loaded yet. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from .._log import logger
from ..errors import ConfigError, LMStrixError
from ._counter import records_of, token_counter
from ._split import TokenCounter, split_text

__all__ = [
    "TEMPLATE_TOKENS",
    "Budget",
    "MapReduceProgress",
    "StateRunner",
    "calibrate",
    "dense_counter",
    "reduce_all",
    "resolve_budget",
]

log = logger(__name__)

TEMPLATE_TOKENS = 32
"""Tokens kept for the chat template's own markers around one user message."""
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class MapReduceProgress:
    """Where a summarize or ask run stands, passed to ``on_progress`` after each request.

    ``stage`` is ``"calibrate"`` (one small request measuring the document's tokens),
    ``"map"``, ``"reduce"``, or ``"answer"`` (extractive ``ask``);
    ``level`` is 0 for the map step and counts the reduce rounds from 1; ``done`` and
    ``total`` count the requests of this step, ``skipped`` those already answered in
    the state file.
    """

    stage: str
    level: int
    done: int
    total: Optional[int]
    failed: int
    skipped: int


ProgressCallback = Callable[[MapReduceProgress], None]


@dataclass(frozen=True)
class Budget:
    """The room of one request: the working context, the answer, the token counter."""

    working_context: int
    max_tokens: int
    count: TokenCounter

    def room(self, template: str) -> int:
        """Tokens of text a prompt made from ``template`` (without that text) may hold."""
        return self.working_context - self.max_tokens - TEMPLATE_TOKENS - self.count(template)


def _loaded_context(client: Any, model: str) -> Optional[int]:
    """The smallest context of ``model``'s loaded instances (None when none is loaded)."""
    try:
        sizes = [
            inst.context_length
            for inst in client.loaded_instances()
            if model in (inst.id, inst.model_key) and inst.context_length
        ]
    except LMStrixError as exc:  # the server cannot say: the tested limit stands
        log.debug("cannot list the loaded instances of %s: %s", model, exc)
        return None
    return min(sizes) if sizes else None


_LETTERS = re.compile(r"[^\W\d_]+")
_DIGITS = re.compile(r"\d+")
_SYMBOLS = re.compile(r"[^\w\s]|_|\n")


def dense_counter(count: TokenCounter) -> TokenCounter:
    """``count``, but never less than one token per word, symbol and three digits.

    The registry's characters per token are calibrated on prose; a text dense with
    symbols and numbers (markers, tables, code, a list of partial answers) takes far
    more tokens per character, and a budget counted from characters alone would overflow.
    """

    def dense(text: str) -> int:
        digits = sum((len(run) + 2) // 3 for run in _DIGITS.findall(text))
        floor = len(_LETTERS.findall(text)) + len(_SYMBOLS.findall(text)) + digits
        return max(count(text), floor)

    return dense


def resolve_budget(
    client: Any, model: str, max_tokens: int, working_context: Optional[int] = None
) -> Budget:
    """The budget of one request to ``model``, from the registry's tested working context.

    ``working_context`` overrides the registry (for a model that was never tested). A
    loaded instance with a smaller context lowers the budget to its size; on a server
    (each of a Pool's) where none is loaded and models can be loaded, ``model`` is loaded
    at the budget's size (a just-in-time load would take the server's default context).

    Raises:
        ConfigError: no tested working context (and none given), or ``max_tokens``
            leaves too little room for the text.
    """
    if isinstance(max_tokens, bool) or int(max_tokens) < 1:
        raise ConfigError(f"max_tokens must be at least 1, not {max_tokens!r}")
    if working_context is None:
        tested = [r.working_context for r in records_of(client, model) if r.working_context]
        if not tested:
            where = getattr(client, "base_url", None) or "the pool's servers"
            raise ConfigError(
                f"no tested working context for {model} on {where}: the registry has no "
                f"record of it (or no registry was given). Run `lmstrix test {model}` (or "
                "lmstrix.find_context_limit) first, or pass working_context=N"
            )
        working_context = min(tested)
    limit = int(working_context)
    members = [m.client for m in getattr(client, "members", [])] or [client]
    unloaded = []
    for member in members:  # a Pool's servers, each on its own
        loaded = _loaded_context(member, model)
        if loaded is not None:
            limit = min(limit, loaded)
        elif getattr(member, "supports_load", False):
            unloaded.append(member)
    for member in unloaded:
        log.info("%s: loading %s at %d tokens", member.base_url, model, limit)
        member.load(model, context_length=limit)
    return Budget(limit, int(max_tokens), dense_counter(token_counter(client, model)))


def digest(*parts: Any) -> str:
    """A short, stable name for a run's document and settings."""
    data = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()[:12]


class StateRunner:
    """Runs a step's prompts through ``run_batch`` into the state file; reads answers back.

    A step's item ids are ``{run}-{stage}{level}-{index}``; a failed answer is tried
    again on the next run under the id ``...~{attempt}``, since the batch never redoes an
    id it has written.
    """

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        run: str,
        state: Optional[str],
        workers: Optional[int],
        params: Mapping[str, Any],
        on_progress: Optional[ProgressCallback],
    ) -> None:
        self.client, self.model, self.run_id = client, model, run
        self.state, self.workers, self.params = state, workers, dict(params)
        self.kept = state  # the caller's state file (None: a temporary one)
        self.on_progress = on_progress
        self.requests = 0  # requests sent by this process (answers read back not counted)
        self._scratch: Optional[tempfile.TemporaryDirectory[str]] = None

    def __enter__(self) -> StateRunner:
        if self.state is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="lmstrix-text-")
            self.state = os.path.join(self._scratch.name, "state.jsonl")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _read(self) -> Dict[str, List[Dict[str, Any]]]:
        """This run's records in the state file, by base id, oldest first."""
        found: Dict[str, List[Dict[str, Any]]] = {}
        assert self.state is not None
        try:
            handle = open(self.state, encoding="utf-8")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise ConfigError(f"cannot read the state file {self.state}: {exc}") from exc
        prefix = self.run_id + "-"
        with handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn last line: the batch cuts it off
                item_id = record.get("id") if isinstance(record, dict) else None
                if isinstance(item_id, str) and item_id.startswith(prefix):
                    found.setdefault(item_id.split("~", 1)[0], []).append(record)
        return found

    def run(self, stage: str, level: int, prompts: List[str]) -> List[str]:
        """The answers to ``prompts``, asking only those the state file has no answer to.

        Raises:
            LMStrixError: some requests failed (their errors are in the state file; run
                again with the same state to retry only them).
        """
        return [str(r.get("output") or "").strip() for r in self.records(stage, level, prompts)]

    def records(
        self,
        stage: str,
        level: int,
        prompts: List[str],
        params: Optional[Mapping[str, Any]] = None,
    ) -> List[Dict[str, Any]]:
        """The state file's records of ``prompts`` (asking those it has no answer to).

        ``params`` replace the runner's request parameters for these prompts.
        """
        from ..batch import run_batch

        bases = [f"{self.run_id}-{stage}{level}-{i}" for i in range(len(prompts))]
        before = self._read()
        items = []
        for base, prompt in zip(bases, prompts):
            records = before.get(base, [])
            if any(r.get("error") is None for r in records):
                continue
            item_id = f"{base}~{len(records)}" if records else base
            items.append({"id": item_id, "prompt": prompt})
        skipped = len(prompts) - len(items)

        def progress(step: Any) -> None:
            if self.on_progress is not None:
                self.on_progress(
                    MapReduceProgress(stage, level, step.done, len(items), step.failed, skipped)
                )

        if items:
            assert self.state is not None
            summary = run_batch(
                items,
                self.client,
                self.model,
                output=self.state,
                workers=self.workers,
                params=self.params if params is None else params,
                on_progress=progress,
            )
            self.requests += summary.done
        return self._collect(stage, level, bases)

    def _collect(self, stage: str, level: int, bases: List[str]) -> List[Dict[str, Any]]:
        after = self._read()
        found: List[Dict[str, Any]] = []
        failures: List[str] = []
        for base in bases:
            good = [r for r in after.get(base, []) if r.get("error") is None]
            if good:
                found.append(good[-1])
                continue
            error = (after.get(base) or [{}])[-1].get("error") or {}
            failures.append(f"{base}: {error.get('type')}: {error.get('message')}")
        if failures:
            raise LMStrixError(
                f"{len(failures)} of {len(bases)} {stage} requests (level {level}) failed, "
                f"first {failures[0]}; run again with the same state file ({self.state}) "
                "to retry only those"
            )
        return found


def calibrate(runner: StateRunner, budget: Budget, text: str) -> Budget:
    """``budget`` with its counter scaled to ``text``'s real tokens, measured once.

    One request sends the start of the document (at most a third of the room in
    characters, so it fits even at three tokens a character) with ``max_tokens=1``; the
    server's ``usage.prompt_tokens`` against the estimate gives the factor (plus 5%).
    The counter is never scaled down; a text that fits one request twice over is not
    measured. The answer is kept in the state like the others,
    so a resumed run cuts the document the same way without asking again.
    """
    room = budget.room("")
    sample = text[: max(1, room // 3)]
    if not sample.strip() or 2 * budget.count(text) <= room:
        return budget  # nothing to measure, or a text that would fit twice over
    record = runner.records("calibrate", 0, [sample], {"max_tokens": 1})[0]
    usage = record.get("usage") or {}
    real = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    estimate = budget.count(sample)
    if not isinstance(real, int) or real <= 0 or estimate <= 0:
        return budget  # the server does not report usage: the estimate stands
    factor = real / estimate * 1.05
    if factor <= 1.0:
        return budget
    log.info("%s: the document takes %.2fx the estimated tokens", runner.model, factor)
    base = budget.count

    def scaled(part: str) -> int:
        return math.ceil(base(part) * factor)

    return Budget(budget.working_context, budget.max_tokens, scaled)


def open_run(
    client: Any,
    model: str,
    budget: Budget,
    what: Tuple[Any, ...],
    *,
    state: Union[str, os.PathLike[str], None],
    workers: Optional[int],
    params: Optional[Mapping[str, Any]],
    on_progress: Optional[ProgressCallback],
) -> StateRunner:
    """The runner of one summarize or ask call: ``what`` (the call's kind, the document
    and its settings) and the budget name the run in the state file."""
    body = {"max_tokens": budget.max_tokens, **dict(params or {})}
    run = digest(*what, model, budget.working_context, budget.max_tokens)
    path = None if state is None else os.fspath(state)
    return StateRunner(
        client, model, run=run, state=path, workers=workers, params=body, on_progress=on_progress
    )


def suffix(instructions: Optional[str]) -> str:
    """The caller's instructions as the end of a prompt ("" for none)."""
    return f"\n\n{instructions.strip()}" if instructions and instructions.strip() else ""


def group(parts: List[str], room: int, count: TokenCounter) -> List[str]:
    """Pack ``parts``, in order, into as few texts as fit ``room`` tokens each.

    A group's tokens are counted as the sum of its parts' and separators' (never less
    than the joined text's). A part that alone is over ``room`` is cut by the splitter;
    every part's text is in exactly one group, in order.
    """
    groups: List[str] = []
    current: List[str] = []
    used = 0
    gap = count(SEPARATOR)
    for part in parts:
        tokens = count(part)
        if current and used + gap + tokens > room:
            groups.append(SEPARATOR.join(current))
            current, used = [], 0
        if tokens > room:
            groups.extend(c.text for c in split_text(part, max_tokens=room, count_tokens=count))
            continue
        used += tokens + (gap if current else 0)
        current.append(part)
    if current:
        groups.append(SEPARATOR.join(current))
    return groups


def reduce_all(
    runner: StateRunner,
    budget: Budget,
    parts: List[str],
    template: str,
    render: Callable[[str], str],
) -> Tuple[str, List[List[str]]]:
    """Reduce ``parts`` with prompts ``render(group)`` until one text is left.

    ``template`` is the prompt without its text (for the budget). Returns the final
    text and every level's texts (``parts`` first).

    Raises:
        ConfigError: the texts do not shrink (the answers are too long for the context).
    """
    levels = [list(parts)]
    room = budget.room(template)
    level = 1
    while len(parts) > 1:
        groups = group(parts, room, budget.count)
        if len(groups) >= len(parts):
            raise ConfigError(
                f"the partial results do not shrink: {len(parts)} texts need {len(groups)} "
                f"requests of {room:,} tokens each; lower max_tokens ({budget.max_tokens:,}) "
                "or use a model with a larger tested working context"
            )
        parts = runner.run("reduce", level, [render(g) for g in groups])
        levels.append(list(parts))
        level += 1
    return (parts[0] if parts else ""), levels


def check_room(budget: Budget, room: int, what: str) -> None:
    """Refuse a budget that leaves no room for two answers in one reduce prompt."""
    if room < 2 * budget.max_tokens:
        raise ConfigError(
            f"max_tokens={budget.max_tokens:,} leaves {max(room, 0):,} tokens for the text "
            f"of one {what} request in a working context of {budget.working_context:,}: "
            f"two answers must fit in one request; use max_tokens <= "
            f"{max(1, (budget.working_context - TEMPLATE_TOKENS) // 3):,}"
        )
