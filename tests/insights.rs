//! Analytics over the store: stored scores agree with the pure models on the
//! same purchases, are usable in the filter language, and bad input changes
//! nothing; satisfaction (NPS, CSAT) and retention cohorts.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm_core::analytics::simulate::{self, PurchaseSimulation};
use crm_core::analytics::{
    BgNbd, ClvOptions, GammaGamma, SummaryOptions, TimeUnit, Transaction, cohorts, rfm, summary,
};
use crm_core::import::ImportOptions;
use crm_core::{
    CohortQuery, Crm, CustomerId, CustomerRef, Error, InteractionKind, NewCustomer, NewInteraction,
    Period, SatisfactionQuery, ScoreOptions,
};

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 30, 23, 0, 0).unwrap()
}

fn customer(crm: &Crm, name: &str) -> CustomerId {
    crm.create_customer(NewCustomer {
        name: Some(name.into()),
        ..Default::default()
    })
    .unwrap()
    .id
}

fn purchase(
    id: CustomerId,
    at: DateTime<Utc>,
    amount_minor: i64,
    currency: &str,
) -> NewInteraction {
    NewInteraction {
        occurred_at: Some(at),
        amount_minor: Some(amount_minor),
        currency: Some(currency.into()),
        ..NewInteraction::new(CustomerRef::Id(id), InteractionKind::Purchase)
    }
}

/// A CRM holding a seeded purchase log of `n` customers (one CRM customer
/// per simulated one, created in key order) plus `idle` customers without
/// purchases; returns the log too.
fn simulated(n: u64, idle: usize) -> (Crm, Vec<CustomerId>, Vec<Transaction<u64>>) {
    let crm = Crm::open_in_memory().unwrap();
    let log = simulate::purchases(
        &BgNbd::new(0.4, 12.0, 0.7, 2.5).unwrap(),
        &GammaGamma::new(6.0, 4.0, 1_500.0).unwrap(),
        &PurchaseSimulation {
            customers: n,
            first_purchase_from: end() - Duration::days(540),
            observation_end: end(),
            unit: TimeUnit::Days,
            seed: 11,
        },
    )
    .unwrap();
    let ids: Vec<CustomerId> = (0..n).map(|i| customer(&crm, &format!("C{i}"))).collect();
    for i in 0..idle {
        customer(&crm, &format!("idle {i}"));
    }
    let rows = log
        .iter()
        .map(|t| purchase(ids[t.customer as usize], t.at, t.amount_minor, "EUR"));
    crm.import_interactions(rows, &ImportOptions::default(), None)
        .unwrap();
    (crm, ids, log)
}

fn options() -> ScoreOptions {
    ScoreOptions {
        observation_end: Some(end()),
        ..ScoreOptions::default()
    }
}

#[test]
fn stored_scores_equal_the_pure_models_on_the_same_purchases() {
    let (crm, ids, log) = simulated(1_500, 7);
    let run = crm.compute_scores(&options()).unwrap();

    // The same pipeline on the log itself, as a data scientist would run it.
    let s = summary(&log, &SummaryOptions::new(TimeUnit::Days, end())).unwrap();
    let bg = BgNbd::fit(&s.frequency, &s.recency, &s.t).unwrap();
    let monetary: Vec<f64> = s.monetary_value.iter().map(|m| m / 100.0).collect();
    let gg = GammaGamma::fit(&s.frequency, &monetary).unwrap();
    let p_alive = bg.p_alive(&s.frequency, &s.recency, &s.t).unwrap();
    let expected = bg
        .expected_purchases(90.0, &s.frequency, &s.recency, &s.t)
        .unwrap();
    let value = gg.expected_average_value(&s.frequency, &monetary).unwrap();
    let clv = gg
        .clv(
            &bg,
            &s.frequency,
            &s.recency,
            &s.t,
            &monetary,
            &ClvOptions::new(TimeUnit::Days),
        )
        .unwrap();
    let scores = s.rfm().unwrap();

    assert_eq!(run.customers, s.len() as u64);
    assert_eq!(run.purchases, log.len() as u64);
    assert_eq!(run.options.currency.as_deref(), Some("EUR"));
    assert_eq!((run.bgnbd.r, run.bgnbd.alpha), (bg.r, bg.alpha));
    assert_eq!((run.bgnbd.a, run.bgnbd.b), (bg.a, bg.b));
    assert_eq!(run.gamma_gamma.p, gg.p);
    assert_eq!(crm.score_run().unwrap().as_ref(), Some(&run));

    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
    for (i, &key) in s.customers.iter().enumerate() {
        let got = crm.customer_scores(ids[key as usize]).unwrap().unwrap();
        assert_eq!(
            (got.frequency, got.recency, got.t),
            (s.frequency[i], s.recency[i], s.t[i])
        );
        assert_eq!(got.total_minor, s.total_minor[i]);
        assert!(close(got.monetary_value, monetary[i]));
        assert!(close(got.p_alive, p_alive[i]), "p_alive of {i}");
        assert!(close(got.expected_purchases, expected[i]));
        assert!(close(got.expected_value, value[i]));
        assert!(close(got.clv, clv[i]), "clv of {i}: {} {}", got.clv, clv[i]);
        assert_eq!(
            (got.rfm_r, got.rfm_f, got.rfm_m),
            (scores.recency[i], scores.frequency[i], scores.monetary[i])
        );
        assert_eq!(
            got.rfm_segment,
            rfm::Segment::from_scores(got.rfm_r, got.rfm_f)
        );
    }
}

#[test]
fn scores_are_fields_of_the_filter_language() {
    let (crm, ids, log) = simulated(800, 5);
    crm.compute_scores(&options()).unwrap();
    let s = summary(&log, &SummaryOptions::new(TimeUnit::Days, end())).unwrap();
    let bg = BgNbd::fit(&s.frequency, &s.recency, &s.t).unwrap();
    let p_alive = bg.p_alive(&s.frequency, &s.recency, &s.t).unwrap();
    let scores = s.rfm().unwrap();

    let low = p_alive.iter().filter(|&&p| p < 0.3).count() as u64;
    assert!(low > 0 && low < s.len() as u64, "the data has both kinds");
    assert_eq!(crm.count_matching("p_alive < 0.3").unwrap(), low);
    // Customers without purchases have no score: `not` of it is true.
    assert_eq!(
        crm.count_matching("not p_alive < 0.3").unwrap(),
        800 + 5 - low
    );
    assert_eq!(
        crm.count_matching("p_alive is null").unwrap(),
        800 + 5 - s.len() as u64
    );
    let recent = scores.recency.iter().filter(|&&r| r >= 4).count() as u64;
    assert_eq!(crm.count_matching("rfm.r >= 4").unwrap(), recent);
    let champions = scores
        .segments()
        .iter()
        .filter(|&&g| g == rfm::Segment::Champions)
        .count() as u64;
    assert_eq!(
        crm.count_matching(r#"rfm.segment = "champions""#).unwrap(),
        champions
    );
    assert!(
        crm.count_matching("clv > 0 and expected_purchases >= 0 and expected_value > 0")
            .unwrap()
            > 0
    );

    // The one-customer shape answers the same.
    let key = s.customers[p_alive.iter().position(|&p| p < 0.3).unwrap()];
    assert!(
        crm.customer_matches(ids[key as usize], "p_alive < 0.3")
            .unwrap()
    );

    let err = crm.count_matching("rfm.rr >= 4").unwrap_err();
    assert!(matches!(err, Error::Parse { .. }));
    assert!(err.to_string().contains("did you mean 'rfm.r'"), "{err}");
    let err = crm.count_matching("palive < 0.3").unwrap_err();
    assert!(err.to_string().contains("did you mean 'p_alive'"), "{err}");
    assert!(crm.count_matching("rfm > 3").is_err());
}

#[test]
fn a_run_that_fails_changes_nothing() {
    let crm = Crm::open_in_memory().unwrap();
    // No purchases at all.
    let err = crm.compute_scores(&options()).unwrap_err();
    assert!(
        matches!(err, Error::Validation { ref field, .. } if field == "purchases"),
        "{err}"
    );
    assert!(crm.score_run().unwrap().is_none());

    let (crm, ids, _) = simulated(400, 0);
    let first = crm.compute_scores(&options()).unwrap();
    let before = crm.customer_scores(ids[0]).unwrap();

    for (bad, field) in [
        (
            ScoreOptions {
                horizon_days: 0,
                ..options()
            },
            "horizon_days",
        ),
        (
            ScoreOptions {
                clv_months: 500,
                ..options()
            },
            "clv_months",
        ),
        (
            ScoreOptions {
                discount_rate: f64::NAN,
                ..options()
            },
            "discount_rate",
        ),
        (
            ScoreOptions {
                penalizer: -1.0,
                ..options()
            },
            "penalizer",
        ),
        (
            ScoreOptions {
                currency: Some("EURO".into()),
                ..options()
            },
            "currency",
        ),
        // Nothing in that currency: no purchases to fit.
        (
            ScoreOptions {
                currency: Some("JPY".into()),
                ..options()
            },
            "purchases",
        ),
        // Before the first purchase: nobody to score.
        (
            ScoreOptions {
                observation_end: Some(end() - Duration::days(3_000)),
                ..options()
            },
            "purchases",
        ),
    ] {
        let err = crm.compute_scores(&bad).unwrap_err();
        assert!(
            matches!(err, Error::Validation { field: ref f, .. } if f == field),
            "{field}: {err}"
        );
        assert_eq!(crm.score_run().unwrap().as_ref(), Some(&first));
        assert_eq!(crm.customer_scores(ids[0]).unwrap(), before);
    }
}

#[test]
fn refunds_other_currencies_and_later_purchases_are_left_out() {
    let (crm, ids, log) = simulated(300, 0);
    let plain = crm.compute_scores(&options()).unwrap();
    let extra = [
        purchase(ids[0], end() - Duration::days(2), -500, "EUR"), // a refund
        purchase(ids[1], end() - Duration::days(2), 900, "USD"),
        purchase(ids[2], end() + Duration::days(2), 900, "EUR"), // after the end
    ];
    for e in extra {
        crm.log_interaction(e).unwrap();
    }
    // Two currencies now: the caller must choose.
    let err = crm.compute_scores(&options()).unwrap_err();
    assert!(err.to_string().contains("EUR, USD"), "{err}");
    let run = crm
        .compute_scores(&ScoreOptions {
            currency: Some("eur".into()),
            ..options()
        })
        .unwrap();
    assert_eq!(run.options.currency.as_deref(), Some("EUR"));
    assert_eq!((run.skipped_refunds, run.skipped_other_currency), (1, 1));
    assert_eq!(run.purchases, log.len() as u64 + 3);
    assert_eq!(
        run.bgnbd, plain.bgnbd,
        "the extra rows change no customer's summary"
    );
}

#[test]
fn scores_go_with_their_customer_and_unknown_customers_are_not_found() {
    let (crm, ids, log) = simulated(300, 0);
    crm.compute_scores(&options()).unwrap();
    let key = log[0].customer as usize;
    assert!(crm.customer_scores(ids[key]).unwrap().is_some());
    crm.delete_customer(ids[key]).unwrap();
    assert!(matches!(
        crm.customer_scores(ids[key]),
        Err(Error::NotFound { entity: "customer" })
    ));
    let idle = customer(&crm, "no purchases");
    assert_eq!(crm.customer_scores(idle).unwrap(), None);
    // Scores of the deleted customer are gone with it.
    let scored = crm.count_matching("p_alive is not null").unwrap();
    assert_eq!(scored, crm.score_run().unwrap().unwrap().customers - 1);
}

#[test]
fn weekly_scores_use_weeks_for_times_and_the_horizon() {
    let (crm, ids, log) = simulated(500, 0);
    let run = crm
        .compute_scores(&ScoreOptions {
            unit: TimeUnit::Weeks,
            horizon_days: 28,
            ..options()
        })
        .unwrap();
    let s = summary(&log, &SummaryOptions::new(TimeUnit::Weeks, end())).unwrap();
    let bg = BgNbd::fit(&s.frequency, &s.recency, &s.t).unwrap();
    assert_eq!(run.bgnbd.r, bg.r);
    let expected = bg
        .expected_purchases(4.0, &s.frequency, &s.recency, &s.t)
        .unwrap();
    let got = crm
        .customer_scores(ids[s.customers[0] as usize])
        .unwrap()
        .unwrap();
    assert_eq!(got.t, s.t[0]);
    assert!((got.expected_purchases - expected[0]).abs() < 1e-12);
}

fn survey(crm: &Crm, id: CustomerId, at: DateTime<Utc>, score: i32, subject: &str) {
    crm.log_interaction(NewInteraction {
        occurred_at: Some(at),
        score: Some(score),
        subject: Some(subject.into()),
        ..NewInteraction::new(CustomerRef::Id(id), InteractionKind::SurveyResponse)
    })
    .unwrap();
}

#[test]
fn satisfaction_gives_nps_and_csat_per_period_and_segment() {
    let crm = Crm::open_in_memory().unwrap();
    let vip = crm
        .create_customer(NewCustomer {
            name: Some("V".into()),
            tags: vec!["vip".into()],
            ..Default::default()
        })
        .unwrap()
        .id;
    let other = customer(&crm, "O");
    let jan = |d| Utc.with_ymd_and_hms(2025, 1, d, 12, 0, 0).unwrap();
    let mar = |d| Utc.with_ymd_and_hms(2025, 3, d, 12, 0, 0).unwrap();
    // January: 10, 9, 8, 2 → 2 promoters, 1 passive, 1 detractor.
    for (who, score) in [(vip, 10), (vip, 9), (other, 8), (other, 2)] {
        survey(&crm, who, jan(5), score, "nps");
    }
    // March: 6 and 0 from the VIP, and a CSAT survey.
    survey(&crm, vip, mar(1), 6, "nps");
    survey(&crm, vip, mar(31), 0, "nps");
    survey(&crm, other, mar(2), 9, "csat");

    let q = SatisfactionQuery {
        subject: Some("nps".into()),
        ..SatisfactionQuery::default()
    };
    let months = crm.satisfaction(&q, None).unwrap();
    assert_eq!(months.len(), 2, "February had no answers");
    let (j, m) = (&months[0], &months[1]);
    assert_eq!(j.period_start, Some(jan(1).date_naive()));
    assert_eq!(
        (j.responses, j.promoters, j.passives, j.detractors),
        (4, 2, 1, 1)
    );
    assert_eq!(
        (j.nps, j.satisfied, j.csat, j.mean_score),
        (25.0, 3, 75.0, 7.25)
    );
    assert_eq!(m.period_start, Some(mar(1).date_naive()));
    assert_eq!((m.responses, m.nps, m.csat), (2, -100.0, 0.0));

    let vips = crm
        .satisfaction(
            &SatisfactionQuery {
                period: Period::All,
                ..q.clone()
            },
            Some(r#""vip" in tags"#.into()),
        )
        .unwrap();
    assert_eq!(vips.len(), 1);
    assert_eq!((vips[0].period_start, vips[0].responses), (None, 4));
    assert_eq!(vips[0].nps, 0.0); // 2 promoters, 2 detractors

    let quarters = crm
        .satisfaction(
            &SatisfactionQuery {
                period: Period::Quarter,
                satisfied_from: 9,
                ..SatisfactionQuery::default()
            },
            None,
        )
        .unwrap();
    assert_eq!(quarters.len(), 1);
    assert_eq!((quarters[0].responses, quarters[0].satisfied), (7, 3));

    let ranged = crm
        .satisfaction(
            &SatisfactionQuery {
                from: Some(mar(1)),
                to: Some(mar(31)),
                period: Period::Week,
                ..q.clone()
            },
            None,
        )
        .unwrap();
    assert_eq!(ranged.len(), 1, "the end is exclusive");
    assert_eq!(
        ranged[0].period_start,
        Some(
            Utc.with_ymd_and_hms(2025, 2, 24, 0, 0, 0)
                .unwrap()
                .date_naive()
        )
    );

    for (bad, field) in [
        (
            SatisfactionQuery {
                satisfied_from: 11,
                ..q.clone()
            },
            "satisfied_from",
        ),
        (
            SatisfactionQuery {
                from: Some(mar(2)),
                to: Some(jan(1)),
                ..q.clone()
            },
            "from",
        ),
    ] {
        assert!(matches!(
            crm.satisfaction(&bad, None),
            Err(Error::Validation { field: ref f, .. }) if f == field
        ));
    }
    assert!(matches!(
        crm.satisfaction(&q, Some("vip in tagz".into())),
        Err(Error::Parse { .. })
    ));
    assert!(
        crm.satisfaction(
            &SatisfactionQuery {
                subject: Some("none".into()),
                ..q
            },
            None
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn cohorts_from_the_store_equal_the_pure_function_and_follow_a_segment() {
    let (crm, ids, log) = simulated(600, 3);
    let query = CohortQuery {
        observation_end: Some(end()),
        ..CohortQuery::default()
    };
    let stored = crm.cohort_retention(&query, None).unwrap();
    assert_eq!(stored, cohorts::retention(&log, end()).unwrap());
    assert!(stored.cohorts.len() >= 18);

    // A segment: the first 100 customers, tagged.
    for id in &ids[..100] {
        crm.update_customer(
            *id,
            &crm_core::CustomerPatch {
                tags: Some(vec!["early".into()]),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let early: Vec<Transaction<u64>> = log.iter().filter(|t| t.customer < 100).copied().collect();
    assert_eq!(
        crm.cohort_retention(&query, Some(r#""early" in tags"#.into()))
            .unwrap(),
        cohorts::retention(&early, end()).unwrap()
    );
}
