"""``lmstrix batch``: many prompts through one model, resumably (``lmstrix.batch``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Union

from ._options import given
from ._output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from ._session import CliError, Session, UsageError

if TYPE_CHECKING:
    from ..prompts._render import PromptLibrary
    from ._chains import Answers

__all__ = ["cmd_batch"]


def cmd_batch(
    session: Session,
    input: str,
    *,
    output: str,
    model: Union[str, Sequence[str]],
    workers: Optional[int] = None,
    prompts: Optional[str] = None,
    template: Optional[str] = None,
    retries: Optional[int] = None,
    rpm: Optional[float] = None,
    order: Optional[str] = None,
    temperature: Optional[float] = None,
    max_tokens: Optional[int] = None,
    cache: Optional[str] = None,
    metrics_out: Optional[str] = None,
    post: Sequence[str] = (),
) -> int:
    """Run every item of ``input`` through ``model``, writing results to ``output``.

    The input is read by :func:`lmstrix.batch.read_items` (JSONL, CSV or one prompt per
    line); ``template`` names an entry of the ``prompts`` library, or is the template
    text itself without one. Exit 1 when an item failed; a run interrupted (130) or
    failed resumes when the same command runs again (items already in ``output`` are
    skipped). ``order`` is the order items run in (``prefix`` by default with a template:
    see :func:`lmstrix.batch.run_batch`). ``retries`` left ``None`` takes
    :func:`lmstrix.batch.run_batch`'s default.
    ``model`` given several times is a fallback chain; over several servers a Pool
    answers, and ``workers`` defaults to the parallel slots of all its loaded instances.
    ``cache`` is a :class:`~lmstrix.cache.ResponseCache` file for deterministic requests;
    the run's :class:`~lmstrix.observe.Metrics` are summed up on stderr at the end, in
    the JSON document (``metrics``), and written to ``metrics_out``. ``post`` names
    post-processors applied to each answer before it is written (``--post``).
    """
    from ._chains import Answers, chain_client, choice, model_keys

    keys = model_keys(model)
    try:
        batch: Any = importlib.import_module("..batch", __package__)
    except ImportError:
        raise CliError(
            "this copy of lmstrix has no lmstrix.batch module (a vendored copy may leave "
            "it out): copy batch.py and _batch_io.py into its lmstrix folder"
        ) from None
    for name, value in (("--workers", workers), ("--max-tokens", max_tokens)):
        if value is not None and value < 1:
            raise UsageError(f"{name} must be at least 1, not {value}")
    if retries is not None and retries < 0:
        raise UsageError(f"--retries must be 0 or more, not {retries}")
    if rpm is not None and rpm <= 0:
        raise UsageError(f"--rpm must be positive, not {rpm}")
    if prompts is not None and template is None:
        raise UsageError("--prompts needs --template NAME (the library entry to render)")
    library: Optional[PromptLibrary] = None
    if prompts is not None:
        from ..prompts._render import PromptLibrary

        library = PromptLibrary.from_file(prompts)
    params: Dict[str, Any] = {}
    if temperature is not None:
        params["temperature"] = temperature
    if max_tokens is not None:
        params["max_tokens"] = max_tokens

    def progress(step: Any) -> None:
        total = "?" if step.total is None else step.total
        session.progress(
            f"batch: {step.done}/{total} done, {step.failed} failed (last: {step.item_id})"
        )

    from ..errors import ModelNotFoundError
    from ._cmd_observe import cached, watched

    answers = Answers()
    columnar = _columnar(input, output)
    if columnar is not None and columnar.is_columnar(input):
        items = columnar.read_items(input)
    else:
        items = batch.read_items(input)
    target: Any = output
    if columnar is not None and columnar.is_columnar(output):
        target = columnar.ColumnarOutput(output)
        session.note(f"batch: journal {target.journal} (resumes from it); {output} at the end")
    try:
        with watched(session, metrics_out), cached(session, cache):
            from ._plugins import post_processed

            client = post_processed(session, chain_client(session, keys, answers), post)
            if workers is None and len(keys) > 1:  # the slots of the chain's first choice
                workers = batch.default_workers(client, keys[0])
            summary = batch.run_batch(
                items,
                client,
                choice(keys),
                output=target,
                workers=workers,
                template=template,
                library=library,
                params=params or None,
                rpm=rpm,
                **given(retries=retries, order=order),
                on_progress=progress,
            )
            return _report(session, summary, answers, keys, output)
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted; the results so far are in {output}, and running the same "
            "command again skips them",
            EXIT_INTERRUPTED,
        ) from None
    except ModelNotFoundError as exc:
        raise session.unknown_model(keys[0], exc) from exc


def _columnar(input: str, output: str) -> Any:
    """``lmstrix.integrations.datasets`` when the input or output is a Parquet file or an
    ``hf:`` dataset (imported by name: the one place the CLI reaches an integration),
    else ``None``."""
    names = (input, output)
    if not any(n.lower().endswith(".parquet") or n.startswith("hf:") for n in names):
        return None
    try:
        return importlib.import_module("lmstrix.integrations.datasets")
    except ImportError:
        raise UsageError(
            "Parquet files and datasets need the [datasets] extra: pip install 'lmstrix[datasets]'"
        ) from None


def _report(
    session: Session, summary: Any, answers: Answers, keys: Sequence[str], output: str
) -> int:
    """Print the batch's summary (and who answered, for a chain); the exit code."""
    fallbacks = {k: n for k, n in answers.by_model().items() if k != keys[0]}
    if fallbacks:
        counted = ", ".join(f"{n} by {k}" for k, n in fallbacks.items())
        session.note(
            f"batch: answered {counted} (the fallback chain's first choice, {keys[0]}, "
            "was skipped or failed for them)"
        )
    doc = summary.to_dict()
    if session.as_json:
        session.emit(doc)
    else:
        session.echo(
            f"batch: {doc.get('done')} done, {doc.get('skipped')} skipped, "
            f"{doc.get('failed')} failed of {doc.get('total')} "
            f"in {float(doc.get('seconds') or 0):.1f} s; results in {output}"
        )
        if doc.get("prefix_share") is not None:
            session.echo(_prefix_line(doc))
    return EXIT_FAILURE if doc.get("failed") else EXIT_OK


def _prefix_line(doc: Dict[str, Any]) -> str:
    """What prefix ordering did: the prompt text that the server's cache can reuse."""
    ttft = doc.get("mean_ttft_s")
    return (
        f"batch: prefix order: {doc['prefix_share']:.0%} of prompt text repeats the "
        f"previous prompt's head (input order: {doc['input_prefix_share']:.0%})"
        + ("" if ttft is None else f"; mean time to first token {ttft:.3f} s")
    )
