//! Tables as Arrow record batches (`Crm::read_table`), through the public API.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType, UInt8Type,
};
use arrow_array::{Array, RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use crm_core::arrow::{ReadOptions, Table};
use crm_core::segment::NewSegment;
use crm_core::{
    Address, AttributeType, AttributeValue, ConsentStatus, Crm, CustomerId, Direction, Error,
    InteractionKind, LegalBasis, NewConsent, NewCustomer, NewInteraction, ScoreOptions,
    TimelineQuery,
};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, day, 12, 0, 0).unwrap()
}

/// Three customers with every kind of value, their interactions and
/// consent. Returns the customers' ids in creation order.
fn fixture(crm: &Crm) -> Vec<CustomerId> {
    crm.define_attribute("plan", AttributeType::Text).unwrap();
    crm.define_attribute("seats", AttributeType::Number)
        .unwrap();
    crm.define_attribute("trial", AttributeType::Bool).unwrap();
    crm.define_attribute("renewal", AttributeType::Date)
        .unwrap();
    let acme = crm
        .create_customer(NewCustomer {
            kind: crm_core::CustomerKind::Organization,
            name: Some("Acme <Ltd>".into()),
            country: Some("DE".into()),
            tags: vec!["b2b".into()],
            attributes: BTreeMap::from([
                ("plan".into(), AttributeValue::Text("pro".into())),
                ("seats".into(), AttributeValue::Number(25.0)),
            ]),
            ..Default::default()
        })
        .unwrap();
    let ana = crm
        .create_customer(NewCustomer {
            external_id: Some("ext-ana".into()),
            first_name: Some("Ana".into()),
            last_name: Some("Novak".into()),
            organization_id: Some(acme.id),
            emails: vec!["ana@example.com".into(), "a.novak@example.org".into()],
            phones: vec!["+386 40 123 456".into()],
            addresses: vec![Address {
                label: Some("home".into()),
                city: Some("Ljubljana".into()),
                country: Some("SI".into()),
                ..Default::default()
            }],
            birth_date: Some(NaiveDate::from_ymd_opt(1990, 5, 17).unwrap()),
            locale: Some("sl-SI".into()),
            country: Some("SI".into()),
            tags: vec!["vip".into(), "newsletter".into()],
            attributes: BTreeMap::from([
                ("trial".into(), AttributeValue::Bool(true)),
                (
                    "renewal".into(),
                    AttributeValue::Date(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
                ),
            ]),
            lifecycle_stage: Some("customer".into()),
            owner: Some("maja".into()),
            source: Some("web".into()),
            ..Default::default()
        })
        .unwrap();
    let bo = crm
        .create_customer(NewCustomer {
            name: Some("Bo".into()),
            ..Default::default()
        })
        .unwrap();
    let log = |i: NewInteraction| {
        crm.log_interaction(i).unwrap();
    };
    log(NewInteraction {
        occurred_at: Some(at(1)),
        amount_minor: Some(12_990),
        currency: Some("EUR".into()),
        product: Some("sku-1".into()),
        quantity: Some(2),
        channel: Some("web".into()),
        ..NewInteraction::new(ana.id, InteractionKind::Purchase)
    });
    log(NewInteraction {
        occurred_at: Some(at(5)),
        amount_minor: Some(1_500),
        currency: Some("JPY".into()),
        ..NewInteraction::new(ana.id, InteractionKind::Purchase)
    });
    log(NewInteraction {
        occurred_at: Some(at(10)),
        subject: Some("Hello <there>".into()),
        body: Some("Long text".into()),
        direction: Some(Direction::Inbound),
        metadata: Some(serde_json::json!({"thread": 7, "tags": ["a"]})),
        ..NewInteraction::new(bo.id, InteractionKind::Email)
    });
    log(NewInteraction {
        occurred_at: Some(at(20)),
        score: Some(9),
        ..NewInteraction::new(ana.id, InteractionKind::SurveyResponse)
    });
    log(NewInteraction {
        occurred_at: Some(at(2)),
        ..NewInteraction::new(acme.id, InteractionKind::Custom("demo_booked".into()))
    });
    crm.record_consent(
        ana.id,
        &NewConsent {
            channel: Some("email".into()),
            legal_basis: Some(LegalBasis::Consent),
            source: Some("signup form".into()),
            proof: Some("ip 10.0.0.1".into()),
            recorded_at: Some(at(1)),
            ..NewConsent::new("email_marketing", ConsentStatus::Granted)
        },
    )
    .unwrap();
    crm.record_consent(
        ana.id,
        &NewConsent {
            recorded_at: Some(at(15)),
            ..NewConsent::new("email_marketing", ConsentStatus::Withdrawn)
        },
    )
    .unwrap();
    crm.record_consent(
        bo.id,
        &NewConsent {
            recorded_at: Some(at(3)),
            ..NewConsent::new("profiling", ConsentStatus::Denied)
        },
    )
    .unwrap();
    vec![acme.id, ana.id, bo.id]
}

fn read(crm: &Crm, table: Table, options: &ReadOptions<'_>) -> Vec<RecordBatch> {
    crm.read_table(table, options)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A read that fits in one batch, as that batch.
fn read_all(crm: &Crm, table: Table, options: &ReadOptions<'_>) -> RecordBatch {
    let mut batches = read(crm, table, options);
    assert_eq!(batches.len(), 1, "a small read is one batch");
    batches.remove(0)
}

/// A text, id or dictionary column as strings.
fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let column = arrow_cast::cast(column, &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn lists(batch: &RecordBatch, name: &str) -> Vec<Vec<String>> {
    let column = batch.column_by_name(name).unwrap().as_list::<i32>();
    (0..column.len())
        .map(|i| {
            column
                .value(i)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect()
        })
        .collect()
}

fn times(batch: &RecordBatch, name: &str) -> Vec<Option<DateTime<Utc>>> {
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .map(|v| v.map(|us| Utc.timestamp_micros(us).unwrap()))
        .collect()
}

fn dates(batch: &RecordBatch, name: &str) -> Vec<Option<NaiveDate>> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Date32Type>()
        .iter()
        .map(|v| v.map(|d| epoch + Duration::days(d.into())))
        .collect()
}

fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
    let c = batch.column_by_name(name).unwrap();
    c.as_primitive::<Float64Type>().iter().collect()
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let c = batch.column_by_name(name).unwrap();
    c.as_primitive::<Int64Type>().iter().collect()
}

fn names_and_types(crm: &Crm, table: Table) -> Vec<(String, DataType, bool)> {
    crm.read_table(table, &ReadOptions::default())
        .unwrap()
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect()
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn time() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn list() -> DataType {
    DataType::List(Arc::new(arrow_schema::Field::new_list_field(
        DataType::Utf8,
        true,
    )))
}

fn temp_crm() -> (tempfile::TempDir, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let crm = Crm::open(dir.path().join("t.crm")).unwrap();
    (dir, crm)
}

fn string_options<'a>(filter: Option<&'a str>, segment: Option<&'a str>) -> ReadOptions<'a> {
    ReadOptions {
        filter: filter.map(Into::into),
        segment,
        ..Default::default()
    }
}

#[test]
fn the_schemas_name_and_type_every_column() {
    let crm = Crm::open_in_memory().unwrap();
    fixture(&crm);
    let u = DataType::Utf8;
    let customers: Vec<(&str, DataType, bool)> = vec![
        ("id", u.clone(), false),
        ("kind", dict(), false),
        ("external_id", u.clone(), true),
        ("name", u.clone(), false),
        ("first_name", u.clone(), true),
        ("last_name", u.clone(), true),
        ("organization_id", u.clone(), true),
        ("emails", list(), false),
        ("phones", list(), false),
        ("addresses", u.clone(), false),
        ("birth_date", DataType::Date32, true),
        ("locale", dict(), true),
        ("country", dict(), true),
        ("tags", list(), false),
        ("lifecycle_stage", dict(), false),
        ("owner", dict(), true),
        ("source", dict(), true),
        ("attr.plan", u.clone(), true),
        ("attr.renewal", DataType::Date32, true),
        ("attr.seats", DataType::Float64, true),
        ("attr.trial", DataType::Boolean, true),
        ("created_at", time(), false),
        ("updated_at", time(), false),
    ];
    let owned = |v: Vec<(&str, DataType, bool)>| -> Vec<(String, DataType, bool)> {
        v.into_iter()
            .map(|(n, t, b)| (n.to_string(), t, b))
            .collect()
    };
    assert_eq!(names_and_types(&crm, Table::Customers), owned(customers));
    let interactions = vec![
        ("id", u.clone(), false),
        ("customer_id", u.clone(), false),
        ("kind", dict(), false),
        ("channel", dict(), true),
        ("direction", dict(), true),
        ("occurred_at", time(), false),
        ("subject", u.clone(), true),
        ("body", u.clone(), true),
        ("amount", DataType::Float64, true),
        ("amount_minor", DataType::Int64, true),
        ("currency", dict(), true),
        ("product", dict(), true),
        ("quantity", DataType::Int64, true),
        ("score", DataType::Int32, true),
        ("metadata", u.clone(), true),
        ("created_at", time(), false),
    ];
    assert_eq!(
        names_and_types(&crm, Table::Interactions),
        owned(interactions)
    );
    let consent = vec![
        ("id", u.clone(), false),
        ("customer_id", u.clone(), false),
        ("purpose", dict(), false),
        ("channel", dict(), true),
        ("status", dict(), false),
        ("legal_basis", dict(), true),
        ("source", u.clone(), true),
        ("proof", u.clone(), true),
        ("recorded_at", time(), false),
    ];
    assert_eq!(names_and_types(&crm, Table::Consent), owned(consent));
    let f = DataType::Float64;
    let scores = vec![
        ("customer_id", u.clone(), false),
        ("frequency", f.clone(), false),
        ("recency", f.clone(), false),
        ("t", f.clone(), false),
        ("monetary_value", f.clone(), false),
        ("total_minor", DataType::Int64, false),
        ("rfm_r", DataType::UInt8, false),
        ("rfm_f", DataType::UInt8, false),
        ("rfm_m", DataType::UInt8, false),
        ("rfm_segment", dict(), false),
        ("p_alive", f.clone(), false),
        ("expected_purchases", f.clone(), false),
        ("expected_value", f.clone(), false),
        ("clv", f.clone(), false),
    ];
    assert_eq!(names_and_types(&crm, Table::CustomerScores), owned(scores));
}

#[test]
fn table_names_parse_and_print() {
    for t in Table::ALL {
        assert_eq!(t.to_string().parse::<Table>().unwrap(), t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{t}\""));
    }
    assert_eq!(
        "customer_scores".parse::<Table>().unwrap(),
        Table::CustomerScores
    );
    assert!(matches!(
        "orders".parse::<Table>(),
        Err(Error::Validation { field, .. }) if field == "table"
    ));
}

#[test]
fn customers_read_back_as_the_object_api_returns_them() {
    let crm = Crm::open_in_memory().unwrap();
    let ids = fixture(&crm);
    let batch = read_all(&crm, Table::Customers, &ReadOptions::default());
    assert_eq!(batch.num_rows(), 3);
    let want: Vec<_> = ids
        .iter()
        .map(|id| crm.get_customer(*id).unwrap())
        .collect();
    let id_texts: Vec<_> = ids.iter().map(|i| Some(i.to_string())).collect();
    assert_eq!(texts(&batch, "id"), id_texts);
    let col = |f: fn(&crm_core::Customer) -> Option<String>| -> Vec<Option<String>> {
        want.iter().map(f).collect()
    };
    assert_eq!(texts(&batch, "kind"), col(|c| Some(c.kind.as_str().into())));
    assert_eq!(texts(&batch, "external_id"), col(|c| c.external_id.clone()));
    assert_eq!(texts(&batch, "name"), col(|c| Some(c.name.clone())));
    assert_eq!(texts(&batch, "first_name"), col(|c| c.first_name.clone()));
    assert_eq!(texts(&batch, "last_name"), col(|c| c.last_name.clone()));
    assert_eq!(
        texts(&batch, "organization_id"),
        col(|c| c.organization_id.map(|o| o.to_string()))
    );
    assert_eq!(texts(&batch, "locale"), col(|c| c.locale.clone()));
    assert_eq!(texts(&batch, "country"), col(|c| c.country.clone()));
    assert_eq!(
        texts(&batch, "lifecycle_stage"),
        col(|c| Some(c.lifecycle_stage.clone()))
    );
    assert_eq!(texts(&batch, "owner"), col(|c| c.owner.clone()));
    assert_eq!(texts(&batch, "source"), col(|c| c.source.clone()));
    let emails: Vec<_> = want.iter().map(|c| c.emails.clone()).collect();
    assert_eq!(lists(&batch, "emails"), emails);
    let phones: Vec<_> = want.iter().map(|c| c.phones.clone()).collect();
    assert_eq!(lists(&batch, "phones"), phones);
    assert_eq!(phones[1], ["+38640123456"]);
    let tags: Vec<_> = want.iter().map(|c| c.tags.clone()).collect();
    assert_eq!(lists(&batch, "tags"), tags);
    let addresses: Vec<Vec<Address>> = texts(&batch, "addresses")
        .into_iter()
        .map(|a| serde_json::from_str(&a.unwrap()).unwrap())
        .collect();
    let want_addresses: Vec<_> = want.iter().map(|c| c.addresses.clone()).collect();
    assert_eq!(addresses, want_addresses);
    assert_eq!(
        dates(&batch, "birth_date"),
        want.iter().map(|c| c.birth_date).collect::<Vec<_>>()
    );
    assert_eq!(
        times(&batch, "created_at"),
        want.iter().map(|c| Some(c.created_at)).collect::<Vec<_>>()
    );
    assert_eq!(
        times(&batch, "updated_at"),
        want.iter().map(|c| Some(c.updated_at)).collect::<Vec<_>>()
    );
    // Attributes: one typed column per definition, null where unset.
    assert_eq!(
        texts(&batch, "attr.plan"),
        [Some("pro".to_string()), None, None]
    );
    assert_eq!(floats(&batch, "attr.seats"), [Some(25.0), None, None]);
    let trial: Vec<_> = batch
        .column_by_name("attr.trial")
        .unwrap()
        .as_boolean()
        .iter()
        .collect();
    assert_eq!(trial, [None, Some(true), None]);
    assert_eq!(
        dates(&batch, "attr.renewal"),
        [None, NaiveDate::from_ymd_opt(2026, 1, 31), None]
    );
}

#[test]
fn interactions_read_back_as_the_timeline_returns_them() {
    let crm = Crm::open_in_memory().unwrap();
    let ids = fixture(&crm);
    let batch = read_all(&crm, Table::Interactions, &ReadOptions::default());
    assert_eq!(batch.num_rows(), 5);
    let mut want = Vec::new();
    for id in &ids {
        let page = crm.timeline(*id, &TimelineQuery::default()).unwrap();
        want.extend(page.items);
    }
    // Storage order is the order they were logged.
    let by_id: BTreeMap<String, crm_core::Interaction> =
        want.into_iter().map(|i| (i.id.to_string(), i)).collect();
    let ids_read = texts(&batch, "id");
    let want: Vec<_> = ids_read
        .iter()
        .map(|id| by_id[id.as_ref().unwrap()].clone())
        .collect();
    let kinds: Vec<_> = want
        .iter()
        .map(|i| Some(i.kind.as_str().to_string()))
        .collect();
    assert_eq!(
        texts(&batch, "kind"),
        kinds,
        "rows are in the order they were logged"
    );
    assert_eq!(
        kinds,
        [
            "purchase",
            "purchase",
            "email",
            "survey_response",
            "demo_booked"
        ]
        .map(|k| Some(k.to_string()))
    );
    let col = |f: fn(&crm_core::Interaction) -> Option<String>| -> Vec<Option<String>> {
        want.iter().map(f).collect()
    };
    assert_eq!(
        texts(&batch, "customer_id"),
        col(|i| Some(i.customer_id.to_string()))
    );
    assert_eq!(texts(&batch, "channel"), col(|i| i.channel.clone()));
    assert_eq!(
        texts(&batch, "direction"),
        col(|i| i.direction.map(|d| d.as_str().to_string()))
    );
    assert_eq!(texts(&batch, "subject"), col(|i| i.subject.clone()));
    assert_eq!(texts(&batch, "body"), col(|i| i.body.clone()));
    assert_eq!(texts(&batch, "currency"), col(|i| i.currency.clone()));
    assert_eq!(texts(&batch, "product"), col(|i| i.product.clone()));
    let metadata: Vec<Option<serde_json::Value>> = texts(&batch, "metadata")
        .into_iter()
        .map(|m| m.map(|m| serde_json::from_str(&m).unwrap()))
        .collect();
    assert_eq!(
        metadata,
        want.iter().map(|i| i.metadata.clone()).collect::<Vec<_>>()
    );
    assert_eq!(
        ints(&batch, "amount_minor"),
        want.iter().map(|i| i.amount_minor).collect::<Vec<_>>()
    );
    assert_eq!(
        ints(&batch, "quantity"),
        want.iter().map(|i| i.quantity).collect::<Vec<_>>()
    );
    let scores: Vec<_> = batch
        .column_by_name("score")
        .unwrap()
        .as_primitive::<Int32Type>()
        .iter()
        .collect();
    assert_eq!(scores, want.iter().map(|i| i.score).collect::<Vec<_>>());
    assert_eq!(
        times(&batch, "occurred_at"),
        want.iter().map(|i| Some(i.occurred_at)).collect::<Vec<_>>()
    );
    assert_eq!(
        times(&batch, "created_at"),
        want.iter().map(|i| Some(i.created_at)).collect::<Vec<_>>()
    );
    // Major units by the currency's exponent: cents for EUR, none for JPY.
    assert_eq!(
        floats(&batch, "amount"),
        [Some(129.9), Some(1500.0), None, None, None]
    );
}

#[test]
fn consent_reads_back_as_the_history_returns_it() {
    let crm = Crm::open_in_memory().unwrap();
    let ids = fixture(&crm);
    let batch = read_all(&crm, Table::Consent, &ReadOptions::default());
    assert_eq!(batch.num_rows(), 3);
    let mut want = Vec::new();
    for id in &ids {
        let mut history = crm.consent_history(*id, None).unwrap();
        history.reverse(); // newest first → recorded order
        want.extend(history);
    }
    let col = |f: fn(&crm_core::ConsentRecord) -> Option<String>| -> Vec<Option<String>> {
        want.iter().map(f).collect()
    };
    assert_eq!(texts(&batch, "id"), col(|r| Some(r.id.to_string())));
    assert_eq!(
        texts(&batch, "customer_id"),
        col(|r| Some(r.customer_id.to_string()))
    );
    assert_eq!(texts(&batch, "purpose"), col(|r| Some(r.purpose.clone())));
    assert_eq!(texts(&batch, "channel"), col(|r| r.channel.clone()));
    assert_eq!(
        texts(&batch, "status"),
        col(|r| Some(r.status.as_str().to_string()))
    );
    assert_eq!(
        texts(&batch, "legal_basis"),
        col(|r| r.legal_basis.map(|b| b.as_str().to_string()))
    );
    assert_eq!(texts(&batch, "source"), col(|r| r.source.clone()));
    assert_eq!(texts(&batch, "proof"), col(|r| r.proof.clone()));
    assert_eq!(
        times(&batch, "recorded_at"),
        want.iter().map(|r| Some(r.recorded_at)).collect::<Vec<_>>()
    );
}

#[test]
fn scores_are_empty_until_computed_then_read_back_as_stored() {
    let crm = Crm::open_in_memory().unwrap();
    let config = crm_core::synth::SynthConfig {
        customers: 300,
        ..Default::default()
    };
    crm_core::synth::populate(&crm, &config, None).unwrap();
    let ids: Vec<CustomerId> = read(&crm, Table::Customers, &ReadOptions::default())
        .iter()
        .flat_map(|b| texts(b, "id"))
        .map(|id| id.unwrap().parse().unwrap())
        .collect();
    let batches = read(&crm, Table::CustomerScores, &ReadOptions::default());
    assert_eq!(batches.len(), 1, "an empty read is one empty batch");
    assert_eq!(batches[0].num_rows(), 0);
    assert_eq!(batches[0].num_columns(), 14);

    crm.compute_scores(&ScoreOptions::default()).unwrap();
    let batch = read_all(&crm, Table::CustomerScores, &ReadOptions::default());
    let scored: Vec<_> = ids
        .iter()
        .filter_map(|id| crm.customer_scores(*id).unwrap())
        .collect();
    assert!(!scored.is_empty());
    assert_eq!(batch.num_rows(), scored.len());
    let col = |f: fn(&crm_core::CustomerScores) -> Option<String>| -> Vec<Option<String>> {
        scored.iter().map(f).collect()
    };
    assert_eq!(
        texts(&batch, "customer_id"),
        col(|s| Some(s.customer_id.to_string()))
    );
    assert_eq!(
        texts(&batch, "rfm_segment"),
        col(|s| Some(s.rfm_segment.name().to_string()))
    );
    for (name, get) in [
        (
            "frequency",
            (|s: &crm_core::CustomerScores| s.frequency) as fn(&crm_core::CustomerScores) -> f64,
        ),
        ("recency", |s| s.recency),
        ("t", |s| s.t),
        ("monetary_value", |s| s.monetary_value),
        ("p_alive", |s| s.p_alive),
        ("expected_purchases", |s| s.expected_purchases),
        ("expected_value", |s| s.expected_value),
        ("clv", |s| s.clv),
    ] {
        let want: Vec<_> = scored.iter().map(|s| Some(get(s))).collect();
        assert_eq!(floats(&batch, name), want, "{name}");
    }
    assert_eq!(
        ints(&batch, "total_minor"),
        scored
            .iter()
            .map(|s| Some(s.total_minor))
            .collect::<Vec<_>>()
    );
    let rfm_r: Vec<_> = batch
        .column_by_name("rfm_r")
        .unwrap()
        .as_primitive::<UInt8Type>()
        .iter()
        .collect();
    assert_eq!(
        rfm_r,
        scored.iter().map(|s| Some(s.rfm_r)).collect::<Vec<_>>()
    );
}

#[test]
fn a_filter_restricts_customers_and_the_rows_of_their_customers() {
    let crm = Crm::open_in_memory().unwrap();
    let ids = fixture(&crm);
    let vip = string_options(Some(r#""vip" in tags"#), None);
    let customers = read_all(&crm, Table::Customers, &vip);
    assert_eq!(texts(&customers, "id"), [Some(ids[1].to_string())]);
    let interactions = read_all(&crm, Table::Interactions, &vip);
    assert_eq!(interactions.num_rows(), 3);
    assert!(
        texts(&interactions, "customer_id")
            .iter()
            .all(|c| c.as_deref() == Some(ids[1].to_string().as_str()))
    );
    let consent = read_all(&crm, Table::Consent, &vip);
    assert_eq!(consent.num_rows(), 2);

    // A filter on aggregates of interactions works too.
    let buyers = string_options(Some("count(purchases) >= 1"), None);
    assert_eq!(read_all(&crm, Table::Customers, &buyers).num_rows(), 1);

    // A filter given as a tree.
    let tree = crm_core::filter::parse(r#"name = "Bo""#).unwrap();
    let options = ReadOptions {
        filter: Some((&tree).into()),
        ..Default::default()
    };
    let bo = read_all(&crm, Table::Interactions, &options);
    assert_eq!(texts(&bo, "customer_id"), [Some(ids[2].to_string())]);
}

#[test]
fn a_segment_restricts_rows_alone_or_with_a_filter() {
    let crm = Crm::open_in_memory().unwrap();
    let ids = fixture(&crm);
    crm.create_segment(&NewSegment::static_list("picked"))
        .unwrap();
    crm.add_to_segment("picked", &[ids[0], ids[2]]).unwrap();
    crm.create_segment(&NewSegment::dynamic("people", r#"kind = "person""#))
        .unwrap();

    let picked = read_all(
        &crm,
        Table::Customers,
        &string_options(None, Some("picked")),
    );
    assert_eq!(
        texts(&picked, "id"),
        [Some(ids[0].to_string()), Some(ids[2].to_string())]
    );
    let people = read_all(
        &crm,
        Table::Customers,
        &string_options(None, Some("people")),
    );
    assert_eq!(
        texts(&people, "id"),
        [Some(ids[1].to_string()), Some(ids[2].to_string())]
    );
    // Both: the members of the segment that match the filter.
    let both = read_all(
        &crm,
        Table::Customers,
        &string_options(Some(r#"kind = "person""#), Some("picked")),
    );
    assert_eq!(texts(&both, "id"), [Some(ids[2].to_string())]);
    let interactions = read_all(
        &crm,
        Table::Interactions,
        &string_options(None, Some("picked")),
    );
    assert_eq!(interactions.num_rows(), 2, "Bo's email and Acme's demo");
}

#[test]
fn since_and_until_bound_interactions_and_consent_by_their_time() {
    let crm = Crm::open_in_memory().unwrap();
    fixture(&crm);
    let window = ReadOptions {
        since: Some(at(2)),
        until: Some(at(10)),
        ..Default::default()
    };
    let batch = read_all(&crm, Table::Interactions, &window);
    // at(2) is included, at(10) is not.
    assert_eq!(times(&batch, "occurred_at"), [Some(at(5)), Some(at(2))]);
    let batch = read_all(&crm, Table::Consent, &window);
    assert_eq!(times(&batch, "recorded_at"), [Some(at(3))]);
    let since = ReadOptions {
        since: Some(at(10)),
        ..Default::default()
    };
    let batch = read_all(&crm, Table::Interactions, &since);
    assert_eq!(times(&batch, "occurred_at"), [Some(at(10)), Some(at(20))]);
}

#[test]
fn an_empty_result_is_one_empty_batch_with_the_full_schema() {
    for (_dir, crm) in [(None, Crm::open_in_memory().unwrap()), {
        let (d, c) = temp_crm();
        (Some(d), c)
    }] {
        let batches = read(&crm, Table::Customers, &ReadOptions::default());
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 0);
        assert_eq!(batches[0].schema().field(0).name(), "id");
        fixture(&crm);
        let none = string_options(Some(r#"name = "Nobody""#), None);
        let batches = read(&crm, Table::Interactions, &none);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].num_rows(), 0);
        assert_eq!(batches[0].num_columns(), 16);
    }
}

#[test]
fn bad_options_fail_before_any_batch_with_a_typed_error() {
    let crm = Crm::open_in_memory().unwrap();
    fixture(&crm);
    let err = crm
        .read_table(
            Table::Customers,
            &string_options(Some("country = \"SI\" and\n  nmae = 1"), None),
        )
        .unwrap_err();
    match err {
        Error::Parse {
            line,
            column,
            suggestion,
            ..
        } => {
            assert_eq!((line, column), (2, 3));
            assert_eq!(suggestion.as_deref(), Some("name"));
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let err = crm
        .read_table(Table::Customers, &string_options(Some("tags ="), None))
        .unwrap_err();
    assert!(matches!(err, Error::Parse { line: 1, .. }), "{err:?}");
    let err = crm
        .read_table(Table::Interactions, &string_options(None, Some("nope")))
        .unwrap_err();
    assert!(
        matches!(err, Error::NotFound { entity: "segment" }),
        "{err:?}"
    );
    let err = crm
        .read_table(
            Table::Customers,
            &ReadOptions {
                batch_size: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, Error::Validation { ref field, .. } if field == "batch_size"));
    for table in [Table::Customers, Table::CustomerScores] {
        let err = crm
            .read_table(
                table,
                &ReadOptions {
                    since: Some(at(1)),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "since"));
        let err = crm
            .read_table(
                table,
                &ReadOptions {
                    until: Some(at(1)),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "until"));
    }
    // A file database reports them the same way.
    let (_dir, file) = temp_crm();
    let err = file
        .read_table(Table::Consent, &string_options(None, Some("nope")))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { entity: "segment" }));
    let err = file
        .read_table(Table::Consent, &string_options(Some("nmae = 1"), None))
        .unwrap_err();
    assert!(matches!(err, Error::Parse { .. }));
}

fn many_customers(crm: &Crm, n: usize) -> Vec<CustomerId> {
    let records = (0..n).map(|i| NewCustomer {
        name: Some(format!("Customer {i:04}")),
        ..Default::default()
    });
    crm.import_customers(records, &Default::default(), None)
        .unwrap();
    let reader = crm
        .read_table(Table::Customers, &ReadOptions::default())
        .unwrap();
    reader
        .flat_map(|b| texts(&b.unwrap(), "id"))
        .map(|id| id.unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_file_database_streams_in_batches_of_the_given_size_in_storage_order() {
    let (_dir, crm) = temp_crm();
    let ids = many_customers(&crm, 10);
    let options = ReadOptions {
        batch_size: 3,
        ..Default::default()
    };
    let batches = read(&crm, Table::Customers, &options);
    let sizes: Vec<_> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, [3, 3, 3, 1]);
    let names: Vec<_> = batches
        .iter()
        .flat_map(|b| texts(b, "name"))
        .map(Option::unwrap)
        .collect();
    let want: Vec<_> = (0..10).map(|i| format!("Customer {i:04}")).collect();
    assert_eq!(names, want);
    assert_eq!(ids.len(), 10);
    // An exact multiple ends without an empty batch.
    let options = ReadOptions {
        batch_size: 5,
        ..Default::default()
    };
    let sizes: Vec<_> = read(&crm, Table::Customers, &options)
        .iter()
        .map(RecordBatch::num_rows)
        .collect();
    assert_eq!(sizes, [5, 5]);
}

#[test]
fn a_file_read_is_one_snapshot() {
    let (_dir, crm) = temp_crm();
    many_customers(&crm, 20);
    let options = ReadOptions {
        batch_size: 1,
        ..Default::default()
    };
    let mut reader = crm.read_table(Table::Customers, &options).unwrap();
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.num_rows(), 1);
    // Written after the read started: not part of it.
    crm.create_customer(NewCustomer {
        name: Some("Late".into()),
        ..Default::default()
    })
    .unwrap();
    let rest: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rest, 19);
    let again: usize = read(&crm, Table::Customers, &ReadOptions::default())
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(again, 21);
}

#[test]
fn dropping_a_reader_mid_stream_stops_it_and_frees_the_database() {
    let (dir, crm) = temp_crm();
    many_customers(&crm, 50);
    let options = ReadOptions {
        batch_size: 2,
        ..Default::default()
    };
    for _ in 0..20 {
        let mut reader = crm.read_table(Table::Customers, &options).unwrap();
        assert_eq!(reader.next().unwrap().unwrap().num_rows(), 2);
        drop(reader);
    }
    // Writes, reads and a checkpoint-closing close all go through.
    crm.create_customer(NewCustomer {
        name: Some("After".into()),
        ..Default::default()
    })
    .unwrap();
    let total: usize = read(&crm, Table::Customers, &ReadOptions::default())
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(total, 51);
    // A reader may outlive its handle's clone and be sent to another thread.
    let reader = crm.clone().read_table(Table::Customers, &options).unwrap();
    let n = std::thread::spawn(move || reader.map(|b| b.unwrap().num_rows()).sum::<usize>())
        .join()
        .unwrap();
    assert_eq!(n, 51);
    crm.close().unwrap();
    let reopened = Crm::open(dir.path().join("t.crm")).unwrap();
    assert_eq!(
        read_all(
            &reopened,
            Table::Customers,
            &string_options(Some(r#"name = "After""#), None)
        )
        .num_rows(),
        1
    );
}

#[test]
fn an_in_memory_database_is_read_a_batch_at_a_time_and_may_be_written_between_batches() {
    let crm = Crm::open_in_memory().unwrap();
    many_customers(&crm, 7);
    let options = ReadOptions {
        batch_size: 3,
        ..Default::default()
    };
    let mut reader = crm.read_table(Table::Customers, &options).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().num_rows(), 3);
    // The single connection is free between batches: this write does not
    // wait for the reader.
    crm.create_customer(NewCustomer {
        name: Some("Between".into()),
        ..Default::default()
    })
    .unwrap();
    let rest: Vec<_> = reader.map(|b| b.unwrap().num_rows()).collect();
    // Each batch is a snapshot of its own: the new row shows.
    assert_eq!(rest, [3, 2]);
    let sizes: Vec<_> = read(&crm, Table::Customers, &options)
        .iter()
        .map(RecordBatch::num_rows)
        .collect();
    assert_eq!(sizes, [3, 3, 2]);
    let options = ReadOptions {
        batch_size: 4,
        ..Default::default()
    };
    let sizes: Vec<_> = read(&crm, Table::Customers, &options)
        .iter()
        .map(RecordBatch::num_rows)
        .collect();
    assert_eq!(
        sizes,
        [4, 4],
        "an exact multiple ends without an empty batch"
    );
}

#[test]
fn a_damaged_row_surfaces_as_an_error_item_holding_the_crm_error() {
    let (dir, crm) = temp_crm();
    many_customers(&crm, 5);
    crm.close().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("t.crm")).unwrap();
    conn.execute(
        "UPDATE customers SET emails = 'not json' WHERE rowid = 4",
        [],
    )
    .unwrap();
    drop(conn);
    let crm = Crm::open(dir.path().join("t.crm")).unwrap();
    let options = ReadOptions {
        batch_size: 2,
        ..Default::default()
    };
    let items: Vec<_> = crm
        .read_table(Table::Customers, &options)
        .unwrap()
        .collect();
    assert_eq!(
        items.len(),
        2,
        "one good batch, then the error, then the end"
    );
    assert_eq!(items[0].as_ref().unwrap().num_rows(), 2);
    let Err(ArrowError::ExternalError(err)) = &items[1] else {
        panic!("expected an external error, got {:?}", items[1]);
    };
    let err = err.downcast_ref::<Error>().expect("a crm error");
    assert!(
        matches!(err, Error::Storage(m) if m.contains("emails")),
        "{err}"
    );
}

/// Reads the interactions of a generated store of about a million
/// interactions and prints the rate. Run with
/// `cargo test --release --features arrow --test tables -- --ignored --nocapture`;
/// `CRM_TABLES_BENCH_DB=path` keeps (and reuses) the generated file;
/// `CRM_TABLES_BENCH_CUSTOMERS=n` sets its size (100,000 customers, about
/// 870,000 interactions by default).
#[test]
#[ignore]
fn reading_a_million_interactions_rate() {
    use crm_core::synth::{SynthConfig, populate};
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("CRM_TABLES_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.crm"));
    let fresh = !path.exists();
    let crm = Crm::open(&path).unwrap();
    if fresh {
        let customers = std::env::var("CRM_TABLES_BENCH_CUSTOMERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100_000);
        let config = SynthConfig {
            customers,
            interactions_per_customer: 10.0,
            ..Default::default()
        };
        populate(&crm, &config, None).unwrap();
    }
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let reader = crm
            .read_table(Table::Interactions, &ReadOptions::default())
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "interactions: {rows} rows in {secs:.2} s = {:.0} rows/s",
            rows as f64 / secs
        );
        assert!(rows > 500_000);
    }
    let started = std::time::Instant::now();
    let rows: usize = crm
        .read_table(Table::Customers, &ReadOptions::default())
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    println!(
        "customers: {rows} rows in {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn customer_ids_are_right_when_the_table_is_much_larger_than_the_customers() {
    // Many interactions per customer: a whole-table read takes the ids from
    // one scan of the customers; one created between batches (in memory)
    // is still found.
    for file in [false, true] {
        let (_dir, crm) = if file {
            let (d, c) = temp_crm();
            (Some(d), c)
        } else {
            (None, Crm::open_in_memory().unwrap())
        };
        let ids = many_customers(&crm, 3);
        let log = |who: CustomerId, n: usize| {
            for _ in 0..n {
                crm.log_interaction(NewInteraction::new(who, InteractionKind::Note))
                    .unwrap();
            }
        };
        for id in &ids {
            log(*id, 10);
        }
        let options = ReadOptions {
            batch_size: 12,
            ..Default::default()
        };
        let mut reader = crm.read_table(Table::Interactions, &options).unwrap();
        let mut got = texts(&reader.next().unwrap().unwrap(), "customer_id");
        let late = crm
            .create_customer(NewCustomer {
                name: Some("Late".into()),
                ..Default::default()
            })
            .unwrap();
        log(late.id, 2);
        for batch in reader {
            got.extend(texts(&batch.unwrap(), "customer_id"));
        }
        let mut want: Vec<_> = ids
            .iter()
            .flat_map(|id| std::iter::repeat_n(Some(id.to_string()), 10))
            .collect();
        if !file {
            want.extend(std::iter::repeat_n(Some(late.id.to_string()), 2));
        }
        assert_eq!(got, want, "file: {file}");
    }
}
