"""Parquet files and Hugging Face datasets as batch input and output (extra ``[datasets]``).

- Input: :func:`read_parquet` streams a ``.parquet`` file one record batch at a time
  (``ParquetFile.iter_batches``); :func:`read_dataset` a dataset saved with
  ``save_to_disk`` (memory-mapped) or one from the Hugging Face hub, streamed. Rows
  without an ``id`` get their row number. Nothing is loaded whole. :func:`read_items`
  takes a name (``x.parquet``, ``hf:PATH``, ``hf:NAME[:SPLIT]``).
- Output: Parquet cannot be appended to, and a file cut by a crash has no footer. So
  :class:`ColumnarOutput` (``output=`` of :func:`lmstrix.batch.run_batch`) has the batch
  write its crash-safe JSON Lines journal beside the target (``<output>.jsonl``), which
  is what a resumed run reads; the Parquet file (or the saved dataset, for ``hf:DIR``) is
  written from the journal, a row group at a time, when the run ends, also when Ctrl-C
  or an error stops it. A killed run leaves the journal; the next run resumes from it
  and writes the file.

``lmstrix batch`` uses these for such names (the CLI imports this module by name only
when one is given). ``pyarrow`` is imported here; ``datasets`` only for ``hf:`` names.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Iterator, List

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ConfigError

__all__ = [
    "DATASET_PREFIX",
    "ColumnarOutput",
    "is_columnar",
    "read_dataset",
    "read_items",
    "read_parquet",
    "write_dataset",
    "write_parquet",
]

DATASET_PREFIX = "hf:"
JOURNAL_SUFFIX = ".jsonl"
ROWS_PER_GROUP = 10_000
_EXTRA = "pip install 'lmstrix[datasets]'"

# The columns of a batch record with a fixed type; any other field is a JSON string.
_FIXED = {
    "id": "string",
    "model": "string",
    "output": "string",
    "finish_reason": "string",
    "error": "string",
    "started_at": "string",
    "finished_at": "string",
    "seconds": "float64",
    "attempts": "int64",
}
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def is_columnar(name: str) -> bool:
    """True for a Parquet file or an ``hf:`` dataset."""
    return name.startswith(DATASET_PREFIX) or name.lower().endswith(".parquet")


def _hf() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(f"Hugging Face datasets need the datasets package: {_EXTRA}") from exc
    return datasets


# ---------------------------------------------------------------------------- input


def read_items(name: str, *, batch_size: int = 1024) -> Iterator[Dict[str, Any]]:
    """The rows of a Parquet file (``x.parquet``) or a dataset (``hf:...``) as items."""
    if name.startswith(DATASET_PREFIX):
        return read_dataset(name[len(DATASET_PREFIX) :])
    return read_parquet(name, batch_size=batch_size)


def read_parquet(path: str, *, batch_size: int = 1024) -> Iterator[Dict[str, Any]]:
    """Stream the rows of a Parquet file, ``batch_size`` rows in memory at a time.

    Raises:
        ConfigError: the file cannot be read.
    """
    try:
        handle = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # ArrowInvalid is a ValueError
        raise ConfigError(f"cannot read the Parquet file {path}: {exc}") from exc
    return _numbered(_batches(handle, batch_size))


def _batches(handle: Any, batch_size: int) -> Iterator[Dict[str, Any]]:
    with handle:
        for batch in handle.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()


def read_dataset(spec: str) -> Iterator[Dict[str, Any]]:
    """Stream a dataset: a folder saved with ``save_to_disk``, else ``NAME[:SPLIT]`` from
    the hub (split ``train`` by default), in streaming mode.

    Raises:
        ConfigError: a folder with several splits, or a dataset that cannot be opened.
    """
    datasets = _hf()
    if os.path.isdir(spec):
        found = datasets.load_from_disk(spec)
        if isinstance(found, datasets.DatasetDict):
            first = next(iter(found))
            raise ConfigError(
                f"{spec} holds several splits ({', '.join(found)}): give one, as "
                f"hf:{os.path.join(spec, first)}"
            )
        return _numbered(iter(found))
    name, _, split = spec.partition(":")
    try:
        return _numbered(iter(datasets.load_dataset(name, split=split or "train", streaming=True)))
    except Exception as exc:  # the hub library raises many kinds
        raise ConfigError(f"cannot open the dataset {name!r}: {exc}") from exc


def _numbered(rows: Iterator[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    for number, row in enumerate(rows, 1):
        yield row if row.get("id") is not None else {**row, "id": number}


# ---------------------------------------------------------------------------- output


class ColumnarOutput:
    """A batch output in Parquet (``x.parquet``) or as a saved dataset (``hf:DIR``).

    ``journal`` is the JSON Lines file the batch writes (and resumes from);
    :meth:`finish` writes the target from it. Pass it as ``run_batch(..., output=...)``.
    """

    def __init__(self, name: str) -> None:
        if not is_columnar(name):
            raise ConfigError(f"{name} is neither a .parquet file nor an hf: dataset folder")
        self.name = name
        if name.startswith(DATASET_PREFIX):
            _hf()  # missing: say so before the batch starts
            self.target = name[len(DATASET_PREFIX) :].rstrip("/\\")
        else:
            self.target = name
        self.journal = self.target + JOURNAL_SUFFIX

    def __repr__(self) -> str:
        return f"ColumnarOutput({self.name!r})"

    def finish(self) -> int:
        """Write the target from the journal; returns the row count (0: nothing yet)."""
        if not os.path.exists(self.journal):
            return 0
        if self.name.startswith(DATASET_PREFIX):
            return write_dataset(self.journal, self.target)
        return write_parquet(self.journal, self.target)


def _schema() -> pa.Schema:
    fields = [pa.field(name, getattr(pa, kind)()) for name, kind in _FIXED.items()]
    fields.insert(4, pa.field("usage", pa.struct([(k, pa.int64()) for k in _USAGE])))
    return pa.schema(fields)


def _row(record: Dict[str, Any], extra: List[str]) -> Dict[str, Any]:
    row = {name: record.get(name) for name in _FIXED}
    row["id"] = None if row["id"] is None else str(row["id"])
    usage = record.get("usage")
    row["usage"] = {k: usage.get(k) for k in _USAGE} if isinstance(usage, dict) else None
    for name in extra:
        value = record.get(name)
        row[name] = None if value is None else json.dumps(value, ensure_ascii=False)
    return row


def write_parquet(journal: str, path: str, *, rows_per_group: int = ROWS_PER_GROUP) -> int:
    """Write the records of the JSON Lines ``journal`` to the Parquet file ``path``, a
    row group at a time (atomically: a temporary file renamed). Returns the row count.

    Fields beyond the batch record's own (``stats``, and any other) are JSON strings.
    """
    extra = _extra_fields(journal)
    schema = _schema()
    for name in extra:
        schema = schema.append(pa.field(name, pa.string()))
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".lmstrix-", suffix=".parquet", dir=folder)
    os.close(fd)
    count = 0
    try:
        with pq.ParquetWriter(temporary, schema) as writer:
            for group in _groups(journal, rows_per_group):
                rows = [_row(record, extra) for record in group]
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                count += len(rows)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return count


def write_dataset(journal: str, target: str) -> int:
    """Save the records of ``journal`` as a Hugging Face dataset in the folder ``target``
    (``datasets.load_from_disk`` reads it back). Returns the row count."""
    datasets = _hf()
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(target))) as work:
        staged = os.path.join(work, "records.parquet")
        count = write_parquet(journal, staged)
        found = datasets.Dataset.from_parquet(staged, cache_dir=os.path.join(work, "cache"))
        found.save_to_disk(target)
    return count


def _extra_fields(journal: str) -> List[str]:
    names: Dict[str, None] = {}
    for group in _groups(journal, ROWS_PER_GROUP):
        for record in group:
            for name in record:
                if name not in _FIXED and name != "usage":
                    names.setdefault(name, None)
    return list(names)


def _groups(journal: str, size: int) -> Iterator[List[Dict[str, Any]]]:
    group: List[Dict[str, Any]] = []
    with open(journal, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line: the journal's reader cuts it off next run
            if isinstance(record, dict):
                group.append(record)
            if len(group) >= size:
                yield group
                group = []
    if group:
        yield group
