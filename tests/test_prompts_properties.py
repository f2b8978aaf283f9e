"""Property-based tests for lmstrix.prompts: random templates and libraries, bounded work."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstrix import errors
from lmstrix.prompts import PromptLibrary, TemplateSyntaxError, escape, parse_assignments, render
from lmstrix.prompts._parse import NAME_RE, Placeholder, parse

SETTINGS = settings(max_examples=150, deadline=None)

# A small name space so that random entries often refer to each other, and to themselves.
ENTRY_NAMES = ["a", "b", "c", "d"]
ALL_NAMES = [*ENTRY_NAMES, "t", "t.x", "t.y", "l", "l.0", "l.1", "v", "w", "nope", "a.x"]

plain_text = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=8)
placeholder = st.builds(
    lambda before, name, after: "{{" + before + name + after + "}}",
    st.sampled_from(["", " ", "\t", "\n "]),
    st.sampled_from(ALL_NAMES),
    st.sampled_from(["", " ", "  "]),
)
junk = st.sampled_from(["{{", "}}", "{", "}", "{{{{", "{{ a b }}", "{{}}", "{{a..b}}", "{{{a}}}"])
template = st.lists(
    st.one_of(plain_text, placeholder, placeholder, placeholder, junk), max_size=8
).map("".join)
clean_template = st.lists(st.one_of(plain_text, placeholder), max_size=8).map("".join)

scalar = st.one_of(
    st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=5), st.none()
)


def libraries(texts: Any, *, full: bool = False) -> Any:
    """Random libraries over ENTRY_NAMES plus a table ``t`` and a list ``l``.

    With ``full`` every entry name is present, so random references mostly hit entries
    and loops (self- and mutual references) are common.
    """
    entries = {
        name: st.one_of(texts, texts, scalar.filter(lambda v: v is not None))
        for name in ENTRY_NAMES
    }
    extra = {
        "t": st.fixed_dictionaries({}, optional={"x": texts, "y": texts}),
        "l": st.lists(texts, max_size=2),
    }
    if full:
        return st.fixed_dictionaries({**entries, **extra})
    return st.fixed_dictionaries({}, optional={**entries, **extra})


variables = st.dictionaries(
    st.sampled_from(["v", "w", "a", "b", "t", "l"]),
    st.one_of(scalar, st.lists(st.text(max_size=3), max_size=2), st.just({"x": "X"})),
    max_size=3,
)


@SETTINGS
@given(
    template,
    libraries(st.one_of(clean_template, clean_template, template)),
    variables,
    st.booleans(),
)
def test_random_input_raises_only_template_errors(
    text: str, library: Dict[str, Any], values: Dict[str, Any], strict: bool
) -> None:
    try:
        result = render(text, values, library=library, strict=strict)
    except errors.TemplateError:
        return
    assert isinstance(result, str)


any_name = st.one_of(
    st.from_regex(NAME_RE, fullmatch=True), st.sampled_from(["a", "a.b", "a.0", "b.a.0", "b.1"])
)
any_key = st.one_of(st.text(max_size=3), st.sampled_from(["a", "b", "0"]))
nested_values = st.recursive(
    st.one_of(scalar, st.binary(max_size=2), st.dates()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(any_key, inner, max_size=3)
    ),
    max_leaves=8,
)


@SETTINGS
@given(
    st.lists(st.one_of(plain_text, any_name.map(lambda n: "{{" + n + "}}")), max_size=6),
    st.dictionaries(any_key, nested_values, max_size=4),
    st.booleans(),
)
def test_any_names_and_any_values_raise_only_template_errors(
    parts: List[str], values: Dict[str, Any], strict: bool
) -> None:
    for library in ({}, values):
        try:
            result = render("".join(parts), values, library=library, strict=strict)
        except errors.TemplateError:
            continue
        assert isinstance(result, str)


@SETTINGS
@given(libraries(clean_template, full=True), variables, st.sampled_from([*ENTRY_NAMES, "t.x", "l"]))
def test_random_library_render_by_name(
    library: Dict[str, Any], values: Dict[str, Any], name: str
) -> None:
    lib = PromptLibrary.from_dict(library)
    try:
        assert isinstance(lib.render(name, values, strict=False), str)
    except errors.TemplateCycleError as exc:
        _assert_real_cycle(lib, exc.cycle)
    except errors.TemplateError:
        pass


def _assert_real_cycle(lib: PromptLibrary, cycle: Tuple[str, ...]) -> None:
    assert len(cycle) >= 2
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for here, there in zip(cycle, cycle[1:]):
        value = lib.get(here)
        if isinstance(value, list):
            assert there.startswith(here + ".")
        else:
            names = {p.name for p in parse(value) if isinstance(p, Placeholder)}
            assert there in names


@SETTINGS
@given(st.text().filter(lambda t: "{{" not in t), libraries(clean_template), variables)
def test_text_without_placeholders_is_unchanged(
    text: str, library: Dict[str, Any], values: Dict[str, Any]
) -> None:
    assert render(text, values, library=library) == text


@SETTINGS
@given(st.text())
def test_escape_round_trips_any_text(text: str) -> None:
    assert render(escape(text)) == text
    assert render(escape(text), strict=False) == text


@SETTINGS
@given(st.text(), libraries(clean_template))
def test_variable_values_are_inserted_literally(value: str, library: Dict[str, Any]) -> None:
    library = {**library, "e": "[{{v}}]"}
    assert render("{{v}}", {"v": value}, library=library, strict=False) == value
    assert render("{{ e }}", {"v": value}, library=library, strict=False) == f"[{value}]"


@SETTINGS
@given(clean_template)
def test_strict_false_with_nothing_known_is_the_identity(text: str) -> None:
    assert render(text, strict=False) == text


@SETTINGS
@given(st.lists(st.one_of(plain_text, placeholder), max_size=8))
def test_strict_lists_every_missing_name_in_order(parts: List[str]) -> None:
    text = "".join(parts)
    names = [p.name for p in parse(text) if isinstance(p, Placeholder)]
    expected = list(dict.fromkeys(names))
    if not expected:
        assert render(text) == text
        return
    with pytest.raises(errors.MissingVariableError) as info:
        render(text)
    assert list(info.value.missing) == expected


@SETTINGS
@given(
    plain_text, st.text(alphabet="ab\n ", max_size=20), st.sampled_from(["{{x", "{{}}", "{{a b}}"])
)
def test_syntax_errors_point_at_the_placeholder(before: str, prefix: str, bad: str) -> None:
    text = before + prefix + bad
    offset = len(before) + len(prefix)
    with pytest.raises(TemplateSyntaxError) as info:
        render(text, strict=False)
    assert info.value.lineno == text.count("\n", 0, offset) + 1
    assert info.value.colno == offset - text.rfind("\n", 0, offset)


# A reference model: acyclic libraries (entry i names only entries after it) rendered
# by plain recursion, compared with the real renderer.
Token = Tuple[bool, str]  # (is_name, text)


@st.composite
def acyclic_case(draw: Any) -> Tuple[List[List[Token]], List[Token], Dict[str, str]]:
    count = draw(st.integers(min_value=1, max_value=6))
    entries: List[List[Token]] = []
    for i in range(count):
        later = [f"e{j}" for j in range(i + 1, count)] + ["v", "w", "x"]
        token = st.one_of(
            plain_text.map(lambda s: (False, s)), st.sampled_from(later).map(lambda n: (True, n))
        )
        entries.append(draw(st.lists(token, max_size=5)))
    top = [f"e{j}" for j in range(count)] + ["v", "w", "x"]
    template_tokens = draw(
        st.lists(
            st.one_of(
                plain_text.map(lambda s: (False, s)), st.sampled_from(top).map(lambda n: (True, n))
            ),
            max_size=6,
        )
    )
    names = st.sampled_from(["v", "w", *(f"e{j}" for j in range(count))])
    values = draw(st.dictionaries(names, st.text(max_size=4), max_size=3))
    return entries, template_tokens, values


def _text(tokens: List[Token]) -> str:
    return "".join("{{" + t + "}}" if is_name else t for is_name, t in tokens)


def _model(tokens: List[Token], lib: Dict[str, List[Token]], values: Dict[str, str]) -> str:
    out = []
    for is_name, text in tokens:
        if not is_name:
            out.append(text)
        elif text in values:
            out.append(values[text])
        elif text in lib:
            out.append(_model(lib[text], lib, values))
        else:
            out.append("{{" + text + "}}")
    return "".join(out)


@SETTINGS
@given(acyclic_case())
def test_matches_a_naive_recursive_model(
    case: Tuple[List[List[Token]], List[Token], Dict[str, str]],
) -> None:
    entries, tokens, values = case
    lib = {f"e{i}": toks for i, toks in enumerate(entries)}
    library = PromptLibrary.from_dict({name: _text(toks) for name, toks in lib.items()})
    expected = _model(tokens, lib, values)
    assert render(_text(tokens), values, library=library, strict=False) == expected


@SETTINGS
@given(
    st.dictionaries(
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map(".".join),
        st.text(max_size=4),
        max_size=5,
    )
)
def test_parse_assignments_round_trip(pairs: Dict[str, str]) -> None:
    try:
        values = parse_assignments(f"{k}={v}" for k, v in pairs.items())
    except errors.TemplateError:
        return  # a name was used both as a value and as a table
    for name, value in pairs.items():
        assert render("{{" + name + "}}", values) == value
