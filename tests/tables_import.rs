//! Imports of customers and interactions from Arrow record batches: every
//! Arrow type a DataFrame exports, the same validation as the other imports,
//! and errors that name the column and row and leave the store untouched.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use crm_core::arrow::arrow_array::builder::{ListBuilder, StringBuilder};
use crm_core::arrow::arrow_array::types::{Int8Type, UInt32Type};
use crm_core::arrow::arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DictionaryArray,
    Float32Array, Float64Array, Int64Array, LargeStringArray, NullArray, RecordBatch,
    RecordBatchIterator, RecordBatchReader, StringArray, StringViewArray, Time64MicrosecondArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use crm_core::import::{ColumnMapping, ImportMode, ImportOptions, ImportProgress};
use crm_core::{
    AttributeValue, Crm, Error, InteractionKind, ListCustomers, NewCustomer, TimelineQuery,
};
use serde_json::{Map, Value, json};

fn crm() -> Crm {
    Crm::open_with(
        None,
        crm_core::OpenOptions {
            default_region: Some("SI".into()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn reader(batches: Vec<RecordBatch>) -> impl RecordBatchReader {
    let schema = batches[0].schema();
    RecordBatchIterator::new(batches.into_iter().map(Ok), schema)
}

fn strings(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn import_customers(
    crm: &Crm,
    batches: Vec<RecordBatch>,
) -> crm_core::Result<crm_core::import::ImportReport> {
    crm.import_customers_arrow(
        reader(batches),
        &ColumnMapping::default(),
        &ImportOptions::default(),
        None,
    )
}

fn import_interactions(
    crm: &Crm,
    batches: Vec<RecordBatch>,
) -> crm_core::Result<crm_core::import::ImportReport> {
    crm.import_interactions_arrow(
        reader(batches),
        &ColumnMapping::default(),
        &ImportOptions::default(),
        None,
    )
}

fn customer(crm: &Crm, email: &str) -> crm_core::Customer {
    crm.find_customer_by_email(email).unwrap().unwrap()
}

/// The row, field and reason of an all-or-nothing row error.
fn row_error(err: Error) -> (u64, String, String) {
    match err {
        Error::InvalidRow { row, field, reason } => (row, field, reason),
        other => panic!("expected a row error, got {other:?}"),
    }
}

fn with_ana(crm: &Crm) {
    crm.create_customer(NewCustomer {
        name: Some("Ana".into()),
        emails: vec!["ana@example.com".into()],
        ..Default::default()
    })
    .unwrap();
}

#[test]
fn customers_read_text_of_every_arrow_kind_lists_dates_and_attributes() {
    let crm = crm();
    let categories: DictionaryArray<Int8Type> =
        vec![Some("web"), None, Some("web")].into_iter().collect();
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("VIP");
    tags.values().append_value("newsletter");
    tags.append(true);
    tags.append(true); // an empty list
    tags.append(false); // null: no tags
    let day = |y, m, d| {
        (NaiveDate::from_ymd_opt(y, m, d).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
            .num_days() as i32
    };
    let report = import_customers(
        &crm,
        vec![batch(vec![
            (
                "name",
                Arc::new(LargeStringArray::from(vec!["Ana Novak", "Bo Li", "Cy Doe"])),
            ),
            (
                "email",
                Arc::new(StringViewArray::from(vec![
                    Some("ana@example.com"),
                    Some("bo@example.com"),
                    Some("cy@example.com"),
                ])),
            ),
            ("phone", strings(&[Some("041 123 456"), None, None])),
            ("source", Arc::new(categories)),
            ("tags", Arc::new(tags.finish())),
            (
                "birth_date",
                Arc::new(Date32Array::from(vec![Some(day(1990, 5, 17)), None, None])),
            ),
            (
                "attr.ltv",
                Arc::new(Float64Array::from(vec![Some(120.5), Some(3.0), None])),
            ),
            (
                "attr.active",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                "attr.since",
                Arc::new(Date32Array::from(vec![Some(day(2020, 1, 2)), None, None])),
            ),
            ("owner", Arc::new(NullArray::new(3))),
        ])],
    )
    .unwrap();
    assert_eq!(report.inserted, 3);
    let ana = customer(&crm, "ana@example.com");
    assert_eq!(ana.name, "Ana Novak");
    assert_eq!(ana.phones, ["+38641123456"]);
    assert_eq!(ana.source.as_deref(), Some("web"));
    assert_eq!(ana.tags, ["newsletter", "vip"]);
    assert_eq!(ana.birth_date, NaiveDate::from_ymd_opt(1990, 5, 17));
    assert_eq!(ana.attributes["ltv"], AttributeValue::Number(120.5));
    assert_eq!(ana.attributes["active"], AttributeValue::Bool(true));
    assert_eq!(
        ana.attributes["since"],
        AttributeValue::Date(NaiveDate::from_ymd_opt(2020, 1, 2).unwrap())
    );
    assert_eq!(ana.owner, None);
    let bo = customer(&crm, "bo@example.com");
    assert_eq!(bo.source, None, "a null category is no source");
    assert!(bo.tags.is_empty());
    assert_eq!(bo.birth_date, None);
    assert!(
        !bo.attributes.contains_key("active"),
        "a null cell is no attribute"
    );
    assert_eq!(bo.attributes["ltv"], AttributeValue::Number(3.0));
    let cy = customer(&crm, "cy@example.com");
    assert!(cy.tags.is_empty());
    assert_eq!(cy.attributes["active"], AttributeValue::Bool(false));
}

#[test]
fn a_naive_midnight_timestamp_is_a_birth_date_and_other_times_are_refused() {
    let crm = crm();
    let midnight = Utc
        .with_ymd_and_hms(1990, 5, 17, 0, 0, 0)
        .unwrap()
        .timestamp_micros();
    let report = import_customers(
        &crm,
        vec![batch(vec![
            ("name", strings(&[Some("Ana")])),
            ("email", strings(&[Some("ana@example.com")])),
            (
                "birth_date",
                Arc::new(TimestampMicrosecondArray::from(vec![midnight])),
            ),
        ])],
    )
    .unwrap();
    assert_eq!(report.inserted, 1);
    assert_eq!(
        customer(&crm, "ana@example.com").birth_date,
        NaiveDate::from_ymd_opt(1990, 5, 17)
    );
    let err = import_customers(
        &crm,
        vec![batch(vec![
            ("name", strings(&[Some("Bo")])),
            ("email", strings(&[Some("bo@example.com")])),
            (
                "birth_date",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    midnight + 3_600_000_000,
                ])),
            ),
        ])],
    )
    .unwrap_err();
    let (row, field, _) = row_error(err);
    assert_eq!((row, field.as_str()), (1, "birth_date"));
    assert_eq!(crm.count_customers().unwrap(), 1);
}

#[test]
fn interactions_read_decimal_and_float_amounts_exactly_and_timestamps_as_instants() {
    let crm = crm();
    with_ana(&crm);
    let instant = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    let day = (NaiveDate::from_ymd_opt(2024, 5, 3).unwrap()
        - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
    .num_days() as i32;
    let batch = batch(vec![
        ("customer_email", strings(&[Some("ana@example.com"); 4])),
        (
            "kind",
            strings(&[
                Some("purchase"),
                Some("purchase"),
                Some("purchase"),
                Some("call"),
            ]),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![Some(1299), Some(5), None, None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("currency", strings(&[Some("EUR"), Some("JPY"), None, None])),
        (
            "occurred_at",
            Arc::new(
                TimestampNanosecondArray::from(vec![
                    Some(instant.timestamp_nanos_opt().unwrap()),
                    Some(instant.timestamp_nanos_opt().unwrap()),
                    None,
                    None,
                ])
                .with_timezone("+02:00"),
            ),
        ),
        (
            "quantity",
            Arc::new(Float64Array::from(vec![Some(2.0), None, None, None])),
        ),
        (
            "subject",
            Arc::new(Date32Array::from(vec![None, None, None, Some(day)])),
        ),
    ]);
    // JPY has no minor unit: 0.05 JPY can't be exact.
    let err = import_interactions(&crm, vec![batch.clone()]).unwrap_err();
    let (row, field, reason) = row_error(err);
    assert_eq!((row, field.as_str()), (2, "amount"), "{reason}");
    assert_eq!(crm.count_interactions().unwrap(), 0);

    let fixed = batch.project(&[0, 1, 3, 4, 5, 6]).unwrap();
    let amounts: ArrayRef = Arc::new(Float64Array::from(vec![Some(12.99), Some(5.0), None, None]));
    let mut columns = fixed.columns().to_vec();
    columns.insert(2, amounts);
    let mut fields: Vec<_> = fixed.schema().fields().iter().cloned().collect();
    fields.insert(
        2,
        Arc::new(crm_core::arrow::arrow_schema::Field::new(
            "amount",
            crm_core::arrow::arrow_schema::DataType::Float64,
            true,
        )),
    );
    let fixed = RecordBatch::try_new(
        Arc::new(crm_core::arrow::arrow_schema::Schema::new(fields)),
        columns,
    )
    .unwrap();
    let report = import_interactions(&crm, vec![fixed]).unwrap();
    assert_eq!(report.inserted, 4);
    let ana = customer(&crm, "ana@example.com");
    let timeline = crm.timeline(ana.id, &TimelineQuery::default()).unwrap();
    let by_amount = |minor| {
        timeline
            .items
            .iter()
            .find(|i| i.amount_minor == Some(minor))
            .unwrap_or_else(|| panic!("no interaction of {minor}"))
    };
    let eur = by_amount(1299);
    assert_eq!(eur.currency.as_deref(), Some("EUR"));
    assert_eq!(
        eur.occurred_at, instant,
        "a zoned timestamp is that instant"
    );
    assert_eq!(eur.quantity, Some(2));
    assert_eq!(by_amount(5).currency.as_deref(), Some("JPY"));
    let call = timeline
        .items
        .iter()
        .find(|i| i.kind == InteractionKind::Call)
        .unwrap();
    assert_eq!(call.subject.as_deref(), Some("2024-05-03"));
}

#[test]
fn a_decimal_amount_is_exact() {
    let crm = crm();
    with_ana(&crm);
    import_interactions(
        &crm,
        vec![batch(vec![
            ("customer_email", strings(&[Some("ana@example.com")])),
            ("kind", strings(&[Some("purchase")])),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![123_456_789_012_345_i128])
                        .with_precision_and_scale(38, 4)
                        .unwrap(),
                ),
            ),
            ("currency", strings(&[Some("EUR")])),
        ])],
    )
    .unwrap_err();
    let report = import_interactions(
        &crm,
        vec![batch(vec![
            ("customer_email", strings(&[Some("ana@example.com")])),
            ("kind", strings(&[Some("purchase")])),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![123_456_789_012_300_i128])
                        .with_precision_and_scale(38, 4)
                        .unwrap(),
                ),
            ),
            ("currency", strings(&[Some("EUR")])),
        ])],
    )
    .unwrap();
    assert_eq!(report.inserted, 1);
    let ana = customer(&crm, "ana@example.com");
    let timeline = crm.timeline(ana.id, &TimelineQuery::default()).unwrap();
    assert_eq!(timeline.items[0].amount_minor, Some(1_234_567_890_123));
}

#[test]
fn a_naive_timestamp_is_utc_and_a_float32_amount_reads_as_it_prints() {
    let crm = crm();
    with_ana(&crm);
    let instant = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    import_interactions(
        &crm,
        vec![batch(vec![
            ("customer_email", strings(&[Some("ana@example.com")])),
            ("kind", strings(&[Some("purchase")])),
            ("amount", Arc::new(Float32Array::from(vec![12.99_f32]))),
            ("currency", strings(&[Some("EUR")])),
            (
                "occurred_at",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    instant.timestamp_micros(),
                ])),
            ),
        ])],
    )
    .unwrap();
    let ana = customer(&crm, "ana@example.com");
    let item = &crm
        .timeline(ana.id, &TimelineQuery::default())
        .unwrap()
        .items[0];
    assert_eq!(item.amount_minor, Some(1299));
    assert_eq!(item.occurred_at, instant);
}

/// Imports one interaction row with `column` and checks it is refused with
/// the row, column and a reason containing `reason`, leaving nothing.
fn refused_interaction(column: (&str, ArrayRef), field: &str, reason: &str) {
    let crm = crm();
    with_ana(&crm);
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        (
            "customer_email",
            strings(&[Some("ana@example.com"), Some("ana@example.com")]),
        ),
        ("kind", strings(&[Some("purchase"), Some("purchase")])),
        ("currency", strings(&[Some("EUR"), Some("EUR")])),
    ];
    columns.retain(|(name, _)| *name != column.0);
    columns.push(column);
    let err = import_interactions(&crm, vec![batch(columns)]).unwrap_err();
    let (row, got_field, got_reason) = row_error(err);
    assert_eq!(row, 2);
    assert_eq!(got_field, field);
    assert!(got_reason.contains(reason), "{got_reason}");
    assert_eq!(crm.count_interactions().unwrap(), 0);
}

#[test]
fn nan_and_infinite_amounts_are_refused_not_missing() {
    refused_interaction(
        ("amount", Arc::new(Float64Array::from(vec![1.0, f64::NAN]))),
        "amount",
        "finite",
    );
    refused_interaction(
        (
            "quantity",
            Arc::new(Float64Array::from(vec![1.0, f64::INFINITY])),
        ),
        "quantity",
        "finite",
    );
}

#[test]
fn a_float_amount_with_more_decimals_than_the_currency_is_refused_not_rounded() {
    refused_interaction(
        ("amount", Arc::new(Float64Array::from(vec![12.99, 12.345]))),
        "amount",
        "more decimals",
    );
}

#[test]
fn a_fractional_float_amount_minor_is_refused() {
    refused_interaction(
        (
            "amount_minor",
            Arc::new(Float64Array::from(vec![1299.0, 12.5])),
        ),
        "amount_minor",
        "whole number",
    );
}

#[test]
fn bytes_that_are_not_utf8_are_refused_naming_the_column() {
    let crm = crm();
    with_ana(&crm);
    let subjects: Vec<&[u8]> = vec![b"hello", b"\xff\xfe"];
    let err = crm
        .import_interactions_arrow(
            reader(vec![batch(vec![
                ("customer_email", strings(&[Some("ana@example.com"); 2])),
                ("kind", strings(&[Some("note"); 2])),
                ("Title", Arc::new(BinaryArray::from(subjects))),
            ])]),
            &ColumnMapping::default().map("subject", "Title"),
            &ImportOptions::default(),
            None,
        )
        .unwrap_err();
    let (row, field, reason) = row_error(err);
    assert_eq!(
        (row, field.as_str(), reason.as_str()),
        (2, "Title", "is not valid UTF-8")
    );
    assert_eq!(crm.count_interactions().unwrap(), 0);
}

#[test]
fn a_missing_kind_is_refused_whether_the_cell_or_the_column_is_missing() {
    refused_interaction(("kind", strings(&[Some("call"), None])), "kind", "required");
    let crm = crm();
    with_ana(&crm);
    let err = import_interactions(
        &crm,
        vec![batch(vec![(
            "customer_email",
            strings(&[Some("ana@example.com")]),
        )])],
    )
    .unwrap_err();
    let (row, field, _) = row_error(err);
    assert_eq!((row, field.as_str()), (1, "kind"));
}

#[test]
fn text_in_a_date_column_is_refused_naming_the_row() {
    let crm = crm();
    let err = import_customers(
        &crm,
        vec![batch(vec![
            ("name", strings(&[Some("Ana"), Some("Bo")])),
            (
                "email",
                strings(&[Some("ana@example.com"), Some("bo@example.com")]),
            ),
            (
                "birth_date",
                strings(&[Some("1990-05-17"), Some("yesterday")]),
            ),
        ])],
    )
    .unwrap_err();
    let (row, field, reason) = row_error(err);
    assert_eq!((row, field.as_str()), (2, "birth_date"));
    assert!(reason.contains("YYYY-MM-DD"), "{reason}");
    assert_eq!(crm.count_customers().unwrap(), 0);
}

#[test]
fn a_misspelled_column_is_refused_before_any_row_with_a_suggestion() {
    let crm = crm();
    let err = import_customers(
        &crm,
        vec![batch(vec![
            ("name", strings(&[Some("Ana")])),
            ("emial", strings(&[Some("ana@example.com")])),
        ])],
    )
    .unwrap_err();
    match err {
        Error::Validation { field, reason } => {
            assert_eq!(field, "emial");
            assert!(reason.contains("did you mean 'email'"), "{reason}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(crm.count_customers().unwrap(), 0);
}

#[test]
fn a_column_of_times_of_day_is_refused_before_any_row() {
    let crm = crm();
    let err = import_customers(
        &crm,
        vec![batch(vec![
            ("email", strings(&[Some("ana@example.com")])),
            (
                "attr.opens",
                Arc::new(Time64MicrosecondArray::from(vec![3_600_000_000])),
            ),
        ])],
    )
    .unwrap_err();
    match err {
        Error::Validation { field, reason } => {
            assert_eq!(field, "attr.opens");
            assert!(reason.contains("times of day"), "{reason}");
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(crm.count_customers().unwrap(), 0);
}

#[test]
fn rows_are_numbered_across_batches() {
    let crm = crm();
    let first = batch(vec![
        ("name", strings(&[Some("A"), Some("B")])),
        (
            "email",
            strings(&[Some("a@example.com"), Some("b@example.com")]),
        ),
    ]);
    let second = batch(vec![
        ("name", strings(&[Some("C"), Some("D")])),
        (
            "email",
            strings(&[Some("c@example.com"), Some("not-an-email")]),
        ),
    ]);
    let err = import_customers(&crm, vec![first.clone(), second.clone()]).unwrap_err();
    let (row, field, _) = row_error(err);
    assert_eq!((row, field.as_str()), (4, "emails[0]"));
    assert_eq!(crm.count_customers().unwrap(), 0);

    let options = ImportOptions {
        mode: ImportMode::SkipInvalid,
        ..Default::default()
    };
    let report = crm
        .import_customers_arrow(
            reader(vec![first, second]),
            &ColumnMapping::default(),
            &options,
            None,
        )
        .unwrap();
    assert_eq!((report.rows, report.inserted, report.rejected), (4, 3, 1));
    assert_eq!(report.errors[0].row, 4);
    assert_eq!(report.errors[0].field, "emails[0]");
    assert_eq!(crm.count_customers().unwrap(), 3);
}

#[test]
fn skip_invalid_reports_bad_cells_and_imports_the_rest() {
    let crm = crm();
    with_ana(&crm);
    let options = ImportOptions {
        mode: ImportMode::SkipInvalid,
        ..Default::default()
    };
    let report = crm
        .import_interactions_arrow(
            reader(vec![batch(vec![
                ("customer_email", strings(&[Some("ana@example.com"); 3])),
                ("kind", strings(&[Some("purchase"), Some("purchase"), None])),
                (
                    "amount",
                    Arc::new(Float64Array::from(vec![12.99, f64::NAN, 1.0])),
                ),
                ("currency", strings(&[Some("EUR"); 3])),
            ])]),
            &ColumnMapping::default(),
            &options,
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.rejected), (1, 2));
    let errors: Vec<_> = report
        .errors
        .iter()
        .map(|e| (e.row, e.field.as_str()))
        .collect();
    assert_eq!(errors, [(2, "amount"), (3, "kind")]);
    assert_eq!(crm.count_interactions().unwrap(), 1);
}

#[test]
fn mapping_renames_and_ignores_columns_and_upsert_updates() {
    let crm = crm();
    with_ana(&crm);
    let mapping = ColumnMapping {
        ignore: vec!["notes".into()],
        ..ColumnMapping::default()
            .map("email", "E-mail")
            .map("name", "Full name")
    };
    let options = ImportOptions {
        upsert: true,
        ..Default::default()
    };
    let report = crm
        .import_customers_arrow(
            reader(vec![batch(vec![
                ("Full name", strings(&[Some("Ana Novak"), Some("Bo Li")])),
                (
                    "E-mail",
                    strings(&[Some("ana@example.com"), Some("bo@example.com")]),
                ),
                ("notes", strings(&[Some("whatever"), None])),
            ])]),
            &mapping,
            &options,
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.updated), (1, 1));
    assert_eq!(customer(&crm, "ana@example.com").name, "Ana Novak");
    assert_eq!(customer(&crm, "bo@example.com").name, "Bo Li");
}

#[test]
fn progress_is_reported() {
    let crm = crm();
    let names: Vec<String> = (0..25).map(|i| format!("P {i}")).collect();
    let mut seen: Vec<ImportProgress> = Vec::new();
    let mut progress = |p: &ImportProgress| seen.push(*p);
    let options = ImportOptions {
        progress_every: 10,
        ..Default::default()
    };
    crm.import_customers_arrow(
        reader(vec![batch(vec![(
            "name",
            Arc::new(StringArray::from(names)) as ArrayRef,
        )])]),
        &ColumnMapping::default(),
        &options,
        Some(&mut progress),
    )
    .unwrap();
    let rows: Vec<u64> = seen.iter().map(|p| p.rows).collect();
    assert_eq!(rows, [10, 20, 25]);
    assert_eq!(seen[2].applied, 25);
}

#[test]
fn arrow_rows_store_the_same_customers_as_the_same_records() {
    let n = 300;
    let names: Vec<String> = (0..n).map(|i| format!("Person {i}")).collect();
    let emails: Vec<String> = (0..n).map(|i| format!("P{i}@Example.com")).collect();
    let phones: Vec<Option<String>> = (0..n)
        .map(|i| (i % 3 != 0).then(|| format!("041 {:03} {:03}", i, i)))
        .collect();
    let ltv: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 2 == 0).then_some(i as f64 * 1.5))
        .collect();
    let ids: Vec<i64> = (0..n).map(|i| 1000 + i as i64).collect();
    let arrow = crm();
    arrow
        .import_customers_arrow(
            reader(vec![batch(vec![
                (
                    "name",
                    Arc::new(StringArray::from(names.clone())) as ArrayRef,
                ),
                ("email", Arc::new(StringArray::from(emails.clone()))),
                ("phone", Arc::new(StringArray::from(phones.clone()))),
                ("attr.ltv", Arc::new(Float64Array::from(ltv.clone()))),
                ("external_id", Arc::new(Int64Array::from(ids.clone()))),
            ])]),
            &ColumnMapping::default(),
            &ImportOptions::default(),
            None,
        )
        .unwrap();
    let records: Vec<Map<String, Value>> = (0..n)
        .map(|i| {
            let mut record = json!({
                "name": names[i],
                "email": emails[i],
                "external_id": ids[i].to_string(),
            });
            if let Some(p) = &phones[i] {
                record["phone"] = json!(p);
            }
            if let Some(v) = ltv[i] {
                record["attr.ltv"] = json!(v);
            }
            match record {
                Value::Object(map) => map,
                _ => unreachable!(),
            }
        })
        .collect();
    let plain = crm();
    plain
        .import_customer_records(records, &ImportOptions::default(), None)
        .unwrap();
    let all = |crm: &Crm| {
        let query = ListCustomers {
            limit: 10_000,
            ..Default::default()
        };
        let mut customers: Vec<_> = crm
            .list_customers(&query)
            .unwrap()
            .items
            .into_iter()
            .map(|c| {
                (
                    c.external_id,
                    c.name,
                    c.emails,
                    c.phones,
                    c.attributes,
                    c.tags,
                )
            })
            .collect();
        customers.sort_by(|a, b| a.0.cmp(&b.0));
        customers
    };
    let (from_arrow, from_records) = (all(&arrow), all(&plain));
    assert_eq!(from_arrow.len(), n);
    assert_eq!(from_arrow, from_records);
}

#[test]
fn categorical_text_in_a_dictionary_is_read_as_its_values() {
    let crm = crm();
    with_ana(&crm);
    let kinds: DictionaryArray<UInt32Type> = vec![Some("call"), Some("note"), Some("call")]
        .into_iter()
        .collect();
    let report = import_interactions(
        &crm,
        vec![batch(vec![
            ("customer_email", strings(&[Some("ana@example.com"); 3])),
            ("kind", Arc::new(kinds)),
        ])],
    )
    .unwrap();
    assert_eq!(report.inserted, 3);
    let ana = customer(&crm, "ana@example.com");
    let mut kinds: Vec<_> = crm
        .timeline(ana.id, &TimelineQuery::default())
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.kind)
        .collect();
    kinds.sort_by_key(|k| k.to_string());
    assert_eq!(
        kinds,
        [
            InteractionKind::Call,
            InteractionKind::Call,
            InteractionKind::Note
        ]
    );
}

// ----- Arrow IPC files -----------------------------------------------------------

mod ipc {
    use super::*;
    use crm_core::arrow::{ReadOptions, Table};
    use std::io::Cursor;

    fn customers_file(crm: &Crm) -> Vec<u8> {
        let mut file = Vec::new();
        crm.export_table(Table::Customers, &ReadOptions::default(), &mut file)
            .unwrap();
        file
    }

    #[test]
    fn an_exported_table_imports_into_another_crm_with_the_same_customers() {
        let source = crm();
        for (name, email, tag) in [
            ("Ana Novak", "ana@example.com", "vip"),
            ("Bo", "bo@example.com", "new"),
        ] {
            source
                .create_customer(NewCustomer {
                    name: Some(name.into()),
                    emails: vec![email.into()],
                    tags: vec![tag.into()],
                    country: Some("si".into()),
                    ..Default::default()
                })
                .unwrap();
        }
        let file = customers_file(&source);
        assert!(file.starts_with(b"ARROW1"));

        let copy = crm();
        let report = copy
            .import_customers_ipc(
                Cursor::new(file),
                &ColumnMapping::default(),
                &ImportOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(report.inserted, 2);
        let comparable = |crm: &Crm| {
            let mut all: Vec<_> = crm
                .list_customers(&ListCustomers::default())
                .unwrap()
                .items
                .into_iter()
                .map(|c| (c.name, c.emails, c.tags, c.country))
                .collect();
            all.sort();
            all
        };
        assert_eq!(comparable(&source), comparable(&copy));
    }

    #[test]
    fn the_stream_format_is_read_too() {
        let b = batch(vec![("name", strings(&[Some("Ana"), Some("Bo")]))]);
        let mut stream = Vec::new();
        {
            let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut stream, &b.schema()).unwrap();
            w.write(&b).unwrap();
            w.finish().unwrap();
        }
        let crm = crm();
        let report = crm
            .import_customers_ipc(
                Cursor::new(stream),
                &ColumnMapping::default(),
                &ImportOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(report.inserted, 2);
    }

    #[test]
    fn data_that_is_not_arrow_is_a_validation_error_on_file() {
        let crm = crm();
        let err = crm
            .import_customers_ipc(
                Cursor::new(b"name\nAna\n".to_vec()),
                &ColumnMapping::default(),
                &ImportOptions::default(),
                None,
            )
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation { field, .. } if field == "file"),
            "{err:?}"
        );
        assert_eq!(crm.count_customers().unwrap(), 0);
    }

    #[test]
    fn a_bad_row_in_a_file_imports_nothing() {
        let mut file = Vec::new();
        let b = batch(vec![
            ("name", strings(&[Some("Ana"), Some("Bo")])),
            (
                "email",
                strings(&[Some("ana@example.com"), Some("not-an-email")]),
            ),
        ]);
        {
            let mut w = arrow_ipc::writer::FileWriter::try_new(&mut file, &b.schema()).unwrap();
            w.write(&b).unwrap();
            w.finish().unwrap();
        }
        let crm = crm();
        let err = crm
            .import_customers_ipc(
                Cursor::new(file),
                &ColumnMapping::default(),
                &ImportOptions::default(),
                None,
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRow { row: 2, .. }), "{err:?}");
        assert_eq!(crm.count_customers().unwrap(), 0);
    }

    #[test]
    fn export_errors_are_the_read_errors_and_write_nothing() {
        let crm = crm();
        let mut file = Vec::new();
        let options = ReadOptions {
            filter: Some("stge = 1".into()),
            ..ReadOptions::default()
        };
        let err = crm
            .export_table(Table::Customers, &options, &mut file)
            .unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
        assert!(file.is_empty());
    }
}
