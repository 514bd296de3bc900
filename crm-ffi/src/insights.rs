//! Analytics over the store for Kotlin and Swift: crm-core's `insights`
//! (per-customer scores computed from the purchase log and stored for the
//! filter language, satisfaction per period, retention cohorts), as
//! methods of `Crm`.
//!
//! Only conversions live here. The models and their records are those of
//! [`crate::analytics`] (`BgNbdModel`, `GammaGammaModel`, `TimeUnit`,
//! `Retention`, `RfmSegment`); input records leave settings `None` for
//! crm-core's defaults; times cross as `SystemTime`, period starts as
//! `"YYYY-MM-DD"`, filters as text in the filter language. Every check, and
//! so every error with its field name (`horizon_days`, `currency`,
//! `purchases`, `satisfied_from`), is crm-core's.

use std::time::SystemTime;

use crm_core::analytics::TimeUnit as CoreTimeUnit;
use crm_core::{
    CohortQuery as CoreCohortQuery, CustomerScores as CoreCustomerScores, FilterRef,
    Period as CorePeriod, Satisfaction as CoreSatisfaction,
    SatisfactionQuery as CoreSatisfactionQuery, ScoreOptions as CoreScoreOptions,
    ScoreRun as CoreScoreRun,
};

use crate::Crm;
use crate::analytics::{BgNbdModel, GammaGammaModel, Retention, RfmSegment, TimeUnit};
use crate::error::{CrmError, guard};
use crate::records::{InteractionKind, customer_id_in, date_out, time_in, time_out};

// ----- scores ---------------------------------------------------------------------

/// How `Crm.compute_scores` scores customers. `None` means crm-core's
/// default. The same record, filled in, is `ScoreRun.options`: what a run
/// used, to be passed back to repeat it.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ScoreOptions {
    /// The interactions that are purchases (default `Purchase`).
    #[uniffi(default)]
    pub kind: Option<InteractionKind>,
    /// The currency of the amounts; purchases in others are left out.
    /// Default: the one currency the purchases use (`Validation` on
    /// `currency` if they use several).
    #[uniffi(default)]
    pub currency: Option<String>,
    /// The period frequency, recency and T are counted in (default days).
    #[uniffi(default)]
    pub unit: Option<TimeUnit>,
    /// The end of observation (default: now); later purchases are left out.
    #[uniffi(default)]
    pub observation_end: Option<SystemTime>,
    /// The horizon of `expected_purchases`, in days (1 to 3,650; default
    /// 90).
    #[uniffi(default)]
    pub horizon_days: Option<u32>,
    /// The months of `clv` (1 to 120; default 12).
    #[uniffi(default)]
    pub clv_months: Option<u32>,
    /// The monthly discount rate of `clv` (0 to 1; default 0.01).
    #[uniffi(default)]
    pub discount_rate: Option<f64>,
    /// L2 penalty on the models' parameters (0 to 1,000; default 0: plain
    /// maximum likelihood).
    #[uniffi(default)]
    pub penalizer: Option<f64>,
}

impl TryFrom<ScoreOptions> for CoreScoreOptions {
    type Error = CrmError;

    fn try_from(o: ScoreOptions) -> Result<Self, CrmError> {
        let default = CoreScoreOptions::default();
        Ok(CoreScoreOptions {
            kind: match o.kind {
                Some(kind) => kind.try_into()?,
                None => default.kind,
            },
            currency: o.currency,
            unit: o.unit.map_or(default.unit, Into::into),
            observation_end: o
                .observation_end
                .map(|t| time_in("observation_end", t))
                .transpose()?,
            horizon_days: o.horizon_days.unwrap_or(default.horizon_days),
            clv_months: o.clv_months.unwrap_or(default.clv_months),
            discount_rate: o.discount_rate.unwrap_or(default.discount_rate),
            penalizer: o.penalizer.unwrap_or(default.penalizer),
        })
    }
}

impl TryFrom<CoreScoreOptions> for ScoreOptions {
    type Error = CrmError;

    fn try_from(o: CoreScoreOptions) -> Result<Self, CrmError> {
        Ok(ScoreOptions {
            kind: Some(o.kind.into()),
            currency: o.currency,
            unit: Some(o.unit.try_into()?),
            observation_end: o.observation_end.map(time_out),
            horizon_days: Some(o.horizon_days),
            clv_months: Some(o.clv_months),
            discount_rate: Some(o.discount_rate),
            penalizer: Some(o.penalizer),
        })
    }
}

/// crm-core's time unit, for the host. crm-core may add units; one this
/// binding does not know is a bug of the binding, so `Internal`.
impl TryFrom<CoreTimeUnit> for TimeUnit {
    type Error = CrmError;

    fn try_from(u: CoreTimeUnit) -> Result<Self, CrmError> {
        match u {
            CoreTimeUnit::Days => Ok(TimeUnit::Days),
            CoreTimeUnit::Weeks => Ok(TimeUnit::Weeks),
            _ => Err(CrmError::Internal {
                message: "a time unit this binding does not know".into(),
            }),
        }
    }
}

/// What a `Crm.compute_scores` run did: its settings, the fitted models and
/// the counts. The latest one is kept (`Crm.score_run`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ScoreRun {
    /// When the run was made.
    pub computed_at: SystemTime,
    /// The end of observation used.
    pub observation_end: SystemTime,
    /// The options used, every default filled in and the currency resolved
    /// (`observation_end` stays `None` when it was "now").
    pub options: ScoreOptions,
    /// Customers scored: those with a purchase up to the observation end.
    pub customers: u64,
    /// Purchases read.
    pub purchases: u64,
    /// Purchases with a negative amount (refunds), left out.
    pub skipped_refunds: u64,
    /// Purchases in another currency than `options.currency`, left out.
    pub skipped_other_currency: u64,
    /// The BG/NBD model of purchase counts, in `options.unit`.
    pub bgnbd: BgNbdModel,
    /// The Gamma-Gamma model of spend, in major units of the currency.
    pub gamma_gamma: GammaGammaModel,
}

impl TryFrom<CoreScoreRun> for ScoreRun {
    type Error = CrmError;

    fn try_from(r: CoreScoreRun) -> Result<Self, CrmError> {
        Ok(ScoreRun {
            computed_at: time_out(r.computed_at),
            observation_end: time_out(r.observation_end),
            options: r.options.try_into()?,
            customers: r.customers,
            purchases: r.purchases,
            skipped_refunds: r.skipped_refunds,
            skipped_other_currency: r.skipped_other_currency,
            bgnbd: r.bgnbd.into(),
            gamma_gamma: r.gamma_gamma.into(),
        })
    }
}

/// One customer's stored scores, as of the latest run. Times are in the
/// run's `unit`, money in major units of its currency except `total_minor`.
/// The filter language reads them as `p_alive`, `expected_purchases`,
/// `expected_value`, `clv`, `rfm.r`, `rfm.f`, `rfm.m` and `rfm.segment`.
/// (RFM scores are `Int` in Kotlin and `Int32` in Swift, as in
/// `RfmScores`.)
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CustomerScores {
    /// The customer.
    pub customer_id: String,
    /// Repeat purchase periods.
    pub frequency: f64,
    /// Periods from the first to the last purchase.
    pub recency: f64,
    /// Periods from the first purchase to the end of observation.
    pub t: f64,
    /// Mean value of the repeat purchase periods; 0 without any.
    pub monetary_value: f64,
    /// Everything spent, first purchase included, in minor units.
    pub total_minor: i64,
    /// RFM recency score, 1–5 (5 best).
    pub rfm_r: i32,
    /// RFM frequency score, 1–5.
    pub rfm_f: i32,
    /// RFM monetary score, 1–5.
    pub rfm_m: i32,
    /// The RFM segment.
    pub rfm_segment: RfmSegment,
    /// Probability the customer is still active (BG/NBD), 0–1.
    pub p_alive: f64,
    /// Purchases expected over the run's horizon.
    pub expected_purchases: f64,
    /// Expected value of a future purchase (Gamma-Gamma).
    pub expected_value: f64,
    /// Discounted lifetime value over the run's months.
    pub clv: f64,
}

impl From<CoreCustomerScores> for CustomerScores {
    fn from(s: CoreCustomerScores) -> Self {
        CustomerScores {
            customer_id: s.customer_id.to_string(),
            frequency: s.frequency,
            recency: s.recency,
            t: s.t,
            monetary_value: s.monetary_value,
            total_minor: s.total_minor,
            rfm_r: s.rfm_r.into(),
            rfm_f: s.rfm_f.into(),
            rfm_m: s.rfm_m.into(),
            rfm_segment: s.rfm_segment.into(),
            p_alive: s.p_alive,
            expected_purchases: s.expected_purchases,
            expected_value: s.expected_value,
            clv: s.clv,
        }
    }
}

// ----- satisfaction ---------------------------------------------------------------

/// The calendar periods satisfaction is grouped by (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Period {
    /// Calendar days.
    Day,
    /// ISO weeks, from Monday.
    Week,
    /// Calendar months.
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
    /// One group for the whole range.
    All,
}

impl From<Period> for CorePeriod {
    fn from(p: Period) -> Self {
        match p {
            Period::Day => CorePeriod::Day,
            Period::Week => CorePeriod::Week,
            Period::Month => CorePeriod::Month,
            Period::Quarter => CorePeriod::Quarter,
            Period::Year => CorePeriod::Year,
            Period::All => CorePeriod::All,
        }
    }
}

/// Which survey answers `Crm.satisfaction` reads and how it groups them.
/// `None` means crm-core's default.
///
/// Answers are interactions of `kind` with a score (0–10). NPS counts
/// promoters (9–10) and detractors (0–6): 100 · (promoters − detractors) /
/// answers, from −100 to 100. CSAT is the share of answers scoring at least
/// `satisfied_from`, in percent.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct SatisfactionQuery {
    /// The interactions that are survey answers (default `SurveyResponse`).
    #[uniffi(default)]
    pub kind: Option<InteractionKind>,
    /// Only answers with this subject (one survey).
    #[uniffi(default)]
    pub subject: Option<String>,
    /// Answers from this time on (inclusive).
    #[uniffi(default)]
    pub from: Option<SystemTime>,
    /// Answers before this time (exclusive).
    #[uniffi(default)]
    pub to: Option<SystemTime>,
    /// How answers are grouped (default by month).
    #[uniffi(default)]
    pub period: Option<Period>,
    /// The lowest score that counts as satisfied in CSAT (0–10; default 8).
    #[uniffi(default)]
    pub satisfied_from: Option<i32>,
}

impl TryFrom<SatisfactionQuery> for CoreSatisfactionQuery {
    type Error = CrmError;

    fn try_from(q: SatisfactionQuery) -> Result<Self, CrmError> {
        let default = CoreSatisfactionQuery::default();
        Ok(CoreSatisfactionQuery {
            kind: match q.kind {
                Some(kind) => kind.try_into()?,
                None => default.kind,
            },
            subject: q.subject,
            from: q.from.map(|t| time_in("from", t)).transpose()?,
            to: q.to.map(|t| time_in("to", t)).transpose()?,
            period: q.period.map_or(default.period, Into::into),
            satisfied_from: q.satisfied_from.unwrap_or(default.satisfied_from),
        })
    }
}

/// NPS and CSAT of one period. Periods without answers are left out, so no
/// figure is ever undefined.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Satisfaction {
    /// The first day of the period, `"YYYY-MM-DD"`; `None` for
    /// `Period.All`.
    pub period_start: Option<String>,
    /// Answers with a score.
    pub responses: u64,
    /// Answers scoring 9 or 10.
    pub promoters: u64,
    /// Answers scoring 7 or 8.
    pub passives: u64,
    /// Answers scoring 0 to 6.
    pub detractors: u64,
    /// Net promoter score, −100 to 100.
    pub nps: f64,
    /// Answers scoring at least `SatisfactionQuery.satisfied_from`.
    pub satisfied: u64,
    /// Satisfied answers in percent, 0 to 100.
    pub csat: f64,
    /// The mean score.
    pub mean_score: f64,
}

impl From<CoreSatisfaction> for Satisfaction {
    fn from(s: CoreSatisfaction) -> Self {
        Satisfaction {
            period_start: s.period_start.map(date_out),
            responses: s.responses,
            promoters: s.promoters,
            passives: s.passives,
            detractors: s.detractors,
            nps: s.nps,
            satisfied: s.satisfied,
            csat: s.csat,
            mean_score: s.mean_score,
        }
    }
}

// ----- cohorts --------------------------------------------------------------------

/// Which purchases `Crm.cohort_retention` reads. `None` means crm-core's
/// default.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct CohortQuery {
    /// The interactions that are purchases (default `Purchase`).
    #[uniffi(default)]
    pub kind: Option<InteractionKind>,
    /// The end of observation (default: now).
    #[uniffi(default)]
    pub observation_end: Option<SystemTime>,
}

impl TryFrom<CohortQuery> for CoreCohortQuery {
    type Error = CrmError;

    fn try_from(q: CohortQuery) -> Result<Self, CrmError> {
        let default = CoreCohortQuery::default();
        Ok(CoreCohortQuery {
            kind: match q.kind {
                Some(kind) => kind.try_into()?,
                None => default.kind,
            },
            observation_end: q
                .observation_end
                .map(|t| time_in("observation_end", t))
                .transpose()?,
        })
    }
}

// ----- the methods ----------------------------------------------------------------

#[uniffi::export]
impl Crm {
    /// Computes every customer's scores from the purchase log and replaces
    /// the stored ones (and the stored run) in one transaction; returns the
    /// run. Refunds (negative amounts) and purchases in another currency
    /// are left out. Errors change nothing: `Validation` on an option out
    /// of range (naming it), on purchases in several currencies when none
    /// is chosen (`currency`), and when a model can't be fitted
    /// (`purchases`: too few customers, no repeat purchases).
    #[uniffi::method(default(options))]
    pub fn compute_scores(&self, options: ScoreOptions) -> Result<ScoreRun, CrmError> {
        guard(|| {
            let options = options.try_into()?;
            self.inner.compute_scores(&options)?.try_into()
        })
    }

    /// The latest `compute_scores` run, if any.
    pub fn score_run(&self) -> Result<Option<ScoreRun>, CrmError> {
        guard(|| self.inner.score_run()?.map(TryInto::try_into).transpose())
    }

    /// A customer's stored scores; `None` if the customer had no purchase
    /// at the latest run (or there was no run). `NotFound` if the customer
    /// doesn't exist.
    pub fn customer_scores(&self, id: String) -> Result<Option<CustomerScores>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            Ok(self.inner.customer_scores(id)?.map(Into::into))
        })
    }

    /// NPS and CSAT of the survey answers, per period, oldest first; of the
    /// customers matching `segment` only, when given (any filter
    /// expression, e.g. `in_segment("vip")`; a bad one is `Parse`).
    #[uniffi::method(default(query), default(segment = None))]
    pub fn satisfaction(
        &self,
        query: SatisfactionQuery,
        segment: Option<String>,
    ) -> Result<Vec<Satisfaction>, CrmError> {
        guard(|| {
            let query = query.try_into()?;
            let segment = segment.as_deref().map(FilterRef::Text);
            Ok(self
                .inner
                .satisfaction(&query, segment)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Retention by acquisition month (UTC) of the customers' purchases, as
    /// the `cohort_retention` function computes it on a purchase log; of the
    /// customers matching `segment` only, when given.
    #[uniffi::method(default(query), default(segment = None))]
    pub fn cohort_retention(
        &self,
        query: CohortQuery,
        segment: Option<String>,
    ) -> Result<Retention, CrmError> {
        guard(|| {
            let query = query.try_into()?;
            let segment = segment.as_deref().map(FilterRef::Text);
            Ok(self.inner.cohort_retention(&query, segment)?.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_left_none_take_cores_defaults_and_come_back_filled_in() {
        let core = CoreScoreOptions::try_from(ScoreOptions::default()).unwrap();
        assert_eq!(core, CoreScoreOptions::default());
        let filled = ScoreOptions::try_from(core.clone()).unwrap();
        assert_eq!(filled.horizon_days, Some(90));
        assert_eq!(filled.kind, Some(InteractionKind::Purchase));
        assert_eq!(CoreScoreOptions::try_from(filled).unwrap(), core);
        assert_eq!(
            CoreSatisfactionQuery::try_from(SatisfactionQuery::default()).unwrap(),
            CoreSatisfactionQuery::default()
        );
        assert_eq!(
            CoreCohortQuery::try_from(CohortQuery::default()).unwrap(),
            CoreCohortQuery::default()
        );
    }

    #[test]
    fn an_empty_crm_has_no_run_and_nothing_to_fit() {
        let crm = Crm::open_in_memory(crate::OpenOptions::default()).unwrap();
        assert_eq!(crm.score_run(), Ok(None));
        let err = crm.compute_scores(ScoreOptions::default()).unwrap_err();
        assert!(
            matches!(err, CrmError::Validation { ref field, .. } if field == "purchases"),
            "{err:?}"
        );
        let err = crm
            .customer_scores("00000000-0000-4000-8000-000000000000".into())
            .unwrap_err();
        assert!(matches!(err, CrmError::NotFound { .. }), "{err:?}");
        assert_eq!(
            crm.satisfaction(SatisfactionQuery::default(), None),
            Ok(vec![])
        );
    }
}
