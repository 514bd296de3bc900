from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crm

db = crm.open()

# Every code point, lone surrogates included.
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=600)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_text)
def test_any_text_as_a_name_round_trips_or_raises_validation_error(name: str) -> None:
    try:
        created = db.create_customer(name=name)
    except crm.ValidationError as e:
        assert e.field == "name"
        assert e.row is None
        return
    assert created["name"] in name
    assert created["name"] == created["name"].strip(" \t\n\r")
    assert db.get_customer(created["id"])["name"] == created["name"]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=100))
def test_printable_names_are_stored_trimmed(name: str) -> None:
    stripped = name.strip()
    try:
        created = db.create_customer(name=name)
    except crm.ValidationError as e:
        assert e.field == "name" and stripped == ""
        return
    assert created["name"] == stripped


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_metadata_round_trips(metadata: dict[str, object]) -> None:
    c = db.create_customer(name="Meta")
    try:
        stored = db.log_interaction(c["id"], "note", metadata=metadata)
    except crm.ValidationError as e:
        assert e.field.startswith("metadata")
        return
    assert stored["metadata"] == (metadata or None) or stored["metadata"] == metadata
    assert db.get_interaction(stored["id"])["metadata"] == stored["metadata"]


@settings(max_examples=100, deadline=None)
@given(st.datetimes(timezones=st.timezones(), min_value=datetime.datetime(1900, 1, 1), max_value=datetime.datetime(2200, 1, 1)))
def test_aware_datetimes_round_trip_as_the_same_instant(when: datetime.datetime) -> None:
    c = db.create_customer(name="Time")
    stored = db.log_interaction(c["id"], "note", occurred_at=when)["occurred_at"]
    assert stored.tzinfo is datetime.timezone.utc
    # (Not `stored == when`: Python never equates a time in a DST fold with
    # one in another zone.)
    assert stored == when.astimezone(datetime.timezone.utc)
