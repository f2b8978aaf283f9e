"""The standard-library JSON schema validator: each keyword, the paths in its messages,
local references, and the keywords it ignores."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from lmstrix.jsonschema_lite import SCHEMA_KEYWORDS, resolve_ref, schema_errors, type_name


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (3, "integer"),
        (3.0, "integer"),
        (3.5, "number"),
        ("x", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_type_names_follow_json(value: Any, name: str) -> None:
    assert type_name(value) == name


@pytest.mark.parametrize(
    ("value", "schema", "errors"),
    [
        ("x", {"type": "string"}, []),
        (1, {"type": "string"}, ["$: expected string, got integer"]),
        (2.0, {"type": "integer"}, []),
        (2.5, {"type": "integer"}, ["$: expected integer, got number"]),
        (2, {"type": "number"}, []),
        (True, {"type": "integer"}, ["$: expected integer, got boolean"]),
        (True, {"type": "boolean"}, []),
        (None, {"type": "null"}, []),
        (None, {"type": ["string", "null"]}, []),
        (4, {"type": ["string", "null"]}, ["$: expected string or null, got integer"]),
        ([], {"type": "object"}, ["$: expected object, got array"]),
        ({}, {"type": "array"}, ["$: expected array, got object"]),
    ],
)
def test_type(value: Any, schema: Dict[str, Any], errors: List[str]) -> None:
    assert schema_errors(value, schema) == errors


def test_properties_required_and_additional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    assert schema_errors({"name": "Ada", "age": 36}, schema) == []
    assert schema_errors({"name": "Ada", "age": "36", "x": 1}, schema) == [
        "$.age: expected integer, got string",
        "$: property 'x' is not allowed (additionalProperties is false)",
    ]
    assert schema_errors({}, schema) == [
        "$: missing required property 'name'",
        "$: missing required property 'age'",
    ]


def test_additional_properties_as_a_schema_and_odd_keys() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert schema_errors({"a": 1, "b c": "x"}, schema) == ['$["b c"]: expected integer, got string']


def test_enum_and_const() -> None:
    assert schema_errors("red", {"enum": ["red", "green"]}) == []
    assert schema_errors("blue", {"enum": ["red", "green"]}) == [
        '$: "blue" is not one of "red", "green"'
    ]
    assert schema_errors(1, {"enum": [True]}) == ["$: 1 is not one of true"]
    assert schema_errors(1.0, {"const": 1}) == []
    assert schema_errors([1, {"a": 2}], {"const": [1, {"a": 2}]}) == []
    assert schema_errors("v2", {"const": "v1"}) == ['$: expected "v1", got "v2"']


def test_items_and_item_counts() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3}
    assert schema_errors([1, 2], schema) == []
    assert schema_errors([1], schema) == ["$: has 1 item, fewer than minItems 2"]
    assert schema_errors([1, 2, 3, "x"], schema) == [
        "$: has 4 items, more than maxItems 3",
        "$[3]: expected integer, got string",
    ]


def test_tuple_items() -> None:
    schema = {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}
    assert schema_errors(["a", "b"], schema) == ["$[1]: expected integer, got string"]


def test_string_lengths() -> None:
    schema = {"type": "string", "minLength": 2, "maxLength": 3}
    assert schema_errors("ab", schema) == []
    assert schema_errors("a", schema) == ["$: has 1 character, fewer than minLength 2"]
    assert schema_errors("abcd", schema) == ["$: has 4 characters, more than maxLength 3"]


def test_numeric_bounds() -> None:
    schema = {"type": "number", "minimum": 0, "maximum": 10}
    assert schema_errors(10, schema) == []
    assert schema_errors(-1, schema) == ["$: -1 is less than the minimum 0"]
    assert schema_errors(10.5, schema) == ["$: 10.5 is more than the maximum 10"]
    exclusive = {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 5}
    assert schema_errors(0, exclusive) == ["$: 0 is not more than the exclusive minimum 0"]
    assert schema_errors(5, exclusive) == ["$: 5 is not less than the exclusive maximum 5"]


def test_nested_paths() -> None:
    schema = {
        "type": "object",
        "properties": {
            "people": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                    "required": ["name"],
                },
            }
        },
    }
    value = {"people": [{"name": "a", "tags": ["x"]}, {"tags": ["y", 3]}]}
    assert schema_errors(value, schema) == [
        "$.people[1]: missing required property 'name'",
        "$.people[1].tags[1]: expected string, got integer",
    ]


PYDANTIC_SCHEMA: Dict[str, Any] = {
    # What pydantic 2's model_json_schema() writes for a model with a nested model,
    # an enum, an optional field and a list.
    "$defs": {
        "Color": {"enum": ["red", "green"], "title": "Color", "type": "string"},
        "Pet": {
            "properties": {
                "name": {"title": "Name", "type": "string"},
                "color": {"$ref": "#/$defs/Color"},
            },
            "required": ["name", "color"],
            "title": "Pet",
            "type": "object",
        },
    },
    "properties": {
        "owner": {"title": "Owner", "type": "string", "description": "who"},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "pets": {"items": {"$ref": "#/$defs/Pet"}, "title": "Pets", "type": "array"},
    },
    "required": ["owner", "pets"],
    "title": "Household",
    "type": "object",
}


def test_a_pydantic_schema_with_defs_refs_and_any_of() -> None:
    good = {"owner": "Ada", "nickname": None, "pets": [{"name": "Rex", "color": "red"}]}
    assert schema_errors(good, PYDANTIC_SCHEMA) == []
    bad = {"owner": "Ada", "nickname": 3, "pets": [{"name": "Rex", "color": "blue"}]}
    assert schema_errors(bad, PYDANTIC_SCHEMA) == [
        "$.nickname: matches none of the anyOf choices ($.nickname: expected string, got integer)",
        '$.pets[0].color: "blue" is not one of "red", "green"',
    ]


def test_one_of_needs_exactly_one_match() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert schema_errors(2.5, schema) == []
    assert schema_errors(2, schema) == ["$: matches 2 of the oneOf choices, not exactly one"]
    assert schema_errors("x", schema) == [
        "$: matches none of the oneOf choices ($: expected integer, got string)"
    ]


def test_all_of_reports_every_branch() -> None:
    schema = {"allOf": [{"type": "object", "required": ["a"]}, {"required": ["b"]}]}
    assert schema_errors({}, schema) == [
        "$: missing required property 'a'",
        "$: missing required property 'b'",
    ]


def test_a_recursive_schema_through_the_root() -> None:
    tree = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "children": {"items": {"$ref": "#"}}},
    }
    value = {"name": "a", "children": [{"name": "b", "children": [{"name": 1}]}]}
    assert schema_errors(value, tree) == [
        "$.children[0].children[0].name: expected string, got integer"
    ]


def test_unknown_keywords_are_ignored() -> None:
    schema = {"type": "string", "format": "email", "pattern": "^[0-9]+$", "x-custom": 1}
    assert "format" not in SCHEMA_KEYWORDS
    assert schema_errors("not an email", schema) == []


def test_boolean_schemas() -> None:
    assert schema_errors({"a": 1}, True) == []
    assert schema_errors({"a": 1}, {}) == []
    assert schema_errors(1, False) == ["$: no value is allowed here"]
    schema = {"type": "object", "properties": {"a": False}}
    assert schema_errors({"a": 1}, schema) == ["$.a: no value is allowed here"]


def test_references() -> None:
    root = {"definitions": {"a/b": {"type": "integer"}}, "list": [{"type": "string"}]}
    assert resolve_ref("#/definitions/a~1b", root) == {"type": "integer"}
    assert resolve_ref("#/list/0", root) == {"type": "string"}
    assert resolve_ref("#", root) is root
    with pytest.raises(ValueError, match="only local references"):
        resolve_ref("http://x/schema.json", root)
    with pytest.raises(ValueError, match="leads nowhere"):
        resolve_ref("#/definitions/nope", root)
    with pytest.raises(ValueError, match="does not lead to a schema"):
        resolve_ref("#/definitions/a~1b/type", root)
    with pytest.raises(ValueError, match="loop"):
        schema_errors(1, {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})


def test_long_values_are_shortened_in_messages() -> None:
    (error,) = schema_errors("x" * 100, {"enum": ["a"]})
    assert error.startswith('$: "xxxx') and 'x... is not one of "a"' in error
