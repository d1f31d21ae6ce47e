"""Any value becomes strict JSON without raising: the bad-input battery."""

from __future__ import annotations

import datetime as dt
import enum
import math
from decimal import Decimal
from unittest import mock

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from aitel.jsonable import Limits, dumps, register_encoder, to_jsonable


def roundtrip(value):
    return orjson.loads(dumps(to_jsonable(value)))


def test_cycles_are_marked() -> None:
    a: dict = {"x": 1}
    a["self"] = a
    lst: list = [1]
    lst.append(lst)
    assert roundtrip(a) == {"x": 1, "self": "<cycle: dict>"}
    assert roundtrip(lst) == [1, "<cycle: list>"]


def test_shared_objects_are_not_cycles() -> None:
    shared = {"k": 1}
    assert roundtrip([shared, shared]) == [{"k": 1}, {"k": 1}]


def test_deep_nesting_is_cut_not_crashing() -> None:
    deep: list = []
    node = deep
    for _ in range(5000):
        child: list = []
        node.append(child)
        node = child
    out = roundtrip(deep)
    depth = 0
    while isinstance(out, list) and out:
        out = out[0]
        depth += 1
    assert depth == 64 and out.startswith("<max depth 64 reached")


def test_raising_repr_and_str() -> None:
    class Bad:
        def __repr__(self):
            raise RuntimeError("no repr")

        __str__ = __repr__

    assert roundtrip(Bad()) == "<unrepresentable Bad>"
    assert roundtrip({Bad(): 1}) == {"<unrepresentable Bad>": 1}


def test_tuple_keys_and_non_str_keys() -> None:
    assert roundtrip({(1, 2): "a", 3: "b", None: "c"}) == {"(1, 2)": "a", "3": "b", "None": "c"}


def test_huge_string_is_truncated_with_marker() -> None:
    out = roundtrip("x" * 20_000_000)
    assert len(out) < 33_000 and out.endswith("…[truncated 19967232 chars]")


def test_nan_infinity_become_null() -> None:
    assert roundtrip([math.nan, math.inf, -math.inf, 1.5]) == [None, None, None, 1.5]


def test_lone_surrogates_give_valid_utf8() -> None:
    data = dumps(to_jsonable({"s": "bad \ud800 char"}))
    assert orjson.loads(data) == {"s": "bad ? char"}
    data.decode("utf-8")


def test_huge_ints_survive() -> None:
    assert roundtrip(2**80) == str(2**80)


def test_generators_are_not_consumed() -> None:
    consumed = []

    def gen():
        consumed.append(1)
        yield 1

    g = gen()
    assert roundtrip(g) == "<generator: not consumed>"
    assert consumed == [] and next(g) == 1


def test_secretstr_stays_masked() -> None:
    class Cfg(BaseModel):
        key: SecretStr
        name: str

    out = roundtrip(Cfg(key=SecretStr("sk-real-secret"), name="x"))
    assert out == {"key": "**********", "name": "x"}


def test_common_types() -> None:
    class Color(enum.Enum):
        RED = "red"

    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "naive": dt.datetime(2026, 1, 2),
        "day": dt.date(2026, 1, 2),
        "dec": Decimal("1.25"),
        "set": {3},
        "enum": Color.RED,
        "bytes": b"hi",
        "binary": b"\xff\xfe",
        "exc": ValueError("bad"),
        "array": np.arange(3),
        "big_array": np.zeros(10_000),
    }
    assert roundtrip(value) == {
        "when": "2026-01-02T03:04:05+00:00",
        "naive": "2026-01-02T00:00:00",
        "day": "2026-01-02",
        "dec": 1.25,
        "set": [3],
        "enum": "red",
        "bytes": "hi",
        "binary": "<2 bytes>",
        "exc": {"type": "ValueError", "message": "bad"},
        "array": [0, 1, 2],
        "big_array": "<ndarray shape=(10000,) dtype=float64>",
    }


def test_mocks_do_not_explode() -> None:
    out = roundtrip(mock.MagicMock(name="client"))
    assert isinstance(out, str) and "MagicMock" in out and "0x" not in out


def test_repr_addresses_are_removed() -> None:
    class Plain:
        pass

    assert "0x" not in roundtrip(Plain())


def test_long_lists_are_capped() -> None:
    out = to_jsonable(list(range(5000)), Limits(max_items=10))
    assert out[:10] == list(range(10)) and out[10] == "…[4990 more items]"


def test_registered_encoder_is_used_for_subclasses() -> None:
    class Base:
        pass

    class Child(Base):
        pass

    register_encoder(Base, lambda obj: {"kind": type(obj).__name__})
    assert roundtrip([Child()]) == [{"kind": "Child"}]


def test_encoder_that_raises_gives_marker() -> None:
    class Fragile:
        pass

    def explode(obj):
        raise RuntimeError("nope")

    register_encoder(Fragile, explode)
    assert roundtrip({"f": Fragile()}) == {"f": "<unserializable Fragile>"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda children: (
        st.lists(children)
        | st.dictionaries(st.text() | st.integers(), children)
        | st.tuples(children)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_anything_becomes_strict_json(value) -> None:
    """Property: the output always parses as strict JSON and is valid UTF-8."""
    data = dumps(to_jsonable(value))
    data.decode("utf-8")
    orjson.loads(data)
