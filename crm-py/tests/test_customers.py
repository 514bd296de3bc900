from __future__ import annotations

import datetime

import pytest

import crm

UTC = datetime.timezone.utc


def test_create_customer_normalizes_email_and_phone(db: crm.Crm) -> None:
    ana = db.create_customer(
        first_name=" Ana ",
        last_name="Novak",
        emails=["  Ana.Novak@Example.COM "],
        phones=["+386 40 123 456"],
        tags=["VIP", "vip", "Newsletter"],
    )
    assert ana["name"] == "Ana Novak"
    assert ana["first_name"] == "Ana"
    assert ana["emails"] == ["ana.novak@example.com"]
    assert ana["phones"] == ["+38640123456"]
    assert ana["tags"] == ["newsletter", "vip"]
    assert ana["kind"] == "person"
    assert ana["lifecycle_stage"] == "subscriber"


def test_create_customer_returns_plain_python_types(db: crm.Crm) -> None:
    c = db.create_customer(
        name="Ana",
        birth_date=datetime.date(1990, 5, 17),
        attributes={"plan": "pro", "seats": 3, "score": 4.5, "active": True, "since": datetime.date(2024, 1, 31)},
        addresses=[{"label": "home", "city": "Ljubljana", "country": "si"}],
    )
    assert isinstance(c["id"], str) and len(c["id"]) == 36
    assert c["birth_date"] == datetime.date(1990, 5, 17)
    assert c["attributes"] == {
        "plan": "pro",
        "seats": 3.0,
        "score": 4.5,
        "active": True,
        "since": datetime.date(2024, 1, 31),
    }
    assert isinstance(c["attributes"]["seats"], float)
    assert c["addresses"][0]["city"] == "Ljubljana"
    assert set(c["addresses"][0]) == {"label", "line1", "line2", "city", "region", "postal_code", "country"}
    for key in ("created_at", "updated_at"):
        t = c[key]
        assert isinstance(t, datetime.datetime)
        assert t.tzinfo is not None and t.utcoffset() == datetime.timedelta(0)


def test_create_customer_accepts_a_dict_and_keywords(db: crm.Crm) -> None:
    c = db.create_customer({"name": "Acme d.o.o.", "kind": "organization"}, external_id="acme-1")
    assert c["kind"] == "organization"
    assert c["external_id"] == "acme-1"
    assert db.get_customer(c["id"]) == c


def test_people_belong_to_organizations(db: crm.Crm) -> None:
    acme = db.create_customer(name="Acme", kind="organization")
    ana = db.create_customer(name="Ana", organization_id=acme["id"])
    assert ana["organization_id"] == acme["id"]


def test_find_customer_by_external_id_and_email(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana", external_id="ext-1", emails=["ana@example.com"])
    assert db.find_customer_by_external_id("ext-1") == c
    assert db.find_customer_by_email("ANA@example.com") == c
    assert db.find_customer_by_external_id("nope") is None
    assert db.find_customer_by_email("nobody@example.com") is None


def test_update_customer_sets_and_clears_fields(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana", locale="sl-SI", owner="maja", attributes={"plan": "pro", "seats": 2})
    updated = db.update_customer(
        c["id"],
        owner="luka",
        locale=None,
        emails=["ana@example.com"],
        set_attributes={"plan": "team", "seats": None},
    )
    assert updated["owner"] == "luka"
    assert updated["locale"] is None
    assert updated["emails"] == ["ana@example.com"]
    assert updated["attributes"] == {"plan": "team"}
    assert updated["updated_at"] >= c["updated_at"]
    again = db.update_customer(c["id"], {"remove_attributes": ["plan"]})
    assert again["attributes"] == {}
    assert db.get_customer(c["id"]) == again


def test_update_customer_refuses_to_clear_the_name(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana")
    with pytest.raises(crm.ValidationError) as info:
        db.update_customer(c["id"], name=None)
    assert info.value.field == "name"


def test_update_customer_with_an_unknown_field_names_it(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana")
    for value in ("x", None):
        with pytest.raises(crm.ValidationError) as info:
            db.update_customer(c["id"], nmae=value)
        assert info.value.field == "nmae"


def test_delete_customer(db: crm.Crm) -> None:
    c = db.create_customer(name="Ana")
    db.delete_customer(c["id"])
    with pytest.raises(crm.NotFoundError):
        db.get_customer(c["id"])
    with pytest.raises(crm.NotFoundError):
        db.delete_customer(c["id"])
    assert db.count_customers() == 0


def test_upsert_customer_creates_then_merges(db: crm.Crm) -> None:
    first = db.upsert_customer(external_id="e1", name="Ana", emails=["a@example.com"], tags=["x"])
    assert first["created"] is True
    second = db.upsert_customer({"external_id": "e1", "name": "Ana", "emails": ["b@example.com"], "tags": ["y"]})
    assert second["created"] is False
    assert second["customer"]["id"] == first["customer"]["id"]
    assert second["customer"]["emails"] == ["a@example.com", "b@example.com"]
    assert second["customer"]["tags"] == ["x", "y"]
    assert db.count_customers() == 1


def test_list_customers_pages_with_cursors(db: crm.Crm) -> None:
    ids = [db.create_customer(name=f"C{i:02}")["id"] for i in range(7)]
    page = db.list_customers(limit=3)
    assert [c["id"] for c in page["items"]] == ids[:3]
    seen = []
    cursor = None
    while True:
        page = db.list_customers(limit=3, cursor=cursor)
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    by_name = db.list_customers(sort="name", descending=True, limit=2)
    assert [c["name"] for c in by_name["items"]] == ["C06", "C05"]


def test_iter_customers_follows_cursors(db: crm.Crm) -> None:
    ids = [db.create_customer(name=f"C{i}")["id"] for i in range(25)]
    assert [c["id"] for c in db.iter_customers(page_size=4)] == ids
    assert [c["id"] for c in db.iter_customers(descending=True, page_size=10)] == ids[::-1]
    it = db.iter_customers()
    assert iter(it) is it
    assert list(crm.open().iter_customers()) == []


def test_list_customers_rejects_bad_arguments(db: crm.Crm) -> None:
    cases = [
        ({"sort": "age"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"limit": 2.0}, "limit"),
        ({"limit": -1}, "limit"),
        ({"descending": "yes"}, "descending"),
        ({"cursor": "zz"}, "cursor"),
        ({"cursor": 5}, "cursor"),
    ]
    for kwargs, field in cases:
        with pytest.raises(crm.ValidationError) as info:
            db.list_customers(**kwargs)  # type: ignore[arg-type]
        assert info.value.field == field, kwargs


def test_count_customers(db: crm.Crm) -> None:
    assert db.count_customers() == 0
    db.create_customer(name="A")
    db.create_customer(name="B")
    assert db.count_customers() == 2


def test_define_attribute_and_definitions(db: crm.Crm) -> None:
    db.define_attribute("since", "date")
    db.define_attribute("since", "date")
    with pytest.raises(crm.ConflictError) as info:
        db.define_attribute("since", "number")
    assert info.value.field == "key"
    c = db.create_customer(name="Ana", attributes={"since": "2024-02-29", "plan": "pro"})
    assert c["attributes"]["since"] == datetime.date(2024, 2, 29)
    assert db.get_customer(c["id"])["attributes"]["since"] == datetime.date(2024, 2, 29)
    assert {(d["key"], d["type"]) for d in db.attribute_definitions()} == {("since", "date"), ("plan", "text")}
    with pytest.raises(crm.ValidationError) as info:
        db.define_attribute("plan", "colour")  # type: ignore[arg-type]
    assert info.value.field == "attribute_type"


def test_with_actor_records_who_changed_what(db: crm.Crm) -> None:
    as_maja = db.with_actor("maja", source="mobile-app")
    c = as_maja.create_customer(name="Acme")
    db.update_customer(c["id"], owner="luka")
    history = db.customer_history(c["id"])
    assert [(h["op"], h["actor"], h["source"]) for h in history] == [
        ("created", "maja", "mobile-app"),
        ("updated", None, None),
    ]
    assert history[1]["fields"] == ["owner"]
