"""JSON schemas from Python functions, the argument validator and argument conversion."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

import pytest

from pedrollm.tool_schema import (
    ToolSchemaError,
    convert_arguments,
    description_for,
    parse_docstring,
    schema_for,
    validate,
)


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Point:
    """A place on a map.

    Attributes:
        lat: Latitude in degrees.
        lon: Longitude in degrees.
    """

    lat: float
    lon: float
    label: str = ""


@dataclass
class Route:
    start: Point
    stops: list[Point] = field(default_factory=list)


def prop(func: Any, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = schema_for(func)["properties"][name]
    return schema


# -- one annotation at a time ---------------------------------------------------------


@pytest.mark.parametrize(("annotation", "expected"), [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (Any, {}),
    (list[str], {"type": "array", "items": {"type": "string"}}),
    (list[list[int]], {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
    (list, {"type": "array"}),
    (set[int], {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}),
    (tuple[float, ...], {"type": "array", "items": {"type": "number"}}),
    (dict, {"type": "object"}),
    (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
    (dict[str, Any], {"type": "object", "additionalProperties": {}}),
    (Optional[int], {"type": ["integer", "null"]}),  # noqa: UP045 - the spelling under test
    (str | None, {"type": ["string", "null"]}),
    (int | str, {"type": ["integer", "string"]}),
    (Literal["c", "f"], {"type": "string", "enum": ["c", "f"]}),
    (Literal[1, 2, 3], {"type": "integer", "enum": [1, 2, 3]}),
    (Literal["auto", 0], {"enum": ["auto", 0]}),
    (Literal["c", "f"] | None, {"type": ["string", "null"], "enum": ["c", "f", None]}),
    (Unit, {"type": "string", "enum": ["celsius", "fahrenheit"]}),
    (Level, {"type": "integer", "enum": [1, 2]}),
    (Annotated[str, "The city name"], {"type": "string", "description": "The city name"}),
])
def test_each_annotation_maps_to_its_json_schema(annotation: Any,
                                                 expected: dict[str, Any]) -> None:
    def tool(x):  # type: ignore[no-untyped-def]
        """Tool."""

    tool.__annotations__ = {"x": annotation}
    assert schema_for(tool)["properties"]["x"] == expected


def test_dataclass_becomes_a_nested_object_with_field_descriptions() -> None:
    def plan(route: Route) -> None:
        """Plan a route."""

    schema = prop(plan, "route")
    point = schema["properties"]["start"]
    assert schema["required"] == ["start"]
    assert point["type"] == "object"
    assert point["description"] == "A place on a map."
    assert point["properties"]["lat"] == {"type": "number", "description": "Latitude in degrees."}
    assert point["properties"]["label"] == {"type": "string", "default": ""}
    assert point["required"] == ["lat", "lon"]
    assert point["additionalProperties"] is False
    assert schema["properties"]["stops"]["items"] == point


def test_parameters_with_defaults_are_optional_and_carry_the_default() -> None:
    def search(query: str, limit: int = 10, unit: Unit = Unit.CELSIUS,
               tags: list[str] | None = None) -> None:
        """Search."""

    schema = schema_for(search)
    assert schema["required"] == ["query"]
    assert schema["properties"]["limit"]["default"] == 10
    assert schema["properties"]["unit"]["default"] == "celsius"
    assert schema["properties"]["tags"]["default"] is None
    assert schema["type"] == "object" and schema["additionalProperties"] is False


def test_function_without_parameters_has_an_empty_object_schema() -> None:
    def now() -> str:
        """The time."""
        return ""

    assert schema_for(now) == {"type": "object", "properties": {},
                               "additionalProperties": False}


def test_bound_method_leaves_out_self() -> None:
    class Shop:
        def price(self, item: str) -> float:
            """Price of an item."""
            return 1.0

    assert list(schema_for(Shop().price)["properties"]) == ["item"]


# -- refusals --------------------------------------------------------------------------


def test_var_args_are_refused_naming_the_function() -> None:
    def spread(*values: int) -> None:
        """Spread."""

    with pytest.raises(ToolSchemaError, match=r"spread.*\*values"):
        schema_for(spread)


def test_var_kwargs_are_refused_naming_the_function() -> None:
    def anything(city: str, **options: Any) -> None:
        """Anything."""

    with pytest.raises(ToolSchemaError, match=r"anything.*\*\*options"):
        schema_for(anything)


def test_positional_only_parameters_are_refused() -> None:
    def pos(city: str, /) -> None:
        """Pos."""

    with pytest.raises(ToolSchemaError, match="positional-only"):
        schema_for(pos)


class Opaque:
    pass


def test_unsupported_annotation_is_refused_naming_the_parameter() -> None:
    def use(thing: Opaque) -> None:
        """Use."""

    with pytest.raises(ToolSchemaError, match=r"use: parameter 'thing'"):
        schema_for(use)


def test_unresolvable_hint_is_refused_naming_the_function() -> None:
    def late(x: NotDefinedAnywhere) -> None:  # type: ignore[name-defined]  # noqa: F821
        """Late."""

    with pytest.raises(ToolSchemaError, match=r"late: cannot resolve its type hints"):
        schema_for(late)


def test_dict_with_non_string_keys_is_refused() -> None:
    def counts(by_id: dict[int, str]) -> None:
        """Counts."""

    with pytest.raises(ToolSchemaError, match="dict keys must be str"):
        schema_for(counts)


def test_self_referencing_dataclass_is_refused() -> None:
    @dataclass
    class Node:
        children: list[Node]

    def walk(node: Node) -> None:
        """Walk."""

    walk.__annotations__ = {"node": Node}
    Node.__annotations__ = {"children": list[Node]}
    with pytest.raises(ToolSchemaError, match="refers to itself"):
        schema_for(walk)


# -- docstrings ------------------------------------------------------------------------


def test_google_docstring_gives_description_and_parameter_descriptions() -> None:
    def get_weather(city: str, unit: str = "c") -> str:
        """Current weather for a city.

        Uses the local station when there is one.

        Args:
            city (str): The city name,
                for example "Paris".
            unit: "c" or "f".

        Returns:
            A short report.
        """
        return ""

    schema = schema_for(get_weather)
    assert description_for(get_weather) == (
        "Current weather for a city.\n\nUses the local station when there is one."
    )
    assert schema["properties"]["city"]["description"] == 'The city name, for example "Paris".'
    assert schema["properties"]["unit"]["description"] == '"c" or "f".'


def test_numpy_docstring_gives_parameter_descriptions() -> None:
    def convert(amount: float, currency: str) -> float:
        """Convert money.

        Parameters
        ----------
        amount : float
            How much to convert.
        currency : str
            ISO code of the target
            currency.

        Returns
        -------
        float
            The converted amount.
        """
        return 0.0

    schema = schema_for(convert)
    assert description_for(convert) == "Convert money."
    assert schema["properties"]["amount"]["description"] == "How much to convert."
    assert schema["properties"]["currency"]["description"] == "ISO code of the target currency."


def test_sphinx_docstring_gives_parameter_descriptions() -> None:
    doc = parse_docstring("""Add numbers.

    :param a: The first.
    :param int b: The second.
    :returns: The sum.
    """)
    assert doc.description == "Add numbers."
    assert doc.params == {"a": "The first.", "b": "The second."}


def test_function_without_docstring_has_empty_description() -> None:
    def bare(x: int) -> None:
        pass

    assert description_for(bare) == ""
    assert "description" not in schema_for(bare)["properties"]["x"]


# -- validation ------------------------------------------------------------------------


def weather_schema() -> dict[str, Any]:
    def get_weather(city: str, days: int = 1, unit: Unit = Unit.CELSIUS,
                    at: Point | None = None) -> None:
        """Weather."""

    schema: dict[str, Any] = schema_for(get_weather)
    return schema


def test_valid_arguments_have_no_errors() -> None:
    args = {"city": "Oslo", "days": 3, "unit": "fahrenheit", "at": {"lat": 1, "lon": 2.5}}
    assert validate(args, weather_schema()) == []


@pytest.mark.parametrize(("args", "message"), [
    ({}, "'city' is required"),
    ({"city": 5}, "'city' must be string, got integer 5"),
    ({"city": "Oslo", "days": "3"}, "'days' must be integer, got string '3'"),
    ({"city": "Oslo", "days": True}, "'days' must be integer, got boolean True"),
    ({"city": "Oslo", "days": 1.5}, "'days' must be integer, got number 1.5"),
    ({"city": "Oslo", "unit": "kelvin"},
     "'unit' must be one of 'celsius', 'fahrenheit'; got 'kelvin'"),
    ({"city": "Oslo", "country": "NO"}, "'country' is not an accepted argument"),
    ({"city": "Oslo", "at": {"lat": 1}}, "'at.lon' is required"),
])
def test_invalid_arguments_are_reported_by_name(args: dict[str, Any], message: str) -> None:
    errors = validate(args, weather_schema())
    assert any(message in e for e in errors), errors


def test_whole_number_float_counts_as_integer() -> None:
    assert validate({"city": "Oslo", "days": 2.0}, weather_schema()) == []


def test_array_items_are_checked_with_their_index() -> None:
    schema = {"type": "object", "properties": {"tags": {"type": "array",
                                                        "items": {"type": "string"}}}}
    assert validate({"tags": ["a", 2]}, schema) == ["'tags[1]' must be string, got integer 2"]


def test_arguments_that_are_not_an_object_are_refused() -> None:
    assert validate(["Oslo"], weather_schema()) == [
        "the arguments must be object, got array ['Oslo']"
    ]


# -- conversion ------------------------------------------------------------------------


def test_arguments_are_converted_to_annotated_types() -> None:
    def plan(route: Route, unit: Unit, scale: float, ids: set[int],
             levels: dict[str, Level], when: tuple[int, ...] | None = None) -> None:
        """Plan."""

    args = convert_arguments(plan, {
        "route": {"start": {"lat": 1, "lon": 2}, "stops": [{"lat": 3, "lon": 4, "label": "x"}]},
        "unit": "celsius", "scale": 2, "ids": [1, 2, 2], "levels": {"a": 2}, "when": [1, 2],
    })
    assert args["route"] == Route(Point(1, 2), [Point(3, 4, "x")])
    assert args["unit"] is Unit.CELSIUS
    assert args["scale"] == 2.0 and isinstance(args["scale"], float)
    assert args["ids"] == {1, 2}
    assert args["levels"] == {"a": Level.HIGH}
    assert args["when"] == (1, 2)
