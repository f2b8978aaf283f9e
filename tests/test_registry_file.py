"""The registry file on disk: schema versions, unknown keys, corruption and recovery."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
from _registry_helpers import SERVER, FakeClient
from _registry_helpers import snapshot as _snapshot

from lmstrix.errors import RegistryCorruptError, RegistryError
from lmstrix.registry import ModelRecord, ProbeRecord, Registry

# -- schema ----------------------------------------------------------------------------


def test_newer_schema_is_refused_and_left_untouched(reg_path: Path, reg: Registry) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text('{"schema": 2, "servers": {}}\n', "utf-8")
    before = _snapshot(reg_path)
    with pytest.raises(RegistryError, match=r"schema 2.*upgrade lmstrix") as info:
        reg.records()
    assert not isinstance(info.value, RegistryCorruptError)
    with pytest.raises(RegistryError, match="upgrade lmstrix"):
        reg.upsert(ModelRecord("m"))
    assert _snapshot(reg_path) == before
    assert not reg.backup_path.exists()


def test_schema_0_is_migrated(reg_path: Path, reg: Registry) -> None:
    old: Dict[str, Any] = {
        "note": "kept",
        "models": {
            "a": {
                "key": "a",
                "server": "HTTP://Other:1/",
                "status": "done",
                "working_context": 900,
            },
            "b": {"status": "untested", "server": "not a url ftp://"},
            "c": {},
        },
    }
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text(json.dumps(old), "utf-8")
    original = reg_path.read_bytes()
    a = reg.get("a", server="http://other:1")
    assert a is not None
    assert (a.server, a.status, a.working_context) == ("http://other:1", "done", 900)
    assert [r.key for r in reg.records()] == ["b", "c"]
    assert reg_path.read_bytes() == original  # reading never writes
    reg.upsert(ModelRecord("d"))
    data = json.loads(reg_path.read_text("utf-8"))
    assert data["schema"] == 1
    assert data["note"] == "kept"
    assert sorted(data["servers"][SERVER]["models"]) == ["b", "c", "d"]
    assert reg.backup_path.read_bytes() == original


def test_unknown_keys_survive_at_every_level(reg_path: Path, reg: Registry) -> None:
    doc = {
        "schema": 1,
        "top_extra": [1, 2],
        "servers": {
            "http://LOCALHOST:1234/": {
                "server_extra": {"x": 1},
                "models": {"m": {"key": "WRONG", "record_extra": "y", "status": "done"}},
            }
        },
    }
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text(json.dumps(doc), "utf-8")
    record = reg.get("m")
    assert record is not None
    assert record.key == "m"  # the file's structure wins over the copy inside
    assert record.extra == {"record_extra": "y"}
    reg.upsert(ModelRecord("n"))
    data = json.loads(reg_path.read_text("utf-8"))
    assert data["top_extra"] == [1, 2]
    entry = data["servers"][SERVER]
    assert entry["server_extra"] == {"x": 1}
    assert entry["models"]["m"]["record_extra"] == "y"
    assert entry["models"]["m"]["status"] == "done"


# -- corruption ------------------------------------------------------------------------

_CORRUPT_CASES = [
    ('{\n  "schema": 1,\n  "servers": {\n    "http://a:1": {\n      "models": {,}\n', 5, 18),
    ("", 1, 1),
    ("\n\n   [1, 2]\n", 3, 4),
    ('{"schema": "one"}', 1, 2),
    ('{\n  "schema": -1\n}', 2, 3),
    ('{\n  "schema": 1,\n  "servers": []\n}\n', 3, 3),
    ('{\n  "schema": 1,\n  "servers": {\n    "http://a:1": 5\n  }\n}\n', 4, 5),
    ('{\n  "schema": 1,\n  "servers": {\n    "ftp://a": {}\n  }\n}\n', 4, 5),
    ('{"schema": 1, "servers": {"http://a:1": {"models": []}}}', 1, 42),
    (
        '{\n "schema": 1,\n "servers": {\n  "http://a:1": {\n   "models": {\n'
        '    "ok": {},\n    "bad": "text"\n   }\n  }\n }\n}\n',
        7,
        5,
    ),
    ('{\n  "models": {\n    "m": null\n  }\n}\n', 3, 5),
    ('{\n  "models": 3\n}\n', 2, 3),
    ('\n  {"servers": {}}\n', 2, 3),  # no "schema": not the old layout either
    ("{}", 1, 1),
    ('{"models": {}, "servers": {}}', 1, 1),
    (
        '{\n "schema": 1,\n "servers": {\n  "http://a:1": {\n   "models": {\n'
        '    "m": {\n     "status": "done",\n     "declared_context": "lots"\n    }\n'
        "   }\n  }\n }\n}\n",
        8,
        6,
    ),
]


@pytest.mark.parametrize(("text", "line", "col"), _CORRUPT_CASES)
def test_corrupt_file_names_line_and_column(
    reg_path: Path, reg: Registry, text: str, line: int, col: int
) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_bytes(text.encode("utf-8"))
    with pytest.raises(RegistryCorruptError) as info:
        reg.records()
    err = info.value
    assert (err.lineno, err.colno) == (line, col)
    assert err.path == str(reg_path)
    assert isinstance(err, ValueError)
    assert f"line {line}, column {col}" in str(err)
    assert str(reg_path) in str(err)


def test_file_without_schema_is_refused_not_wiped(reg_path: Path, reg: Registry) -> None:
    # A schema-1 file that lost its "schema" line used to read as schema 0 (no
    # "models": no records) and lose every record on the next write.
    doc = {"servers": {SERVER: {"models": {"m": {"status": "done", "working_context": 900}}}}}
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text(json.dumps(doc, indent=2), "utf-8")
    before = _snapshot(reg_path)
    for attempt in (reg.records, lambda: reg.upsert(ModelRecord("n"))):
        with pytest.raises(RegistryCorruptError, match="'schema' key is missing") as info:
            attempt()
        assert (info.value.lineno, info.value.colno) == (1, 1)
        assert "untouched" in str(info.value)
    assert _snapshot(reg_path) == before
    assert not reg.backup_path.exists()


@pytest.mark.parametrize(
    ("record", "field", "located"),
    [
        ('{"declared_context": "lots"}', "'declared_context' must be a whole number", 1),
        ('{\n "status": "done",\n "vanished": "no"\n}', "'vanished' must be true or false", 3),
        (
            '{\n "probes": [\n  {"kind": "load", "size": 1},\n  {"size": true}\n ]\n}',
            "probe 1: field 'size' must be a whole number",
            2,
        ),
    ],
)
def test_field_of_the_wrong_type_is_refused_naming_the_record(
    reg_path: Path, reg: Registry, record: str, field: str, located: int
) -> None:
    # It used to read as the default and be written back so, losing the value.
    text = (
        '{"schema": 1, "servers": {"http://box.lan:1234": {"models": {"ok": {}, "acme/m-7b":\n'
        + record
        + "\n}}}}\n"
    )
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text(text, "utf-8")
    before = _snapshot(reg_path)
    for attempt in (
        lambda: reg.get("ok", server="http://box.lan:1234"),
        lambda: reg.upsert(ModelRecord("n")),
    ):
        with pytest.raises(RegistryCorruptError) as info:
            attempt()
        message = str(info.value)
        assert "the record of model 'acme/m-7b' on server http://box.lan:1234: " in message
        assert field in message
        assert info.value.lineno == 1 + located
    assert _snapshot(reg_path) == before


def test_field_of_the_wrong_type_in_a_schema_0_file(reg_path: Path, reg: Registry) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text('{"models": {"m": {"server": "http://o:1", "size_bytes": "1 GB"}}}')
    with pytest.raises(
        RegistryCorruptError, match=r"model 'm' on server http://o:1: field 'size_bytes'"
    ):
        reg.records()


def test_non_utf8_file_is_corrupt(reg_path: Path, reg: Registry) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_bytes(b'{\n  "schema": 1,\n  "x": "caf\xe9"\n}\n')
    with pytest.raises(RegistryCorruptError, match="not UTF-8") as info:
        reg.get("m")
    assert (info.value.lineno, info.value.colno) == (3, 12)


def test_utf8_bom_is_accepted(reg_path: Path, reg: Registry) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_bytes(b'\xef\xbb\xbf{"schema": 1, "servers": {}}')
    assert reg.records() == []


def test_corrupt_file_is_never_touched_and_points_to_the_backup(reg: Registry) -> None:
    reg.upsert(ModelRecord("m", status="done"))
    reg.upsert(ModelRecord("n"))
    good_backup = reg.backup_path.read_bytes()
    text = reg.path.read_text("utf-8")
    broken = text.replace('"status": "done"', '"status": "done",,', 1)
    reg.path.write_text(broken, "utf-8")
    before = _snapshot(reg.path)
    backup_before = _snapshot(reg.backup_path)
    expected_line = broken[: broken.index(",,")].count("\n") + 1

    attempts: List[Callable[[], object]] = [
        lambda: reg.get("m"),
        reg.records,
        reg.servers,
        lambda: reg.upsert(ModelRecord("x")),
        lambda: reg.update("m", lambda old: ModelRecord("m")),
        lambda: reg.remove("m"),
        lambda: reg.append_probe("m", ProbeRecord("load", 1)),
        lambda: reg.sync(FakeClient(SERVER, [])),
    ]
    for attempt in attempts:
        with pytest.raises(RegistryCorruptError) as info:
            attempt()
        assert info.value.lineno == expected_line
        assert info.value.colno > 0
        message = str(info.value)
        assert str(reg.backup_path) in message
        assert "untouched" in message
        assert "copy registry.json.bak to registry.json" in message
    assert _snapshot(reg.path) == before
    assert _snapshot(reg.backup_path) == backup_before
    assert reg.backup_path.read_bytes() == good_backup
    assert sorted(p.name for p in reg.path.parent.iterdir()) == [
        "registry.json",
        "registry.json.bak",
        "registry.json.lock",
        "registry.json.lock.queue",
    ]
    # Restoring the backup, as the message says, brings the registry back.
    os.replace(str(reg.path), str(reg.path) + ".broken")
    reg.path.write_bytes(good_backup)
    record = reg.get("m")
    assert record is not None
    assert record.status == "done"


def test_corrupt_file_without_backup_says_so(reg_path: Path, reg: Registry) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_text("{oops", "utf-8")
    with pytest.raises(RegistryCorruptError, match="No backup exists"):
        reg.upsert(ModelRecord("m"))
    assert reg_path.read_text("utf-8") == "{oops"
