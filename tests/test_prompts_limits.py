"""Prompt rendering limits: the output cap, deep entry chains, deeply nested library files."""

from __future__ import annotations

import pathlib
import tracemalloc
from typing import Dict

import pytest

import lmstrix
from lmstrix import errors
from lmstrix.prompts import PromptLibrary, render
from lmstrix.prompts import _files as _prompt_files
from lmstrix.prompts import _render as prompts

HAS_TOML = _prompt_files.toml_module() is not None


def _chain(n: int) -> Dict[str, str]:
    data = {f"a{i}": f"level {i} {{{{a{i + 1}}}}}" for i in range(1, n)}
    data[f"a{n}"] = "end"
    return data


def test_chain_16000_deep_renders_in_linear_memory() -> None:
    # a1 -> a2 -> ... -> a16000: each entry holds the next. Keeping every level's whole
    # text took 1.5 GB here (quadratic: the sum of all suffixes); a rope keeps it linear.
    n = 16_000
    lib = PromptLibrary.from_dict(_chain(n))
    expected = "".join(f"level {i} " for i in range(1, n)) + "end"
    tracemalloc.start()
    try:
        out = lib.render("a1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out == expected
    print(f"16,000-deep chain: output {len(out):,} chars, tracemalloc peak {peak:,} bytes")
    assert peak < 40 * 1024 * 1024  # about 5 MB measured; the quadratic way is 1.5 GB


def test_deep_chain_used_twice_and_from_a_template() -> None:
    data = _chain(3000)
    data["both"] = "{{a1}}|{{a1500}}"
    got = render("{{both}}/{{a2999}}", library=data)
    whole = "".join(f"level {i} " for i in range(1, 3000)) + "end"
    tail = "".join(f"level {i} " for i in range(1500, 3000)) + "end"
    assert got == f"{whole}|{tail}/level 2999 end"


def test_shared_entries_and_lists_in_a_rope() -> None:
    data = {"l": ["{{a}}", "b", "{{a}}"], "a": "{{c}}{{c}}", "c": "x", "top": "{{l}};{{l}}"}
    assert render("{{top}} {{a}} {{l.0}}", library=data) == "xx\nb\nxx;xx\nb\nxx xx xx"


def test_the_top_level_template_has_the_cap_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "MAX_RENDERED_CHARS", 1000)
    lib = {"a": "x" * 100}
    assert len(render("{{a}}" * 10, library=lib)) == 1000  # exactly the cap is fine
    with pytest.raises(errors.TemplateError, match="template renders to more than 1000"):
        render("{{a}}" * 11, library=lib)
    with pytest.raises(errors.TemplateError, match="template renders to more than 1000"):
        render("{{v}}{{v}}", {"v": "y" * 600})  # variables count as well
    with pytest.raises(errors.TemplateError, match="template renders to more than 1000"):
        render("z" * 1001)
    with pytest.raises(errors.TemplateError, match="entry 'b' renders to more than 1000"):
        PromptLibrary.from_dict({"b": "{{v}}{{v}}"}).render("b", {"v": "y" * 600})


def test_the_cap_refuses_before_building_the_text() -> None:
    # 1,000 uses of a 10-million-character entry would be 10 GB of text: the lengths
    # are added up before anything is joined, so the refusal costs no memory.
    lib = PromptLibrary.from_dict({"a": "x" * 10_000_000})
    tracemalloc.start()
    try:
        with pytest.raises(errors.TemplateError, match="template renders to more than"):
            render("{{a}}" * 1000, library=lib)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 1024 * 1024


def test_template_syntax_error_is_exported_from_lmstrix() -> None:
    assert lmstrix.TemplateSyntaxError is prompts.TemplateSyntaxError
    assert lmstrix.TemplateSyntaxError is errors.TemplateSyntaxError
    assert issubclass(lmstrix.TemplateSyntaxError, lmstrix.TemplateError)
    assert "TemplateSyntaxError" in lmstrix.__all__


def test_deeply_nested_json_library_is_a_syntax_error(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"a":' * 100_000 + '"x"' + "}" * 100_000, encoding="utf-8")
    with pytest.raises(lmstrix.TemplateSyntaxError) as info:
        PromptLibrary.from_file(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: invalid JSON: ")
    assert "nested too deeply" in str(info.value)


@pytest.mark.skipif(not HAS_TOML, reason="TOML needs Python 3.11+ or tomli")
@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 100_000 + "]" * 100_000 + "\n",
        "a = " + "{b=" * 5_000 + "1" + "}" * 5_000 + "\n",
    ],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_library_is_a_syntax_error(tmp_path: pathlib.Path, text: str) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(lmstrix.TemplateSyntaxError, match="nested too deeply") as info:
        PromptLibrary.from_file(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}: invalid TOML: ")
