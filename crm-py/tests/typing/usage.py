"""Typed usage of the public API, checked with `mypy --strict` (not run by
pytest): the stubs must describe real code without casts or ignores."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import crm
from crm.types import (
    Change,
    Customer,
    CustomerCard,
    CustomerCardPage,
    FilterTree,
    ImportProgress,
    ImportReport,
    Interaction,
    MaterializeReport,
    Page,
    Segment,
)


def on_progress(p: ImportProgress) -> None:
    print(p["rows"], p["applied"], p["rejected"])


def main() -> None:
    with crm.open(":memory:", default_region="SI", busy_timeout_ms=1000) as db:
        ana: Customer = db.create_customer(
            name="Ana Novak",
            emails=["ana@example.com"],
            attributes={"plan": "pro", "seats": 3, "since": datetime.date(2024, 1, 1)},
        )
        created: datetime.datetime = ana["created_at"]
        db.update_customer(ana["id"], locale=None, set_attributes={"plan": None})
        purchase: Interaction = db.log_interaction(
            ana["id"], "purchase", amount_minor=1299, currency="EUR", occurred_at=created
        )
        db.log_interaction({"email": "ana@example.com"}, "note", subject="hello")
        amount: int | None = purchase["amount_minor"]
        page: Page[Customer] = db.list_customers(sort="name", limit=10)
        everyone: Iterator[Customer] = db.iter_customers(page_size=100)
        names = [c["name"] for c in everyone]
        report: ImportReport = db.import_customers(
            [{"name": "Bo"}], mode="skip_invalid", progress=on_progress
        )
        if db.has_consent(ana["id"], "newsletter", "email"):
            print("ok")
        db.record_consent(ana["id"], "newsletter", "granted", channel="email")
        for hit in db.search("novak"):
            print(hit["customer"]["name"], hit["score"])
        for change in db.changes_since(0):
            print(change["seq"], change["op"])
        print(amount, page["next_cursor"], names, report["errors"], db.count_customers())
        try:
            db.get_customer("nope")
        except crm.ValidationError as e:
            field: str = e.field
            row: int | None = e.row
            print(field, row)
        except crm.NotFoundError as e:
            print(e.entity)
        segments(db)
        listeners_and_cards(db)
    as_maja = crm.Crm().with_actor("maja", source="script")
    as_maja.close()


def segments(db: crm.Crm) -> None:
    canonical: str = db.check_filter('country = "SI"')
    tree: FilterTree = crm.parse_filter(canonical)
    text: str = crm.format_filter(tree)
    n: int = db.count_matching(tree) + db.count_matching(text)
    page: Page[Customer] = db.find_matching('"vip" in tags', limit=10, cursor=None)
    matches: bool = db.customer_matches(page["items"][0]["id"], tree)
    explain: crm.Explain = db.explain(text)
    sql: str = explain.sql
    plan: list[str] = explain.plan
    params: list[str] = explain.params
    si: Segment = db.create_segment("si", filter=tree, description="Slovenians")
    picked: crm.Segment = db.create_segment("picked")
    added: int = db.add_to_segment("picked", [c["id"] for c in page["items"]])
    removed: int = db.remove_from_segment("picked", (page["items"][0]["id"],))
    db.update_segment("si", filter='country = "AT"')
    db.update_segment("si", description=None)
    db.rename_segment("picked", "chosen")
    everyone: list[Segment] = db.segments()
    count: int = db.segment_count("si")
    members: Page[Customer] = db.segment_members("si", limit=50)
    for member in db.iter_segment_members("si", batch_size=500):
        print(member["name"])
    inside: bool = db.segment_contains("si", page["items"][0]["id"])
    report: MaterializeReport = db.materialize_segment("si")
    evaluated: datetime.datetime | None = db.segment("si")["evaluated_at"]
    db.delete_segment("chosen")
    try:
        db.count_matching('contry = "SI"')
    except crm.ParseError as e:
        where: tuple[int, int] = (e.line, e.column)
        suggestion: str | None = e.suggestion
        print(where, suggestion, e.message, e.field)
    print(n, matches, sql, plan, params, si["kind"], picked["filter"], added, removed)
    print(everyone, count, members["next_cursor"], inside, report["entered"], evaluated)


def on_changes(changes: list[Change]) -> None:
    for change in changes:
        print(change["entity"], change["entity_id"], change["op"], change["fields"])


def listeners_and_cards(db: crm.Crm) -> None:
    listener_id: int = db.add_change_listener(on_changes)
    seen: list[Change] = []
    other: int = db.add_change_listener(seen.extend)
    db.create_customer(name="Cid")
    removed: bool = db.remove_change_listener(listener_id)
    db.remove_change_listener(other)
    page: Page[CustomerCard] = db.list_customer_cards(sort="name", descending=True, limit=10)
    for card in page["items"]:
        email: str | None = card["email"]
        latest: Interaction | None = card["latest_interaction"]
        when = latest["occurred_at"] if latest is not None else None
        print(card["id"], card["kind"], card["name"], email, card["tags"], when)
    more: CustomerCardPage = db.list_customer_cards(cursor=page["next_cursor"])
    first: crm.CustomerCard | None = more["items"][0] if more["items"] else None
    print(removed, seen, first)


if __name__ == "__main__":
    main()
