//! Lifecycle stages: where each customer stands in their relationship with
//! the business (subscriber → lead → MQL → SQL → opportunity → customer →
//! evangelist, configurable), with every transition recorded.
//!
//! A [`LifecycleConfig`] lists the *ordered* stages, earliest first, and the
//! *off-track* stages (`other`, `churned`) that sit outside the order. Moves:
//!
//! - to a later ordered stage: always allowed;
//! - to an earlier ordered stage: allowed only if the stage being **left** has
//!   [`LifecycleStage::allow_backward`] (e.g. `opportunity` with
//!   `allow_backward` lets a lost opportunity fall back to `sql`, or to any
//!   earlier stage);
//! - into or out of an off-track stage: always allowed (so churned → lead is
//!   how a win-back re-enters the order);
//! - out of a stage that is no longer configured (a stage of a database
//!   written before stages were configurable): always allowed, as off-track;
//! - to a stage that is not configured: refused with
//!   [`Error::Validation`] on `lifecycle_stage`, suggesting the nearest name.
//!
//! The check runs inside the write, so every path that sets a stage —
//! [`Crm::create_customer`], [`Crm::update_customer`],
//! [`Crm::upsert_customer`], imports, rules and
//! [`Crm::set_lifecycle_stage`] — obeys it, and a refused move stores
//! nothing (a rule's refused move is skipped instead: the customer stays,
//! and the change that triggered the rule goes on). Each stored change
//! appends a [`StageTransition`] with its [`TransitionCause`].
//!
//! ```
//! use crm_core::{Crm, NewCustomer, TransitionCause};
//!
//! let crm = Crm::open_in_memory()?;
//! let ana = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
//! assert_eq!(ana.lifecycle_stage, "subscriber");
//! crm.set_lifecycle_stage(ana.id, "mql", Some("downloaded the price list"))?;
//! // Backwards is refused unless the configuration allows it.
//! assert!(crm.set_lifecycle_stage(ana.id, "lead", None).is_err());
//! let history = crm.stage_history(ana.id)?;
//! assert_eq!(history.len(), 2);
//! assert_eq!((history[1].from.as_deref(), history[1].to.as_str()), (Some("subscriber"), "mql"));
//! assert_eq!(history[1].cause, TransitionCause::Manual);
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db;
use crate::error::{Error, Result};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::customer::{
    Customer, CustomerPatch, DEFAULT_LIFECYCLE_STAGE, DEFAULT_OFF_TRACK_STAGES, LIFECYCLE_STAGES,
    MAX_ATTRIBUTE_TEXT, Normalizer,
};
use crate::model::ids::CustomerId;
use crate::model::normalize;

/// Most stages (ordered and off-track together) a configuration may have.
pub const MAX_STAGES: usize = 64;

/// One ordered lifecycle stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleStage {
    /// Its name: a lower-case identifier such as `mql`.
    pub name: String,
    /// Whether customers in this stage may be moved back to any earlier
    /// ordered stage (the default is no: the order only moves forward).
    #[serde(default)]
    pub allow_backward: bool,
}

impl LifecycleStage {
    /// A stage that only moves forward.
    pub fn new(name: impl Into<String>) -> Self {
        LifecycleStage {
            name: name.into(),
            allow_backward: false,
        }
    }
}

/// The configured lifecycle stages of a CRM; see the [module
/// documentation](self) for which moves it allows.
///
/// The default is the ordered stages subscriber, lead, mql, sql,
/// opportunity, customer, evangelist (none allowing backward moves), the
/// off-track stages `other` and `churned`, and `subscriber` for new
/// customers given no stage.
///
/// ```
/// use crm_core::{Crm, LifecycleConfig, LifecycleStage};
///
/// let crm = Crm::open_in_memory()?;
/// let mut config = crm.lifecycle_config()?;
/// assert_eq!(config.stages[2].name, "mql");
/// config.stages.insert(2, LifecycleStage::new("trial"));
/// config.stages[4].allow_backward = true; // sql may fall back
/// crm.set_lifecycle_config(&config)?;
/// assert_eq!(crm.lifecycle_config()?, config);
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// The ordered stages, earliest first; what `stage >= "mql"` in a filter
    /// compares by.
    pub stages: Vec<LifecycleStage>,
    /// Stages outside the order (e.g. `other`, `churned`): ordered
    /// comparisons never match them and moves into and out of them are
    /// always allowed.
    #[serde(default)]
    pub off_track: Vec<String>,
    /// The stage of a customer created without one.
    pub default_stage: String,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            stages: LIFECYCLE_STAGES
                .iter()
                .map(|s| LifecycleStage::new(*s))
                .collect(),
            off_track: DEFAULT_OFF_TRACK_STAGES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            default_stage: DEFAULT_LIFECYCLE_STAGE.into(),
        }
    }
}

fn stage_identifier(field: &str, raw: &str) -> Result<String> {
    normalize::attribute_key(&raw.trim().to_ascii_lowercase())
        .map_err(|r| Error::validation(field, format!("a stage name {r}")))
}

impl LifecycleConfig {
    /// The configuration checked and normalized (names trimmed and
    /// lower-cased): at least one ordered stage, names that are identifiers
    /// (like attribute keys), unique across both lists, and a default stage
    /// that is one of them.
    pub fn validated(&self) -> Result<LifecycleConfig> {
        if self.stages.is_empty() {
            return Err(Error::validation(
                "lifecycle.stages",
                "needs at least one ordered stage",
            ));
        }
        if self.stages.len() + self.off_track.len() > MAX_STAGES {
            return Err(Error::validation(
                "lifecycle.stages",
                format!("more than {MAX_STAGES} stages"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, s) in self.stages.iter().enumerate() {
            let name = stage_identifier(&format!("lifecycle.stages[{i}]"), &s.name)?;
            if !seen.insert(name.clone()) {
                return Err(Error::validation(
                    format!("lifecycle.stages[{i}]"),
                    format!("'{name}' is listed twice"),
                ));
            }
            stages.push(LifecycleStage {
                name,
                allow_backward: s.allow_backward,
            });
        }
        let mut off_track = Vec::with_capacity(self.off_track.len());
        for (i, s) in self.off_track.iter().enumerate() {
            let name = stage_identifier(&format!("lifecycle.off_track[{i}]"), s)?;
            if !seen.insert(name.clone()) {
                return Err(Error::validation(
                    format!("lifecycle.off_track[{i}]"),
                    format!("'{name}' is listed twice"),
                ));
            }
            off_track.push(name);
        }
        let default_stage = stage_identifier("lifecycle.default_stage", &self.default_stage)?;
        if !seen.contains(&default_stage) {
            return Err(Error::validation(
                "lifecycle.default_stage",
                format!("'{default_stage}' is not one of the configured stages"),
            ));
        }
        Ok(LifecycleConfig {
            stages,
            off_track,
            default_stage,
        })
    }

    /// The position of `stage` in the order (0 = earliest), or `None` for an
    /// off-track or unknown stage.
    pub fn position(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == stage)
    }

    /// Whether `stage` is configured (ordered or off-track).
    pub fn contains(&self, stage: &str) -> bool {
        self.position(stage).is_some() || self.off_track.iter().any(|s| s == stage)
    }

    /// Every configured stage name: the ordered ones, then the off-track
    /// ones.
    pub fn names(&self) -> Vec<&str> {
        self.stages
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.off_track.iter().map(String::as_str))
            .collect()
    }

    /// Checks that `stage` is configured; the error suggests the nearest
    /// configured name.
    pub fn check_stage(&self, stage: &str) -> Result<()> {
        if self.contains(stage) {
            return Ok(());
        }
        let names = self.names();
        let hint = match crate::import::nearest(stage, &names) {
            Some(n) => format!(" (did you mean '{n}'?)"),
            None => format!(" (the stages are {})", names.join(", ")),
        };
        Err(Error::validation(
            "lifecycle_stage",
            format!("'{stage}' is not a configured stage{hint}"),
        ))
    }

    /// Checks a move from `from` (`None`: a new customer) to `to`; see the
    /// [module documentation](self) for the rules.
    ///
    /// ```
    /// use crm_core::LifecycleConfig;
    /// let config = LifecycleConfig::default();
    /// assert!(config.check_move(Some("lead"), "customer").is_ok());
    /// assert!(config.check_move(Some("customer"), "lead").is_err());
    /// assert!(config.check_move(Some("customer"), "churned").is_ok());
    /// assert!(config.check_move(Some("churned"), "lead").is_ok());
    /// assert!(config.check_move(None, "lemur").is_err());
    /// ```
    pub fn check_move(&self, from: Option<&str>, to: &str) -> Result<()> {
        self.check_stage(to)?;
        let Some(from) = from else { return Ok(()) };
        if from == to {
            return Ok(());
        }
        let (Some(a), Some(b)) = (self.position(from), self.position(to)) else {
            return Ok(());
        };
        if b < a && !self.stages[a].allow_backward {
            return Err(Error::validation(
                "lifecycle_stage",
                format!(
                    "moving back from '{from}' to '{to}' is not allowed (the configuration \
                     does not allow '{from}' to move backward)"
                ),
            ));
        }
        Ok(())
    }
}

/// Why a customer changed stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    /// A caller set it (create, update, upsert, [`Crm::set_lifecycle_stage`]).
    Manual,
    /// An import set it.
    Import,
    /// A rule's action set it ([`StageTransition::rule`] names the rule).
    Rule,
    /// The stage the customer had when the database was upgraded to record
    /// transitions.
    Upgrade,
}

impl TransitionCause {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionCause::Manual => "manual",
            TransitionCause::Import => "import",
            TransitionCause::Rule => "rule",
            TransitionCause::Upgrade => "upgrade",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(TransitionCause::Manual),
            "import" => Some(TransitionCause::Import),
            "rule" => Some(TransitionCause::Rule),
            "upgrade" => Some(TransitionCause::Upgrade),
            _ => None,
        }
    }

    /// The cause of changes made in `ctx`: the rule acting, else an import,
    /// else a caller.
    pub(crate) fn of(ctx: &ChangeContext) -> Self {
        if ctx.rule.is_some() {
            TransitionCause::Rule
        } else if ctx.importing {
            TransitionCause::Import
        } else {
            TransitionCause::Manual
        }
    }
}

/// One change of a customer's stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTransition {
    /// The stage left; `None` for the stage the customer was created in.
    pub from: Option<String>,
    /// The stage entered.
    pub to: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub cause: TransitionCause,
    /// The rule that made it, when the cause is [`TransitionCause::Rule`].
    pub rule: Option<String>,
    /// The note given with [`Crm::set_lifecycle_stage`].
    pub note: Option<String>,
}

/// How long a customer has spent in one stage, all visits together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTime {
    /// The stage.
    pub stage: String,
    /// Whole seconds spent in it (up to now for the current stage).
    pub seconds: i64,
    /// How many times the customer entered it.
    pub entered: u32,
}

/// How many customers were in a stage at one instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCount {
    /// The stage.
    pub stage: String,
    /// Customers in it.
    pub customers: u64,
}

/// One ordered stage of a funnel over a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The stage.
    pub stage: String,
    /// Customers who entered it during the period.
    pub entered: u64,
    /// Of those, how many moved on to a later ordered stage afterwards,
    /// still within the period.
    pub advanced: u64,
    /// `advanced / entered`; `None` when nobody entered.
    pub conversion_rate: Option<f64>,
}

/// Sets a customer's stage inside a write: the path of
/// [`Crm::set_lifecycle_stage`]. Returns the customer as stored
/// if the stage changed, `None` if it was already in that stage. The move is
/// checked against the configuration and recorded with the cause `ctx`
/// implies (and `note`).
pub(crate) fn set_stage_tx(
    tx: &rusqlite::Connection,
    normalizer: &Normalizer,
    ctx: &ChangeContext,
    customer_rowid: i64,
    stage: &str,
    note: Option<&str>,
) -> Result<Option<Customer>> {
    let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => {
            Some(normalize::text(n, MAX_ATTRIBUTE_TEXT).map_err(|r| Error::validation("note", r))?)
        }
        None => None,
    };
    if stage.trim().is_empty() {
        return Err(Error::validation("lifecycle_stage", "is empty"));
    }
    let mut customer = db::customers::get_by_rowid(tx, customer_rowid)?
        .ok_or(Error::NotFound { entity: "customer" })?;
    let patch = CustomerPatch {
        lifecycle_stage: Some(stage.to_string()),
        ..CustomerPatch::default()
    };
    let changed = normalizer.apply_patch(&mut customer, &patch, Crm::now())?;
    if changed.is_empty() {
        // Still refuse a stage that is not configured.
        db::lifecycle::config(tx)?.check_stage(&customer.lifecycle_stage)?;
        return Ok(None);
    }
    db::customers::update_noted(
        tx,
        ctx,
        customer_rowid,
        &mut customer,
        &changed,
        note.as_deref(),
    )?;
    Ok(Some(customer))
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

impl Crm {
    /// The lifecycle configuration ([`LifecycleConfig::default`] until one
    /// is set).
    pub fn lifecycle_config(&self) -> Result<LifecycleConfig> {
        self.db
            .read(|conn| Ok((*db::lifecycle::config(conn)?).clone()))
    }

    /// Replaces the lifecycle configuration after checking it
    /// ([`LifecycleConfig::validated`]). Removing a stage that customers are
    /// in is refused with [`Error::Conflict`] (move them first); transitions
    /// already recorded keep their names. The change is logged
    /// ([`EntityKind::Settings`], id all zeros).
    pub fn set_lifecycle_config(&self, config: &LifecycleConfig) -> Result<LifecycleConfig> {
        let config = config.validated()?;
        self.db.write(|tx| {
            let old = db::lifecycle::config(tx)?;
            let removed: Vec<&str> = old
                .names()
                .into_iter()
                .filter(|s| !config.contains(s))
                .collect();
            let occupied = db::lifecycle::customers_in(tx, &removed)?;
            if let Some((stage, n)) = occupied.first() {
                let others = occupied.len() - 1;
                let more = if others > 0 {
                    format!(" (and {others} more removed stages have customers)")
                } else {
                    String::new()
                };
                return Err(Error::conflict(
                    "lifecycle.stages",
                    format!(
                        "can't remove stage '{stage}': {n} customer(s) are in it{more}; move them first"
                    ),
                ));
            }
            if *old == config {
                return Ok(());
            }
            db::lifecycle::save_config(tx, &config)?;
            db::changes::append(
                tx,
                &self.context,
                Self::now(),
                EntityKind::Settings,
                &[0; 16],
                ChangeOp::Updated,
                &["lifecycle"],
            )
        })?;
        Ok(config)
    }

    /// Moves a customer to `stage` (a manual transition, with an optional
    /// note kept on it) and returns the customer as stored. Setting the
    /// stage the customer is already in changes nothing.
    pub fn set_lifecycle_stage(
        &self,
        id: CustomerId,
        stage: &str,
        note: Option<&str>,
    ) -> Result<Customer> {
        self.db.write(|tx| {
            let rowid =
                db::customers::rowid_of(tx, id)?.ok_or(Error::NotFound { entity: "customer" })?;
            let changed = set_stage_tx(tx, &self.normalizer, &self.context, rowid, stage, note)?;
            let rules_acted = match changed {
                Some(_) => crate::rules::fire(
                    self,
                    tx,
                    crate::rules::Event::CustomerUpdated {
                        rowid,
                        fields: vec!["lifecycle_stage".into()],
                    },
                )?,
                None => false,
            };
            match changed {
                Some(c) if !rules_acted => Ok(c),
                _ => db::customers::get_by_rowid(tx, rowid)?
                    .ok_or(Error::NotFound { entity: "customer" }),
            }
        })
    }

    /// Every stage transition of a customer, oldest first (the first has no
    /// `from`: the stage the customer was created in).
    pub fn stage_history(&self, id: CustomerId) -> Result<Vec<StageTransition>> {
        self.db.read(|conn| {
            let rowid =
                db::customers::rowid_of(conn, id)?.ok_or(Error::NotFound { entity: "customer" })?;
            db::lifecycle::history(conn, rowid)
        })
    }

    /// How long the customer has spent in each stage they have been in, up
    /// to `now` (default: the current time): configured stages in their
    /// order (ordered, then off-track), then any stage no longer configured.
    ///
    /// ```
    /// use crm_core::{Crm, NewCustomer};
    /// let crm = Crm::open_in_memory()?;
    /// let c = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// crm.set_lifecycle_stage(c.id, "lead", None)?;
    /// let later = chrono::Utc::now() + chrono::Duration::hours(2);
    /// let times = crm.time_in_stages(c.id, Some(later))?;
    /// assert_eq!(times.iter().map(|t| t.stage.as_str()).collect::<Vec<_>>(), ["subscriber", "lead"]);
    /// assert!(times[1].seconds >= 7_199);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn time_in_stages(
        &self,
        id: CustomerId,
        now: Option<DateTime<Utc>>,
    ) -> Result<Vec<StageTime>> {
        let now = now.map_or_else(Self::now, micros);
        let (history, config) = self.db.read(|conn| {
            let rowid =
                db::customers::rowid_of(conn, id)?.ok_or(Error::NotFound { entity: "customer" })?;
            Ok((
                db::lifecycle::history(conn, rowid)?,
                (*db::lifecycle::config(conn)?).clone(),
            ))
        })?;
        Ok(time_in_stages(&history, &config, now))
    }

    /// How many customers were in each stage at the instant `at`, as the
    /// recorded transitions tell: configured stages in their order (with
    /// zeros), then any other stage someone was in. Customers deleted since
    /// are not counted.
    pub fn stage_counts(&self, at: DateTime<Utc>) -> Result<Vec<StageCount>> {
        let at = micros(at);
        self.db.read(|conn| {
            let config = db::lifecycle::config(conn)?;
            let counts = db::lifecycle::counts_at(conn, db::to_micros(at))?;
            let mut out: Vec<StageCount> = config
                .names()
                .into_iter()
                .map(|s| StageCount {
                    stage: s.to_string(),
                    customers: counts.get(s).copied().unwrap_or(0),
                })
                .collect();
            let mut others: Vec<(&String, &u64)> = counts
                .iter()
                .filter(|(s, n)| **n > 0 && !config.contains(s))
                .collect();
            others.sort();
            out.extend(others.into_iter().map(|(s, n)| StageCount {
                stage: s.clone(),
                customers: *n,
            }));
            Ok(out)
        })
    }

    /// The funnel over `[since, until)`: for each ordered stage, how many
    /// customers entered it in the period and how many of them then moved
    /// on to a later ordered stage within the period, with the conversion
    /// rate.
    ///
    /// ```
    /// use crm_core::{Crm, NewCustomer};
    /// let crm = Crm::open_in_memory()?;
    /// let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    /// for (i, name) in ["Ana", "Bo"].into_iter().enumerate() {
    ///     let c = crm.create_customer(NewCustomer { name: Some(name.into()), ..Default::default() })?;
    ///     if i == 0 {
    ///         crm.set_lifecycle_stage(c.id, "lead", None)?;
    ///     }
    /// }
    /// let funnel = crm.stage_funnel(start, chrono::Utc::now() + chrono::Duration::seconds(1))?;
    /// assert_eq!((funnel[0].stage.as_str(), funnel[0].entered, funnel[0].advanced), ("subscriber", 2, 1));
    /// assert_eq!(funnel[0].conversion_rate, Some(0.5));
    /// assert_eq!(funnel[2].conversion_rate, None);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn stage_funnel(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<FunnelStep>> {
        let (since, until) = (micros(since), micros(until));
        if until < since {
            return Err(Error::validation("until", "is before since"));
        }
        self.db.read(|conn| {
            let config = db::lifecycle::config(conn)?;
            let names: Vec<&str> = config.stages.iter().map(|s| s.name.as_str()).collect();
            let rows =
                db::lifecycle::funnel(conn, &names, db::to_micros(since), db::to_micros(until))?;
            Ok(names
                .iter()
                .enumerate()
                .map(|(i, stage)| {
                    let (entered, advanced) = rows.get(&i).copied().unwrap_or((0, 0));
                    FunnelStep {
                        stage: stage.to_string(),
                        entered,
                        advanced,
                        conversion_rate: (entered > 0).then(|| advanced as f64 / entered as f64),
                    }
                })
                .collect())
        })
    }
}

/// Sums the time between consecutive transitions per stage.
fn time_in_stages(
    history: &[StageTransition],
    config: &LifecycleConfig,
    now: DateTime<Utc>,
) -> Vec<StageTime> {
    let mut totals: HashMap<&str, (i64, u32)> = HashMap::new();
    let mut first_seen: Vec<&str> = Vec::new();
    for (i, t) in history.iter().enumerate() {
        let end = history.get(i + 1).map_or(now, |next| next.at);
        let micros = (end - t.at).num_microseconds().unwrap_or(i64::MAX).max(0);
        let entry = totals.entry(t.to.as_str()).or_insert_with(|| {
            first_seen.push(t.to.as_str());
            (0, 0)
        });
        entry.0 = entry.0.saturating_add(micros);
        entry.1 += 1;
    }
    let configured = config.names();
    let order = configured
        .iter()
        .copied()
        .filter(|s| totals.contains_key(s))
        .chain(first_seen.into_iter().filter(|s| !config.contains(s)));
    order
        .map(|s| {
            let (micros, entered) = totals[s];
            StageTime {
                stage: s.to_string(),
                seconds: micros / 1_000_000,
                entered,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_normalizes_and_refuses_bad_configurations() {
        let mut c = LifecycleConfig::default();
        c.stages[0].name = " Subscriber ".into();
        assert_eq!(c.validated().unwrap(), LifecycleConfig::default());

        let bad = |f: fn(&mut LifecycleConfig)| {
            let mut c = LifecycleConfig::default();
            f(&mut c);
            c.validated().unwrap_err()
        };
        assert!(matches!(
            bad(|c| c.stages.clear()),
            Error::Validation { .. }
        ));
        assert!(matches!(
            bad(|c| c.off_track.push("lead".into())),
            Error::Validation { field, .. } if field == "lifecycle.off_track[2]"
        ));
        assert!(matches!(
            bad(|c| c.stages[1].name = "9lives".into()),
            Error::Validation { field, .. } if field == "lifecycle.stages[1]"
        ));
        assert!(matches!(
            bad(|c| c.default_stage = "nobody".into()),
            Error::Validation { field, .. } if field == "lifecycle.default_stage"
        ));
    }

    #[test]
    fn moves_follow_the_order_and_allow_backward_of_the_stage_left() {
        let mut c = LifecycleConfig::default();
        c.stages[4].allow_backward = true; // opportunity
        assert!(c.check_move(Some("opportunity"), "lead").is_ok());
        assert!(c.check_move(Some("customer"), "opportunity").is_err());
        assert!(c.check_move(Some("lead"), "lead").is_ok());
        assert!(c.check_move(Some("prospect"), "lead").is_ok());
        let Error::Validation { field, reason } = c.check_move(Some("lead"), "mq1").unwrap_err()
        else {
            panic!()
        };
        assert_eq!(field, "lifecycle_stage");
        assert!(reason.contains("did you mean 'mql'"), "{reason}");
    }

    #[test]
    fn time_in_stages_adds_up_visits_in_configured_order() {
        let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let tr = |from: Option<&str>, to: &str, secs: i64| StageTransition {
            from: from.map(str::to_string),
            to: to.into(),
            at: t0 + chrono::Duration::seconds(secs),
            cause: TransitionCause::Manual,
            rule: None,
            note: None,
        };
        let history = [
            tr(None, "lead", 0),
            tr(Some("lead"), "churned", 10),
            tr(Some("churned"), "lead", 30),
            tr(Some("lead"), "prospect", 35),
        ];
        let times = time_in_stages(
            &history,
            &LifecycleConfig::default(),
            t0 + chrono::Duration::seconds(100),
        );
        let got: Vec<(&str, i64, u32)> = times
            .iter()
            .map(|t| (t.stage.as_str(), t.seconds, t.entered))
            .collect();
        assert_eq!(
            got,
            [("lead", 15, 2), ("churned", 20, 1), ("prospect", 65, 1)]
        );
    }
}
