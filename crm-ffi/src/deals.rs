//! Pipelines, deals, the weighted forecast and tasks for Kotlin and Swift:
//! crm-core's `deals`, as methods of `Crm`.
//!
//! Only conversions live here. Ids cross as strings, times as `SystemTime`,
//! dates (a deal's expected close, the forecast's range) as `"YYYY-MM-DD"`,
//! money as minor units (`Long`). Patches set the fields given and clear
//! the fields named in `clear` (with crm-core's `DealPatch::clear` and
//! `TaskPatch::clear`). Every check, default and error is crm-core's.

use std::time::SystemTime;

use crm_core::{
    Deal as CoreDeal, DealId as CoreDealId, DealPatch as CoreDealPatch, DealQuery as CoreDealQuery,
    DealStageChange as CoreDealStageChange, DealStatus as CoreDealStatus, Forecast as CoreForecast,
    ForecastQuery as CoreForecastQuery, ForecastStage as CoreForecastStage, NewDeal as CoreNewDeal,
    NewPipeline as CoreNewPipeline, NewTask as CoreNewTask, Page as CorePage,
    Pipeline as CorePipeline, PipelineStage as CorePipelineStage, Priority as CorePriority,
    Task as CoreTask, TaskId as CoreTaskId, TaskPatch as CoreTaskPatch, TaskQuery as CoreTaskQuery,
    TaskStatus as CoreTaskStatus,
};

use crate::Crm;
use crate::error::{CrmError, guard};
use crate::records::{customer_id_in, date_in, date_out, time_in, time_out};

/// A deal id from the host; a malformed one is a validation error on
/// `field`.
fn deal_id_in(field: &str, s: &str) -> Result<CoreDealId, CrmError> {
    s.parse::<CoreDealId>().map_err(|e| renamed(e, field))
}

fn task_id_in(field: &str, s: &str) -> Result<CoreTaskId, CrmError> {
    s.parse::<CoreTaskId>().map_err(|e| renamed(e, field))
}

fn renamed(err: crm_core::Error, field: &str) -> CrmError {
    match err {
        crm_core::Error::Validation { reason, .. } => CrmError::Validation {
            field: field.to_string(),
            reason,
        },
        other => other.into(),
    }
}

fn opt_customer(field: &str, s: Option<String>) -> Result<Option<crm_core::CustomerId>, CrmError> {
    s.map(|s| customer_id_in(field, &s)).transpose()
}

fn opt_date(field: &str, s: Option<String>) -> Result<Option<chrono::NaiveDate>, CrmError> {
    s.map(|s| date_in(field, &s)).transpose()
}

// ----- pipelines ------------------------------------------------------------------

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PipelineStage {
    /// Its name, unique within the pipeline (ignoring case).
    pub name: String,
    /// The default probability (percent, 0–100) that a deal in it is won;
    /// a won stage has 100, a lost stage 0.
    pub probability: u8,
    /// Whether deals in it are closed (won or lost).
    #[uniffi(default = false)]
    pub closed: bool,
    /// Whether deals in it are won; implies `closed`.
    #[uniffi(default = false)]
    pub won: bool,
}

impl From<CorePipelineStage> for PipelineStage {
    fn from(s: CorePipelineStage) -> Self {
        PipelineStage {
            name: s.name,
            probability: s.probability,
            closed: s.closed,
            won: s.won,
        }
    }
}

impl From<PipelineStage> for CorePipelineStage {
    fn from(s: PipelineStage) -> Self {
        CorePipelineStage {
            name: s.name,
            probability: s.probability,
            closed: s.closed,
            won: s.won,
        }
    }
}

/// A sales pipeline: ordered stages in one currency.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Pipeline {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// The ISO-4217 currency of its deals.
    pub currency: String,
    /// Its stages, in order.
    pub stages: Vec<PipelineStage>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its stages last changed.
    pub updated_at: SystemTime,
}

impl From<CorePipeline> for Pipeline {
    fn from(p: CorePipeline) -> Self {
        Pipeline {
            id: p.id.to_string(),
            name: p.name,
            currency: p.currency,
            stages: p.stages.into_iter().map(Into::into).collect(),
            created_at: time_out(p.created_at),
            updated_at: time_out(p.updated_at),
        }
    }
}

fn stages_in(stages: Vec<PipelineStage>) -> Vec<CorePipelineStage> {
    stages.into_iter().map(Into::into).collect()
}

// ----- deals ------------------------------------------------------------------------

/// Where a deal stands; follows from its stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum DealStatus {
    /// In an open stage.
    Open,
    /// In a closed, won stage.
    Won,
    /// In a closed, lost stage.
    Lost,
}

impl From<CoreDealStatus> for DealStatus {
    fn from(s: CoreDealStatus) -> Self {
        match s {
            CoreDealStatus::Open => DealStatus::Open,
            CoreDealStatus::Won => DealStatus::Won,
            CoreDealStatus::Lost => DealStatus::Lost,
        }
    }
}

impl From<DealStatus> for CoreDealStatus {
    fn from(s: DealStatus) -> Self {
        match s {
            DealStatus::Open => CoreDealStatus::Open,
            DealStatus::Won => CoreDealStatus::Won,
            DealStatus::Lost => CoreDealStatus::Lost,
        }
    }
}

/// A deal to create. `None` means crm-core's default.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewDeal {
    /// The pipeline's name.
    pub pipeline: String,
    /// What is being sold.
    pub title: String,
    /// Its value in minor units (0 to 10^15).
    pub value_minor: i64,
    /// The stage it starts in; default: the pipeline's first open stage.
    #[uniffi(default)]
    pub stage: Option<String>,
    /// Its currency; default and only accepted value: the pipeline's.
    #[uniffi(default)]
    pub currency: Option<String>,
    /// Who works on it.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// When it is expected to close, `YYYY-MM-DD`.
    #[uniffi(default)]
    pub expected_close: Option<String>,
    /// Its probability (percent), overriding the stage's default.
    #[uniffi(default)]
    pub probability: Option<u8>,
    /// The customer it is with.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// The organization it is with (a customer of kind organization).
    #[uniffi(default)]
    pub organization_id: Option<String>,
    /// Why it was lost (required when created in a lost stage) or won.
    #[uniffi(default)]
    pub close_reason: Option<String>,
}

impl TryFrom<NewDeal> for CoreNewDeal {
    type Error = CrmError;

    fn try_from(d: NewDeal) -> Result<Self, CrmError> {
        Ok(CoreNewDeal {
            pipeline: d.pipeline,
            title: d.title,
            stage: d.stage,
            value_minor: d.value_minor,
            currency: d.currency,
            owner: d.owner,
            expected_close: opt_date("expected_close", d.expected_close)?,
            probability: d.probability,
            customer_id: opt_customer("customer_id", d.customer_id)?,
            organization_id: opt_customer("organization_id", d.organization_id)?,
            close_reason: d.close_reason,
        })
    }
}

/// A deal as stored.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Deal {
    /// Its id.
    pub id: String,
    /// Its pipeline's name.
    pub pipeline: String,
    /// What is being sold.
    pub title: String,
    /// The stage it is in.
    pub stage: String,
    /// Its value in minor units of `currency`.
    pub value_minor: i64,
    /// Its pipeline's currency.
    pub currency: String,
    /// Its effective probability (percent): 100 when won, 0 when lost,
    /// else `probability_override` or the stage's default.
    pub probability: u8,
    /// The probability set on the deal itself.
    pub probability_override: Option<u8>,
    /// Who works on it.
    pub owner: Option<String>,
    /// When it is expected to close, `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    /// The customer it is with.
    pub customer_id: Option<String>,
    /// The organization it is with.
    pub organization_id: Option<String>,
    /// Open, won or lost.
    pub status: DealStatus,
    /// Why it was won or lost.
    pub close_reason: Option<String>,
    /// When it was closed.
    pub closed_at: Option<SystemTime>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
}

impl From<CoreDeal> for Deal {
    fn from(d: CoreDeal) -> Self {
        Deal {
            id: d.id.to_string(),
            pipeline: d.pipeline,
            title: d.title,
            stage: d.stage,
            value_minor: d.value_minor,
            currency: d.currency,
            probability: d.probability,
            probability_override: d.probability_override,
            owner: d.owner,
            expected_close: d.expected_close.map(date_out),
            customer_id: d.customer_id.map(|c| c.to_string()),
            organization_id: d.organization_id.map(|c| c.to_string()),
            status: d.status.into(),
            close_reason: d.close_reason,
            closed_at: d.closed_at.map(time_out),
            created_at: time_out(d.created_at),
            updated_at: time_out(d.updated_at),
        }
    }
}

/// Changes to a deal: a field given (not `None`) is set; a field named in
/// `clear` (`owner`, `expected_close`, `probability`, `customer_id`,
/// `organization_id`) is emptied. The stage changes with `move_deal`.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct DealPatch {
    /// New title.
    #[uniffi(default)]
    pub title: Option<String>,
    /// New value (minor units).
    #[uniffi(default)]
    pub value_minor: Option<i64>,
    /// New owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// New expected close, `YYYY-MM-DD`.
    #[uniffi(default)]
    pub expected_close: Option<String>,
    /// New probability override (percent).
    #[uniffi(default)]
    pub probability: Option<u8>,
    /// New customer.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// New organization.
    #[uniffi(default)]
    pub organization_id: Option<String>,
    /// Names of fields to clear, e.g. `["owner", "probability"]`.
    #[uniffi(default)]
    pub clear: Vec<String>,
}

impl TryFrom<DealPatch> for CoreDealPatch {
    type Error = CrmError;

    fn try_from(p: DealPatch) -> Result<Self, CrmError> {
        let mut patch = CoreDealPatch {
            title: p.title,
            value_minor: p.value_minor,
            owner: p.owner.map(Some),
            expected_close: opt_date("expected_close", p.expected_close)?.map(Some),
            probability: p.probability.map(Some),
            customer_id: opt_customer("customer_id", p.customer_id)?.map(Some),
            organization_id: opt_customer("organization_id", p.organization_id)?.map(Some),
        };
        for field in &p.clear {
            patch.clear(field)?;
        }
        Ok(patch)
    }
}

/// Which deals `Crm.deals` lists, in creation order. `None`: no filter.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct DealQuery {
    /// Only deals in this pipeline.
    #[uniffi(default)]
    pub pipeline: Option<String>,
    /// Only deals in this stage (needs `pipeline`).
    #[uniffi(default)]
    pub stage: Option<String>,
    /// Only deals of this owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// Only deals with this customer, as customer or organization.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// Only deals with this status.
    #[uniffi(default)]
    pub status: Option<DealStatus>,
    /// Page size (1–10,000; default 100).
    #[uniffi(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[uniffi(default)]
    pub cursor: Option<String>,
}

impl TryFrom<DealQuery> for CoreDealQuery {
    type Error = CrmError;

    fn try_from(q: DealQuery) -> Result<Self, CrmError> {
        let default = CoreDealQuery::default();
        Ok(CoreDealQuery {
            pipeline: q.pipeline,
            stage: q.stage,
            owner: q.owner,
            customer_id: opt_customer("customer_id", q.customer_id)?,
            status: q.status.map(Into::into),
            limit: q.limit.unwrap_or(default.limit),
            cursor: q.cursor,
        })
    }
}

/// One page of deals.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DealPage {
    /// The deals, in creation order.
    pub items: Vec<Deal>,
    /// Pass back in `DealQuery.cursor` for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<String>,
}

impl From<CorePage<CoreDeal>> for DealPage {
    fn from(p: CorePage<CoreDeal>) -> Self {
        DealPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// One stage change of a deal.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DealStageChange {
    /// The stage it left; `None` for the stage it was created in.
    pub from: Option<String>,
    /// The stage it entered.
    pub to: String,
    /// When.
    pub at: SystemTime,
    /// The reason given with the move.
    pub reason: Option<String>,
    /// The rule that moved it, if one did.
    pub rule: Option<String>,
}

impl From<CoreDealStageChange> for DealStageChange {
    fn from(c: CoreDealStageChange) -> Self {
        DealStageChange {
            from: c.from,
            to: c.to,
            at: time_out(c.at),
            reason: c.reason,
            rule: c.rule,
        }
    }
}

// ----- forecast -----------------------------------------------------------------------

/// What `Crm.forecast` sums up.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ForecastQuery {
    /// The pipeline's name.
    pub pipeline: String,
    /// Only deals of this owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// Only deals expected to close on or after this day, `YYYY-MM-DD`
    /// (deals without an expected close are left out when a bound is given).
    #[uniffi(default)]
    pub close_from: Option<String>,
    /// Only deals expected to close on or before this day.
    #[uniffi(default)]
    pub close_to: Option<String>,
}

impl TryFrom<ForecastQuery> for CoreForecastQuery {
    type Error = CrmError;

    fn try_from(q: ForecastQuery) -> Result<Self, CrmError> {
        Ok(CoreForecastQuery {
            pipeline: q.pipeline,
            owner: q.owner,
            close_from: opt_date("close_from", q.close_from)?,
            close_to: opt_date("close_to", q.close_to)?,
        })
    }
}

/// The open deals of one stage.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ForecastStage {
    /// The stage's name.
    pub stage: String,
    /// Its default probability.
    pub probability: u8,
    /// How many open deals are in it.
    pub deals: u64,
    /// Their total value (minor units).
    pub value_minor: i64,
    /// Their weighted value: each deal's value × probability / 100, rounded
    /// half up on its own.
    pub weighted_minor: i64,
}

impl From<CoreForecastStage> for ForecastStage {
    fn from(s: CoreForecastStage) -> Self {
        ForecastStage {
            stage: s.stage,
            probability: s.probability,
            deals: s.deals,
            value_minor: s.value_minor,
            weighted_minor: s.weighted_minor,
        }
    }
}

/// A weighted forecast of a pipeline's open deals.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Forecast {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its currency.
    pub currency: String,
    /// Every open stage, in order.
    pub stages: Vec<ForecastStage>,
    /// The total value of the open deals.
    pub total_minor: i64,
    /// Their total weighted value.
    pub weighted_minor: i64,
}

impl From<CoreForecast> for Forecast {
    fn from(f: CoreForecast) -> Self {
        Forecast {
            pipeline: f.pipeline,
            currency: f.currency,
            stages: f.stages.into_iter().map(Into::into).collect(),
            total_minor: f.total_minor,
            weighted_minor: f.weighted_minor,
        }
    }
}

// ----- tasks --------------------------------------------------------------------------

/// How urgent a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Priority {
    /// Whenever there is time.
    Low,
    /// The default.
    Normal,
    /// Before normal work.
    High,
    /// Now.
    Urgent,
}

impl From<CorePriority> for Priority {
    fn from(p: CorePriority) -> Self {
        match p {
            CorePriority::Low => Priority::Low,
            CorePriority::Normal => Priority::Normal,
            CorePriority::High => Priority::High,
            CorePriority::Urgent => Priority::Urgent,
        }
    }
}

impl From<Priority> for CorePriority {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => CorePriority::Low,
            Priority::Normal => CorePriority::Normal,
            Priority::High => CorePriority::High,
            Priority::Urgent => CorePriority::Urgent,
        }
    }
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum TaskStatus {
    /// To do.
    Open,
    /// Done.
    Done,
    /// Dropped.
    Cancelled,
}

impl From<CoreTaskStatus> for TaskStatus {
    fn from(s: CoreTaskStatus) -> Self {
        match s {
            CoreTaskStatus::Open => TaskStatus::Open,
            CoreTaskStatus::Done => TaskStatus::Done,
            CoreTaskStatus::Cancelled => TaskStatus::Cancelled,
        }
    }
}

impl From<TaskStatus> for CoreTaskStatus {
    fn from(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Open => CoreTaskStatus::Open,
            TaskStatus::Done => CoreTaskStatus::Done,
            TaskStatus::Cancelled => CoreTaskStatus::Cancelled,
        }
    }
}

/// A task to create. `None` means crm-core's default.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewTask {
    /// What to do.
    pub title: String,
    /// Details.
    #[uniffi(default)]
    pub notes: Option<String>,
    /// Who does it.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// When it is due.
    #[uniffi(default)]
    pub due_at: Option<SystemTime>,
    /// How urgent it is (default normal).
    #[uniffi(default)]
    pub priority: Option<Priority>,
    /// The customer it concerns.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// The deal it belongs to.
    #[uniffi(default)]
    pub deal_id: Option<String>,
}

impl TryFrom<NewTask> for CoreNewTask {
    type Error = CrmError;

    fn try_from(t: NewTask) -> Result<Self, CrmError> {
        Ok(CoreNewTask {
            title: t.title,
            notes: t.notes,
            owner: t.owner,
            due_at: t.due_at.map(|d| time_in("due_at", d)).transpose()?,
            priority: t.priority.map(Into::into).unwrap_or_default(),
            customer_id: opt_customer("customer_id", t.customer_id)?,
            deal_id: t.deal_id.map(|d| deal_id_in("deal_id", &d)).transpose()?,
        })
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Task {
    /// Its id.
    pub id: String,
    /// What to do.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Who does it.
    pub owner: Option<String>,
    /// When it is due.
    pub due_at: Option<SystemTime>,
    /// How urgent it is.
    pub priority: Priority,
    /// Open, done or cancelled.
    pub status: TaskStatus,
    /// The customer it concerns.
    pub customer_id: Option<String>,
    /// The deal it belongs to.
    pub deal_id: Option<String>,
    /// The rule that created it, if one did.
    pub rule: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// When it was completed or cancelled.
    pub completed_at: Option<SystemTime>,
}

impl From<CoreTask> for Task {
    fn from(t: CoreTask) -> Self {
        Task {
            id: t.id.to_string(),
            title: t.title,
            notes: t.notes,
            owner: t.owner,
            due_at: t.due_at.map(time_out),
            priority: t.priority.into(),
            status: t.status.into(),
            customer_id: t.customer_id.map(|c| c.to_string()),
            deal_id: t.deal_id.map(|d| d.to_string()),
            rule: t.rule,
            created_at: time_out(t.created_at),
            updated_at: time_out(t.updated_at),
            completed_at: t.completed_at.map(time_out),
        }
    }
}

/// Changes to a task: a field given is set; a field named in `clear`
/// (`notes`, `owner`, `due_at`, `customer_id`, `deal_id`) is emptied. The
/// status changes with `complete_task`, `cancel_task` and `reopen_task`.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct TaskPatch {
    /// New title.
    #[uniffi(default)]
    pub title: Option<String>,
    /// New notes.
    #[uniffi(default)]
    pub notes: Option<String>,
    /// New owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// New due time.
    #[uniffi(default)]
    pub due_at: Option<SystemTime>,
    /// New priority.
    #[uniffi(default)]
    pub priority: Option<Priority>,
    /// New customer.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// New deal.
    #[uniffi(default)]
    pub deal_id: Option<String>,
    /// Names of fields to clear, e.g. `["due_at"]`.
    #[uniffi(default)]
    pub clear: Vec<String>,
}

impl TryFrom<TaskPatch> for CoreTaskPatch {
    type Error = CrmError;

    fn try_from(p: TaskPatch) -> Result<Self, CrmError> {
        let mut patch = CoreTaskPatch {
            title: p.title,
            notes: p.notes.map(Some),
            owner: p.owner.map(Some),
            due_at: p
                .due_at
                .map(|d| time_in("due_at", d).map(Some))
                .transpose()?,
            priority: p.priority.map(Into::into),
            customer_id: opt_customer("customer_id", p.customer_id)?.map(Some),
            deal_id: p
                .deal_id
                .map(|d| deal_id_in("deal_id", &d).map(Some))
                .transpose()?,
        };
        for field in &p.clear {
            patch.clear(field)?;
        }
        Ok(patch)
    }
}

/// Which tasks `Crm.tasks` lists, in creation order. `None`: no filter.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct TaskQuery {
    /// Only tasks of this owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// Only tasks about this customer.
    #[uniffi(default)]
    pub customer_id: Option<String>,
    /// Only tasks of this deal.
    #[uniffi(default)]
    pub deal_id: Option<String>,
    /// Only tasks with this status.
    #[uniffi(default)]
    pub status: Option<TaskStatus>,
    /// Page size (1–10,000; default 100).
    #[uniffi(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[uniffi(default)]
    pub cursor: Option<String>,
}

impl TryFrom<TaskQuery> for CoreTaskQuery {
    type Error = CrmError;

    fn try_from(q: TaskQuery) -> Result<Self, CrmError> {
        let default = CoreTaskQuery::default();
        Ok(CoreTaskQuery {
            owner: q.owner,
            customer_id: opt_customer("customer_id", q.customer_id)?,
            deal_id: q.deal_id.map(|d| deal_id_in("deal_id", &d)).transpose()?,
            status: q.status.map(Into::into),
            limit: q.limit.unwrap_or(default.limit),
            cursor: q.cursor,
        })
    }
}

/// One page of tasks.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct TaskPage {
    /// The tasks, in the requested order.
    pub items: Vec<Task>,
    /// Pass back for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl From<CorePage<CoreTask>> for TaskPage {
    fn from(p: CorePage<CoreTask>) -> Self {
        TaskPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

// ----- methods --------------------------------------------------------------------------

#[uniffi::export]
impl Crm {
    /// Creates a pipeline of ordered stages in one currency. `Validation`
    /// (nothing stored) for no stages (`stages`), duplicate stage names, no
    /// open stage, a probability over 100 or a bad currency; `Conflict` for
    /// a name in use.
    pub fn create_pipeline(
        &self,
        name: String,
        currency: String,
        stages: Vec<PipelineStage>,
    ) -> Result<Pipeline, CrmError> {
        guard(|| {
            let new = CoreNewPipeline {
                name,
                currency,
                stages: stages_in(stages),
            };
            Ok(self.inner.create_pipeline(&new)?.into())
        })
    }

    /// The pipeline called `name`; `NotFound` if there is none.
    pub fn pipeline(&self, name: String) -> Result<Pipeline, CrmError> {
        guard(|| Ok(self.inner.pipeline(&name)?.into()))
    }

    /// Every pipeline, by name.
    pub fn pipelines(&self) -> Result<Vec<Pipeline>, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .pipelines()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Replaces a pipeline's stages; `Conflict` when a stage holding deals
    /// would go or change whether it is closed or won.
    pub fn update_pipeline_stages(
        &self,
        name: String,
        stages: Vec<PipelineStage>,
    ) -> Result<Pipeline, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .update_pipeline_stages(&name, &stages_in(stages))?
                .into())
        })
    }

    /// Deletes a pipeline; `Conflict` if it has deals.
    pub fn delete_pipeline(&self, name: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_pipeline(&name)?))
    }

    /// Creates a deal, by default in the pipeline's first open stage and its
    /// currency. `Validation` (nothing stored) for another currency, an
    /// unknown stage (the reason names the nearest), a negative value, an
    /// unknown customer or an organization that is a person.
    pub fn create_deal(&self, deal: NewDeal) -> Result<Deal, CrmError> {
        guard(|| Ok(self.inner.create_deal(&deal.try_into()?)?.into()))
    }

    /// The deal with `id`; `NotFound` if there is none.
    pub fn get_deal(&self, id: String) -> Result<Deal, CrmError> {
        guard(|| Ok(self.inner.get_deal(deal_id_in("id", &id)?)?.into()))
    }

    /// Changes a deal's fields (not its stage: `move_deal`).
    pub fn update_deal(&self, id: String, patch: DealPatch) -> Result<Deal, CrmError> {
        guard(|| {
            let id = deal_id_in("id", &id)?;
            Ok(self.inner.update_deal(id, &patch.try_into()?)?.into())
        })
    }

    /// Moves a deal to another stage of its pipeline. A closed stage closes
    /// it as won or lost with `reason` as its close reason (a lost deal
    /// needs one: `Validation` on `reason`); an open stage reopens it.
    #[uniffi::method(default(reason = None))]
    pub fn move_deal(
        &self,
        id: String,
        stage: String,
        reason: Option<String>,
    ) -> Result<Deal, CrmError> {
        guard(|| {
            let id = deal_id_in("id", &id)?;
            Ok(self.inner.move_deal(id, &stage, reason.as_deref())?.into())
        })
    }

    /// One page of deals, in creation order.
    #[uniffi::method(default(query))]
    pub fn deals(&self, query: DealQuery) -> Result<DealPage, CrmError> {
        guard(|| Ok(self.inner.deals(&query.try_into()?)?.into()))
    }

    /// A deal's stage changes, oldest first; the first is the stage it was
    /// created in.
    pub fn deal_history(&self, id: String) -> Result<Vec<DealStageChange>, CrmError> {
        guard(|| {
            let id = deal_id_in("id", &id)?;
            Ok(self
                .inner
                .deal_history(id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Deletes a deal with its history and tasks.
    pub fn delete_deal(&self, id: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_deal(deal_id_in("id", &id)?)?))
    }

    /// The weighted forecast of a pipeline's open deals, per open stage and
    /// in total.
    pub fn forecast(&self, query: ForecastQuery) -> Result<Forecast, CrmError> {
        guard(|| Ok(self.inner.forecast(&query.try_into()?)?.into()))
    }

    /// Creates an open task; `Validation` (nothing stored) for an empty
    /// title or an unknown customer or deal.
    pub fn create_task(&self, task: NewTask) -> Result<Task, CrmError> {
        guard(|| Ok(self.inner.create_task(&task.try_into()?)?.into()))
    }

    /// The task with `id`; `NotFound` if there is none.
    pub fn get_task(&self, id: String) -> Result<Task, CrmError> {
        guard(|| Ok(self.inner.get_task(task_id_in("id", &id)?)?.into()))
    }

    /// Changes a task's fields (not its status).
    pub fn update_task(&self, id: String, patch: TaskPatch) -> Result<Task, CrmError> {
        guard(|| {
            let id = task_id_in("id", &id)?;
            Ok(self.inner.update_task(id, &patch.try_into()?)?.into())
        })
    }

    /// Marks an open task done; `Conflict` for a cancelled one.
    pub fn complete_task(&self, id: String) -> Result<Task, CrmError> {
        guard(|| Ok(self.inner.complete_task(task_id_in("id", &id)?)?.into()))
    }

    /// Cancels an open task; `Conflict` for a done one.
    pub fn cancel_task(&self, id: String) -> Result<Task, CrmError> {
        guard(|| Ok(self.inner.cancel_task(task_id_in("id", &id)?)?.into()))
    }

    /// Opens a done or cancelled task again.
    pub fn reopen_task(&self, id: String) -> Result<Task, CrmError> {
        guard(|| Ok(self.inner.reopen_task(task_id_in("id", &id)?)?.into()))
    }

    /// Deletes a task.
    pub fn delete_task(&self, id: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_task(task_id_in("id", &id)?)?))
    }

    /// One page of tasks, in creation order.
    #[uniffi::method(default(query))]
    pub fn tasks(&self, query: TaskQuery) -> Result<TaskPage, CrmError> {
        guard(|| Ok(self.inner.tasks(&query.try_into()?)?.into()))
    }

    /// One page of the open tasks due before `now` (default: the current
    /// time), oldest due first, optionally of one owner.
    #[uniffi::method(default(now = None, owner = None, limit = None, cursor = None))]
    pub fn overdue_tasks(
        &self,
        now: Option<SystemTime>,
        owner: Option<String>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<TaskPage, CrmError> {
        guard(|| {
            let now = now.map(|t| time_in("now", t)).transpose()?;
            Ok(self
                .inner
                .overdue_tasks(
                    now,
                    owner.as_deref(),
                    limit.unwrap_or(100),
                    cursor.as_deref(),
                )?
                .into())
        })
    }
}
