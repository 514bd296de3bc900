//! The analytics layer against independently computed references: the
//! vectors in `crm-core/tests/data/analytics/` (made by `make_vectors.py`
//! there: mpmath at 40 digits, checked by quadrature; scipy maximum
//! likelihood; `lifetimes`), seeded simulations from known parameters,
//! closed forms at edge cases, invariants (proptest) and input validation.
//!
//! `cargo test -p crm-core --test analytics -- --nocapture` prints the
//! agreement reached on each reference.

use chrono::{DateTime, Duration, TimeZone, Utc};
use crm_core::Error;
use crm_core::analytics::rfm::{self, Segment};
use crm_core::analytics::{
    BgNbd, ClvOptions, FitOptions, GammaGamma, SummaryOptions, TimeUnit, Transaction, cohorts,
    simulate, summary,
};
use proptest::prelude::*;
use serde_json::Value;

fn data_path(name: &str) -> String {
    format!("{}/tests/data/analytics/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(data_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The largest relative difference (absolute below `floor`).
fn max_rel(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(g, w)| {
            if g == w {
                0.0
            } else {
                (g - w).abs() / w.abs().max(floor)
            }
        })
        .fold(0.0, f64::max)
}

fn agree(what: &str, got: &[f64], want: &[f64], floor: f64, tolerance: f64) {
    let err = max_rel(got, want, floor);
    eprintln!("{what}: max relative difference {err:.1e}");
    assert!(
        err <= tolerance,
        "{what}: {err:e} > {tolerance:e}\n got {got:?}\nwant {want:?}"
    );
}

/// The CDNOW sample: x, tₓ, T (weeks), mean repeat spend.
fn cdnow() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(data_path("cdnow.csv")).unwrap();
    let (mut x, mut tx, mut t, mut m) = (vec![], vec![], vec![], vec![]);
    for line in text.lines().skip(1) {
        let cols: Vec<f64> = line
            .split(',')
            .skip(1)
            .map(|c| c.parse().unwrap())
            .collect();
        x.push(cols[0]);
        tx.push(cols[1]);
        t.push(cols[2]);
        m.push(cols[3]);
    }
    (x, tx, t, m)
}

fn validation_field<T: std::fmt::Debug>(r: crm_core::Result<T>) -> String {
    match r {
        Err(Error::Validation { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ------------------------------------------------------------ fits on CDNOW

#[test]
fn bgnbd_fit_on_cdnow_matches_the_independent_mle_and_the_paper() {
    let (x, tx, t, _) = cdnow();
    let model = BgNbd::fit(&x, &tx, &t).unwrap();
    let reference = load("cdnow_fit.json");
    let bg = &reference["bgnbd"];
    let got = [model.r, model.alpha, model.a, model.b];
    agree(
        "BG/NBD CDNOW estimates vs scipy",
        &got,
        &floats(&bg["params"]),
        0.0,
        1e-7,
    );
    let ll = model.log_likelihood.unwrap();
    agree(
        "BG/NBD CDNOW log-likelihood vs mpmath",
        &[ll],
        &[bg["log_likelihood"].as_f64().unwrap()],
        0.0,
        1e-12,
    );
    let se = model.standard_errors.unwrap();
    agree(
        "BG/NBD CDNOW standard errors vs scipy",
        &se,
        &floats(&bg["standard_errors"]),
        0.0,
        1e-5,
    );
    agree(
        "BG/NBD CDNOW estimates vs lifetimes",
        &got,
        &floats(&bg["lifetimes"]["params"]),
        0.0,
        1e-5,
    );
    agree(
        "BG/NBD CDNOW standard errors vs lifetimes",
        &se,
        &floats(&bg["lifetimes"]["standard_errors"]),
        0.0,
        1e-5,
    );
    // Fader, Hardie & Lee (2005), to the three decimals published.
    for (g, p) in got.iter().zip(floats(&bg["published"]["params"])) {
        assert!((g - p).abs() <= 0.0005, "{g} vs published {p}");
    }
    assert!((ll - -9582.4).abs() <= 0.05, "{ll}");
    assert_eq!(model.customers, 2357.0);

    // lifetimes' predictions (scipy's 2F1) at the scipy estimates.
    let p = floats(&bg["params"]);
    let at = BgNbd::new(p[0], p[1], p[2], p[3]).unwrap();
    let lp = &bg["lifetimes_predictions"];
    let idx: Vec<usize> = lp["index"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
    let (xs, txs, ts) = (pick(&x), pick(&tx), pick(&t));
    let expected = at.expected_purchases(10.0, &xs, &txs, &ts).unwrap();
    agree(
        "E[Y(10)] vs lifetimes",
        &expected,
        &floats(&lp["expected_purchases_10"]),
        0.0,
        1e-12,
    );
    let alive = at.p_alive(&xs, &txs, &ts).unwrap();
    agree(
        "P(alive) vs lifetimes",
        &alive,
        &floats(&lp["p_alive"]),
        0.0,
        1e-13,
    );
}

#[test]
fn gamma_gamma_fit_on_cdnow_matches_the_independent_mle() {
    let (x, _, _, m) = cdnow();
    let model = GammaGamma::fit(&x, &m).unwrap();
    let gg = &load("cdnow_fit.json")["gamma_gamma"];
    let got = [model.p, model.q, model.gamma];
    agree(
        "Gamma-Gamma CDNOW estimates vs scipy",
        &got,
        &floats(&gg["params"]),
        0.0,
        1e-7,
    );
    agree(
        "Gamma-Gamma CDNOW log-likelihood vs scipy",
        &[model.log_likelihood.unwrap()],
        &[gg["log_likelihood"].as_f64().unwrap()],
        0.0,
        1e-12,
    );
    agree(
        "Gamma-Gamma CDNOW standard errors vs scipy",
        &model.standard_errors.unwrap(),
        &floats(&gg["standard_errors"]),
        0.0,
        1e-5,
    );
    agree(
        "Gamma-Gamma CDNOW estimates vs lifetimes",
        &got,
        &floats(&gg["lifetimes"]["params"]),
        0.0,
        1e-5,
    );
    for (g, p) in got.iter().zip(floats(&gg["published"]["params"])) {
        assert!((g - p).abs() <= 0.005 * p, "{g} vs published {p}");
    }
    // Customers without repeat purchases were skipped.
    assert_eq!(
        model.customers,
        x.iter().filter(|&&v| v > 0.0).count() as f64
    );
}

// ------------------------------------------------------------ closed forms

#[test]
fn bgnbd_closed_forms_match_mpmath() {
    let v = load("bgnbd_closed_forms.json");
    let c = &v["customers"];
    let (x, tx, t) = (
        floats(&c["frequency"]),
        floats(&c["recency"]),
        floats(&c["T"]),
    );
    let horizons = floats(&v["horizons"]);
    for case in v["cases"].as_array().unwrap() {
        let p = floats(&case["params"]);
        let model = BgNbd::new(p[0], p[1], p[2], p[3]).unwrap();
        let label = format!("{p:?}");
        agree(
            &format!("log-likelihood {label}"),
            &model.log_likelihoods(&x, &tx, &t).unwrap(),
            &floats(&case["log_likelihood"]),
            1.0,
            1e-13,
        );
        agree(
            &format!("P(alive) {label}"),
            &model.p_alive(&x, &tx, &t).unwrap(),
            &floats(&case["p_alive"]),
            1e-300,
            1e-12,
        );
        let rows = case["expected_purchases"].as_array().unwrap();
        for (h, row) in horizons.iter().zip(rows) {
            agree(
                &format!("E[Y({h})] {label}"),
                &model.expected_purchases(*h, &x, &tx, &t).unwrap(),
                &floats(row),
                1e-300,
                1e-12,
            );
        }
        let unconditional: Vec<f64> = horizons
            .iter()
            .map(|&h| model.expected_purchases_unconditional(h).unwrap())
            .collect();
        agree(
            &format!("E[X(t)] {label}"),
            &unconditional,
            &floats(&case["unconditional"]),
            1e-300,
            1e-13,
        );
    }
}

#[test]
fn gamma_gamma_closed_forms_and_clv_match_mpmath() {
    let v = load("gamma_gamma.json");
    let (x, m) = (floats(&v["frequency"]), floats(&v["monetary_value"]));
    for case in v["cases"].as_array().unwrap() {
        let p = floats(&case["params"]);
        let model = GammaGamma::new(p[0], p[1], p[2]).unwrap();
        agree(
            &format!("Gamma-Gamma log-likelihood {p:?}"),
            &model.log_likelihoods(&x, &m).unwrap(),
            &floats(&case["log_likelihood"]),
            1.0,
            1e-13,
        );
        let mut x0 = vec![0.0];
        x0.extend(&x);
        let mut m0 = vec![0.0];
        m0.extend(&m);
        agree(
            &format!("expected average value {p:?}"),
            &model.expected_average_value(&x0, &m0).unwrap(),
            &floats(&case["expected_average_value"]),
            0.0,
            1e-14,
        );
    }
    let c = &v["clv"];
    let bp = floats(&c["bgnbd"]);
    let gp = floats(&c["gamma_gamma"]);
    let bg = BgNbd::new(bp[0], bp[1], bp[2], bp[3]).unwrap();
    let gg = GammaGamma::new(gp[0], gp[1], gp[2]).unwrap();
    let options = ClvOptions {
        months: 12,
        discount_rate: 0.01,
        periods_per_month: 4.345,
    };
    assert_eq!(options, ClvOptions::new(TimeUnit::Weeks));
    let (cx, ctx, ct, cm) = (
        floats(&c["frequency"]),
        floats(&c["recency"]),
        floats(&c["T"]),
        floats(&c["monetary_value"]),
    );
    let clv = gg.clv(&bg, &cx, &ctx, &ct, &cm, &options).unwrap();
    agree("CLV vs mpmath", &clv, &floats(&c["clv"]), 0.0, 1e-12);
    agree(
        "CLV vs lifetimes",
        &clv,
        &floats(&c["lifetimes_clv"]),
        0.0,
        1e-10,
    );
}

// ------------------------------------------------------------ simulation

#[test]
fn bgnbd_fit_recovers_simulated_parameters_within_three_standard_errors() {
    let truth = BgNbd::new(0.25, 4.0, 0.8, 2.5).unwrap();
    let mut rng = fastrand::Rng::with_seed(77);
    let t: Vec<f64> = (0..20_000).map(|_| 26.0 + 52.0 * rng.f64()).collect();
    let h = simulate::bgnbd(&truth, &t, 2024).unwrap();
    let model = BgNbd::fit(&h.frequency, &h.recency, &h.t).unwrap();
    let se = model.standard_errors.unwrap();
    let got = [model.r, model.alpha, model.a, model.b];
    let want = [truth.r, truth.alpha, truth.a, truth.b];
    for i in 0..4 {
        let z = (got[i] - want[i]) / se[i];
        eprintln!(
            "BG/NBD recovery, parameter {i}: {:.4} vs {:.4} (z = {z:+.2})",
            got[i], want[i]
        );
        assert!(
            z.abs() < 3.0,
            "parameter {i}: {} vs {} (se {})",
            got[i],
            want[i],
            se[i]
        );
    }
}

#[test]
fn standard_errors_are_calibrated_across_replications() {
    // 24 seeded replications of 1,500 customers: the ±2 SE intervals should
    // cover the truth about 95 % of the time.
    let truth = BgNbd::new(0.5, 6.0, 0.7, 3.0).unwrap();
    let t = vec![52.0; 1_500];
    let (mut covered, mut total) = (0, 0);
    for seed in 0..24 {
        let h = simulate::bgnbd(&truth, &t, 1000 + seed).unwrap();
        let m = BgNbd::fit(&h.frequency, &h.recency, &h.t).unwrap();
        let se = m.standard_errors.unwrap();
        for (i, (g, w)) in [m.r, m.alpha, m.a, m.b]
            .iter()
            .zip([0.5, 6.0, 0.7, 3.0])
            .enumerate()
        {
            total += 1;
            if (g - w).abs() <= 2.0 * se[i] {
                covered += 1;
            }
        }
    }
    let share = covered as f64 / total as f64;
    eprintln!("±2 SE coverage: {covered}/{total} = {share:.3}");
    assert!(share >= 0.85, "{covered}/{total}");
}

#[test]
fn gamma_gamma_fit_recovers_simulated_parameters() {
    let truth = GammaGamma::new(6.0, 4.0, 1500.0).unwrap();
    let mut rng = fastrand::Rng::with_seed(5);
    let x: Vec<f64> = (0..20_000).map(|_| rng.u32(0..12) as f64).collect();
    let m = simulate::gamma_gamma(&truth, &x, 99).unwrap();
    let model = GammaGamma::fit(&x, &m).unwrap();
    let se = model.standard_errors.unwrap();
    for (i, (g, w)) in [model.p, model.q, model.gamma]
        .iter()
        .zip([6.0, 4.0, 1500.0])
        .enumerate()
    {
        let z = (g - w) / se[i];
        eprintln!("Gamma-Gamma recovery, parameter {i}: {g:.4} vs {w} (z = {z:+.2})");
        assert!(z.abs() < 3.0);
    }
}

#[test]
fn purchases_to_summary_to_fit_end_to_end() {
    let bg = BgNbd::new(0.6, 100.0, 0.8, 2.5).unwrap();
    let gg = GammaGamma::new(6.0, 4.0, 1500.0).unwrap();
    let end = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let log = simulate::purchases(
        &bg,
        &gg,
        &simulate::PurchaseSimulation {
            customers: 20_000,
            first_purchase_from: end - Duration::days(3 * 365),
            observation_end: end,
            unit: TimeUnit::Days,
            seed: 3,
        },
    )
    .unwrap();
    let s = summary(&log, &SummaryOptions::new(TimeUnit::Days, end)).unwrap();
    assert_eq!(s.len(), 20_000);
    let model = BgNbd::fit(&s.frequency, &s.recency, &s.t).unwrap();
    let se = model.standard_errors.unwrap();
    for (i, (g, w)) in [model.r, model.alpha, model.a, model.b]
        .iter()
        .zip([0.6, 100.0, 0.8, 2.5])
        .enumerate()
    {
        let z = (g - w) / se[i];
        eprintln!("end to end, BG/NBD parameter {i}: {g:.4} vs {w} (z = {z:+.2})");
        // Whole days (T counts the first day in full, same-day purchases are
        // collapsed) bias α up by about 3 % here, against an SE of 1 %.
        assert!(z.abs() < 3.5, "parameter {i}: {g} vs {w} (se {})", se[i]);
    }
    let spend = GammaGamma::fit(&s.frequency, &s.monetary_value).unwrap();
    let se = spend.standard_errors.unwrap();
    for (i, (g, w)) in [spend.p, spend.q, spend.gamma]
        .iter()
        .zip([6.0, 4.0, 1500.0])
        .enumerate()
    {
        let z = (g - w) / se[i];
        eprintln!("end to end, Gamma-Gamma parameter {i}: {g:.4} vs {w} (z = {z:+.2})");
        assert!(z.abs() < 3.5);
    }
    // Every purchase is accounted for.
    let total: i64 = log.iter().map(|t| t.amount_minor).sum();
    assert_eq!(s.total_minor.iter().sum::<i64>(), total);
}

// ------------------------------------------------------------ edge cases

#[test]
fn no_repeat_purchases_is_the_unconditional_expectation_from_age_t() {
    // With x = 0 the conditional expectation is E[X(t)] of a population
    // whose Gamma rate parameter is α + T (eq. (10) with x = 0 is eq. (9)).
    let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    for (big_t, h) in [(0.0, 1.0), (10.0, 4.0), (38.86, 52.0), (100.0, 1000.0)] {
        let got = m.expected_purchases(h, &[0.0], &[0.0], &[big_t]).unwrap()[0];
        let shifted = BgNbd::new(m.r, m.alpha + big_t, m.a, m.b).unwrap();
        let want = shifted.expected_purchases_unconditional(h).unwrap();
        assert!((got - want).abs() <= 1e-14 * want, "{got} vs {want}");
        assert_eq!(m.p_alive(&[0.0], &[0.0], &[big_t]).unwrap()[0], 1.0);
    }
    assert_eq!(
        m.expected_purchases(0.0, &[3.0], &[2.0], &[5.0]).unwrap()[0],
        0.0
    );
    assert_eq!(m.expected_purchases_unconditional(0.0).unwrap(), 0.0);
}

#[test]
fn extreme_parameters_fall_back_to_the_quadrature_and_stay_finite() {
    // Found by proptest: the positive series' coefficients overflow for
    // r + x = 248 with t = 11,549 (α + T); the quadrature takes over.
    let m = BgNbd::new(10.458587799407793, 0.01, 0.01, 0.01).unwrap();
    let e = m
        .expected_purchases(115.49028857783534, &[238.0], &[0.0], &[0.0])
        .unwrap()[0];
    assert!(e.is_finite() && e > 0.0, "{e}");
    let longer = m
        .expected_purchases(200.0, &[238.0], &[0.0], &[0.0])
        .unwrap()[0];
    assert!(longer > e);
}

#[test]
fn recency_equal_to_t_gives_the_closed_form_p_alive() {
    let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    for x in [1.0, 2.0, 10.0, 1e4, 1e7] {
        let got = m.p_alive(&[x], &[30.0], &[30.0]).unwrap()[0];
        let want = 1.0 / (1.0 + m.a / (m.b + x - 1.0));
        assert!((got - want).abs() <= 1e-15, "x = {x}: {got} vs {want}");
    }
}

#[test]
fn very_large_frequencies_stay_finite() {
    let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    let x = [1e6, 1e7, 1e8, 1e8];
    let tx = [999.0, 1000.0, 1000.0, 10.0];
    let t = [1000.0; 4];
    for v in m.expected_purchases(52.0, &x, &tx, &t).unwrap() {
        assert!(v.is_finite() && v >= 0.0, "{v}");
    }
    for v in m.log_likelihoods(&x, &tx, &t).unwrap() {
        assert!(v.is_finite(), "{v}");
    }
    let alive = m.p_alive(&x, &tx, &t).unwrap();
    assert!(alive[1] > 0.9 && alive[3] == 0.0);
    // About x/T purchases per week for someone who just bought, times the
    // chance to survive each of them.
    let e = m
        .expected_purchases(1.0, &[1e6], &[1000.0], &[1000.0])
        .unwrap()[0];
    assert!((e - 1e3).abs() < 1e3 * 0.01, "{e}");
}

#[test]
fn customers_first_buying_at_the_end_have_t_zero() {
    // Their likelihood is 1 whatever the parameters (no time to buy again):
    // they change neither the log-likelihood nor the estimates.
    let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    assert_eq!(m.log_likelihoods(&[0.0], &[0.0], &[0.0]).unwrap(), [0.0]);
    let (mut x, mut tx, mut t, _) = cdnow();
    let before = BgNbd::fit(&x, &tx, &t).unwrap();
    x.extend([0.0; 50]);
    tx.extend([0.0; 50]);
    t.extend([0.0; 50]);
    let after = BgNbd::fit(&x, &tx, &t).unwrap();
    agree(
        "fit with 50 customers of T = 0 added",
        &[
            after.r,
            after.alpha,
            after.a,
            after.b,
            after.log_likelihood.unwrap(),
        ],
        &[
            before.r,
            before.alpha,
            before.a,
            before.b,
            before.log_likelihood.unwrap(),
        ],
        0.0,
        1e-9,
    );
}

#[test]
fn weights_are_equivalent_to_repeated_rows() {
    let (x, tx, t, _) = cdnow();
    let n = 400;
    let weights: Vec<f64> = (0..n).map(|i| (i % 3 + 1) as f64).collect();
    let mut rx = vec![];
    let mut rtx = vec![];
    let mut rt = vec![];
    for i in 0..n {
        for _ in 0..weights[i] as usize {
            rx.push(x[i]);
            rtx.push(tx[i]);
            rt.push(t[i]);
        }
    }
    let options = FitOptions {
        weights: Some(&weights),
        ..FitOptions::default()
    };
    let weighted = BgNbd::fit_with(&x[..n], &tx[..n], &t[..n], &options).unwrap();
    let repeated = BgNbd::fit(&rx, &rtx, &rt).unwrap();
    agree(
        "weighted vs repeated rows",
        &[
            weighted.r,
            weighted.alpha,
            weighted.a,
            weighted.b,
            weighted.log_likelihood.unwrap(),
        ],
        &[
            repeated.r,
            repeated.alpha,
            repeated.a,
            repeated.b,
            repeated.log_likelihood.unwrap(),
        ],
        0.0,
        1e-8,
    );
}

#[test]
fn penalized_fits_match_the_independent_fit_and_lifetimes() {
    let (x, tx, t, m) = cdnow();
    let reference = load("cdnow_fit.json");
    let options = FitOptions {
        penalizer: reference["penalizer"].as_f64().unwrap(),
        ..FitOptions::default()
    };
    let bg = BgNbd::fit_with(&x, &tx, &t, &options).unwrap();
    let got = [bg.r, bg.alpha, bg.a, bg.b];
    let want = &reference["bgnbd"];
    agree(
        "penalized BG/NBD vs scipy",
        &got,
        &floats(&want["penalized_params"]),
        0.0,
        1e-7,
    );
    agree(
        "penalized BG/NBD vs lifetimes",
        &got,
        &floats(&want["lifetimes"]["penalized_params"]),
        0.0,
        1e-5,
    );
    let plain = BgNbd::fit(&x, &tx, &t).unwrap();
    assert!(bg.log_likelihood.unwrap() < plain.log_likelihood.unwrap());
    let gg = GammaGamma::fit_with(&x, &m, &options).unwrap();
    let got = [gg.p, gg.q, gg.gamma];
    let want = &reference["gamma_gamma"];
    agree(
        "penalized Gamma-Gamma vs scipy",
        &got,
        &floats(&want["penalized_params"]),
        0.0,
        1e-7,
    );
    agree(
        "penalized Gamma-Gamma vs lifetimes",
        &got,
        &floats(&want["lifetimes"]["penalized_params"]),
        0.0,
        1e-5,
    );
}

#[test]
fn fits_are_deterministic() {
    let (x, tx, t, m) = cdnow();
    assert_eq!(
        BgNbd::fit(&x, &tx, &t).unwrap(),
        BgNbd::fit(&x, &tx, &t).unwrap()
    );
    assert_eq!(
        GammaGamma::fit(&x, &m).unwrap(),
        GammaGamma::fit(&x, &m).unwrap()
    );
}

// ------------------------------------------------------------ summaries, RFM, cohorts

fn reference_log(v: &Value) -> Vec<Transaction> {
    v["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| Transaction {
            customer: row[0].as_u64().unwrap(),
            at: DateTime::parse_from_rfc3339(row[1].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc),
            amount_minor: row[2].as_i64().unwrap(),
        })
        .collect()
}

#[test]
fn summaries_match_the_reference_implementation() {
    let v = load("summary.json");
    let log = reference_log(&v);
    let end = DateTime::parse_from_rfc3339(v["observation_end"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    for case in v["cases"].as_array().unwrap() {
        let unit = match case["unit"].as_str().unwrap() {
            "days" => TimeUnit::Days,
            _ => TimeUnit::Weeks,
        };
        let calibration_end = case["calibration_end"]
            .as_str()
            .map(|s| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc));
        let options = SummaryOptions {
            calibration_end,
            ..SummaryOptions::new(unit, end)
        };
        let s = summary(&log, &options).unwrap();
        let e = &case["expected"];
        let customers: Vec<u64> = e["customers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(s.customers, customers, "{unit:?} {calibration_end:?}");
        assert_eq!(s.frequency, floats(&e["frequency"]));
        assert_eq!(s.recency, floats(&e["recency"]));
        assert_eq!(s.t, floats(&e["T"]));
        agree(
            "monetary value",
            &s.monetary_value,
            &floats(&e["monetary_value"]),
            1.0,
            1e-15,
        );
        let totals: Vec<i64> = e["total_minor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect();
        assert_eq!(s.total_minor, totals);
        match (&s.holdout, calibration_end) {
            (Some(h), Some(_)) => {
                assert_eq!(h.frequency, floats(&e["holdout_frequency"]));
                agree(
                    "holdout monetary value",
                    &h.monetary_value,
                    &floats(&e["holdout_monetary_value"]),
                    1.0,
                    1e-15,
                );
                assert_eq!(h.duration, e["holdout_duration"].as_f64().unwrap());
            }
            (None, None) => {}
            other => panic!("{other:?}"),
        }
        // The same from sorted input (the no-copy path).
        let mut sorted = log.clone();
        sorted.sort_by_key(|t| (t.customer, t.at));
        assert_eq!(summary(&sorted, &options).unwrap(), s);
    }
}

#[test]
fn rfm_and_retention_match_the_reference_implementation() {
    let v = load("summary.json");
    let log = reference_log(&v);
    let end = DateTime::parse_from_rfc3339(v["observation_end"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let s = summary(&log, &SummaryOptions::new(TimeUnit::Days, end)).unwrap();
    let scores = s.rfm().unwrap();
    let want = &v["rfm"];
    let as_u8 = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect::<Vec<_>>()
    };
    assert_eq!(scores.recency, as_u8(&want["recency"]));
    assert_eq!(scores.frequency, as_u8(&want["frequency"]));
    assert_eq!(scores.monetary, as_u8(&want["monetary"]));

    let r = cohorts::retention(&log, end).unwrap();
    let want = &v["retention"];
    assert_eq!(
        r.cohorts[0].to_string(),
        want["first_cohort"].as_str().unwrap()
    );
    let sizes: Vec<u64> = want["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(r.sizes, sizes);
    let active: Vec<Vec<u64>> = want["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(r.active, active);
}

// ------------------------------------------------------------ bad input

#[test]
fn bad_input_is_a_validation_error_naming_the_element() {
    let m = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    assert_eq!(
        validation_field(m.p_alive(&[1.0, 2.0], &[1.0], &[3.0, 3.0])),
        "recency"
    );
    assert_eq!(
        validation_field(m.p_alive(&[1.0], &[1.0], &[3.0, 3.0])),
        "T"
    );
    assert_eq!(
        validation_field(m.p_alive(&[1.0, -2.0], &[1.0, 1.0], &[3.0, 3.0])),
        "frequency[1]"
    );
    assert_eq!(
        validation_field(m.p_alive(&[1.5], &[1.0], &[3.0])),
        "frequency[0]"
    );
    assert_eq!(
        validation_field(m.p_alive(&[1.0], &[f64::NAN], &[3.0])),
        "recency[0]"
    );
    assert_eq!(
        validation_field(m.p_alive(&[1.0], &[4.0], &[3.0])),
        "recency[0]"
    );
    assert_eq!(
        validation_field(m.p_alive(&[0.0], &[1.0], &[3.0])),
        "recency[0]"
    );
    assert_eq!(validation_field(m.p_alive(&[1.0], &[1.0], &[-3.0])), "T[0]");
    assert_eq!(
        validation_field(m.expected_purchases(-1.0, &[1.0], &[1.0], &[3.0])),
        "t"
    );
    assert_eq!(
        validation_field(m.expected_purchases(f64::NAN, &[1.0], &[1.0], &[3.0])),
        "t"
    );
    assert_eq!(
        validation_field(m.expected_purchases_unconditional(f64::INFINITY)),
        "t"
    );
    assert_eq!(validation_field(BgNbd::new(0.2, -1.0, 1.0, 1.0)), "alpha");
    assert_eq!(validation_field(BgNbd::fit(&[], &[], &[])), "frequency");
    assert_eq!(
        validation_field(BgNbd::fit(&[0.0, 0.0], &[0.0, 0.0], &[4.0, 5.0])),
        "frequency"
    );
    let w = [1.0, f64::NAN];
    let options = FitOptions {
        weights: Some(&w),
        ..FitOptions::default()
    };
    assert_eq!(
        validation_field(BgNbd::fit_with(
            &[1.0, 2.0],
            &[1.0, 2.0],
            &[3.0, 3.0],
            &options
        )),
        "weights[1]"
    );
    let negative = FitOptions {
        penalizer: -1.0,
        ..FitOptions::default()
    };
    assert_eq!(
        validation_field(BgNbd::fit_with(&[1.0], &[1.0], &[3.0], &negative)),
        "penalizer"
    );
    // A model whose fields were set by hand to nonsense.
    let mut broken = m.clone();
    broken.b = f64::NAN;
    assert_eq!(
        validation_field(broken.p_alive(&[1.0], &[1.0], &[3.0])),
        "b"
    );

    let gg = GammaGamma::new(6.25, 3.74, 15.44).unwrap();
    assert_eq!(
        validation_field(gg.expected_average_value(&[1.0], &[0.0])),
        "monetary_value[0]"
    );
    assert_eq!(
        validation_field(gg.expected_average_value(&[1.0], &[-5.0])),
        "monetary_value[0]"
    );
    assert_eq!(
        validation_field(gg.expected_average_value(&[1.0, 2.0], &[5.0])),
        "monetary_value"
    );
    assert_eq!(
        validation_field(
            GammaGamma::new(1.0, 0.5, 1.0)
                .unwrap()
                .expected_average_value(&[1.0], &[5.0])
        ),
        "q"
    );
    let clv = ClvOptions {
        discount_rate: -0.5,
        ..ClvOptions::default()
    };
    assert_eq!(
        validation_field(gg.clv(&m, &[1.0], &[1.0], &[3.0], &[5.0], &clv)),
        "discount_rate"
    );
    assert_eq!(
        validation_field(rfm::scores(&[1.0, 2.0], &[1.0], &[1, 2])),
        "frequency"
    );
    assert_eq!(
        validation_field(rfm::scores(&[f64::NAN], &[1.0], &[1])),
        "recency[0]"
    );
}

// ------------------------------------------------------------ invariants

fn history() -> impl Strategy<Value = (f64, f64, f64)> {
    (0u32..2000, 0.0f64..1.0, 0.0f64..500.0).prop_map(|(x, share, t)| {
        let x = x as f64;
        let tx = if x == 0.0 { 0.0 } else { share * t };
        (x, tx, t)
    })
}

fn params() -> impl Strategy<Value = BgNbd> {
    (0.01f64..20.0, 0.01f64..200.0, 0.01f64..20.0, 0.01f64..20.0)
        .prop_map(|(r, alpha, a, b)| BgNbd::new(r, alpha, a, b).unwrap())
}

proptest! {
    // No regression files: the cases proptest once found are tests of their
    // own above.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn p_alive_is_a_probability_and_one_without_repeats(m in params(), (x, tx, t) in history()) {
        let p = m.p_alive(&[x], &[tx], &[t]).unwrap()[0];
        prop_assert!((0.0..=1.0).contains(&p));
        if x == 0.0 {
            prop_assert_eq!(p, 1.0);
        }
    }

    #[test]
    fn p_alive_falls_with_time_since_the_last_purchase(m in params(), (x, tx, t) in history(), more in 0.0f64..100.0) {
        let now = m.p_alive(&[x], &[tx], &[t]).unwrap()[0];
        let later = m.p_alive(&[x], &[tx], &[t + more]).unwrap()[0];
        prop_assert!(later <= now + 1e-15);
    }

    #[test]
    fn expected_purchases_are_finite_and_grow_with_the_horizon(m in params(), (x, tx, t) in history(), h in 0.0f64..400.0, more in 0.0f64..400.0) {
        let short = m.expected_purchases(h, &[x], &[tx], &[t]).unwrap()[0];
        let long = m.expected_purchases(h + more, &[x], &[tx], &[t]).unwrap()[0];
        prop_assert!(short.is_finite() && short >= 0.0, "{}", short);
        prop_assert!(long >= short * (1.0 - 1e-12), "{} < {}", long, short);
        let u1 = m.expected_purchases_unconditional(h).unwrap();
        let u2 = m.expected_purchases_unconditional(h + more).unwrap();
        prop_assert!(u1.is_finite() && u2 >= u1 * (1.0 - 1e-12));
    }

    #[test]
    fn log_likelihoods_are_finite(m in params(), (x, tx, t) in history()) {
        prop_assert!(m.log_likelihoods(&[x], &[tx], &[t]).unwrap()[0].is_finite());
    }

    #[test]
    fn expected_average_value_lies_between_own_and_population_mean(
        p in 0.1f64..20.0, q in 1.01f64..20.0, g in 0.1f64..1000.0, x in 1u32..500, spend in 0.01f64..1e5
    ) {
        let model = GammaGamma::new(p, q, g).unwrap();
        let v = model.expected_average_value(&[x as f64], &[spend]).unwrap()[0];
        let population = p * g / (q - 1.0);
        let (lo, hi) = if spend < population { (spend, population) } else { (population, spend) };
        prop_assert!(v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12));
    }

    #[test]
    fn rfm_scores_are_order_free_tie_equal_and_monotone(values in prop::collection::vec(0u8..20, 1..200), seed in any::<u64>()) {
        let v: Vec<f64> = values.iter().map(|&x| x as f64).collect();
        let scores = rfm::quintiles(&v, true).unwrap();
        let mut order: Vec<usize> = (0..v.len()).collect();
        fastrand::Rng::with_seed(seed).shuffle(&mut order);
        let shuffled: Vec<f64> = order.iter().map(|&i| v[i]).collect();
        let rescored = rfm::quintiles(&shuffled, true).unwrap();
        for (k, &i) in order.iter().enumerate() {
            prop_assert_eq!(rescored[k], scores[i]);
        }
        for i in 0..v.len() {
            prop_assert!((1..=5).contains(&scores[i]));
            for j in 0..v.len() {
                if v[i] == v[j] { prop_assert_eq!(scores[i], scores[j]); }
                if v[i] > v[j] { prop_assert!(scores[i] >= scores[j]); }
            }
            // A score s means: strictly better than at least (s−1)/5 of all.
            let worse = v.iter().filter(|&&w| w < v[i]).count();
            prop_assert!(5 * worse >= (scores[i] as usize - 1) * v.len());
            prop_assert!(5 * worse < scores[i] as usize * v.len());
        }
        let grid = Segment::from_scores(scores[0], scores[0]);
        prop_assert!(Segment::ALL.contains(&grid));
    }

    #[test]
    fn summaries_keep_every_purchase_and_respect_the_conventions(
        rows in prop::collection::vec((0u64..20, 0i64..100, 0i64..1000), 0..120),
        end_day in 0i64..120,
    ) {
        let origin = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        let log: Vec<Transaction> = rows.iter().map(|&(c, d, a)| Transaction {
            customer: c, at: origin + Duration::hours(d * 24 + 7), amount_minor: a }).collect();
        let end = origin + Duration::days(end_day);
        let s = summary(&log, &SummaryOptions::new(TimeUnit::Days, end)).unwrap();
        let kept: i64 = rows.iter().filter(|r| r.1 <= end_day).map(|r| r.2).sum();
        prop_assert_eq!(s.total_minor.iter().sum::<i64>(), kept);
        for i in 0..s.len() {
            prop_assert!(s.recency[i] <= s.t[i]);
            prop_assert!(s.frequency[i] <= s.recency[i]);
            prop_assert!(s.frequency[i] > 0.0 || s.monetary_value[i] == 0.0);
        }
        prop_assert!(s.customers.windows(2).all(|w| w[0] < w[1]));
    }
}
