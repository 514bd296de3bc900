//! The Rust-native side of `crm-py/bench/bench_dataframes.py`: imports the
//! customers of a CSV file (the columns that script writes) with
//! `Crm::import_customers`, from values built before the clock starts, and
//! prints the time and the peak memory on top of those values as JSON.
//!
//! ```sh
//! cargo run --release --example bench_import -- customers.csv crm.db
//! ```

use std::time::Instant;

use crm_core::import::ImportOptions;
use crm_core::{Crm, NewCustomer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(csv_path), Some(db_path)) = (args.get(1), args.get(2)) else {
        return Err("usage: bench_import CUSTOMERS.csv DB".into());
    };
    let mut reader = csv::Reader::from_path(csv_path)?;
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("the CSV has no column {name:?}"))
    };
    let (external_id, first_name, last_name, email, phone, country, tags, stage) = (
        column("external_id")?,
        column("first_name")?,
        column("last_name")?,
        column("email")?,
        column("phone")?,
        column("country")?,
        column("tags")?,
        column("lifecycle_stage")?,
    );
    let text = |record: &csv::StringRecord, i: usize| {
        record.get(i).filter(|s| !s.is_empty()).map(str::to_string)
    };
    let mut customers = Vec::new();
    for record in reader.records() {
        let record = record?;
        customers.push(NewCustomer {
            external_id: text(&record, external_id),
            first_name: text(&record, first_name),
            last_name: text(&record, last_name),
            emails: text(&record, email).into_iter().collect(),
            phones: text(&record, phone).into_iter().collect(),
            country: text(&record, country),
            tags: text(&record, tags)
                .map(|t| t.split(';').map(str::to_string).collect())
                .unwrap_or_default(),
            lifecycle_stage: text(&record, stage),
            ..NewCustomer::default()
        });
    }
    let rows = customers.len();
    let crm = Crm::open(db_path)?;
    let before = memory_kb("VmRSS");
    let started = Instant::now();
    let report = crm.import_customers(customers, &ImportOptions::default(), None)?;
    let seconds = started.elapsed().as_secs_f64();
    // The peak on top of the values built before the clock started.
    let extra_mb = memory_kb("VmHWM").saturating_sub(before) as f64 / 1024.0;
    println!(
        "{{\"rows\": {rows}, \"inserted\": {}, \"seconds\": {seconds}, \"extra_mb\": {extra_mb}}}",
        report.inserted
    );
    Ok(())
}

/// A field of `/proc/self/status` in kB (0 where there is none).
fn memory_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
