//! Customer analytics for Kotlin and Swift: crm-core's `analytics` module
//! (transaction summaries, the BG/NBD and Gamma-Gamma models, CLV, RFM,
//! retention cohorts). Pure functions on columns; no database.
//!
//! Only conversions live here: lists cross as lists, times as `SystemTime`,
//! cohort months as `"YYYY-MM-DD"`, customers as strings (handed to crm-core
//! as dense indices in the strings' order). Every check, and so every error
//! with its field name (`recency[3]`, `T[0]`, `transactions[2].amount_minor`),
//! is crm-core's, as in Rust and Python.
//!
//! The fitted models are records with methods: the numbers are plain
//! properties, and a prediction sends the parameters back to Rust with the
//! customers' columns.

use std::collections::HashMap;
use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crm_core::analytics::cohorts::{self, Retention as CoreRetention};
use crm_core::analytics::rfm::{self, Segment as CoreRfmSegment};
use crm_core::analytics::{
    BgNbd as CoreBgNbd, ClvOptions as CoreClvOptions, FitOptions as CoreFitOptions,
    GammaGamma as CoreGammaGamma, Holdout as CoreHoldout, Summary as CoreSummary,
    SummaryOptions as CoreSummaryOptions, TimeUnit as CoreTimeUnit, Transaction as CoreTransaction,
};

use crate::error::{CrmError, guard};
use crate::records::{date_out, time_in};

// ----- options ----------------------------------------------------------------

/// How to fit a model. `None` means crm-core's default.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct FitOptions {
    /// How many customers each row stands for (default: one each); as many
    /// as customers, each finite and ≥ 0.
    #[uniffi(default)]
    pub weights: Option<Vec<f64>>,
    /// L2 penalty on the parameters, as `lifetimes`' `penalizer_coef`
    /// (default 0: plain maximum likelihood).
    #[uniffi(default)]
    pub penalizer: Option<f64>,
    /// The most optimizer iterations (default 500).
    #[uniffi(default)]
    pub max_iterations: Option<u32>,
}

impl FitOptions {
    fn to_core(&self) -> CoreFitOptions<'_> {
        let default = CoreFitOptions::default();
        CoreFitOptions {
            weights: self.weights.as_deref(),
            penalizer: self.penalizer.unwrap_or(default.penalizer),
            max_iterations: self.max_iterations.unwrap_or(default.max_iterations),
        }
    }
}

/// The period in which time is counted: UTC days, or Monday-to-Sunday
/// weeks (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TimeUnit {
    /// UTC calendar days.
    Days,
    /// Weeks from Monday 00:00 UTC to Sunday 24:00 UTC.
    Weeks,
}

impl From<TimeUnit> for CoreTimeUnit {
    fn from(u: TimeUnit) -> Self {
        match u {
            TimeUnit::Days => CoreTimeUnit::Days,
            TimeUnit::Weeks => CoreTimeUnit::Weeks,
        }
    }
}

/// How `GammaGammaModel.clv` discounts. `None` means crm-core's default:
/// 12 months at 1 % a month, with the months of `unit` (30 days, or 4.345
/// weeks; days when `unit` is `None`).
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ClvOptions {
    /// The time unit of the customers' columns (default days).
    #[uniffi(default)]
    pub unit: Option<TimeUnit>,
    /// The horizon, in months (default 12).
    #[uniffi(default)]
    pub months: Option<u32>,
    /// The monthly discount rate (default 0.01, 1 % a month).
    #[uniffi(default)]
    pub discount_rate: Option<f64>,
    /// Time units per month, instead of the `unit`'s.
    #[uniffi(default)]
    pub periods_per_month: Option<f64>,
}

impl From<ClvOptions> for CoreClvOptions {
    fn from(o: ClvOptions) -> Self {
        let default = CoreClvOptions::new(o.unit.map_or(CoreTimeUnit::Days, Into::into));
        CoreClvOptions {
            months: o.months.unwrap_or(default.months),
            discount_rate: o.discount_rate.unwrap_or(default.discount_rate),
            periods_per_month: o.periods_per_month.unwrap_or(default.periods_per_month),
        }
    }
}

// ----- BG/NBD -------------------------------------------------------------------

/// A BG/NBD model of purchase counts (Fader, Hardie & Lee 2005): while
/// alive a customer buys at rate λ ~ Gamma(r, α); after each repeat purchase
/// they drop out with probability p ~ Beta(a, b). Parameters are in the
/// data's time unit.
///
/// `fit_bgnbd` returns one with the fit's statistics; one built from known
/// parameters (`BgNbdModel(r, alpha, a, b)`) leaves them empty. A customer's
/// history is (`frequency`, `recency`, `t`): repeat purchases, time from the
/// first to the last purchase, time from the first purchase to the end of
/// observation.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct BgNbdModel {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Rate of the Gamma distribution of purchase rates (per time unit).
    pub alpha: f64,
    /// First shape of the Beta distribution of dropout probabilities.
    pub a: f64,
    /// Second shape of the Beta distribution of dropout probabilities.
    pub b: f64,
    /// The log-likelihood of the fitted data at the estimate; `None` when
    /// not fitted.
    #[uniffi(default)]
    pub log_likelihood: Option<f64>,
    /// Standard errors of (r, alpha, a, b), in that order; `None` when not
    /// fitted (or the Hessian was singular).
    #[uniffi(default)]
    pub standard_errors: Option<Vec<f64>>,
    /// The 4×4 covariance matrix of (r, alpha, a, b) they come from.
    #[uniffi(default)]
    pub covariance: Option<Vec<Vec<f64>>>,
    /// The (weighted) number of customers fitted; 0 when not fitted.
    #[uniffi(default = 0.0)]
    pub customers: f64,
    /// Optimizer iterations the fit took.
    #[uniffi(default = 0)]
    pub iterations: u32,
}

impl From<CoreBgNbd> for BgNbdModel {
    fn from(m: CoreBgNbd) -> Self {
        BgNbdModel {
            r: m.r,
            alpha: m.alpha,
            a: m.a,
            b: m.b,
            log_likelihood: m.log_likelihood,
            standard_errors: m.standard_errors.map(|s| s.to_vec()),
            covariance: m
                .covariance
                .map(|c| c.iter().map(|row| row.to_vec()).collect()),
            customers: m.customers,
            iterations: m.iterations,
        }
    }
}

impl BgNbdModel {
    /// crm-core's model of these parameters (checked: each finite and > 0).
    /// Predictions need only the parameters.
    fn core(&self) -> Result<CoreBgNbd, CrmError> {
        Ok(CoreBgNbd::new(self.r, self.alpha, self.a, self.b)?)
    }
}

#[uniffi::export]
impl BgNbdModel {
    /// Each customer's expected number of purchases in the next `horizon`
    /// time units, given their history. A bad `horizon` is `Validation` on
    /// `t` (crm-core's and Python's name for it).
    pub fn expected_purchases(
        &self,
        horizon: f64,
        frequency: Vec<f64>,
        recency: Vec<f64>,
        t: Vec<f64>,
    ) -> Result<Vec<f64>, CrmError> {
        guard(|| {
            Ok(self
                .core()?
                .expected_purchases(horizon, &frequency, &recency, &t)?)
        })
    }

    /// Each customer's probability of being alive at the end of
    /// observation (1 without repeat purchases).
    pub fn p_alive(
        &self,
        frequency: Vec<f64>,
        recency: Vec<f64>,
        t: Vec<f64>,
    ) -> Result<Vec<f64>, CrmError> {
        guard(|| Ok(self.core()?.p_alive(&frequency, &recency, &t)?))
    }

    /// The expected number of repeat purchases in `horizon` time units
    /// after the first purchase of a customer drawn from the population. A
    /// bad `horizon` is `Validation` on `t`.
    pub fn expected_purchases_unconditional(&self, horizon: f64) -> Result<f64, CrmError> {
        guard(|| Ok(self.core()?.expected_purchases_unconditional(horizon)?))
    }
}

/// Fits a BG/NBD model by maximum likelihood to customers' histories:
/// `frequency` (repeat purchases, whole numbers), `recency` (first to last
/// purchase, 0 without repeats) and `t` (first purchase to the end of
/// observation), one element per customer.
///
/// Bad input is `Validation` naming the element (`recency[3]`, `T[0]`,
/// `frequency[2]`) or the list (`recency` when the lengths differ);
/// customers without any repeat purchase, or data the likelihood has no
/// maximum for, are `Validation` on `frequency`.
#[uniffi::export(default(options))]
pub fn fit_bgnbd(
    frequency: Vec<f64>,
    recency: Vec<f64>,
    t: Vec<f64>,
    options: FitOptions,
) -> Result<BgNbdModel, CrmError> {
    guard(|| {
        let model = CoreBgNbd::fit_with(&frequency, &recency, &t, &options.to_core())?;
        Ok(model.into())
    })
}

// ----- Gamma-Gamma and CLV ------------------------------------------------------

/// A Gamma-Gamma model of spend per purchase (Fader & Hardie 2013): a
/// customer's amounts are Gamma(p, ν), with ν ~ Gamma(q, gamma) across
/// customers. Amounts are in the monetary values' unit.
///
/// `fit_gamma_gamma` returns one with the fit's statistics; one built from
/// known parameters (`GammaGammaModel(p, q, gamma)`) leaves them empty.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct GammaGammaModel {
    /// Shape of each customer's Gamma distribution of amounts.
    pub p: f64,
    /// Shape of the Gamma distribution of the customers' rate ν.
    pub q: f64,
    /// Rate of the Gamma distribution of the customers' rate ν (`v` in
    /// `lifetimes`).
    pub gamma: f64,
    /// The log-likelihood of the fitted data at the estimate; `None` when
    /// not fitted.
    #[uniffi(default)]
    pub log_likelihood: Option<f64>,
    /// Standard errors of (p, q, gamma), in that order; `None` when not
    /// fitted (or the Hessian was singular).
    #[uniffi(default)]
    pub standard_errors: Option<Vec<f64>>,
    /// The 3×3 covariance matrix of (p, q, gamma) they come from.
    #[uniffi(default)]
    pub covariance: Option<Vec<Vec<f64>>>,
    /// The (weighted) number of customers fitted: those with repeat
    /// purchases; 0 when not fitted.
    #[uniffi(default = 0.0)]
    pub customers: f64,
    /// Optimizer iterations the fit took.
    #[uniffi(default = 0)]
    pub iterations: u32,
}

impl From<CoreGammaGamma> for GammaGammaModel {
    fn from(m: CoreGammaGamma) -> Self {
        GammaGammaModel {
            p: m.p,
            q: m.q,
            gamma: m.gamma,
            log_likelihood: m.log_likelihood,
            standard_errors: m.standard_errors.map(|s| s.to_vec()),
            covariance: m
                .covariance
                .map(|c| c.iter().map(|row| row.to_vec()).collect()),
            customers: m.customers,
            iterations: m.iterations,
        }
    }
}

impl GammaGammaModel {
    /// crm-core's model of these parameters (checked: each finite and > 0).
    fn core(&self) -> Result<CoreGammaGamma, CrmError> {
        Ok(CoreGammaGamma::new(self.p, self.q, self.gamma)?)
    }
}

#[uniffi::export]
impl GammaGammaModel {
    /// Each customer's expected mean spend per purchase, from their number
    /// of repeat purchases and mean repeat spend (0 without repeats: the
    /// population's mean). Needs q > 1.
    pub fn expected_average_value(
        &self,
        frequency: Vec<f64>,
        monetary_value: Vec<f64>,
    ) -> Result<Vec<f64>, CrmError> {
        guard(|| {
            Ok(self
                .core()?
                .expected_average_value(&frequency, &monetary_value)?)
        })
    }

    /// Each customer's lifetime value over `options.months` months: the
    /// purchases `bgnbd` expects in each month times the expected average
    /// value, discounted monthly (`lifetimes`' `customer_lifetime_value`),
    /// in the monetary values' unit. `options.unit` should be the columns'
    /// time unit.
    pub fn clv(
        &self,
        bgnbd: BgNbdModel,
        frequency: Vec<f64>,
        recency: Vec<f64>,
        t: Vec<f64>,
        monetary_value: Vec<f64>,
        options: ClvOptions,
    ) -> Result<Vec<f64>, CrmError> {
        guard(|| {
            Ok(self.core()?.clv(
                &bgnbd.core()?,
                &frequency,
                &recency,
                &t,
                &monetary_value,
                &options.into(),
            )?)
        })
    }
}

/// Fits a Gamma-Gamma model by maximum likelihood to `frequency` (repeat
/// purchases) and `monetary_value` (their mean amount). Customers without
/// repeat purchases are skipped, so a whole summary can be passed; the
/// others need a monetary value > 0. Bad input is `Validation` naming the
/// element, e.g. `monetary_value[4]`.
#[uniffi::export(default(options))]
pub fn fit_gamma_gamma(
    frequency: Vec<f64>,
    monetary_value: Vec<f64>,
    options: FitOptions,
) -> Result<GammaGammaModel, CrmError> {
    guard(|| {
        let model = CoreGammaGamma::fit_with(&frequency, &monetary_value, &options.to_core())?;
        Ok(model.into())
    })
}

// ----- transaction summaries ----------------------------------------------------

/// One purchase: who (any string: an id, an email), when, and how much in
/// minor units of one currency.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct AnalyticsTransaction {
    /// The customer.
    pub customer: String,
    /// When the purchase happened.
    pub at: SystemTime,
    /// The amount in minor units (≥ 0; net refunds out beforehand).
    pub amount_minor: i64,
}

/// How to summarize: the time unit, the end of observation (purchases in
/// its period count, later ones don't) and, for a calibration/holdout
/// split, the end of calibration.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SummaryOptions {
    /// The period in which frequency, recency and T are counted.
    pub unit: TimeUnit,
    /// The end of observation.
    pub observation_end: SystemTime,
    /// With it, the summary describes the purchases up to its period and
    /// `holdout` those after it.
    #[uniffi(default)]
    pub calibration_end: Option<SystemTime>,
}

impl SummaryOptions {
    fn to_core(&self) -> Result<CoreSummaryOptions, CrmError> {
        Ok(CoreSummaryOptions {
            unit: self.unit.into(),
            observation_end: time_in("observation_end", self.observation_end)?,
            calibration_end: self
                .calibration_end
                .map(|t| time_in("calibration_end", t))
                .transpose()?,
        })
    }
}

/// One row per customer, as columns, customers in ascending order (of
/// their strings' UTF-8 bytes). Times are in the options' unit, amounts in
/// minor units.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TransactionSummary {
    /// The customers.
    pub customers: Vec<String>,
    /// Repeat purchase periods (x).
    pub frequency: Vec<f64>,
    /// Periods from the first to the last purchase (tₓ).
    pub recency: Vec<f64>,
    /// Periods from the first purchase to the end of (calibration)
    /// observation (T).
    pub t: Vec<f64>,
    /// Mean amount of the repeat purchase periods; 0 without repeats.
    pub monetary_value: Vec<f64>,
    /// Everything spent in the (calibration) observation, first purchase
    /// included: the M of RFM.
    pub total_minor: Vec<i64>,
    /// With a calibration end: what each customer did after it.
    pub holdout: Option<Holdout>,
}

/// The holdout columns of a calibration/holdout split, aligned with
/// `TransactionSummary.customers`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Holdout {
    /// Purchase periods in the holdout.
    pub frequency: Vec<f64>,
    /// Mean amount of those periods (0 without any).
    pub monetary_value: Vec<f64>,
    /// The holdout's length in periods.
    pub duration: f64,
}

impl From<CoreHoldout> for Holdout {
    fn from(h: CoreHoldout) -> Self {
        Holdout {
            frequency: h.frequency,
            monetary_value: h.monetary_value,
            duration: h.duration,
        }
    }
}

/// Summarizes purchases per customer with the conventions of the
/// buy-till-you-die literature and `lifetimes`: purchases of one customer
/// in one period collapse into one; `frequency` counts repeat periods,
/// `recency` and `t` run from the first purchase's period. A negative
/// amount is `Validation` on `transactions[i].amount_minor`, a calibration
/// end after the observation end on `calibration_end`.
#[uniffi::export]
pub fn summarize_transactions(
    transactions: Vec<AnalyticsTransaction>,
    options: SummaryOptions,
) -> Result<TransactionSummary, CrmError> {
    guard(|| {
        let options = options.to_core()?;
        let (names, transactions) = transactions_in(&transactions)?;
        let s: CoreSummary<u64> = crm_core::analytics::summary(&transactions, &options)?;
        Ok(TransactionSummary {
            customers: s
                .customers
                .iter()
                .map(|&i| names[i as usize].to_string())
                .collect(),
            frequency: s.frequency,
            recency: s.recency,
            t: s.t,
            monetary_value: s.monetary_value,
            total_minor: s.total_minor,
            holdout: s.holdout.map(Into::into),
        })
    })
}

/// The transactions for crm-core, each customer a dense index into the
/// returned names. The names are sorted, so crm-core's order of customers
/// (by key) is the names' order, and a list sorted by (customer, time)
/// stays sorted.
fn transactions_in(
    transactions: &[AnalyticsTransaction],
) -> Result<(Vec<&str>, Vec<CoreTransaction<u64>>), CrmError> {
    let mut names: Vec<&str> = transactions.iter().map(|t| t.customer.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let index: HashMap<&str, u64> = names.iter().zip(0..).map(|(&n, i)| (n, i)).collect();
    let converted = transactions
        .iter()
        .enumerate()
        .map(|(i, t)| {
            Ok(CoreTransaction {
                customer: index[t.customer.as_str()],
                at: transaction_time(i, t.at)?,
                amount_minor: t.amount_minor,
            })
        })
        .collect::<Result<Vec<_>, CrmError>>()?;
    Ok((names, converted))
}

/// The time of transaction `i`; one outside chrono's range is `Validation`
/// on `transactions[i].at` (the field is spelled out only then).
fn transaction_time(i: usize, at: SystemTime) -> Result<DateTime<Utc>, CrmError> {
    time_in("at", at).map_err(|err| match err {
        CrmError::Validation { reason, .. } => CrmError::Validation {
            field: format!("transactions[{i}].at"),
            reason,
        },
        other => other,
    })
}

// ----- RFM ------------------------------------------------------------------------

/// The usual RFM segments, from the recency and frequency scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum RfmSegment {
    /// Bought recently and often.
    Champions,
    /// Buy often, fairly recently.
    Loyal,
    /// Recent, with a few purchases.
    PotentialLoyalists,
    /// Just made their first purchase.
    NewCustomers,
    /// Recent, one purchase.
    Promising,
    /// Average recency and frequency.
    NeedAttention,
    /// Below-average recency and frequency.
    AboutToSleep,
    /// Used to buy fairly often, but not for a long time.
    AtRisk,
    /// Used to buy most often, but not for a long time.
    CannotLoseThem,
    /// Rarely, and long ago.
    Hibernating,
}

impl From<CoreRfmSegment> for RfmSegment {
    fn from(s: CoreRfmSegment) -> Self {
        match s {
            CoreRfmSegment::Champions => RfmSegment::Champions,
            CoreRfmSegment::Loyal => RfmSegment::Loyal,
            CoreRfmSegment::PotentialLoyalists => RfmSegment::PotentialLoyalists,
            CoreRfmSegment::NewCustomers => RfmSegment::NewCustomers,
            CoreRfmSegment::Promising => RfmSegment::Promising,
            CoreRfmSegment::NeedAttention => RfmSegment::NeedAttention,
            CoreRfmSegment::AboutToSleep => RfmSegment::AboutToSleep,
            CoreRfmSegment::AtRisk => RfmSegment::AtRisk,
            CoreRfmSegment::CannotLoseThem => RfmSegment::CannotLoseThem,
            CoreRfmSegment::Hibernating => RfmSegment::Hibernating,
        }
    }
}

/// RFM scores from 1 to 5 (5 best) by quintile, one per customer in input
/// order, with each customer's segment. (Scores are `Int` in Kotlin and
/// `Int32` in Swift: a list of bytes would arrive as `ByteArray` / `Data`.)
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RfmScores {
    /// Recency scores (5: bought most recently).
    pub recency: Vec<i32>,
    /// Frequency scores (5: bought most often).
    pub frequency: Vec<i32>,
    /// Monetary scores (5: spent most).
    pub monetary: Vec<i32>,
    /// Each customer's segment, from their recency and frequency scores.
    pub segments: Vec<RfmSegment>,
}

/// Scores customers: `recency` is the time since their last purchase (any
/// unit; smaller is better), `frequency` their number of purchases,
/// `monetary_minor` what they spent in minor units. Equal values get equal
/// scores. Mismatched lengths or a NaN are `Validation` (`frequency`,
/// `recency[2]`).
#[uniffi::export]
pub fn rfm_scores(
    recency: Vec<f64>,
    frequency: Vec<f64>,
    monetary_minor: Vec<i64>,
) -> Result<RfmScores, CrmError> {
    guard(|| {
        let scores = rfm::scores(&recency, &frequency, &monetary_minor)?;
        let segments = scores.segments().into_iter().map(Into::into).collect();
        let widen = |v: Vec<u8>| v.into_iter().map(i32::from).collect();
        Ok(RfmScores {
            recency: widen(scores.recency),
            frequency: widen(scores.frequency),
            monetary: widen(scores.monetary),
            segments,
        })
    })
}

// ----- cohorts --------------------------------------------------------------------

/// A retention matrix: row c is the customers acquired (first purchase) in
/// month `cohorts[c]`, every month from the first acquisition to the
/// observation end included; `active[c][k]` counts those who bought k
/// months after (k = 0: the acquisition month, so it equals `sizes[c]`).
/// Rows stop at the observation end's month: a triangle.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Retention {
    /// The first day of each cohort's month, `"YYYY-MM-DD"`, ascending and
    /// consecutive.
    pub cohorts: Vec<String>,
    /// Customers acquired in each month.
    pub sizes: Vec<u64>,
    /// Per cohort, customers with a purchase k months after acquisition.
    pub active: Vec<Vec<u64>>,
}

impl From<CoreRetention> for Retention {
    fn from(r: CoreRetention) -> Self {
        Retention {
            cohorts: r.cohorts.into_iter().map(date_out).collect(),
            sizes: r.sizes,
            active: r.active,
        }
    }
}

/// Retention by acquisition month (UTC) from a purchase log in any order.
/// Purchases after the month of `observation_end` are ignored; amounts
/// are not used.
#[uniffi::export]
pub fn cohort_retention(
    transactions: Vec<AnalyticsTransaction>,
    observation_end: SystemTime,
) -> Result<Retention, CrmError> {
    guard(|| {
        let end = time_in("observation_end", observation_end)?;
        let (_, transactions) = transactions_in(&transactions)?;
        Ok(cohorts::retention(&transactions, end)?.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn day(d: u64) -> SystemTime {
        // 2024-03-01 is day 19_783 since the epoch.
        UNIX_EPOCH + Duration::from_secs((19_783 + d - 1) * 86_400 + 12 * 3600)
    }

    fn tx(customer: &str, d: u64, amount_minor: i64) -> AnalyticsTransaction {
        AnalyticsTransaction {
            customer: customer.into(),
            at: day(d),
            amount_minor,
        }
    }

    fn field(err: CrmError) -> String {
        match err {
            CrmError::Validation { field, .. } => field,
            other => panic!("not Validation: {other:?}"),
        }
    }

    #[test]
    fn a_summary_keeps_the_customer_strings_in_order() {
        let log = vec![
            tx("zoe", 5, 700),
            tx("ana", 1, 1_000),
            tx("ana", 1, 500),
            tx("ana", 4, 2_000),
            tx("ana", 9, 4_000),
        ];
        let options = SummaryOptions {
            unit: TimeUnit::Days,
            observation_end: day(10),
            calibration_end: None,
        };
        let s = summarize_transactions(log, options).unwrap();
        assert_eq!(s.customers, ["ana", "zoe"]);
        assert_eq!(s.frequency, [2.0, 0.0]);
        assert_eq!(s.recency, [8.0, 0.0]);
        assert_eq!(s.t, [9.0, 5.0]);
        assert_eq!(s.monetary_value, [3_000.0, 0.0]);
        assert_eq!(s.total_minor, [7_500, 700]);
        assert_eq!(s.holdout, None);
    }

    #[test]
    fn errors_keep_cores_field_names() {
        let options = || SummaryOptions {
            unit: TimeUnit::Weeks,
            observation_end: day(10),
            calibration_end: None,
        };
        let err = summarize_transactions(vec![tx("a", 1, 1), tx("a", 2, -1)], options());
        assert_eq!(field(err.unwrap_err()), "transactions[1].amount_minor");
        let far = AnalyticsTransaction {
            at: UNIX_EPOCH + Duration::from_secs(u64::MAX / 2),
            ..tx("a", 1, 1)
        };
        let err = summarize_transactions(vec![tx("a", 1, 1), far], options());
        assert_eq!(field(err.unwrap_err()), "transactions[1].at");
        let err = fit_bgnbd(
            vec![1.0, 2.0],
            vec![1.0, 5.0],
            vec![3.0, 4.0],
            FitOptions::default(),
        );
        assert_eq!(field(err.unwrap_err()), "recency[1]");
        let model = BgNbdModel::from(CoreBgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap());
        let err = model.expected_purchases(-1.0, vec![], vec![], vec![]);
        assert_eq!(field(err.unwrap_err()), "t");
        let bad = BgNbdModel {
            alpha: 0.0,
            ..model
        };
        assert_eq!(
            field(bad.p_alive(vec![], vec![], vec![]).unwrap_err()),
            "alpha"
        );
    }

    #[test]
    fn fit_options_and_clv_options_take_cores_defaults() {
        let core = FitOptions::default();
        let core = core.to_core();
        assert_eq!(core.penalizer, CoreFitOptions::default().penalizer);
        assert_eq!(
            core.max_iterations,
            CoreFitOptions::default().max_iterations
        );
        let weekly = ClvOptions {
            unit: Some(TimeUnit::Weeks),
            months: Some(24),
            ..Default::default()
        };
        assert_eq!(
            CoreClvOptions::from(weekly),
            CoreClvOptions {
                months: 24,
                ..CoreClvOptions::new(CoreTimeUnit::Weeks)
            }
        );
        assert_eq!(
            CoreClvOptions::from(ClvOptions::default()),
            CoreClvOptions::default()
        );
    }

    #[test]
    fn rfm_and_cohorts_convert_their_results() {
        let s = rfm_scores(
            vec![2.0, 40.0, 300.0, 10.0, 700.0],
            vec![12.0, 3.0, 1.0, 8.0, 2.0],
            vec![250_000, 9_000, 1_500, 120_000, 3_000],
        )
        .unwrap();
        assert_eq!(s.recency, [5, 3, 2, 4, 1]);
        assert_eq!(s.segments[0], RfmSegment::Champions);
        assert_eq!(s.segments[4], RfmSegment::Hibernating);
        let r = cohort_retention(vec![tx("a", 1, 1), tx("b", 20, 1)], day(31)).unwrap();
        assert_eq!(r.cohorts, ["2024-03-01"]);
        assert_eq!(r.sizes, [2]);
        assert_eq!(r.active, [vec![2]]);
    }
}
