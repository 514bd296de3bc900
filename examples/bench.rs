//! Import and query figures at scale, each against a baseline measured in the
//! same run on the same machine.
//!
//! ```sh
//! cargo run --release --example bench                 # 1,000,000 customers, ~10 interactions each
//! cargo run --release --example bench -- 100000       # smaller
//! ```
//!
//! Prints, for customers and interactions, rows/s of the library's bulk import
//! (validation, normalization, unique checks, search index, change log)
//! against a plain hand-written rusqlite INSERT loop into a table with the
//! same unique email index; latencies of get-by-id, a 50-item timeline page
//! and a top-20 search against the same SQL written by hand; and the peak
//! RSS of a process that imports the interactions from a CSV file.

use std::time::{Duration, Instant};

use crm_core::export::ExportFormat;
use crm_core::import::{ColumnMapping, ImportOptions};
use crm_core::synth::{Generator, SynthConfig};
use crm_core::{Crm, CustomerId, TimelineQuery};
use rusqlite::{Connection, params};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--csv-import") {
        return csv_import_child(&args[2], &args[3]);
    }
    let customers: u64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    println!(
        "# crm-core bench: {customers} customers, ~10 interactions each, {} cores",
        std::thread::available_parallelism()?.get()
    );

    let generator = Generator::new(SynthConfig {
        customers,
        ..SynthConfig::default()
    });
    let people: Vec<_> = generator.people(&[]).collect();
    let n_people = people.len() as f64;

    // Baseline: the same rows, inserted by a plain prepared INSERT loop in
    // one transaction, into a table with a unique email index.
    let base_path = dir.path().join("baseline.db");
    let base_rate = {
        let mut conn = Connection::open(&base_path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE customers (id INTEGER PRIMARY KEY, external_id TEXT, name TEXT, email TEXT,
                 phone TEXT, country TEXT, tags TEXT, created_at INTEGER);
             CREATE UNIQUE INDEX customers_email ON customers (email);
             CREATE UNIQUE INDEX customers_external_id ON customers (external_id);",
        )?;
        let started = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare("INSERT INTO customers (external_id, name, email, phone, country, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")?;
            for p in &people {
                stmt.execute(params![
                    p.external_id,
                    format!(
                        "{} {}",
                        p.first_name.as_deref().unwrap_or(""),
                        p.last_name.as_deref().unwrap_or("")
                    ),
                    p.emails.first(),
                    p.phones.first(),
                    p.country,
                    p.tags.join(";"),
                    0_i64
                ])?;
            }
        }
        tx.commit()?;
        n_people / started.elapsed().as_secs_f64()
    };

    let path = dir.path().join("bench.crm");
    let crm = Crm::open(&path)?;
    let started = Instant::now();
    let report = crm.import_customers(people, &ImportOptions::default(), None)?;
    let ours = report.inserted as f64 / started.elapsed().as_secs_f64();
    println!(
        "customers import   {:>10.0} rows/s   baseline (raw INSERT loop) {:>10.0} rows/s   ratio {:.2}",
        ours,
        base_rate,
        ours / base_rate
    );

    // Interactions: write them to CSV first, so generation is not timed.
    let csv_path = dir.path().join("interactions.csv");
    let mut count = 0_u64;
    {
        let mut w = csv::Writer::from_path(&csv_path)?;
        w.write_record([
            "customer_external_id",
            "kind",
            "channel",
            "direction",
            "occurred_at",
            "subject",
            "amount_minor",
            "currency",
            "product",
            "quantity",
            "score",
        ])?;
        for i in generator.interactions() {
            let ext = match &i.customer {
                crm_core::CustomerRef::ExternalId(e) => e.clone(),
                _ => unreachable!("the generator names customers by external id"),
            };
            let opt = |o: Option<String>| o.unwrap_or_default();
            w.write_record([
                ext,
                i.kind.to_string(),
                opt(i.channel),
                opt(i.direction.map(|d| d.as_str().to_string())),
                i.occurred_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                opt(i.subject),
                opt(i.amount_minor.map(|a| a.to_string())),
                opt(i.currency),
                opt(i.product),
                opt(i.quantity.map(|q| q.to_string())),
                opt(i.score.map(|s| s.to_string())),
            ])?;
            count += 1;
        }
        w.flush()?;
    }
    let interactions: Vec<_> = generator.interactions().collect();
    let base_rate = {
        let mut conn = Connection::open(&base_path)?;
        conn.execute_batch(
            "CREATE TABLE interactions (id INTEGER PRIMARY KEY, customer_id INTEGER, kind TEXT, occurred_at INTEGER,
                 subject TEXT, amount_minor INTEGER, currency TEXT, product TEXT);
             CREATE INDEX interactions_customer ON interactions (customer_id, occurred_at);",
        )?;
        let started = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut lookup = tx.prepare("SELECT id FROM customers WHERE external_id = ?")?;
            let mut stmt = tx.prepare("INSERT INTO interactions (customer_id, kind, occurred_at, subject, amount_minor, currency, product) VALUES (?, ?, ?, ?, ?, ?, ?)")?;
            let mut last: Option<(String, i64)> = None;
            for i in &interactions {
                let crm_core::CustomerRef::ExternalId(ext) = &i.customer else {
                    unreachable!()
                };
                let id = match &last {
                    Some((e, id)) if e == ext => *id,
                    _ => {
                        let id: i64 = lookup.query_row([ext], |r| r.get(0)).unwrap_or(0);
                        last = Some((ext.clone(), id));
                        id
                    }
                };
                stmt.execute(params![
                    id,
                    i.kind.as_str(),
                    i.occurred_at.map(|t| t.timestamp_micros()),
                    i.subject,
                    i.amount_minor,
                    i.currency,
                    i.product
                ])?;
            }
        }
        tx.commit()?;
        interactions.len() as f64 / started.elapsed().as_secs_f64()
    };
    let started = Instant::now();
    let report = crm.import_interactions(interactions, &ImportOptions::default(), None)?;
    let ours = report.inserted as f64 / started.elapsed().as_secs_f64();
    println!(
        "interactions import{:>10.0} rows/s   baseline (raw INSERT loop) {:>10.0} rows/s   ratio {:.2}   ({} rows)",
        ours,
        base_rate,
        ours / base_rate,
        report.inserted
    );

    // Point queries against hand-written SQL on the same file.
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ids: Vec<CustomerId> = {
        let mut stmt =
            conn.prepare("SELECT id FROM customers WHERE rowid % 997 = 0 AND kind = 'person'")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| {
            Ok(r?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .parse()?)
        })
        .collect::<Result<_, Box<dyn std::error::Error>>>()?
    };
    let raw_ids: Vec<Vec<u8>> = ids.iter().map(|i| i.as_bytes().to_vec()).collect();
    let get_ours = per_call(ids.len(), |k| crm.get_customer(ids[k]).map(|_| ()))?;
    let get_base = per_call(ids.len(), |k| {
        let mut stmt = conn.prepare_cached("SELECT * FROM customers WHERE id = ?")?;
        stmt.query_row([&raw_ids[k]], |r| r.get::<_, String>("name"))
            .map(|_| ())
            .map_err(crm_core::Error::from)
    })?;
    report_latency("get customer by id", get_ours, get_base);
    let tl_ours = per_call(ids.len(), |k| {
        crm.timeline(ids[k], &TimelineQuery::default()).map(|_| ())
    })?;
    let tl_base = per_call(ids.len(), |k| {
        let mut stmt = conn.prepare_cached(
            "SELECT i.* FROM interactions i WHERE i.customer_rowid = (SELECT rowid FROM customers WHERE id = ?) ORDER BY occurred_at DESC, rowid DESC LIMIT 51",
        )?;
        let rows = stmt.query_map([&raw_ids[k]], |r| r.get::<_, i64>("occurred_at"))?;
        rows.count();
        Ok(())
    })?;
    report_latency("timeline, 50 latest", tl_ours, tl_base);
    let words = [
        "novak", "muller", "smith", "garcia", "blue", "warranty", "ana", "luka", "rossi", "delay",
    ];
    let s_ours = per_call(words.len() * 20, |k| {
        crm.search(words[k % words.len()], 20).map(|_| ())
    })?;
    let s_base = per_call(words.len() * 20, |k| {
        let mut stmt = conn.prepare_cached(
            "SELECT c.* FROM customer_search JOIN customers c ON c.rowid = customer_search.rowid WHERE customer_search MATCH ? ORDER BY rank LIMIT 20",
        )?;
        let rows = stmt.query_map([format!("\"{}\"*", words[k % words.len()])], |r| {
            r.get::<_, String>("name")
        })?;
        rows.count();
        Ok(())
    })?;
    report_latency("search, top 20", s_ours, s_base);

    let started = Instant::now();
    let exported = crm.export_customers(std::io::sink(), ExportFormat::Csv)?;
    println!(
        "export customers (CSV) {:>10.0} rows/s",
        exported as f64 / started.elapsed().as_secs_f64()
    );

    // Peak memory of a CSV import, in a fresh process.
    let child_db = dir.path().join("csv-import.crm");
    crm.export_customers(
        std::fs::File::create(dir.path().join("c.csv"))?,
        ExportFormat::Csv,
    )?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .args([
            "--csv-import",
            &csv_path.display().to_string(),
            &child_db.display().to_string(),
        ])
        .env("BENCH_CUSTOMERS_CSV", dir.path().join("c.csv"))
        .output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!("({count} interaction rows in the CSV)");
    Ok(())
}

/// Mean time per call over `n` calls (after a warm-up pass over the first
/// tenth).
fn per_call(
    n: usize,
    mut f: impl FnMut(usize) -> crm_core::Result<()>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    for k in 0..n / 10 {
        f(k)?;
    }
    let started = Instant::now();
    for k in 0..n {
        f(k)?;
    }
    Ok(started.elapsed() / n.max(1) as u32)
}

fn report_latency(what: &str, ours: Duration, base: Duration) {
    println!(
        "{what:<22} {:>9.1} µs   hand-written SQL {:>9.1} µs   ratio {:.2}",
        ours.as_secs_f64() * 1e6,
        base.as_secs_f64() * 1e6,
        ours.as_secs_f64() / base.as_secs_f64()
    );
}

/// Imports customers and then the interactions CSV into a new database and
/// reports throughput and the process's peak RSS.
fn csv_import_child(csv: &str, db: &str) -> Result<(), Box<dyn std::error::Error>> {
    let crm = Crm::open(db)?;
    let customers = std::env::var("BENCH_CUSTOMERS_CSV")?;
    crm.import_customers_csv(
        std::fs::File::open(customers)?,
        &ColumnMapping::default(),
        &ImportOptions::default(),
        None,
    )?;
    let started = Instant::now();
    let report = crm.import_interactions_csv(
        std::io::BufReader::new(std::fs::File::open(csv)?),
        &ColumnMapping::default(),
        &ImportOptions::default(),
        None,
    )?;
    let secs = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: unknown");
    println!(
        "interactions CSV import {:>10.0} rows/s   peak RSS of the importing process: {}",
        report.inserted as f64 / secs,
        peak.trim_start_matches("VmHWM:").trim()
    );
    Ok(())
}
