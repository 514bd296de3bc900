//! Customer analytics at scale: a seeded purchase log of 1,000,000 customers
//! (about 10,000,000 purchases) from known BG/NBD and Gamma-Gamma
//! parameters, then each step of the analytics layer, timed: the summary,
//! the BG/NBD fit, predictions for every customer, the Gamma-Gamma fit and
//! expected order values, CLV, RFM scores and segments, and retention
//! cohorts.
//!
//! ```sh
//! cargo run --release -p crm-core --example bench_analytics                      # 1,000,000 customers
//! cargo run --release -p crm-core --example bench_analytics -- 100000            # fewer
//! cargo run --release -p crm-core --example bench_analytics -- --runs 3          # median of 3 runs per step
//! cargo run --release -p crm-core --example bench_analytics -- --transactions /tmp/tx.csv --json /tmp/bench.json
//! ```
//!
//! `--store PATH` then does the same from a CRM file: it imports the log
//! into PATH unless PATH already holds it (customers by external id), and
//! times `Crm::compute_scores` (summary streamed from SQLite, both fits,
//! predictions, CLV, RFM, storing 1 row per customer) against the in-memory
//! pipeline above, with the process's peak memory during the run
//! (`VmHWM`, reset first) against the size of the log in memory.
//!
//! `--transactions PATH` also writes the generated log as CSV
//! (`customer,date,amount_minor`, dates as `YYYY-MM-DD HH:MM:SS` UTC) so that
//! another implementation (e.g. `lifetimes`) can be timed on exactly the
//! same data; `--json PATH` writes the timings (seconds) and the fitted
//! parameters. Times are wall-clock on all available cores (the loops over
//! customers use `std::thread::scope`). The "end to end" line sums the
//! summary, the BG/NBD fit, the predictions (conditional expected purchases
//! over 30 days and P(alive)), the Gamma-Gamma fit with expected values, and
//! RFM: the steps the issue compares. No timing is asserted.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use crm_core::analytics::{
    BgNbd, ClvOptions, GammaGamma, SummaryOptions, TimeUnit, Transaction, cohorts, rfm, simulate,
    summary,
};

struct Args {
    customers: u64,
    runs: usize,
    transactions: Option<String>,
    json: Option<String>,
    store: Option<String>,
}

fn args() -> Args {
    let mut out = Args {
        customers: 1_000_000,
        runs: 1,
        transactions: None,
        json: None,
        store: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => out.runs = it.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--transactions" => out.transactions = it.next(),
            "--json" => out.json = it.next(),
            "--store" => out.store = it.next(),
            "--" => {}
            n => out.customers = n.replace('_', "").parse().expect("a customer count"),
        }
    }
    out
}

/// Runs `f` `runs` times; returns the median time and the last result.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        last = Some(f());
        times.push(start.elapsed());
    }
    times.sort();
    (times[times.len() / 2], last.unwrap())
}

fn main() {
    let args = args();
    let end = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    // Daily rates: on average a purchase every ~4 weeks while alive, ~9
    // repeat purchases before dropping out; first purchases spread over
    // three years: about 10 purchases per customer.
    let truth = BgNbd::new(0.75, 20.0, 0.6, 5.0).unwrap();
    let spend = GammaGamma::new(6.0, 4.0, 1500.0).unwrap();
    let generation = Instant::now();
    let log: Vec<Transaction> = simulate::purchases(
        &truth,
        &spend,
        &simulate::PurchaseSimulation {
            customers: args.customers,
            first_purchase_from: end - chrono::Duration::days(3 * 365),
            observation_end: end,
            unit: TimeUnit::Days,
            seed: 20_240_601,
        },
    )
    .unwrap();
    println!(
        "generated {} customers, {} purchases in {:.2?} (not part of the timings)",
        args.customers,
        log.len(),
        generation.elapsed()
    );
    if let Some(path) = &args.transactions {
        write_csv(path, &log);
        println!("wrote {path}");
    }
    let mut shuffled = log.clone();
    fastrand::Rng::with_seed(1).shuffle(&mut shuffled);

    let runs = args.runs;
    let options = SummaryOptions::new(TimeUnit::Days, end);
    let (t_summary, s) = timed(runs, || summary(&log, &options).unwrap());
    let (t_summary_shuffled, s2) = timed(runs, || summary(&shuffled, &options).unwrap());
    assert_eq!(s, s2);
    let repeaters = s.frequency.iter().filter(|&&f| f > 0.0).count();
    println!("customers with repeat purchases: {repeaters}");

    let (t_fit, model) = timed(runs, || BgNbd::fit(&s.frequency, &s.recency, &s.t).unwrap());
    let se = model.standard_errors.unwrap();
    println!(
        "BG/NBD fit: r = {:.4} ± {:.4}, alpha = {:.3} ± {:.3}, a = {:.4} ± {:.4}, b = {:.4} ± {:.4} \
         (truth 0.75, 20, 0.6, 5), LL = {:.1}, {} iterations",
        model.r,
        se[0],
        model.alpha,
        se[1],
        model.a,
        se[2],
        model.b,
        se[3],
        model.log_likelihood.unwrap(),
        model.iterations
    );

    let (t_predict, (expected, alive)) = timed(runs, || {
        (
            model
                .expected_purchases(30.0, &s.frequency, &s.recency, &s.t)
                .unwrap(),
            model.p_alive(&s.frequency, &s.recency, &s.t).unwrap(),
        )
    });
    println!(
        "predicted: {:.0} purchases in the next 30 days, {:.1} % of customers alive",
        expected.iter().sum::<f64>(),
        100.0 * alive.iter().sum::<f64>() / alive.len() as f64
    );

    let (t_gg, (gg, values)) = timed(runs, || {
        let gg = GammaGamma::fit(&s.frequency, &s.monetary_value).unwrap();
        let values = gg
            .expected_average_value(&s.frequency, &s.monetary_value)
            .unwrap();
        (gg, values)
    });
    println!(
        "Gamma-Gamma fit: p = {:.3}, q = {:.3}, gamma = {:.1} (truth 6, 4, 1500); mean expected order {:.0}",
        gg.p,
        gg.q,
        gg.gamma,
        values.iter().sum::<f64>() / values.len() as f64
    );

    let (t_rfm, segments) = timed(runs, || s.rfm().unwrap().segments());
    let champions = segments
        .iter()
        .filter(|&&g| g == rfm::Segment::Champions)
        .count();
    println!("RFM: {champions} champions");

    let (t_clv, clv) = timed(runs, || {
        gg.clv(
            &model,
            &s.frequency,
            &s.recency,
            &s.t,
            &s.monetary_value,
            &ClvOptions::new(TimeUnit::Days),
        )
        .unwrap()
    });
    println!(
        "CLV (12 months, 1 %/month): total {:.0} minor units",
        clv.iter().sum::<f64>()
    );

    let (t_cohorts, retention) = timed(runs, || cohorts::retention(&log, end).unwrap());
    println!("cohorts: {} months", retention.cohorts.len());

    let end_to_end = t_summary + t_fit + t_predict + t_gg + t_rfm;
    let rows = [
        ("summary (input sorted by customer)", t_summary),
        ("summary (shuffled input)", t_summary_shuffled),
        ("BG/NBD fit", t_fit),
        ("predictions: E[Y(30)] and P(alive)", t_predict),
        ("Gamma-Gamma fit + expected values", t_gg),
        ("RFM scores + segments", t_rfm),
        ("CLV, 12 months", t_clv),
        ("retention cohorts", t_cohorts),
        ("end to end (summary … RFM)", end_to_end),
    ];
    println!();
    println!("{:<40} {:>10}", "step", "seconds");
    for (name, t) in rows {
        println!("{name:<40} {:>10.3}", t.as_secs_f64());
    }
    if let Some(path) = &args.json {
        let timings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, t)| (name.to_string(), serde_json::json!(t.as_secs_f64())))
            .collect();
        let out = serde_json::json!({
            "customers": args.customers,
            "purchases": log.len(),
            "threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "seconds": timings,
            "bgnbd": { "r": model.r, "alpha": model.alpha, "a": model.a, "b": model.b,
                       "log_likelihood": model.log_likelihood },
            "gamma_gamma": { "p": gg.p, "q": gg.q, "gamma": gg.gamma },
        });
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
        println!("wrote {path}");
    }
    if let Some(path) = &args.store {
        let pure = t_summary + t_fit + t_predict + t_gg + t_clv + t_rfm;
        let log_bytes = log.len() * std::mem::size_of::<Transaction>();
        drop((
            shuffled, s, expected, alive, values, segments, clv, retention,
        ));
        from_store(path, log, end, pure, log_bytes);
    }
}

/// The process's peak resident memory since the last reset, in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn from_store(
    path: &str,
    log: Vec<Transaction>,
    end: DateTime<Utc>,
    pure: Duration,
    log_bytes: usize,
) {
    use crm_core::import::ImportOptions;
    use crm_core::{Crm, CustomerRef, InteractionKind, NewCustomer, NewInteraction, ScoreOptions};

    let crm = Crm::open(path).unwrap();
    if crm.count_interactions().unwrap() != log.len() as u64 {
        assert_eq!(crm.count_customers().unwrap(), 0, "{path} holds other data");
        let started = Instant::now();
        let customers = log.iter().map(|t| t.customer).max().map_or(0, |k| k + 1);
        crm.import_customers(
            (0..customers).map(|k| NewCustomer {
                external_id: Some(k.to_string()),
                name: Some(format!("Customer {k}")),
                ..Default::default()
            }),
            &ImportOptions::default(),
            None,
        )
        .unwrap();
        crm.import_interactions(
            log.iter().map(|t| NewInteraction {
                occurred_at: Some(t.at),
                amount_minor: Some(t.amount_minor),
                currency: Some("EUR".into()),
                ..NewInteraction::new(
                    CustomerRef::ExternalId(t.customer.to_string()),
                    InteractionKind::Purchase,
                )
            }),
            &ImportOptions::default(),
            None,
        )
        .unwrap();
        println!(
            "imported into {path} in {:.1?} (not timed below)",
            started.elapsed()
        );
    }
    drop(log);
    // Reset the peak so that it measures the run alone (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = peak_mib();
    let options = ScoreOptions {
        observation_end: Some(end),
        horizon_days: 30,
        ..ScoreOptions::default()
    };
    let started = Instant::now();
    let run = crm.compute_scores(&options).unwrap();
    let t_store = started.elapsed();
    let peak = peak_mib();
    let started = Instant::now();
    let low = crm.count_matching("p_alive < 0.3").unwrap();
    let t_filter = started.elapsed();
    let started = Instant::now();
    let retention = crm
        .cohort_retention(
            &crm_core::CohortQuery {
                observation_end: Some(end),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    let t_cohorts = started.elapsed();
    println!();
    println!(
        "from the store: {} customers scored from {} purchases; r = {:.4}, alpha = {:.3}",
        run.customers, run.purchases, run.bgnbd.r, run.bgnbd.alpha
    );
    println!("{:<52} {:>10}", "step", "seconds");
    println!(
        "{:<52} {:>10.3}",
        "compute_scores (read, fit, predict, CLV, RFM, store)",
        t_store.as_secs_f64()
    );
    println!(
        "{:<52} {:>10.3}",
        "same models on in-memory arrays (baseline)",
        pure.as_secs_f64()
    );
    println!(
        "{:<52} {:>10.2}",
        "ratio store / in-memory",
        t_store.as_secs_f64() / pure.as_secs_f64()
    );
    println!(
        "{:<52} {:>10.3}",
        "count_matching(\"p_alive < 0.3\")",
        t_filter.as_secs_f64()
    );
    println!(
        "{:<52} {:>10.3}",
        "cohort_retention (streamed)",
        t_cohorts.as_secs_f64()
    );
    println!(
        "peak memory during compute_scores: {peak:.0} MiB (before: {before:.0} MiB); \
         the log in memory would take {:.0} MiB; {low} customers with p_alive < 0.3; {} cohorts",
        log_bytes as f64 / 1_048_576.0,
        retention.cohorts.len()
    );
}

fn write_csv(path: &str, log: &[Transaction]) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = std::io::BufWriter::new(file);
    writeln!(w, "customer,date,amount_minor").unwrap();
    for t in log {
        writeln!(
            w,
            "{},{},{}",
            t.customer,
            t.at.format("%Y-%m-%d %H:%M:%S"),
            t.amount_minor
        )
        .unwrap();
    }
}
