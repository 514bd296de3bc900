//! End-to-end behaviour of the core through its public API only.

use std::collections::BTreeMap;

use crm_core::export::ExportFormat;
use crm_core::import::{ColumnMapping, ImportMode, ImportOptions};
use crm_core::{
    AttributeType, AttributeValue, ChangeOp, ConsentStatus, Crm, CustomerKind, CustomerPatch,
    CustomerRef, CustomerSort, EntityKind, Error, InteractionKind, ListCustomers, NewConsent,
    NewCustomer, NewInteraction, OpenOptions, SearchMatch, TimelineQuery,
};

fn crm() -> Crm {
    Crm::open_with(
        None,
        OpenOptions {
            default_region: Some("SI".into()),
            ..OpenOptions::default()
        },
    )
    .unwrap()
}

fn person(name: &str, email: &str) -> NewCustomer {
    NewCustomer {
        name: Some(name.into()),
        emails: vec![email.into()],
        ..NewCustomer::default()
    }
}

fn field_of(err: &Error) -> &str {
    match err {
        Error::Validation { field, .. }
        | Error::Conflict { field, .. }
        | Error::InvalidRow { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn created_customers_are_normalized_and_read_back_identically() {
    let crm = crm();
    let mut attributes = BTreeMap::new();
    attributes.insert("plan".to_string(), AttributeValue::Text("pro".into()));
    attributes.insert("seats".to_string(), AttributeValue::Number(12.0));
    attributes.insert(
        "renewal".to_string(),
        AttributeValue::Date(chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()),
    );
    let created = crm
        .create_customer(NewCustomer {
            first_name: Some("Ana".into()),
            last_name: Some("Novak".into()),
            emails: vec![" Ana.Novak@Example.COM ".into()],
            phones: vec!["040 123 456".into()],
            tags: vec!["VIP".into(), "vip".into(), "Newsletter".into()],
            country: Some("si".into()),
            locale: Some("sl_si".into()),
            attributes,
            ..NewCustomer::default()
        })
        .unwrap();
    assert_eq!(created.name, "Ana Novak");
    assert_eq!(created.emails, ["ana.novak@example.com"]);
    assert_eq!(created.phones, ["+38640123456"]);
    assert_eq!(created.tags, ["newsletter", "vip"]);
    assert_eq!(created.country.as_deref(), Some("SI"));
    assert_eq!(created.locale.as_deref(), Some("sl-SI"));
    let read = crm.get_customer(created.id).unwrap();
    assert_eq!(read, created);
    assert_eq!(
        crm.find_customer_by_email("ANA.NOVAK@example.com")
            .unwrap()
            .unwrap()
            .id,
        created.id
    );
}

#[test]
fn invalid_input_is_rejected_with_the_field_and_nothing_is_stored() {
    let crm = crm();
    let cases: Vec<(NewCustomer, &str)> = vec![
        (NewCustomer::default(), "name"),
        (person("Ana", "nope"), "emails[0]"),
        (
            NewCustomer {
                phones: vec!["12".into()],
                ..person("Ana", "a@b.co")
            },
            "phones[0]",
        ),
        (
            NewCustomer {
                country: Some("Slovenia".into()),
                ..person("Ana", "a@b.co")
            },
            "country",
        ),
        (
            NewCustomer {
                name: Some("x".repeat(10_000)),
                ..NewCustomer::default()
            },
            "name",
        ),
        (
            NewCustomer {
                tags: vec!["  ".into()],
                ..person("Ana", "a@b.co")
            },
            "tags[0]",
        ),
        (
            NewCustomer {
                birth_date: Some(chrono::NaiveDate::from_ymd_opt(2999, 1, 1).unwrap()),
                ..person("Ana", "a@b.co")
            },
            "birth_date",
        ),
        (
            NewCustomer {
                attributes: [("Bad Key".to_string(), AttributeValue::Bool(true))].into(),
                ..person("Ana", "a@b.co")
            },
            "attributes.Bad Key",
        ),
    ];
    for (new, field) in cases {
        let err = crm.create_customer(new).unwrap_err();
        assert_eq!(field_of(&err), field, "{err}");
    }
    assert_eq!(crm.count_customers().unwrap(), 0);
    assert!(crm.changes_since(0, 100).unwrap().is_empty());
}

#[test]
fn emails_and_external_ids_are_unique_across_customers() {
    let crm = crm();
    let a = crm
        .create_customer(NewCustomer {
            external_id: Some("X1".into()),
            ..person("A", "a@example.com")
        })
        .unwrap();
    let err = crm
        .create_customer(person("B", "A@example.com"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref field, .. } if field == "emails[0]"),
        "{err}"
    );
    let err = crm
        .create_customer(NewCustomer {
            external_id: Some("X1".into()),
            ..person("C", "c@example.com")
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { ref field, .. } if field == "external_id"),
        "{err}"
    );
    // A customer may keep their own email on update.
    crm.update_customer(
        a.id,
        &CustomerPatch {
            emails: Some(vec!["a@example.com".into(), "a2@example.com".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(crm.count_customers().unwrap(), 1);
}

#[test]
fn patches_change_only_what_they_name_and_are_logged_with_the_fields() {
    let crm = crm();
    let c = crm
        .create_customer(NewCustomer {
            owner: Some("maja".into()),
            ..person("Ana", "ana@example.com")
        })
        .unwrap();
    let as_luka = crm.with_actor("luka", Some("test"));
    let mut patch = CustomerPatch {
        lifecycle_stage: Some("lead".into()),
        ..Default::default()
    };
    patch.clear("owner").unwrap();
    let updated = as_luka.update_customer(c.id, &patch).unwrap();
    assert_eq!(updated.owner, None);
    assert_eq!(updated.lifecycle_stage, "lead");
    assert_eq!(updated.emails, c.emails);
    assert!(updated.updated_at >= c.updated_at);
    let history = crm.customer_history(c.id).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].op, ChangeOp::Updated);
    assert_eq!(history[1].fields, ["lifecycle_stage", "owner"]);
    assert_eq!(history[1].actor.as_deref(), Some("luka"));
    // A no-op patch writes nothing.
    as_luka
        .update_customer(
            c.id,
            &CustomerPatch {
                lifecycle_stage: Some("lead".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(crm.customer_history(c.id).unwrap().len(), 2);
    // A bad patch changes nothing.
    let err = crm
        .update_customer(
            c.id,
            &CustomerPatch {
                emails: Some(vec!["bad".into()]),
                lifecycle_stage: Some("customer".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(field_of(&err), "emails[0]");
    assert_eq!(crm.get_customer(c.id).unwrap(), updated);
}

#[test]
fn attribute_types_are_fixed_by_first_use_or_declaration() {
    let crm = crm();
    crm.define_attribute("renewal", AttributeType::Date)
        .unwrap();
    let c = crm
        .create_customer(NewCustomer {
            attributes: [
                (
                    "renewal".to_string(),
                    AttributeValue::Text("2027-01-31".into()),
                ),
                ("seats".to_string(), AttributeValue::Number(3.0)),
            ]
            .into(),
            ..person("Ana", "ana@example.com")
        })
        .unwrap();
    assert!(matches!(
        crm.get_customer(c.id).unwrap().attributes["renewal"],
        AttributeValue::Date(_)
    ));
    let err = crm
        .update_customer(
            c.id,
            &CustomerPatch {
                set_attributes: [("seats".to_string(), AttributeValue::Bool(true))].into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(field_of(&err), "attributes.seats");
    assert!(matches!(
        crm.define_attribute("seats", AttributeType::Text),
        Err(Error::Conflict { .. })
    ));
    let defs = crm.attribute_definitions().unwrap();
    assert_eq!(defs.len(), 2);
}

#[test]
fn people_belong_to_organizations_and_deleting_one_detaches_them() {
    let crm = crm();
    let acme = crm
        .create_customer(NewCustomer {
            kind: CustomerKind::Organization,
            name: Some("Acme".into()),
            ..Default::default()
        })
        .unwrap();
    let ana = crm
        .create_customer(NewCustomer {
            organization_id: Some(acme.id),
            ..person("Ana", "ana@example.com")
        })
        .unwrap();
    let err = crm
        .create_customer(NewCustomer {
            organization_id: Some(ana.id),
            ..person("Bo", "bo@example.com")
        })
        .unwrap_err();
    assert_eq!(field_of(&err), "organization_id");
    // The organization's name finds its people.
    let hits = crm.search("acme", 10).unwrap();
    assert!(hits.iter().any(|h| h.customer.id == ana.id));
    crm.update_customer(
        acme.id,
        &CustomerPatch {
            name: Some("Globex".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(
        crm.search("globex", 10)
            .unwrap()
            .iter()
            .any(|h| h.customer.id == ana.id)
    );
    assert!(
        !crm.search("acme", 10)
            .unwrap()
            .iter()
            .any(|h| h.customer.id == ana.id)
    );
    crm.delete_customer(acme.id).unwrap();
    assert_eq!(crm.get_customer(ana.id).unwrap().organization_id, None);
    assert!(crm.search("globex", 10).unwrap().is_empty());
    assert!(matches!(
        crm.get_customer(acme.id),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        crm.delete_customer(acme.id),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn upsert_matches_by_external_id_then_email_and_merges() {
    let crm = crm();
    let first = crm
        .upsert_customer(NewCustomer {
            external_id: Some("E1".into()),
            tags: vec!["a".into()],
            ..person("Ana", "ana@example.com")
        })
        .unwrap();
    assert!(first.created);
    let again = crm
        .upsert_customer(NewCustomer {
            tags: vec!["b".into()],
            phones: vec!["041 000 111".into()],
            ..person("Ana Novak", "ANA@example.com")
        })
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.customer.id, first.customer.id);
    assert_eq!(again.customer.name, "Ana Novak");
    assert_eq!(again.customer.tags, ["a", "b"]);
    assert_eq!(again.customer.phones, ["+38641000111"]);
    crm.create_customer(person("Bo", "bo@example.com")).unwrap();
    let err = crm
        .upsert_customer(NewCustomer {
            external_id: Some("E1".into()),
            ..person("X", "bo@example.com")
        })
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert_eq!(crm.count_customers().unwrap(), 2);
}

#[test]
fn listing_pages_through_every_customer_once_in_each_sort_order() {
    let crm = crm();
    for i in 0..57 {
        crm.create_customer(person(
            &format!("Name {:02}", (i * 37) % 57),
            &format!("p{i}@example.com"),
        ))
        .unwrap();
    }
    for sort in [
        CustomerSort::CreatedAt,
        CustomerSort::UpdatedAt,
        CustomerSort::Name,
    ] {
        for descending in [false, true] {
            let mut seen = Vec::new();
            let mut cursor = None;
            loop {
                let page = crm
                    .list_customers(&ListCustomers {
                        sort,
                        descending,
                        limit: 10,
                        cursor: cursor.clone(),
                    })
                    .unwrap();
                seen.extend(page.items.iter().map(|c| (c.name.clone(), c.id)));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 57, "{sort:?} {descending}");
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 57);
            if sort == CustomerSort::Name {
                let names: Vec<_> = seen.iter().map(|(n, _)| n.clone()).collect();
                let mut sorted = names.clone();
                sorted.sort();
                if descending {
                    sorted.reverse();
                }
                assert_eq!(names, sorted);
            }
        }
    }
    let bad = crm.list_customers(&ListCustomers {
        cursor: Some("not-a-cursor".into()),
        ..Default::default()
    });
    assert_eq!(field_of(&bad.unwrap_err()), "cursor");
    let other_sort = crm
        .list_customers(&ListCustomers {
            limit: 1,
            ..Default::default()
        })
        .unwrap()
        .next_cursor;
    let err = crm.list_customers(&ListCustomers {
        sort: CustomerSort::Name,
        cursor: other_sort,
        ..Default::default()
    });
    assert_eq!(field_of(&err.unwrap_err()), "cursor");
    assert_eq!(
        field_of(
            &crm.list_customers(&ListCustomers {
                limit: 0,
                ..Default::default()
            })
            .unwrap_err()
        ),
        "limit"
    );
}

#[test]
fn the_timeline_is_newest_first_and_paginates() {
    let crm = crm();
    let c = crm
        .create_customer(person("Ana", "ana@example.com"))
        .unwrap();
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    for day in 0..25 {
        crm.log_interaction(NewInteraction {
            occurred_at: Some(base + chrono::Duration::days(day)),
            amount_minor: (day % 2 == 0).then_some(1000 + day),
            currency: (day % 2 == 0).then(|| "eur".into()),
            ..NewInteraction::new(
                c.id,
                if day % 2 == 0 {
                    InteractionKind::Purchase
                } else {
                    InteractionKind::Email
                },
            )
        })
        .unwrap();
    }
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = crm
            .timeline(
                c.id,
                &TimelineQuery {
                    limit: 7,
                    cursor,
                    kind: None,
                },
            )
            .unwrap();
        all.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at));
    assert_eq!(all[0].currency.as_deref(), Some("EUR"));
    let purchases = crm
        .timeline(
            c.id,
            &TimelineQuery {
                kind: Some(InteractionKind::Purchase),
                limit: 100,
                cursor: None,
            },
        )
        .unwrap();
    assert_eq!(purchases.items.len(), 13);
    assert!(matches!(
        crm.timeline(crm_core::CustomerId::new(), &TimelineQuery::default()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn interactions_reject_bad_money_scores_and_metadata() {
    let crm = crm();
    let c = crm
        .create_customer(person("Ana", "ana@example.com"))
        .unwrap();
    let base = || NewInteraction::new(c.id, InteractionKind::Purchase);
    let cases = [
        (
            NewInteraction {
                amount_minor: Some(100),
                ..base()
            },
            "currency",
        ),
        (
            NewInteraction {
                amount_minor: Some(100),
                currency: Some("EURO".into()),
                ..base()
            },
            "currency",
        ),
        (
            NewInteraction {
                score: Some(11),
                ..base()
            },
            "score",
        ),
        (
            NewInteraction {
                quantity: Some(-1),
                ..base()
            },
            "quantity",
        ),
        (
            NewInteraction {
                metadata: Some(serde_json::json!([1, 2])),
                ..base()
            },
            "metadata",
        ),
        (
            NewInteraction {
                subject: Some("s".repeat(5_000)),
                ..base()
            },
            "subject",
        ),
    ];
    for (new, field) in cases {
        assert_eq!(field_of(&crm.log_interaction(new).unwrap_err()), field);
    }
    let err = crm
        .log_interaction(NewInteraction::new(
            CustomerRef::ExternalId("nobody".into()),
            InteractionKind::Note,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { entity: "customer" }));
    assert_eq!(crm.count_interactions().unwrap(), 0);
    let by_email = crm.log_interaction(NewInteraction::new(
        CustomerRef::Email("ANA@example.com".into()),
        InteractionKind::Note,
    ));
    assert_eq!(by_email.unwrap().customer_id, c.id);
}

#[test]
fn consent_resolves_to_the_latest_answer_and_defaults_to_no() {
    let crm = crm();
    let c = crm
        .create_customer(person("Ana", "ana@example.com"))
        .unwrap();
    assert!(
        !crm.has_consent(c.id, "email_marketing", Some("email"))
            .unwrap()
    );
    let t0 = chrono::Utc::now() - chrono::Duration::days(10);
    crm.record_consent(
        c.id,
        &NewConsent {
            recorded_at: Some(t0),
            proof: Some("form v1".into()),
            ..NewConsent::new("email_marketing", ConsentStatus::Granted)
        },
    )
    .unwrap();
    assert!(
        crm.has_consent(c.id, "email_marketing", Some("email"))
            .unwrap()
    );
    assert!(crm.has_consent(c.id, "email_marketing", None).unwrap());
    crm.record_consent(
        c.id,
        &NewConsent {
            channel: Some("sms".into()),
            ..NewConsent::new("email_marketing", ConsentStatus::Withdrawn)
        },
    )
    .unwrap();
    assert!(
        !crm.has_consent(c.id, "email_marketing", Some("sms"))
            .unwrap()
    );
    assert!(
        crm.has_consent(c.id, "email_marketing", Some("email"))
            .unwrap()
    );
    // An answer recorded earlier than the latest one does not override it.
    crm.record_consent(
        c.id,
        &NewConsent {
            recorded_at: Some(t0 - chrono::Duration::days(1)),
            ..NewConsent::new("email_marketing", ConsentStatus::Denied)
        },
    )
    .unwrap();
    assert!(
        crm.has_consent(c.id, "email_marketing", Some("email"))
            .unwrap()
    );
    assert_eq!(
        crm.consent_history(c.id, Some("email_marketing"))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        field_of(
            &crm.record_consent(
                c.id,
                &NewConsent::new("Email Marketing!", ConsentStatus::Granted)
            )
            .unwrap_err()
        ),
        "purpose"
    );
    assert!(matches!(
        crm.has_consent(crm_core::CustomerId::new(), "x", None),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn search_finds_names_emails_phones_and_subjects_and_treats_input_as_text() {
    let crm = crm();
    let ana = crm
        .create_customer(NewCustomer {
            phones: vec!["040 123 456".into()],
            ..person("Ana Kovačič", "ana@example.com")
        })
        .unwrap();
    let bo = crm
        .create_customer(person("Bo Li", "bo@example.com"))
        .unwrap();
    crm.log_interaction(NewInteraction {
        subject: Some("Warranty claim for the blender".into()),
        ..NewInteraction::new(bo.id, InteractionKind::Ticket)
    })
    .unwrap();
    assert_eq!(
        crm.search("kovacic", 5).unwrap()[0].customer.id,
        ana.id,
        "diacritics fold"
    );
    assert_eq!(
        crm.search("Kova", 5).unwrap()[0].customer.id,
        ana.id,
        "prefix"
    );
    assert_eq!(
        crm.search("ana@example.com", 5).unwrap()[0].customer.id,
        ana.id
    );
    assert_eq!(crm.search("38640123456", 5).unwrap()[0].customer.id, ana.id);
    let hits = crm.search("blender", 5).unwrap();
    assert_eq!(hits[0].customer.id, bo.id);
    assert!(matches!(hits[0].matched, SearchMatch::Interaction { .. }));
    for hostile in [
        "\"",
        "ana OR",
        "NEAR(",
        "*",
        "a:b",
        "'; DROP TABLE customers; --",
    ] {
        let _ = crm.search(hostile, 5);
    }
    assert_eq!(crm.count_customers().unwrap(), 2);
    crm.delete_customer(bo.id).unwrap();
    assert!(crm.search("blender", 5).unwrap().is_empty());
}

#[test]
fn a_csv_import_is_all_or_nothing_by_default() {
    let crm = crm();
    let csv = "name,email,phone,tags,attr.plan\nAna,ana@example.com,040 123 456,vip;b2b,pro\nBo,not-an-email,,,\nCe,ce@example.com,,,free\n";
    let err = crm
        .import_customers_csv(
            csv.as_bytes(),
            &ColumnMapping::default(),
            &ImportOptions::default(),
            None,
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidRow { row: 2, ref field, .. } if field == "emails[0]"),
        "{err}"
    );
    assert_eq!(crm.count_customers().unwrap(), 0);
    assert!(
        crm.attribute_definitions().unwrap().is_empty(),
        "nothing half-written"
    );
    let mut calls = 0;
    let report = crm
        .import_customers_csv(
            csv.as_bytes(),
            &ColumnMapping::default(),
            &ImportOptions {
                mode: ImportMode::SkipInvalid,
                progress_every: 1,
                ..Default::default()
            },
            Some(&mut |_| calls += 1),
        )
        .unwrap();
    assert_eq!((report.rows, report.inserted, report.rejected), (3, 2, 1));
    assert_eq!(report.errors[0].row, 2);
    assert!(calls >= 3);
    let ana = crm
        .find_customer_by_email("ana@example.com")
        .unwrap()
        .unwrap();
    assert_eq!(ana.tags, ["b2b", "vip"]);
    assert_eq!(ana.attributes["plan"], AttributeValue::Text("pro".into()));
    assert_eq!(
        crm.search("ana", 5).unwrap()[0].customer.id,
        ana.id,
        "imported rows are searchable"
    );
    assert_eq!(
        crm.changes_since(0, 100)
            .unwrap()
            .iter()
            .filter(|c| c.entity == EntityKind::Customer)
            .count(),
        2
    );
}

#[test]
fn malformed_csv_is_reported_per_row_and_bad_headers_stop_before_anything() {
    let crm = crm();
    let err = crm
        .import_customers_csv(
            "nmae,email\nAna,a@b.co\n".as_bytes(),
            &ColumnMapping::default(),
            &ImportOptions::default(),
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("did you mean 'name'"), "{err}");
    let mapped = ColumnMapping::default().map("name", "Full Name");
    let report = crm
        .import_customers_csv(
            b"Full Name,email\nAna,a@b.co\nBo,b@b.co,extra\n\xff\xfe,c@b.co\n".as_slice(),
            &mapped,
            &ImportOptions {
                mode: ImportMode::SkipInvalid,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(report.inserted, 1);
    assert_eq!(report.rejected, 2);
    assert_eq!(report.errors[1].field, "Full Name");
}

#[test]
fn duplicate_rows_within_an_import_are_conflicts_or_merges() {
    let crm = crm();
    let rows = vec![
        person("Ana", "ana@example.com"),
        person("Ana again", "ana@example.com"),
    ];
    let report = crm
        .import_customers(
            rows.clone(),
            &ImportOptions {
                mode: ImportMode::SkipInvalid,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.rejected), (1, 1));
    let report = crm
        .import_customers(
            rows,
            &ImportOptions {
                upsert: true,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.updated), (0, 2));
    assert_eq!(
        crm.find_customer_by_email("ana@example.com")
            .unwrap()
            .unwrap()
            .name,
        "Ana again"
    );
}

#[test]
fn interactions_import_from_ndjson_and_export_round_trips() {
    let crm = crm();
    crm.create_customer(NewCustomer {
        external_id: Some("C1".into()),
        ..person("Ana", "ana@example.com")
    })
    .unwrap();
    let ndjson = r#"{"customer_external_id":"C1","kind":"purchase","amount":"12.30","currency":"EUR","occurred_at":"2025-01-02T10:00:00Z"}

{"customer_email":"ana@example.com","kind":"email","subject":"Hello","direction":"outbound","metadata":{"campaign":"x"}}
{"customer_external_id":"C404","kind":"note"}
not json
"#;
    let report = crm
        .import_interactions_ndjson(
            ndjson.as_bytes(),
            &ColumnMapping::default(),
            &ImportOptions {
                mode: ImportMode::SkipInvalid,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.rejected), (2, 2));
    assert_eq!(report.errors[0].row, 4, "blank lines count as lines");
    let mut out = Vec::new();
    assert_eq!(
        crm.export_interactions(&mut out, ExportFormat::Csv)
            .unwrap(),
        2
    );
    let copy = Crm::open_in_memory().unwrap();
    let mut customers = Vec::new();
    crm.export_customers(&mut customers, ExportFormat::Csv)
        .unwrap();
    copy.import_customers_csv(
        customers.as_slice(),
        &ColumnMapping::default(),
        &ImportOptions::default(),
        None,
    )
    .unwrap();
    // Interactions name their customer by id, which a copy does not share:
    // map the exported customer_id column to the email instead.
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("1230"));
    let original = crm.find_customer_by_external_id("C1").unwrap().unwrap();
    let fresh = copy.find_customer_by_external_id("C1").unwrap().unwrap();
    let rewritten = text.replace(&original.id.to_string(), &fresh.id.to_string());
    let report = copy
        .import_interactions_csv(
            rewritten.as_bytes(),
            &ColumnMapping::default(),
            &ImportOptions::default(),
            None,
        )
        .unwrap();
    assert_eq!(report.inserted, 2);
    let a = crm
        .timeline(original.id, &TimelineQuery::default())
        .unwrap()
        .items;
    let b = copy
        .timeline(fresh.id, &TimelineQuery::default())
        .unwrap()
        .items;
    let strip = |i: &crm_core::Interaction| {
        (
            i.kind.clone(),
            i.occurred_at,
            i.subject.clone(),
            i.amount_minor,
            i.metadata.clone(),
        )
    };
    assert_eq!(
        a.iter().map(strip).collect::<Vec<_>>(),
        b.iter().map(strip).collect::<Vec<_>>()
    );
}

#[test]
fn a_newer_or_foreign_database_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.crm");
    rusqlite_free_setup(&newer);
    let before = std::fs::read(&newer).unwrap();
    let err = Crm::open(&newer).unwrap_err();
    assert!(
        matches!(err, Error::IncompatibleDatabase { found: 99, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&newer).unwrap(), before);

    let garbage = dir.path().join("garbage.crm");
    std::fs::write(&garbage, vec![7_u8; 8192]).unwrap();
    assert!(matches!(Crm::open(&garbage), Err(Error::Corrupt)));
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![7_u8; 8192]);
}

/// Makes a database whose schema version is 99 by writing a tiny valid
/// SQLite file through the library's own open, then bumping the version.
fn rusqlite_free_setup(path: &std::path::Path) {
    let crm = Crm::open(path).unwrap();
    crm.close().unwrap();
    // Patch the header's user_version (offset 60, big-endian) directly.
    let mut bytes = std::fs::read(path).unwrap();
    bytes[60..64].copy_from_slice(&99_u32.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn a_file_database_is_shared_by_threads_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.crm");
    let crm = Crm::open(&path).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let crm = crm.clone();
            s.spawn(move || {
                for i in 0..50 {
                    crm.create_customer(person(
                        &format!("T{t} {i}"),
                        &format!("t{t}.{i}@example.com"),
                    ))
                    .unwrap();
                    let _ = crm.search("t1", 5).unwrap();
                    let _ = crm.count_customers().unwrap();
                }
            });
        }
    });
    assert_eq!(crm.count_customers().unwrap(), 200);
    crm.close().unwrap();
    assert!(matches!(crm.count_customers(), Err(Error::Closed)));
    assert!(matches!(
        crm.create_customer(person("x", "x@example.com")),
        Err(Error::Closed)
    ));
    let again = Crm::open(&path).unwrap();
    assert_eq!(again.count_customers().unwrap(), 200);
}

#[test]
fn the_change_feed_resumes_after_the_last_sequence_number() {
    let crm = crm();
    for i in 0..5 {
        crm.create_customer(person(&format!("P{i}"), &format!("p{i}@example.com")))
            .unwrap();
    }
    let first = crm.changes_since(0, 3).unwrap();
    assert_eq!(first.len(), 3);
    let rest = crm.changes_since(first.last().unwrap().seq, 100).unwrap();
    assert_eq!(rest.len(), 2);
    assert!(
        rest.iter()
            .all(|c| c.op == ChangeOp::Created && c.entity == EntityKind::Customer)
    );
}

#[test]
fn the_generator_is_deterministic() {
    use crm_core::synth::{Generator, SynthConfig};
    let g = Generator::new(SynthConfig {
        customers: 300,
        ..SynthConfig::default()
    });
    let a: Vec<_> = g.people(&[]).take(50).collect();
    let b: Vec<_> = g.people(&[]).take(50).collect();
    assert_eq!(a, b);
    assert_eq!(g.interactions_of(7), g.interactions_of(7));
}

#[test]
fn a_progress_callback_that_uses_the_same_handle_gets_busy_instead_of_a_deadlock() {
    let crm = crm();
    let mut seen = Vec::new();
    let inner = crm.clone();
    crm.import_customers(
        vec![person("Ana", "ana@example.com")],
        &ImportOptions {
            progress_every: 1,
            ..Default::default()
        },
        Some(&mut |_| {
            seen.push(
                inner
                    .count_customers()
                    .map_err(|e| matches!(e, Error::Busy)),
            )
        }),
    )
    .unwrap();
    // Inside the import: refused; after it (the final call): answered.
    assert_eq!(seen.first(), Some(&Err(true)));
    assert_eq!(seen.last(), Some(&Ok(1)));
}

#[test]
fn an_export_imports_into_another_crm_with_people_linked_to_their_organizations() {
    let crm = crm();
    let acme = crm
        .create_customer(NewCustomer {
            kind: CustomerKind::Organization,
            external_id: Some("ORG-1".into()),
            name: Some("Acme".into()),
            ..Default::default()
        })
        .unwrap();
    crm.create_customer(NewCustomer {
        organization_id: Some(acme.id),
        ..person("Ana", "ana@example.com")
    })
    .unwrap();
    for format in [ExportFormat::Csv, ExportFormat::Ndjson] {
        let mut out = Vec::new();
        crm.export_customers(&mut out, format).unwrap();
        let copy = Crm::open_in_memory().unwrap();
        match format {
            ExportFormat::Csv => copy.import_customers_csv(
                out.as_slice(),
                &ColumnMapping::default(),
                &ImportOptions::default(),
                None,
            ),
            ExportFormat::Ndjson => copy.import_customers_ndjson(
                out.as_slice(),
                &ColumnMapping::default().map("organization_id", "organization_id"),
                &ImportOptions::default(),
                None,
            ),
        }
        .unwrap();
        let org = copy.find_customer_by_external_id("ORG-1").unwrap().unwrap();
        let ana = copy
            .find_customer_by_email("ana@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(ana.organization_id, Some(org.id), "{format:?}");
    }
}

// ----- change listeners -----------------------------------------------------

/// What a recording listener heard: entity, operation and id of each change.
type Heard = std::sync::Arc<std::sync::Mutex<Vec<(EntityKind, ChangeOp, String)>>>;

fn recorder() -> (Heard, std::sync::Arc<dyn crm_core::ChangeListener>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let listener = std::sync::Arc::new(move |changes: &[crm_core::Change]| {
        sink.lock().unwrap().extend(
            changes
                .iter()
                .map(|c| (c.entity, c.op, c.entity_id.clone())),
        );
    });
    (seen, listener)
}

#[test]
fn listeners_hear_each_committed_write_in_order_until_removed() {
    let crm = crm();
    let (seen, listener) = recorder();
    let id = crm.add_change_listener(listener);
    let ana = crm
        .create_customer(person("Ana", "ana@example.com"))
        .unwrap();
    crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Note))
        .unwrap();
    // A write that fails, and one that changes nothing, notify no one.
    assert!(
        crm.update_customer(
            ana.id,
            &CustomerPatch {
                emails: Some(vec!["bad".into()]),
                ..CustomerPatch::default()
            }
        )
        .is_err()
    );
    crm.update_customer(ana.id, &CustomerPatch::default())
        .unwrap();
    crm.with_actor("maja", None)
        .delete_customer(ana.id)
        .unwrap();
    let seen_now = seen.lock().unwrap().clone();
    let kinds: Vec<_> = seen_now.iter().map(|(e, o, _)| (*e, *o)).collect();
    assert_eq!(
        kinds,
        [
            (EntityKind::Customer, ChangeOp::Created),
            (EntityKind::Interaction, ChangeOp::Created),
            (EntityKind::Customer, ChangeOp::Deleted),
        ]
    );
    assert_eq!(seen_now[0].2, ana.id.to_string());

    assert!(crm.remove_change_listener(id));
    assert!(!crm.remove_change_listener(id));
    crm.create_customer(person("Bo", "bo@example.com")).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[test]
fn a_panicking_listener_breaks_neither_the_write_nor_the_others() {
    let crm = crm();
    crm.add_change_listener(std::sync::Arc::new(|_: &[crm_core::Change]| {
        panic!("listener bug")
    }));
    let (seen, listener) = recorder();
    crm.add_change_listener(listener);
    let ana = crm
        .create_customer(person("Ana", "ana@example.com"))
        .unwrap();
    assert_eq!(crm.get_customer(ana.id).unwrap().id, ana.id);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn a_listener_may_use_the_crm_and_bulk_writes_arrive_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let crm = Crm::open(dir.path().join("l.crm")).unwrap();
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = batches.clone();
    let reader = crm.clone();
    crm.add_change_listener(std::sync::Arc::new(
        move |changes: &[crm_core::Change]| {
            // Reading inside the listener works: the write's lock is released.
            let total = reader.count_customers().unwrap();
            sink.lock().unwrap().push((changes.len(), total));
        },
    ));
    let rows = (0..2_500).map(|i| person(&format!("P{i}"), &format!("p{i}@example.com")));
    crm.import_customers(rows, &ImportOptions::default(), None)
        .unwrap();
    assert_eq!(
        *batches.lock().unwrap(),
        vec![(1_000, 2_500), (1_000, 2_500), (500, 2_500)]
    );
}
