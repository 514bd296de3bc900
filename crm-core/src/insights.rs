//! Analytics over the store: per-customer scores computed from the purchase
//! log and stored for the filter language, satisfaction (NPS, CSAT) per
//! period, and retention cohorts. The models are those of
//! [`crate::analytics`]; this module feeds them from the database.
//!
//! **Scores.** [`Crm::compute_scores`] summarizes every customer's purchases
//! (streamed from an index in customer order, so memory grows with the
//! customers, not the purchases), scores RFM, fits the BG/NBD and
//! Gamma-Gamma models, predicts, and replaces the stored scores in one
//! transaction. The filter language reads them as fields:
//!
//! | field | meaning |
//! |---|---|
//! | `p_alive` | probability the customer is still active (BG/NBD), 0–1 |
//! | `expected_purchases` | purchases expected over the run's horizon |
//! | `expected_value` | expected value of a future purchase (Gamma-Gamma), major units |
//! | `clv` | discounted customer lifetime value over the run's months, major units |
//! | `rfm.r`, `rfm.f`, `rfm.m` | RFM scores 1–5 (5 best) |
//! | `rfm.segment` | the RFM segment's name, e.g. `"champions"`, `"at_risk"` |
//!
//! Customers without a purchase have no scores: a comparison on them is
//! false (and its `not` true), as for any missing value. Scores are a
//! snapshot as of [`ScoreRun::computed_at`]; run again to refresh them.
//!
//! ```
//! use chrono::{Duration, Utc};
//! use crm_core::analytics::{simulate, BgNbd, GammaGamma, TimeUnit};
//! use crm_core::{Crm, CustomerRef, InteractionKind, NewCustomer, NewInteraction, ScoreOptions};
//!
//! // 300 customers with a year of purchases.
//! let crm = Crm::open_in_memory()?;
//! let now = Utc::now();
//! let log = simulate::purchases(
//!     &BgNbd::new(0.5, 10.0, 0.7, 2.5)?,
//!     &GammaGamma::new(6.0, 4.0, 2_000.0)?,
//!     &simulate::PurchaseSimulation {
//!         customers: 300,
//!         first_purchase_from: now - Duration::days(365),
//!         observation_end: now,
//!         unit: TimeUnit::Days,
//!         seed: 1,
//!     },
//! )?;
//! let ids: Vec<_> = (0..300)
//!     .map(|i| crm.create_customer(NewCustomer { name: Some(format!("C{i}")), ..Default::default() }))
//!     .collect::<Result<_, _>>()?;
//! for t in &log {
//!     crm.log_interaction(NewInteraction {
//!         amount_minor: Some(t.amount_minor),
//!         currency: Some("EUR".into()),
//!         occurred_at: Some(t.at),
//!         ..NewInteraction::new(CustomerRef::Id(ids[t.customer as usize].id), InteractionKind::Purchase)
//!     })?;
//! }
//!
//! let run = crm.compute_scores(&ScoreOptions::default())?;
//! assert_eq!(run.customers, 300);
//! let at_risk = crm.count_matching(r#"p_alive < 0.3 and rfm.m >= 4"#)?;
//! let champions = crm.count_matching(r#"rfm.segment = "champions""#)?;
//! assert!(at_risk < 300 && champions > 0);
//! let ana = crm.customer_scores(ids[0].id)?.expect("bought");
//! assert!((0.0..=1.0).contains(&ana.p_alive) && ana.clv >= 0.0);
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use serde::{Deserialize, Serialize};

use crate::analytics::cohorts::{self, Retention};
use crate::analytics::gamma_gamma::discounted_purchases;
use crate::analytics::rfm::Segment;
use crate::analytics::{
    BgNbd, ClvOptions, FitOptions, GammaGamma, Summary, SummaryOptions, TimeUnit,
};
use crate::crm::Crm;
use crate::db;
use crate::error::{Error, Result};
use crate::filter::compile::Mode;
use crate::model::ids::CustomerId;
use crate::model::interaction::InteractionKind;
use crate::model::normalize;
use crate::segment::FilterRef;

/// How [`Crm::compute_scores`] scores customers.
///
/// ```
/// use crm_core::ScoreOptions;
/// use crm_core::analytics::TimeUnit;
///
/// let options = ScoreOptions { unit: TimeUnit::Weeks, horizon_days: 30, ..ScoreOptions::default() };
/// assert_eq!(options.clv_months, 12);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoreOptions {
    /// The interactions that are purchases; [`InteractionKind::Purchase`].
    pub kind: InteractionKind,
    /// The currency of the amounts. Purchases in other currencies are left
    /// out (and counted in [`ScoreRun::skipped_other_currency`]); purchases
    /// without an amount count, with a value of 0. `None`: the one currency
    /// the purchases use (an error if they use several).
    pub currency: Option<String>,
    /// The period frequency, recency and T are counted in; days.
    pub unit: TimeUnit,
    /// The end of observation; `None`: now. Later purchases are left out.
    pub observation_end: Option<DateTime<Utc>>,
    /// The horizon of `expected_purchases`, in days (1 to 3,650); 90.
    pub horizon_days: u32,
    /// The months of `clv` (1 to 120); 12.
    pub clv_months: u32,
    /// The monthly discount rate of `clv` (0 to 1); 0.01.
    pub discount_rate: f64,
    /// L2 penalty on the models' parameters (0 to 1,000); 0: plain maximum
    /// likelihood.
    pub penalizer: f64,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            kind: InteractionKind::Purchase,
            currency: None,
            unit: TimeUnit::Days,
            observation_end: None,
            horizon_days: 90,
            clv_months: 12,
            discount_rate: 0.01,
            penalizer: 0.0,
        }
    }
}

/// What a [`Crm::compute_scores`] run did: its settings, the fitted models
/// and the counts. The latest one is kept ([`Crm::score_run`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRun {
    /// When the run was made.
    pub computed_at: DateTime<Utc>,
    /// The end of observation used.
    pub observation_end: DateTime<Utc>,
    /// The options, with the currency resolved.
    pub options: ScoreOptions,
    /// Customers scored (those with a purchase up to the observation end).
    pub customers: u64,
    /// Purchases read.
    pub purchases: u64,
    /// Purchases with a negative amount (refunds), left out.
    pub skipped_refunds: u64,
    /// Purchases in another currency than [`ScoreOptions::currency`], left
    /// out.
    pub skipped_other_currency: u64,
    /// The BG/NBD model of purchase counts.
    pub bgnbd: BgNbd,
    /// The Gamma-Gamma model of spend, in major units.
    pub gamma_gamma: GammaGamma,
}

/// One customer's stored scores (see the [module](self) for the fields'
/// meanings). Times are in [`ScoreOptions::unit`], money in major units of
/// the run's currency, except `total_minor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerScores {
    /// The customer.
    pub customer_id: CustomerId,
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
    /// RFM recency score, 1–5.
    pub rfm_r: u8,
    /// RFM frequency score, 1–5.
    pub rfm_f: u8,
    /// RFM monetary score, 1–5.
    pub rfm_m: u8,
    /// The RFM segment.
    pub rfm_segment: Segment,
    /// Probability the customer is still active.
    pub p_alive: f64,
    /// Purchases expected over the run's horizon.
    pub expected_purchases: f64,
    /// Expected value of a future purchase.
    pub expected_value: f64,
    /// Discounted lifetime value over the run's months.
    pub clv: f64,
}

/// The calendar periods satisfaction is grouped by (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Calendar days.
    Day,
    /// ISO weeks, from Monday.
    Week,
    /// Calendar months.
    #[default]
    Month,
    /// Calendar quarters.
    Quarter,
    /// Calendar years.
    Year,
    /// One group for the whole range.
    All,
}

impl Period {
    /// The first day of the period containing `day`.
    fn start(self, day: NaiveDate) -> Option<NaiveDate> {
        match self {
            Period::Day => Some(day),
            Period::Week => {
                Some(day - chrono::Duration::days(day.weekday().num_days_from_monday().into()))
            }
            Period::Month => NaiveDate::from_ymd_opt(day.year(), day.month(), 1),
            Period::Quarter => NaiveDate::from_ymd_opt(day.year(), day.month0() / 3 * 3 + 1, 1),
            Period::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1),
            Period::All => None,
        }
    }
}

/// Which survey answers [`Crm::satisfaction`] reads and how it groups them.
///
/// Answers are interactions of `kind` with a score (0–10). NPS counts
/// promoters (9–10) and detractors (0–6): NPS = 100 · (promoters −
/// detractors) / answers, from −100 to 100. CSAT is the share of answers
/// scoring at least `satisfied_from`, in percent.
///
/// ```
/// use crm_core::{Period, SatisfactionQuery};
/// let q = SatisfactionQuery { period: Period::Quarter, ..SatisfactionQuery::default() };
/// assert_eq!(q.satisfied_from, 8);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SatisfactionQuery {
    /// The interactions that are survey answers;
    /// [`InteractionKind::SurveyResponse`].
    pub kind: InteractionKind,
    /// Only answers with this subject (one survey), when given.
    pub subject: Option<String>,
    /// Answers from this time on (inclusive), when given.
    pub from: Option<DateTime<Utc>>,
    /// Answers before this time (exclusive), when given.
    pub to: Option<DateTime<Utc>>,
    /// How answers are grouped; by month.
    pub period: Period,
    /// The lowest score that counts as satisfied in CSAT (0–10); 8.
    pub satisfied_from: i32,
}

impl Default for SatisfactionQuery {
    fn default() -> Self {
        SatisfactionQuery {
            kind: InteractionKind::SurveyResponse,
            subject: None,
            from: None,
            to: None,
            period: Period::Month,
            satisfied_from: 8,
        }
    }
}

/// NPS and CSAT of one period. Periods without answers are left out, so no
/// figure is ever undefined.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Satisfaction {
    /// The first day of the period; `None` for [`Period::All`].
    pub period_start: Option<NaiveDate>,
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
    /// Answers scoring at least [`SatisfactionQuery::satisfied_from`].
    pub satisfied: u64,
    /// Satisfied answers in percent, 0 to 100.
    pub csat: f64,
    /// The mean score.
    pub mean_score: f64,
}

/// Which purchases [`Crm::cohort_retention`] reads.
///
/// ```
/// let q = crm_core::CohortQuery::default();
/// assert!(q.observation_end.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CohortQuery {
    /// The interactions that are purchases; [`InteractionKind::Purchase`].
    pub kind: InteractionKind,
    /// The end of observation; `None`: now.
    pub observation_end: Option<DateTime<Utc>>,
}

impl Default for CohortQuery {
    fn default() -> Self {
        CohortQuery {
            kind: InteractionKind::Purchase,
            observation_end: None,
        }
    }
}

/// The purchase rows in customer order, read from the covering index.
const PURCHASES_SQL: &str = "SELECT customer_rowid, occurred_at, amount_minor, currency \
     FROM interactions INDEXED BY interactions_kind_customer \
     WHERE kind = ?1 ORDER BY customer_rowid, occurred_at";

fn check_range(field: &str, value: f64, low: f64, high: f64) -> Result<()> {
    if value.is_finite() && (low..=high).contains(&value) {
        Ok(())
    } else {
        Err(Error::validation(
            field,
            format!("must be from {low} to {high}"),
        ))
    }
}

/// A model's refusal, told as what it is about: the purchases.
fn model_error(model: &str, e: Error) -> Error {
    match e {
        Error::Validation { field, reason } => Error::validation(
            "purchases",
            format!("the {model} model can't be fitted to them ({field}: {reason})"),
        ),
        other => other,
    }
}

/// The condition restricting `customer_rowid` to a filter's customers (""
/// without a filter), and its parameters, numbered from ?1: the caller
/// numbers its own after them.
fn segment_condition(
    conn: &Connection,
    filter: Option<FilterRef<'_>>,
) -> Result<(String, Vec<Value>)> {
    let Some(filter) = filter else {
        return Ok((String::new(), Vec::new()));
    };
    let c = Crm::compile(conn, filter, Mode::Set, None)?;
    Ok((
        format!(
            " AND customer_rowid IN (SELECT c.rowid FROM customers c WHERE {})",
            c.sql
        ),
        c.params,
    ))
}

/// Adds `value` to `values` and returns its placeholder.
fn bind(values: &mut Vec<Value>, value: impl Into<Value>) -> String {
    values.push(value.into());
    format!("?{}", values.len())
}

impl Crm {
    /// Computes every customer's scores from the purchase log and replaces
    /// the stored ones (and the stored [`ScoreRun`]) in one transaction;
    /// see the [module](self) for the fields. Returns the run.
    ///
    /// The purchases are summarized as [`crate::analytics::summary`] does
    /// (per period of [`ScoreOptions::unit`]). Refunds (negative amounts)
    /// are left out. For the spend model, a customer whose repeat purchases
    /// have no value (0 or no amount) counts as one without repeat
    /// purchases. Errors, with nothing changed: [`Error::Validation`] on an
    /// option out of range (naming it), on purchases in several currencies
    /// when none is chosen (`currency`), and when a model can't be fitted
    /// (`purchases`: e.g. too few customers or no repeat purchases).
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let err = crm.compute_scores(&crm_core::ScoreOptions::default()).unwrap_err();
    /// assert!(err.to_string().contains("purchases"));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn compute_scores(&self, options: &ScoreOptions) -> Result<ScoreRun> {
        check_range("horizon_days", f64::from(options.horizon_days), 1.0, 3650.0)?;
        check_range("clv_months", f64::from(options.clv_months), 1.0, 120.0)?;
        check_range("discount_rate", options.discount_rate, 0.0, 1.0)?;
        check_range("penalizer", options.penalizer, 0.0, 1000.0)?;
        let currency = match &options.currency {
            Some(code) => {
                Some(normalize::currency(code).map_err(|r| Error::validation("currency", r))?)
            }
            None => None,
        };
        let computed_at = Crm::now();
        let observation_end = options.observation_end.unwrap_or(computed_at);
        let kind = options.kind.as_str().to_string();

        // Read: the summary, streamed in customer order.
        let (currency, summary, counts) = self.db.read(|conn| {
            let currency = match currency {
                Some(c) => Some(c),
                None => {
                    let used: Vec<String> = conn
                        .prepare(
                            "SELECT DISTINCT currency FROM interaction_stats \
                             WHERE kind = ?1 AND currency != '' ORDER BY currency",
                        )?
                        .query_map([&kind], |r| r.get(0))?
                        .collect::<rusqlite::Result<_>>()?;
                    if used.len() > 1 {
                        return Err(Error::validation(
                            "currency",
                            format!(
                                "the purchases are in several currencies ({}); choose one",
                                used.join(", ")
                            ),
                        ));
                    }
                    used.into_iter().next()
                }
            };
            let mut counts = (0u64, 0u64, 0u64); // read, refunds, other currency
            let mut stmt = conn.prepare(PURCHASES_SQL)?;
            let mut rows = stmt.query([&kind])?;
            let mut failure: Option<Error> = None;
            let purchases = std::iter::from_fn(|| {
                loop {
                    let row = match rows.next() {
                        Ok(Some(row)) => row,
                        Ok(None) => return None,
                        Err(e) => {
                            failure = Some(e.into());
                            return None;
                        }
                    };
                    let read = (|| -> Result<_> {
                        let rowid: i64 = row.get(0)?;
                        let at = db::from_micros(row.get(1)?)?;
                        let amount: Option<i64> = row.get(2)?;
                        let code: Option<String> = row.get(3)?;
                        Ok((rowid, at, amount, code))
                    })();
                    let (rowid, at, amount, code) = match read {
                        Ok(v) => v,
                        Err(e) => {
                            failure = Some(e);
                            return None;
                        }
                    };
                    counts.0 += 1;
                    if amount.is_some_and(|a| a < 0) {
                        counts.1 += 1;
                        continue;
                    }
                    if amount.is_some() && code != currency {
                        counts.2 += 1;
                        continue;
                    }
                    return Some((rowid, at, amount.unwrap_or(0)));
                }
            });
            let summary = crate::analytics::summary::summary_of_sorted(
                purchases,
                &SummaryOptions::new(options.unit, observation_end),
            )?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok((currency, summary, counts))
        })?;

        let scale = 10f64.powi(match &currency {
            Some(code) => normalize::currency_exponent(code).unwrap_or(2) as i32,
            None => 2,
        });
        let scored = Scored::compute(&summary, options, scale)?;
        let run = ScoreRun {
            computed_at,
            observation_end,
            options: ScoreOptions {
                currency,
                ..options.clone()
            },
            customers: summary.len() as u64,
            purchases: counts.0,
            skipped_refunds: counts.1,
            skipped_other_currency: counts.2,
            bgnbd: scored.bgnbd.clone(),
            gamma_gamma: scored.gamma_gamma.clone(),
        };
        let json = serde_json::to_string(&run).map_err(|e| Error::Storage(e.to_string()))?;

        // Write: replace the scores whole.
        self.db.write(|tx| {
            tx.execute("DELETE FROM customer_scores", [])?;
            let mut insert = tx.prepare(
                "INSERT INTO customer_scores SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
                 ?11, ?12, ?13, ?14 WHERE EXISTS (SELECT 1 FROM customers WHERE rowid = ?1)",
            )?;
            for i in 0..summary.len() {
                insert.execute(params![
                    summary.customers[i],
                    summary.frequency[i],
                    summary.recency[i],
                    summary.t[i],
                    summary.monetary_value[i] / scale,
                    summary.total_minor[i],
                    scored.rfm.recency[i],
                    scored.rfm.frequency[i],
                    scored.rfm.monetary[i],
                    scored.segments[i].name(),
                    scored.p_alive[i],
                    scored.expected[i],
                    scored.value[i],
                    scored.clv[i],
                ])?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO score_runs (id, computed_at, run) VALUES (1, ?1, ?2)",
                params![computed_at.timestamp_micros(), json],
            )?;
            Ok(())
        })?;
        Ok(run)
    }

    /// The latest [`Crm::compute_scores`] run, if any.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// assert!(crm.score_run()?.is_none());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn score_run(&self) -> Result<Option<ScoreRun>> {
        self.db.read(|conn| {
            let json: Option<String> = conn
                .prepare_cached("SELECT run FROM score_runs WHERE id = 1")?
                .query_map([], |r| r.get(0))?
                .next()
                .transpose()?;
            json.map(|j| serde_json::from_str(&j).map_err(|_| Error::Corrupt))
                .transpose()
        })
    }

    /// A customer's stored scores; `None` if the customer had no purchase
    /// at the latest run (or there was no run). [`Error::NotFound`] if the
    /// customer doesn't exist.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let c = crm.create_customer(crm_core::NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// assert!(crm.customer_scores(c.id)?.is_none());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn customer_scores(&self, customer: CustomerId) -> Result<Option<CustomerScores>> {
        self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            let mut stmt = conn.prepare_cached(
                "SELECT frequency, recency, t, monetary_value, total_minor, rfm_r, rfm_f, \
                 rfm_m, rfm_segment, p_alive, expected_purchases, expected_value, clv \
                 FROM customer_scores WHERE customer_rowid = ?1",
            )?;
            let mut rows = stmt.query([rowid])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            let segment: String = row.get(8)?;
            let rfm_segment = Segment::ALL
                .into_iter()
                .find(|s| s.name() == segment)
                .ok_or(Error::Corrupt)?;
            Ok(Some(CustomerScores {
                customer_id: customer,
                frequency: row.get(0)?,
                recency: row.get(1)?,
                t: row.get(2)?,
                monetary_value: row.get(3)?,
                total_minor: row.get(4)?,
                rfm_r: row.get(5)?,
                rfm_f: row.get(6)?,
                rfm_m: row.get(7)?,
                rfm_segment,
                p_alive: row.get(9)?,
                expected_purchases: row.get(10)?,
                expected_value: row.get(11)?,
                clv: row.get(12)?,
            }))
        })
    }

    /// NPS and CSAT of the survey answers, per period, oldest first; of the
    /// customers matching `segment` only, when given (any filter
    /// expression, e.g. `in_segment("vip")`). See [`SatisfactionQuery`].
    ///
    /// ```
    /// use crm_core::{CustomerRef, InteractionKind, NewInteraction, Period, SatisfactionQuery};
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let c = crm.create_customer(crm_core::NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// for score in [10, 9, 7, 3] {
    ///     crm.log_interaction(NewInteraction {
    ///         score: Some(score),
    ///         ..NewInteraction::new(CustomerRef::Id(c.id), InteractionKind::SurveyResponse)
    ///     })?;
    /// }
    /// let all = crm.satisfaction(&SatisfactionQuery { period: Period::All, ..Default::default() }, None)?;
    /// assert_eq!((all[0].responses, all[0].nps, all[0].csat), (4, 25.0, 50.0));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn satisfaction(
        &self,
        query: &SatisfactionQuery,
        segment: Option<FilterRef<'_>>,
    ) -> Result<Vec<Satisfaction>> {
        if !(0..=10).contains(&query.satisfied_from) {
            return Err(Error::validation("satisfied_from", "must be from 0 to 10"));
        }
        if let (Some(from), Some(to)) = (query.from, query.to) {
            if from > to {
                return Err(Error::validation("from", "must not be after 'to'"));
            }
        }
        self.db.read(|conn| {
            let (condition, mut values) = segment_condition(conn, segment)?;
            let mut sql = format!(
                "SELECT occurred_at, score FROM interactions INDEXED BY interactions_kind_time \
                 WHERE kind = {} AND score IS NOT NULL AND occurred_at >= {} AND occurred_at < {}",
                bind(&mut values, query.kind.as_str().to_string()),
                bind(
                    &mut values,
                    query.from.map_or(i64::MIN, |t| t.timestamp_micros())
                ),
                bind(
                    &mut values,
                    query.to.map_or(i64::MAX, |t| t.timestamp_micros())
                ),
            );
            if let Some(subject) = &query.subject {
                let p = bind(&mut values, subject.clone());
                sql.push_str(&format!(" AND subject = {p}"));
            }
            sql.push_str(&condition);
            let mut groups: std::collections::BTreeMap<Option<NaiveDate>, [u64; 11]> =
                Default::default();
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let at = db::from_micros(row.get(0)?)?;
                let score: i64 = row.get(1)?;
                let counts = groups
                    .entry(query.period.start(at.date_naive()))
                    .or_default();
                counts[score.clamp(0, 10) as usize] += 1;
            }
            Ok(groups
                .into_iter()
                .map(|(period_start, counts)| {
                    let count = |range: std::ops::RangeInclusive<usize>| -> u64 {
                        counts[range].iter().sum()
                    };
                    let responses = count(0..=10);
                    let (promoters, passives, detractors) =
                        (count(9..=10), count(7..=8), count(0..=6));
                    let satisfied = count(query.satisfied_from as usize..=10);
                    let n = responses as f64;
                    let total: u64 = counts.iter().enumerate().map(|(s, k)| s as u64 * k).sum();
                    Satisfaction {
                        period_start,
                        responses,
                        promoters,
                        passives,
                        detractors,
                        nps: 100.0 * (promoters as f64 - detractors as f64) / n,
                        satisfied,
                        csat: 100.0 * satisfied as f64 / n,
                        mean_score: total as f64 / n,
                    }
                })
                .collect())
        })
    }

    /// Retention by acquisition month (see [`cohorts::retention`]) of the
    /// customers' purchases; of the customers matching `segment` only, when
    /// given. Streams the purchases in customer order: memory grows with
    /// the months, not the purchases.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let r = crm.cohort_retention(&crm_core::CohortQuery::default(), None)?;
    /// assert!(r.cohorts.is_empty());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn cohort_retention(
        &self,
        query: &CohortQuery,
        segment: Option<FilterRef<'_>>,
    ) -> Result<Retention> {
        let end = query.observation_end.unwrap_or_else(Crm::now);
        self.db.read(|conn| {
            let (condition, mut values) = segment_condition(conn, segment)?;
            let sql = format!(
                "SELECT customer_rowid, occurred_at FROM interactions \
                 INDEXED BY interactions_kind_customer WHERE kind = {}{condition} \
                 ORDER BY customer_rowid, occurred_at",
                bind(&mut values, query.kind.as_str().to_string())
            );
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(values))?;
            let mut failure: Option<Error> = None;
            let purchases = std::iter::from_fn(|| {
                let read = (|| -> Result<Option<(i64, DateTime<Utc>)>> {
                    let Some(row) = rows.next()? else {
                        return Ok(None);
                    };
                    Ok(Some((row.get(0)?, db::from_micros(row.get(1)?)?)))
                })();
                read.unwrap_or_else(|e| {
                    failure = Some(e);
                    None
                })
            });
            let retention = cohorts::retention_of_sorted(purchases, end);
            match failure {
                Some(e) => Err(e),
                None => Ok(retention),
            }
        })
    }
}

/// The models fitted on a summary and their per-customer predictions.
struct Scored {
    bgnbd: BgNbd,
    gamma_gamma: GammaGamma,
    rfm: crate::analytics::rfm::RfmScores,
    segments: Vec<Segment>,
    p_alive: Vec<f64>,
    expected: Vec<f64>,
    value: Vec<f64>,
    clv: Vec<f64>,
}

impl Scored {
    fn compute(summary: &Summary<i64>, options: &ScoreOptions, scale: f64) -> Result<Scored> {
        let (x, tx, t) = (&summary.frequency, &summary.recency, &summary.t);
        let fit = FitOptions {
            penalizer: options.penalizer,
            ..FitOptions::default()
        };
        let bgnbd = BgNbd::fit_with(x, tx, t, &fit).map_err(|e| model_error("BG/NBD", e))?;
        // The spend model in major units; repeat purchases without value
        // carry no spend information.
        let monetary: Vec<f64> = summary.monetary_value.iter().map(|m| m / scale).collect();
        let spend_x: Vec<f64> = x
            .iter()
            .zip(&monetary)
            .map(|(&x, &m)| if m > 0.0 { x } else { 0.0 })
            .collect();
        let gamma_gamma = GammaGamma::fit_with(&spend_x, &monetary, &fit)
            .map_err(|e| model_error("Gamma-Gamma", e))?;
        let per_day = match options.unit {
            TimeUnit::Weeks => 1.0 / 7.0,
            _ => 1.0,
        };
        let horizon = f64::from(options.horizon_days) * per_day;
        let p_alive = bgnbd.p_alive(x, tx, t)?;
        let expected = bgnbd.expected_purchases(horizon, x, tx, t)?;
        let value = gamma_gamma.expected_average_value(&spend_x, &monetary)?;
        // Lifetime value: the discounted purchases (of the whole history)
        // times the expected order value (of the spend history).
        let clv_options = ClvOptions {
            months: options.clv_months,
            discount_rate: options.discount_rate,
            ..ClvOptions::new(options.unit)
        };
        let mut clv = discounted_purchases(&bgnbd, x, tx, t, &clv_options)?;
        for (c, v) in clv.iter_mut().zip(&value) {
            *c *= v;
        }
        let rfm = summary.rfm()?;
        let segments = rfm.segments();
        for (name, column) in [
            ("p_alive", &p_alive),
            ("expected_purchases", &expected),
            ("expected_value", &value),
            ("clv", &clv),
        ] {
            if let Some(i) = column.iter().position(|v| !v.is_finite()) {
                return Err(Error::validation(
                    "purchases",
                    format!(
                        "the models gave no finite {name} for customer rowid {}",
                        summary.customers[i]
                    ),
                ));
            }
        }
        Ok(Scored {
            bgnbd,
            gamma_gamma,
            rfm,
            segments,
            p_alive,
            expected,
            value,
            clv,
        })
    }
}
