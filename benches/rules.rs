//! What 20 active rules add to logging one interaction, next to the same
//! call with no rules (and with the 20 rules all reacting to every
//! interaction, the worst case), on two files with the same customers and histories,
//! in one criterion group so the report shows both side by side. The
//! figures at scale (100,000 interactions, the sweep over 1,000,000
//! customers) are `examples/bench_rules.rs`.
//!
//! ```sh
//! cargo bench -p crm-core --bench rules
//! ```

use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use crm_core::import::ImportOptions;
use crm_core::rules::{Team, TeamMember};
use crm_core::{
    AttributeType, Crm, CustomerRef, InteractionKind, NewCustomer, NewInteraction, NewPipeline,
    NewSegment, PipelineStage,
};

#[path = "support/rule_set.rs"]
mod rule_set;

const CUSTOMERS: usize = 2_000;

fn interaction(i: usize) -> NewInteraction {
    let kind = match i % 10 {
        0..=3 => InteractionKind::Purchase,
        4..=6 => InteractionKind::Email,
        7..=8 => InteractionKind::WebVisit,
        _ => InteractionKind::Call,
    };
    let customer = CustomerRef::ExternalId(format!("c{}", (i * 7_919) % CUSTOMERS));
    let mut row = NewInteraction::new(customer, kind.clone());
    if kind == InteractionKind::Purchase {
        row.amount_minor = Some(1_000 + (i as i64 * 37) % 20_000);
        row.currency = Some("EUR".into());
    }
    row.occurred_at = Some(Utc::now() - Duration::minutes((i % 50_000) as i64));
    row
}

/// A file with the customers, their histories and `rules` (added before
/// the histories, so the rules have acted on them).
fn store(dir: &std::path::Path, name: &str, rules: Vec<crm_core::rules::NewRule>) -> Crm {
    let crm = Crm::open(dir.join(name)).expect("open");
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
    crm.define_attribute("plan", AttributeType::Text)
        .expect("attribute");
    for s in ["vip list", "win-back"] {
        crm.create_segment(&NewSegment::static_list(s))
            .expect("segment");
    }
    for r in rules {
        crm.create_rule(&r).expect("rule");
    }
    let rows = (0..CUSTOMERS).map(|i| NewCustomer {
        name: Some(format!("Customer {i}")),
        external_id: Some(format!("c{i}")),
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
    for i in 0..CUSTOMERS * 10 {
        crm.log_interaction(interaction(i)).expect("history");
    }
    crm
}

fn log_interaction(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = store(dir.path(), "plain.crm", Vec::new());
    let ruled = store(dir.path(), "ruled.crm", rule_set::rules());
    let worst = store(dir.path(), "worst.crm", rule_set::on_every_interaction());
    let mut group = c.benchmark_group("log an interaction");
    let mut k = CUSTOMERS * 10;
    group.bench_function("no rules", |b| {
        b.iter(|| {
            k += 1;
            plain.log_interaction(interaction(k)).expect("log")
        })
    });
    let mut k = CUSTOMERS * 10;
    group.bench_function("20 rules", |b| {
        b.iter(|| {
            k += 1;
            ruled.log_interaction(interaction(k)).expect("log")
        })
    });
    let mut k = CUSTOMERS * 10;
    group.bench_function("20 rules, all on every interaction", |b| {
        b.iter(|| {
            k += 1;
            worst.log_interaction(interaction(k)).expect("log")
        })
    });
    group.finish();
}

criterion_group!(benches, log_interaction);
criterion_main!(benches);
