from __future__ import annotations

import crm


def test_search_finds_customers_by_name_and_interaction_subject(db: crm.Crm) -> None:
    ana = db.create_customer(name="Ana Novak", emails=["ana@example.com"])
    bo = db.create_customer(name="Bo Berg")
    db.log_interaction(bo["id"], "ticket", subject="Refund for blender")
    hits = db.search("novak")
    assert [h["customer"]["id"] for h in hits] == [ana["id"]]
    assert hits[0]["matched"] == "customer"
    assert hits[0]["interaction_id"] is None
    assert isinstance(hits[0]["score"], float)
    by_subject = db.search("blend")
    assert by_subject[0]["customer"]["id"] == bo["id"]
    assert by_subject[0]["matched"] == "interaction"
    assert by_subject[0]["subject"] == "Refund for blender"
    assert by_subject[0]["interaction_id"] is not None
    assert db.search("nothing-matches-this", limit=5) == []


def test_changes_since_is_a_resumable_feed(db: crm.Crm) -> None:
    a = db.create_customer(name="A")
    db.update_customer(a["id"], owner="maja")
    db.delete_customer(a["id"])
    changes = db.changes_since()
    assert [(c["entity"], c["op"]) for c in changes] == [
        ("customer", "created"),
        ("customer", "updated"),
        ("customer", "deleted"),
    ]
    assert all(c["entity_id"] == a["id"] for c in changes)
    seqs = [c["seq"] for c in changes]
    assert seqs == sorted(seqs)
    assert db.changes_since(after_seq=seqs[0], limit=1)[0]["seq"] == seqs[1]
    assert db.changes_since(after_seq=seqs[-1]) == []
    assert changes[0]["at"].tzinfo is not None


def test_customer_history_lists_one_customers_changes(db: crm.Crm) -> None:
    a = db.create_customer(name="A")
    db.create_customer(name="B")
    db.update_customer(a["id"], tags=["vip"])
    assert [h["op"] for h in db.customer_history(a["id"])] == ["created", "updated"]
