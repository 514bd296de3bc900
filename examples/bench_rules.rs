//! What rules cost: logging interactions one call at a time with 20 active
//! rules against the same with none, in the same run on the same kind of
//! file; and the scheduled sweep over a large population.
//!
//! ```sh
//! cargo run --release --example bench_rules                       # 100,000 interactions; sweep over 1,000,000 customers
//! cargo run --release --example bench_rules -- --interactions 20000 --customers 100000
//! cargo run --release --example bench_rules -- --json /tmp/rules.json
//! cargo run --release --example bench_rules -- --sweep-only
//! ```
//!
//! Logging: two fresh files with the same 10,000 customers (a pipeline, a
//! team, two segments); one gets the 20 rules of [`rules`]. The same
//! 100,000 interactions (40 % purchases, 30 % emails, 20 % web visits, 10 %
//! calls, in random customer order) are logged through
//! `Crm::log_interaction`, one transaction each, into both, alternating
//! blocks of 1,000 so that both see the same machine state. The ratio is
//! with rules / without. A second figure puts all 20 rules on every
//! interaction (the worst case: every one triggered, its condition
//! evaluated).
//!
//! Sweep: a file of N customers, each with one purchase at a random time in
//! the past 365 days (written by bulk import), and a scheduled rule "no
//! purchase for 90 days → stage churned, tag lapsed". The first sweep
//! (catching up with ~75 % of the customers) and the next day's sweep
//! (acting on those who crossed the line in one day) are timed; the
//! baseline is the rule's condition counted by hand-written SQL on the same
//! file, in the same run.
//!
//! No timing is asserted; ratios are printed.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{Duration as Days, Utc};
use crm_core::import::ImportOptions;
use crm_core::rules::{Action, NewRule, Team, TeamMember, Trigger};

#[path = "../benches/support/rule_set.rs"]
mod rule_set;
use crm_core::{
    Crm, CustomerId, CustomerRef, InteractionKind, NewCustomer, NewInteraction, NewPipeline,
    NewSegment, PipelineStage,
};
use rule_set::{on_every_interaction, rules};

struct Args {
    /// Only the sweep.
    sweep_only: bool,
    interactions: usize,
    customers: usize,
    json: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        sweep_only: false,
        interactions: 100_000,
        customers: 1_000_000,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--sweep-only" {
            a.sweep_only = true;
            continue;
        }
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--interactions" => a.interactions = value.parse().expect("a number"),
            "--customers" => a.customers = value.parse().expect("a number"),
            "--json" => a.json = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// A small deterministic generator (xorshift), so both files get the same
/// interactions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn set_up(path: &Path, customers: usize) -> Crm {
    let crm = Crm::open(path).expect("open");
    crm.create_pipeline(&NewPipeline {
        name: "sales".into(),
        currency: "EUR".into(),
        stages: vec![
            PipelineStage::open("lead", 10),
            PipelineStage::open("proposal", 50),
            PipelineStage::won("won"),
        ],
    })
    .expect("pipeline");
    crm.set_team(&Team {
        name: "sales".into(),
        members: ["ana", "bo", "cy", "dee"]
            .iter()
            .map(|m| TeamMember::new(*m))
            .collect(),
    })
    .expect("team");
    crm.define_attribute("plan", crm_core::AttributeType::Text)
        .expect("attribute");
    crm.create_segment(&NewSegment::static_list("vip list"))
        .expect("segment");
    crm.create_segment(&NewSegment::static_list("win-back"))
        .expect("segment");
    let rows = (0..customers).map(|i| NewCustomer {
        name: Some(format!("Customer {i}")),
        external_id: Some(format!("c{i}")),
        emails: vec![format!("c{i}@example.com")],
        country: Some(["SI", "AT", "DE", "SE"][i % 4].into()),
        tags: if i % 10 == 0 {
            vec!["vip".into()]
        } else {
            vec![]
        },
        ..Default::default()
    });
    crm.import_customers(rows, &ImportOptions::default(), None)
        .expect("customers");
    crm
}

trait AllIds {
    fn for_each_segment_member_all(&self, ids: &mut Vec<CustomerId>);
}

impl AllIds for Crm {
    fn for_each_segment_member_all(&self, ids: &mut Vec<CustomerId>) {
        let mut cursor = None;
        loop {
            let page = self
                .list_customers(&crm_core::ListCustomers {
                    limit: 10_000,
                    cursor,
                    ..Default::default()
                })
                .expect("list");
            ids.extend(page.items.iter().map(|c| c.id));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
}

/// Interactions of random customers, named by external id so that the same
/// rows fit every file.
fn interactions(customers: usize, n: usize, seed: u64) -> Vec<NewInteraction> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
    (0..n)
        .map(|_| {
            let customer = CustomerRef::ExternalId(format!("c{}", rng.below(customers as u64)));
            let roll = rng.below(10);
            let kind = match roll {
                0..=3 => InteractionKind::Purchase,
                4..=6 => InteractionKind::Email,
                7..=8 => InteractionKind::WebVisit,
                _ => InteractionKind::Call,
            };
            let mut i = NewInteraction::new(customer, kind.clone());
            if kind == InteractionKind::Purchase {
                i.amount_minor = Some(1_000 + rng.below(20_000) as i64);
                i.currency = Some("EUR".into());
            }
            i.occurred_at = Some(Utc::now() - Days::seconds(rng.below(86_400 * 60) as i64));
            i
        })
        .collect()
}

fn last_seq(crm: &Crm) -> i64 {
    let mut seq = 0;
    loop {
        let page = crm.changes_since(seq, 10_000).expect("changes");
        match page.last() {
            Some(c) => seq = c.seq,
            None => return seq,
        }
    }
}

/// Change-log entries written by rules after `seq`.
fn changes_by_rules(crm: &Crm, mut seq: i64) -> usize {
    let mut n = 0;
    loop {
        let page = crm.changes_since(seq, 10_000).expect("changes");
        let Some(last) = page.last() else { return n };
        seq = last.seq;
        n += page.iter().filter(|c| c.rule.is_some()).count();
    }
}

/// Logs the same interactions into each CRM, alternating blocks of 1,000;
/// returns the time each took.
fn log_alternating(crms: &[&Crm], rows: &[NewInteraction]) -> Vec<Duration> {
    let mut spent = vec![Duration::ZERO; crms.len()];
    for block in rows.chunks(1_000) {
        for (k, crm) in crms.iter().enumerate() {
            let t = Instant::now();
            for row in block {
                crm.log_interaction(row.clone()).expect("log");
            }
            spent[k] += t.elapsed();
        }
    }
    spent
}

fn sweep_bench(dir: &Path, customers: usize) -> (Duration, u64, Duration, u64, Duration) {
    let path = dir.join("sweep.crm");
    let crm = Crm::open(&path).expect("open");
    let rows = (0..customers).map(|i| NewCustomer {
        name: Some(format!("Customer {i}")),
        external_id: Some(format!("c{i}")),
        ..Default::default()
    });
    let t = Instant::now();
    crm.import_customers(rows, &ImportOptions::default(), None)
        .expect("customers");
    let mut ids = Vec::with_capacity(customers);
    crm.for_each_segment_member_all(&mut ids);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let now = Utc::now();
    let purchases = ids.iter().map(|id| NewInteraction {
        amount_minor: Some(1_000),
        currency: Some("EUR".into()),
        occurred_at: Some(now - Days::seconds(rng.below(86_400 * 365) as i64)),
        ..NewInteraction::new(*id, InteractionKind::Purchase)
    });
    crm.import_interactions(purchases, &ImportOptions::default(), None)
        .expect("purchases");
    eprintln!("sweep file: {customers} customers in {:.1?}", t.elapsed());
    crm.create_rule(&NewRule {
        condition: Some("days_since(last purchase) > 90".into()),
        actions: vec![
            Action::SetStage {
                stage: "churned".into(),
            },
            Action::AddTag {
                tag: "lapsed".into(),
            },
        ],
        ..NewRule::new("lapsed", Trigger::Schedule)
    })
    .expect("rule");
    let yesterday = now - Days::days(1);
    let t = Instant::now();
    let first = crm.run_sweep(Some(yesterday)).expect("sweep");
    let first_time = t.elapsed();
    let t = Instant::now();
    let daily = crm.run_sweep(Some(now)).expect("sweep");
    let daily_time = t.elapsed();
    // Baseline: the rule's question counted by hand-written SQL.
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let t = Instant::now();
    let n: i64 = raw
        .query_row(
            "SELECT count(*) FROM interaction_stats WHERE kind = 'purchase' AND currency = 'EUR' \
             AND last_at <= ?",
            // More than 90 whole days ago.
            [(now - Days::days(91)).timestamp_micros()],
            |r| r.get(0),
        )
        .expect("count");
    let sql_time = t.elapsed();
    assert_eq!(n as u64, daily.rules[0].matching, "the counts agree");
    (
        first_time,
        first.rules[0].acted_on,
        daily_time,
        daily.rules[0].acted_on,
        sql_time,
    )
}

fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    if a.sweep_only {
        let (first, first_n, daily, daily_n, sql) = sweep_bench(dir.path(), a.customers);
        println!(
            "sweep over {} customers: first {:.2} s (acted on {first_n}); next day {:.2} s (acted on {daily_n}); \
             hand-written count {:.2} s",
            a.customers,
            first.as_secs_f64(),
            daily.as_secs_f64(),
            sql.as_secs_f64()
        );
        return;
    }
    let plain = set_up(&dir.path().join("plain.crm"), 10_000);
    let ruled = set_up(&dir.path().join("ruled.crm"), 10_000);
    let worst = set_up(&dir.path().join("worst.crm"), 10_000);
    for r in rules() {
        ruled.create_rule(&r).expect("rule");
    }
    for r in on_every_interaction() {
        worst.create_rule(&r).expect("rule");
    }
    // The customers' histories first (not timed): the rules have acted on
    // them already, as they would have in a store in use; the timed rows
    // then mostly meet customers whom the rules leave as they are.
    let history = interactions(10_000, a.interactions, 1);
    let t = Instant::now();
    let cold = log_alternating(&[&plain, &ruled], &history);
    eprintln!("histories logged in {:.1?}", t.elapsed());
    for row in &history {
        worst.log_interaction(row.clone()).expect("log");
    }
    let rows = interactions(10_000, a.interactions, 2);
    let seq_before = last_seq(&ruled);
    let spent = log_alternating(&[&plain, &ruled, &worst], &rows);
    let by_rules = changes_by_rules(&ruled, seq_before);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / a.interactions as f64;
    println!(
        "log {} interactions: no rules {:.2} s ({:.1} µs each); 20 rules {:.2} s ({:.1} µs); ratio {:.2}×",
        a.interactions,
        spent[0].as_secs_f64(),
        per(spent[0]),
        spent[1].as_secs_f64(),
        per(spent[1]),
        spent[1].as_secs_f64() / spent[0].as_secs_f64()
    );
    println!("  changes the rules made meanwhile: {by_rules}");
    println!(
        "  the same count into empty histories first (rules acting on most customers): no rules {:.2} s; 20 rules {:.2} s; ratio {:.2}×",
        cold[0].as_secs_f64(),
        cold[1].as_secs_f64(),
        cold[1].as_secs_f64() / cold[0].as_secs_f64()
    );
    println!(
        "  worst case, all 20 rules on every interaction: {:.2} s ({:.1} µs); ratio {:.2}×",
        spent[2].as_secs_f64(),
        per(spent[2]),
        spent[2].as_secs_f64() / spent[0].as_secs_f64()
    );
    let (first, first_n, daily, daily_n, sql) = sweep_bench(dir.path(), a.customers);
    println!(
        "sweep over {} customers: first {:.2} s (acted on {first_n}); next day {:.2} s (acted on {daily_n}); \
         hand-written count {:.2} s, ratio {:.1}×",
        a.customers,
        first.as_secs_f64(),
        daily.as_secs_f64(),
        sql.as_secs_f64(),
        daily.as_secs_f64() / sql.as_secs_f64()
    );
    if let Some(path) = a.json {
        let json = serde_json::json!({
            "interactions": a.interactions,
            "log_no_rules_s": spent[0].as_secs_f64(),
            "log_20_rules_s": spent[1].as_secs_f64(),
            "log_worst_s": spent[2].as_secs_f64(),
            "ratio": spent[1].as_secs_f64() / spent[0].as_secs_f64(),
            "ratio_worst": spent[2].as_secs_f64() / spent[0].as_secs_f64(),
            "ratio_cold": cold[1].as_secs_f64() / cold[0].as_secs_f64(),
            "changes_by_rules": by_rules,
            "customers": a.customers,
            "sweep_first_s": first.as_secs_f64(),
            "sweep_first_acted": first_n,
            "sweep_daily_s": daily.as_secs_f64(),
            "sweep_daily_acted": daily_n,
            "sweep_sql_s": sql.as_secs_f64(),
        });
        std::fs::write(path, json.to_string()).expect("write json");
    }
}
