"""Pure parts of the registry: records, data paths, server URLs, the file format."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from pathlib import Path
from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmstrix import registry
from lmstrix.errors import ConfigError, RegistryError
from lmstrix.registry import _file as _registry_file
from lmstrix.registry import _paths
from lmstrix.registry._file import Document, dump_document, normalize_server, parse_document
from lmstrix.registry._records import (
    FAILURE_KINDS,
    IDENTITY_FIELDS,
    STATUSES,
    ModelRecord,
    ProbeRecord,
    RecordFieldError,
)
from lmstrix.types import LoadedInstance, ModelInfo

# -- records ---------------------------------------------------------------------------


def test_public_names_are_reexported() -> None:
    import lmstrix

    assert lmstrix.ModelRecord is ModelRecord
    assert lmstrix.ProbeRecord is ProbeRecord
    assert lmstrix.Registry is registry.Registry
    assert registry.RecordFieldError is RecordFieldError


def test_probe_round_trip() -> None:
    probe = ProbeRecord(
        "prompt",
        4096,
        ok=False,
        failure="wrong_answer",
        applied_context=8192,
        prompt_tokens=4001,
        seconds=1.5,
        trial=2,
        detail="answered 123",
        at=1700000000.25,
    )
    assert ProbeRecord.from_dict(probe.to_dict()) == probe
    assert ProbeRecord.from_dict(json.loads(json.dumps(probe.to_dict()))) == probe
    assert not probe.pending
    assert ProbeRecord("load", 1, at=0.0).pending


def test_probe_from_dict_ignores_unknown_keys_and_defaults_missing_ones() -> None:
    probe = ProbeRecord.from_dict(
        {"kind": "load", "size": 2048, "ok": None, "applied_context": 2048.0, "new_field": [1]}
    )
    assert probe == ProbeRecord("load", 2048, ok=None, applied_context=2048, at=0.0)
    assert ProbeRecord.from_dict({}) == ProbeRecord("", 0, at=0.0)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("size", "big", "a whole number"),
        ("size", 1.5, "a whole number"),
        ("ok", "yes", "true or false"),
        ("failure", 3, "a string"),
        ("seconds", float("nan"), "a finite number"),
        ("trial", True, "a whole number"),
        ("at", "now", "a finite number"),
        ("detail", ["x"], "a string"),
    ],
)
def test_probe_from_dict_refuses_a_field_of_the_wrong_type(
    field: str, value: Any, kind: str
) -> None:
    with pytest.raises(RecordFieldError) as info:
        ProbeRecord.from_dict({"kind": "load", "size": 1, field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"field {field!r} must be {kind} or null, not ")
    assert isinstance(info.value, RegistryError) and isinstance(info.value, ValueError)


def test_failure_kinds_and_statuses_are_documented_values() -> None:
    assert "crashed" in FAILURE_KINDS
    assert "auto_fit" in FAILURE_KINDS
    assert STATUSES == ("untested", "testing", "done", "failed")


def _full_record() -> ModelRecord:
    return ModelRecord(
        key="qwen/qwen3-4b@q4_k_m",
        server="http://localhost:1234",
        display_name="Qwen3 4B",
        type="llm",
        architecture="qwen3",
        quantization="Q4_K_M",
        format="gguf",
        size_bytes=2_500_000_000,
        declared_context=40960,
        loadable_context=32768,
        working_context=30100,
        status="done",
        failure_reason="",
        tested_at=1700000000.5,
        chars_per_token=3.9,
        load_good=32768,
        load_bad=40960,
        work_good=30100,
        work_bad=31000,
        probes=(ProbeRecord("load", 40960, ok=False, failure="load_failed", at=1.0),),
        vanished=True,
        last_seen=1700000001.0,
        extra={"future_field": {"a": [1, 2]}},
    )


def test_model_record_round_trip_keeps_unknown_keys() -> None:
    record = _full_record()
    data = record.to_dict()
    assert data["future_field"] == {"a": [1, 2]}
    assert "extra" not in data
    again = ModelRecord.from_dict(json.loads(json.dumps(data)))
    assert again == record
    assert again.to_dict() == data


def test_model_record_extra_never_shadows_known_fields() -> None:
    record = ModelRecord("m", extra={"status": "bogus", "other": 1})
    assert record.to_dict()["status"] == "untested"
    assert record.to_dict()["other"] == 1


def test_model_record_from_dict_defaults_missing_and_null_fields() -> None:
    record = ModelRecord.from_dict(
        {"status": None, "failure_reason": None, "declared_context": None, "probes": None}
    )
    assert record == ModelRecord("", status="untested")
    assert ModelRecord.from_dict({"declared_context": 4096.0}).declared_context == 4096


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": 7}, "key"),
        ({"declared_context": "lots"}, "declared_context"),
        ({"chars_per_token": float("inf")}, "chars_per_token"),
        ({"vanished": "no"}, "vanished"),
        ({"status": 1}, "status"),
        ({"display_name": {"a": 1}}, "display_name"),
        ({"probes": {"not": "a list"}}, "probes"),
        ({"probes": [{"kind": "load", "size": 1}, "junk"]}, "probes[1]"),
        ({"probes": [{"kind": "load", "size": 1}, {"size": "x"}]}, "probes[1].size"),
    ],
)
def test_model_record_from_dict_refuses_a_field_of_the_wrong_type(
    data: Dict[str, Any], field: str
) -> None:
    with pytest.raises(RecordFieldError) as info:
        ModelRecord.from_dict(data)
    assert info.value.field == field


def test_a_long_wrong_value_is_shortened_in_the_message() -> None:
    with pytest.raises(RecordFieldError) as info:
        ModelRecord.from_dict({"declared_context": "x" * 500})
    assert len(str(info.value)) < 140
    assert str(info.value).endswith("...")


def test_model_record_keeps_status_written_by_newer_versions() -> None:
    assert ModelRecord.from_dict({"key": "m", "status": "partial"}).status == "partial"


def test_from_model_info() -> None:
    info = ModelInfo(
        key="qwen/qwen3-4b",
        display_name="Qwen3 4B",
        type="llm",
        architecture="qwen3",
        quantization="Q4_K_M",
        format="gguf",
        size_bytes=123,
        max_context_length=40960,
        loaded_instances=(LoadedInstance(id="x", model_key="qwen/qwen3-4b"),),
    )
    record = ModelRecord.from_model_info(info, "http://box:1234")
    assert record.key == "qwen/qwen3-4b"
    assert record.server == "http://box:1234"
    assert record.declared_context == 40960
    assert record.status == "untested"
    for name in IDENTITY_FIELDS:
        assert getattr(record, name) == getattr(info, name)


def test_with_probe_resolves_the_pending_mark() -> None:
    record = ModelRecord("m")
    record = record.with_probe(ProbeRecord("load", 8192, at=1.0))
    record = record.with_probe(ProbeRecord("load", 4096, at=2.0))
    assert len(record.pending_probes) == 2
    done = ProbeRecord("load", 8192, ok=False, failure="load_failed", at=3.0)
    record = record.with_probe(done)
    assert record.probes == (done, ProbeRecord("load", 4096, at=2.0))
    # No matching pending probe (other trial): appended.
    other = ProbeRecord("load", 4096, ok=True, trial=1, at=4.0)
    record = record.with_probe(other)
    assert record.probes[-1] == other
    assert len(record.probes) == 3
    assert record.pending_probes == (ProbeRecord("load", 4096, at=2.0),)


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ModelRecord("m").status = "done"  # type: ignore[misc]


_finite = st.floats(allow_nan=False, allow_infinity=False)
_probes = st.builds(
    ProbeRecord,
    kind=st.sampled_from(["load", "prompt"]),
    size=st.integers(0, 10**7),
    ok=st.one_of(st.none(), st.booleans()),
    failure=st.one_of(st.none(), st.sampled_from(FAILURE_KINDS)),
    applied_context=st.one_of(st.none(), st.integers(0, 10**7)),
    prompt_tokens=st.one_of(st.none(), st.integers(0, 10**7)),
    seconds=st.one_of(st.none(), _finite),
    trial=st.integers(0, 10),
    detail=st.text(max_size=20),
    at=_finite,
)
_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), _finite, st.text(max_size=10))
_records = st.builds(
    ModelRecord,
    key=st.text(min_size=1, max_size=30),
    server=st.just("http://localhost:1234"),
    display_name=st.one_of(st.none(), st.text(max_size=20)),
    size_bytes=st.one_of(st.none(), st.integers(0, 2**40)),
    declared_context=st.one_of(st.none(), st.integers(0, 10**7)),
    working_context=st.one_of(st.none(), st.integers(0, 10**7)),
    status=st.sampled_from(STATUSES),
    chars_per_token=st.one_of(st.none(), _finite),
    probes=st.lists(_probes, max_size=4).map(tuple),
    vanished=st.booleans(),
    extra=st.dictionaries(st.text(max_size=8).map(lambda s: "x_" + s), _json_scalars, max_size=3),
)


@given(_records)
def test_record_round_trips_through_the_file_format(record: ModelRecord) -> None:
    doc = Document()
    doc.servers["http://localhost:1234"] = {record.key: record}
    data = dump_document(doc, Path("r.json"))
    again = parse_document(data, Path("r.json"), "http://localhost:1234")
    assert again.servers["http://localhost:1234"][record.key] == record
    assert json.loads(data.decode("utf-8"))["schema"] == 1
    assert dump_document(again, Path("r.json")) == data


# -- paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({"LMSTRIX_HOME": "/data/lx", "XDG_DATA_HOME": "/xdg"}, "linux", "/data/lx"),
        ({"XDG_DATA_HOME": "/xdg", "HOME": "/home/a"}, "linux", "/xdg/lmstrix"),
        ({"XDG_DATA_HOME": "relative", "HOME": "/home/a"}, "linux", "/home/a/.local/share/lmstrix"),
        ({"HOME": "/home/a"}, "freebsd13", "/home/a/.local/share/lmstrix"),
        (
            {"HOME": "/Users/a", "XDG_DATA_HOME": "/xdg"},
            "darwin",
            "/Users/a/Library/Application Support/lmstrix",
        ),
        ({"LOCALAPPDATA": "/c/Users/a/AppData/Local"}, "win32", "/c/Users/a/AppData/Local/lmstrix"),
        ({"USERPROFILE": "/c/Users/a"}, "win32", "/c/Users/a/AppData/Local/lmstrix"),
    ],
)
def test_data_home(environ: Dict[str, str], platform: str, expected: str) -> None:
    assert _paths.data_home(environ, platform=platform) == Path(expected)


def test_data_home_falls_back_to_the_real_home() -> None:
    assert _paths.data_home({}, platform="linux") == Path.home() / ".local" / "share" / "lmstrix"
    win = _paths.data_home({}, platform="win32")
    assert win == Path.home() / "AppData" / "Local" / "lmstrix"


def test_data_home_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LMSTRIX_HOME", str(tmp_path))
    monkeypatch.delenv("LMSTRIX_REGISTRY", raising=False)
    assert _paths.data_home() == tmp_path
    assert _paths.default_registry_path() == tmp_path / "registry.json"


def test_default_registry_path() -> None:
    env = {"LMSTRIX_REGISTRY": "/r/reg.json", "LMSTRIX_HOME": "/h"}
    assert _paths.default_registry_path(env) == Path("/r/reg.json")
    env = {"LMSTRIX_HOME": "/h"}
    assert _paths.default_registry_path(env) == Path("/h/registry.json")
    env = {"HOME": "/Users/a"}
    expected = Path("/Users/a/Library/Application Support/lmstrix/registry.json")
    assert _paths.default_registry_path(env, platform="darwin") == expected


def test_registry_env_var_expands_user() -> None:
    path = _paths.default_registry_path({"LMSTRIX_REGISTRY": "~/r.json"})
    assert path == Path.home() / "r.json"


# -- server URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:1234", "http://localhost:1234"),
        ("HTTP://LOCALHOST:1234/", "http://localhost:1234"),
        (" localhost:1234 ", "http://localhost:1234"),
        ("http://localhost:1234/v1/", "http://localhost:1234"),
        ("http://localhost:1234/api/v0", "http://localhost:1234"),
        ("http://localhost:1234/api/v1", "http://localhost:1234"),
        ("https://tok:secret@Example.COM/Proxy/LM/", "https://example.com/Proxy/LM"),
        ("http://[::1]:1234/?q=1#f", "http://[::1]:1234"),
        ("http://Host:01234", "http://host:1234"),
    ],
)
def test_normalize_server(url: str, expected: str) -> None:
    assert normalize_server(url) == expected


@pytest.mark.parametrize("url", ["", "   ", "ftp://host", "http://", "http://h:port"])
def test_normalize_server_rejects_non_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="server URL"):
        normalize_server(url)


def test_doctests() -> None:
    for module in (_paths, _registry_file):
        result = doctest.testmod(module)
        assert result.failed == 0
        assert result.attempted > 0


# -- the writer ------------------------------------------------------------------------


def test_dump_is_indented_sorted_utf8_with_one_probe_per_line() -> None:
    doc = Document()
    probe = ProbeRecord("load", 2048, ok=True, at=1.0)
    doc.servers["http://h:1"] = {"é/m": ModelRecord("é/m", "http://h:1", probes=(probe,) * 2)}
    text = dump_document(doc, Path("r.json")).decode("utf-8")
    assert text.startswith('{\n  "schema": 1,\n  "servers": {\n    "http://h:1": {\n')
    assert '"é/m": {' in text
    assert text.count('{"applied_context": null, "at": 1.0, "detail": ""') == 2
    assert text.endswith("}\n")
    data: Any = json.loads(text)
    assert data["servers"]["http://h:1"]["models"]["é/m"]["probes"][0]["size"] == 2048


def test_dump_matches_json_semantics_for_nested_extras() -> None:
    doc = Document()
    extra = {"x_nested": [[1, 2], {"a": [{"b": 1}]}, [], {}], "x_empty": {}}
    doc.servers["http://h:1"] = {"m": ModelRecord("m", "http://h:1", extra=extra)}
    data = json.loads(dump_document(doc, Path("r.json")))
    record = data["servers"]["http://h:1"]["models"]["m"]
    assert record["x_nested"] == extra["x_nested"]
    assert record["x_empty"] == {}


def test_dump_skips_empty_servers() -> None:
    doc = Document()
    doc.servers["http://a:1"] = {}
    doc.servers["http://b:1"] = {"m": ModelRecord("m", "http://b:1")}
    data = json.loads(dump_document(doc, Path("r.json")))
    assert list(data["servers"]) == ["http://b:1"]


def test_non_finite_numbers_cannot_be_saved() -> None:
    doc = Document()
    doc.servers["http://a:1"] = {"m": ModelRecord("m", "http://a:1", chars_per_token=math.nan)}
    with pytest.raises(RegistryError, match="cannot save"):
        dump_document(doc, Path("r.json"))


def test_non_string_keys_cannot_be_saved() -> None:
    doc = Document()
    doc.servers["http://a:1"] = {"m": ModelRecord("m", "http://a:1", extra={"x": {1: 2}})}
    with pytest.raises(RegistryError, match="keys must be strings"):
        dump_document(doc, Path("r.json"))
