//! The filter language and segments, through the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use chrono::{Duration, NaiveDate, Utc};
use crm_core::import::ImportOptions;
use crm_core::{
    AttributeValue, ChangeOp, ConsentStatus, Crm, CustomerId, CustomerKind, CustomerPatch,
    Direction, EntityKind, Error, InteractionKind, MembersQuery, NewConsent, NewCustomer,
    NewInteraction, NewSegment, SegmentKind, SegmentPatch,
};

fn customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: Some(name.into()),
        ..NewCustomer::default()
    }
}

fn days_ago(days: i64) -> chrono::DateTime<Utc> {
    Utc::now() - Duration::days(days)
}

fn purchase(crm: &Crm, who: CustomerId, days: i64, amount_minor: i64, currency: &str) {
    crm.log_interaction(NewInteraction {
        occurred_at: Some(days_ago(days)),
        amount_minor: Some(amount_minor),
        currency: Some(currency.into()),
        ..NewInteraction::new(who, InteractionKind::Purchase)
    })
    .unwrap();
}

/// The names of the customers matching `filter`, through the set query.
fn names(crm: &Crm, filter: &str) -> BTreeSet<String> {
    let page = crm
        .find_matching(
            filter,
            &MembersQuery {
                limit: 10_000,
                cursor: None,
            },
        )
        .unwrap_or_else(|e| panic!("{filter}: {e}"));
    page.items.into_iter().map(|c| c.name).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn parse_error(err: Error) -> (u32, u32, String, Option<String>) {
    match err {
        Error::Parse {
            line,
            column,
            message,
            suggestion,
        } => (line, column, message, suggestion),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// A small CRM with customers chosen to tell the predicates apart.
struct Fixture {
    crm: Crm,
    ids: BTreeMap<&'static str, CustomerId>,
}

fn fixture() -> Fixture {
    let crm = Crm::open_in_memory().unwrap();
    let mut ids = BTreeMap::new();
    let acme = crm
        .create_customer(NewCustomer {
            kind: CustomerKind::Organization,
            name: Some("Acme".into()),
            country: Some("DE".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    ids.insert("Acme", acme.id);
    let mut attrs = BTreeMap::new();
    attrs.insert("plan".to_string(), AttributeValue::Text("Pro".into()));
    attrs.insert("seats".to_string(), AttributeValue::Number(12.0));
    attrs.insert("newsletter".to_string(), AttributeValue::Bool(true));
    attrs.insert(
        "renewal".to_string(),
        AttributeValue::Date(NaiveDate::from_ymd_opt(2030, 1, 31).unwrap()),
    );
    let birthday_soon = (Utc::now() + Duration::days(5)).date_naive();
    let birth = NaiveDate::from_ymd_opt(1990, 1, 1)
        .unwrap()
        .with_month_day(birthday_soon);
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana Novak".into()),
            emails: vec!["ana@acme.com".into()],
            country: Some("SI".into()),
            tags: vec!["VIP".into(), "beta".into()],
            attributes: attrs,
            lifecycle_stage: Some("customer".into()),
            organization_id: Some(acme.id),
            birth_date: Some(birth),
            ..NewCustomer::default()
        })
        .unwrap();
    ids.insert("Ana Novak", ana.id);
    let mut attrs = BTreeMap::new();
    attrs.insert("plan".to_string(), AttributeValue::Text("free".into()));
    attrs.insert("seats".to_string(), AttributeValue::Number(1.0));
    let bojan = crm
        .create_customer(NewCustomer {
            name: Some("Bojan Kos".into()),
            emails: vec!["bojan@example.org".into()],
            country: Some("AT".into()),
            tags: vec!["beta".into()],
            attributes: attrs,
            lifecycle_stage: Some("lead".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    ids.insert("Bojan Kos", bojan.id);
    let zala = crm
        .create_customer(NewCustomer {
            name: Some("Žala Čeh".into()),
            lifecycle_stage: Some("churned".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    ids.insert("Žala Čeh", zala.id);

    // Ana: 3 purchases in the last 90 days, 620.00 EUR in the year.
    purchase(&crm, ana.id, 10, 20_000, "EUR");
    purchase(&crm, ana.id, 40, 20_000, "EUR");
    purchase(&crm, ana.id, 80, 22_000, "EUR");
    // Bojan: one old purchase of 100 000 JPY (100 000 major units).
    purchase(&crm, bojan.id, 200, 100_000, "JPY");
    crm.log_interaction(NewInteraction {
        direction: Some(Direction::Inbound),
        occurred_at: Some(days_ago(3)),
        ..NewInteraction::new(bojan.id, InteractionKind::Call)
    })
    .unwrap();
    crm.log_interaction(NewInteraction {
        score: Some(4),
        ..NewInteraction::new(bojan.id, InteractionKind::SurveyResponse)
    })
    .unwrap();
    crm.log_interaction(NewInteraction {
        score: Some(9),
        ..NewInteraction::new(ana.id, InteractionKind::SurveyResponse)
    })
    .unwrap();
    crm.record_consent(
        ana.id,
        &NewConsent::new("email_marketing", ConsentStatus::Granted),
    )
    .unwrap();
    crm.record_consent(
        bojan.id,
        &NewConsent::new("email_marketing", ConsentStatus::Granted),
    )
    .unwrap();
    crm.record_consent(
        bojan.id,
        &NewConsent::new("email_marketing", ConsentStatus::Withdrawn),
    )
    .unwrap();
    Fixture { crm, ids }
}

trait WithMonthDay {
    fn with_month_day(self, from: NaiveDate) -> NaiveDate;
}

impl WithMonthDay for NaiveDate {
    fn with_month_day(self, from: NaiveDate) -> NaiveDate {
        use chrono::Datelike;
        // 1992 is a leap year, so 29 February exists.
        NaiveDate::from_ymd_opt(1992, from.month(), from.day()).unwrap()
    }
}

/// Every case: expression and the customers it must match.
const CASES: &[(&str, &[&str])] = &[
    (r#"country = "si""#, &["Ana Novak"]),
    (r#"country in ("SI", "AT")"#, &["Ana Novak", "Bojan Kos"]),
    (r#"country not in ("SI")"#, &["Acme", "Bojan Kos"]),
    (r#"not country = "SI""#, &["Acme", "Bojan Kos", "Žala Čeh"]),
    (r#""vip" in tags"#, &["Ana Novak"]),
    (r#""VIP" not in tags"#, &["Acme", "Bojan Kos", "Žala Čeh"]),
    (r#"tags is empty"#, &["Acme", "Žala Čeh"]),
    (r#"attr.plan = "pro""#, &["Ana Novak"]),
    (r#"attr.seats >= 10"#, &["Ana Novak"]),
    (r#"attr.newsletter"#, &["Ana Novak"]),
    (r#"attr.renewal > "2029-12-31""#, &["Ana Novak"]),
    (r#"attr.plan is null"#, &["Acme", "Žala Čeh"]),
    (r#"stage >= "mql""#, &["Ana Novak"]),
    (r#"stage < "mql""#, &["Acme", "Bojan Kos"]),
    (r#"stage = "churned""#, &["Žala Čeh"]),
    (r#"name contains "NOVAK""#, &["Ana Novak"]),
    (r#"name starts with "žala""#, &["Žala Čeh"]),
    (r#"name ends with "čeh""#, &["Žala Čeh"]),
    (r#"name = "ana novak""#, &["Ana Novak"]),
    (r#"email ends with "@acme.com""#, &["Ana Novak"]),
    (r#"email = "BOJAN@example.org""#, &["Bojan Kos"]),
    (r#"email is null"#, &["Acme", "Žala Čeh"]),
    (r#"organization.country = "DE""#, &["Ana Novak"]),
    (r#"organization.name contains "acme""#, &["Ana Novak"]),
    (r#"kind = "organization""#, &["Acme"]),
    (r#"birth_date within next 14d"#, &["Ana Novak"]),
    (
        r#"created_at within 1d"#,
        &["Acme", "Ana Novak", "Bojan Kos", "Žala Čeh"],
    ),
    (r#"created_at < now - 30d"#, &[]),
    (r#"count(purchases within 90d) >= 3"#, &["Ana Novak"]),
    (r#"count(purchases within 30d) >= 3"#, &[]),
    (r#"count(purchases) = 0"#, &["Acme", "Žala Čeh"]),
    (
        r#"count(purchases) < 2"#,
        &["Acme", "Bojan Kos", "Žala Čeh"],
    ),
    (
        r#"sum(purchases.amount within 365d) > 500"#,
        &["Ana Novak", "Bojan Kos"],
    ),
    (
        r#"sum(purchases.amount within 365d) > 500 and consented("email_marketing")"#,
        &["Ana Novak"],
    ),
    (
        r#"sum(purchases.amount where currency = "EUR") > 500"#,
        &["Ana Novak"],
    ),
    (r#"sum(purchases.amount) >= 99999.5"#, &["Bojan Kos"]),
    (r#"max(purchases.amount) = 220"#, &["Ana Novak"]),
    (
        r#"count(interactions where kind = "call" and direction = "inbound") = 0"#,
        &["Acme", "Ana Novak", "Žala Čeh"],
    ),
    (
        r#"count(calls within 7d where direction = "inbound") = 1"#,
        &["Bojan Kos"],
    ),
    (r#"days_since(last purchase) > 120"#, &["Bojan Kos"]),
    (
        r#"not days_since(last purchase) > 120"#,
        &["Acme", "Ana Novak", "Žala Čeh"],
    ),
    (r#"last purchase within 30d"#, &["Ana Novak"]),
    (r#"first purchase is null"#, &["Acme", "Žala Čeh"]),
    (r#"avg(survey_responses.score) < 7"#, &["Bojan Kos"]),
    (
        r#"avg(survey_responses.score) is null"#,
        &["Acme", "Žala Čeh"],
    ),
    (r#"consented("email_marketing")"#, &["Ana Novak"]),
    (r#"consented("email_marketing", "email")"#, &["Ana Novak"]),
    (
        r#"not consented("email_marketing")"#,
        &["Acme", "Bojan Kos", "Žala Čeh"],
    ),
    (
        r#"(country = "SI" or "beta" in tags) and not (count(purchases within 90d) >= 3 or stage = "churned")"#,
        &["Bojan Kos"],
    ),
    (r#"true"#, &["Acme", "Ana Novak", "Bojan Kos", "Žala Čeh"]),
];

#[test]
fn every_predicate_selects_the_expected_customers() {
    let f = fixture();
    for (filter, expected) in CASES {
        assert_eq!(names(&f.crm, filter), set(expected), "{filter}");
        assert_eq!(
            f.crm.count_matching(*filter).unwrap(),
            expected.len() as u64,
            "{filter}"
        );
    }
}

#[test]
fn one_customer_is_judged_as_the_whole_population_is() {
    let f = fixture();
    for (filter, expected) in CASES {
        for (name, id) in &f.ids {
            assert_eq!(
                f.crm.customer_matches(*id, *filter).unwrap(),
                expected.contains(name),
                "{filter} for {name}"
            );
        }
    }
}

#[test]
fn a_tree_read_back_from_json_selects_what_its_text_does() {
    let f = fixture();
    for (filter, expected) in CASES {
        let expr = crm_core::filter::parse(filter).unwrap();
        let json = serde_json::to_string(&expr).unwrap();
        let back: crm_core::filter::Expr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, expr);
        assert_eq!(
            f.crm.count_matching(&back).unwrap(),
            expected.len() as u64,
            "{filter}"
        );
    }
}

#[test]
fn interactions_imported_in_bulk_count_in_aggregates() {
    let crm = Crm::open_in_memory().unwrap();
    let c = crm.create_customer(customer("Bulk")).unwrap();
    let rows = (0..5).map(|i| NewInteraction {
        occurred_at: Some(days_ago(i)),
        amount_minor: Some(1_000),
        currency: Some("EUR".into()),
        ..NewInteraction::new(c.id, InteractionKind::Purchase)
    });
    crm.import_interactions(rows, &ImportOptions::default(), None)
        .unwrap();
    assert_eq!(crm.count_matching("count(purchases) = 5").unwrap(), 1);
    assert_eq!(crm.count_matching("sum(purchases.amount) = 50").unwrap(), 1);
    assert_eq!(crm.count_matching("last purchase within 1d").unwrap(), 1);
}

#[test]
fn tags_follow_updates_and_deletes() {
    let crm = Crm::open_in_memory().unwrap();
    let c = crm
        .create_customer(NewCustomer {
            tags: vec!["a".into()],
            ..customer("T")
        })
        .unwrap();
    assert_eq!(crm.count_matching(r#""a" in tags"#).unwrap(), 1);
    crm.update_customer(
        c.id,
        &CustomerPatch {
            tags: Some(vec!["b".into()]),
            ..CustomerPatch::default()
        },
    )
    .unwrap();
    assert_eq!(crm.count_matching(r#""a" in tags"#).unwrap(), 0);
    assert_eq!(crm.count_matching(r#""b" in tags"#).unwrap(), 1);
    crm.delete_customer(c.id).unwrap();
    assert_eq!(crm.count_matching(r#""b" in tags"#).unwrap(), 0);
}

#[test]
fn hostile_strings_stay_data() {
    let f = fixture();
    let hostile = [
        r#"name = "x'); DROP TABLE customers; --""#,
        r#"name contains "%""#,
        r#"name contains "_""#,
        r#"attr.plan = "' OR 1=1 --""#,
        r#""'; DELETE FROM customers; --" in tags"#,
        r#"in_segment("x\" OR 1=1 --")"#,
    ];
    for filter in hostile {
        match f.crm.count_matching(filter) {
            Ok(n) => assert_eq!(n, 0, "{filter}"),
            Err(Error::Parse { .. }) => {}
            Err(other) => panic!("{filter}: {other:?}"),
        }
    }
    assert_eq!(f.crm.count_customers().unwrap(), 4);
    let explain = f.crm.explain(hostile[0]).unwrap();
    assert!(!explain.sql.contains("DROP"));
    assert!(explain.params.iter().any(|p| p.contains("DROP TABLE")));
}

#[test]
fn mistakes_are_reported_with_position_and_the_nearest_name() {
    let f = fixture();
    let crm = &f.crm;
    let (line, column, message, suggestion) =
        parse_error(crm.count_matching(r#"stge = "lead""#).unwrap_err());
    assert_eq!((line, column), (1, 1));
    assert_eq!(message, "unknown field 'stge'");
    assert_eq!(suggestion.as_deref(), Some("stage"));

    let (_, column, message, suggestion) = parse_error(
        crm.count_matching(r#"country = "SI" and attr.paln = "x""#)
            .unwrap_err(),
    );
    assert_eq!(column, 20);
    assert_eq!(message, "unknown attribute 'paln'");
    assert_eq!(suggestion.as_deref(), Some("attr.plan"));

    let (line, column, message, _) = parse_error(
        crm.count_matching("country = \"SI\"\n  and \"vip\" > 3")
            .unwrap_err(),
    );
    assert_eq!((line, column), (2, 7));
    assert!(message.contains("text"), "{message}");

    let (_, _, message, suggestion) =
        parse_error(crm.count_matching(r#"in_segment("vipz")"#).unwrap_err());
    assert_eq!(message, "unknown segment 'vipz'");
    assert_eq!(suggestion, None);

    for (filter, needle) in [
        (r#"stage > "mqll""#, "order of lifecycle stages"),
        (r#"country = "Slovenia""#, "invalid country"),
        (r#"tags = "vip""#, "list"),
        (r#"count(purchases.amount) > 1"#, "count takes no measure"),
        (r#"sum(purchases) > 1"#, "sum needs a measure"),
        (
            r#"count(purchases where tags is empty) > 1"#,
            "unknown field 'tags'",
        ),
        (r#"name within 3d"#, "dates and times"),
        (r#"attr.seats"#, "expected a condition"),
        (
            r#"country = "SI" and organization.country = country"#,
            "mix",
        ),
        (r#"name > "a""#, "not with < or >"),
        (r#"birth_date = "1990-02-30""#, "YYYY-MM-DD"),
    ] {
        let (_, _, message, _) = parse_error(crm.count_matching(filter).unwrap_err());
        assert!(message.contains(needle), "{filter}: {message}");
    }
}

#[test]
fn bad_input_is_rejected_without_running() {
    let crm = Crm::open_in_memory().unwrap();
    for filter in [
        "",
        "(((",
        "count(purchases within -5d) > 1",
        "created_at within 0d",
        "nosuch(1) = 2",
        &"(".repeat(100_000),
        &"not ".repeat(100_000),
        &format!("name = \"{}\"", "x".repeat(100_000)),
    ] {
        let err = crm.count_matching(filter).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    }
}

#[test]
fn explain_shows_sql_with_parameters_and_the_plan() {
    let f = fixture();
    let e = f
        .crm
        .explain(r#"count(purchases within 90d) >= 3"#)
        .unwrap();
    assert_eq!(e.canonical, "count(purchases within 90d) >= 3");
    assert!(e.sql.contains("GROUP BY customer_rowid"), "{}", e.sql);
    assert!(e.params.contains(&"purchase".to_string()));
    assert!(
        e.plan.iter().any(|l| l.contains("interactions_kind_time")),
        "{:?}",
        e.plan
    );
}

// ----- segments -------------------------------------------------------------

#[test]
fn dynamic_segments_are_counted_paged_streamed_and_tested() {
    let f = fixture();
    let crm = &f.crm;
    let s = crm
        .create_segment(&NewSegment {
            description: Some("customers with tags".into()),
            ..NewSegment::dynamic("tagged", "tags  is not empty")
        })
        .unwrap();
    assert_eq!(s.kind, SegmentKind::Dynamic);
    assert_eq!(s.filter.as_deref(), Some("tags is not empty"));
    assert_eq!(crm.segment_count("tagged").unwrap(), 2);

    let first = crm
        .segment_members(
            "tagged",
            &MembersQuery {
                limit: 1,
                cursor: None,
            },
        )
        .unwrap();
    assert_eq!(first.items[0].name, "Ana Novak");
    let second = crm
        .segment_members(
            "tagged",
            &MembersQuery {
                limit: 1,
                cursor: first.next_cursor,
            },
        )
        .unwrap();
    assert_eq!(second.items[0].name, "Bojan Kos");
    assert_eq!(second.next_cursor, None);

    let mut streamed = Vec::new();
    crm.for_each_segment_member("tagged", |c| {
        streamed.push(c.name);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed, ["Ana Novak", "Bojan Kos"]);

    assert!(crm.segment_contains("tagged", f.ids["Ana Novak"]).unwrap());
    assert!(!crm.segment_contains("tagged", f.ids["Acme"]).unwrap());
    assert_eq!(crm.segments().unwrap().len(), 1);
}

#[test]
fn static_segments_hold_explicit_members() {
    let f = fixture();
    let crm = &f.crm;
    crm.create_segment(&NewSegment::static_list("call-list"))
        .unwrap();
    let ana = f.ids["Ana Novak"];
    let zala = f.ids["Žala Čeh"];
    assert_eq!(
        crm.add_to_segment("call-list", &[ana, zala, ana]).unwrap(),
        2
    );
    assert_eq!(crm.segment_count("call-list").unwrap(), 2);
    assert_eq!(crm.remove_from_segment("call-list", &[zala]).unwrap(), 1);
    assert!(crm.segment_contains("call-list", ana).unwrap());
    assert_eq!(
        names(crm, r#"in_segment("call-list")"#),
        set(&["Ana Novak"])
    );

    // An unknown customer adds no one.
    let err = crm
        .add_to_segment("call-list", &[zala, CustomerId::new()])
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { entity: "customer" }));
    assert_eq!(crm.segment_count("call-list").unwrap(), 1);

    let err = crm
        .update_segment(
            "call-list",
            &SegmentPatch {
                filter: Some("true".into()),
                ..SegmentPatch::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }));
    assert!(crm.materialize_segment("call-list").is_err());
}

#[test]
fn segments_use_segments_and_cycles_are_refused() {
    let f = fixture();
    let crm = &f.crm;
    crm.create_segment(&NewSegment::dynamic(
        "eu",
        r#"country in ("SI", "AT", "DE")"#,
    ))
    .unwrap();
    crm.create_segment(&NewSegment::dynamic(
        "eu-beta",
        r#"in_segment("eu") and "beta" in tags"#,
    ))
    .unwrap();
    assert_eq!(crm.segment_count("eu-beta").unwrap(), 2);

    let err = crm
        .update_segment(
            "eu",
            &SegmentPatch {
                filter: Some(r#"in_segment("eu-beta")"#.into()),
                ..SegmentPatch::default()
            },
        )
        .unwrap_err();
    let (_, _, message, _) = parse_error(err);
    assert!(message.contains("cycle: eu → eu-beta → eu"), "{message}");
    let err = crm
        .create_segment(&NewSegment::dynamic("self", r#"in_segment("self")"#))
        .unwrap_err();
    assert!(matches!(err, Error::Parse { .. }));
    assert!(crm.segment("self").is_err());

    // Deleting a segment in use is refused; renaming rewrites its users.
    let err = crm.delete_segment("eu").unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    crm.rename_segment("eu", "europe").unwrap();
    assert_eq!(
        crm.segment("eu-beta").unwrap().filter.as_deref(),
        Some(r#"in_segment("europe") and "beta" in tags"#)
    );
    assert_eq!(crm.segment_count("eu-beta").unwrap(), 2);
    crm.delete_segment("eu-beta").unwrap();
    crm.delete_segment("europe").unwrap();
    assert!(crm.segments().unwrap().is_empty());
}

#[test]
fn segment_names_are_unique_and_checked() {
    let crm = Crm::open_in_memory().unwrap();
    crm.create_segment(&NewSegment::static_list("a")).unwrap();
    let err = crm
        .create_segment(&NewSegment::static_list("a"))
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }));
    crm.create_segment(&NewSegment::static_list("b")).unwrap();
    assert!(matches!(
        crm.rename_segment("b", "a").unwrap_err(),
        Error::Conflict { .. }
    ));
    assert!(matches!(
        crm.create_segment(&NewSegment::static_list("  "))
            .unwrap_err(),
        Error::Validation { .. }
    ));
    assert!(matches!(
        crm.segment("nope").unwrap_err(),
        Error::NotFound { entity: "segment" }
    ));
    // A bad expression stores nothing.
    assert!(
        crm.create_segment(&NewSegment::dynamic("c", "stage >"))
            .is_err()
    );
    assert_eq!(crm.segments().unwrap().len(), 2);
}

#[test]
fn materializing_records_who_entered_and_who_left() {
    let f = fixture();
    let crm = &f.crm;
    crm.create_segment(&NewSegment::dynamic("vip", r#""vip" in tags"#))
        .unwrap();
    let seq = crm
        .changes_since(0, 10_000)
        .unwrap()
        .last()
        .map_or(0, |c| c.seq);
    let r = crm.materialize_segment("vip").unwrap();
    assert_eq!((r.members, r.entered, r.left), (1, 1, 0));
    let again = crm.materialize_segment("vip").unwrap();
    assert_eq!((again.entered, again.left), (0, 0));

    let bojan = f.ids["Bojan Kos"];
    let ana = f.ids["Ana Novak"];
    crm.update_customer(
        bojan,
        &CustomerPatch {
            tags: Some(vec!["vip".into()]),
            ..CustomerPatch::default()
        },
    )
    .unwrap();
    crm.update_customer(
        ana,
        &CustomerPatch {
            tags: Some(vec![]),
            ..CustomerPatch::default()
        },
    )
    .unwrap();
    let r = crm.materialize_segment("vip").unwrap();
    assert_eq!((r.members, r.entered, r.left), (1, 1, 1));
    assert!(crm.segment("vip").unwrap().evaluated_at.is_some());

    let feed: Vec<_> = crm
        .changes_since(seq, 10_000)
        .unwrap()
        .into_iter()
        .filter(|c| c.entity == EntityKind::SegmentMember)
        .map(|c| (c.entity_id, c.op, c.fields))
        .collect();
    assert_eq!(
        feed,
        vec![
            (ana.to_string(), ChangeOp::Created, vec!["vip".to_string()]),
            (
                bojan.to_string(),
                ChangeOp::Created,
                vec!["vip".to_string()]
            ),
            (ana.to_string(), ChangeOp::Deleted, vec!["vip".to_string()]),
        ]
    );
}

#[test]
fn long_and_deep_expressions_run_within_sqlite_limits() {
    let f = fixture();
    let long_or = (0..3_000)
        .map(|i| format!("name = \"n{i}\""))
        .collect::<Vec<_>>()
        .join(" or ");
    assert_eq!(f.crm.count_matching(&long_or).unwrap(), 0);
    let in_list = format!(
        "country in ({})",
        (0..5_000).map(|_| "\"SI\"").collect::<Vec<_>>().join(", ")
    );
    assert_eq!(f.crm.count_matching(&in_list).unwrap(), 1);
    // As deep as the parser allows, with an aggregate at the bottom.
    let mut deep = "count(purchases within 90d) >= 3".to_string();
    for _ in 0..15 {
        deep = format!("not (not ({deep}))");
    }
    assert_eq!(f.crm.count_matching(&deep).unwrap(), 1);
    assert!(f.crm.customer_matches(f.ids["Ana Novak"], &deep).unwrap());
}

#[test]
fn counts_of_whole_memberships_skip_the_customers_table() {
    let f = fixture();
    let plan = |filter: &str| f.crm.explain(filter).unwrap().sql;
    assert!(
        plan(r#""vip" in tags"#)
            .starts_with("SELECT count(*) FROM (SELECT customer_rowid FROM customer_tags")
    );
    assert!(plan(r#"not "vip" in tags"#).contains("(SELECT count(*) FROM customers) - "));
    assert!(plan("count(purchases) = 0").contains("(SELECT count(*) FROM customers) - "));
    // Emails may repeat a customer: counted through the customers.
    assert!(
        plan(r#"email ends with ".com""#).starts_with("SELECT count(*) FROM customers c WHERE")
    );
    for (filter, expected) in [
        (r#""vip" in tags"#, 1),
        (r#"not "vip" in tags"#, 3),
        ("count(purchases within 90d) >= 3", 1),
        ("not count(purchases within 90d) >= 3", 3),
        ("count(purchases) = 0", 2),
        ("not count(purchases) = 0", 2),
        (r#"not not consented("email_marketing")"#, 1),
    ] {
        assert_eq!(f.crm.count_matching(filter).unwrap(), expected, "{filter}");
    }
}
