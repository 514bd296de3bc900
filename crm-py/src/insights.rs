//! Analytics over the store (`crm_core::insights`) for `Crm`'s methods
//! `compute_scores`, `score_run`, `customer_scores`, `satisfaction` and
//! `cohort_retention`: their arguments in, their results out as dicts.
//!
//! Like the rest of the binding it converts and nothing else: every check,
//! default and computation is the core's. Enum values (`unit`, `period`) are
//! read and written through the core's own serde names. One name differs
//! from the core's: the satisfaction range is `since`/`until` (the core's
//! `from`/`to`; `from` is a Python keyword), so a core error about `from`
//! is raised naming `since`.

use crm_core::analytics::{BgNbd, GammaGamma};
use crm_core::{CustomerScores, InteractionKind, Satisfaction, ScoreOptions, ScoreRun};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat};
use serde::Serialize;
use serde_json::Value;

use crate::convert;
use crate::errors::{OrRaise, invalid, to_py_err};

// ===== in ===================================================================

/// An interaction kind, as `log_interaction` takes it.
pub fn kind(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<InteractionKind> {
    InteractionKind::parse(&convert::string(obj, field)?).or_raise()
}

/// A real number: a `float` or an integer (not a `bool`). NaN and
/// infinities go through; the core says which ranges it accepts.
pub fn number(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid(field, "must be a number, not bool"));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    match convert::integer::<i64>(obj, field) {
        Ok(i) => Ok(i as f64),
        Err(_) => Err(invalid(
            field,
            format!(
                "must be a number, not {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "this type".to_string())
            ),
        )),
    }
}

/// A core error about the satisfaction range, naming the binding's
/// arguments (`since`, `until`) instead of the core's fields (`from`, `to`).
pub fn in_range_terms(err: crm_core::Error) -> crm_core::Error {
    match err {
        crm_core::Error::Validation { field, reason } if field == "from" || field == "to" => {
            crm_core::Error::validation(
                if field == "from" { "since" } else { "until" },
                reason
                    .replace("'to'", "'until'")
                    .replace("'from'", "'since'"),
            )
        }
        other => other,
    }
}

// ===== out ==================================================================

/// The serde name of a core enum value (`"days"`, `"month"`).
fn name<T: Serialize>(value: &T) -> PyResult<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => Ok(s),
        _ => Err(to_py_err(crm_core::Error::Storage(
            "a value without a name".into(),
        ))),
    }
}

/// `names` → values as a dict.
fn named<'py>(py: Python<'py>, names: &[&str], values: &[f64]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in names.iter().zip(values) {
        d.set_item(name, value)?;
    }
    Ok(d)
}

/// A `compute_scores` run as a dict.
pub fn score_run<'py>(py: Python<'py>, run: &ScoreRun) -> PyResult<Bound<'py, PyDict>> {
    // Fails to compile when the core adds a field, so it can't be forgotten here.
    let ScoreRun {
        computed_at,
        observation_end,
        options,
        customers,
        purchases,
        skipped_refunds,
        skipped_other_currency,
        bgnbd: bgnbd_model,
        gamma_gamma: gamma_gamma_model,
    } = run;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "computed_at"), computed_at)?;
    d.set_item(intern!(py, "observation_end"), observation_end)?;
    d.set_item(intern!(py, "options"), score_options(py, options)?)?;
    d.set_item(intern!(py, "customers"), customers)?;
    d.set_item(intern!(py, "purchases"), purchases)?;
    d.set_item(intern!(py, "skipped_refunds"), skipped_refunds)?;
    d.set_item(
        intern!(py, "skipped_other_currency"),
        skipped_other_currency,
    )?;
    d.set_item(intern!(py, "bgnbd"), bgnbd(py, bgnbd_model)?)?;
    d.set_item(
        intern!(py, "gamma_gamma"),
        gamma_gamma(py, gamma_gamma_model)?,
    )?;
    Ok(d)
}

/// Score options as a dict (the keyword arguments of `compute_scores`).
fn score_options<'py>(py: Python<'py>, o: &ScoreOptions) -> PyResult<Bound<'py, PyDict>> {
    let ScoreOptions {
        kind,
        currency,
        unit,
        observation_end,
        horizon_days,
        clv_months,
        discount_rate,
        penalizer,
    } = o;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "kind"), kind.as_str())?;
    d.set_item(intern!(py, "currency"), currency)?;
    d.set_item(intern!(py, "unit"), name(unit)?)?;
    d.set_item(intern!(py, "observation_end"), observation_end)?;
    d.set_item(intern!(py, "horizon_days"), horizon_days)?;
    d.set_item(intern!(py, "clv_months"), clv_months)?;
    d.set_item(intern!(py, "discount_rate"), discount_rate)?;
    d.set_item(intern!(py, "penalizer"), penalizer)?;
    Ok(d)
}

/// A BG/NBD model's parameters and fit as a dict; `standard_errors` by
/// parameter name, `covariance` as a list of rows in the order r, alpha, a, b.
fn bgnbd<'py>(py: Python<'py>, m: &BgNbd) -> PyResult<Bound<'py, PyDict>> {
    let BgNbd {
        r,
        alpha,
        a,
        b,
        standard_errors,
        covariance,
        log_likelihood,
        customers,
        iterations,
    } = m;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "r"), r)?;
    d.set_item(intern!(py, "alpha"), alpha)?;
    d.set_item(intern!(py, "a"), a)?;
    d.set_item(intern!(py, "b"), b)?;
    d.set_item(
        intern!(py, "standard_errors"),
        standard_errors
            .map(|se| named(py, &["r", "alpha", "a", "b"], &se))
            .transpose()?,
    )?;
    d.set_item(intern!(py, "covariance"), covariance)?;
    d.set_item(intern!(py, "log_likelihood"), log_likelihood)?;
    d.set_item(intern!(py, "customers"), customers)?;
    d.set_item(intern!(py, "iterations"), iterations)?;
    Ok(d)
}

/// A Gamma-Gamma model's parameters and fit as a dict; `covariance` in the
/// order p, q, gamma.
fn gamma_gamma<'py>(py: Python<'py>, m: &GammaGamma) -> PyResult<Bound<'py, PyDict>> {
    let GammaGamma {
        p,
        q,
        gamma,
        standard_errors,
        covariance,
        log_likelihood,
        customers,
        iterations,
    } = m;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "p"), p)?;
    d.set_item(intern!(py, "q"), q)?;
    d.set_item(intern!(py, "gamma"), gamma)?;
    d.set_item(
        intern!(py, "standard_errors"),
        standard_errors
            .map(|se| named(py, &["p", "q", "gamma"], &se))
            .transpose()?,
    )?;
    d.set_item(intern!(py, "covariance"), covariance)?;
    d.set_item(intern!(py, "log_likelihood"), log_likelihood)?;
    d.set_item(intern!(py, "customers"), customers)?;
    d.set_item(intern!(py, "iterations"), iterations)?;
    Ok(d)
}

/// One customer's stored scores as a dict; `rfm_segment` is the segment's
/// name.
pub fn customer_scores<'py>(py: Python<'py>, s: &CustomerScores) -> PyResult<Bound<'py, PyDict>> {
    let CustomerScores {
        customer_id,
        frequency,
        recency,
        t,
        monetary_value,
        total_minor,
        rfm_r,
        rfm_f,
        rfm_m,
        rfm_segment,
        p_alive,
        expected_purchases,
        expected_value,
        clv,
    } = s;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "customer_id"), customer_id.to_string())?;
    d.set_item(intern!(py, "frequency"), frequency)?;
    d.set_item(intern!(py, "recency"), recency)?;
    d.set_item(intern!(py, "t"), t)?;
    d.set_item(intern!(py, "monetary_value"), monetary_value)?;
    d.set_item(intern!(py, "total_minor"), total_minor)?;
    d.set_item(intern!(py, "rfm_r"), rfm_r)?;
    d.set_item(intern!(py, "rfm_f"), rfm_f)?;
    d.set_item(intern!(py, "rfm_m"), rfm_m)?;
    d.set_item(intern!(py, "rfm_segment"), rfm_segment.name())?;
    d.set_item(intern!(py, "p_alive"), p_alive)?;
    d.set_item(intern!(py, "expected_purchases"), expected_purchases)?;
    d.set_item(intern!(py, "expected_value"), expected_value)?;
    d.set_item(intern!(py, "clv"), clv)?;
    Ok(d)
}

/// The satisfaction of one period as a dict; `period_start` is a `date`, or
/// None for `period="all"`.
pub fn satisfaction<'py>(py: Python<'py>, s: &Satisfaction) -> PyResult<Bound<'py, PyDict>> {
    let Satisfaction {
        period_start,
        responses,
        promoters,
        passives,
        detractors,
        nps,
        satisfied,
        csat,
        mean_score,
    } = s;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "period_start"), period_start)?;
    d.set_item(intern!(py, "responses"), responses)?;
    d.set_item(intern!(py, "promoters"), promoters)?;
    d.set_item(intern!(py, "passives"), passives)?;
    d.set_item(intern!(py, "detractors"), detractors)?;
    d.set_item(intern!(py, "nps"), nps)?;
    d.set_item(intern!(py, "satisfied"), satisfied)?;
    d.set_item(intern!(py, "csat"), csat)?;
    d.set_item(intern!(py, "mean_score"), mean_score)?;
    Ok(d)
}
