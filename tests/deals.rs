//! Pipelines, deals, the forecast and tasks, through the public API.

use chrono::{Duration, NaiveDate, Utc};
use crm_core::{
    ChangeOp, Crm, CustomerKind, DealPatch, DealQuery, DealStatus, EntityKind, Error,
    ForecastQuery, NewCustomer, NewDeal, NewPipeline, NewTask, PipelineStage, Priority, TaskPatch,
    TaskQuery, TaskStatus,
};

fn stages() -> Vec<PipelineStage> {
    vec![
        PipelineStage::open("Lead", 10),
        PipelineStage::open("Qualified", 30),
        PipelineStage::open("Proposal", 60),
        PipelineStage::won("Won"),
        PipelineStage::lost("Lost"),
    ]
}

fn crm() -> Crm {
    let crm = Crm::open_in_memory().unwrap();
    crm.create_pipeline(&NewPipeline::new("Sales", "EUR", stages()))
        .unwrap();
    crm
}

fn last_seq(crm: &Crm) -> i64 {
    crm.changes_since(0, 10_000)
        .unwrap()
        .last()
        .map_or(0, |c| c.seq)
}

fn field(e: Error) -> String {
    match e {
        Error::Validation { field, .. } | Error::Conflict { field, .. } => field,
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn pipelines_are_validated_and_nothing_is_stored_on_error() {
    let crm = Crm::open_in_memory().unwrap();
    let before = last_seq(&crm);
    let e = crm
        .create_pipeline(&NewPipeline::new("Sales", "EUR", vec![]))
        .unwrap_err();
    assert_eq!(field(e), "stages");
    let e = crm
        .create_pipeline(&NewPipeline::new("Sales", "EURO", stages()))
        .unwrap_err();
    assert_eq!(field(e), "currency");
    let mut dup = stages();
    dup.push(PipelineStage::open("lead", 5));
    assert_eq!(
        field(
            crm.create_pipeline(&NewPipeline::new("Sales", "EUR", dup))
                .unwrap_err()
        ),
        "stages[5].name"
    );
    let mut bad = stages();
    bad[0].probability = 120;
    assert_eq!(
        field(
            crm.create_pipeline(&NewPipeline::new("Sales", "EUR", bad))
                .unwrap_err()
        ),
        "stages[0].probability"
    );
    assert!(crm.pipelines().unwrap().is_empty());
    assert_eq!(last_seq(&crm), before);

    let p = crm
        .create_pipeline(&NewPipeline::new(" Sales ", "eur", stages()))
        .unwrap();
    assert_eq!((p.name.as_str(), p.currency.as_str()), ("Sales", "EUR"));
    assert_eq!(crm.pipeline("Sales").unwrap(), p);
    assert!(matches!(
        crm.create_pipeline(&NewPipeline::new("Sales", "EUR", stages())),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        crm.pipeline("Nope"),
        Err(Error::NotFound { entity: "pipeline" })
    ));
}

#[test]
fn deals_default_to_the_first_open_stage_and_the_pipelines_currency() {
    let crm = crm();
    let acme = crm
        .create_customer(NewCustomer {
            kind: CustomerKind::Organization,
            name: Some("Acme".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let deal = crm
        .create_deal(&NewDeal {
            owner: Some("maja".into()),
            expected_close: NaiveDate::from_ymd_opt(2030, 1, 31),
            customer_id: Some(ana.id),
            organization_id: Some(acme.id),
            ..NewDeal::new("Sales", "Solar roof", 1_250_000)
        })
        .unwrap();
    assert_eq!(deal.stage, "Lead");
    assert_eq!(deal.currency, "EUR");
    assert_eq!(deal.probability, 10);
    assert_eq!(deal.probability_override, None);
    assert_eq!(deal.status, DealStatus::Open);
    assert_eq!(crm.get_deal(deal.id).unwrap(), deal);
    let history = crm.deal_history(deal.id).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].from.as_deref(), history[0].to.as_str()),
        (None, "Lead")
    );

    let for_acme = crm
        .deals(&DealQuery {
            customer_id: Some(acme.id),
            ..DealQuery::default()
        })
        .unwrap();
    assert_eq!(for_acme.items, vec![deal.clone()]);
}

#[test]
fn bad_deals_are_refused_and_nothing_is_stored() {
    let crm = crm();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let before = last_seq(&crm);
    let usd = NewDeal {
        currency: Some("USD".into()),
        ..NewDeal::new("Sales", "Roof", 100)
    };
    let e = crm.create_deal(&usd).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid currency: the deal is in USD but pipeline 'Sales' is in EUR"
    );
    let typo = NewDeal {
        stage: Some("Proposl".into()),
        ..NewDeal::new("Sales", "Roof", 100)
    };
    let e = crm.create_deal(&typo).unwrap_err();
    assert!(e.to_string().contains("did you mean 'Proposal'"), "{e}");
    let person_as_org = NewDeal {
        organization_id: Some(ana.id),
        ..NewDeal::new("Sales", "Roof", 100)
    };
    assert_eq!(
        field(crm.create_deal(&person_as_org).unwrap_err()),
        "organization_id"
    );
    assert_eq!(
        field(
            crm.create_deal(&NewDeal::new("Sales", "Roof", -1))
                .unwrap_err()
        ),
        "value_minor"
    );
    assert_eq!(
        field(
            crm.create_deal(&NewDeal {
                probability: Some(101),
                ..NewDeal::new("Sales", "Roof", 1)
            })
            .unwrap_err()
        ),
        "probability"
    );
    assert!(matches!(
        crm.create_deal(&NewDeal::new("Nope", "Roof", 1)),
        Err(Error::NotFound { entity: "pipeline" })
    ));
    assert!(crm.deals(&DealQuery::default()).unwrap().items.is_empty());
    assert_eq!(last_seq(&crm), before);
}

#[test]
fn moving_deals_closes_reopens_and_keeps_history() {
    let crm = crm();
    let deal = crm
        .create_deal(&NewDeal::new("Sales", "Roof", 1_000))
        .unwrap();
    let deal = crm.move_deal(deal.id, "Proposal", None).unwrap();
    assert_eq!((deal.probability, deal.status), (60, DealStatus::Open));

    // A lost deal needs a reason; refusing it changes nothing.
    let before = last_seq(&crm);
    assert_eq!(
        field(crm.move_deal(deal.id, "Lost", None).unwrap_err()),
        "reason"
    );
    assert_eq!(
        field(crm.move_deal(deal.id, "Lost", Some("  ")).unwrap_err()),
        "reason"
    );
    assert_eq!(last_seq(&crm), before);
    assert_eq!(crm.get_deal(deal.id).unwrap(), deal);

    let lost = crm.move_deal(deal.id, "Lost", Some("price")).unwrap();
    assert_eq!(lost.status, DealStatus::Lost);
    assert_eq!(lost.probability, 0);
    assert_eq!(lost.close_reason.as_deref(), Some("price"));
    assert!(lost.closed_at.is_some());
    assert_eq!(crm.get_deal(deal.id).unwrap(), lost);

    let reopened = crm
        .move_deal(deal.id, "Qualified", Some("came back"))
        .unwrap();
    assert_eq!(reopened.status, DealStatus::Open);
    assert_eq!((reopened.close_reason, reopened.closed_at), (None, None));

    let won = crm.move_deal(deal.id, "Won", None).unwrap();
    assert_eq!((won.status, won.probability), (DealStatus::Won, 100));
    // Moving to the same stage changes nothing.
    let seq = last_seq(&crm);
    assert_eq!(crm.move_deal(deal.id, "Won", None).unwrap(), won);
    assert_eq!(last_seq(&crm), seq);

    let history = crm.deal_history(deal.id).unwrap();
    let steps: Vec<(Option<&str>, &str, Option<&str>)> = history
        .iter()
        .map(|h| (h.from.as_deref(), h.to.as_str(), h.reason.as_deref()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (None, "Lead", None),
            (Some("Lead"), "Proposal", None),
            (Some("Proposal"), "Lost", Some("price")),
            (Some("Lost"), "Qualified", Some("came back")),
            (Some("Qualified"), "Won", None),
        ]
    );
    assert!(history.iter().all(|h| h.rule.is_none()));

    let e = crm.move_deal(deal.id, "lots", None).unwrap_err();
    assert!(e.to_string().contains("did you mean 'Lost'"), "{e}");
}

#[test]
fn updates_are_logged_with_their_fields() {
    let crm = crm();
    let deal = crm
        .create_deal(&NewDeal::new("Sales", "Roof", 1_000))
        .unwrap();
    let updated = crm
        .update_deal(
            deal.id,
            &DealPatch {
                title: Some("Roof".into()),
                value_minor: Some(2_000),
                probability: Some(Some(45)),
                owner: Some(Some("maja".into())),
                ..DealPatch::default()
            },
        )
        .unwrap();
    assert_eq!((updated.value_minor, updated.probability), (2_000, 45));
    let last = crm.changes_since(0, 10_000).unwrap().pop().unwrap();
    assert_eq!(
        (last.entity, last.op),
        (EntityKind::Deal, ChangeOp::Updated)
    );
    assert_eq!(last.fields, vec!["value_minor", "owner", "probability"]);

    let back = crm
        .update_deal(
            deal.id,
            &DealPatch {
                probability: Some(None),
                ..DealPatch::default()
            },
        )
        .unwrap();
    assert_eq!(back.probability, 10);
    assert_eq!(crm.get_deal(deal.id).unwrap(), back);
}

#[test]
fn the_forecast_weighs_open_deals_exactly() {
    let crm = crm();
    let close = |d| NaiveDate::from_ymd_opt(2030, 3, d);
    for (title, value, stage, prob, owner, day) in [
        ("a", 1_001, "Lead", None, "maja", 1),       // 100.1 -> 100
        ("b", 1_005, "Lead", None, "maja", 10),      // 100.5 -> 101
        ("c", 999, "Proposal", Some(33), "rok", 20), // 329.67 -> 330
        ("d", 5_000, "Won", None, "rok", 5),
    ] {
        crm.create_deal(&NewDeal {
            stage: Some(stage.into()),
            probability: prob,
            owner: Some(owner.into()),
            expected_close: close(day),
            ..NewDeal::new("Sales", title, value)
        })
        .unwrap();
    }
    let f = crm.forecast(&ForecastQuery::new("Sales")).unwrap();
    assert_eq!((f.pipeline.as_str(), f.currency.as_str()), ("Sales", "EUR"));
    let stages: Vec<(&str, u64, i64, i64)> = f
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.deals, s.value_minor, s.weighted_minor))
        .collect();
    assert_eq!(
        stages,
        vec![
            ("Lead", 2, 2_006, 201),
            ("Qualified", 0, 0, 0),
            ("Proposal", 1, 999, 330)
        ]
    );
    assert_eq!((f.total_minor, f.weighted_minor), (3_005, 531));

    let maja = crm
        .forecast(&ForecastQuery {
            owner: Some("maja".into()),
            ..ForecastQuery::new("Sales")
        })
        .unwrap();
    assert_eq!(maja.total_minor, 2_006);
    let early = crm
        .forecast(&ForecastQuery {
            close_from: close(1),
            close_to: close(10),
            ..ForecastQuery::new("Sales")
        })
        .unwrap();
    assert_eq!(early.total_minor, 2_006);
    assert_eq!(
        field(
            crm.forecast(&ForecastQuery {
                close_from: close(10),
                close_to: close(1),
                ..ForecastQuery::new("Sales")
            })
            .unwrap_err()
        ),
        "close_from"
    );
}

#[test]
fn listing_deals_filters_and_pages() {
    let crm = crm();
    crm.create_pipeline(&NewPipeline::new(
        "Renewals",
        "USD",
        vec![PipelineStage::open("Due", 80)],
    ))
    .unwrap();
    for i in 0..5 {
        crm.create_deal(&NewDeal {
            owner: Some(if i % 2 == 0 { "maja" } else { "rok" }.into()),
            ..NewDeal::new("Sales", format!("deal {i}"), 100)
        })
        .unwrap();
    }
    crm.create_deal(&NewDeal::new("Renewals", "renewal", 100))
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = crm
            .deals(&DealQuery {
                pipeline: Some("Sales".into()),
                limit: 2,
                cursor: cursor.clone(),
                ..DealQuery::default()
            })
            .unwrap();
        seen.extend(page.items.into_iter().map(|d| d.title));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["deal 0", "deal 1", "deal 2", "deal 3", "deal 4"]);
    let maja = crm
        .deals(&DealQuery {
            owner: Some("maja".into()),
            ..DealQuery::default()
        })
        .unwrap();
    assert_eq!(maja.items.len(), 3);
    let in_lead = crm
        .deals(&DealQuery {
            pipeline: Some("Sales".into()),
            stage: Some("Lead".into()),
            status: Some(DealStatus::Open),
            ..DealQuery::default()
        })
        .unwrap();
    assert_eq!(in_lead.items.len(), 5);
    assert_eq!(
        field(
            crm.deals(&DealQuery {
                stage: Some("Lead".into()),
                ..DealQuery::default()
            })
            .unwrap_err()
        ),
        "stage"
    );
}

#[test]
fn stages_holding_deals_are_kept() {
    let crm = crm();
    let deal = crm
        .create_deal(&NewDeal {
            stage: Some("Qualified".into()),
            ..NewDeal::new("Sales", "Roof", 1_000)
        })
        .unwrap();
    let mut without = stages();
    without.remove(1);
    let e = crm.update_pipeline_stages("Sales", &without).unwrap_err();
    assert!(matches!(&e, Error::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("'Qualified' holds 1 deal"), "{e}");
    let mut closed = stages();
    closed[1] = PipelineStage::lost("Qualified");
    assert!(matches!(
        crm.update_pipeline_stages("Sales", &closed),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(crm.pipeline("Sales").unwrap().stages, stages());

    // Re-weighing and adding stages is fine; deals follow the new default.
    let mut reweighed = stages();
    reweighed[1].probability = 40;
    reweighed.insert(3, PipelineStage::open("Negotiation", 80));
    let p = crm.update_pipeline_stages("Sales", &reweighed).unwrap();
    assert_eq!(p.stages.len(), 6);
    assert_eq!(crm.get_deal(deal.id).unwrap().probability, 40);

    assert!(matches!(
        crm.delete_pipeline("Sales"),
        Err(Error::Conflict { .. })
    ));
    crm.delete_deal(deal.id).unwrap();
    assert!(matches!(
        crm.get_deal(deal.id),
        Err(Error::NotFound { entity: "deal" })
    ));
    crm.delete_pipeline("Sales").unwrap();
    assert!(crm.pipelines().unwrap().is_empty());
}

#[test]
fn tasks_link_complete_and_go_overdue() {
    let crm = crm();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let deal = crm
        .create_deal(&NewDeal::new("Sales", "Roof", 1_000))
        .unwrap();
    let now = Utc::now();
    let mut ids = Vec::new();
    for (i, days) in [3_i64, 1, 2, -1].into_iter().enumerate() {
        let t = crm
            .create_task(&NewTask {
                owner: Some(if i == 2 { "rok" } else { "maja" }.into()),
                due_at: Some(now - Duration::days(days)),
                customer_id: Some(ana.id),
                deal_id: (i == 0).then_some(deal.id),
                ..NewTask::new(format!("task {i}"))
            })
            .unwrap();
        assert_eq!((t.status, t.priority), (TaskStatus::Open, Priority::Normal));
        ids.push(t.id);
    }
    let overdue = crm.overdue_tasks(Some(now), None, 100, None).unwrap();
    let titles: Vec<&str> = overdue.items.iter().map(|t| t.title.as_str()).collect();
    assert_eq!(titles, ["task 0", "task 2", "task 1"]);
    // Pages of one.
    let first = crm.overdue_tasks(Some(now), None, 1, None).unwrap();
    let second = crm
        .overdue_tasks(Some(now), None, 1, first.next_cursor.as_deref())
        .unwrap();
    assert_eq!(second.items[0].title, "task 2");
    let maja = crm
        .overdue_tasks(Some(now), Some("maja"), 100, None)
        .unwrap();
    assert_eq!(maja.items.len(), 2);

    let done = crm.complete_task(ids[0]).unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert!(done.completed_at.is_some());
    assert!(matches!(
        crm.cancel_task(ids[0]),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(crm.reopen_task(ids[0]).unwrap().completed_at, None);
    crm.cancel_task(ids[1]).unwrap();
    assert_eq!(
        crm.overdue_tasks(Some(now), None, 100, None)
            .unwrap()
            .items
            .len(),
        2
    );

    let of_deal = crm
        .tasks(&TaskQuery {
            deal_id: Some(deal.id),
            ..TaskQuery::default()
        })
        .unwrap();
    assert_eq!(of_deal.items.len(), 1);
    let open = crm
        .tasks(&TaskQuery {
            customer_id: Some(ana.id),
            status: Some(TaskStatus::Open),
            ..TaskQuery::default()
        })
        .unwrap();
    assert_eq!(open.items.len(), 3);

    let patched = crm
        .update_task(
            ids[2],
            &TaskPatch {
                priority: Some(Priority::Urgent),
                due_at: Some(None),
                deal_id: Some(Some(deal.id)),
                ..TaskPatch::default()
            },
        )
        .unwrap();
    assert_eq!(patched.priority, Priority::Urgent);
    assert_eq!(crm.get_task(ids[2]).unwrap(), patched);
    let last = crm.changes_since(0, 10_000).unwrap().pop().unwrap();
    assert_eq!(last.fields, vec!["due_at", "priority", "deal_id"]);

    // Deleting the deal deletes its tasks.
    crm.delete_deal(deal.id).unwrap();
    assert!(matches!(
        crm.get_task(ids[0]),
        Err(Error::NotFound { entity: "task" })
    ));
}

#[test]
fn bad_tasks_are_refused_and_nothing_is_stored() {
    let crm = crm();
    let before = last_seq(&crm);
    assert_eq!(
        field(crm.create_task(&NewTask::new(" ")).unwrap_err()),
        "title"
    );
    let ghost = crm
        .create_customer(NewCustomer {
            name: Some("Ghost".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    crm.delete_customer(ghost.id).unwrap();
    let before_task = last_seq(&crm);
    assert!(before_task > before);
    assert_eq!(
        field(
            crm.create_task(&NewTask {
                customer_id: Some(ghost.id),
                ..NewTask::new("Call")
            })
            .unwrap_err()
        ),
        "customer_id"
    );
    assert!(crm.tasks(&TaskQuery::default()).unwrap().items.is_empty());
    assert_eq!(last_seq(&crm), before_task);
    assert_eq!(
        field(crm.overdue_tasks(None, None, 0, None).unwrap_err()),
        "limit"
    );
}

#[test]
fn deleting_a_customer_logs_its_tasks_going_and_its_deals_losing_the_link() {
    let crm = crm();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let deal = crm
        .create_deal(&NewDeal {
            pipeline: "Sales".into(),
            title: "Order".into(),
            value_minor: 1_000,
            customer_id: Some(ana.id),
            ..NewDeal::default()
        })
        .unwrap();
    let task = crm
        .create_task(&NewTask {
            customer_id: Some(ana.id),
            ..NewTask::new("Call Ana")
        })
        .unwrap();
    let before = last_seq(&crm);
    crm.delete_customer(ana.id).unwrap();
    let log = crm.changes_since(before, 100).unwrap();
    assert!(log.iter().any(|c| c.entity == EntityKind::Task
        && c.entity_id == task.id.to_string()
        && c.op == ChangeOp::Deleted));
    assert!(log.iter().any(|c| c.entity == EntityKind::Deal
        && c.entity_id == deal.id.to_string()
        && c.fields == ["customer_id"]));
    assert_eq!(crm.get_deal(deal.id).unwrap().customer_id, None);
    assert!(matches!(crm.get_task(task.id), Err(Error::NotFound { .. })));
}

#[cfg(feature = "arrow")]
#[test]
fn deals_and_tasks_read_as_arrow_tables() {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt8Type};
    use crm_core::arrow::{ReadOptions, Table};

    let crm = crm();
    let ana = crm
        .create_customer(NewCustomer {
            name: Some("Ana".into()),
            ..NewCustomer::default()
        })
        .unwrap();
    let deal = crm
        .create_deal(&NewDeal {
            customer_id: Some(ana.id),
            expected_close: NaiveDate::from_ymd_opt(2030, 1, 31),
            ..NewDeal::new("Sales", "Roof", 1_000)
        })
        .unwrap();
    crm.create_deal(&NewDeal::new("Sales", "Shed", 50)).unwrap();
    crm.move_deal(deal.id, "Proposal", None).unwrap();
    crm.create_task(&NewTask {
        deal_id: Some(deal.id),
        ..NewTask::new("Call")
    })
    .unwrap();

    let batches: Vec<_> = crm
        .read_table(Table::Deals, &ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 2);
    let b = &batches[0];
    let probability = b
        .column_by_name("probability")
        .unwrap()
        .as_primitive::<UInt8Type>();
    assert_eq!((probability.value(0), probability.value(1)), (60, 10));
    let value = b
        .column_by_name("value_minor")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(value.value(0), 1_000);
    assert!(b.column_by_name("customer_id").unwrap().is_null(1));

    // A customer filter keeps the deals of the matching customers.
    let options = ReadOptions {
        filter: Some(r#"name = "Ana""#.into()),
        ..ReadOptions::default()
    };
    let filtered: usize = crm
        .read_table(Table::Deals, &options)
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(filtered, 1);

    let tasks: usize = crm
        .read_table("tasks".parse().unwrap(), &ReadOptions::default())
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(tasks, 1);
}
