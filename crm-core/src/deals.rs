//! Sales pipelines, deals and tasks.
//!
//! A pipeline is an ordered list of stages in one currency; each stage has a
//! default probability and may be closed (won or lost). A deal moves through
//! the stages of its pipeline with [`Crm::move_deal`]; its status follows
//! from its stage, and every move is kept in its stage history
//! ([`Crm::deal_history`]). [`Crm::forecast`] weighs the open deals by their
//! probabilities. Tasks are work for an owner, due at a time, linked to a
//! customer and/or a deal; [`Crm::overdue_tasks`] lists those past due.
//!
//! ```
//! use crm_core::Crm;
//! use crm_core::model::deal::{ForecastQuery, NewDeal, NewPipeline, PipelineStage};
//!
//! let crm = Crm::open_in_memory()?;
//! crm.create_pipeline(&NewPipeline::new("Sales", "EUR", vec![
//!     PipelineStage::open("Lead", 10),
//!     PipelineStage::open("Proposal", 60),
//!     PipelineStage::won("Won"),
//!     PipelineStage::lost("Lost"),
//! ]))?;
//! let deal = crm.create_deal(&NewDeal::new("Sales", "Solar roof", 1_000_000))?;
//! assert_eq!((deal.stage.as_str(), deal.probability), ("Lead", 10));
//!
//! let deal = crm.move_deal(deal.id, "Proposal", None)?;
//! let forecast = crm.forecast(&ForecastQuery::new("Sales"))?;
//! assert_eq!(forecast.weighted_minor, 600_000);
//!
//! // A lost deal needs a reason.
//! assert!(crm.move_deal(deal.id, "Lost", None).is_err());
//! let lost = crm.move_deal(deal.id, "Lost", Some("went with a competitor"))?;
//! assert_eq!(lost.status, crm_core::model::deal::DealStatus::Lost);
//! assert_eq!(crm.deal_history(deal.id)?.len(), 3);
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db;
use crate::db::deals::{DealFilter, TaskFilter};
use crate::error::{Error, Result};
use crate::model::change::ChangeContext;
use crate::model::deal::{
    self, Deal, DealPatch, DealQuery, DealStageChange, DealStatus, Forecast, ForecastQuery,
    ForecastStage, NewDeal, NewPipeline, NewTask, Pipeline, PipelineStage, Task, TaskPatch,
    TaskQuery, TaskStatus,
};
use crate::model::ids::{DealId, TaskId};
use crate::page::{self, Page};
use crate::rules::{self, Event};

/// The rowid after the last item of a page, as a cursor.
#[derive(Serialize, Deserialize)]
struct After(i64);

/// The position after the last task of an overdue page.
#[derive(Serialize, Deserialize)]
struct AfterDue(i64, i64);

fn after(cursor: Option<&str>) -> Result<i64> {
    Ok(cursor
        .map(page::decode::<After>)
        .transpose()?
        .map_or(0, |a| a.0))
}

fn paginate<T>(rows: Vec<(i64, T)>, limit: u32) -> Page<T> {
    page::paginate(
        rows.into_iter().map(|(r, t)| (After(r), t)).collect(),
        limit,
    )
}

impl Crm {
    // ----- pipelines --------------------------------------------------------

    /// Creates a pipeline. It needs a unique name, a valid currency and at
    /// least one stage, one of them open (see
    /// [`crate::model::deal::validate_stages`]); otherwise nothing is
    /// stored.
    ///
    /// ```
    /// use crm_core::model::deal::{NewPipeline, PipelineStage};
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let empty = crm.create_pipeline(&NewPipeline::new("Sales", "EUR", vec![]));
    /// assert_eq!(empty.unwrap_err().to_string(), "invalid stages: a pipeline needs at least one stage");
    /// let p = crm.create_pipeline(&NewPipeline::new("Sales", "eur", vec![PipelineStage::open("Lead", 10)]))?;
    /// assert_eq!(p.currency, "EUR");
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn create_pipeline(&self, new: &NewPipeline) -> Result<Pipeline> {
        let pipeline = new.validate(Crm::now())?;
        self.db.write(|tx| {
            db::deals::insert_pipeline(tx, &self.context, &pipeline)?;
            Ok(pipeline)
        })
    }

    /// A pipeline by name, or [`Error::NotFound`].
    pub fn pipeline(&self, name: &str) -> Result<Pipeline> {
        self.db
            .read(|conn| db::deals::require_pipeline(conn, name).map(|(_, p)| p))
    }

    /// Every pipeline, by name.
    pub fn pipelines(&self) -> Result<Vec<Pipeline>> {
        self.db.read(db::deals::pipelines)
    }

    /// Replaces a pipeline's stages (to reorder, add, remove or re-weigh
    /// them). A stage that holds deals can't be removed (renaming is removing
    /// and adding) nor change whether it is closed or won: that is refused
    /// with [`Error::Conflict`] naming the stage and its number of deals.
    /// Deals without their own probability take the new defaults.
    pub fn update_pipeline_stages(&self, name: &str, stages: &[PipelineStage]) -> Result<Pipeline> {
        let stages = deal::validate_stages(stages)?;
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut pipeline) = db::deals::require_pipeline(tx, name)?;
            if pipeline.stages == stages {
                return Ok(pipeline);
            }
            for (stage, count) in db::deals::deals_per_stage(tx, rowid)? {
                let old = pipeline.stages.iter().find(|s| s.name == stage);
                match stages.iter().find(|s| s.name == stage) {
                    None => {
                        return Err(Error::conflict(
                            "stages",
                            format!("stage '{stage}' holds {count} deal(s); move them before removing it"),
                        ));
                    }
                    Some(new) if old.is_some_and(|o| o.status() != new.status()) => {
                        return Err(Error::conflict(
                            "stages",
                            format!(
                                "stage '{stage}' holds {count} deal(s); whether it is closed or won can't change"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            pipeline.stages = stages;
            pipeline.updated_at = now;
            db::deals::update_pipeline_stages(tx, &self.context, rowid, &pipeline)?;
            Ok(pipeline)
        })
    }

    /// Deletes a pipeline; one that has deals is refused with
    /// [`Error::Conflict`].
    pub fn delete_pipeline(&self, name: &str) -> Result<()> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, pipeline) = db::deals::require_pipeline(tx, name)?;
            db::deals::delete_pipeline(tx, &self.context, rowid, &pipeline, now)
        })
    }

    // ----- deals ------------------------------------------------------------

    /// Creates a deal in a pipeline, by default in its first open stage and
    /// its currency. A currency other than the pipeline's, an unknown stage
    /// (the error suggests the nearest), a negative value, an unknown
    /// customer or an organization that is a person are refused and nothing
    /// is stored. A deal created in a lost stage needs a `close_reason`.
    ///
    /// ```
    /// use crm_core::model::deal::{NewDeal, NewPipeline, PipelineStage};
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// crm.create_pipeline(&NewPipeline::new("Sales", "EUR", vec![PipelineStage::open("Lead", 10)]))?;
    /// let usd = NewDeal { currency: Some("USD".into()), ..NewDeal::new("Sales", "Roof", 500) };
    /// assert_eq!(crm.create_deal(&usd).unwrap_err().to_string(),
    ///            "invalid currency: the deal is in USD but pipeline 'Sales' is in EUR");
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn create_deal(&self, new: &NewDeal) -> Result<Deal> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (pipeline_rowid, pipeline) = db::deals::require_pipeline(tx, &new.pipeline)?;
            let v = new.validate(&pipeline)?;
            let links = db::deals::customer_links(tx, new.customer_id, new.organization_id)?;
            let status = v.stage.status();
            let deal = Deal {
                id: DealId::new(),
                pipeline: pipeline.name.clone(),
                title: v.title,
                stage: v.stage.name.clone(),
                value_minor: v.value_minor,
                currency: v.currency,
                probability: deal::effective_probability(
                    status,
                    v.probability,
                    v.stage.probability,
                ),
                probability_override: v.probability,
                owner: v.owner,
                expected_close: new.expected_close,
                customer_id: new.customer_id,
                organization_id: new.organization_id,
                status,
                close_reason: v.close_reason,
                closed_at: (status != DealStatus::Open).then_some(now),
                created_at: now,
                updated_at: now,
            };
            db::deals::insert_deal(tx, &self.context, pipeline_rowid, &deal, links)?;
            Ok(deal)
        })
    }

    /// The deal with `id`, or [`Error::NotFound`].
    pub fn get_deal(&self, id: DealId) -> Result<Deal> {
        self.db
            .read(|conn| db::deals::require_deal(conn, id).map(|(_, d, _)| d))
    }

    /// Changes a deal's fields (not its stage: see [`Crm::move_deal`]).
    /// Only fields whose value changes are logged; a patch that changes
    /// nothing writes nothing.
    pub fn update_deal(&self, id: DealId, patch: &DealPatch) -> Result<Deal> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut deal, pipeline_rowid) = db::deals::require_deal(tx, id)?;
            let pipeline = db::deals::pipeline_by_rowid(tx, pipeline_rowid)?;
            let stage = pipeline.stage_named(&deal.stage, "stage")?.clone();
            let changed = patch.apply(&mut deal, &stage)?;
            if changed.is_empty() {
                return Ok(deal);
            }
            let links = db::deals::customer_links(tx, deal.customer_id, deal.organization_id)?;
            deal.updated_at = now;
            db::deals::update_deal(tx, &self.context, rowid, &deal, links, &changed)?;
            Ok(deal)
        })
    }

    /// Moves a deal to another stage of its pipeline, recording the move in
    /// its stage history and running the rules that deal stage changes
    /// trigger, all in one transaction.
    ///
    /// Entering a closed stage closes the deal as won or lost (from the
    /// stage) and stores `reason` as its close reason; **a lost deal needs a
    /// reason** (a validation error on `reason` otherwise). Entering an open
    /// stage reopens a closed deal and clears its close reason. The reason
    /// of any move is kept in the history. Moving a deal to the stage it is
    /// in changes nothing. An unknown stage is refused with the nearest
    /// stage name suggested.
    pub fn move_deal(&self, id: DealId, stage: &str, reason: Option<&str>) -> Result<Deal> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut deal, pipeline_rowid) = db::deals::require_deal(tx, id)?;
            let pipeline = db::deals::pipeline_by_rowid(tx, pipeline_rowid)?;
            let to = pipeline.stage_named(stage, "stage")?.clone();
            if to.name == deal.stage {
                return Ok(deal);
            }
            let close_reason = deal::close_reason(&to, reason)?;
            let note = deal::opt_text("reason", reason, deal::MAX_REASON_LEN)?;
            let from = std::mem::replace(&mut deal.stage, to.name.clone());
            let was = deal.status;
            deal.status = to.status();
            let mut changed = vec!["stage"];
            if deal.status != was {
                changed.push("status");
                deal.closed_at = (deal.status != DealStatus::Open).then_some(now);
                changed.push("closed_at");
            }
            if close_reason != deal.close_reason {
                deal.close_reason = close_reason;
                changed.push("close_reason");
            }
            deal.probability =
                deal::effective_probability(deal.status, deal.probability_override, to.probability);
            deal.updated_at = now;
            let links = db::deals::deal_links(tx, rowid)?;
            db::deals::update_deal(tx, &self.context, rowid, &deal, links, &changed)?;
            db::deals::add_history(
                tx,
                &self.context,
                rowid,
                Some(&from),
                &to.name,
                now,
                note.as_deref(),
            )?;
            rules::fire(
                self,
                tx,
                Event::DealStageChanged {
                    deal_rowid: rowid,
                    from,
                    to: to.name,
                },
            )?;
            Ok(deal)
        })
    }

    /// One page of deals, in creation order, filtered by pipeline, stage,
    /// owner, customer (as customer or organization) and status.
    pub fn deals(&self, query: &DealQuery) -> Result<Page<Deal>> {
        let limit = page::check_limit(query.limit)?;
        let after = after(query.cursor.as_deref())?;
        let rows = self.db.read(|conn| {
            let pipeline = query
                .pipeline
                .as_deref()
                .map(|p| db::deals::require_pipeline(conn, p))
                .transpose()?;
            let stage = match (&query.stage, &pipeline) {
                (None, _) => None,
                (Some(s), Some((_, p))) => Some(p.stage_named(s, "stage")?.name.clone()),
                (Some(_), None) => {
                    return Err(Error::validation(
                        "stage",
                        "a stage is looked up within a pipeline: give the pipeline too",
                    ));
                }
            };
            let customer_rowid = match query.customer_id {
                None => None,
                Some(id) => match db::customers::rowid_of(conn, id)? {
                    Some(r) => Some(r),
                    None => return Ok(Vec::new()),
                },
            };
            let filter = DealFilter {
                pipeline_rowid: pipeline.as_ref().map(|(r, _)| *r),
                stage: stage.as_deref(),
                owner: query.owner.as_deref().map(str::trim),
                customer_rowid,
                status: query.status,
            };
            db::deals::deals_page(conn, &filter, after, limit + 1)
        })?;
        Ok(paginate(rows, limit))
    }

    /// A deal's stage changes, oldest first; the first is the stage it was
    /// created in (`from` is `None`).
    pub fn deal_history(&self, id: DealId) -> Result<Vec<DealStageChange>> {
        self.db.read(|conn| {
            let rowid =
                db::deals::deal_rowid(conn, id)?.ok_or(Error::NotFound { entity: "deal" })?;
            db::deals::history(conn, rowid)
        })
    }

    /// Deletes a deal, its stage history and its tasks.
    pub fn delete_deal(&self, id: DealId) -> Result<()> {
        let now = Crm::now();
        self.db.write(|tx| {
            let rowid = db::deals::deal_rowid(tx, id)?.ok_or(Error::NotFound { entity: "deal" })?;
            db::deals::delete_deal(tx, &self.context, rowid, id, now)
        })
    }

    /// The weighted forecast of a pipeline's open deals, per open stage (in
    /// pipeline order, stages without deals included) and in total. A deal's
    /// weighted value is its value × its effective probability / 100, rounded
    /// half up to a whole minor unit on its own ([`deal::weighted`]); sums
    /// are exact integers. Computed by one grouped query.
    ///
    /// ```
    /// use crm_core::model::deal::{ForecastQuery, NewDeal, NewPipeline, PipelineStage};
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// crm.create_pipeline(&NewPipeline::new("Sales", "EUR", vec![
    ///     PipelineStage::open("Lead", 10), PipelineStage::open("Proposal", 50), PipelineStage::won("Won"),
    /// ]))?;
    /// crm.create_deal(&NewDeal::new("Sales", "A", 1_000))?;
    /// crm.create_deal(&NewDeal { probability: Some(25), ..NewDeal::new("Sales", "B", 1_000) })?;
    /// crm.create_deal(&NewDeal { stage: Some("Won".into()), ..NewDeal::new("Sales", "C", 9_999) })?;
    /// let f = crm.forecast(&ForecastQuery::new("Sales"))?;
    /// assert_eq!((f.total_minor, f.weighted_minor), (2_000, 350));
    /// assert_eq!(f.stages.len(), 2);
    /// assert_eq!((f.stages[0].deals, f.stages[1].deals), (2, 0));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn forecast(&self, query: &ForecastQuery) -> Result<Forecast> {
        if let (Some(from), Some(to)) = (query.close_from, query.close_to) {
            if from > to {
                return Err(Error::validation("close_from", "is after close_to"));
            }
        }
        let owner = query.owner.as_deref().map(str::trim);
        let (pipeline, sums) = self.db.read(|conn| {
            let (rowid, pipeline) = db::deals::require_pipeline(conn, &query.pipeline)?;
            let sums = db::deals::forecast(conn, rowid, owner, query.close_from, query.close_to)?;
            Ok((pipeline, sums))
        })?;
        let stages: Vec<ForecastStage> = pipeline
            .stages
            .iter()
            .filter(|s| !s.closed)
            .map(|s| {
                let (deals, value_minor, weighted_minor) = sums
                    .iter()
                    .find(|(name, ..)| *name == s.name)
                    .map_or((0, 0, 0), |(_, d, v, w)| (*d, *v, *w));
                ForecastStage {
                    stage: s.name.clone(),
                    probability: s.probability,
                    deals,
                    value_minor,
                    weighted_minor,
                }
            })
            .collect();
        Ok(Forecast {
            pipeline: pipeline.name,
            currency: pipeline.currency,
            total_minor: stages.iter().map(|s| s.value_minor).sum(),
            weighted_minor: stages.iter().map(|s| s.weighted_minor).sum(),
            stages,
        })
    }

    // ----- tasks ------------------------------------------------------------

    /// Creates an open task. An unknown customer or deal is refused and
    /// nothing is stored.
    ///
    /// ```
    /// use chrono::{Duration, Utc};
    /// use crm_core::model::deal::{NewTask, Priority};
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let task = crm.create_task(&NewTask {
    ///     owner: Some("maja".into()),
    ///     due_at: Some(Utc::now() - Duration::days(1)),
    ///     priority: Priority::High,
    ///     ..NewTask::new("Call back about the offer")
    /// })?;
    /// let overdue = crm.overdue_tasks(None, Some("maja"), 100, None)?;
    /// assert_eq!(overdue.items[0].id, task.id);
    /// crm.complete_task(task.id)?;
    /// assert!(crm.overdue_tasks(None, None, 100, None)?.items.is_empty());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn create_task(&self, new: &NewTask) -> Result<Task> {
        let now = Crm::now();
        self.db
            .write(|tx| insert_task_tx(tx, &self.context, new, now))
    }

    /// The task with `id`, or [`Error::NotFound`].
    pub fn get_task(&self, id: TaskId) -> Result<Task> {
        self.db
            .read(|conn| db::deals::require_task(conn, id).map(|(_, t)| t))
    }

    /// Changes a task's fields (not its status: see [`Crm::complete_task`],
    /// [`Crm::cancel_task`] and [`Crm::reopen_task`]).
    pub fn update_task(&self, id: TaskId, patch: &TaskPatch) -> Result<Task> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut task) = db::deals::require_task(tx, id)?;
            let changed = patch.apply(&mut task)?;
            if changed.is_empty() {
                return Ok(task);
            }
            let relinked = changed
                .iter()
                .any(|f| *f == "customer_id" || *f == "deal_id");
            let links = if relinked {
                Some(db::deals::task_links(tx, task.customer_id, task.deal_id)?)
            } else {
                None
            };
            task.updated_at = now;
            db::deals::update_task(tx, &self.context, rowid, &task, links, &changed)?;
            Ok(task)
        })
    }

    fn set_task_status(&self, id: TaskId, status: TaskStatus) -> Result<Task> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut task) = db::deals::require_task(tx, id)?;
            if task.status == status {
                return Ok(task);
            }
            if status != TaskStatus::Open && task.status != TaskStatus::Open {
                return Err(Error::conflict(
                    "status",
                    format!("the task is {}; reopen it first", task.status.as_str()),
                ));
            }
            task.status = status;
            task.completed_at = (status != TaskStatus::Open).then_some(now);
            task.updated_at = now;
            db::deals::update_task(
                tx,
                &self.context,
                rowid,
                &task,
                None,
                &["status", "completed_at"],
            )?;
            Ok(task)
        })
    }

    /// Marks an open task done (a done task stays as it is; a cancelled one
    /// is refused with [`Error::Conflict`]).
    pub fn complete_task(&self, id: TaskId) -> Result<Task> {
        self.set_task_status(id, TaskStatus::Done)
    }

    /// Cancels an open task (a cancelled task stays as it is; a done one is
    /// refused with [`Error::Conflict`]).
    pub fn cancel_task(&self, id: TaskId) -> Result<Task> {
        self.set_task_status(id, TaskStatus::Cancelled)
    }

    /// Opens a done or cancelled task again.
    pub fn reopen_task(&self, id: TaskId) -> Result<Task> {
        self.set_task_status(id, TaskStatus::Open)
    }

    /// Deletes a task.
    pub fn delete_task(&self, id: TaskId) -> Result<()> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, task) = db::deals::require_task(tx, id)?;
            db::deals::delete_task(tx, &self.context, rowid, &task, now)
        })
    }

    /// One page of tasks, in creation order, filtered by owner, customer,
    /// deal and status.
    pub fn tasks(&self, query: &TaskQuery) -> Result<Page<Task>> {
        let limit = page::check_limit(query.limit)?;
        let after = after(query.cursor.as_deref())?;
        let rows = self.db.read(|conn| {
            let customer_rowid = match query.customer_id {
                None => None,
                Some(id) => match db::customers::rowid_of(conn, id)? {
                    Some(r) => Some(r),
                    None => return Ok(Vec::new()),
                },
            };
            let deal_rowid = match query.deal_id {
                None => None,
                Some(id) => match db::deals::deal_rowid(conn, id)? {
                    Some(r) => Some(r),
                    None => return Ok(Vec::new()),
                },
            };
            let filter = TaskFilter {
                owner: query.owner.as_deref().map(str::trim),
                customer_rowid,
                deal_rowid,
                status: query.status,
            };
            db::deals::tasks_page(conn, &filter, after, limit + 1)
        })?;
        Ok(paginate(rows, limit))
    }

    /// One page of the open tasks due before `now` (default: the current
    /// time), oldest due first, optionally of one owner.
    pub fn overdue_tasks(
        &self,
        now: Option<DateTime<Utc>>,
        owner: Option<&str>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Task>> {
        let limit = page::check_limit(limit)?;
        let after = cursor
            .map(page::decode::<AfterDue>)
            .transpose()?
            .map(|a| (a.0, a.1));
        let now = now.unwrap_or_else(Crm::now);
        let owner = owner.map(str::trim);
        let rows = self
            .db
            .read(|conn| db::deals::overdue(conn, now, owner, after, limit + 1))?;
        Ok(page::paginate(
            rows.into_iter()
                .map(|((d, r), t)| (AfterDue(d, r), t))
                .collect(),
            limit,
        ))
    }
}

// ----- for the rules engine --------------------------------------------------

/// Validates and stores a task inside `tx` on behalf of `ctx` (its `rule`
/// becomes the task's `rule`), logging its creation.
pub(crate) fn insert_task_tx(
    tx: &Connection,
    ctx: &ChangeContext,
    new: &NewTask,
    now: DateTime<Utc>,
) -> Result<Task> {
    let task = new.validate(now, ctx.rule.as_deref())?;
    let links = db::deals::task_links(tx, task.customer_id, task.deal_id)?;
    db::deals::insert_task(tx, ctx, &task, links)?;
    Ok(task)
}

/// How much open work `owner` has: open tasks plus open deals.
pub(crate) fn open_work(conn: &Connection, owner: &str) -> Result<u64> {
    db::deals::open_work(conn, owner)
}

/// Gives a deal to `owner` inside `tx`, logging the change; `false` if it
/// was theirs already.
pub(crate) fn set_deal_owner_tx(
    tx: &Connection,
    ctx: &ChangeContext,
    deal_rowid: i64,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let owner = deal::owner(Some(owner))?;
    let (mut deal, _) =
        db::deals::deal_by_rowid(tx, deal_rowid)?.ok_or(Error::NotFound { entity: "deal" })?;
    if deal.owner == owner {
        return Ok(false);
    }
    deal.owner = owner;
    deal.updated_at = now;
    let links = db::deals::deal_links(tx, deal_rowid)?;
    db::deals::update_deal(tx, ctx, deal_rowid, &deal, links, &["owner"])?;
    Ok(true)
}

/// A deal and its customer's rowid, by rowid.
pub(crate) fn deal_by_rowid(conn: &Connection, rowid: i64) -> Result<Option<(Deal, Option<i64>)>> {
    db::deals::deal_by_rowid(conn, rowid)
}
