"""Control records: control.schema.json, its codec (round trips, every rejection) and the
salted user assignment of experiments."""

from __future__ import annotations

import dataclasses
import doctest
import re
from collections import Counter
from importlib import resources
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas.control
from schemas import contract
from schemas.contract import load_schema
from schemas.control import (
    LABEL_PATTERN,
    MAX_HISTORY,
    PROMOTION_KEY,
    TRENDING_VERSION,
    ControlKind,
    ControlRemoved,
    Experiment,
    ExperimentStatus,
    InvalidControlRecordError,
    Promotion,
    Variant,
    assignment_point,
    control_from_json,
    decode_control,
    encode_control,
    experiment_key,
    to_json_dict,
)
from schemas.events import Rejection
from schemas.reasons import RejectReason

CONTROL_SCHEMA = jsonschema.Draft7Validator(load_schema("control"))
SALT = "5d41402abc4b2a76b9719d911017c592"

PROMOTION = Promotion("sessattn-3f9a0c12d4e5", ("sessattn-0b1c2d3e4f50", TRENDING_VERSION),
                      1_796_212_800_000, "promote")
EXPERIMENT = Experiment(
    name="spring-test", salt=SALT,
    variants=(Variant("A", "sessattn-3f9a0c12d4e5", 0.5), Variant("B", TRENDING_VERSION, 0.5)),
    shadow=Variant("C", "sessattn_text-9e8d7c6b5a41", 0.0), status="running",
    started_at_ms=1_796_212_800_000, updated_at_ms=1_796_212_800_000)


def example(name: str) -> dict[str, Any]:
    raw = resources.files("schemas").joinpath(f"examples/control-{name}.json").read_bytes()
    data: dict[str, Any] = orjson.loads(raw)
    return data


def experiment_json(**changes: Any) -> dict[str, Any]:
    return {**to_json_dict(EXPERIMENT), **changes}


# --- the schema file -----------------------------------------------------------------------

def test_the_schema_is_valid_draft_07_and_documented() -> None:
    schema = load_schema("control")
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$id"].endswith("/control.schema.json")
    assert schema["title"] and len(schema["description"]) > 50
    assert schema["properties"]["schema_version"]["const"] == contract.SCHEMA_VERSION
    assert all(p.get("description") for p in schema["properties"].values())


def test_the_kinds_and_statuses_match_the_python_code() -> None:
    schema = load_schema("control")
    assert schema["properties"]["kind"]["enum"] == [k.value for k in ControlKind]
    assert [b["if"]["properties"]["kind"]["const"] for b in schema["allOf"]] == [
        k.value for k in ControlKind]
    assert schema["properties"]["status"]["enum"] == [s.value for s in ExperimentStatus]
    assert schema["properties"]["history"]["maxItems"] == MAX_HISTORY


def test_the_label_pattern_is_the_schemas() -> None:
    label = load_schema("control")["definitions"]["label"]
    pattern = re.compile(label["pattern"])
    for sample in ["A", "trending", "sessattn-0123456789ab", "a.b_c:d-1", "x" * 128,
                   "x" * 129, "", "-x", "a b", "a/b", "ü", "a\n"]:
        in_schema = (label["minLength"] <= len(sample) <= label["maxLength"]
                     and pattern.match(sample) is not None)
        assert in_schema == (LABEL_PATTERN.fullmatch(sample) is not None), sample


@pytest.mark.parametrize("name", ["promotion", "experiment"])
def test_the_example_files_are_valid_and_round_trip(name: str) -> None:
    document = example(name)
    CONTROL_SCHEMA.validate(document)
    key = PROMOTION_KEY if name == "promotion" else experiment_key(document["name"])
    record = decode_control(key.encode(), orjson.dumps(document))
    assert isinstance(record, Promotion | Experiment)
    encoded_key, value = encode_control(record)
    assert (encoded_key, orjson.loads(value)) == (key.encode(), document)


# --- the codec -----------------------------------------------------------------------------

@pytest.mark.parametrize("record", [PROMOTION, EXPERIMENT,
                                    dataclasses.replace(EXPERIMENT, shadow=None,
                                                        status="stopped", reason="done")])
def test_records_round_trip(record: Promotion | Experiment) -> None:
    key, value = encode_control(record)
    assert key == record.key.encode()
    CONTROL_SCHEMA.validate(orjson.loads(value))
    assert decode_control(key, value) == record


def test_tombstones_name_what_they_remove() -> None:
    assert decode_control(b"promotion", None) == ControlRemoved("promotion")
    assert decode_control(b"promotion", None).experiment_name is None  # type: ignore[union-attr]
    removed = decode_control(b"experiment/spring-test", None)
    assert isinstance(removed, ControlRemoved) and removed.experiment_name == "spring-test"


def test_records_under_the_wrong_key_are_rejected() -> None:
    _, value = encode_control(EXPERIMENT)
    for key in (b"experiment/other", b"promotion", b"nonsense", None):
        outcome = decode_control(key, value)
        assert isinstance(outcome, Rejection)
        assert outcome.reason is RejectReason.KEY_MISMATCH, key
    assert decode_control(None, None).reason is RejectReason.KEY_MISMATCH  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", RejectReason.EMPTY_PAYLOAD),
        (b"{nope", RejectReason.INVALID_JSON),
        (b"\xff\xfe", RejectReason.NOT_UTF8),
        (b"[1]", RejectReason.NOT_AN_OBJECT),
        (b'{"kind": "promotion"}', RejectReason.MISSING_FIELD),
        (b'{"version": "m-1"}', RejectReason.MISSING_FIELD),
        (b'{"kind": "demotion"}', RejectReason.SCHEMA_VIOLATION),
        (orjson.dumps({**to_json_dict(PROMOTION), "history": "m-1"}), RejectReason.WRONG_TYPE),
        (orjson.dumps({**to_json_dict(PROMOTION), "history": ["m"] * 21}),
         RejectReason.SCHEMA_VIOLATION),
        (orjson.dumps({**to_json_dict(PROMOTION), "reason": None}), RejectReason.WRONG_TYPE),
        (orjson.dumps({**to_json_dict(PROMOTION), "version": "../etc"}),
         RejectReason.SCHEMA_VIOLATION),
        (orjson.dumps({**to_json_dict(PROMOTION), "salt": SALT}),
         RejectReason.SCHEMA_VIOLATION),
        (orjson.dumps({**to_json_dict(PROMOTION), "schema_version": "2"}),
         RejectReason.SCHEMA_VIOLATION),
        (b" " * 70_000, RejectReason.OVERSIZED_PAYLOAD),
    ],
)
def test_bad_promotions_are_rejected_with_a_stable_reason(value: bytes,
                                                          reason: RejectReason) -> None:
    outcome = decode_control(b"promotion", value)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason is reason, outcome


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        ({"salt": "XYZ"}, RejectReason.SCHEMA_VIOLATION, "salt"),
        ({"salt": "ab"}, RejectReason.SCHEMA_VIOLATION, "salt"),
        ({"status": "paused"}, RejectReason.SCHEMA_VIOLATION, "status"),
        ({"variants": []}, RejectReason.SCHEMA_VIOLATION, "variants"),
        ({"variants": [{"name": "A", "version": "m-1", "share": 0.5},
                       {"name": "B", "version": "m-2", "share": 0.4}]},
         RejectReason.SCHEMA_VIOLATION, "add up to 0.9"),
        ({"variants": [{"name": "A", "version": "m-1", "share": 1.0},
                       {"name": "B", "version": "m-2", "share": 0}]},
         RejectReason.SCHEMA_VIOLATION, "variants[1].share"),
        ({"variants": [{"name": "A", "version": "m-1", "share": 0.5},
                       {"name": "A", "version": "m-2", "share": 0.5}]},
         RejectReason.SCHEMA_VIOLATION, "distinct"),
        ({"shadow": {"name": "A", "version": "m-1", "share": 0}},
         RejectReason.SCHEMA_VIOLATION, "distinct"),
        ({"shadow": {"name": "C", "version": "m-1", "share": 0.1}},
         RejectReason.SCHEMA_VIOLATION, "shadow"),
        ({"variants": [{"name": "A", "version": "m-1"}]},
         RejectReason.MISSING_FIELD, "variants[0]: missing required field(s): share"),
        ({"variants": [{"name": "A", "version": "m-1", "share": 1, "x": 1}]},
         RejectReason.SCHEMA_VIOLATION, "variants[0]"),
        ({"started_at_ms": -1}, RejectReason.SCHEMA_VIOLATION, "started_at_ms"),
        ({"started_at_ms": 1.5}, RejectReason.WRONG_TYPE, "started_at_ms"),
        ({"version": "m-1"}, RejectReason.SCHEMA_VIOLATION, "only its own fields"),
    ],
)
def test_bad_experiments_are_rejected_saying_what_is_wrong(
    changes: dict[str, Any], reason: RejectReason, detail: str
) -> None:
    outcome = decode_control(b"experiment/spring-test", orjson.dumps(experiment_json(**changes)))
    assert isinstance(outcome, Rejection), outcome
    assert outcome.reason is reason, outcome
    assert detail in outcome.detail


def test_missing_fields_are_named() -> None:
    data = experiment_json()
    del data["salt"], data["status"]
    outcome = control_from_json(data)
    assert isinstance(outcome, Rejection)
    assert outcome.detail == "missing required field(s): salt, status"


def test_shares_within_the_tolerance_add_up_to_one() -> None:
    thirds = [{"name": n, "version": "m-1", "share": 0.333333} for n in "AB"] + [
        {"name": "D", "version": "m-1", "share": 0.333334}]
    assert isinstance(control_from_json(experiment_json(variants=thirds)), Experiment)
    thirds[2]["share"] = 0.33334
    assert isinstance(control_from_json(experiment_json(variants=thirds)), Rejection)


def test_encoding_refuses_what_the_schema_rejects() -> None:
    with pytest.raises(InvalidControlRecordError, match="add up to 0.8"):
        encode_control(dataclasses.replace(
            EXPERIMENT, variants=(Variant("A", "m-1", 0.4), Variant("B", "m-2", 0.4))))
    with pytest.raises(InvalidControlRecordError, match="history"):
        encode_control(dataclasses.replace(PROMOTION, history=("m",) * (MAX_HISTORY + 1)))
    with pytest.raises(InvalidControlRecordError, match="version"):
        encode_control(dataclasses.replace(PROMOTION, version="has space"))


FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(-1, 2, allow_nan=False),
    st.text(max_size=5), st.lists(st.text(max_size=4), max_size=3),
    st.fixed_dictionaries({"name": st.sampled_from(["A", "C", ""]),
                           "version": st.sampled_from(["m-1", "trending", "a b"]),
                           "share": st.sampled_from([0, 0.5, 1, -1])}),
)
FIELDS = ["schema_version", "kind", "version", "history", "promoted_at_ms", "reason", "name",
          "salt", "variants", "shadow", "status", "started_at_ms", "updated_at_ms", "other"]


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from(["promotion", "experiment"]),
       changes=st.dictionaries(st.sampled_from(FIELDS), FIELD_VALUES, max_size=3),
       drop=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_the_codec_accepts_exactly_what_the_schema_accepts(
    base: str, changes: dict[str, Any], drop: list[str]
) -> None:
    data = {**example(base), **changes}
    for name in drop:
        data.pop(name, None)
    outcome = control_from_json(data)
    schema_ok = CONTROL_SCHEMA.is_valid(data)
    if schema_ok and data.get("kind") == "experiment":
        arms = [*data["variants"], *([data["shadow"]] if data.get("shadow") else [])]
        beyond_schema = (len({a["name"] for a in arms}) != len(arms)
                         or abs(sum(v["share"] for v in data["variants"]) - 1) > 1e-6)
    else:
        beyond_schema = False
    assert isinstance(outcome, Rejection) == (not schema_ok or beyond_schema), (data, outcome)
    if not isinstance(outcome, Rejection):
        assert control_from_json(to_json_dict(outcome)) == outcome


@settings(max_examples=300, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=20), st.just(b"promotion")),
       value=st.one_of(st.none(), st.binary(max_size=60),
                       st.builds(orjson.dumps, st.dictionaries(
                           st.sampled_from(FIELDS), FIELD_VALUES, max_size=6))))
def test_decoding_never_raises(key: bytes | None, value: bytes | None) -> None:
    outcome = decode_control(key, value)
    assert isinstance(outcome, Promotion | Experiment | ControlRemoved | Rejection)


# --- assignment ----------------------------------------------------------------------------

USERS = [f"user-{n}" for n in range(10_000)]


def test_assignment_is_stable_for_a_user() -> None:
    again = dataclasses.replace(EXPERIMENT, status="stopped", updated_at_ms=1)
    for user in USERS[:500]:
        assert EXPERIMENT.variant_for(user) == again.variant_for(user)
    assert assignment_point(SALT, "user-1") == assignment_point(SALT, "user-1")


def test_shares_are_met_within_tolerance() -> None:
    shares = {"A": 0.2, "B": 0.3, "C": 0.5}
    experiment = dataclasses.replace(
        EXPERIMENT, shadow=None,
        variants=tuple(Variant(name, "m-1", share) for name, share in shares.items()))
    counts = Counter(experiment.variant_for(user).name for user in USERS)
    for name, share in shares.items():
        # 10,000 users: one standard deviation is at most 0.5 % of them; allow 4.
        assert abs(counts[name] / len(USERS) - share) < 0.02, counts


def test_experiments_with_different_salts_assign_independently() -> None:
    first = EXPERIMENT
    second = dataclasses.replace(EXPERIMENT, salt="0123456789abcdef0123456789abcdef")
    cells = Counter((first.variant_for(u).name, second.variant_for(u).name) for u in USERS)
    for a in "AB":
        for b in "AB":
            assert abs(cells[(a, b)] / len(USERS) - 0.25) < 0.02, cells


def test_a_point_past_rounded_shares_gets_the_last_variant() -> None:
    experiment = dataclasses.replace(
        EXPERIMENT, variants=(Variant("A", "m-1", 0.4999995), Variant("B", "m-2", 0.5)))
    users = [u for u in USERS if assignment_point(SALT, u) >= 0.9999995]
    assert all(experiment.variant_for(u).name == "B" for u in users)
    assert experiment.control.name == "A"
    assert experiment.versions() == {"m-1", "m-2", "sessattn_text-9e8d7c6b5a41"}


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(schemas.control)
    assert result.attempted > 0 and result.failed == 0
