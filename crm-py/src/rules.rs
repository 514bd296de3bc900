//! Rules and assignment teams (`crm_core::rules`) for `Crm`'s methods
//! `create_rule`, `rule`, `rules`, `update_rule`, `set_rule_enabled`,
//! `rule_versions`, `delete_rule`, `dry_run_rule`, `run_sweep`,
//! `rule_effects`, `set_rule_event_handler`, `set_team`, `team`, `teams`,
//! `set_member_out` and `delete_team`.
//!
//! Rules cross as the dict shape of the core's serde form (`trigger` and
//! each action are dicts with a `"type"`), so every check, default and
//! error message is the core's: Python values become JSON, JSON becomes a
//! `NewRule` through `NewRule::from_value`, and results go back through
//! `serde_json::to_value`. Times come out as `datetime`s.

use std::sync::Arc;

use crm_core::rules::{
    DryRun, EffectsQuery, NewRule, Rule, RuleEffect, RuleEvent, RuleEventHandler, SweepReport,
    Team, TeamMember,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::errors::{OrRaise, invalid};
use crate::{Crm, arg, convert};

// ===== out ==================================================================

/// A core value as the dict of its serde form.
fn dict<'py, T: Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyDict>> {
    let value = serde_json::to_value(v).map_err(|e| invalid("value", e))?;
    Ok(convert::json_to_py(py, &value)?.cast_into::<PyDict>()?)
}

fn rule<'py>(py: Python<'py>, r: &Rule) -> PyResult<Bound<'py, PyDict>> {
    let d = dict(py, r)?;
    d.set_item(intern!(py, "created_at"), r.created_at)?;
    d.set_item(intern!(py, "updated_at"), r.updated_at)?;
    Ok(d)
}

fn effect<'py>(py: Python<'py>, e: &RuleEffect) -> PyResult<Bound<'py, PyDict>> {
    let d = dict(py, e)?;
    d.set_item(intern!(py, "at"), e.at)?;
    Ok(d)
}

fn dry_run<'py>(py: Python<'py>, r: &DryRun) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "matching"), r.matching)?;
    d.set_item(intern!(py, "simulated"), r.simulated)?;
    d.set_item(
        intern!(py, "effects"),
        convert::list(py, &r.effects, effect)?,
    )?;
    Ok(d)
}

fn sweep<'py>(py: Python<'py>, r: &SweepReport) -> PyResult<Bound<'py, PyDict>> {
    let d = dict(py, r)?;
    d.set_item(intern!(py, "at"), r.at)?;
    Ok(d)
}

fn event<'py>(py: Python<'py>, e: &RuleEvent) -> PyResult<Bound<'py, PyDict>> {
    dict(py, e)
}

// ===== in ===================================================================

/// A Python value as JSON, or a `ValidationError` naming where it is wrong.
fn json(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Value> {
    convert::json(obj, field).map_err(|(field, reason)| invalid(field, reason))
}

/// A trigger: a dict with a `"type"`, or the name of one that takes no
/// parameters (`"customer_created"`, `"schedule"`).
fn trigger(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(s) = obj.cast::<PyString>() {
        let mut m = Map::new();
        m.insert("type".into(), Value::String(s.to_str()?.to_string()));
        return Ok(Value::Object(m));
    }
    json(obj, "trigger")
}

fn new_rule(
    name: &Bound<'_, PyAny>,
    trigger_: &Bound<'_, PyAny>,
    actions: &Bound<'_, PyAny>,
    condition: Option<&Bound<'_, PyAny>>,
    description: Option<&Bound<'_, PyAny>>,
    enabled: Option<&Bound<'_, PyAny>>,
) -> PyResult<NewRule> {
    let mut m = Map::new();
    m.insert("name".into(), Value::String(convert::string(name, "name")?));
    m.insert("trigger".into(), trigger(trigger_)?);
    m.insert("actions".into(), json(actions, "actions")?);
    if let Some(c) = condition.filter(|c| !c.is_none()) {
        m.insert(
            "condition".into(),
            Value::String(convert::filter(c, "condition")?.into_text()),
        );
    }
    if let Some(d) = description.filter(|d| !d.is_none()) {
        m.insert(
            "description".into(),
            Value::String(convert::string(d, "description")?),
        );
    }
    m.insert(
        "enabled".into(),
        Value::Bool(arg(enabled, true, |e| convert::boolean(e, "enabled"))?),
    );
    NewRule::from_value(Value::Object(m)).or_raise()
}

/// Team members: names, or dicts `{"name", "capacity", "out"}`.
fn members(obj: &Bound<'_, PyAny>) -> PyResult<Vec<TeamMember>> {
    if obj.is_instance_of::<PyString>() {
        return Err(invalid(
            "members",
            "must be a list of names or dicts, not str",
        ));
    }
    let mut out = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        let field = format!("members[{i}]");
        if item.is_instance_of::<PyString>() {
            out.push(TeamMember::new(convert::string(&item, &field)?));
            continue;
        }
        let value = json(&item, &field)?;
        out.push(serde_json::from_value(value).map_err(|e| invalid(&field, e))?);
    }
    Ok(out)
}

/// The host's callable, called with each emitted event as a dict. What it
/// raises fails the rule (and rolls back the write that triggered it).
struct Handler(Py<PyAny>);

impl RuleEventHandler for Handler {
    fn on_rule_event(&self, e: &RuleEvent) -> Result<(), String> {
        // `None`: the interpreter is shutting down; nobody can be told.
        Python::try_attach(|py| {
            let result = event(py, e).and_then(|d| self.0.bind(py).call1((d,)));
            result.map(|_| ()).map_err(|err| {
                let kind = err
                    .get_type(py)
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "exception".into());
                format!("{kind}: {}", err.value(py))
            })
        })
        .unwrap_or_else(|| Err("the Python interpreter is shutting down".into()))
    }
}

// ===== methods ==============================================================

#[pymethods]
impl Crm {
    /// Stores a rule: when `trigger` happens and `condition` (filter
    /// language) holds for the customer, run `actions`, in the same
    /// transaction. `trigger` is a dict such as `{"type":
    /// "interaction_logged", "kind": "purchase"}` or a name
    /// (`"customer_created"`, `"schedule"`); each action a dict such as
    /// `{"type": "set_stage", "stage": "customer"}`. Returns the rule as
    /// stored (version 1).
    #[pyo3(signature = (name, trigger, actions, *, condition=None, description=None, enabled=None))]
    #[allow(clippy::too_many_arguments)]
    fn create_rule<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        trigger: &Bound<'py, PyAny>,
        actions: &Bound<'py, PyAny>,
        condition: Option<&Bound<'py, PyAny>>,
        description: Option<&Bound<'py, PyAny>>,
        enabled: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = new_rule(name, trigger, actions, condition, description, enabled)?;
        let r = self.run(py, |c| c.create_rule(&new))?;
        rule(py, &r)
    }

    /// The rule called `name`; NotFoundError if there is none.
    fn rule<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let r = self.run(py, |c| c.rule(name))?;
        rule(py, &r)
    }

    /// Every rule, by name.
    fn rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rs = self.run(py, |c| c.rules())?;
        convert::list(py, &rs, rule)
    }

    /// Replaces a rule's definition (same arguments as `create_rule`; the
    /// name can't change): a new version.
    #[pyo3(signature = (name, trigger, actions, *, condition=None, description=None, enabled=None))]
    #[allow(clippy::too_many_arguments)]
    fn update_rule<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        trigger: &Bound<'py, PyAny>,
        actions: &Bound<'py, PyAny>,
        condition: Option<&Bound<'py, PyAny>>,
        description: Option<&Bound<'py, PyAny>>,
        enabled: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = new_rule(name, trigger, actions, condition, description, enabled)?;
        let r = self.run(py, |c| c.update_rule(&new.name, &new))?;
        rule(py, &r)
    }

    /// Enables or disables a rule (a new version if it changes).
    fn set_rule_enabled<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        enabled: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let enabled = convert::boolean(enabled, "enabled")?;
        let r = self.run(py, |c| c.set_rule_enabled(name, enabled))?;
        rule(py, &r)
    }

    /// Every version of a rule, oldest first.
    fn rule_versions<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
        let rs = self.run(py, |c| c.rule_versions(name))?;
        convert::list(py, &rs, rule)
    }

    /// Deletes a rule (its effects stay in the change log).
    fn delete_rule(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.run(py, |c| c.delete_rule(name))
    }

    /// What a rule (same arguments as `create_rule`) would do to the
    /// existing data: its condition over every customer, its actions for the
    /// first `limit` matching ones, then everything rolled back. Nothing is
    /// stored and the event handler is not called.
    #[pyo3(signature = (name, trigger, actions, *, condition=None, description=None, limit=None))]
    #[allow(clippy::too_many_arguments)]
    fn dry_run_rule<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        trigger: &Bound<'py, PyAny>,
        actions: &Bound<'py, PyAny>,
        condition: Option<&Bound<'py, PyAny>>,
        description: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let new = new_rule(name, trigger, actions, condition, description, None)?;
        let limit = arg(limit, 100, |l| convert::limit(l, "limit"))?;
        let r = self.run(py, |c| c.dry_run_rule(&new, limit))?;
        dry_run(py, &r)
    }

    /// Runs the scheduled rules at `now` (default: the current time): each
    /// acts once on the customers who newly match its condition.
    #[pyo3(signature = (now=None))]
    fn run_sweep<'py>(
        &self,
        py: Python<'py>,
        now: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let now = arg(now, None, |t| convert::time(t, "now").map(Some))?;
        let r = self.run(py, |c| c.run_sweep(now))?;
        sweep(py, &r)
    }

    /// What rules did, newest first, with why: all of it, one rule's, or
    /// what was done to one customer, deal or task (`entity_id`).
    #[pyo3(signature = (*, rule=None, entity_id=None, limit=None))]
    fn rule_effects<'py>(
        &self,
        py: Python<'py>,
        rule: Option<&Bound<'py, PyAny>>,
        entity_id: Option<&Bound<'py, PyAny>>,
        limit: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let query = EffectsQuery {
            rule: arg(rule, None, |r| convert::string(r, "rule").map(Some))?,
            entity_id: arg(entity_id, None, |e| {
                convert::string(e, "entity_id").map(Some)
            })?,
            limit: arg(limit, None, |l| convert::limit(l, "limit").map(Some))?,
        };
        let es = self.run(py, |c| c.rule_effects(&query))?;
        convert::list(py, &es, effect)
    }

    /// Sets the callable that receives `emit` actions (a dict with
    /// `event`, `rule`, `trigger`, `customer_id`, `deal_id`), or removes it
    /// with None. It runs inside the write that triggered the rule: if it
    /// raises, that write is rolled back and the caller gets a RuleError.
    /// It must not use this database.
    fn set_rule_event_handler(&self, handler: &Bound<'_, PyAny>) -> PyResult<()> {
        if handler.is_none() {
            self.inner.set_rule_event_handler(None);
            return Ok(());
        }
        if !handler.is_callable() {
            return Err(invalid("handler", "must be callable or None"));
        }
        self.inner
            .set_rule_event_handler(Some(Arc::new(Handler(handler.clone().unbind()))));
        Ok(())
    }

    /// Creates or replaces an assignment team. `members` are names or dicts
    /// `{"name", "capacity": int | None, "out": bool}`, in round-robin
    /// order.
    fn set_team<'py>(
        &self,
        py: Python<'py>,
        name: &Bound<'py, PyAny>,
        members: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let team = Team {
            name: convert::string(name, "name")?,
            members: self::members(members)?,
        };
        let t = self.run(py, |c| c.set_team(&team))?;
        dict(py, &t)
    }

    /// The team called `name`; NotFoundError if there is none.
    fn team<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let t = self.run(py, |c| c.team(name))?;
        dict(py, &t)
    }

    /// Every team, by name.
    fn teams<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let ts = self.run(py, |c| c.teams())?;
        convert::list(py, &ts, |py, t| dict(py, t))
    }

    /// Marks a member out of office (skipped by assignments) or back.
    #[pyo3(signature = (team, member, out=None))]
    fn set_member_out<'py>(
        &self,
        py: Python<'py>,
        team: &str,
        member: &str,
        out: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = arg(out, true, |o| convert::boolean(o, "out"))?;
        let t = self.run(py, |c| c.set_member_out(team, member, out))?;
        dict(py, &t)
    }

    /// Deletes a team; ConflictError while a rule assigns from it.
    fn delete_team(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.run(py, |c| c.delete_team(name))
    }
}
