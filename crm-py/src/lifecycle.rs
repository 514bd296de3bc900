//! Lifecycle stages (`crm_core::lifecycle`) for `Crm`'s methods
//! `lifecycle_config`, `set_lifecycle_config`, `set_lifecycle_stage`,
//! `stage_history`, `time_in_stages`, `stage_counts` and `stage_funnel`.
//!
//! The configuration crosses as the dict shape of the core's
//! `LifecycleConfig` (read through its serde form, so defaults and unknown
//! keys are the core's business); results come out as dicts. The funnel's
//! range is `since`/`until` (the core's `since`/`until` too).

use crm_core::{CustomerId, FunnelStep, LifecycleConfig, StageCount, StageTime, StageTransition};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::invalid;
use crate::{Crm, arg, convert, merged};

// ===== out ==================================================================

fn config<'py>(py: Python<'py>, c: &LifecycleConfig) -> PyResult<Bound<'py, PyDict>> {
    let stages = PyList::empty(py);
    for s in &c.stages {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "name"), &s.name)?;
        d.set_item(intern!(py, "allow_backward"), s.allow_backward)?;
        stages.append(d)?;
    }
    let d = PyDict::new(py);
    d.set_item(intern!(py, "stages"), stages)?;
    d.set_item(intern!(py, "off_track"), &c.off_track)?;
    d.set_item(intern!(py, "default_stage"), &c.default_stage)?;
    Ok(d)
}

fn transition<'py>(py: Python<'py>, t: &StageTransition) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "from"), &t.from)?;
    d.set_item(intern!(py, "to"), &t.to)?;
    d.set_item(intern!(py, "at"), t.at)?;
    d.set_item(intern!(py, "cause"), t.cause.as_str())?;
    d.set_item(intern!(py, "rule"), &t.rule)?;
    d.set_item(intern!(py, "note"), &t.note)?;
    Ok(d)
}

fn stage_time<'py>(py: Python<'py>, t: &StageTime) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "stage"), &t.stage)?;
    d.set_item(intern!(py, "seconds"), t.seconds)?;
    d.set_item(intern!(py, "entered"), t.entered)?;
    Ok(d)
}

fn stage_count<'py>(py: Python<'py>, c: &StageCount) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "stage"), &c.stage)?;
    d.set_item(intern!(py, "customers"), c.customers)?;
    Ok(d)
}

fn funnel_step<'py>(py: Python<'py>, f: &FunnelStep) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "stage"), &f.stage)?;
    d.set_item(intern!(py, "entered"), f.entered)?;
    d.set_item(intern!(py, "advanced"), f.advanced)?;
    d.set_item(intern!(py, "conversion_rate"), f.conversion_rate)?;
    Ok(d)
}

// ===== methods ==============================================================

#[pymethods]
impl Crm {
    /// The lifecycle configuration: `{"stages": [{"name", "allow_backward"}],
    /// "off_track": [...], "default_stage": str}` (the defaults until one is
    /// set: subscriber, lead, mql, sql, opportunity, customer, evangelist;
    /// off track other and churned; new customers start as subscriber).
    fn lifecycle_config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let found = self.run(py, |c| c.lifecycle_config())?;
        config(py, &found)
    }

    /// Replaces the lifecycle configuration, given as a dict and/or keyword
    /// arguments shaped like `lifecycle_config()`'s result (`off_track`
    /// defaults to none; `allow_backward` to False). `stages` are ordered,
    /// earliest first; a stage with `allow_backward` lets customers move
    /// back from it to any earlier stage. Returns the configuration as
    /// stored (names lower-cased). ValidationError for a bad configuration;
    /// ConflictError when it removes a stage customers are in. Nothing
    /// changes on error.
    #[pyo3(signature = (config = None, /, **fields))]
    fn set_lifecycle_config<'py>(
        &self,
        py: Python<'py>,
        config: Option<&Bound<'py, PyAny>>,
        fields: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let given = merged(py, config, fields, "config")?;
        let json = convert::json(given.as_any(), "config").map_err(|(f, r)| invalid(f, r))?;
        let wanted: LifecycleConfig = serde_json::from_value(json).map_err(|e| {
            let text = e.to_string();
            let reason = text.split(" at line ").next().unwrap_or(&text).to_string();
            invalid("config", reason)
        })?;
        let stored = self.run(py, move |c| c.set_lifecycle_config(&wanted))?;
        self::config(py, &stored)
    }

    /// Moves the customer to `stage` (a manual transition; `note` is kept
    /// on it) and returns the customer as stored. ValidationError for a
    /// stage that is not configured or a backward move the configuration
    /// does not allow; nothing changes then.
    #[pyo3(signature = (id, stage, note = None))]
    fn set_lifecycle_stage<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        stage: &Bound<'py, PyAny>,
        note: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id: CustomerId = convert::id(id, "id")?;
        let stage = convert::string(stage, "stage")?;
        let note = arg(note, None, |o| convert::opt_string(o, "note"))?;
        let stored = self.run(py, move |c| {
            c.set_lifecycle_stage(id, &stage, note.as_deref())
        })?;
        convert::customer(py, &stored)
    }

    /// Every stage transition of the customer, oldest first: dicts with
    /// `from` (None for the stage the customer was created in), `to`, `at`,
    /// `cause` ("manual", "import", "rule" or "upgrade"), `rule` and `note`.
    fn stage_history<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id: CustomerId = convert::id(id, "id")?;
        let found = self.run(py, move |c| c.stage_history(id))?;
        convert::list(py, &found, transition)
    }

    /// The time the customer spent in each stage they have been in, up to
    /// `now` (default: the current time): `{"stage", "seconds", "entered"}`
    /// dicts in the configured order.
    #[pyo3(signature = (id, now = None))]
    fn time_in_stages<'py>(
        &self,
        py: Python<'py>,
        id: &Bound<'py, PyAny>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id: CustomerId = convert::id(id, "id")?;
        let now = arg(now, None, |o| convert::opt_time(o, "now"))?;
        let found = self.run(py, move |c| c.time_in_stages(id, now))?;
        convert::list(py, &found, stage_time)
    }

    /// How many customers were in each stage at the instant `at`:
    /// `{"stage", "customers"}` dicts, every configured stage in order.
    fn stage_counts<'py>(
        &self,
        py: Python<'py>,
        at: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let at = convert::time(at, "at")?;
        let found = self.run(py, move |c| c.stage_counts(at))?;
        convert::list(py, &found, stage_count)
    }

    /// The funnel from `since` (inclusive) until `until` (exclusive): for
    /// each ordered stage, `entered` (customers who entered it in the
    /// period), `advanced` (of those, who then reached a later stage within
    /// the period) and `conversion_rate` (None when nobody entered).
    fn stage_funnel<'py>(
        &self,
        py: Python<'py>,
        since: &Bound<'py, PyAny>,
        until: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let since = convert::time(since, "since")?;
        let until = convert::time(until, "until")?;
        let found = self.run(py, move |c| c.stage_funnel(since, until))?;
        convert::list(py, &found, funnel_step)
    }
}
