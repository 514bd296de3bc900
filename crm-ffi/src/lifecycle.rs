//! Lifecycle stages for Kotlin and Swift: crm-core's `lifecycle` (the
//! configured stages, the moves they allow, the recorded transitions and
//! the queries over them) as methods of `Crm`.
//!
//! Only conversions live here: times cross as `SystemTime`, ids as strings;
//! every check (unknown stages, backward moves, removing a stage customers
//! are in) and so every error with its field is crm-core's.

use std::time::SystemTime;

use crm_core::{
    FunnelStep as CoreFunnelStep, LifecycleConfig as CoreLifecycleConfig,
    LifecycleStage as CoreLifecycleStage, StageCount as CoreStageCount, StageTime as CoreStageTime,
    StageTransition as CoreStageTransition, TransitionCause as CoreTransitionCause,
};

use crate::Crm;
use crate::error::{CrmError, guard};
use crate::records::{Customer, customer_id_in, time_in, time_out};

/// One ordered lifecycle stage.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LifecycleStage {
    /// Its name: a lower-case identifier such as `mql`.
    pub name: String,
    /// Whether customers in this stage may move back to any earlier ordered
    /// stage.
    #[uniffi(default = false)]
    pub allow_backward: bool,
}

/// The configured lifecycle stages: `stages` ordered (earliest first),
/// `off_track` outside the order (entered and left freely),
/// `default_stage` for new customers given none.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LifecycleConfig {
    /// The ordered stages, earliest first.
    pub stages: Vec<LifecycleStage>,
    /// Stages outside the order (e.g. `other`, `churned`).
    #[uniffi(default)]
    pub off_track: Vec<String>,
    /// The stage of a customer created without one.
    pub default_stage: String,
}

impl From<CoreLifecycleConfig> for LifecycleConfig {
    fn from(c: CoreLifecycleConfig) -> Self {
        LifecycleConfig {
            stages: c
                .stages
                .into_iter()
                .map(|s| LifecycleStage {
                    name: s.name,
                    allow_backward: s.allow_backward,
                })
                .collect(),
            off_track: c.off_track,
            default_stage: c.default_stage,
        }
    }
}

impl From<LifecycleConfig> for CoreLifecycleConfig {
    fn from(c: LifecycleConfig) -> Self {
        CoreLifecycleConfig {
            stages: c
                .stages
                .into_iter()
                .map(|s| CoreLifecycleStage {
                    name: s.name,
                    allow_backward: s.allow_backward,
                })
                .collect(),
            off_track: c.off_track,
            default_stage: c.default_stage,
        }
    }
}

/// Why a customer changed stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TransitionCause {
    /// A caller set it.
    Manual,
    /// An import set it.
    Import,
    /// A rule's action set it.
    Rule,
    /// The stage the customer had when the database started recording
    /// transitions.
    Upgrade,
}

impl From<CoreTransitionCause> for TransitionCause {
    fn from(c: CoreTransitionCause) -> Self {
        match c {
            CoreTransitionCause::Manual => TransitionCause::Manual,
            CoreTransitionCause::Import => TransitionCause::Import,
            CoreTransitionCause::Rule => TransitionCause::Rule,
            CoreTransitionCause::Upgrade => TransitionCause::Upgrade,
        }
    }
}

/// One change of a customer's stage.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StageTransition {
    /// The stage left; `None` for the stage the customer was created in.
    pub from: Option<String>,
    /// The stage entered.
    pub to: String,
    /// When.
    pub at: SystemTime,
    /// Why.
    pub cause: TransitionCause,
    /// The rule that made it, when `cause` is `Rule`.
    pub rule: Option<String>,
    /// The note given with `setLifecycleStage`.
    pub note: Option<String>,
}

impl From<CoreStageTransition> for StageTransition {
    fn from(t: CoreStageTransition) -> Self {
        StageTransition {
            from: t.from,
            to: t.to,
            at: time_out(t.at),
            cause: t.cause.into(),
            rule: t.rule,
            note: t.note,
        }
    }
}

/// How long a customer spent in one stage, all visits together.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StageTime {
    /// The stage.
    pub stage: String,
    /// Whole seconds spent in it.
    pub seconds: i64,
    /// How many times the customer entered it.
    pub entered: u32,
}

impl From<CoreStageTime> for StageTime {
    fn from(t: CoreStageTime) -> Self {
        StageTime {
            stage: t.stage,
            seconds: t.seconds,
            entered: t.entered,
        }
    }
}

/// How many customers were in a stage at one instant.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct StageCount {
    /// The stage.
    pub stage: String,
    /// Customers in it.
    pub customers: u64,
}

impl From<CoreStageCount> for StageCount {
    fn from(c: CoreStageCount) -> Self {
        StageCount {
            stage: c.stage,
            customers: c.customers,
        }
    }
}

/// One ordered stage of a funnel over a period.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct FunnelStep {
    /// The stage.
    pub stage: String,
    /// Customers who entered it during the period.
    pub entered: u64,
    /// Of those, how many then reached a later ordered stage within the
    /// period.
    pub advanced: u64,
    /// `advanced / entered`; `None` when nobody entered.
    pub conversion_rate: Option<f64>,
}

impl From<CoreFunnelStep> for FunnelStep {
    fn from(f: CoreFunnelStep) -> Self {
        FunnelStep {
            stage: f.stage,
            entered: f.entered,
            advanced: f.advanced,
            conversion_rate: f.conversion_rate,
        }
    }
}

#[uniffi::export]
impl Crm {
    /// The lifecycle configuration (the default stages until one is set:
    /// subscriber, lead, mql, sql, opportunity, customer, evangelist; off
    /// track other and churned; new customers start as subscriber).
    pub fn lifecycle_config(&self) -> Result<LifecycleConfig, CrmError> {
        guard(|| Ok(self.inner.lifecycle_config()?.into()))
    }

    /// Replaces the lifecycle configuration and returns it as stored (names
    /// lower-cased). `Validation` for a bad one; `Conflict` when it removes
    /// a stage customers are in. Nothing changes on error.
    pub fn set_lifecycle_config(
        &self,
        config: LifecycleConfig,
    ) -> Result<LifecycleConfig, CrmError> {
        guard(|| Ok(self.inner.set_lifecycle_config(&config.into())?.into()))
    }

    /// Moves a customer to `stage` (a manual transition; `note` is kept on
    /// it) and returns the customer as stored. `Validation` on
    /// `lifecycle_stage` for a stage that is not configured or a backward
    /// move the configuration does not allow.
    #[uniffi::method(default(note = None))]
    pub fn set_lifecycle_stage(
        &self,
        id: String,
        stage: String,
        note: Option<String>,
    ) -> Result<Customer, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            Ok(self
                .inner
                .set_lifecycle_stage(id, &stage, note.as_deref())?
                .into())
        })
    }

    /// Every stage transition of a customer, oldest first.
    pub fn stage_history(&self, id: String) -> Result<Vec<StageTransition>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            Ok(self
                .inner
                .stage_history(id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The time a customer spent in each stage they have been in, up to
    /// `now` (default: the current time), in the configured order.
    #[uniffi::method(default(now = None))]
    pub fn time_in_stages(
        &self,
        id: String,
        now: Option<SystemTime>,
    ) -> Result<Vec<StageTime>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            let now = now.map(|t| time_in("now", t)).transpose()?;
            Ok(self
                .inner
                .time_in_stages(id, now)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// How many customers were in each stage at the instant `at`: every
    /// configured stage, in order.
    pub fn stage_counts(&self, at: SystemTime) -> Result<Vec<StageCount>, CrmError> {
        guard(|| {
            let at = time_in("at", at)?;
            Ok(self
                .inner
                .stage_counts(at)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The funnel from `since` (inclusive) until `until` (exclusive), one
    /// step per ordered stage.
    pub fn stage_funnel(
        &self,
        since: SystemTime,
        until: SystemTime,
    ) -> Result<Vec<FunnelStep>, CrmError> {
        guard(|| {
            let since = time_in("since", since)?;
            let until = time_in("until", until)?;
            Ok(self
                .inner
                .stage_funnel(since, until)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }
}
