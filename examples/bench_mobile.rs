//! What a phone app waits for, measured on the Rust side: opening a CRM file
//! of 100,000 customers, the first page of 50 customer cards (each with its
//! latest interaction), and the per-call time of a few small calls, the
//! baseline that `scripts/bench-mobile.sh` compares the Kotlin binding
//! against in the same run.
//!
//! ```sh
//! cargo run --release --example bench_mobile                       # 100,000 customers in target/bench-mobile/
//! cargo run --release --example bench_mobile -- --db /tmp/x.crm 20000
//! ```
//!
//! The file is generated once with `crm_core::synth::populate` (~10
//! interactions a person) and reused while it holds the expected number of
//! customers. Besides the table, prints `BENCH key=value` lines for the
//! script.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crm_core::synth::{SynthConfig, populate};
use crm_core::{Crm, CustomerId, CustomerSort, ListCustomers};

struct Args {
    customers: u64,
    db: PathBuf,
}

fn parse_args() -> Result<Args, Box<dyn std::error::Error>> {
    let mut args = Args {
        customers: 100_000,
        db: PathBuf::new(),
    };
    let mut db = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--db" => db = Some(PathBuf::from(it.next().ok_or("--db needs a value")?)),
            n if !n.starts_with('-') => args.customers = n.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    args.db = db.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        );
        target
            .join("bench-mobile")
            .join(format!("crm-{}.crm", args.customers))
    });
    Ok(args)
}

/// Reuses the file at `path` if it holds `customers` customers; otherwise
/// generates it (into a temporary name first, so an interrupted run leaves
/// no half-filled file behind).
fn ensure_file(path: &Path, customers: u64) -> Result<(), Box<dyn std::error::Error>> {
    if path.exists() {
        let crm = Crm::open(path)?;
        let count = crm.count_customers()?;
        crm.close()?;
        if count == customers {
            eprintln!("reusing {} ({count} customers)", path.display());
            return Ok(());
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    for p in [
        partial.clone(),
        partial.with_extension("partial-wal"),
        partial.with_extension("partial-shm"),
    ] {
        let _ = std::fs::remove_file(p);
    }
    eprintln!("generating {customers} customers into {}", path.display());
    let started = Instant::now();
    let crm = Crm::open(&partial)?;
    let config = SynthConfig {
        customers,
        ..SynthConfig::default()
    };
    let summary = populate(&crm, &config, None)?;
    crm.close()?;
    std::fs::rename(&partial, path)?;
    eprintln!(
        "generated {} organizations, {} people, {} interactions in {:.0} s",
        summary.organizations,
        summary.people,
        summary.interactions,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Time per call of `call`, the median over `rounds` timed loops of
/// `per_round` calls, after one untimed loop.
fn per_call(
    rounds: usize,
    per_round: usize,
    mut call: impl FnMut(usize) -> crm_core::Result<()>,
) -> crm_core::Result<Duration> {
    for i in 0..per_round {
        call(i)?;
    }
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for i in 0..per_round {
            call(i)?;
        }
        times.push(started.elapsed() / per_round as u32);
    }
    Ok(median(times))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    ensure_file(&args.db, args.customers)?;
    let path = args.db.as_path();
    let bytes = std::fs::metadata(path)?.len();

    // Open: a new handle each time (new connection, schema check, WAL
    // setup), the way an app opens the file when it starts.
    let mut opens = Vec::new();
    let mut first_pages = Vec::new();
    // A contacts list: by name (creation order would start with the
    // organizations, which the generator gives no interactions).
    let first_query = ListCustomers {
        sort: CustomerSort::Name,
        limit: 50,
        ..ListCustomers::default()
    };
    for _ in 0..20 {
        let started = Instant::now();
        let crm = Crm::open(path)?;
        opens.push(started.elapsed());
        // The first page on that new handle (opens a read connection).
        let started = Instant::now();
        let page = crm.list_customer_cards(&first_query)?;
        first_pages.push(started.elapsed());
        assert_eq!(page.items.len(), 50);
        drop(crm);
    }
    let open = median(opens);
    let first_page = median(first_pages);

    let crm = Crm::open(path)?;
    let interactions = crm.count_interactions()?;
    let ids: Vec<CustomerId> = crm
        .list_customers(&ListCustomers {
            limit: 1_000,
            ..ListCustomers::default()
        })?
        .items
        .into_iter()
        .map(|c| c.id)
        .collect();
    let with_latest = crm
        .list_customer_cards(&first_query)?
        .items
        .iter()
        .filter(|c| c.latest_interaction.is_some())
        .count();

    let cards = per_call(5, 200, |_| crm.list_customer_cards(&first_query).map(drop))?;
    let get = per_call(5, 5_000, |i| crm.get_customer(ids[i % ids.len()]).map(drop))?;
    let count = per_call(5, 200, |_| crm.count_customers().map(drop))?;

    println!(
        "# bench_mobile: {} customers, {interactions} interactions, {:.0} MB file, {} cores",
        args.customers,
        bytes as f64 / 1e6,
        std::thread::available_parallelism()?.get()
    );
    println!("| what | Rust (crm-core) | target |");
    println!("|---|---|---|");
    println!(
        "| open the file (new handle; median of 20) | {:.2} ms | < 20 ms |",
        ms(open)
    );
    println!(
        "| first page of 50 cards by name on that new handle (median of 20; {with_latest} of 50 with a latest interaction) | {:.2} ms | < 5 ms |",
        ms(first_page)
    );
    println!(
        "| the same page again, warm (median of 5 × 200) | {:.2} ms | — |",
        ms(cards)
    );
    println!(
        "| get_customer by id (median of 5 × 5,000, 1,000 ids) | {:.1} µs | — |",
        us(get)
    );
    println!(
        "| count_customers (median of 5 × 200) | {:.1} µs | — |",
        us(count)
    );
    println!("BENCH rust.open_ns={}", open.as_nanos());
    println!("BENCH rust.first_page_ns={}", first_page.as_nanos());
    println!("BENCH rust.cards_ns={}", cards.as_nanos());
    println!("BENCH rust.get_customer_ns={}", get.as_nanos());
    println!("BENCH rust.count_customers_ns={}", count.as_nanos());
    Ok(())
}
