//! Pipelines, deals and tasks (`crm_core::deals`) for `Crm`'s methods
//! `create_pipeline`, `pipeline`, `pipelines`, `update_pipeline_stages`,
//! `delete_pipeline`, `create_deal`, `get_deal`, `update_deal`, `move_deal`,
//! `deals`, `deal_history`, `delete_deal`, `forecast`, `create_task`,
//! `get_task`, `update_task`, `complete_task`, `cancel_task`, `reopen_task`,
//! `delete_task`, `tasks` and `overdue_tasks`.
//!
//! New deals and tasks and their patches come as a dict and/or keyword
//! arguments, like customers; in a patch, `None` clears a field. Results
//! are dicts. Every check and default is the core's.

use crm_core::{
    Deal, DealId, DealPatch, DealQuery, DealStageChange, DealStatus, Forecast, ForecastQuery,
    NewDeal, NewPipeline, NewTask, Pipeline, PipelineStage, Priority, Task, TaskId, TaskPatch,
    TaskQuery, TaskStatus,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::{OrRaise, invalid};
use crate::{Crm, arg, convert, merged};

// ===== in ===================================================================

/// A pipeline's stages: a list of `{"name", "probability", "closed", "won"}`
/// (`closed` and `won` default to False).
fn stages(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<PipelineStage>> {
    let list = obj
        .cast::<PyList>()
        .map(|l| l.iter().collect::<Vec<_>>())
        .or_else(|_| {
            obj.cast::<pyo3::types::PyTuple>()
                .map(|t| t.iter().collect::<Vec<_>>())
        })
        .map_err(|_| invalid(field, "must be a list of stages"))?;
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{field}[{i}]");
            let mut name = None;
            let mut probability = None;
            let mut stage = PipelineStage::open("", 0);
            for (key, value) in convert::items(item, &at)? {
                let k = format!("{at}.{key}");
                match key.as_str() {
                    "name" => name = Some(convert::string(&value, &k)?),
                    "probability" => probability = Some(convert::integer::<u8>(&value, &k)?),
                    "closed" => stage.closed = convert::boolean(&value, &k)?,
                    "won" => stage.won = convert::boolean(&value, &k)?,
                    _ => return Err(convert::unknown_field(&k, "stage")),
                }
            }
            stage.name = name.ok_or_else(|| invalid(format!("{at}.name"), "is required"))?;
            stage.probability =
                probability.ok_or_else(|| invalid(format!("{at}.probability"), "is required"))?;
            Ok(stage)
        })
        .collect()
}

fn new_deal(fields: &Bound<'_, PyAny>) -> PyResult<NewDeal> {
    let mut new = NewDeal::default();
    let mut value = None;
    for (key, v) in convert::items(fields, "deal")? {
        let (k, v) = (key.as_str(), &v);
        match k {
            "pipeline" => new.pipeline = convert::string(v, k)?,
            "title" => new.title = convert::string(v, k)?,
            "stage" => new.stage = convert::opt_string(v, k)?,
            "value_minor" => value = Some(convert::integer(v, k)?),
            "currency" => new.currency = convert::opt_string(v, k)?,
            "owner" => new.owner = convert::opt_string(v, k)?,
            "expected_close" => new.expected_close = convert::opt_date(v, k)?,
            "probability" => new.probability = convert::opt_integer(v, k)?,
            "customer_id" => new.customer_id = convert::opt_id(v, k)?,
            "organization_id" => new.organization_id = convert::opt_id(v, k)?,
            "close_reason" => new.close_reason = convert::opt_string(v, k)?,
            _ => return Err(convert::unknown_field(k, "deal")),
        }
    }
    new.value_minor = value.ok_or_else(|| invalid("value_minor", "is required"))?;
    // Fails to compile when the core adds a field, so it can't be forgotten here.
    let NewDeal {
        pipeline: _,
        title: _,
        stage: _,
        value_minor: _,
        currency: _,
        owner: _,
        expected_close: _,
        probability: _,
        customer_id: _,
        organization_id: _,
        close_reason: _,
    } = &new;
    Ok(new)
}

fn not_clearable(field: &str) -> PyErr {
    invalid(field, "can't be cleared")
}

fn deal_patch(fields: &Bound<'_, PyAny>) -> PyResult<DealPatch> {
    let mut patch = DealPatch::default();
    for (key, v) in convert::items(fields, "changes")? {
        let (k, v) = (key.as_str(), &v);
        match k {
            "title" if v.is_none() => return Err(not_clearable(k)),
            "title" => patch.title = Some(convert::string(v, k)?),
            "value_minor" if v.is_none() => return Err(not_clearable(k)),
            "value_minor" => patch.value_minor = Some(convert::integer(v, k)?),
            "owner" => patch.owner = Some(convert::opt_string(v, k)?),
            "expected_close" => patch.expected_close = Some(convert::opt_date(v, k)?),
            "probability" => patch.probability = Some(convert::opt_integer(v, k)?),
            "customer_id" => patch.customer_id = Some(convert::opt_id(v, k)?),
            "organization_id" => patch.organization_id = Some(convert::opt_id(v, k)?),
            "stage" => {
                return Err(invalid(k, "changes with move_deal(id, stage, reason)"));
            }
            _ => return Err(convert::unknown_field(k, "deal")),
        }
    }
    let DealPatch {
        title: _,
        value_minor: _,
        owner: _,
        expected_close: _,
        probability: _,
        customer_id: _,
        organization_id: _,
    } = &patch;
    Ok(patch)
}

fn priority(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Priority> {
    Priority::parse(&convert::string(obj, field)?).or_raise()
}

fn new_task(fields: &Bound<'_, PyAny>) -> PyResult<NewTask> {
    let mut new = NewTask::default();
    for (key, v) in convert::items(fields, "task")? {
        let (k, v) = (key.as_str(), &v);
        match k {
            "title" => new.title = convert::string(v, k)?,
            "notes" => new.notes = convert::opt_string(v, k)?,
            "owner" => new.owner = convert::opt_string(v, k)?,
            "due_at" => new.due_at = convert::opt_time(v, k)?,
            "priority" => new.priority = arg(Some(v), Priority::default(), |o| priority(o, k))?,
            "customer_id" => new.customer_id = convert::opt_id(v, k)?,
            "deal_id" => new.deal_id = convert::opt_id(v, k)?,
            _ => return Err(convert::unknown_field(k, "task")),
        }
    }
    let NewTask {
        title: _,
        notes: _,
        owner: _,
        due_at: _,
        priority: _,
        customer_id: _,
        deal_id: _,
    } = &new;
    Ok(new)
}

fn task_patch(fields: &Bound<'_, PyAny>) -> PyResult<TaskPatch> {
    let mut patch = TaskPatch::default();
    for (key, v) in convert::items(fields, "changes")? {
        let (k, v) = (key.as_str(), &v);
        match k {
            "title" if v.is_none() => return Err(not_clearable(k)),
            "title" => patch.title = Some(convert::string(v, k)?),
            "notes" => patch.notes = Some(convert::opt_string(v, k)?),
            "owner" => patch.owner = Some(convert::opt_string(v, k)?),
            "due_at" => patch.due_at = Some(convert::opt_time(v, k)?),
            "priority" if v.is_none() => return Err(not_clearable(k)),
            "priority" => patch.priority = Some(priority(v, k)?),
            "customer_id" => patch.customer_id = Some(convert::opt_id(v, k)?),
            "deal_id" => patch.deal_id = Some(convert::opt_id(v, k)?),
            "status" => {
                return Err(invalid(
                    k,
                    "changes with complete_task, cancel_task or reopen_task",
                ));
            }
            _ => return Err(convert::unknown_field(k, "task")),
        }
    }
    let TaskPatch {
        title: _,
        notes: _,
        owner: _,
        due_at: _,
        priority: _,
        customer_id: _,
        deal_id: _,
    } = &patch;
    Ok(patch)
}

// ===== out ==================================================================

fn stage<'py>(py: Python<'py>, s: &PipelineStage) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "name"), &s.name)?;
    d.set_item(intern!(py, "probability"), s.probability)?;
    d.set_item(intern!(py, "closed"), s.closed)?;
    d.set_item(intern!(py, "won"), s.won)?;
    Ok(d)
}

fn pipeline<'py>(py: Python<'py>, p: &Pipeline) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), p.id.to_string())?;
    d.set_item(intern!(py, "name"), &p.name)?;
    d.set_item(intern!(py, "currency"), &p.currency)?;
    d.set_item(intern!(py, "stages"), convert::list(py, &p.stages, stage)?)?;
    d.set_item(intern!(py, "created_at"), p.created_at)?;
    d.set_item(intern!(py, "updated_at"), p.updated_at)?;
    Ok(d)
}

fn deal<'py>(py: Python<'py>, x: &Deal) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), x.id.to_string())?;
    d.set_item(intern!(py, "pipeline"), &x.pipeline)?;
    d.set_item(intern!(py, "title"), &x.title)?;
    d.set_item(intern!(py, "stage"), &x.stage)?;
    d.set_item(intern!(py, "value_minor"), x.value_minor)?;
    d.set_item(intern!(py, "currency"), &x.currency)?;
    d.set_item(intern!(py, "probability"), x.probability)?;
    d.set_item(intern!(py, "probability_override"), x.probability_override)?;
    d.set_item(intern!(py, "owner"), &x.owner)?;
    d.set_item(intern!(py, "expected_close"), x.expected_close)?;
    d.set_item(
        intern!(py, "customer_id"),
        x.customer_id.map(|i| i.to_string()),
    )?;
    d.set_item(
        intern!(py, "organization_id"),
        x.organization_id.map(|i| i.to_string()),
    )?;
    d.set_item(intern!(py, "status"), x.status.as_str())?;
    d.set_item(intern!(py, "close_reason"), &x.close_reason)?;
    d.set_item(intern!(py, "closed_at"), x.closed_at)?;
    d.set_item(intern!(py, "created_at"), x.created_at)?;
    d.set_item(intern!(py, "updated_at"), x.updated_at)?;
    Ok(d)
}

fn stage_change<'py>(py: Python<'py>, c: &DealStageChange) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "from"), &c.from)?;
    d.set_item(intern!(py, "to"), &c.to)?;
    d.set_item(intern!(py, "at"), c.at)?;
    d.set_item(intern!(py, "reason"), &c.reason)?;
    d.set_item(intern!(py, "rule"), &c.rule)?;
    Ok(d)
}

fn forecast<'py>(py: Python<'py>, f: &Forecast) -> PyResult<Bound<'py, PyDict>> {
    let stages = PyList::empty(py);
    for s in &f.stages {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "stage"), &s.stage)?;
        d.set_item(intern!(py, "probability"), s.probability)?;
        d.set_item(intern!(py, "deals"), s.deals)?;
        d.set_item(intern!(py, "value_minor"), s.value_minor)?;
        d.set_item(intern!(py, "weighted_minor"), s.weighted_minor)?;
        stages.append(d)?;
    }
    let d = PyDict::new(py);
    d.set_item(intern!(py, "pipeline"), &f.pipeline)?;
    d.set_item(intern!(py, "currency"), &f.currency)?;
    d.set_item(intern!(py, "stages"), stages)?;
    d.set_item(intern!(py, "total_minor"), f.total_minor)?;
    d.set_item(intern!(py, "weighted_minor"), f.weighted_minor)?;
    Ok(d)
}

fn task<'py>(py: Python<'py>, t: &Task) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), t.id.to_string())?;
    d.set_item(intern!(py, "title"), &t.title)?;
    d.set_item(intern!(py, "notes"), &t.notes)?;
    d.set_item(intern!(py, "owner"), &t.owner)?;
    d.set_item(intern!(py, "due_at"), t.due_at)?;
    d.set_item(intern!(py, "priority"), t.priority.as_str())?;
    d.set_item(intern!(py, "status"), t.status.as_str())?;
    d.set_item(
        intern!(py, "customer_id"),
        t.customer_id.map(|i| i.to_string()),
    )?;
    d.set_item(intern!(py, "deal_id"), t.deal_id.map(|i| i.to_string()))?;
    d.set_item(intern!(py, "rule"), &t.rule)?;
    d.set_item(intern!(py, "created_at"), t.created_at)?;
    d.set_item(intern!(py, "updated_at"), t.updated_at)?;
    d.set_item(intern!(py, "completed_at"), t.completed_at)?;
    Ok(d)
}

// ===== methods ==============================================================

#[pymethods]
impl Crm {
    // ----- pipelines ---------------------------------------------------------

    /// Creates a pipeline: a unique name, an ISO-4217 currency and its
    /// ordered stages, each `{"name", "probability", "closed", "won"}`
    /// (probability in percent; `closed`/`won` default to False; a won stage
    /// has probability 100, a lost one 0). ValidationError (nothing stored)
    /// for no stages, duplicate names, no open stage or a bad currency.
    fn create_pipeline<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        currency: &Bound<'py, PyAny>,
        stages: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = NewPipeline {
            name: convert::string(name, "name")?,
            currency: convert::string(currency, "currency")?,
            stages: self::stages(stages, "stages")?,
        };
        let stored = self.run(py, move |c| c.create_pipeline(&new))?;
        pipeline(py, &stored)
    }

    /// The pipeline called `name`; NotFoundError if there is none.
    fn pipeline<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let found = self.run(py, move |c| c.pipeline(&name))?;
        pipeline(py, &found)
    }

    /// Every pipeline, by name.
    fn pipelines<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let found = self.run(py, |c| c.pipelines())?;
        convert::list(py, &found, pipeline)
    }

    /// Replaces a pipeline's stages. ConflictError (nothing changed) when a
    /// stage that holds deals would go or change whether it is closed/won.
    fn update_pipeline_stages<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        stages: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = convert::string(name, "name")?;
        let stages = self::stages(stages, "stages")?;
        let stored = self.run(py, move |c| c.update_pipeline_stages(&name, &stages))?;
        pipeline(py, &stored)
    }

    /// Deletes a pipeline; ConflictError if it has deals.
    fn delete_pipeline(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<()> {
        let name = convert::string(name, "name")?;
        self.run(py, move |c| c.delete_pipeline(&name))
    }

    // ----- deals -------------------------------------------------------------

    /// Creates a deal, given as a dict and/or keyword arguments: `pipeline`
    /// (its name), `title` and `value_minor` are required; `stage` defaults
    /// to the pipeline's first open stage and `currency` to its currency
    /// (another currency is a ValidationError). A deal created in a lost
    /// stage needs `close_reason`. Returns the deal as stored.
    #[pyo3(signature = (deal = None, /, **fields))]
    fn create_deal<'py>(
        &self,
        py: Python<'py>,
        deal: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = new_deal(merged(py, deal, fields, "deal")?.as_any())?;
        let stored = self.run(py, move |c| c.create_deal(&new))?;
        self::deal(py, &stored)
    }

    /// The deal with `id`; NotFoundError if there is none.
    fn get_deal<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: DealId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.get_deal(id))?;
        deal(py, &found)
    }

    /// Changes a deal's fields (title, value_minor, owner, expected_close,
    /// probability, customer_id, organization_id); None clears a field. The
    /// stage changes with `move_deal`. Returns the deal as stored.
    #[pyo3(signature = (id, changes = None, /, **fields))]
    fn update_deal<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        changes: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: DealId = convert::id(id, "id")?;
        let patch = deal_patch(merged(py, changes, fields, "changes")?.as_any())?;
        let stored = self.run(py, move |c| c.update_deal(id, &patch))?;
        deal(py, &stored)
    }

    /// Moves a deal to another stage of its pipeline. A closed stage closes
    /// it as won or lost with `reason` as its close reason (a lost deal
    /// needs one: ValidationError otherwise); an open stage reopens it. The
    /// move is kept in `deal_history`. An unknown stage is a ValidationError
    /// naming the nearest stage.
    #[pyo3(signature = (id, stage, reason = None))]
    fn move_deal<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        stage: &Bound<'py, PyAny>,
        reason: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: DealId = convert::id(id, "id")?;
        let stage = convert::string(stage, "stage")?;
        let reason = arg(reason, None, |o| convert::opt_string(o, "reason"))?;
        let stored = self.run(py, move |c| c.move_deal(id, &stage, reason.as_deref()))?;
        deal(py, &stored)
    }

    /// One page of deals, in creation order: {"items": [...], "next_cursor"}.
    /// `customer_id` matches deals with the customer as customer or as
    /// organization; `stage` needs `pipeline`; `status` is "open", "won" or
    /// "lost".
    #[pyo3(
        signature = (*, pipeline = None, stage = None, owner = None, customer_id = None, status = None, limit = None, cursor = None),
        text_signature = "($self, *, pipeline=None, stage=None, owner=None, customer_id=None, status=None, limit=100, cursor=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn deals<'py>(
        &self,
        py: Python<'py>,
        pipeline: Option<&Bound<'py, PyAny>>,
        stage: Option<&Bound<'py, PyAny>>,
        owner: Option<&Bound<'py, PyAny>>,
        customer_id: Option<&Bound<'py, PyAny>>,
        status: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = DealQuery {
            pipeline: arg(pipeline, None, |o| convert::opt_string(o, "pipeline"))?,
            stage: arg(stage, None, |o| convert::opt_string(o, "stage"))?,
            owner: arg(owner, None, |o| convert::opt_string(o, "owner"))?,
            customer_id: arg(customer_id, None, |o| convert::opt_id(o, "customer_id"))?,
            status: arg(status, None, |o| {
                DealStatus::parse(&convert::string(o, "status")?)
                    .map(Some)
                    .or_raise()
            })?,
            limit: arg(limit, 100, |o| convert::limit(o, "limit"))?,
            cursor: arg(cursor, None, |o| convert::opt_string(o, "cursor"))?,
        };
        let page = self.run(py, move |c| c.deals(&query))?;
        convert::page(py, &page, deal)
    }

    /// A deal's stage changes, oldest first: `{"from", "to", "at",
    /// "reason", "rule"}`; the first is the stage it was created in
    /// (`from` None).
    fn deal_history<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id: DealId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.deal_history(id))?;
        convert::list(py, &found, stage_change)
    }

    /// Deletes a deal with its history and tasks.
    fn delete_deal(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id: DealId = convert::id(id, "id")?;
        self.run(py, move |c| c.delete_deal(id))
    }

    /// The weighted forecast of a pipeline's open deals: per open stage and
    /// in total, values in minor units; each deal weighs value × probability
    /// / 100, rounded half up on its own. `close_from`/`close_to` bound the
    /// expected close date (inclusive; deals without one are left out then).
    #[pyo3(signature = (pipeline, *, owner = None, close_from = None, close_to = None))]
    fn forecast<'py>(
        &self,
        py: Python<'py>,
        pipeline: &Bound<'py, PyAny>,
        owner: Option<&Bound<'py, PyAny>>,
        close_from: Option<&Bound<'py, PyAny>>,
        close_to: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = ForecastQuery {
            pipeline: convert::string(pipeline, "pipeline")?,
            owner: arg(owner, None, |o| convert::opt_string(o, "owner"))?,
            close_from: arg(close_from, None, |o| convert::opt_date(o, "close_from"))?,
            close_to: arg(close_to, None, |o| convert::opt_date(o, "close_to"))?,
        };
        let found = self.run(py, move |c| c.forecast(&query))?;
        forecast(py, &found)
    }

    // ----- tasks -------------------------------------------------------------

    /// Creates an open task, given as a dict and/or keyword arguments:
    /// `title` is required; `notes`, `owner`, `due_at`, `priority` ("low",
    /// "normal" (default), "high", "urgent"), `customer_id`, `deal_id`.
    #[pyo3(signature = (task = None, /, **fields))]
    fn create_task<'py>(
        &self,
        py: Python<'py>,
        task: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = new_task(merged(py, task, fields, "task")?.as_any())?;
        let stored = self.run(py, move |c| c.create_task(&new))?;
        self::task(py, &stored)
    }

    /// The task with `id`; NotFoundError if there is none.
    fn get_task<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: TaskId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.get_task(id))?;
        task(py, &found)
    }

    /// Changes a task's fields; None clears a field. The status changes with
    /// `complete_task`, `cancel_task` and `reopen_task`.
    #[pyo3(signature = (id, changes = None, /, **fields))]
    fn update_task<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        changes: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: TaskId = convert::id(id, "id")?;
        let patch = task_patch(merged(py, changes, fields, "changes")?.as_any())?;
        let stored = self.run(py, move |c| c.update_task(id, &patch))?;
        task(py, &stored)
    }

    /// Marks an open task done; ConflictError for a cancelled one.
    fn complete_task<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: TaskId = convert::id(id, "id")?;
        let stored = self.run(py, move |c| c.complete_task(id))?;
        task(py, &stored)
    }

    /// Cancels an open task; ConflictError for a done one.
    fn cancel_task<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: TaskId = convert::id(id, "id")?;
        let stored = self.run(py, move |c| c.cancel_task(id))?;
        task(py, &stored)
    }

    /// Opens a done or cancelled task again.
    fn reopen_task<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: TaskId = convert::id(id, "id")?;
        let stored = self.run(py, move |c| c.reopen_task(id))?;
        task(py, &stored)
    }

    /// Deletes a task.
    fn delete_task(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<()> {
        let id: TaskId = convert::id(id, "id")?;
        self.run(py, move |c| c.delete_task(id))
    }

    /// One page of tasks, in creation order: {"items": [...],
    /// "next_cursor"}; `status` is "open", "done" or "cancelled".
    #[pyo3(
        signature = (*, owner = None, customer_id = None, deal_id = None, status = None, limit = None, cursor = None),
        text_signature = "($self, *, owner=None, customer_id=None, deal_id=None, status=None, limit=100, cursor=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn tasks<'py>(
        &self,
        py: Python<'py>,
        owner: Option<&Bound<'py, PyAny>>,
        customer_id: Option<&Bound<'py, PyAny>>,
        deal_id: Option<&Bound<'py, PyAny>>,
        status: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let query = TaskQuery {
            owner: arg(owner, None, |o| convert::opt_string(o, "owner"))?,
            customer_id: arg(customer_id, None, |o| convert::opt_id(o, "customer_id"))?,
            deal_id: arg(deal_id, None, |o| convert::opt_id(o, "deal_id"))?,
            status: arg(status, None, |o| {
                TaskStatus::parse(&convert::string(o, "status")?)
                    .map(Some)
                    .or_raise()
            })?,
            limit: arg(limit, 100, |o| convert::limit(o, "limit"))?,
            cursor: arg(cursor, None, |o| convert::opt_string(o, "cursor"))?,
        };
        let page = self.run(py, move |c| c.tasks(&query))?;
        convert::page(py, &page, task)
    }

    /// One page of the open tasks due before `now` (default: the current
    /// time), oldest due first, optionally of one owner.
    #[pyo3(
        signature = (now = None, owner = None, *, limit = None, cursor = None),
        text_signature = "($self, now=None, owner=None, *, limit=100, cursor=None)"
    )]
    fn overdue_tasks<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
        owner: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
        cursor: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = arg(now, None, |o| convert::opt_time(o, "now"))?;
        let owner = arg(owner, None, |o| convert::opt_string(o, "owner"))?;
        let limit = arg(limit, 100, |o| convert::limit(o, "limit"))?;
        let cursor = arg(cursor, None, |o| convert::opt_string(o, "cursor"))?;
        let page = self.run(py, move |c| {
            c.overdue_tasks(now, owner.as_deref(), limit, cursor.as_deref())
        })?;
        convert::page(py, &page, task)
    }
}
