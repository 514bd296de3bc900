//! The rules engine: triggers, conditions, actions, assignment, cascades,
//! the sweep, dry runs, and bad input.

use std::sync::{Arc, Mutex};

use crm_core::rules::{
    Action, Assignment, EffectsQuery, NewRule, RuleEvent, Team, TeamMember, Trigger,
};
use crm_core::{
    ChangeOp, Crm, CustomerPatch, EntityKind, Error, InteractionKind, NewCustomer, NewDeal,
    NewInteraction, NewPipeline, NewSegment, PipelineStage, TaskQuery, TransitionCause,
};

fn crm() -> Crm {
    Crm::open_in_memory().unwrap()
}

fn customer(crm: &Crm, name: &str) -> crm_core::Customer {
    crm.create_customer(NewCustomer {
        name: Some(name.into()),
        ..Default::default()
    })
    .unwrap()
}

fn team(crm: &Crm, name: &str, members: &[&str]) {
    crm.set_team(&Team {
        name: name.into(),
        members: members.iter().map(|m| TeamMember::new(*m)).collect(),
    })
    .unwrap();
}

fn on_purchase(name: &str, actions: Vec<Action>) -> NewRule {
    NewRule {
        actions,
        ..NewRule::new(
            name,
            Trigger::InteractionLogged {
                kind: Some(InteractionKind::Purchase),
            },
        )
    }
}

#[test]
fn a_purchase_moves_the_customer_and_the_change_log_names_the_rule() {
    let crm = crm();
    crm.create_rule(&NewRule {
        condition: Some("count(purchases) >= 2".into()),
        ..on_purchase(
            "repeat buyer",
            vec![
                Action::SetStage {
                    stage: "customer".into(),
                },
                Action::AddTag {
                    tag: "repeat".into(),
                },
            ],
        )
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Purchase))
        .unwrap();
    assert_eq!(
        crm.get_customer(ana.id).unwrap().lifecycle_stage,
        "subscriber"
    );
    // A call is not a purchase: the trigger's kind filters it out.
    crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Call))
        .unwrap();
    assert!(crm.get_customer(ana.id).unwrap().tags.is_empty());
    crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Purchase))
        .unwrap();
    let ana = crm.get_customer(ana.id).unwrap();
    assert_eq!(ana.lifecycle_stage, "customer");
    assert_eq!(ana.tags, ["repeat"]);

    let history = crm.customer_history(ana.id).unwrap();
    let by_rule: Vec<_> = history.iter().filter(|c| c.rule.is_some()).collect();
    assert_eq!(by_rule.len(), 1);
    assert_eq!(by_rule[0].rule.as_deref(), Some("repeat buyer"));
    assert_eq!(by_rule[0].op, ChangeOp::Updated);
    assert!(by_rule[0].fields.contains(&"lifecycle_stage".to_string()));

    let stages = crm.stage_history(ana.id).unwrap();
    let last = stages.last().unwrap();
    assert_eq!(last.cause, TransitionCause::Rule);
    assert_eq!(last.rule.as_deref(), Some("repeat buyer"));

    let effects = crm
        .rule_effects(&EffectsQuery {
            entity_id: Some(ana.id.to_string()),
            ..Default::default()
        })
        .unwrap();
    let details: Vec<&str> = effects.iter().map(|e| e.detail.as_str()).collect();
    assert!(
        details.contains(&"moved from stage 'subscriber' to 'customer'"),
        "{details:?}"
    );
    assert!(details.contains(&"added tag 'repeat'"), "{details:?}");
}

#[test]
fn a_task_created_after_an_assignment_goes_to_the_new_owner() {
    let crm = crm();
    team(&crm, "sales", &["maja"]);
    crm.create_rule(&NewRule {
        actions: vec![
            Action::AssignOwner {
                assignment: Assignment::RoundRobin {
                    team: "sales".into(),
                },
                overwrite: false,
            },
            Action::CreateTask {
                title: "Welcome call ({owner})".into(),
                due_in_days: None,
                priority: Default::default(),
                assign: None,
            },
        ],
        ..NewRule::new("onboarding", Trigger::CustomerCreated)
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    assert_eq!(ana.owner.as_deref(), Some("maja"));
    let task = crm.tasks(&TaskQuery::default()).unwrap().items.remove(0);
    assert_eq!(
        (task.title.as_str(), task.owner.as_deref()),
        ("Welcome call (maja)", Some("maja"))
    );
}

#[test]
fn a_backward_move_a_rule_would_make_is_skipped_and_the_write_goes_on() {
    let crm = crm();
    crm.create_rule(&on_purchase(
        "buyers are customers",
        vec![Action::SetStage {
            stage: "customer".into(),
        }],
    ))
    .unwrap();
    let fan = crm
        .create_customer(NewCustomer {
            name: Some("Fan".into()),
            lifecycle_stage: Some("evangelist".into()),
            ..Default::default()
        })
        .unwrap();
    crm.log_interaction(NewInteraction::new(fan.id, InteractionKind::Purchase))
        .unwrap();
    assert_eq!(crm.count_interactions().unwrap(), 1);
    assert_eq!(
        crm.get_customer(fan.id).unwrap().lifecycle_stage,
        "evangelist"
    );
    // A dry run says why.
    let run = crm
        .dry_run_rule(
            &on_purchase(
                "try",
                vec![Action::SetStage {
                    stage: "customer".into(),
                }],
            ),
            10,
        )
        .unwrap();
    assert!(
        run.effects[0]
            .detail
            .starts_with("stayed in stage 'evangelist'"),
        "{:?}",
        run.effects
    );
}

#[test]
fn the_returned_customer_includes_what_rules_did_on_creation() {
    let crm = crm();
    crm.create_rule(&NewRule {
        actions: vec![Action::AddTag { tag: "new".into() }],
        ..NewRule::new("tag new", Trigger::CustomerCreated)
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    assert_eq!(ana.tags, ["new"]);
    let up = crm
        .upsert_customer(NewCustomer {
            name: Some("Bo".into()),
            emails: vec!["bo@example.com".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(up.customer.tags, ["new"]);
}

#[test]
fn round_robin_skips_members_who_are_out_and_explains_itself() {
    let crm = crm();
    team(&crm, "sales", &["ana", "bo", "cy"]);
    crm.set_member_out("sales", "bo", true).unwrap();
    crm.create_rule(&NewRule {
        actions: vec![Action::AssignOwner {
            assignment: Assignment::RoundRobin {
                team: "sales".into(),
            },
            overwrite: false,
        }],
        ..NewRule::new("assign new", Trigger::CustomerCreated)
    })
    .unwrap();
    let owners: Vec<_> = (0..4)
        .map(|i| customer(&crm, &format!("c{i}")).owner.unwrap())
        .collect();
    assert_eq!(owners, ["ana", "cy", "ana", "cy"]);
    let c = crm
        .find_matching(r#"name = "c1""#, &Default::default())
        .unwrap()
        .items
        .remove(0);
    let effects = crm
        .rule_effects(&EffectsQuery {
            entity_id: Some(c.id.to_string()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        effects[0].detail,
        "assigned to cy by rule 'assign new': round-robin over team 'sales', next after ana; bo is out"
    );
    // Someone who already has an owner keeps them.
    let kept = crm
        .create_customer(NewCustomer {
            name: Some("Owned".into()),
            owner: Some("zed".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(kept.owner.as_deref(), Some("zed"));
}

#[test]
fn least_open_work_respects_capacity_and_nobody_available_leaves_it_unassigned() {
    let crm = crm();
    crm.set_team(&Team {
        name: "support".into(),
        members: vec![
            TeamMember {
                name: "ana".into(),
                capacity: Some(1),
                out: false,
            },
            TeamMember {
                name: "bo".into(),
                capacity: Some(1),
                out: false,
            },
        ],
    })
    .unwrap();
    crm.create_rule(&NewRule {
        actions: vec![Action::CreateTask {
            title: "Welcome {name}".into(),
            due_in_days: Some(2),
            priority: Default::default(),
            assign: Some(Assignment::LeastOpenWork {
                team: "support".into(),
            }),
        }],
        ..NewRule::new("welcome call", Trigger::CustomerCreated)
    })
    .unwrap();
    let a = customer(&crm, "Ana Novak");
    customer(&crm, "Bo Berg");
    let c = customer(&crm, "Cy Doe");
    let tasks = crm.tasks(&TaskQuery::default()).unwrap().items;
    assert_eq!(tasks.len(), 3);
    let first = tasks.iter().find(|t| t.customer_id == Some(a.id)).unwrap();
    assert_eq!(first.title, "Welcome Ana Novak");
    assert_eq!(first.owner.as_deref(), Some("ana"));
    assert_eq!(first.rule.as_deref(), Some("welcome call"));
    assert!(first.due_at.unwrap() > first.created_at);
    // Both are at capacity: the third task is created unassigned.
    let third = tasks.iter().find(|t| t.customer_id == Some(c.id)).unwrap();
    assert_eq!(third.owner, None);
}

#[test]
fn territory_assigns_by_country_and_falls_back_to_the_team() {
    let crm = crm();
    team(&crm, "field", &["maja", "sven"]);
    crm.create_rule(&NewRule {
        actions: vec![Action::AssignOwner {
            assignment: Assignment::Territory {
                attribute: "country".into(),
                owners: [("SE".to_string(), "sven".to_string())].into(),
                team: "field".into(),
            },
            overwrite: false,
        }],
        ..NewRule::new("territories", Trigger::CustomerCreated)
    })
    .unwrap();
    let se = crm
        .create_customer(NewCustomer {
            name: Some("Swede".into()),
            country: Some("SE".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(se.owner.as_deref(), Some("sven"));
    let fr = crm
        .create_customer(NewCustomer {
            name: Some("French".into()),
            country: Some("FR".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(fr.owner.as_deref(), Some("maja"));
    let why = &crm
        .rule_effects(&EffectsQuery {
            entity_id: Some(fr.id.to_string()),
            ..Default::default()
        })
        .unwrap()[0]
        .detail;
    assert!(
        why.contains("territory: no owner for country 'FR', so least open work"),
        "{why}"
    );
}

#[test]
fn an_emitted_event_reaches_the_host_and_a_failing_host_rolls_the_write_back() {
    let crm = crm();
    crm.create_rule(&NewRule {
        condition: Some(r#""vip" in tags"#.into()),
        actions: vec![Action::Emit {
            event: "vip_created".into(),
        }],
        ..NewRule::new("vip alert", Trigger::CustomerCreated)
    })
    .unwrap();
    let seen: Arc<Mutex<Vec<RuleEvent>>> = Arc::default();
    let sink = seen.clone();
    crm.set_rule_event_handler(Some(Arc::new(move |e: &RuleEvent| {
        sink.lock().unwrap().push(e.clone());
        Ok(())
    })));
    let vip = crm
        .create_customer(NewCustomer {
            name: Some("Vip".into()),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .unwrap();
    customer(&crm, "Not vip");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].event, "vip_created");
        assert_eq!(seen[0].rule, "vip alert");
        assert_eq!(seen[0].trigger, "customer_created");
        assert_eq!(seen[0].customer_id, Some(vip.id));
    }

    crm.set_rule_event_handler(Some(Arc::new(|_: &RuleEvent| Err("queue is down".into()))));
    let before = crm.count_customers().unwrap();
    let err = crm
        .create_customer(NewCustomer {
            name: Some("Vip 2".into()),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .unwrap_err();
    match err {
        Error::Rule { rule, reason } => {
            assert_eq!(rule, "vip alert");
            assert!(reason.contains("queue is down"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(crm.count_customers().unwrap(), before);

    crm.set_rule_event_handler(Some(Arc::new(|_: &RuleEvent| -> Result<(), String> {
        panic!("handler bug")
    })));
    let err = crm
        .create_customer(NewCustomer {
            name: Some("Vip 3".into()),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rule { rule, reason } if rule == "vip alert" && reason.contains("panicked")),
        "{err:?}"
    );
    assert_eq!(crm.count_customers().unwrap(), before);
    // The handle still works.
    crm.set_rule_event_handler(None);
    customer(&crm, "After");
}

#[test]
fn rules_that_undo_each_other_are_reported_as_a_cycle_and_nothing_is_written() {
    let crm = crm();
    let watch_tags = || Trigger::CustomerUpdated {
        fields: vec!["tags".into()],
    };
    crm.create_rule(&NewRule {
        condition: Some(r#""hot" in tags"#.into()),
        actions: vec![
            Action::RemoveTag { tag: "hot".into() },
            Action::AddTag { tag: "cold".into() },
        ],
        ..NewRule::new("cool down", watch_tags())
    })
    .unwrap();
    crm.create_rule(&NewRule {
        condition: Some(r#""cold" in tags"#.into()),
        actions: vec![
            Action::RemoveTag { tag: "cold".into() },
            Action::AddTag { tag: "hot".into() },
        ],
        ..NewRule::new("heat up", watch_tags())
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let err = crm
        .update_customer(
            ana.id,
            &CustomerPatch {
                tags: Some(vec!["hot".into()]),
                ..Default::default()
            },
        )
        .unwrap_err();
    match &err {
        Error::Rule { reason, .. } => {
            assert!(reason.contains("cycle"), "{reason}");
            assert!(reason.contains("cool down →"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(crm.get_customer(ana.id).unwrap().tags.is_empty());
}

#[test]
fn cascades_are_bounded_in_depth() {
    // Each link is named to sort before the one it follows, so that it runs
    // one level down the cascade (rules reacting to one event run in name
    // order, each seeing what the previous ones did).
    let chain = |crm: &Crm, links: usize| {
        for i in 0..links {
            crm.create_rule(&NewRule {
                condition: Some(format!(r#""t{i}" in tags"#)),
                actions: vec![Action::AddTag {
                    tag: format!("t{}", i + 1),
                }],
                ..NewRule::new(
                    format!("link {}", 99 - i),
                    Trigger::CustomerUpdated {
                        fields: vec!["tags".into()],
                    },
                )
            })
            .unwrap();
        }
    };
    let tag_t0 = |crm: &Crm, id| {
        crm.update_customer(
            id,
            &CustomerPatch {
                tags: Some(vec!["t0".into()]),
                ..Default::default()
            },
        )
    };
    // Six links: a cascade of six levels runs to the end.
    let crm = crm();
    chain(&crm, 6);
    let ana = customer(&crm, "Ana");
    assert_eq!(tag_t0(&crm, ana.id).unwrap().tags.len(), 7);
    // Twelve: past the bound, the write is refused whole.
    let crm = crm_core::Crm::open_in_memory().unwrap();
    chain(&crm, 12);
    let bo = customer(&crm, "Bo");
    match tag_t0(&crm, bo.id).unwrap_err() {
        Error::Rule { reason, .. } => {
            assert!(reason.contains("more than 8 levels deep"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(crm.get_customer(bo.id).unwrap().tags.is_empty());
}

#[test]
fn a_rule_that_fires_on_its_own_change_but_changes_nothing_more_is_fine() {
    let crm = crm();
    crm.create_rule(&NewRule {
        condition: Some(r#"country = "SI""#.into()),
        actions: vec![Action::AddTag { tag: "si".into() }],
        ..NewRule::new(
            "tag slovenians",
            Trigger::CustomerUpdated { fields: vec![] },
        )
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let ana = crm
        .update_customer(
            ana.id,
            &CustomerPatch {
                country: Some(Some("SI".into())),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(ana.tags, ["si"]);
}

#[test]
fn the_sweep_acts_once_per_customer_until_they_stop_matching() {
    let crm = crm();
    crm.create_rule(&NewRule {
        condition: Some(r#""dormant" in tags"#.into()),
        actions: vec![Action::SetStage {
            stage: "churned".into(),
        }],
        ..NewRule::new("churn dormant", Trigger::Schedule)
    })
    .unwrap();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            tags: vec!["dormant".into()],
            ..Default::default()
        })
        .unwrap();
    customer(&crm, "Bo");
    let report = crm.run_sweep(None).unwrap();
    assert_eq!((report.rules[0].matching, report.rules[0].acted_on), (1, 1));
    assert_eq!(crm.get_customer(ana.id).unwrap().lifecycle_stage, "churned");
    // Moved back by hand: the sweep does not act again while she still matches.
    crm.set_lifecycle_stage(ana.id, "lead", None).unwrap();
    assert_eq!(crm.run_sweep(None).unwrap().rules[0].acted_on, 0);
    assert_eq!(crm.get_customer(ana.id).unwrap().lifecycle_stage, "lead");
    // She stops matching, then matches again: acted on again.
    let untag = |tags: Vec<String>| CustomerPatch {
        tags: Some(tags),
        ..Default::default()
    };
    crm.update_customer(ana.id, &untag(vec![])).unwrap();
    assert_eq!(crm.run_sweep(None).unwrap().rules[0].matching, 0);
    crm.update_customer(ana.id, &untag(vec!["dormant".into()]))
        .unwrap();
    assert_eq!(crm.run_sweep(None).unwrap().rules[0].acted_on, 1);
}

#[test]
fn a_dry_run_shows_effects_and_stores_nothing() {
    let crm = crm();
    team(&crm, "sales", &["ana"]);
    for i in 0..5 {
        crm.create_customer(NewCustomer {
            name: Some(format!("c{i}")),
            country: Some(if i % 2 == 0 { "SI" } else { "AT" }.into()),
            ..Default::default()
        })
        .unwrap();
    }
    let changes_before = crm.changes_since(0, 10_000).unwrap().len();
    let rule = NewRule {
        condition: Some(r#"country = "SI""#.into()),
        actions: vec![
            Action::AddTag { tag: "si".into() },
            Action::AssignOwner {
                assignment: Assignment::RoundRobin {
                    team: "sales".into(),
                },
                overwrite: false,
            },
            Action::Emit {
                event: "tagged".into(),
            },
        ],
        ..NewRule::new("tag si", Trigger::CustomerCreated)
    };
    let run = crm.dry_run_rule(&rule, 2).unwrap();
    assert_eq!(run.matching, 3);
    assert_eq!(run.simulated, 2);
    assert_eq!(run.effects.len(), 6);
    assert!(
        run.effects
            .iter()
            .any(|e| e.detail == "would emit event 'tagged'")
    );
    assert_eq!(crm.count_matching(r#""si" in tags"#).unwrap(), 0);
    assert_eq!(crm.changes_since(0, 10_000).unwrap().len(), changes_before);
    assert!(crm.rules().unwrap().is_empty());
    assert!(
        crm.rule_effects(&EffectsQuery::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rules_are_versioned_and_disabled_rules_do_not_run() {
    let crm = crm();
    let mut rule = NewRule {
        actions: vec![Action::AddTag { tag: "a".into() }],
        ..NewRule::new("tagger", Trigger::CustomerCreated)
    };
    assert_eq!(crm.create_rule(&rule).unwrap().version, 1);
    rule.actions = vec![Action::AddTag { tag: "b".into() }];
    assert_eq!(crm.update_rule("tagger", &rule).unwrap().version, 2);
    assert_eq!(customer(&crm, "x").tags, ["b"]);
    let off = crm.set_rule_enabled("tagger", false).unwrap();
    assert_eq!((off.version, off.enabled), (3, false));
    assert!(customer(&crm, "y").tags.is_empty());
    let versions = crm.rule_versions("tagger").unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        versions[0].actions,
        vec![Action::AddTag { tag: "a".into() }]
    );
    assert!(!versions[2].enabled);
    let json = serde_json::to_string(&crm.rule("tagger").unwrap()).unwrap();
    assert!(
        json.contains(r#""trigger":{"type":"customer_created"}"#),
        "{json}"
    );
    crm.delete_rule("tagger").unwrap();
    assert!(matches!(
        crm.rule("tagger"),
        Err(Error::NotFound { entity: "rule" })
    ));
}

#[test]
fn segment_membership_triggers_rules_and_actions_cascade() {
    let crm = crm();
    crm.create_segment(&NewSegment::static_list("vip list"))
        .unwrap();
    crm.create_rule(&NewRule {
        condition: Some(r#""vip" in tags"#.into()),
        actions: vec![Action::AddToSegment {
            segment: "vip list".into(),
        }],
        ..NewRule::new(
            "list vips",
            Trigger::CustomerUpdated {
                fields: vec!["tags".into()],
            },
        )
    })
    .unwrap();
    crm.create_rule(&NewRule {
        actions: vec![Action::SetStage {
            stage: "sql".into(),
        }],
        ..NewRule::new(
            "vips are qualified",
            Trigger::SegmentEntered {
                segment: "vip list".into(),
            },
        )
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let ana = crm
        .update_customer(
            ana.id,
            &CustomerPatch {
                tags: Some(vec!["vip".into()]),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(crm.segment_contains("vip list", ana.id).unwrap());
    assert_eq!(ana.lifecycle_stage, "sql");
    // A dry run of a rule on entering the segment acts on its members.
    customer(&crm, "Bo");
    let run = crm
        .dry_run_rule(
            &NewRule {
                actions: vec![Action::AddTag {
                    tag: "listed".into(),
                }],
                ..NewRule::new(
                    "tag listed",
                    Trigger::SegmentEntered {
                        segment: "vip list".into(),
                    },
                )
            },
            10,
        )
        .unwrap();
    assert_eq!((run.matching, run.effects.len()), (1, 1));
    assert_eq!(run.effects[0].entity_id, ana.id.to_string());
}

#[test]
fn imported_interactions_run_rules_row_by_row() {
    let crm = crm();
    crm.create_rule(&NewRule {
        condition: Some("sum(purchases.amount) > 100".into()),
        ..on_purchase("big spender", vec![Action::AddTag { tag: "big".into() }])
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let rows = (0..3).map(|_| NewInteraction {
        amount_minor: Some(6_000),
        currency: Some("EUR".into()),
        ..NewInteraction::new(ana.id, InteractionKind::Purchase)
    });
    crm.import_interactions(rows, &Default::default(), None)
        .unwrap();
    assert_eq!(crm.get_customer(ana.id).unwrap().tags, ["big"]);
}

#[test]
fn a_deal_changing_stage_creates_a_task_for_its_owner() {
    let crm = crm();
    crm.create_pipeline(&NewPipeline {
        name: "sales".into(),
        currency: "EUR".into(),
        stages: vec![
            PipelineStage::open("lead", 10),
            PipelineStage::open("proposal", 50),
            PipelineStage::won("won"),
        ],
    })
    .unwrap();
    crm.create_rule(&NewRule {
        actions: vec![Action::CreateTask {
            title: "Follow up {deal.title} for {name}".into(),
            due_in_days: Some(3),
            priority: crm_core::Priority::High,
            assign: None,
        }],
        ..NewRule::new(
            "proposal follow-up",
            Trigger::DealStageChanged {
                pipeline: Some("sales".into()),
                from_stage: None,
                to_stage: Some("proposal".into()),
            },
        )
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let deal = crm
        .create_deal(&NewDeal {
            pipeline: "sales".into(),
            title: "Big order".into(),
            value_minor: 100_000,
            owner: Some("maja".into()),
            customer_id: Some(ana.id),
            ..Default::default()
        })
        .unwrap();
    crm.move_deal(deal.id, "proposal", None).unwrap();
    let tasks = crm
        .tasks(&TaskQuery {
            deal_id: Some(deal.id),
            ..Default::default()
        })
        .unwrap()
        .items;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].title, "Follow up Big order for Ana");
    assert_eq!(tasks[0].owner.as_deref(), Some("maja"));
    assert_eq!(tasks[0].customer_id, Some(ana.id));
    let task_changes = crm.changes_since(0, 1000).unwrap();
    assert!(
        task_changes.iter().any(
            |c| c.entity == EntityKind::Task && c.rule.as_deref() == Some("proposal follow-up")
        )
    );
}

#[test]
fn a_dry_run_of_a_deal_rule_acts_on_the_open_deals_it_names() {
    let crm = crm();
    team(&crm, "sales", &["ana", "bo"]);
    crm.create_pipeline(&NewPipeline {
        name: "sales".into(),
        currency: "EUR".into(),
        stages: vec![
            PipelineStage::open("lead", 10),
            PipelineStage::open("proposal", 50),
            PipelineStage::won("won"),
        ],
    })
    .unwrap();
    let ana = customer(&crm, "Ana");
    let deal = |title: &str, stage: &str| {
        let d = crm
            .create_deal(&NewDeal {
                pipeline: "sales".into(),
                title: title.into(),
                value_minor: 1_000,
                customer_id: Some(ana.id),
                ..Default::default()
            })
            .unwrap();
        if stage != "lead" {
            crm.move_deal(d.id, stage, None).unwrap();
        }
        d
    };
    let at_proposal = deal("Roof", "proposal");
    deal("Windows", "lead");
    let rule = NewRule {
        actions: vec![Action::AssignOwner {
            assignment: Assignment::RoundRobin {
                team: "sales".into(),
            },
            overwrite: false,
        }],
        ..NewRule::new(
            "assign proposals",
            Trigger::DealStageChanged {
                pipeline: Some("sales".into()),
                from_stage: None,
                to_stage: Some("proposal".into()),
            },
        )
    };
    let run = crm.dry_run_rule(&rule, 10).unwrap();
    assert_eq!((run.matching, run.simulated), (1, 1));
    assert_eq!(run.effects[0].entity, EntityKind::Deal);
    assert_eq!(run.effects[0].entity_id, at_proposal.id.to_string());
    assert!(run.effects[0].detail.starts_with("assigned to ana"));
    assert_eq!(crm.get_deal(at_proposal.id).unwrap().owner, None);
}

#[test]
fn bad_rules_are_refused_with_typed_errors_and_nothing_is_stored() {
    let crm = crm();
    let base = || NewRule {
        actions: vec![Action::AddTag { tag: "x".into() }],
        ..NewRule::new("r", Trigger::CustomerCreated)
    };
    // Invalid condition: a parse error with a position and a suggestion.
    let err = crm
        .create_rule(&NewRule {
            condition: Some(r#"contry = "SI""#.into()),
            ..base()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Parse { suggestion: Some(s), .. } if s == "country"),
        "{err:?}"
    );
    // Unknown action: refused when read.
    let err = NewRule::from_json(
        r#"{"name": "r", "trigger": {"type": "customer_created"}, "actions": [{"type": "send_fax"}]}"#,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "rule"),
        "{err:?}"
    );
    // A stage that does not exist.
    let err = crm
        .create_rule(&NewRule {
            actions: vec![Action::SetStage {
                stage: "custmer".into(),
            }],
            ..base()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, reason } if field == "actions[0].stage" && reason.contains("did you mean 'customer'")),
        "{err:?}"
    );
    // An assignment to nobody: no such team, or a team without members.
    let err = crm
        .create_rule(&NewRule {
            actions: vec![Action::AssignOwner {
                assignment: Assignment::RoundRobin {
                    team: "ghosts".into(),
                },
                overwrite: false,
            }],
            ..base()
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "actions[0].assignment.team"),
        "{err:?}"
    );
    let err = crm
        .set_team(&Team {
            name: "empty".into(),
            members: vec![],
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation { field, .. } if field == "members"),
        "{err:?}"
    );
    // No actions, unknown segment, bad template, dynamic segment as target.
    assert!(
        crm.create_rule(&NewRule {
            actions: vec![],
            ..base()
        })
        .is_err()
    );
    assert!(
        crm.create_rule(&NewRule {
            trigger: Trigger::SegmentEntered {
                segment: "nope".into()
            },
            ..base()
        })
        .is_err()
    );
    assert!(
        crm.create_rule(&NewRule {
            actions: vec![Action::CreateTask {
                title: "Call {nmae}".into(),
                due_in_days: None,
                priority: Default::default(),
                assign: None,
            }],
            ..base()
        })
        .is_err()
    );
    crm.create_segment(&NewSegment::dynamic("si", r#"country = "SI""#))
        .unwrap();
    assert!(
        crm.create_rule(&NewRule {
            actions: vec![Action::AddToSegment {
                segment: "si".into()
            }],
            ..base()
        })
        .is_err()
    );
    assert!(crm.rules().unwrap().is_empty());
    // A duplicate name is a conflict.
    crm.create_rule(&base()).unwrap();
    assert!(matches!(
        crm.create_rule(&base()),
        Err(Error::Conflict { .. })
    ));
    // A team a rule assigns from can't be deleted.
    team(&crm, "sales", &["ana"]);
    crm.create_rule(&NewRule {
        actions: vec![Action::AssignOwner {
            assignment: Assignment::LeastOpenWork {
                team: "sales".into(),
            },
            overwrite: true,
        }],
        ..NewRule::new("assign", Trigger::CustomerCreated)
    })
    .unwrap();
    assert!(matches!(
        crm.delete_team("sales"),
        Err(Error::Conflict { .. })
    ));
}
