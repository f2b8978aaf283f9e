"""The core is standard library only, has no import side effects, and vendors as a folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _isolated import run_vendored

import lmstrix


def test_import_loads_only_the_standard_library(tmp_path: Path) -> None:
    code = """
        import sys, json
        before = set(sys.modules)
        import lmstrix
        import lmstrix.client, lmstrix.stream, lmstrix.transport, lmstrix.testing
        import lmstrix.registry, lmstrix.prompts, lmstrix.context
        new = sorted(set(sys.modules) - before)
        print(json.dumps(new))
    """
    result = run_vendored(code, tmp_path)
    assert result.returncode == 0, result.stderr
    new = json.loads(result.stdout)
    roots = {name.split(".")[0] for name in new} - {"lmstrix"}
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is not None:  # Python 3.10+
        assert roots <= set(stdlib) | {"_" + n for n in stdlib}, roots - set(stdlib)
    for name in new:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None) or ""
        assert "site-packages" not in path, name


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    code = """
        import sys, threading, logging
        before_threads = threading.active_count()
        import lmstrix
        assert threading.active_count() == before_threads
        assert "lmstrix.client" not in sys.modules, "heavy modules load on first use only"
        assert "http.client" not in sys.modules
        assert logging.getLogger().handlers == []
        lmstrix.Client  # lazy attribute works
        assert "lmstrix.client" in sys.modules
        print("ok")
    """
    home = tmp_path / "home"
    result = run_vendored(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lmstrix"]


def test_vendored_copy_works_without_site_packages(tmp_path: Path) -> None:
    code = """
        import lmstrix
        from lmstrix.testing import FakeLMStudio, SimModel
        model = SimModel(key="acme/chat-7b", declared_context=32768,
                         loadable_context=20000, working_context=12000)
        with FakeLMStudio(models=[model]) as fake, lmstrix.Client(fake.base_url) as c:
            keys = [m.key for m in c.list_models()]
            inst = c.load("acme/chat-7b", context_length=8192)
            answer = c.chat(inst.id, "What is 2+3?", temperature=0).text
            streamed = c.stream_chat(inst.id, "What is 2+3?", temperature=0).text()
            c.unload(inst.id)
        print(keys, inst.context_length, "5" in answer, answer == streamed)
    """
    result = run_vendored(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['acme/chat-7b'] 8192 True True"


def test_public_names_have_docstrings() -> None:
    for name in lmstrix.__all__:
        if name == "__version__":
            continue
        obj = getattr(lmstrix, name)
        assert (obj.__doc__ or "").strip(), f"lmstrix.{name} has no docstring"
    assert set(dir(lmstrix)) >= set(lmstrix.__all__)
