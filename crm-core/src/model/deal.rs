//! Sales pipelines, deals and tasks: the types and their validation, with no
//! storage in sight.
//!
//! A [`Pipeline`] is an ordered list of [`PipelineStage`]s in one currency.
//! A [`Deal`] sits in one stage of one pipeline; its status follows from its
//! stage (an open stage: open; a closed stage: won or lost). A [`Task`] is a
//! piece of work for an owner, due at a time, linked to a customer and/or a
//! deal.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::customer::MAX_SHORT_TEXT;
use crate::model::ids::{CustomerId, DealId, PipelineId, TaskId};
use crate::model::normalize;

/// Longest pipeline or stage name, in characters.
pub const MAX_NAME_LEN: usize = 100;
/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 50;
/// Longest deal or task title, in characters.
pub const MAX_TITLE_LEN: usize = 500;
/// Longest close reason, in characters.
pub const MAX_REASON_LEN: usize = 2_000;
/// Longest task notes, in characters.
pub const MAX_NOTES_LEN: usize = 10_000;
/// The largest deal value, in minor units (10^15): large enough for any
/// deal, small enough that value × probability and sums of many values stay
/// exact 64-bit integers.
pub const MAX_VALUE_MINOR: i64 = 1_000_000_000_000_000;

// ===== pipelines ============================================================

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelineStage {
    /// Its name, unique within the pipeline (ignoring case), e.g. `Proposal`.
    pub name: String,
    /// The default probability (percent, 0 to 100) that a deal in this
    /// stage is won. A won stage has 100, a lost stage 0.
    pub probability: u8,
    /// Whether deals in this stage are closed (won or lost).
    pub closed: bool,
    /// Whether deals in this stage are won; implies `closed`.
    pub won: bool,
}

impl PipelineStage {
    /// An open stage with a default probability.
    pub fn open(name: impl Into<String>, probability: u8) -> Self {
        PipelineStage {
            name: name.into(),
            probability,
            closed: false,
            won: false,
        }
    }

    /// A closed stage whose deals are won (probability 100).
    pub fn won(name: impl Into<String>) -> Self {
        PipelineStage {
            name: name.into(),
            probability: 100,
            closed: true,
            won: true,
        }
    }

    /// A closed stage whose deals are lost (probability 0).
    pub fn lost(name: impl Into<String>) -> Self {
        PipelineStage {
            name: name.into(),
            probability: 0,
            closed: true,
            won: false,
        }
    }

    /// The status of a deal in this stage.
    pub fn status(&self) -> DealStatus {
        match (self.closed, self.won) {
            (false, _) => DealStatus::Open,
            (true, true) => DealStatus::Won,
            (true, false) => DealStatus::Lost,
        }
    }
}

/// A pipeline to create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPipeline {
    /// Its unique name: 1 to 100 characters.
    pub name: String,
    /// The ISO-4217 currency of its deals' values.
    pub currency: String,
    /// Its stages, in order: at least one, at least one of them open.
    pub stages: Vec<PipelineStage>,
}

/// A pipeline as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Its id.
    pub id: PipelineId,
    /// Its unique name.
    pub name: String,
    /// The ISO-4217 currency of its deals' values.
    pub currency: String,
    /// Its stages, in order.
    pub stages: Vec<PipelineStage>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its stages last changed.
    pub updated_at: DateTime<Utc>,
}

/// A pipeline name, trimmed and checked.
pub fn pipeline_name(raw: &str) -> Result<String> {
    normalize::text(raw, MAX_NAME_LEN).map_err(|r| Error::validation("name", r))
}

/// Checks and normalizes a pipeline's stages: at least one, at most
/// [`MAX_STAGES`], names unique ignoring case, probabilities at most 100,
/// won stages closed with probability 100, lost stages 0, and at least one
/// open stage (where new deals start).
pub fn validate_stages(stages: &[PipelineStage]) -> Result<Vec<PipelineStage>> {
    if stages.is_empty() {
        return Err(Error::validation(
            "stages",
            "a pipeline needs at least one stage",
        ));
    }
    if stages.len() > MAX_STAGES {
        return Err(Error::validation(
            "stages",
            format!("a pipeline has at most {MAX_STAGES} stages"),
        ));
    }
    let mut out: Vec<PipelineStage> = Vec::with_capacity(stages.len());
    for (i, s) in stages.iter().enumerate() {
        let field = |f: &str| format!("stages[{i}].{f}");
        let name = normalize::text(&s.name, MAX_NAME_LEN)
            .map_err(|r| Error::validation(field("name"), r))?;
        if let Some(j) = out
            .iter()
            .position(|o| o.name.to_lowercase() == name.to_lowercase())
        {
            return Err(Error::validation(
                field("name"),
                format!("stage '{name}' is already stages[{j}]"),
            ));
        }
        if s.probability > 100 {
            return Err(Error::validation(
                field("probability"),
                "is a percentage: 0 to 100",
            ));
        }
        if s.won && !s.closed {
            return Err(Error::validation(
                field("won"),
                "a won stage must be closed",
            ));
        }
        if s.won && s.probability != 100 {
            return Err(Error::validation(
                field("probability"),
                "a won stage has probability 100",
            ));
        }
        if s.closed && !s.won && s.probability != 0 {
            return Err(Error::validation(
                field("probability"),
                "a lost stage has probability 0",
            ));
        }
        out.push(PipelineStage { name, ..s.clone() });
    }
    if out.iter().all(|s| s.closed) {
        return Err(Error::validation(
            "stages",
            "a pipeline needs at least one open stage for its deals to start in",
        ));
    }
    Ok(out)
}

impl NewPipeline {
    /// A pipeline to create.
    pub fn new(
        name: impl Into<String>,
        currency: impl Into<String>,
        stages: Vec<PipelineStage>,
    ) -> Self {
        NewPipeline {
            name: name.into(),
            currency: currency.into(),
            stages,
        }
    }

    /// Validates and normalizes it into a pipeline created at `now`.
    pub(crate) fn validate(&self, now: DateTime<Utc>) -> Result<Pipeline> {
        Ok(Pipeline {
            id: PipelineId::new(),
            name: pipeline_name(&self.name)?,
            currency: currency(&self.currency)?,
            stages: validate_stages(&self.stages)?,
            created_at: now,
            updated_at: now,
        })
    }
}

fn currency(raw: &str) -> Result<String> {
    normalize::currency(raw).map_err(|r| Error::validation("currency", r))
}

impl Pipeline {
    /// The stage called `name` (exactly), or a validation error on `field`
    /// that suggests the nearest name.
    pub fn stage_named(&self, name: &str, field: &str) -> Result<&PipelineStage> {
        let wanted = name.trim();
        if let Some(s) = self.stages.iter().find(|s| s.name == wanted) {
            return Ok(s);
        }
        let lower: Vec<String> = self.stages.iter().map(|s| s.name.to_lowercase()).collect();
        let names: Vec<&str> = lower.iter().map(String::as_str).collect();
        let hint = crate::import::nearest(wanted, &names)
            .and_then(|n| names.iter().position(|x| *x == n))
            .map(|i| format!("; did you mean '{}'?", self.stages[i].name))
            .unwrap_or_else(|| {
                let all: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
                format!("; its stages are: {}", all.join(", "))
            });
        Err(Error::validation(
            field,
            format!("pipeline '{}' has no stage '{wanted}'{hint}", self.name),
        ))
    }

    /// The first open stage: where a new deal starts by default.
    pub fn first_open_stage(&self) -> Option<&PipelineStage> {
        self.stages.iter().find(|s| !s.closed)
    }
}

// ===== deals ================================================================

/// Where a deal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    /// In an open stage.
    Open,
    /// In a closed, won stage.
    Won,
    /// In a closed, lost stage.
    Lost,
}

impl DealStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Open => "open",
            DealStatus::Won => "won",
            DealStatus::Lost => "lost",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(DealStatus::Open),
            "won" => Ok(DealStatus::Won),
            "lost" => Ok(DealStatus::Lost),
            _ => Err(Error::validation(
                "status",
                "must be one of: open, won, lost",
            )),
        }
    }
}

/// A deal to create. `pipeline`, `title` and `value_minor` are required;
/// everything else has a default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDeal {
    /// The pipeline's name.
    pub pipeline: String,
    /// What is being sold: 1 to 500 characters.
    pub title: String,
    /// The stage it starts in; default: the pipeline's first open stage. A
    /// deal created in a closed stage is won or lost from the start.
    pub stage: Option<String>,
    /// Its value in minor units of its currency: 0 to 10^15.
    pub value_minor: i64,
    /// Its currency; default and only accepted value: the pipeline's.
    pub currency: Option<String>,
    /// Who works on it.
    pub owner: Option<String>,
    /// When it is expected to close.
    pub expected_close: Option<NaiveDate>,
    /// Its probability (percent), overriding its stage's default.
    pub probability: Option<u8>,
    /// The customer it is with.
    pub customer_id: Option<CustomerId>,
    /// The organization it is with (a customer of kind organization).
    pub organization_id: Option<CustomerId>,
    /// Why it was lost (required when created in a lost stage) or won.
    pub close_reason: Option<String>,
}

impl NewDeal {
    /// A deal in `pipeline`'s first open stage.
    pub fn new(pipeline: impl Into<String>, title: impl Into<String>, value_minor: i64) -> Self {
        NewDeal {
            pipeline: pipeline.into(),
            title: title.into(),
            value_minor,
            ..NewDeal::default()
        }
    }
}

/// A deal as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deal {
    /// Its id.
    pub id: DealId,
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
    /// Its effective probability (percent): 100 when won, 0 when lost, else
    /// `probability_override` if set, else its stage's default.
    pub probability: u8,
    /// The probability set on the deal itself, if any.
    pub probability_override: Option<u8>,
    /// Who works on it.
    pub owner: Option<String>,
    /// When it is expected to close.
    pub expected_close: Option<NaiveDate>,
    /// The customer it is with.
    pub customer_id: Option<CustomerId>,
    /// The organization it is with.
    pub organization_id: Option<CustomerId>,
    /// Open, won or lost: follows from its stage.
    pub status: DealStatus,
    /// Why it was won or lost (closed deals only).
    pub close_reason: Option<String>,
    /// When it was closed (closed deals only).
    pub closed_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The effective probability of a deal with `status` and `override_` in a
/// stage whose default is `stage_default`.
pub fn effective_probability(status: DealStatus, override_: Option<u8>, stage_default: u8) -> u8 {
    match status {
        DealStatus::Won => 100,
        DealStatus::Lost => 0,
        DealStatus::Open => override_.unwrap_or(stage_default),
    }
}

/// The weighted value of a deal: `value_minor × probability / 100`, rounded
/// half up to a whole minor unit, exactly (integers only).
///
/// ```
/// use crm_core::model::deal::weighted;
/// assert_eq!(weighted(1_000, 25), 250);
/// assert_eq!(weighted(5, 50), 3); // 2.5 rounds up
/// assert_eq!(weighted(3, 33), 1); // 0.99
/// ```
pub fn weighted(value_minor: i64, probability: u8) -> i64 {
    (value_minor * i64::from(probability) + 50) / 100
}

/// Changes to a deal; `None` leaves a field as it is, `Some(None)` clears
/// it. The stage changes only through [`crate::Crm::move_deal`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealPatch {
    /// A new title.
    pub title: Option<String>,
    /// A new value (minor units of the deal's currency).
    pub value_minor: Option<i64>,
    /// A new owner, or none.
    pub owner: Option<Option<String>>,
    /// A new expected close date, or none.
    pub expected_close: Option<Option<NaiveDate>>,
    /// A new probability override, or none (back to the stage's default).
    pub probability: Option<Option<u8>>,
    /// A new customer, or none.
    pub customer_id: Option<Option<CustomerId>>,
    /// A new organization, or none.
    pub organization_id: Option<Option<CustomerId>>,
}

/// A page of deals, in creation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealQuery {
    /// Only deals in this pipeline (by name).
    pub pipeline: Option<String>,
    /// Only deals in this stage (requires `pipeline`).
    pub stage: Option<String>,
    /// Only deals owned by this owner.
    pub owner: Option<String>,
    /// Only deals linked to this customer, as customer or as organization.
    pub customer_id: Option<CustomerId>,
    /// Only deals with this status.
    pub status: Option<DealStatus>,
    /// At most this many (1 to 10 000); default 100.
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for DealQuery {
    fn default() -> Self {
        DealQuery {
            pipeline: None,
            stage: None,
            owner: None,
            customer_id: None,
            status: None,
            limit: 100,
            cursor: None,
        }
    }
}

/// One stage change of a deal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealStageChange {
    /// The stage it left; `None` for the stage it was created in.
    pub from: Option<String>,
    /// The stage it entered.
    pub to: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The reason given with the move, if any.
    pub reason: Option<String>,
    /// The rule that moved it, if a rule did.
    pub rule: Option<String>,
}

/// What [`crate::Crm::forecast`] sums up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastQuery {
    /// The pipeline's name.
    pub pipeline: String,
    /// Only deals owned by this owner.
    pub owner: Option<String>,
    /// Only deals expected to close on or after this day (deals without an
    /// expected close date are left out when a bound is given).
    pub close_from: Option<NaiveDate>,
    /// Only deals expected to close on or before this day.
    pub close_to: Option<NaiveDate>,
}

impl ForecastQuery {
    /// The forecast of every open deal of `pipeline`.
    pub fn new(pipeline: impl Into<String>) -> Self {
        ForecastQuery {
            pipeline: pipeline.into(),
            ..ForecastQuery::default()
        }
    }
}

/// The open deals of one stage in a forecast.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastStage {
    /// The stage's name.
    pub stage: String,
    /// The stage's default probability (deals may override it).
    pub probability: u8,
    /// How many open deals are in it.
    pub deals: u64,
    /// Their total value, in minor units.
    pub value_minor: i64,
    /// Their weighted value: the sum of each deal's [`weighted`] value.
    pub weighted_minor: i64,
}

/// A weighted pipeline forecast over open deals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// The pipeline's name.
    pub pipeline: String,
    /// Its currency.
    pub currency: String,
    /// Every open stage, in pipeline order (stages without deals included).
    pub stages: Vec<ForecastStage>,
    /// The total value of the open deals.
    pub total_minor: i64,
    /// Their total weighted value.
    pub weighted_minor: i64,
}

/// A deal's fields checked against its pipeline; customer links are checked
/// by the store.
#[derive(Debug)]
pub(crate) struct ValidDeal {
    pub title: String,
    pub stage: PipelineStage,
    pub value_minor: i64,
    pub currency: String,
    pub owner: Option<String>,
    pub probability: Option<u8>,
    pub close_reason: Option<String>,
}

fn title(raw: &str) -> Result<String> {
    normalize::text(raw, MAX_TITLE_LEN).map_err(|r| Error::validation("title", r))
}

/// An optional short text: blank is none.
pub(crate) fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>> {
    match v {
        Some(s) if !s.trim().is_empty() => normalize::text(s, max)
            .map(Some)
            .map_err(|r| Error::validation(field, r)),
        _ => Ok(None),
    }
}

/// An owner's name: at most 256 characters; blank is none.
pub fn owner(v: Option<&str>) -> Result<Option<String>> {
    opt_text("owner", v, MAX_SHORT_TEXT)
}

fn value(v: i64) -> Result<i64> {
    if !(0..=MAX_VALUE_MINOR).contains(&v) {
        return Err(Error::validation(
            "value_minor",
            "must be between 0 and 10^15 minor units",
        ));
    }
    Ok(v)
}

fn probability(p: Option<u8>) -> Result<Option<u8>> {
    match p {
        Some(p) if p > 100 => Err(Error::validation(
            "probability",
            "is a percentage: 0 to 100",
        )),
        p => Ok(p),
    }
}

/// The close reason of a deal entering `stage`: required for a lost stage,
/// kept for a won one, dropped for an open one.
pub(crate) fn close_reason(stage: &PipelineStage, reason: Option<&str>) -> Result<Option<String>> {
    let reason = opt_text("reason", reason, MAX_REASON_LEN)?;
    match stage.status() {
        DealStatus::Lost if reason.is_none() => Err(Error::validation(
            "reason",
            format!(
                "a deal moved to the lost stage '{}' needs a reason",
                stage.name
            ),
        )),
        DealStatus::Open => Ok(None),
        _ => Ok(reason),
    }
}

impl NewDeal {
    pub(crate) fn validate(&self, pipeline: &Pipeline) -> Result<ValidDeal> {
        let title = title(&self.title)?;
        let stage = match self.stage.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(name) => pipeline.stage_named(name, "stage")?.clone(),
            None => pipeline
                .first_open_stage()
                .ok_or_else(|| Error::validation("stage", "the pipeline has no open stage"))?
                .clone(),
        };
        let value_minor = value(self.value_minor)?;
        let currency = match self.currency.as_deref().filter(|c| !c.trim().is_empty()) {
            None => pipeline.currency.clone(),
            Some(c) => {
                let c = currency(c)?;
                if c != pipeline.currency {
                    return Err(Error::validation(
                        "currency",
                        format!(
                            "the deal is in {c} but pipeline '{}' is in {}",
                            pipeline.name, pipeline.currency
                        ),
                    ));
                }
                c
            }
        };
        let reason = self.close_reason.as_deref();
        if stage.status() == DealStatus::Open
            && opt_text("close_reason", reason, MAX_REASON_LEN)?.is_some()
        {
            return Err(Error::validation(
                "close_reason",
                "only a deal created in a closed stage has a close reason",
            ));
        }
        let close_reason = close_reason(&stage, reason).map_err(|e| match e {
            Error::Validation { reason, .. } => Error::validation("close_reason", reason),
            other => other,
        })?;
        Ok(ValidDeal {
            title,
            stage,
            value_minor,
            currency,
            owner: owner(self.owner.as_deref())?,
            probability: probability(self.probability)?,
            close_reason,
        })
    }
}

impl DealPatch {
    /// Clears the nullable field named `field`. Unknown fields and fields
    /// that can't be empty (`title`, `value_minor`) are a validation error.
    ///
    /// ```
    /// let mut patch = crm_core::DealPatch::default();
    /// patch.clear("owner")?;
    /// assert_eq!(patch.owner, Some(None));
    /// assert!(patch.clear("title").is_err());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn clear(&mut self, field: &str) -> Result<()> {
        match field {
            "owner" => self.owner = Some(None),
            "expected_close" => self.expected_close = Some(None),
            "probability" => self.probability = Some(None),
            "customer_id" => self.customer_id = Some(None),
            "organization_id" => self.organization_id = Some(None),
            "title" | "value_minor" => return Err(Error::validation(field, "can't be cleared")),
            _ => return Err(Error::validation(field, "not a field of a deal")),
        }
        Ok(())
    }

    /// Applies the patch's plain fields to `deal` (in `stage`), returning
    /// the names of the fields that changed. Customer links are set as
    /// given; the store checks them.
    pub(crate) fn apply(
        &self,
        deal: &mut Deal,
        stage: &PipelineStage,
    ) -> Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        if let Some(t) = &self.title {
            let t = title(t)?;
            if t != deal.title {
                deal.title = t;
                changed.push("title");
            }
        }
        if let Some(v) = self.value_minor {
            let v = value(v)?;
            if v != deal.value_minor {
                deal.value_minor = v;
                changed.push("value_minor");
            }
        }
        if let Some(o) = &self.owner {
            let o = owner(o.as_deref())?;
            if o != deal.owner {
                deal.owner = o;
                changed.push("owner");
            }
        }
        if let Some(d) = self.expected_close {
            if d != deal.expected_close {
                deal.expected_close = d;
                changed.push("expected_close");
            }
        }
        if let Some(p) = self.probability {
            let p = probability(p)?;
            if p != deal.probability_override {
                deal.probability_override = p;
                changed.push("probability");
            }
        }
        if let Some(c) = self.customer_id {
            if c != deal.customer_id {
                deal.customer_id = c;
                changed.push("customer_id");
            }
        }
        if let Some(o) = self.organization_id {
            if o != deal.organization_id {
                deal.organization_id = o;
                changed.push("organization_id");
            }
        }
        deal.probability =
            effective_probability(deal.status, deal.probability_override, stage.probability);
        Ok(changed)
    }
}

// ===== tasks ================================================================

/// How urgent a task is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Whenever there is time.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before normal work.
    High,
    /// Now.
    Urgent,
}

impl Priority {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "low" => Ok(Priority::Low),
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "urgent" => Ok(Priority::Urgent),
            _ => Err(Error::validation(
                "priority",
                "must be one of: low, normal, high, urgent",
            )),
        }
    }
}

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// To do.
    Open,
    /// Done.
    Done,
    /// Dropped.
    Cancelled,
}

impl TaskStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::Done => "done",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "open" => Ok(TaskStatus::Open),
            "done" => Ok(TaskStatus::Done),
            "cancelled" => Ok(TaskStatus::Cancelled),
            _ => Err(Error::validation(
                "status",
                "must be one of: open, done, cancelled",
            )),
        }
    }
}

/// A task to create. Only `title` is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// What to do: 1 to 500 characters.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Who does it.
    pub owner: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// How urgent it is (default normal).
    pub priority: Priority,
    /// The customer it concerns.
    pub customer_id: Option<CustomerId>,
    /// The deal it belongs to.
    pub deal_id: Option<DealId>,
}

impl NewTask {
    /// A task with a title and nothing else.
    pub fn new(title: impl Into<String>) -> Self {
        NewTask {
            title: title.into(),
            ..NewTask::default()
        }
    }
}

/// A task as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// What to do.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Who does it.
    pub owner: Option<String>,
    /// When it is due.
    pub due_at: Option<DateTime<Utc>>,
    /// How urgent it is.
    pub priority: Priority,
    /// Open, done or cancelled.
    pub status: TaskStatus,
    /// The customer it concerns.
    pub customer_id: Option<CustomerId>,
    /// The deal it belongs to.
    pub deal_id: Option<DealId>,
    /// The rule that created it, if a rule did.
    pub rule: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was completed or cancelled.
    pub completed_at: Option<DateTime<Utc>>,
}

/// Changes to a task; `None` leaves a field as it is, `Some(None)` clears
/// it. The status changes through [`crate::Crm::complete_task`],
/// [`crate::Crm::cancel_task`] and [`crate::Crm::reopen_task`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPatch {
    /// A new title.
    pub title: Option<String>,
    /// New notes, or none.
    pub notes: Option<Option<String>>,
    /// A new owner, or none.
    pub owner: Option<Option<String>>,
    /// A new due time, or none.
    pub due_at: Option<Option<DateTime<Utc>>>,
    /// A new priority.
    pub priority: Option<Priority>,
    /// A new customer, or none.
    pub customer_id: Option<Option<CustomerId>>,
    /// A new deal, or none.
    pub deal_id: Option<Option<DealId>>,
}

/// A page of tasks, in creation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Only tasks of this owner.
    pub owner: Option<String>,
    /// Only tasks about this customer.
    pub customer_id: Option<CustomerId>,
    /// Only tasks of this deal.
    pub deal_id: Option<DealId>,
    /// Only tasks with this status.
    pub status: Option<TaskStatus>,
    /// At most this many (1 to 10 000); default 100.
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for TaskQuery {
    fn default() -> Self {
        TaskQuery {
            owner: None,
            customer_id: None,
            deal_id: None,
            status: None,
            limit: 100,
            cursor: None,
        }
    }
}

fn notes(v: Option<&str>) -> Result<Option<String>> {
    match v {
        Some(s) if !s.trim().is_empty() => {
            normalize::check_length(s, MAX_NOTES_LEN).map_err(|r| Error::validation("notes", r))?;
            Ok(Some(s.to_string()))
        }
        _ => Ok(None),
    }
}

fn due(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    use chrono::SubsecRound;
    t.map(|t| t.trunc_subsecs(6))
}

impl NewTask {
    /// Validates every field except the links (checked by the store) into an
    /// open task created at `now` by `rule`.
    pub(crate) fn validate(&self, now: DateTime<Utc>, rule: Option<&str>) -> Result<Task> {
        Ok(Task {
            id: TaskId::new(),
            title: title(&self.title)?,
            notes: notes(self.notes.as_deref())?,
            owner: owner(self.owner.as_deref())?,
            due_at: due(self.due_at),
            priority: self.priority,
            status: TaskStatus::Open,
            customer_id: self.customer_id,
            deal_id: self.deal_id,
            rule: rule.map(str::to_string),
            created_at: now,
            updated_at: now,
            completed_at: None,
        })
    }
}

impl TaskPatch {
    /// Clears the nullable field named `field`. Unknown fields and fields
    /// that can't be empty (`title`, `priority`) are a validation error.
    pub fn clear(&mut self, field: &str) -> Result<()> {
        match field {
            "notes" => self.notes = Some(None),
            "owner" => self.owner = Some(None),
            "due_at" => self.due_at = Some(None),
            "customer_id" => self.customer_id = Some(None),
            "deal_id" => self.deal_id = Some(None),
            "title" | "priority" => return Err(Error::validation(field, "can't be cleared")),
            _ => return Err(Error::validation(field, "not a field of a task")),
        }
        Ok(())
    }

    /// Applies the patch to `task`, returning the names of the fields that
    /// changed. Links are set as given; the store checks them.
    pub(crate) fn apply(&self, task: &mut Task) -> Result<Vec<&'static str>> {
        let mut changed = Vec::new();
        if let Some(t) = &self.title {
            let t = title(t)?;
            if t != task.title {
                task.title = t;
                changed.push("title");
            }
        }
        if let Some(n) = &self.notes {
            let n = notes(n.as_deref())?;
            if n != task.notes {
                task.notes = n;
                changed.push("notes");
            }
        }
        if let Some(o) = &self.owner {
            let o = owner(o.as_deref())?;
            if o != task.owner {
                task.owner = o;
                changed.push("owner");
            }
        }
        if let Some(d) = self.due_at {
            let d = due(d);
            if d != task.due_at {
                task.due_at = d;
                changed.push("due_at");
            }
        }
        if let Some(p) = self.priority {
            if p != task.priority {
                task.priority = p;
                changed.push("priority");
            }
        }
        if let Some(c) = self.customer_id {
            if c != task.customer_id {
                task.customer_id = c;
                changed.push("customer_id");
            }
        }
        if let Some(d) = self.deal_id {
            if d != task.deal_id {
                task.deal_id = d;
                changed.push("deal_id");
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<PipelineStage> {
        vec![
            PipelineStage::open("Lead", 10),
            PipelineStage::open("Proposal", 50),
            PipelineStage::won("Won"),
            PipelineStage::lost("Lost"),
        ]
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Validation { field, .. } => field,
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn stages_are_checked() {
        assert_eq!(validate_stages(&stages()).unwrap().len(), 4);
        assert_eq!(field_of(validate_stages(&[]).unwrap_err()), "stages");
        let mut dup = stages();
        dup[1].name = " lead ".into();
        assert_eq!(
            field_of(validate_stages(&dup).unwrap_err()),
            "stages[1].name"
        );
        let mut p = stages();
        p[0].probability = 101;
        assert_eq!(
            field_of(validate_stages(&p).unwrap_err()),
            "stages[0].probability"
        );
        let mut w = stages();
        w[2].closed = false;
        assert_eq!(field_of(validate_stages(&w).unwrap_err()), "stages[2].won");
        let closed = [PipelineStage::won("Won"), PipelineStage::lost("Lost")];
        assert_eq!(field_of(validate_stages(&closed).unwrap_err()), "stages");
    }

    #[test]
    fn unknown_stages_suggest_the_nearest() {
        let p = NewPipeline::new("Sales", "eur", stages())
            .validate(Utc::now())
            .unwrap();
        assert_eq!(p.currency, "EUR");
        let e = p.stage_named("Propsal", "stage").unwrap_err().to_string();
        assert!(e.contains("did you mean 'Proposal'"), "{e}");
        let e = p.stage_named("zzzzzzzz", "stage").unwrap_err().to_string();
        assert!(e.contains("Lead, Proposal, Won, Lost"), "{e}");
    }

    #[test]
    fn deals_are_checked_against_their_pipeline() {
        let p = NewPipeline::new("Sales", "EUR", stages())
            .validate(Utc::now())
            .unwrap();
        let ok = NewDeal::new("Sales", "Roof", 1000).validate(&p).unwrap();
        assert_eq!(
            (ok.stage.name.as_str(), ok.currency.as_str()),
            ("Lead", "EUR")
        );
        let usd = NewDeal {
            currency: Some("usd".into()),
            ..NewDeal::new("Sales", "Roof", 1)
        };
        let e = usd.validate(&p).unwrap_err();
        assert!(
            e.to_string().contains("USD") && e.to_string().contains("EUR"),
            "{e}"
        );
        let lost = NewDeal {
            stage: Some("Lost".into()),
            ..NewDeal::new("Sales", "Roof", 1)
        };
        assert_eq!(field_of(lost.validate(&p).err().unwrap()), "close_reason");
        assert_eq!(
            field_of(
                NewDeal::new("Sales", "Roof", -1)
                    .validate(&p)
                    .err()
                    .unwrap()
            ),
            "value_minor"
        );
    }

    #[test]
    fn weighting_rounds_half_up() {
        assert_eq!(weighted(MAX_VALUE_MINOR, 100), MAX_VALUE_MINOR);
        assert_eq!(weighted(1, 49), 0);
        assert_eq!(weighted(1, 50), 1);
    }
}
