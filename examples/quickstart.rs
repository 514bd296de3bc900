//! The main job: create a CRM file, fill it with a realistic synthetic data
//! set, and show what the library does.
//!
//! ```sh
//! cargo run --release --example quickstart            # 10,000 customers
//! cargo run --release --example quickstart -- 100000  # more
//! ```

use std::time::Instant;

use crm_core::export::ExportFormat;
use crm_core::rules::{Action, Assignment, EffectsQuery, NewRule, Team, TeamMember, Trigger};
use crm_core::synth::{SynthConfig, populate};
use crm_core::{
    ConsentStatus, Crm, CustomerPatch, ForecastQuery, InteractionKind, MembersQuery, NewConsent,
    NewDeal, NewInteraction, NewPipeline, NewSegment, OpenOptions, PipelineStage, Priority,
    TimelineQuery,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let customers: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| "the argument is the number of customers, e.g. 100000")?,
        None => 10_000,
    };
    let dir = std::env::temp_dir().join("crm-quickstart");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quickstart.crm");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let crm = Crm::open_with(
        Some(&path),
        OpenOptions {
            default_region: Some("SI".into()),
            ..OpenOptions::default()
        },
    )?;
    println!("Opened {}", path.display());

    let started = Instant::now();
    // History up to now, so that "within 90d" finds recent purchases.
    let config = SynthConfig {
        customers,
        end: chrono::Utc::now(),
        ..SynthConfig::default()
    };
    let summary = populate(&crm, &config, None)?;
    println!(
        "Generated {} organizations, {} people and {} interactions in {:.1} s",
        summary.organizations,
        summary.people,
        summary.interactions,
        started.elapsed().as_secs_f64()
    );

    // Search: names, emails, phones, organizations and interaction subjects.
    println!("\nSearch for \"novak\":");
    for hit in crm.search("novak", 3)? {
        println!(
            "  {:<28} {:<40} score {:.2}",
            hit.customer.name,
            hit.customer.emails.join(", "),
            hit.score
        );
    }

    // One customer's story.
    let ana = crm
        .find_customer_by_external_id("C00000001")?
        .ok_or("the generator always makes customer C00000001")?;
    println!(
        "\n{} ({}) — stage {}, tags [{}], country {}",
        ana.name,
        ana.emails.join(", "),
        ana.lifecycle_stage,
        ana.tags.join(", "),
        ana.country.as_deref().unwrap_or("?")
    );
    crm.log_interaction(NewInteraction {
        subject: Some("Asked about the loyalty programme".into()),
        channel: Some("phone".into()),
        ..NewInteraction::new(ana.id, InteractionKind::Call)
    })?;
    let page = crm.timeline(
        ana.id,
        &TimelineQuery {
            limit: 5,
            ..TimelineQuery::default()
        },
    )?;
    println!("Latest interactions:");
    for i in &page.items {
        let amount = match (i.amount_minor, &i.currency) {
            (Some(m), Some(c)) => format!("{} {c}", crm_core::normalize::minor_to_amount(m, c)?),
            _ => String::new(),
        };
        println!(
            "  {}  {:<16} {:<36} {amount}",
            i.occurred_at.format("%Y-%m-%d"),
            i.kind,
            i.subject.as_deref().or(i.product.as_deref()).unwrap_or("")
        );
    }

    // Consent: nothing targeted without it.
    println!(
        "\nConsent to email marketing before: {}",
        crm.has_consent(ana.id, "email_marketing", Some("email"))?
    );
    crm.record_consent(
        ana.id,
        &NewConsent {
            channel: Some("email".into()),
            source: Some("preference-centre".into()),
            proof: Some("Ticked 'Send me offers' on the preference page".into()),
            ..NewConsent::new("email_marketing", ConsentStatus::Granted)
        },
    )?;
    println!(
        "Consent to email marketing after:  {}",
        crm.has_consent(ana.id, "email_marketing", Some("email"))?
    );

    // A change, and the change log that records it.
    let crm_as_maja = crm.with_actor("maja", Some("quickstart"));
    let mut tags = ana.tags.clone();
    tags.push("loyalty-programme".into());
    crm_as_maja.update_customer(
        ana.id,
        &CustomerPatch {
            tags: Some(tags),
            owner: Some(Some("maja".into())),
            ..CustomerPatch::default()
        },
    )?;
    let last = crm
        .customer_history(ana.id)?
        .pop()
        .ok_or("an update is always logged")?;
    println!(
        "Change log: {} {} {:?} by {}",
        last.entity.as_str(),
        last.op.as_str(),
        last.fields,
        last.actor.as_deref().unwrap_or("?")
    );

    // Bad input gets a typed error naming the field, and changes nothing.
    let err = crm
        .update_customer(
            ana.id,
            &CustomerPatch {
                emails: Some(vec!["not an email".into()]),
                ..CustomerPatch::default()
            },
        )
        .unwrap_err();
    println!("Rejected: {err}");

    // Segments: the filter language, checked against the schema and
    // compiled to one SQL query.
    println!();
    for filter in [
        r#""vip" in tags and attr.plan = "pro""#,
        r#"count(purchases within 90d) >= 3"#,
        r#"sum(purchases.amount within 365d) > 500 and country in ("SI", "HR")"#,
    ] {
        let started = Instant::now();
        let n = crm.count_matching(filter)?;
        println!(
            "{n:>7} customers match {filter}  ({:.1} ms)",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    crm.create_segment(&NewSegment {
        description: Some("Loyal buyers who have gone quiet".into()),
        ..NewSegment::dynamic(
            "win-back",
            r#"count(purchases) >= 3 and days_since(last purchase) > 120 and not "do-not-call" in tags"#,
        )
    })?;
    let report = crm.materialize_segment("win-back")?;
    println!(
        "Segment win-back: {} members, {} entered since the last evaluation",
        report.members, report.entered
    );
    for c in crm
        .segment_members(
            "win-back",
            &MembersQuery {
                limit: 3,
                cursor: None,
            },
        )?
        .items
    {
        println!("  {:<28} {}", c.name, c.emails.join(", "));
    }
    let err = crm.count_matching(r#"stge = "customer""#).unwrap_err();
    println!("Rejected: {err}");

    // Rules: trigger -> condition -> actions, in the transaction of the
    // change; the sweep runs the scheduled ones (a host would run it daily).
    println!();
    crm.set_team(&Team {
        name: "account managers".into(),
        members: ["maja", "luka", "ana"]
            .iter()
            .map(|m| TeamMember::new(*m))
            .collect(),
    })?;
    crm.create_rule(&NewRule {
        condition: Some(r#"count(purchases) >= 3 and days_since(last purchase) > 120"#.into()),
        actions: vec![
            Action::AddTag {
                tag: "win-back".into(),
            },
            Action::CreateTask {
                title: "Call {name} to win them back".into(),
                due_in_days: Some(7),
                priority: Priority::High,
                assign: Some(Assignment::LeastOpenWork {
                    team: "account managers".into(),
                }),
            },
        ],
        ..NewRule::new("win back loyal buyers", Trigger::Schedule)
    })?;
    let started = Instant::now();
    let sweep = crm.run_sweep(None)?;
    println!(
        "Sweep: rule '{}' matched {} customers and acted on {} in {:.2} s",
        sweep.rules[0].rule,
        sweep.rules[0].matching,
        sweep.rules[0].acted_on,
        started.elapsed().as_secs_f64()
    );
    if let Some(effect) = crm
        .rule_effects(&EffectsQuery {
            limit: Some(1),
            ..EffectsQuery::default()
        })?
        .first()
    {
        println!("  {}", effect.detail);
    }
    println!(
        "  {} tasks overdue by next month",
        crm.overdue_tasks(
            Some(chrono::Utc::now() + chrono::Duration::days(30)),
            None,
            10_000,
            None
        )?
        .items
        .len()
    );

    // A sales pipeline and its weighted forecast.
    crm.create_pipeline(&NewPipeline {
        name: "sales".into(),
        currency: "EUR".into(),
        stages: vec![
            PipelineStage::open("qualified", 20),
            PipelineStage::open("proposal", 60),
            PipelineStage::won("won"),
            PipelineStage::lost("lost"),
        ],
    })?;
    for (title, value, stage) in [
        ("Fleet renewal", 480_000, "proposal"),
        ("Pilot", 90_000, "qualified"),
    ] {
        let deal = crm.create_deal(&NewDeal {
            pipeline: "sales".into(),
            title: title.into(),
            value_minor: value,
            customer_id: Some(ana.id),
            ..NewDeal::default()
        })?;
        crm.move_deal(deal.id, stage, None)?;
    }
    let forecast = crm.forecast(&ForecastQuery::new("sales"))?;
    println!(
        "Pipeline sales: {:.2} {} open, {:.2} weighted",
        forecast.total_minor as f64 / 100.0,
        forecast.currency,
        forecast.weighted_minor as f64 / 100.0
    );

    // Export, streamed.
    let out = dir.join("customers.csv");
    let started = Instant::now();
    let rows = crm.export_customers(
        std::io::BufWriter::new(std::fs::File::create(&out)?),
        ExportFormat::Csv,
    )?;
    println!(
        "\nExported {rows} customers to {} in {:.2} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
