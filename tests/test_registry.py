"""Registry behaviour in one process: reads, writes, sync, schema, corruption, locks."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest
from _registry_helpers import SERVER, FakeClient
from _registry_helpers import snapshot as _snapshot

from lmstrix.errors import RegistryError
from lmstrix.registry import DEFAULT_SERVER, ModelRecord, ProbeRecord, Registry, SyncResult, _atomic
from lmstrix.registry._filelock import FileLock
from lmstrix.registry._records import RecordFieldError
from lmstrix.types import ModelInfo

# -- construction and reading ----------------------------------------------------------


def test_new_registry_does_no_io(reg_path: Path, reg: Registry) -> None:
    assert reg.records() == []
    assert reg.get("x") is None
    assert reg.servers() == []
    assert not reg_path.parent.exists()
    assert reg.path == reg_path
    assert reg.backup_path == reg_path.with_name("registry.json.bak")
    assert reg.lock_path == reg_path.with_name("registry.json.lock")
    assert reg.server == DEFAULT_SERVER
    assert "registry.json" in repr(reg)


def test_default_path_and_server_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMSTRIX_REGISTRY", raising=False)
    monkeypatch.setenv("LMSTRIX_HOME", str(tmp_path))
    monkeypatch.setenv("LMSTRIX_SERVER", "HTTP://Box:1234/")
    reg = Registry()
    assert reg.path == tmp_path / "registry.json"
    assert reg.server == "http://box:1234"
    assert Registry(server="other:1").server == "http://other:1"


def test_first_write_creates_directory_and_file(reg_path: Path, reg: Registry) -> None:
    stored = reg.upsert(ModelRecord("qwen/qwen3-4b", declared_context=32768))
    assert stored.server == SERVER
    assert reg_path.is_file()
    assert not reg.backup_path.exists()  # nothing good to keep yet
    data = json.loads(reg_path.read_text("utf-8"))
    assert data["schema"] == 1
    assert data["servers"][SERVER]["models"]["qwen/qwen3-4b"]["declared_context"] == 32768
    assert reg.get("qwen/qwen3-4b") == stored
    assert reg.servers() == [SERVER]
    if sys.platform != "win32":
        assert (reg_path.stat().st_mode & 0o777) == 0o600


def test_upsert_scope_record_server_wins(reg: Registry) -> None:
    reg.upsert(ModelRecord("a", server="HTTP://Other:99/"))
    reg.upsert(ModelRecord("b"), server="http://third:1")
    assert reg.get("a") is None
    assert reg.get("a", server="http://other:99") == ModelRecord("a", "http://other:99")
    assert [r.key for r in reg.records(server="http://third:1")] == ["b"]
    assert reg.servers() == ["http://other:99", "http://third:1"]


def test_upsert_needs_a_key(reg: Registry) -> None:
    with pytest.raises(ValueError, match="needs a key"):
        reg.upsert(ModelRecord(""))


def test_records_sorted_and_remove(reg: Registry) -> None:
    for key in ("c", "a", "b"):
        reg.upsert(ModelRecord(key))
    assert [r.key for r in reg.records()] == ["a", "b", "c"]
    assert reg.remove("b") is True
    assert reg.remove("b") is False
    assert reg.remove("a", server="http://elsewhere:1") is False
    assert [r.key for r in reg.records()] == ["a", "c"]


def test_backup_holds_the_previous_good_file(reg: Registry) -> None:
    reg.upsert(ModelRecord("a", status="untested"))
    first = reg.path.read_bytes()
    reg.upsert(ModelRecord("a", status="done"))
    assert reg.backup_path.read_bytes() == first
    second = reg.path.read_bytes()
    reg.upsert(ModelRecord("a", status="failed"))
    assert reg.backup_path.read_bytes() == second


def test_unchanged_write_is_skipped(reg: Registry) -> None:
    reg.upsert(ModelRecord("a"))
    before = _snapshot(reg.path)
    reg.upsert(ModelRecord("a"))
    reg.update("a", lambda old: old)
    assert _snapshot(reg.path) == before
    assert not reg.backup_path.exists()


def test_existing_file_mode_is_kept(reg: Registry) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX permissions")
    reg.upsert(ModelRecord("a"))
    os.chmod(str(reg.path), 0o644)
    reg.upsert(ModelRecord("b"))
    assert (reg.path.stat().st_mode & 0o777) == 0o644


def test_other_writers_are_seen_by_reads(reg_path: Path) -> None:
    one, two = Registry(reg_path, server=SERVER), Registry(reg_path, server=SERVER)
    assert one.get("m") is None
    two.upsert(ModelRecord("m", status="testing"))
    assert one.get("m") == ModelRecord("m", SERVER, status="testing")
    two.upsert(ModelRecord("m", status="done"))
    record = one.get("m")
    assert record is not None
    assert record.status == "done"


def test_reads_reuse_the_parse_of_an_old_unchanged_file(reg: Registry) -> None:
    reg.upsert(ModelRecord("m"))
    old = reg.path.stat().st_mtime - 3600
    os.utime(str(reg.path), (old, old))
    first = reg.get("m")
    assert reg.get("m") is first  # cached: file untouched since
    reg.upsert(ModelRecord("m", status="done"))
    again = reg.get("m")
    assert again is not None
    assert again.status == "done"


def test_unreadable_file_is_a_registry_error(reg_path: Path, reg: Registry) -> None:
    reg_path.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(RegistryError, match="cannot read"):
        reg.get("m")
    with pytest.raises(RegistryError, match="cannot read"):
        reg.upsert(ModelRecord("m"))


def test_write_failure_is_a_registry_error(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    reg.upsert(ModelRecord("m"))
    before = _snapshot(reg.path)

    def fail(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_atomic, "atomic_write", fail)
    with pytest.raises(RegistryError, match=r"cannot write the registry file .*No space"):
        reg.upsert(ModelRecord("n"))
    assert _snapshot(reg.path) == before


def test_unsavable_record_leaves_the_file_alone(reg: Registry) -> None:
    reg.upsert(ModelRecord("m"))
    before = _snapshot(reg.path)
    with pytest.raises(RegistryError, match="cannot save"):
        reg.upsert(ModelRecord("m", extra={"tags": {"a", "b"}}))  # a set is not JSON
    assert _snapshot(reg.path) == before


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (ModelRecord("m", chars_per_token=float("inf")), "chars_per_token"),
        (ModelRecord("m", declared_context="4k"), "declared_context"),  # type: ignore[arg-type]
        (ModelRecord("m", probes=(ProbeRecord("load", "big"),)), "probes[0].size"),  # type: ignore[arg-type]
    ],
)
def test_record_of_the_wrong_type_is_refused_before_it_is_written(
    reg: Registry, record: ModelRecord, field: str
) -> None:
    # The next read would refuse the file: refuse the record instead, naming it.
    reg.upsert(ModelRecord("m"))
    before = _snapshot(reg.path)
    with pytest.raises(RecordFieldError) as info:
        reg.upsert(record)
    assert info.value.field == field
    assert str(info.value).startswith(f"the record of model 'm' on server {SERVER}: ")
    assert isinstance(info.value, RegistryError) and isinstance(info.value, ValueError)
    assert _snapshot(reg.path) == before


# -- update and append_probe -----------------------------------------------------------


def test_update_creates_changes_and_deletes(reg: Registry) -> None:
    seen: List[Optional[ModelRecord]] = []

    def create(old: Optional[ModelRecord]) -> ModelRecord:
        seen.append(old)
        return ModelRecord("m", status="testing")

    stored = reg.update("m", create)
    assert seen == [None]
    assert stored == ModelRecord("m", SERVER, status="testing")
    bumped = reg.update(
        "m", lambda old: dataclasses.replace(old, working_context=5) if old else old
    )
    assert bumped is not None
    assert bumped.working_context == 5
    assert reg.update("m", lambda old: None) is None
    assert reg.get("m") is None


def test_update_rejects_records_for_another_key_or_server(reg: Registry) -> None:
    with pytest.raises(ValueError, match="record for 'n'"):
        reg.update("m", lambda old: ModelRecord("n"))
    with pytest.raises(ValueError, match="record for http://else:1"):
        reg.update("m", lambda old: ModelRecord("m", server="http://else:1"))
    stored = reg.update("m", lambda old: ModelRecord("m", server="LOCALHOST:1234/"))
    assert stored is not None
    assert stored.server == SERVER
    assert not reg.path.exists() or reg.get("n") is None


def test_failing_callback_writes_nothing(reg: Registry) -> None:
    reg.upsert(ModelRecord("m"))
    before = _snapshot(reg.path)

    def boom(old: Optional[ModelRecord]) -> ModelRecord:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        reg.update("m", boom)
    assert _snapshot(reg.path) == before
    reg.upsert(ModelRecord("n"))  # the locks were released


def test_writing_from_inside_a_callback_is_refused(reg: Registry) -> None:
    def nested(old: Optional[ModelRecord]) -> ModelRecord:
        reg.upsert(ModelRecord("other"))
        return ModelRecord("m")

    with pytest.raises(RegistryError, match="inside an update"):
        reg.update("m", nested)
    assert reg.get("other") is None


def test_append_probe_marks_then_resolves(reg: Registry) -> None:
    reg.upsert(ModelRecord("m", declared_context=65536))
    pending = ProbeRecord("load", 65536, at=1.0)
    record = reg.append_probe("m", pending, status="testing")
    assert record.status == "testing"
    assert record.pending_probes == (pending,)
    result = ProbeRecord("load", 65536, ok=False, failure="load_failed", at=2.0)
    record = reg.append_probe("m", result, load_bad=65536)
    assert record.probes == (result,)
    assert record.load_bad == 65536
    assert record.declared_context == 65536
    assert reg.get("m") == record


def test_append_probe_creates_a_missing_record(reg: Registry) -> None:
    record = reg.append_probe("new", ProbeRecord("prompt", 512, at=1.0), server="box:1")
    assert record == ModelRecord(
        "new", "http://box:1", probes=(ProbeRecord("prompt", 512, at=1.0),)
    )


def test_append_probe_rejects_unknown_changes(reg: Registry) -> None:
    with pytest.raises(TypeError, match="cannot change nonsense, vanishd"):
        reg.append_probe("m", ProbeRecord("load", 1), vanishd=True, nonsense=1)
    assert not reg.path.exists()


def test_threads_lose_no_updates(reg_path: Path) -> None:
    shared = Registry(reg_path, server=SERVER)
    errors: List[BaseException] = []

    def work(own_registry: bool) -> None:
        target = Registry(reg_path, server=SERVER) if own_registry else shared
        try:
            for _ in range(25):
                target.update(
                    "count",
                    lambda old: (
                        ModelRecord("count", working_context=(old.working_context or 0) + 1)
                        if old
                        else ModelRecord("count", working_context=1)
                    ),
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    record = shared.get("count")
    assert record is not None
    assert record.working_context == 150


# -- sync ------------------------------------------------------------------------------


def _info(key: str, **fields: Any) -> ModelInfo:
    return ModelInfo(key=key, **fields)


def test_sync_adds_refreshes_vanishes_and_unvanishes(reg: Registry) -> None:
    client = FakeClient(
        "http://LocalHost:1234/",
        [
            _info("a", display_name="A", max_context_length=4096, quantization="Q4"),
            _info("b", max_context_length=8192),
        ],
    )
    result = reg.sync(client)
    assert result == SyncResult(SERVER, ["a", "b"], [], [], [])
    a = reg.get("a")
    assert a is not None
    assert (a.status, a.display_name, a.declared_context, a.vanished) == (
        "untested",
        "A",
        4096,
        False,
    )
    assert a.last_seen is not None

    # Test results and probes are written for "a"...
    probe = ProbeRecord("prompt", 3000, ok=True, at=5.0)
    reg.append_probe("a", probe, status="done", working_context=3000, loadable_context=4096)

    # ...the server changes a's quantization, drops its display name (None: kept), drops b.
    client.models = [_info("a", max_context_length=8192, quantization="Q8"), _info("c")]
    result = reg.sync(client)
    assert (result.added, result.updated, result.vanished, result.returned) == (
        ["c"],
        ["a"],
        ["b"],
        [],
    )
    a = reg.get("a")
    b = reg.get("b")
    assert a is not None
    assert b is not None
    assert (a.quantization, a.display_name, a.declared_context) == ("Q8", "A", 8192)
    assert (a.status, a.working_context, a.loadable_context, a.probes) == (
        "done",
        3000,
        4096,
        (probe,),
    )
    assert b.vanished is True
    assert b.declared_context == 8192

    # Nothing new: b stays vanished and is not reported again; a is unchanged.
    result = reg.sync(client)
    assert (result.added, result.updated, result.vanished, result.returned) == ([], [], [], [])

    # b comes back.
    client.models.append(_info("b", max_context_length=8192))
    result = reg.sync(client)
    assert (result.updated, result.returned) == (["b"], ["b"])
    b = reg.get("b")
    assert b is not None
    assert b.vanished is False


def test_sync_never_drops_probes_of_vanished_models(reg: Registry) -> None:
    client = FakeClient(SERVER, [_info("a")])
    reg.sync(client)
    reg.append_probe("a", ProbeRecord("load", 2048, ok=True, at=1.0), load_good=2048)
    client.models = []
    assert reg.sync(client).vanished == ["a"]
    a = reg.get("a")
    assert a is not None
    assert a.vanished
    assert a.load_good == 2048
    assert len(a.probes) == 1


def test_sync_only_touches_its_own_server(reg: Registry) -> None:
    reg.upsert(ModelRecord("x", server="http://other:1", status="done"))
    reg.sync(FakeClient("http://localhost:1234/v1", [_info("a")]))
    other = reg.get("x", server="http://other:1")
    assert other is not None
    assert other.vanished is False


def test_sync_failure_leaves_the_file_alone(reg: Registry) -> None:
    reg.upsert(ModelRecord("a"))
    before = _snapshot(reg.path)

    class Broken(FakeClient):
        def list_models(self) -> List[ModelInfo]:
            raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        reg.sync(Broken(SERVER, []))
    assert _snapshot(reg.path) == before


# -- locking ---------------------------------------------------------------------------


def test_lock_timeout_names_the_lock_file(reg_path: Path) -> None:
    reg = Registry(reg_path, lock_timeout_s=0.05)
    with FileLock(reg.lock_path), pytest.raises(RegistryError) as info:
        reg.upsert(ModelRecord("m"))
    message = str(info.value)
    assert str(reg.lock_path) in message
    assert "timed out after 0.05 s" in message
    assert "another lmstrix process" in message
    assert not reg_path.exists()
    reg.upsert(ModelRecord("m"))  # free again
    assert reg.get("m") is not None


def test_thread_lock_timeout(reg_path: Path) -> None:
    reg = Registry(reg_path, lock_timeout_s=0.05)
    entered, release = threading.Event(), threading.Event()

    def slow(old: Optional[ModelRecord]) -> ModelRecord:
        entered.set()
        release.wait(10)
        return ModelRecord("slow")

    worker = threading.Thread(target=reg.update, args=("slow", slow))
    worker.start()
    try:
        assert entered.wait(10)
        with pytest.raises(RegistryError, match="another thread"):
            reg.upsert(ModelRecord("m"))
    finally:
        release.set()
        worker.join()
    assert reg.get("slow") is not None


def test_file_lock_basics(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "deep" / "x.lock", timeout_s=0.01)
    assert not lock.held
    lock.release()  # no-op
    with lock:
        assert lock.held
        with pytest.raises(RegistryError, match="already held"):
            lock.acquire()
        with pytest.raises(RegistryError, match="timed out"):
            FileLock(lock.path, timeout_s=0.01).acquire()
    assert not lock.held
    assert lock.path.exists()  # lock files are never deleted


def test_lock_file_that_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RegistryError, match="cannot open the lock file"):
        Registry(blocker / "registry.json").upsert(ModelRecord("m"))
