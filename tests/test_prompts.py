"""Tests for lmstrix.prompts: the data-driven cases in prompt_cases/, then the API edges."""

from __future__ import annotations

import datetime
import decimal
import json
import pathlib
import sys
from typing import Any, Dict, List

import pytest

import lmstrix
from lmstrix import errors
from lmstrix.prompts import PromptLibrary, TemplateSyntaxError, parse_assignments, render
from lmstrix.prompts import _files as _prompt_files
from lmstrix.prompts import _render as prompts

CASES_DIR = pathlib.Path(__file__).parent / "prompt_cases"
CASE_FILES = sorted(CASES_DIR.glob("*.json"))
ERROR_CLASSES = {
    "TemplateError": errors.TemplateError,
    "MissingVariableError": errors.MissingVariableError,
    "TemplateCycleError": errors.TemplateCycleError,
    "TemplateSyntaxError": TemplateSyntaxError,
}
HAS_TOML = _prompt_files.toml_module() is not None


def _run_case(case: Dict[str, Any]) -> str:
    variables = case.get("variables")
    if "assignments" in case:
        variables = parse_assignments(case["assignments"])
    strict = case.get("strict", True)
    library: Any = case.get("library")
    if "library_file" in case:
        library = PromptLibrary.from_file(CASES_DIR / case["library_file"])
    if "entry" in case:
        if not isinstance(library, PromptLibrary):
            library = PromptLibrary.from_dict(library)
        return library.render(case["entry"], variables, strict=strict)
    return render(case["template"], variables, library=library, strict=strict)


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_case(path: pathlib.Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case.get("description"), "every case says what it shows"
    if case.get("requires") == "toml" and not HAS_TOML:
        pytest.skip("TOML needs Python 3.11+ or tomli")
    if "error" not in case:
        assert _run_case(case) == case["expected"]
        return
    expected = case["error"]
    with pytest.raises(errors.TemplateError) as info:
        _run_case(case)
    assert type(info.value) is ERROR_CLASSES[expected["class"]], str(info.value)
    for text in expected.get("contains", []):
        assert text in str(info.value)
    for attr, value in expected.get("attrs", {}).items():
        got = getattr(info.value, attr)
        assert (list(got) if isinstance(got, tuple) else got) == value


def test_there_are_enough_cases() -> None:
    assert len(CASE_FILES) >= 30
    kinds = {
        json.loads(p.read_text(encoding="utf-8")).get("error", {}).get("class") for p in CASE_FILES
    }
    assert kinds == {None, *ERROR_CLASSES}


# -- the promises of the design, one by one ------------------------------------------------


def test_cycle_error_names_the_whole_cycle() -> None:
    lib = PromptLibrary.from_dict({"a": "{{b}}", "b": "{{c}}", "c": "{{d}}", "d": "{{b}}"})
    with pytest.raises(errors.TemplateCycleError) as info:
        lib.render("a")
    assert info.value.cycle == ("b", "c", "d", "b")
    assert str(info.value).endswith("b -> c -> d -> b")


def test_missing_variable_error_lists_every_name_with_its_place() -> None:
    lib = {"greeting": "Hello {{name}} from {{city}}", "persona": {"long": "{{name}} {{mood}}"}}
    with pytest.raises(errors.MissingVariableError) as info:
        render("{{greeting}} on {{topic}}; {{persona.long}}; {{topic}}", library=lib)
    assert info.value.missing == ("name", "city", "topic", "mood")
    assert str(info.value) == (
        "missing variables: name (in entry 'greeting', entry 'persona.long'),"
        " city (in entry 'greeting'), topic (in template), mood (in entry 'persona.long')"
    )
    assert isinstance(info.value, LookupError)


def test_variable_value_is_never_expanded() -> None:
    lib = PromptLibrary.from_dict({"secret": "the password", "ask": "Q: {{question}}"})
    hostile = "{{secret}} {{ secret }} {{ask}} {{{{ {{nope"
    assert render("{{question}}", {"question": hostile}, library=lib) == hostile
    assert lib.render("ask", {"question": hostile}) == "Q: " + hostile


def test_malformed_json_file_names_file_line_and_column(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prompts.json"
    path.write_text('{\n  "a": "x",\n  "b": tru\n}\n', encoding="utf-8")
    with pytest.raises(TemplateSyntaxError) as info:
        PromptLibrary.from_file(path)
    err = info.value
    assert (err.source, err.lineno, err.colno) == (str(path), 3, 8)
    assert str(err).startswith(f"{path}, line 3, column 8: invalid JSON")
    assert isinstance(err, ValueError)
    assert isinstance(err.__cause__, json.JSONDecodeError)


@pytest.mark.skipif(not HAS_TOML, reason="TOML needs Python 3.11+ or tomli")
def test_malformed_toml_file_names_file_line_and_column(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "prompts.toml"
    path.write_text('a = "x"\n\n[t]\nb = "y" z\n', encoding="utf-8")
    with pytest.raises(TemplateSyntaxError) as info:
        PromptLibrary.from_file(path)
    assert (info.value.lineno, info.value.colno) == (4, 9)
    assert str(info.value).startswith(f"{path}, line 4, column 9: invalid TOML: ")
    assert "(at line" not in str(info.value)


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="tomllib is in the standard library from 3.11"
)
def test_toml_uses_tomllib_on_311(tmp_path: pathlib.Path) -> None:
    import tomllib

    assert _prompt_files.toml_module() is tomllib
    path = tmp_path / "p.toml"
    path.write_text('[persona]\nshort = "terse"\n[x]\ngreet = "I am {{persona.short}}"\n', "utf-8")
    lib = PromptLibrary.from_file(str(path))
    assert lib.render("x.greet") == "I am terse"
    assert lib.path == str(path)


def test_toml_error_when_neither_tomllib_nor_tomli(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_prompt_files, "TOML_MODULES", ("lmstrix_test_no_such_toml_module",))
    path = tmp_path / "p.toml"
    path.write_text('a = "b"\n', encoding="utf-8")
    with pytest.raises(errors.TemplateError) as info:
        PromptLibrary.from_file(path)
    assert str(info.value) == (
        f"{path}: TOML needs Python 3.11+ or `pip install tomli`; or convert the file to JSON"
    )
    # JSON still works without any TOML parser.
    json_path = tmp_path / "p.json"
    json_path.write_text('{"a": "b"}', encoding="utf-8")
    assert PromptLibrary.from_file(json_path).render("a") == "b"


@pytest.mark.skipif(not HAS_TOML, reason="needs some TOML parser to stand in for tomli")
def test_toml_falls_back_to_tomli(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = _prompt_files.toml_module()
    monkeypatch.setitem(sys.modules, "tomli", stand_in)
    monkeypatch.setattr(_prompt_files, "TOML_MODULES", ("lmstrix_test_no_such_module", "tomli"))
    assert _prompt_files.toml_module() is stand_in
    path = tmp_path / "p.toml"
    path.write_text('a = "{{b}}"\nb = 2\n', encoding="utf-8")
    assert PromptLibrary.from_file(path).render("a") == "2"


def test_toml_position_parsed_from_message_without_one(tmp_path: pathlib.Path) -> None:
    class FakeError(ValueError):
        pass

    class FakeToml:
        TOMLDecodeError = FakeError

        @staticmethod
        def loads(text: str) -> Any:
            raise FakeError("something odd")

    path = tmp_path / "p.toml"
    with pytest.raises(TemplateSyntaxError) as info:
        _prompt_files._load_toml(str(path), "a\nbcd", FakeToml)  # type: ignore[arg-type]
    assert (info.value.lineno, info.value.colno) == (2, 4)
    assert str(info.value).endswith("invalid TOML: something odd")


def test_json_with_utf8_bom_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": "\xc3\xa9"}')
    assert PromptLibrary.from_file(path).render("a") == "é"


def test_file_without_suffix(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.TemplateError, match=r"format '\(no suffix\)'"):
        PromptLibrary.from_file(tmp_path / "prompts")


def test_directory_is_not_readable(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "lib.json"
    folder.mkdir()
    with pytest.raises(errors.TemplateError, match="cannot read prompt library"):
        PromptLibrary.from_file(folder)


# -- bounded work ---------------------------------------------------------------------------


def test_long_chain_needs_no_recursion() -> None:
    depth = sys.getrecursionlimit() * 3
    data = {f"e{i}": f"{{{{e{i + 1}}}}}" for i in range(depth)}
    data[f"e{depth}"] = "end"
    assert render("{{e0}}", library=data) == "end"


def test_long_cycle_is_reported_whole() -> None:
    n = 5000
    data = {f"e{i}": f"<{{{{e{(i + 1) % n}}}}}>" for i in range(n)}
    with pytest.raises(errors.TemplateCycleError) as info:
        render("{{e0}}", library=data)
    assert len(info.value.cycle) == n + 1
    assert info.value.cycle[0] == info.value.cycle[-1] == "e0"


def test_deep_tables_within_the_limit() -> None:
    data: Dict[str, Any] = {"v": "deep"}
    for _ in range(prompts.MAX_DEPTH - 1):
        data = {"t": data}
    name = ".".join(["t"] * (prompts.MAX_DEPTH - 1) + ["v"])
    assert render("{{" + name + "}}", library=data) == "deep"
    with pytest.raises(errors.TemplateError, match="nested more than"):
        PromptLibrary.from_dict({"t": data})


def test_self_containing_library_object_is_refused() -> None:
    data: Dict[str, Any] = {"a": "x"}
    data["self"] = data
    with pytest.raises(errors.TemplateError, match="nested more than"):
        PromptLibrary.from_dict(data)


def test_exponential_expansion_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "MAX_RENDERED_CHARS", 1000)
    data = {f"l{i}": f"{{{{l{i + 1}}}}}{{{{l{i + 1}}}}}" for i in range(60)}
    data["l60"] = "ha"
    with pytest.raises(errors.TemplateError, match="renders to more than 1000 characters"):
        render("{{l0}}", library=data)


def test_each_entry_is_rendered_once_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    lib = PromptLibrary.from_dict({"a": "{{b}}{{b}}{{b}}", "b": "{{c}}-{{c}}", "c": "x"})
    pushed: List[str] = []
    original = prompts._Frame.__init__

    def spy(self: Any, name: Any, pieces: Any, sep: str) -> None:
        pushed.append(name)
        original(self, name, pieces, sep)

    monkeypatch.setattr(prompts._Frame, "__init__", spy)
    assert render("{{a}} {{a}} {{b}}", library=lib) == "x-xx-xx-x x-xx-xx-x x-x"
    assert pushed == ["", "a", "b", "c"]


# -- values -------------------------------------------------------------------------------


def test_value_conversions() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing"

    variables = {
        "dec": decimal.Decimal("1.50"),
        "path": pathlib.PurePosixPath("/tmp/x"),
        "day": datetime.date(2024, 1, 2),
        "time": datetime.time(9, 30),
        "when": datetime.datetime(2024, 1, 2, 9, 30),
        "obj": Thing(),
        "tuple": ("a", 1),
    }
    template = "{{dec}} {{path}} {{day}} {{time}} {{when}} {{obj}} {{tuple}}"
    assert render(template, variables) == (
        "1.50 /tmp/x 2024-01-02 09:30:00 2024-01-02T09:30:00 thing a\n1"
    )


def test_bytes_variable_is_refused() -> None:
    with pytest.raises(errors.TemplateError, match="is bytes"):
        render("{{b}}", {"b": b"raw"})


def test_unsupported_library_value() -> None:
    with pytest.raises(errors.TemplateError, match="unsupported value of type bytes"):
        PromptLibrary.from_dict({"b": b"raw"})


def test_library_must_be_a_mapping() -> None:
    with pytest.raises(errors.TemplateError, match="must be a table of entries, not list"):
        PromptLibrary.from_dict(["a"])  # type: ignore[arg-type]


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(errors.TemplateError, match="invalid entry name 1"):
        PromptLibrary.from_dict({1: "x"})  # type: ignore[dict-item]


def test_wrong_argument_types_are_type_errors() -> None:
    with pytest.raises(TypeError, match="template must be a str"):
        render(b"{{x}}")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="variables must be a mapping"):
        render("{{x}}", [("x", 1)])  # type: ignore[arg-type]


def test_variable_lookup_through_lists_and_odd_keys() -> None:
    variables = {"rows": [{"name": "a"}, {"name": "b"}], 3: "int key"}
    assert render("{{rows.1.name}}", variables) == "b"  # type: ignore[arg-type]
    assert render("{{rows.2.name}} {{rows.x}} {{3}}", variables, strict=False) == (  # type: ignore[arg-type]
        "{{rows.2.name}} {{rows.x}} {{3}}"
    )


# -- the library object --------------------------------------------------------------------


def test_library_introspection() -> None:
    data = {"b": "{{a}}", "a": {"x": "1", "n": 2, "l": ["p", {"q": "r"}]}}
    lib = PromptLibrary.from_dict(data)
    assert lib.names() == ["a.l.0", "a.l.1.q", "a.x", "b"]
    assert all(name in lib for name in ["a", "a.n", "a.l.1", "a.l.1.q"])
    assert not any(name in lib for name in ["zzz", "a.l.2", 3])
    assert lib.get("a.n") == 2
    assert lib.get("b") == "{{a}}"
    assert lib.get("a") is data["a"]
    assert lib.get("nope", "default") == "default"
    assert lib.path is None
    assert repr(lib) == "<PromptLibrary: 4 templates>"


def test_library_repr_names_its_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"a": "x"}', encoding="utf-8")
    assert repr(PromptLibrary.from_file(path)) == f"<PromptLibrary: 1 templates from {str(path)!r}>"


def test_render_entry_without_suggestion() -> None:
    with pytest.raises(errors.MissingVariableError) as info:
        PromptLibrary.from_dict({"greeting": "hi"}).render("zzzzzz")
    assert str(info.value) == "no entry 'zzzzzz' in the prompt library"


def test_render_by_name_ignores_a_variable_of_that_name() -> None:
    lib = PromptLibrary.from_dict({"a": "A{{b}}", "b": "B"})
    assert lib.render("a", {"a": "shadow", "b": "b"}) == "Ab"


def test_public_exports() -> None:
    assert lmstrix.render is render
    assert lmstrix.PromptLibrary is PromptLibrary
    assert issubclass(TemplateSyntaxError, errors.TemplateError)
    assert prompts.ESCAPE == "{{{{"
    for name in prompts.__all__:
        assert getattr(prompts, name).__doc__ or name == "ESCAPE"


# -- parse_assignments (the CLI's --var) ---------------------------------------------------


def test_parse_assignments() -> None:
    got = parse_assignments(["a.b=1", "a.c= spaced =x", " name =Ada", "a.b=2", "e="])
    assert got == {"a": {"b": "2", "c": " spaced =x"}, "name": "Ada", "e": ""}
    assert parse_assignments([]) == {}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["novalue"], "expected NAME=VALUE, got 'novalue'"),
        (["=x"], "invalid variable name ''"),
        (["a b=1"], "invalid variable name 'a b'"),
        (["a..b=1"], "invalid variable name 'a..b'"),
        (["a=1", "a.b=2"], "'a' is given both as a value and as a table"),
        (["a.b=2", "a=1"], "'a' is given both as a value and as a table"),
        (["a.b.c=2", "a.b=1"], "'a.b' is given both as a value and as a table"),
    ],
)
def test_parse_assignments_errors(items: List[str], message: str) -> None:
    with pytest.raises(errors.TemplateError) as info:
        parse_assignments(items)
    assert message in str(info.value)


def test_list_index_needs_ascii_digits() -> None:
    variables = {"items": ["zero", "one", "two", "three"]}
    assert render("{{items.3}}", variables) == "three"
    assert render("{{items.²}} {{items.٣}}", variables, strict=False) == "{{items.²}} {{items.٣}}"


# -- the example ---------------------------------------------------------------------------

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def test_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import runpy

    runpy.run_path(str(EXAMPLES / "prompt_templates.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "You are a patient tutor." in out
    assert 'print("{{persona.short}}")' in out  # user text stays literal
    assert "missing variables: language (in entry 'review.user')" in out


@pytest.mark.skipif(not HAS_TOML, reason="TOML needs Python 3.11+ or tomli")
def test_example_libraries_agree() -> None:
    toml = PromptLibrary.from_file(EXAMPLES / "prompts.toml")
    json_lib = PromptLibrary.from_file(EXAMPLES / "prompts.json")
    assert toml.names() == json_lib.names()
    variables = {"language": "Go", "student": {"name": "Ada"}, "code": "x := 1"}
    for name in toml.names():
        assert toml.render(name, variables) == json_lib.render(name, variables)
