"""Filters and segments through the binding: conversions, errors, keyword
arguments. What the language means is the core's to test; these check that
Python gets it unchanged."""

from __future__ import annotations

import datetime
import pickle
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import crm

MISSING_ID = "01900000-0000-7000-8000-000000000000"


def seed(db: crm.Crm) -> list[crm.Customer]:
    """Ten customers: odd ones in SI, even ones in AT; every third a vip."""
    return [
        db.create_customer(
            name=f"Customer {i}",
            country="SI" if i % 2 else "AT",
            tags=["vip"] if i % 3 == 0 else [],
        )
        for i in range(10)
    ]


# ----- ad-hoc filters --------------------------------------------------------


def test_check_filter_returns_the_canonical_text(db: crm.Crm) -> None:
    assert db.check_filter('country="si"  AND tags is empty') == 'country = "si" and tags is empty'


def test_count_and_find_matching_page_through_customers(db: crm.Crm) -> None:
    people = seed(db)
    slovenians = [c["id"] for c in people if c["country"] == "SI"]
    assert db.count_matching('country = "SI"') == 5
    first = db.find_matching('country = "SI"', limit=3)
    assert [c["id"] for c in first["items"]] == slovenians[:3]
    assert first["next_cursor"] is not None
    rest = db.find_matching('country = "SI"', limit=3, cursor=first["next_cursor"])
    assert [c["id"] for c in rest["items"]] == slovenians[3:]
    assert rest["next_cursor"] is None
    # Items are the same customer dicts as everywhere else.
    assert first["items"][0] == db.get_customer(slovenians[0])
    assert len(db.find_matching('country = "SI"')["items"]) == 5  # limit=100 by default


def test_find_matching_takes_limit_and_cursor_by_keyword_only(db: crm.Crm) -> None:
    with pytest.raises(TypeError):
        db.find_matching('country = "SI"', 10)  # type: ignore[call-arg]
    with pytest.raises(crm.ValidationError) as info:
        db.find_matching('country = "SI"', limit="10")  # type: ignore[arg-type]
    assert info.value.field == "limit"
    with pytest.raises(crm.ValidationError) as info:
        db.find_matching('country = "SI"', limit=0)
    assert info.value.field == "limit"
    with pytest.raises(crm.ValidationError):
        db.find_matching('country = "SI"', cursor="not-a-cursor")


def test_customer_matches_takes_an_id_and_a_filter(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana", tags=["vip"])
    bo = db.create_customer(name="Bo")
    assert db.customer_matches(ana["id"], '"vip" in tags') is True
    assert db.customer_matches(bo["id"], '"vip" in tags') is False
    with pytest.raises(crm.NotFoundError) as not_found:
        db.customer_matches(MISSING_ID, '"vip" in tags')
    assert not_found.value.entity == "customer"
    with pytest.raises(crm.ValidationError) as invalid:
        db.customer_matches("not-an-id", '"vip" in tags')
    assert invalid.value.field == "customer_id"


def test_explain_returns_sql_params_and_plan(db: crm.Crm) -> None:
    explain = db.explain('"VIP" in tags')
    assert isinstance(explain, crm.Explain)
    assert explain.canonical == '"VIP" in tags'
    assert "customer_tags" in explain.sql
    assert explain.params == ["vip"]
    assert explain.plan and all(isinstance(step, str) for step in explain.plan)
    text = repr(explain)
    assert text.startswith("Explain(canonical='\"VIP\" in tags', sql='SELECT")
    assert "params=['vip']" in text
    assert "?1 = vip" in str(explain)
    with pytest.raises(AttributeError):
        explain.sql = "DROP TABLE customers"  # type: ignore[misc]


# ----- errors ----------------------------------------------------------------


def test_a_misspelled_field_raises_parse_error_with_position_and_suggestion(db: crm.Crm) -> None:
    with pytest.raises(crm.ParseError) as info:
        db.count_matching('country = "SI" and\n  contry = "SI"')
    err = info.value
    assert (err.line, err.column) == (2, 3)
    assert err.suggestion == "country"
    assert err.message == "unknown field 'contry'"
    assert str(err) == "line 2, column 3: unknown field 'contry' (did you mean 'country'?)"
    # A ParseError is a ValidationError of the argument "filter".
    assert isinstance(err, crm.ValidationError)
    assert (err.field, err.reason, err.row) == ("filter", err.message, None)


def test_parse_errors_survive_pickling(db: crm.Crm) -> None:
    with pytest.raises(crm.ParseError) as info:
        db.check_filter('contry = "SI"')
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is crm.ParseError
    assert (copy.line, copy.column, copy.suggestion, copy.field) == (1, 1, "country", "filter")


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ('"vip" > 3', 1, "not with < or >"),
        ('frobnicate(tags) = 1', 1, "unknown function 'frobnicate'"),
        ("created_at within -5d", 19, "positive length of time"),
        ("country = 'SI'", 11, "double quotes"),
        ('country = "SI" and', 19, ""),
    ],
)
def test_bad_filters_raise_parse_error_pointing_at_the_mistake(
    db: crm.Crm, text: str, column: int, words: str
) -> None:
    with pytest.raises(crm.ParseError) as info:
        db.count_matching(text)
    assert (info.value.line, info.value.column) == (1, column)
    assert words in info.value.message
    assert info.value.suggestion is None


def test_parse_errors_name_no_customer_data(db: crm.Crm) -> None:
    with pytest.raises(crm.ParseError) as info:
        db.count_matching('emails < "ana.secret@example.com"')
    assert "ana.secret" not in str(info.value)


def test_an_unknown_segment_is_a_parse_error_in_a_filter_and_not_found_elsewhere(db: crm.Crm) -> None:
    db.create_segment("vips", filter='"vip" in tags')
    with pytest.raises(crm.ParseError) as info:
        db.count_matching('in_segment("vip")')
    assert info.value.suggestion == "vips"
    calls: list[Callable[[], object]] = [
        lambda: db.segment("nope"),
        lambda: db.segment_count("nope"),
        lambda: db.segment_members("nope"),
        lambda: next(db.iter_segment_members("nope")),
        lambda: db.materialize_segment("nope"),
        lambda: db.update_segment("nope", description="x"),
        lambda: db.rename_segment("nope", "other"),
        lambda: db.delete_segment("nope"),
        lambda: db.add_to_segment("nope", []),
    ]
    for call in calls:
        with pytest.raises(crm.NotFoundError) as not_found:
            call()
        assert not_found.value.entity == "segment"


def test_segments_that_would_use_each_other_raise_parse_error(db: crm.Crm) -> None:
    db.create_segment("b", filter='country = "SI"')
    db.create_segment("a", filter='in_segment("b")')
    with pytest.raises(crm.ParseError) as info:
        db.update_segment("b", filter='in_segment("a")')
    assert "cycle" in info.value.message
    assert db.segment("b")["filter"] == 'country = "SI"'
    with pytest.raises(crm.ParseError):
        db.create_segment("self", filter='in_segment("self")')


def test_deeply_nested_input_raises_parse_error(db: crm.Crm) -> None:
    for text in ("(" * 100_000, "(" * 5_000, "not " * 5_000 + "true"):
        with pytest.raises(crm.ParseError):
            db.count_matching(text)
        with pytest.raises(crm.ParseError):
            crm.parse_filter(text)
    tree: dict[str, Any] = {"truth": {"literal": [{"bool": True}]}}
    for _ in range(100_000):
        tree = {"not": tree}
    with pytest.raises(crm.ParseError) as info:
        db.count_matching(tree)
    assert (info.value.line, info.value.column) == (0, 0)
    assert "nested too deeply" in info.value.message


def test_a_very_long_filter_is_refused_and_a_long_one_runs(db: crm.Crm) -> None:
    db.create_customer(name="n7")
    long = " or ".join(f'name = "n{i}"' for i in range(400))
    assert db.count_matching(long) == 1
    too_long = " or ".join(f'name = "n{i}"' for i in range(10_000))
    with pytest.raises(crm.ParseError) as info:
        db.count_matching(too_long)
    assert "too long" in info.value.message
    with pytest.raises(crm.ParseError):
        db.count_matching('name = "' + "x" * 1_000_000 + '"')


def test_hostile_strings_stay_data(db: crm.Crm) -> None:
    evil = "x'); DROP TABLE customers; --"
    target = db.create_customer(name=evil)
    db.create_customer(name="Bo")
    text = 'name = "x\'); DROP TABLE customers; --"'
    assert db.count_matching(text) == 1
    assert db.find_matching(text)["items"][0]["id"] == target["id"]
    explain = db.explain(text)
    assert evil.lower() in [p.lower() for p in explain.params]
    assert "DROP" not in explain.sql
    db.create_segment("evil", filter=text, description='"); DROP TABLE segments; --')
    assert db.segment_count("evil") == 1
    assert db.count_customers() == 2
    for weird in ['name = "\\u{0}"', 'name = "\u202e\u0000"', 'name = "' + "\\" * 3]:
        try:
            db.count_matching(weird)
        except crm.ParseError:
            pass
    assert db.count_customers() == 2


# ----- filters as Python values ----------------------------------------------


def test_parse_filter_and_format_filter_round_trip() -> None:
    text = 'country = "SI" and ("vip" in tags or count(purchases within 90d) >= 3)'
    tree = crm.parse_filter(text)
    assert isinstance(tree, dict)
    assert set(tree) == {"and"}
    assert crm.format_filter(tree) == text
    assert crm.parse_filter(crm.format_filter(tree)) == tree
    assert crm.format_filter(crm.parse_filter('country="si"  AND tags IS EMPTY')) == (
        'country = "si" and tags is empty'
    )
    with pytest.raises(crm.ParseError) as info:
        crm.parse_filter('country = "SI" and')
    assert info.value.line == 1


def test_every_filter_argument_accepts_a_syntax_tree(db: crm.Crm) -> None:
    people = seed(db)
    text = 'country = "SI" and "vip" in tags'
    tree = crm.parse_filter(text)
    assert db.check_filter(tree) == text
    assert db.count_matching(tree) == db.count_matching(text) == 2
    assert db.find_matching(tree)["items"] == db.find_matching(text)["items"]
    assert db.customer_matches(people[3]["id"], tree) is True
    assert db.explain(tree).canonical == text
    segment = db.create_segment("si-vips", filter=tree)
    assert segment["filter"] == text
    assert db.update_segment("si-vips", filter=crm.parse_filter('country = "AT"'))["filter"] == 'country = "AT"'


def test_a_tree_that_does_not_fit_raises_parse_error_without_position(db: crm.Crm) -> None:
    bad_trees: list[dict[str, Any]] = [
        {"nope": 1},
        {"compare": {"left": 1}},
        {"and": []},
        crm.parse_filter('contry = "SI"'),
    ]
    for tree in bad_trees:
        with pytest.raises(crm.ParseError) as info:
            db.count_matching(tree)
        assert (info.value.line, info.value.column) == (0, 0)
    with pytest.raises(crm.ParseError) as info:
        db.count_matching(crm.parse_filter('contry = "SI"'))
    assert info.value.suggestion == "country"
    with pytest.raises(crm.ParseError):
        crm.format_filter({"nope": 1})


def test_filters_of_the_wrong_python_type_raise_validation_error(db: crm.Crm) -> None:
    for bad in (42, None, b'country = "SI"', ['country = "SI"']):
        with pytest.raises(crm.ValidationError) as info:
            db.count_matching(bad)  # type: ignore[arg-type]
        assert type(info.value) is crm.ValidationError
        assert info.value.field == "filter"
    with pytest.raises(crm.ValidationError) as info:
        db.count_matching({"truth": {"literal": [{"bool": b"yes"}]}})
    assert info.value.field == "filter.truth.literal[0].bool"
    with pytest.raises(crm.ValidationError) as info:
        db.create_segment("s", filter=3)  # type: ignore[arg-type]
    assert info.value.field == "filter"
    with pytest.raises(crm.ValidationError) as info:
        crm.parse_filter(42)  # type: ignore[arg-type]
    assert info.value.field == "text"
    with pytest.raises(crm.ValidationError) as info:
        crm.format_filter('country = "SI"')  # type: ignore[arg-type]
    assert info.value.field == "ast"
    assert db.segments() == []


# ----- segments --------------------------------------------------------------


def test_a_dynamic_segment_counts_pages_and_iterates_its_members(db: crm.Crm) -> None:
    people = seed(db)
    slovenians = [c["id"] for c in people if c["country"] == "SI"]
    segment = db.create_segment("si", filter='country="SI"', description="Slovenians")
    assert segment["kind"] == "dynamic"
    assert segment["filter"] == 'country = "SI"'
    assert segment["description"] == "Slovenians"
    assert segment["evaluated_at"] is None
    assert isinstance(segment["id"], str) and len(segment["id"]) == 36
    for key in ("created_at", "updated_at"):
        assert isinstance(segment[key], datetime.datetime)
        assert segment[key].utcoffset() == datetime.timedelta(0)
    assert db.segment("si") == segment
    assert db.segments() == [segment]
    assert db.segment_count("si") == 5
    page = db.segment_members("si", limit=2)
    assert [c["id"] for c in page["items"]] == slovenians[:2]
    page = db.segment_members("si", limit=2, cursor=page["next_cursor"])
    assert [c["id"] for c in page["items"]] == slovenians[2:4]
    assert [c["id"] for c in db.iter_segment_members("si", batch_size=2)] == slovenians
    assert db.segment_contains("si", slovenians[0]) is True
    assert db.segment_contains("si", people[0]["id"]) is False


def test_iter_segment_members_reads_one_batch_at_a_time(db: crm.Crm) -> None:
    seed(db)
    db.create_segment("at", filter='country = "AT"')
    it = db.iter_segment_members("at", batch_size=2)
    first = next(it)
    # A later batch is evaluated when it is reached: a customer who matches
    # by then is seen.
    late = db.create_customer(name="Late", country="AT")
    rest = list(it)
    assert first["country"] == "AT"
    assert rest[-1]["id"] == late["id"]
    assert len(rest) == 5
    assert iter(it) is it


def test_segment_arguments_are_checked_by_type_and_keyword(db: crm.Crm) -> None:
    with pytest.raises(TypeError):
        db.create_segment("s", 'country = "SI"')  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        db.iter_segment_members("s", 10)  # type: ignore[call-arg]
    with pytest.raises(crm.ValidationError) as info:
        db.create_segment(42)  # type: ignore[arg-type]
    assert info.value.field == "name"
    with pytest.raises(crm.ValidationError) as info:
        db.create_segment("")
    assert info.value.field == "name"
    with pytest.raises(crm.ValidationError) as info:
        db.create_segment("s", description=7)  # type: ignore[arg-type]
    assert info.value.field == "description"
    with pytest.raises(crm.ValidationError) as info:
        db.iter_segment_members("s", batch_size=1.5)  # type: ignore[arg-type]
    assert info.value.field == "batch_size"
    db.create_segment("s")
    with pytest.raises(crm.ValidationError) as info:
        next(db.iter_segment_members("s", batch_size=0))
    assert info.value.field == "limit"
    with pytest.raises(crm.ConflictError):
        db.create_segment("s")


def test_a_static_segment_adds_and_removes_members(db: crm.Crm) -> None:
    ana, bo, cy = (db.create_customer(name=n) for n in ("Ana", "Bo", "Cy"))
    segment = db.create_segment("picked", description="hand-picked")
    assert (segment["kind"], segment["filter"]) == ("static", None)
    assert db.add_to_segment("picked", [ana["id"], bo["id"]]) == 2
    assert db.add_to_segment("picked", (bo["id"], cy["id"])) == 1
    assert db.segment_count("picked") == 3
    assert db.remove_from_segment("picked", [ana["id"], ana["id"]]) == 1
    assert db.remove_from_segment("picked", []) == 0
    assert [c["id"] for c in db.iter_segment_members("picked")] == [bo["id"], cy["id"]]
    assert db.segment_contains("picked", ana["id"]) is False
    # An unknown customer fails the whole call; a bad id names its position.
    with pytest.raises(crm.NotFoundError):
        db.add_to_segment("picked", [ana["id"], MISSING_ID])
    with pytest.raises(crm.ValidationError) as info:
        db.add_to_segment("picked", [ana["id"], "nope"])
    assert info.value.field == "customer_ids[1]"
    with pytest.raises(crm.ValidationError) as info:
        db.add_to_segment("picked", ana["id"])  # type: ignore[arg-type]
    assert info.value.field == "customer_ids"
    assert db.segment_count("picked") == 2
    # Static segments have members, not filters, and aren't materialized.
    for call in (
        lambda: db.update_segment("picked", filter='country = "SI"'),
        lambda: db.materialize_segment("picked"),
    ):
        with pytest.raises(crm.ValidationError):
            call()
    db.create_segment("dynamic", filter="true")
    with pytest.raises(crm.ValidationError):
        db.add_to_segment("dynamic", [ana["id"]])


def test_materialize_reports_who_entered_and_left_and_logs_it(db: crm.Crm) -> None:
    people = seed(db)
    db.create_segment("si", filter='country = "SI"')
    seq = db.changes_since()[-1]["seq"]
    first = db.materialize_segment("si")
    assert first == {"members": 5, "entered": 5, "left": 0}
    assert db.segment("si")["evaluated_at"] is not None
    leaving = people[1]["id"]
    db.update_customer(leaving, country="AT")
    entering = db.create_customer(name="New", country="SI")["id"]
    assert db.materialize_segment("si") == {"members": 5, "entered": 1, "left": 1}
    feed = [c for c in db.changes_since(after_seq=seq) if c["entity"] == "segment_member"]
    assert len(feed) == 7
    assert all(c["fields"] == ["si"] for c in feed)
    assert (feed[-2]["op"], feed[-1]["op"]) in (("created", "deleted"), ("deleted", "created"))
    assert {(c["entity_id"], c["op"]) for c in feed[-2:]} == {(entering, "created"), (leaving, "deleted")}


def test_update_segment_leaves_a_description_that_is_not_given(db: crm.Crm) -> None:
    db.create_segment("s", filter='country = "SI"', description="first")
    assert db.update_segment("s", filter='country = "AT"')["description"] == "first"
    assert db.update_segment("s", description="second")["filter"] == 'country = "AT"'
    assert db.update_segment("s")["description"] == "second"
    cleared = db.update_segment("s", description=None)
    assert cleared["description"] is None
    assert cleared["filter"] == 'country = "AT"'
    with pytest.raises(TypeError):
        db.update_segment("s", descrption="typo")  # type: ignore[call-arg]


def test_rename_rewrites_users_and_delete_refuses_a_used_segment(db: crm.Crm) -> None:
    db.create_segment("si", filter='country = "SI"')
    db.create_segment("si-vips", filter='in_segment("si") and "vip" in tags')
    renamed = db.rename_segment("si", "slovenia")
    assert renamed["name"] == "slovenia"
    assert db.segment("si-vips")["filter"] == 'in_segment("slovenia") and "vip" in tags'
    with pytest.raises(crm.ConflictError):
        db.delete_segment("slovenia")
    db.delete_segment("si-vips")
    db.delete_segment("slovenia")
    assert db.segments() == []
    assert [c["op"] for c in db.changes_since() if c["entity"] == "segment"][-2:] == ["deleted", "deleted"]


# ----- threads ---------------------------------------------------------------


def test_filter_queries_release_the_gil(file_db: crm.Crm) -> None:
    file_db.import_customers({"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(5_000))
    text = 'name contains "9" or email ends with "1@example.com" or days_since(created_at) > 3'
    ticks = 0
    done = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.01)
        during = 0
        for _ in range(5):
            before = ticks
            assert file_db.count_matching(text) > 0
            during += ticks - before
    finally:
        done.set()
        ticker.join()
    assert during > 5, during


def test_threads_share_a_handle_for_segments(file_db: crm.Crm) -> None:
    seed(file_db)
    file_db.create_segment("si", filter='country = "SI"')
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert file_db.segment_count("si") == 5
                assert len(list(file_db.iter_segment_members("si", batch_size=2))) == 5
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
