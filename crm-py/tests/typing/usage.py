"""Typed usage of the public API, checked with `mypy --strict` (not run by
pytest): the stubs must describe real code without casts or ignores."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import crm
from crm.types import Customer, ImportProgress, ImportReport, Interaction, Page


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
    as_maja = crm.Crm().with_actor("maja", source="script")
    as_maja.close()


if __name__ == "__main__":
    main()
