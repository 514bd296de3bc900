//! Lifecycle stages through the public API: the configuration, the moves it
//! allows, the recorded transitions and the queries over them.

use chrono::{DateTime, Duration, Utc};
use crm_core::import::{ImportMode, ImportOptions};
use crm_core::{
    ChangeOp, Crm, CustomerId, CustomerPatch, EntityKind, Error, LifecycleConfig, LifecycleStage,
    NewCustomer, TransitionCause,
};

fn customer(name: &str) -> NewCustomer {
    NewCustomer {
        name: Some(name.into()),
        ..NewCustomer::default()
    }
}

fn in_stage(name: &str, stage: &str) -> NewCustomer {
    NewCustomer {
        lifecycle_stage: Some(stage.into()),
        ..customer(name)
    }
}

fn stages(crm: &Crm, id: CustomerId) -> Vec<(Option<String>, String)> {
    crm.stage_history(id)
        .unwrap()
        .into_iter()
        .map(|t| (t.from, t.to))
        .collect()
}

fn tick() -> DateTime<Utc> {
    std::thread::sleep(std::time::Duration::from_millis(2));
    let t = Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(2));
    t
}

fn validation(e: Error) -> (String, String) {
    match e {
        Error::Validation { field, reason } => (field, reason),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// A configuration with a trial stage after lead, and sql allowed back.
fn custom() -> LifecycleConfig {
    LifecycleConfig {
        stages: ["lead", "trial", "sql", "customer"]
            .into_iter()
            .map(|s| LifecycleStage {
                name: s.into(),
                allow_backward: s == "sql",
            })
            .collect(),
        off_track: vec!["lost".into()],
        default_stage: "lead".into(),
    }
}

#[test]
fn the_default_configuration_and_a_custom_one_round_trip() {
    let crm = Crm::open_in_memory().unwrap();
    let config = crm.lifecycle_config().unwrap();
    assert_eq!(config, LifecycleConfig::default());
    let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "subscriber",
            "lead",
            "mql",
            "sql",
            "opportunity",
            "customer",
            "evangelist"
        ]
    );
    assert_eq!(config.off_track, ["other", "churned"]);
    assert!(config.stages.iter().all(|s| !s.allow_backward));

    let mut wanted = custom();
    wanted.stages[1].name = " Trial ".into();
    let stored = crm.set_lifecycle_config(&wanted).unwrap();
    assert_eq!(stored, custom());
    assert_eq!(crm.lifecycle_config().unwrap(), custom());
    let log = crm.changes_since(0, 100).unwrap();
    let last = log.last().unwrap();
    assert_eq!(
        (last.entity, last.op),
        (EntityKind::Settings, ChangeOp::Updated)
    );
    assert_eq!(last.entity_id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(last.fields, ["lifecycle"]);

    // New customers get the configured default stage.
    let ana = crm.create_customer(customer("Ana")).unwrap();
    assert_eq!(ana.lifecycle_stage, "lead");
    assert_eq!(crm.get_customer(ana.id).unwrap().lifecycle_stage, "lead");

    // Setting the same configuration again logs nothing.
    let before = crm.changes_since(0, 1000).unwrap().len();
    crm.set_lifecycle_config(&custom()).unwrap();
    assert_eq!(crm.changes_since(0, 1000).unwrap().len(), before);
}

#[test]
fn bad_configurations_are_refused_and_nothing_is_stored() {
    let crm = Crm::open_in_memory().unwrap();
    let cases: Vec<(LifecycleConfig, &str)> = vec![
        (
            LifecycleConfig {
                stages: vec![],
                ..custom()
            },
            "lifecycle.stages",
        ),
        (
            LifecycleConfig {
                off_track: vec!["trial".into()],
                ..custom()
            },
            "lifecycle.off_track[0]",
        ),
        (
            LifecycleConfig {
                default_stage: "nobody".into(),
                ..custom()
            },
            "lifecycle.default_stage",
        ),
        (
            LifecycleConfig {
                stages: vec![LifecycleStage::new("has space")],
                default_stage: "has_space".into(),
                off_track: vec![],
            },
            "lifecycle.stages[0]",
        ),
    ];
    for (config, field) in cases {
        let (f, _) = validation(crm.set_lifecycle_config(&config).unwrap_err());
        assert_eq!(f, field);
    }
    assert_eq!(crm.lifecycle_config().unwrap(), LifecycleConfig::default());
    assert!(crm.changes_since(0, 10).unwrap().is_empty());
}

#[test]
fn removing_a_stage_customers_are_in_is_a_conflict() {
    let crm = Crm::open_in_memory().unwrap();
    for name in ["Ana", "Bo"] {
        crm.create_customer(in_stage(name, "mql")).unwrap();
    }
    let mut config = LifecycleConfig::default();
    config.stages.retain(|s| s.name != "mql");
    let err = crm.set_lifecycle_config(&config).unwrap_err();
    let Error::Conflict { field, reason } = err else {
        panic!("expected a conflict, got {err:?}")
    };
    assert_eq!(field, "lifecycle.stages");
    assert!(
        reason.contains("'mql'") && reason.contains("2 customer"),
        "{reason}"
    );
    assert_eq!(crm.lifecycle_config().unwrap(), LifecycleConfig::default());

    // Removing a stage nobody is in is fine.
    config = LifecycleConfig::default();
    config.stages.retain(|s| s.name != "evangelist");
    crm.set_lifecycle_config(&config).unwrap();
    assert_eq!(crm.lifecycle_config().unwrap().stages.len(), 6);
}

#[test]
fn an_unknown_stage_is_refused_on_every_path_and_nothing_is_stored() {
    let crm = Crm::open_in_memory().unwrap();
    let ana = crm.create_customer(in_stage("Ana", "lead")).unwrap();
    let changes = crm.changes_since(0, 1000).unwrap().len();

    let check = |e: Error| {
        let (field, reason) = validation(e);
        assert_eq!(field, "lifecycle_stage");
        assert!(reason.contains("did you mean 'mql'"), "{reason}");
    };
    check(crm.create_customer(in_stage("Bo", "mqll")).unwrap_err());
    check(
        crm.update_customer(
            ana.id,
            &CustomerPatch {
                lifecycle_stage: Some("mqll".into()),
                ..CustomerPatch::default()
            },
        )
        .unwrap_err(),
    );
    check(crm.set_lifecycle_stage(ana.id, "MQLL", None).unwrap_err());
    let mut upsert = in_stage("Ana", "mqll");
    upsert.emails = vec!["ana@example.com".into()];
    check(crm.upsert_customer(upsert).unwrap_err());
    let err = crm
        .import_customers(
            [in_stage("Cy", "lead"), in_stage("Di", "mqll")],
            &ImportOptions::default(),
            None,
        )
        .unwrap_err();
    let Error::InvalidRow { row, field, reason } = err else {
        panic!("expected an invalid row, got {err:?}")
    };
    assert_eq!((row, field.as_str()), (2, "lifecycle_stage"));
    assert!(reason.contains("did you mean 'mql'"));

    assert_eq!(crm.count_customers().unwrap(), 1);
    assert_eq!(crm.get_customer(ana.id).unwrap().lifecycle_stage, "lead");
    assert_eq!(stages(&crm, ana.id), [(None, "lead".to_string())]);
    assert_eq!(crm.changes_since(0, 1000).unwrap().len(), changes);

    // Skipping bad rows applies the good ones only.
    let report = crm
        .import_customers(
            [in_stage("Cy", "lead"), in_stage("Di", "mqll")],
            &ImportOptions {
                mode: ImportMode::SkipInvalid,
                ..ImportOptions::default()
            },
            None,
        )
        .unwrap();
    assert_eq!((report.inserted, report.rejected), (1, 1));
    assert_eq!(report.errors[0].field, "lifecycle_stage");
}

#[test]
fn moving_backward_needs_the_stage_left_to_allow_it() {
    let crm = Crm::open_in_memory().unwrap();
    crm.set_lifecycle_config(&custom()).unwrap();
    let ana = crm.create_customer(customer("Ana")).unwrap();
    crm.set_lifecycle_stage(ana.id, "trial", None).unwrap();

    // trial does not allow going back.
    let (field, reason) = validation(crm.set_lifecycle_stage(ana.id, "lead", None).unwrap_err());
    assert_eq!(field, "lifecycle_stage");
    assert!(
        reason.contains("'trial'") && reason.contains("'lead'"),
        "{reason}"
    );
    let patch = CustomerPatch {
        lifecycle_stage: Some("lead".into()),
        ..CustomerPatch::default()
    };
    assert!(crm.update_customer(ana.id, &patch).is_err());
    assert_eq!(crm.get_customer(ana.id).unwrap().lifecycle_stage, "trial");

    // sql does, to any earlier stage.
    crm.set_lifecycle_stage(ana.id, "sql", None).unwrap();
    crm.set_lifecycle_stage(ana.id, "lead", Some("went quiet"))
        .unwrap();
    // Off-track stages are entered and left freely.
    crm.set_lifecycle_stage(ana.id, "customer", None).unwrap();
    crm.set_lifecycle_stage(ana.id, "lost", None).unwrap();
    crm.set_lifecycle_stage(ana.id, "lead", None).unwrap();
    let s = |x: &str| x.to_string();
    assert_eq!(
        stages(&crm, ana.id),
        [
            (None, s("lead")),
            (Some(s("lead")), s("trial")),
            (Some(s("trial")), s("sql")),
            (Some(s("sql")), s("lead")),
            (Some(s("lead")), s("customer")),
            (Some(s("customer")), s("lost")),
            (Some(s("lost")), s("lead")),
        ]
    );
    let history = crm.stage_history(ana.id).unwrap();
    assert_eq!(history[3].note.as_deref(), Some("went quiet"));
    assert!(history.windows(2).all(|w| w[0].at <= w[1].at));

    // Setting the stage a customer is in records nothing.
    let again = crm.set_lifecycle_stage(ana.id, "lead", None).unwrap();
    assert_eq!(again.lifecycle_stage, "lead");
    assert_eq!(crm.stage_history(ana.id).unwrap().len(), 7);
}

#[test]
fn transitions_record_their_cause() {
    let crm = Crm::open_in_memory().unwrap();
    let ana = crm.create_customer(customer("Ana")).unwrap();
    crm.update_customer(
        ana.id,
        &CustomerPatch {
            lifecycle_stage: Some("lead".into()),
            ..CustomerPatch::default()
        },
    )
    .unwrap();
    // A change that leaves the stage alone records no transition.
    crm.update_customer(
        ana.id,
        &CustomerPatch {
            owner: Some(Some("maja".into())),
            ..CustomerPatch::default()
        },
    )
    .unwrap();
    let history = crm.stage_history(ana.id).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|t| t.cause == TransitionCause::Manual));
    assert!(history.iter().all(|t| t.rule.is_none()));
    assert_eq!(history[0].at, ana.created_at);

    // Bulk import: created through the deferred path.
    let with_email = |name: &str, stage: &str| NewCustomer {
        emails: vec![format!("{name}@example.com")],
        ..in_stage(name, stage)
    };
    crm.import_customers(
        [with_email("bo", "mql"), with_email("cy", "subscriber")],
        &ImportOptions::default(),
        None,
    )
    .unwrap();
    // Upsert import: one update, one creation.
    crm.import_customers(
        [with_email("bo", "sql"), with_email("di", "lead")],
        &ImportOptions {
            upsert: true,
            ..ImportOptions::default()
        },
        None,
    )
    .unwrap();
    let bo = crm
        .find_customer_by_email("bo@example.com")
        .unwrap()
        .unwrap();
    let di = crm
        .find_customer_by_email("di@example.com")
        .unwrap()
        .unwrap();
    let bo_history = crm.stage_history(bo.id).unwrap();
    assert_eq!(
        bo_history
            .iter()
            .map(|t| (t.from.as_deref(), t.to.as_str(), t.cause))
            .collect::<Vec<_>>(),
        [
            (None, "mql", TransitionCause::Import),
            (Some("mql"), "sql", TransitionCause::Import),
        ]
    );
    assert_eq!(
        crm.stage_history(di.id).unwrap()[0].cause,
        TransitionCause::Import
    );

    // Deleting a customer deletes their transitions.
    crm.delete_customer(di.id).unwrap();
    assert!(matches!(
        crm.stage_history(di.id),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn time_in_stages_follows_the_configured_order() {
    let crm = Crm::open_in_memory().unwrap();
    let ana = crm.create_customer(in_stage("Ana", "lead")).unwrap();
    tick();
    crm.set_lifecycle_stage(ana.id, "churned", None).unwrap();
    tick();
    crm.set_lifecycle_stage(ana.id, "mql", None).unwrap();
    let history = crm.stage_history(ana.id).unwrap();
    let now = history[2].at + Duration::seconds(90);
    let times = crm.time_in_stages(ana.id, Some(now)).unwrap();
    let got: Vec<(&str, u32)> = times
        .iter()
        .map(|t| (t.stage.as_str(), t.entered))
        .collect();
    assert_eq!(got, [("lead", 1), ("mql", 1), ("churned", 1)]);
    assert_eq!(times[1].seconds, 90);
    // Without `now`: up to the present.
    let times = crm.time_in_stages(ana.id, None).unwrap();
    assert_eq!(times.len(), 3);
    assert!(matches!(
        crm.time_in_stages(CustomerId::new(), None),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn stage_counts_replay_the_transitions() {
    let crm = Crm::open_in_memory().unwrap();
    let t0 = tick();
    let ana = crm.create_customer(in_stage("Ana", "lead")).unwrap();
    let bo = crm.create_customer(in_stage("Bo", "lead")).unwrap();
    let t1 = tick();
    crm.set_lifecycle_stage(ana.id, "mql", None).unwrap();
    crm.set_lifecycle_stage(bo.id, "churned", None).unwrap();
    let t2 = tick();
    crm.set_lifecycle_stage(ana.id, "customer", None).unwrap();
    let cy = crm.create_customer(customer("Cy")).unwrap();
    let t3 = tick();
    crm.delete_customer(cy.id).unwrap();

    let count = |at: DateTime<Utc>| -> Vec<(String, u64)> {
        crm.stage_counts(at)
            .unwrap()
            .into_iter()
            .filter(|c| c.customers > 0)
            .map(|c| (c.stage, c.customers))
            .collect()
    };
    let s = |x: &str, n: u64| (x.to_string(), n);
    assert!(count(t0).is_empty());
    assert_eq!(count(t1), [s("lead", 2)]);
    assert_eq!(count(t2), [s("mql", 1), s("churned", 1)]);
    // Cy was deleted since: not counted.
    assert_eq!(count(t3), [s("customer", 1), s("churned", 1)]);
    // Every configured stage is listed, in order.
    let all = crm.stage_counts(t3).unwrap();
    assert_eq!(all.len(), 9);
    assert_eq!(all[0].stage, "subscriber");
    assert_eq!(all[8].stage, "churned");
}

#[test]
fn the_funnel_counts_entries_and_advances_within_the_period() {
    let crm = Crm::open_in_memory().unwrap();
    let a = crm.create_customer(in_stage("A", "lead")).unwrap();
    let b = crm.create_customer(in_stage("B", "lead")).unwrap();
    let start = tick();
    let c = crm.create_customer(in_stage("C", "lead")).unwrap();
    let d = crm.create_customer(in_stage("D", "lead")).unwrap();
    crm.set_lifecycle_stage(a.id, "mql", None).unwrap();
    crm.set_lifecycle_stage(c.id, "mql", None).unwrap();
    crm.set_lifecycle_stage(c.id, "churned", None).unwrap();
    crm.set_lifecycle_stage(c.id, "customer", None).unwrap();
    crm.set_lifecycle_stage(d.id, "sql", None).unwrap();
    let end = tick();
    // After the period: not counted.
    crm.set_lifecycle_stage(b.id, "mql", None).unwrap();
    crm.set_lifecycle_stage(a.id, "sql", None).unwrap();

    let funnel = crm.stage_funnel(start, end).unwrap();
    let got: Vec<(&str, u64, u64)> = funnel
        .iter()
        .map(|f| (f.stage.as_str(), f.entered, f.advanced))
        .collect();
    assert_eq!(
        got,
        [
            ("subscriber", 0, 0),
            ("lead", 2, 2),
            ("mql", 2, 1),
            ("sql", 1, 0),
            ("opportunity", 0, 0),
            ("customer", 1, 0),
            ("evangelist", 0, 0),
        ]
    );
    assert_eq!(funnel[1].conversion_rate, Some(1.0));
    assert_eq!(funnel[2].conversion_rate, Some(0.5));
    assert_eq!(funnel[0].conversion_rate, None);

    // The whole history, with a custom order: the funnel follows it.
    let mut config = LifecycleConfig::default();
    config.stages.swap(2, 3); // sql before mql
    crm.set_lifecycle_config(&config).unwrap();
    let funnel = crm
        .stage_funnel(start - Duration::hours(1), Utc::now() + Duration::hours(1))
        .unwrap();
    assert_eq!(funnel[2].stage, "sql");
    assert_eq!((funnel[3].stage.as_str(), funnel[3].entered), ("mql", 3));

    assert!(matches!(
        crm.stage_funnel(end, start),
        Err(Error::Validation { .. })
    ));
}

#[test]
fn stage_order_in_filters_follows_the_configuration() {
    let crm = Crm::open_in_memory().unwrap();
    for (name, stage) in [("A", "lead"), ("B", "sql"), ("C", "mql"), ("D", "churned")] {
        crm.create_customer(in_stage(name, stage)).unwrap();
    }
    assert_eq!(crm.count_matching(r#"stage >= "mql""#).unwrap(), 2);
    assert_eq!(crm.count_matching(r#"stage > "mql""#).unwrap(), 1);

    let mut config = LifecycleConfig::default();
    config.stages.swap(2, 3); // sql before mql
    config.stages.insert(0, LifecycleStage::new("visitor"));
    crm.set_lifecycle_config(&config).unwrap();
    assert_eq!(crm.count_matching(r#"stage > "mql""#).unwrap(), 0);
    assert_eq!(crm.count_matching(r#"stage >= "sql""#).unwrap(), 2);
    assert_eq!(crm.count_matching(r#"stage < "sql""#).unwrap(), 1);
    assert_eq!(crm.count_matching(r#"stage > "visitor""#).unwrap(), 3);
    let err = crm.count_matching(r#"stage > "visiter""#).unwrap_err();
    let Error::Parse { suggestion, .. } = err else {
        panic!("expected a parse error, got {err:?}")
    };
    assert_eq!(suggestion.as_deref(), Some("visitor"));
}

#[test]
fn the_configuration_is_shared_by_handles_on_one_file() {
    let dir = std::env::temp_dir().join(format!("crm-lifecycle-{}", CustomerId::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crm.db");
    let one = Crm::open(&path).unwrap();
    let two = Crm::open(&path).unwrap();
    // Read (and cache) the default on both.
    let a = two.create_customer(customer("A")).unwrap();
    assert_eq!(a.lifecycle_stage, "subscriber");
    // (The custom stages have no subscriber: nobody may be in it.)
    two.delete_customer(a.id).unwrap();
    one.set_lifecycle_config(&custom()).unwrap();
    assert_eq!(two.lifecycle_config().unwrap(), custom());
    let b = two.create_customer(customer("B")).unwrap();
    assert_eq!(b.lifecycle_stage, "lead");
    assert!(two.create_customer(in_stage("C", "mql")).is_err());
    drop((one, two));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "arrow")]
#[test]
fn the_transitions_read_as_an_arrow_table() {
    use arrow_array::Array;
    use crm_core::arrow::{ReadOptions, Table};

    let crm = Crm::open_in_memory().unwrap();
    let ana = crm.create_customer(in_stage("Ana", "lead")).unwrap();
    let since = tick();
    crm.set_lifecycle_stage(ana.id, "mql", Some("asked for a demo"))
        .unwrap();
    let bo = crm.create_customer(customer("Bo")).unwrap();

    let batches: Vec<_> = crm
        .read_table(Table::StageTransitions, &ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 3);
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "from_stage",
            "to_stage",
            "at",
            "cause",
            "rule",
            "note"
        ]
    );
    let ids = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap();
    assert_eq!(ids.value(0), ana.id.to_string());
    assert_eq!(ids.value(2), bo.id.to_string());
    assert!(batches[0].column(1).is_null(0));
    assert!(!batches[0].column(1).is_null(1));

    // A time range, and a filter on the customers.
    let options = ReadOptions {
        since: Some(since),
        ..ReadOptions::default()
    };
    let rows: usize = crm
        .read_table(Table::StageTransitions, &options)
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 2);
    let options = ReadOptions {
        filter: Some(r#"name = "Bo""#.into()),
        ..ReadOptions::default()
    };
    let rows: usize = crm
        .read_table(Table::StageTransitions, &options)
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 1);
    assert_eq!(
        "stage_transitions".parse::<Table>().unwrap(),
        Table::StageTransitions
    );
}
