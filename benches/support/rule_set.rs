//! The 20 rules the rule benchmarks run (`examples/bench_rules.rs`,
//! `benches/rules.rs`; `crm-py/bench/bench_rules.py` has the same ones as
//! dicts).

use crm_core::InteractionKind;
use crm_core::rules::{Action, Assignment, NewRule, Trigger};

/// The 20 rules: what a sales team would typically run. Five react to
/// interactions (three to purchases, one to emails, one to any kind), the
/// others to other triggers (customer changes, deals, segments, the sweep);
/// their actions are idempotent, so a customer who already got them is
/// not changed again.
pub fn rules() -> Vec<NewRule> {
    let r = |name: &str, trigger: Trigger, condition: Option<&str>, actions: Vec<Action>| NewRule {
        condition: condition.map(str::to_string),
        actions,
        ..NewRule::new(name, trigger)
    };
    let purchase = || Trigger::InteractionLogged {
        kind: Some(InteractionKind::Purchase),
    };
    let tag = |t: &str| Action::AddTag { tag: t.into() };
    let stage = |s: &str| Action::SetStage { stage: s.into() };
    let updated = |f: &str| Trigger::CustomerUpdated {
        fields: vec![f.into()],
    };
    vec![
        r("first purchase", purchase(), None, vec![stage("customer")]),
        r(
            "repeat buyer",
            purchase(),
            Some("count(purchases) >= 3"),
            vec![tag("repeat")],
        ),
        r(
            "big spender",
            purchase(),
            Some("sum(purchases.amount) > 500"),
            vec![tag("big-spender")],
        ),
        r(
            "engaged by email",
            Trigger::InteractionLogged {
                kind: Some(InteractionKind::Email),
            },
            Some("count(emails within 30d) >= 5"),
            vec![tag("engaged")],
        ),
        r(
            "active",
            Trigger::InteractionLogged { kind: None },
            Some(r#"stage = "subscriber""#),
            vec![stage("lead")],
        ),
        r(
            "vip to list",
            updated("tags"),
            Some(r#""vip" in tags"#),
            vec![Action::AddToSegment {
                segment: "vip list".into(),
            }],
        ),
        r(
            "big spenders are evangelists",
            updated("tags"),
            Some(r#""big-spender" in tags and "repeat" in tags"#),
            vec![stage("evangelist")],
        ),
        r(
            "assign customers",
            updated("lifecycle_stage"),
            Some(r#"stage = "customer""#),
            vec![Action::AssignOwner {
                assignment: Assignment::RoundRobin {
                    team: "sales".into(),
                },
                overwrite: false,
            }],
        ),
        r(
            "churned win-back",
            updated("lifecycle_stage"),
            Some(r#"stage = "churned""#),
            vec![Action::AddToSegment {
                segment: "win-back".into(),
            }],
        ),
        r(
            "plan change",
            updated("attributes"),
            Some(r#"attr.plan = "pro""#),
            vec![tag("pro")],
        ),
        r("welcome", Trigger::CustomerCreated, None, vec![tag("new")]),
        r(
            "austrians",
            Trigger::CustomerCreated,
            Some(r#"country = "AT""#),
            vec![Action::AssignOwner {
                assignment: Assignment::Territory {
                    attribute: "country".into(),
                    owners: [("AT".to_string(), "bo".to_string())].into(),
                    team: "sales".into(),
                },
                overwrite: false,
            }],
        ),
        r(
            "vip welcome call",
            Trigger::CustomerCreated,
            Some(r#""vip" in tags"#),
            vec![Action::CreateTask {
                title: "Call {name}".into(),
                due_in_days: Some(1),
                priority: Default::default(),
                assign: None,
            }],
        ),
        r(
            "proposal follow-up",
            Trigger::DealStageChanged {
                pipeline: Some("sales".into()),
                from_stage: None,
                to_stage: Some("proposal".into()),
            },
            None,
            vec![Action::CreateTask {
                title: "Follow up {deal.title}".into(),
                due_in_days: Some(3),
                priority: Default::default(),
                assign: None,
            }],
        ),
        r(
            "deal won",
            Trigger::DealStageChanged {
                pipeline: Some("sales".into()),
                from_stage: None,
                to_stage: Some("won".into()),
            },
            None,
            vec![stage("customer")],
        ),
        r(
            "vip entered",
            Trigger::SegmentEntered {
                segment: "vip list".into(),
            },
            None,
            vec![tag("vip-listed")],
        ),
        r(
            "win-back entered",
            Trigger::SegmentEntered {
                segment: "win-back".into(),
            },
            None,
            vec![Action::Emit {
                event: "win_back".into(),
            }],
        ),
        r(
            "lapsed",
            Trigger::Schedule,
            Some("days_since(last purchase) > 90"),
            vec![stage("churned")],
        ),
        r(
            "never bought",
            Trigger::Schedule,
            Some("days_since(last purchase) is null and created_at < \"2026-01-01\""),
            vec![tag("never-bought")],
        ),
        r(
            "pro without purchase",
            updated("attributes"),
            Some(r#"attr.plan = "pro" and count(purchases) = 0"#),
            vec![tag("pro-idle")],
        ),
    ]
}

/// Every rule reacting to every interaction: the worst case.
pub fn on_every_interaction() -> Vec<NewRule> {
    rules()
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.name = format!("every {i}");
            r.trigger = Trigger::InteractionLogged { kind: None };
            r.actions.retain(
                |a| !matches!(a, Action::CreateTask { title, .. } if title.contains("deal")),
            );
            if r.actions.is_empty() {
                r.actions = vec![Action::AddTag { tag: "x".into() }];
            }
            r
        })
        .collect()
}
