"""Run many prompts through one model with a pool of threads; resumable, crash-safe.

>>> from lmstrix.batch import read_items, run_batch      # doctest: +SKIP
>>> summary = run_batch(read_items("in.jsonl"), client, "qwen2.5-7b-instruct",
...                     output="out.jsonl", params={"temperature": 0})

Every item gets exactly one line in the JSONL output, success or failure, written by
one thread (the caller's) as one ``write()`` of a whole line. A run that is killed, or
stopped with Ctrl-C, is resumed by running it again: ids already in the output are
skipped, and a torn last line left by a crash is cut off first. Standard library only;
not imported by ``lmstrix`` itself. See ``docs/user-guide/batch.md``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Set,
    Union,
)

from .._log import logger
from ..errors import (
    ConfigError,
)
from ._calls import RateLimiter, chat, error_dict, is_fatal, now, retryable
from ._io import OutputFile, Prompter, item_key, read_items, valid_id
from ._order import order_jobs, prompt_text, resolve_order
from ._summary import BatchSummary
from ._workers import Workers

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from ..client._client import Client
    from ..prompts._render import PromptLibrary
    from ..types import Completion

__all__ = [
    "DEFAULT_WORKERS",
    "BatchProgress",
    "BatchSummary",
    "default_workers",
    "read_items",
    "run_batch",
]

log = logger(__name__)

DEFAULT_WORKERS = 4
"""Workers used when the server does not say how many parallel slots the model has."""

_POLL_S = 0.2  # how often the waiting caller thread wakes up (lets Ctrl-C in on Windows)


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands, passed to ``on_progress`` after each item.

    ``done`` counts items written in this run (``failed`` of them with an error),
    ``skipped`` items already in the output (or repeated ids in the input). ``total``
    is ``len(items)`` when the input has a length, else ``None`` until the input is
    exhausted. ``item_id`` is the item this call is about; ``status`` is ``"ok"``,
    ``"failed"`` or ``"skipped"``; ``error`` is ``"Type: message"`` for a failure.
    """

    done: int
    total: Optional[int]
    failed: int
    skipped: int
    item_id: Any = None
    error: Optional[str] = None
    status: str = "ok"
    seconds: float = 0.0


def default_workers(client: Client, model: str) -> int:
    """The parallel slots of ``model``'s loaded instances, all together, else 4.

    Looks the model up by instance id or model key in ``client.loaded_instances()``
    and adds up their ``config.parallel`` (a pool lists every server's instances, so
    its workers match its free slots); never raises.
    """
    try:
        slots = [
            inst.parallel
            for inst in client.loaded_instances()
            if model in (inst.id, inst.model_key) and inst.parallel
        ]
    except Exception as exc:  # any failure only means "the server cannot say"
        log.debug("cannot read the parallel slots of %s: %s", model, exc)
        return DEFAULT_WORKERS
    return sum(slots) if slots else DEFAULT_WORKERS


def run_batch(
    items: Iterable[Mapping[str, Any]],
    client: Client,
    model: str,
    *,
    output: Union[str, os.PathLike[str], Any],
    workers: Optional[int] = None,
    template: Optional[str] = None,
    library: Union[PromptLibrary, str, os.PathLike[str], None] = None,
    params: Optional[Mapping[str, Any]] = None,
    retries: int = 1,
    rpm: Optional[float] = None,
    on_progress: Optional[Callable[[BatchProgress], None]] = None,
    executor: Optional[Executor] = None,
    order: Optional[str] = None,
) -> BatchSummary:
    """Send every item to ``model`` with ``client.chat`` and append one line per item to ``output``.

    Each item is a mapping with an ``id`` and either ``prompt`` (text), ``messages`` (a
    chat list) or, with ``template``, the template's variables (its other fields, or a
    ``vars`` mapping). ``template`` names an entry of ``library`` (a
    :class:`~lmstrix.prompts.PromptLibrary` or the path of one); without a library it is
    the template text itself. ``params`` go into each request (``temperature``,
    ``max_tokens``...). ``workers`` defaults to :func:`default_workers`. ``retries`` is
    how many more times an item is tried after a retryable failure (connection cut,
    timeout, HTTP 429 or 5xx), on top of the client's own retries, after the pause the
    client's :class:`~lmstrix.RetryPolicy` gives. ``rpm`` caps requests
    per minute across all workers. ``on_progress`` is called in the caller's thread,
    one call at a time, after each item's line is on disk (and for each skipped item).

    ``executor`` (any :class:`concurrent.futures.Executor`) runs the calls; the
    ``workers`` threads of this process then only hand them out, retry them and write
    their lines, so the one crash-safe writer stays here. With a process or cluster
    executor (``lmstrix.integrations.dask.executor``) the client travels as its settings
    and each worker process opens its own connections.

    ``output`` is a JSON Lines path, or an object with a ``journal`` path and a
    ``finish()`` run when the batch ends (``lmstrix.integrations.datasets.ColumnarOutput``:
    Parquet or a dataset written from the journal).

    ``order="prefix"`` (the default with ``template``; ``"input"`` otherwise) reads the
    whole input first, then runs the items sorted by their rendered prompt, in
    contiguous runs per worker, so prompts sharing a prefix (a system prompt, a template
    head, a document) follow each other and the server reuses its prompt cache; the
    output is keyed by id as always. ``order="input"`` runs them as they come.

    Items whose id is already in ``output`` are skipped; a repeated id in the input is
    processed once and its repeats are skipped (logged as a warning). A failed item
    (status error, overflow, timeout) is written with its ``error`` and the batch goes
    on. Errors about the whole batch stop it and are raised, with nothing written for
    the item: authentication, an unknown model, a server that cannot be reached.

    On Ctrl-C (or any exception, including one raised by ``on_progress``) no new item is
    started, answers already received are written, requests in flight are abandoned
    (they run again on resume), and the exception is re-raised; every line in the
    output is complete.

    Raises:
        ConfigError: bad arguments, an unreadable or damaged output file, or a bad item
            (no id, nothing to send, a template variable missing).
        APIConnectionError, AuthenticationError, ModelNotFoundError: see above.
        KeyboardInterrupt: Ctrl-C; run again with the same arguments to resume.
    """
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ConfigError(f"workers must be at least 1, not {workers!r}")
    if retries < 0:
        raise ConfigError(f"retries must not be negative, not {retries!r}")
    if rpm is not None and not rpm > 0:
        raise ConfigError(f"rpm must be positive, not {rpm!r}")
    body = dict(params or {})
    clash = {"model", "messages"} & set(body)
    if clash:
        raise ConfigError(f"params must not set {', '.join(sorted(clash))}: pass them otherwise")
    prompter = Prompter(template, library)
    chosen = resolve_order(order, templated=template is not None)
    count = int(workers) if workers is not None else default_workers(client, model)
    out = OutputFile(getattr(output, "journal", output))  # a ColumnarOutput: its journal
    written = out.open()
    try:
        run = _Run(client, model, body, prompter, out, written, count, retries, rpm, on_progress)
        run.executor = executor
        run.order = chosen
        return run.go(items)
    finally:
        out.close()
        if hasattr(output, "finish"):  # Parquet or a dataset, written from the journal
            output.finish()


class _Job:
    __slots__ = ("item_id", "key", "messages")

    def __init__(self, item_id: Any, key: str, messages: List[Mapping[str, Any]]) -> None:
        self.item_id, self.key, self.messages = item_id, key, messages


class _Result:
    __slots__ = ("error", "item_id", "record")

    def __init__(self, item_id: Any, record: Dict[str, Any], error: Optional[str]) -> None:
        self.item_id, self.record, self.error = item_id, record, error


class _Fatal:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Run:
    """One run: the caller's thread reads items and writes lines; workers send requests."""

    def __init__(
        self,
        client: Client,
        model: str,
        params: Dict[str, Any],
        prompter: Prompter,
        out: OutputFile,
        written: Set[str],
        workers: int,
        retries: int,
        rpm: Optional[float],
        on_progress: Optional[Callable[[BatchProgress], None]],
    ) -> None:
        self.client, self.model, self.params = client, model, params
        self.prompter, self.out, self.on_progress = prompter, out, on_progress
        self.written = written  # keys already in the output when the run began
        self.handed: Set[str] = set()  # keys handed to the workers in this run
        self.workers, self.retries = workers, retries
        self.limiter = RateLimiter(rpm) if rpm else None
        self.executor: Optional[Executor] = None
        # The batch decides only whether a failed item is tried again; how long it
        # waits first is the client's retry policy (one backoff formula).
        self.policy = client.retry_policy
        self.stop = threading.Event()
        self.jobs: queue.Queue[Optional[List[_Job]]] = queue.Queue()
        self.order = "input"
        self.shares: List[Optional[float]] = [None, None]  # input order, run order
        self.ttfts: List[float] = []
        self.results: queue.Queue[Union[_Result, _Fatal]] = queue.Queue()
        self.total: Optional[int] = None
        self.done = self.failed = self.skipped = self.read = self.outstanding = 0
        self.started = time.perf_counter()

    # -- the caller's thread ------------------------------------------------------------

    def go(self, items: Iterable[Mapping[str, Any]]) -> BatchSummary:
        if hasattr(items, "__len__"):
            self.total = len(items)  # type: ignore[arg-type]
        workers = Workers(self._work, self.workers, self.out.path)
        # Enough queued work to keep every worker busy, and no more: memory stays
        # bounded however long the input is.
        capacity = 2 * self.workers
        source = self._blocks(items)
        exhausted = False
        try:
            while True:
                self._collect(block=False)
                if not exhausted and self.outstanding < capacity:
                    try:
                        run = next(source)
                    except StopIteration:
                        exhausted = True
                        self.total = self.read
                        continue
                    self.outstanding += len(run)
                    self.jobs.put(run)
                elif exhausted and self.outstanding == 0:
                    break
                else:
                    self._collect(block=True)
                    workers.replace_lost()
        except BaseException:
            self.stop.set()
            self._abandon()
            raise
        finally:
            for _ in workers.threads:
                self.jobs.put(None)
        for thread in workers.threads:
            thread.join()
        ttft = sum(self.ttfts) / len(self.ttfts) if self.ttfts else None
        return BatchSummary(
            self.read,
            self.done,
            self.skipped,
            self.failed,
            self._elapsed(),
            self.out.path,
            self.order,
            self.shares[1],
            self.shares[0],
            ttft,
        )

    def _blocks(self, items: Iterable[Mapping[str, Any]]) -> Iterator[List[_Job]]:
        """The jobs to hand out, one run at a time (one job each in input order)."""
        if self.order == "input":
            for item in items:
                job = self._take(item)
                if job is not None:
                    yield [job]
            return
        jobs = [job for job in map(self._take, items) if job is not None]
        texts = [prompt_text(job.messages) for job in jobs]
        runs, before, after = order_jobs(jobs, texts, self.workers)
        self.shares = [before, after]
        log.info(
            "prefix order: %.0f%% of prompt text shared (input order %.0f%%)",
            after * 100,
            before * 100,
        )
        yield from runs

    def _take(self, item: Mapping[str, Any]) -> Optional[_Job]:
        self.read += 1
        where = f"batch item #{self.read}"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} is a {type(item).__name__}, not a mapping")
        item_id = item.get("id")
        if not valid_id(item_id):
            raise ConfigError(f"{where}: 'id' must be a non-empty string or an integer")
        key = item_key(item_id)
        if key in self.written or key in self.handed:
            if key in self.handed:
                log.warning("%s: id %r appeared before in the input; skipped", where, item_id)
            self.skipped += 1
            self._report(item_id, None, "skipped")
            return None
        messages = self.prompter.messages(item, f"{where} (id {item_id!r})")
        self.handed.add(key)
        return _Job(item_id, key, messages)

    def _collect(self, *, block: bool) -> None:
        """Write every answer that is ready (waiting a little for one when ``block``)."""
        ready: List[_Result] = []
        try:
            got = self.results.get(timeout=_POLL_S) if block else self.results.get_nowait()
            while True:
                if isinstance(got, _Fatal):
                    self._flush(ready)
                    raise got.exc
                ready.append(got)
                got = self.results.get_nowait()
        except queue.Empty:
            pass
        self._flush(ready)

    def _flush(self, ready: List[_Result]) -> None:
        if not ready:
            return
        for result in ready:
            self.out.write(result.record)
            self.outstanding -= 1
        self.out.sync()  # one fsync per group of lines written together
        for result in ready:
            self.done += 1
            self.failed += result.error is not None
            ttft = (result.record.get("stats") or {}).get("time_to_first_token_s")
            if isinstance(ttft, (int, float)):
                self.ttfts.append(float(ttft))
            self._report(result.item_id, result.error, "failed" if result.error else "ok")

    def _report(self, item_id: Any, error: Optional[str], status: str) -> None:
        if self.on_progress is not None:
            self.on_progress(
                BatchProgress(
                    self.done,
                    self.total,
                    self.failed,
                    self.skipped,
                    item_id,
                    error,
                    status,
                    self._elapsed(),
                )
            )

    def _abandon(self) -> None:
        """After an interrupt: drop queued jobs, write answers already received."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.jobs.get_nowait()
        ready: List[_Result] = []
        with contextlib.suppress(queue.Empty):
            while True:
                got = self.results.get_nowait()
                if isinstance(got, _Result):
                    ready.append(got)
        self.on_progress = None  # the caller is on its way out
        with contextlib.suppress(Exception):
            self._flush(ready)

    def _elapsed(self) -> float:
        return time.perf_counter() - self.started

    # -- worker threads -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            run = self.jobs.get()
            if run is None:
                return
            for job in run:  # a run of neighbours in prefix order, back to back
                if self.stop.is_set():
                    break
                result = self._attempt(job)
                if result is not None:
                    self.results.put(result)

    def _attempt(self, job: _Job) -> Union[_Result, _Fatal, None]:
        started_at, started = "", 0.0
        attempts = 0
        policy = self.policy
        while True:
            if self.limiter is not None and not self.limiter.wait(self.stop):
                return None
            if not attempts:  # timings start when the first request goes out
                started_at, started = now(), time.perf_counter()
            attempts += 1
            try:
                done = self._chat(job.messages)
            except Exception as exc:  # a worker must report every failure, never die
                if is_fatal(exc):
                    return _Fatal(exc)
                if attempts <= self.retries and retryable(exc):
                    pause = policy.backoff_s()
                    policy = replace(policy, retries_done=policy.retries_done + 1)
                    log.info("batch item %r: %s; trying again in %.1f s", job.item_id, exc, pause)
                    if self.stop.wait(pause):
                        return None
                    continue
                error = error_dict(exc)
                record = self._record(job, None, error, started_at, started, attempts)
                return _Result(job.item_id, record, f"{error['type']}: {error['message']}")
            return _Result(
                job.item_id, self._record(job, done, None, started_at, started, attempts), None
            )

    def _chat(self, messages: List[Mapping[str, Any]]) -> Completion:
        if self.executor is None:
            return self.client.chat(self.model, messages, **self.params)
        future = self.executor.submit(chat, self.client, self.model, messages, self.params)
        return future.result()

    def _record(
        self,
        job: _Job,
        done: Any,
        error: Optional[Dict[str, Any]],
        started_at: str,
        started: float,
        attempts: int,
    ) -> Dict[str, Any]:
        return {
            "id": job.item_id,
            "model": self.model,
            "output": None if done is None else done.text,
            "finish_reason": None if done is None else done.finish_reason,
            "usage": None if done is None else done.usage.to_dict(),
            "stats": None if done is None else done.stats.to_dict(),
            "error": error,
            "started_at": started_at,
            "finished_at": now(),
            "seconds": round(time.perf_counter() - started, 4),
            "attempts": attempts,
        }
