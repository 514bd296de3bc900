//! Segment counts at scale: five canonical filter expressions (and one that
//! matches nearly everyone), each timed through `Crm::count_matching` next
//! to the same question written by hand in SQL, run on the same SQLite file
//! through the same bundled SQLite, in the same run. The comparison with
//! DuckDB over Parquet is `crm-py/bench/bench_segments.py`, on the file
//! this builds; the figures are in BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example bench_segments                          # 1,000,000 customers, in a temporary file
//! cargo run --release --example bench_segments -- 20000                 # smaller
//! cargo run --release --example bench_segments -- --db /tmp/seg.crm     # build the file once, reuse it later
//! ```
//!
//! With `--db PATH` the file is generated when it doesn't exist and reused
//! as it is when it does (the customer count argument is then ignored).
//! `--runs N` sets the timed runs per query (default 5, after one warm-up;
//! the median is reported); `--json PATH` also writes the figures as JSON.
//! The last column, the library's own SQL (`Crm::explain`) run directly on
//! the hand-written side's connection, tells the cost of the SQL's shape
//! from the library's overhead around it.
//!
//! The generated history ends now, so that windows such as `within 90d`
//! are full; about half the people granted `email_marketing` consent at
//! some time and one in five of those withdrew it later
//! (`crm_core::synth::Generator::consents_of`).
//!
//! Every hand-written count is checked to equal the library's: a real
//! check, not a timing one. No timing is asserted; ratios are printed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use crm_core::Crm;
use crm_core::synth::{SynthConfig, populate, populate_consents};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

const DAY_MICROS: i64 = 86_400_000_000;

/// A canonical segment: the filter expression and the same question as a
/// competent engineer would write it in SQL against this schema (using the
/// derived tables of migration 0003), with its parameters. `:now`, `:lo90`
/// and `:lo365` are bound to now and to now minus 90 and 365 days.
struct Case {
    name: &'static str,
    filter: &'static str,
    sql: &'static str,
    params: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "1 field",
        filter: r#"country = "DE""#,
        sql: "SELECT count(*) FROM customers WHERE country = :country",
        params: &[(":country", "DE")],
    },
    Case {
        name: "2 tag + attribute",
        filter: r#""vip" in tags and attr.plan = "pro""#,
        sql: "SELECT count(*) FROM customer_tags t JOIN customers c ON c.rowid = t.customer_rowid \
              WHERE t.tag = :tag AND json_extract(c.attributes, '$.plan') = :plan",
        params: &[(":tag", "vip"), (":plan", "pro")],
    },
    Case {
        name: "3 purchases in 90 days",
        filter: "count(purchases within 90d) >= 3",
        sql: "SELECT count(*) FROM (SELECT customer_rowid FROM interactions \
              WHERE kind = :kind AND occurred_at BETWEEN :lo90 AND :now \
              GROUP BY customer_rowid HAVING count(*) >= 3)",
        params: &[(":kind", "purchase")],
    },
    Case {
        name: "4 365-day spend + consent",
        filter: r#"sum(purchases.amount within 365d) > 500 and consented("email_marketing")"#,
        sql: "SELECT count(*) FROM (SELECT customer_rowid FROM interactions \
              WHERE kind = :kind AND occurred_at BETWEEN :lo365 AND :now \
              GROUP BY customer_rowid HAVING sum(amount_minor) > 50000) s \
              JOIN consent_current k ON k.purpose = :purpose AND k.channel = '' \
              AND k.customer_rowid = s.customer_rowid \
              WHERE k.status = 'granted'",
        params: &[(":kind", "purchase"), (":purpose", "email_marketing")],
    },
    Case {
        name: "5 nested and/or/not",
        filter: r#"(country = "DE" or ("vip" in tags and attr.plan = "pro")) and sum(purchases.amount within 365d) > 500 and consented("email_marketing") and not (count(purchases within 90d) >= 3)"#,
        sql: "SELECT count(*) FROM customers c \
              JOIN (SELECT customer_rowid FROM interactions \
                    WHERE kind = :kind AND occurred_at BETWEEN :lo365 AND :now \
                    GROUP BY customer_rowid HAVING sum(amount_minor) > 50000) s \
                ON s.customer_rowid = c.rowid \
              JOIN consent_current k ON k.purpose = :purpose AND k.channel = '' \
                AND k.customer_rowid = c.rowid AND k.status = 'granted' \
              WHERE (c.country = :country OR (json_extract(c.attributes, '$.plan') = :plan \
                     AND EXISTS (SELECT 1 FROM customer_tags t WHERE t.tag = :tag AND t.customer_rowid = c.rowid))) \
                AND c.rowid NOT IN (SELECT customer_rowid FROM interactions \
                    WHERE kind = :kind AND occurred_at BETWEEN :lo90 AND :now \
                    GROUP BY customer_rowid HAVING count(*) >= 3)",
        params: &[
            (":kind", "purchase"),
            (":purpose", "email_marketing"),
            (":country", "DE"),
            (":plan", "pro"),
            (":tag", "vip"),
        ],
    },
    Case {
        name: "6 almost everyone",
        filter: r#"not ("do-not-call" in tags)"#,
        // Everyone minus those with the tag: two counts instead of a probe
        // per customer.
        sql: "SELECT (SELECT count(*) FROM customers) \
              - (SELECT count(*) FROM customer_tags WHERE tag = :tag)",
        params: &[(":tag", "do-not-call")],
    },
];

struct Args {
    customers: u64,
    db: Option<PathBuf>,
    runs: usize,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args = Args {
        customers: 1_000_000,
        db: None,
        runs: 5,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--db" => args.db = Some(value("--db")?.into()),
            "--runs" => args.runs = value("--runs")?.parse()?,
            "--json" => args.json = Some(value("--json")?.into()),
            n if !n.starts_with('-') => args.customers = n.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(args)
}

/// Generates the data set into a new file at `path`.
fn generate(path: &Path, customers: u64) -> Result<(), Box<dyn std::error::Error>> {
    let crm = Crm::open(path)?;
    let config = SynthConfig {
        customers,
        end: Utc::now(),
        ..SynthConfig::default()
    };
    let started = Instant::now();
    let mut last = Instant::now();
    let mut progress = |stage: &str, p: &crm_core::import::ImportProgress| {
        if last.elapsed() > Duration::from_secs(10) {
            eprintln!("  {stage}: {} rows", p.rows);
            last = Instant::now();
        }
    };
    let summary = populate(&crm, &config, Some(&mut progress))?;
    eprintln!(
        "generated {} organizations, {} people, {} interactions in {:.0} s",
        summary.organizations,
        summary.people,
        summary.interactions,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let consents = populate_consents(&crm, &config)?;
    eprintln!(
        "recorded {consents} consent answers in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    crm.close()?;
    Ok(())
}

/// The hand-written side: a read-only connection configured as the
/// library's readers are (16 MiB page cache, temporary B-trees in memory).
fn open_by_hand(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    Ok(conn)
}

/// Binds a case's parameters, with the window bounds taken at `now`
/// (microseconds since the epoch).
fn bind(stmt: &mut rusqlite::Statement<'_>, case: &Case, now: i64) -> rusqlite::Result<()> {
    let times = [
        (":now", now),
        (":lo90", now - 90 * DAY_MICROS),
        (":lo365", now - 365 * DAY_MICROS),
    ];
    for (name, v) in times {
        if let Some(i) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(i, v)?;
        }
    }
    for (name, v) in case.params {
        let i = stmt
            .parameter_index(name)?
            .unwrap_or_else(|| panic!("{}: no parameter {name}", case.name));
        stmt.raw_bind_parameter(i, Value::Text((*v).to_string()))?;
    }
    Ok(())
}

/// Runs a case's hand-written SQL with the window bounds taken at `now`.
fn by_hand(conn: &Connection, case: &Case, now: i64) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(case.sql)?;
    bind(&mut stmt, case, now)?;
    let mut rows = stmt.raw_query();
    let row = rows.next()?.expect("count(*) returns a row");
    let n: i64 = row.get(0)?;
    Ok(n as u64)
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// Milliseconds with three significant digits or more.
fn show(d: Duration) -> String {
    let x = ms(d);
    if x < 1.0 {
        format!("{x:.3} ms")
    } else if x < 10.0 {
        format!("{x:.2} ms")
    } else {
        format!("{x:.1} ms")
    }
}

struct Figures {
    count: u64,
    ours: Duration,
    hand: Duration,
    /// The library's own SQL (`Crm::explain`), prepared once and run on the
    /// hand-written side's connection: tells the cost of the SQL's shape
    /// from the library's overhead around it.
    compiled: Duration,
}

/// Runs the SQL `Crm::explain` shows with its parameters (given as text:
/// numbers are bound as numbers).
fn compiled_by_hand(conn: &Connection, explain: &crm_core::Explain) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(&explain.sql)?;
    for (i, p) in explain.params.iter().enumerate() {
        let v = if let Ok(n) = p.parse::<i64>() {
            Value::Integer(n)
        } else if let Ok(x) = p.parse::<f64>() {
            Value::Real(x)
        } else {
            Value::Text(p.clone())
        };
        stmt.raw_bind_parameter(i + 1, v)?;
    }
    let mut rows = stmt.raw_query();
    let row = rows.next()?.expect("count(*) returns a row");
    let n: i64 = row.get(0)?;
    Ok(n as u64)
}

fn measure(
    crm: &Crm,
    conn: &Connection,
    case: &Case,
    runs: usize,
) -> Result<Figures, Box<dyn std::error::Error>> {
    // The check: the library's count equals the hand-written one. The
    // library takes "now" itself, between t0 and t1; a purchase crossing a
    // window's edge in between would make the two bounds disagree, so then
    // it is tried again.
    let mut count = None;
    for _ in 0..5 {
        let t0 = now_micros();
        let ours = crm.count_matching(case.filter)?;
        let t1 = now_micros();
        let (a, b) = (by_hand(conn, case, t0)?, by_hand(conn, case, t1)?);
        if a == b {
            assert_eq!(
                ours, a,
                "{}: count_matching and the hand-written SQL disagree",
                case.name
            );
            count = Some(ours);
            break;
        }
    }
    let count = count.ok_or("a window edge moved during every check")?;
    // The library's SQL with "now" fixed when explained; one warm-up.
    let explain = crm.explain(case.filter)?;
    compiled_by_hand(conn, &explain)?;
    // Timed: one warm-up each (done above), then runs taking turns, each
    // side going first in turn, so that all see the same state of a shared
    // machine.
    let mut times: [Vec<Duration>; 3] = Default::default();
    for run in 0..runs {
        for i in 0..3 {
            let side = (run + i) % 3;
            let now = now_micros();
            let started = Instant::now();
            match side {
                0 => std::hint::black_box(crm.count_matching(case.filter)?),
                1 => std::hint::black_box(by_hand(conn, case, now)?),
                _ => std::hint::black_box(compiled_by_hand(conn, &explain)?),
            };
            times[side].push(started.elapsed());
        }
    }
    let [ours, hand, compiled] = times;
    Ok(Figures {
        count,
        ours: median(ours),
        hand: median(hand),
        compiled: median(compiled),
    })
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let _dir;
    let path = match &args.db {
        Some(p) => p.clone(),
        None => {
            _dir = tempfile::tempdir()?;
            _dir.path().join("segments.crm")
        }
    };
    if path.exists() {
        eprintln!("reusing {}", path.display());
    } else {
        eprintln!(
            "generating {} customers into {} (at 1,000,000: about 15 minutes)",
            args.customers,
            path.display()
        );
        generate(&path, args.customers)?;
    }

    let crm = Crm::open(&path)?;
    let conn = open_by_hand(&path)?;
    let customers = crm.count_customers()?;
    let interactions = crm.count_interactions()?;
    let consents: i64 = conn.query_row("SELECT count(*) FROM consents", [], |r| r.get(0))?;
    println!(
        "# crm-core segments bench: {customers} customers, {interactions} interactions, \
         {consents} consent answers; {} cores; median of {} runs after a warm-up\n",
        std::thread::available_parallelism()?.get(),
        args.runs
    );
    println!(
        "| segment | filter | matches | crm-core `count_matching` | hand-written SQL | ratio (target ≤ 1.1) | the library's SQL run directly |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut json = Vec::new();
    for case in CASES {
        let f = measure(&crm, &conn, case, args.runs)?;
        println!(
            "| {} | `{}` | {} | {} | {} | {:.2} | {} |",
            case.name,
            case.filter,
            f.count,
            show(f.ours),
            show(f.hand),
            f.ours.as_secs_f64() / f.hand.as_secs_f64(),
            show(f.compiled)
        );
        json.push(format!(
            "{{\"name\": {}, \"filter\": {}, \"count\": {}, \"crm_ms\": {:.3}, \"sql_ms\": {:.3}, \"compiled_sql_ms\": {:.3}}}",
            json_string(case.name),
            json_string(case.filter),
            f.count,
            ms(f.ours),
            ms(f.hand),
            ms(f.compiled)
        ));
    }

    println!("\n## Plans (`Crm::explain`)\n");
    for case in CASES {
        let explain = crm.explain(case.filter)?;
        println!("### {}: `{}`\n", case.name, explain.canonical);
        println!("```sql\n{}\n```\n", explain.sql);
        println!("```text\n{}\n```\n", explain.plan.join("\n"));
    }
    println!("## Plans of the hand-written SQL\n");
    for case in CASES {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", case.sql))?;
        // Bound as when run: with statistics (the bundled SQLite has STAT4),
        // a plan may depend on the values.
        bind(&mut stmt, case, now_micros())?;
        let mut rows = Vec::new();
        let mut raw = stmt.raw_query();
        while let Some(r) = raw.next()? {
            rows.push((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(3)?,
            ));
        }
        let mut plan = Vec::new();
        let mut depth: Vec<(i64, usize)> = Vec::new();
        for (id, parent, detail) in rows {
            while depth.last().is_some_and(|(p, _)| *p != parent) {
                depth.pop();
            }
            let indent = depth.last().map_or(0, |(_, d)| d + 1);
            plan.push(format!("{}{detail}", "  ".repeat(indent)));
            depth.push((id, indent));
        }
        println!("### {}\n", case.name);
        println!("```text\n{}\n```\n", plan.join("\n"));
    }

    if let Some(p) = &args.json {
        std::fs::write(
            p,
            format!(
                "{{\"customers\": {customers}, \"interactions\": {interactions}, \"results\": [\n  {}\n]}}\n",
                json.join(",\n  ")
            ),
        )?;
    }
    Ok(())
}
