//! Running rules: matching events to triggers, evaluating conditions,
//! applying actions, cascades, assignment, the sweep and dry runs.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;

use super::template::Template;
use super::{
    Action, Assignment, Definition, DryRun, MAX_ACTIONS, MAX_CASCADE_DEPTH, MAX_DESCRIPTION_LEN,
    NewRule, Rule, RuleEffect, RuleEvent, SweepReport, SweepRule, Team, Trigger, rule_name,
};
use crate::crm::Crm;
use crate::db;
use crate::error::{Error, Result};
use crate::filter::Expr;
use crate::filter::compile::{self, Compiled, Mode};
use crate::model::change::{ChangeContext, EntityKind};
use crate::model::customer::{Customer, CustomerPatch};
use crate::model::ids::DealId;
use crate::model::interaction::InteractionKind;
use crate::model::normalize;

/// Something that happened inside a write transaction that rules may react
/// to.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// A customer was created.
    CustomerCreated { rowid: i64 },
    /// A customer changed; `fields` are the names of what changed.
    CustomerUpdated { rowid: i64, fields: Vec<String> },
    /// An interaction was logged for the customer.
    InteractionLogged {
        customer_rowid: i64,
        kind: InteractionKind,
    },
    /// A deal moved from one stage of its pipeline to another.
    DealStageChanged {
        deal_rowid: i64,
        from: String,
        to: String,
    },
    /// A customer entered a segment.
    SegmentEntered {
        customer_rowid: i64,
        segment: String,
    },
    /// A customer left a segment.
    SegmentLeft {
        customer_rowid: i64,
        segment: String,
    },
}

impl Event {
    fn customer_rowid(&self) -> Option<i64> {
        match self {
            Event::CustomerCreated { rowid } | Event::CustomerUpdated { rowid, .. } => Some(*rowid),
            Event::InteractionLogged { customer_rowid, .. }
            | Event::SegmentEntered { customer_rowid, .. }
            | Event::SegmentLeft { customer_rowid, .. } => Some(*customer_rowid),
            Event::DealStageChanged { .. } => None,
        }
    }
}

/// The enabled rules, loaded once per version of the rules table.
pub(crate) struct Loaded {
    generation: i64,
    rules: Vec<Loaded1>,
}

struct Loaded1 {
    rule: Rule,
    /// The parsed condition and its text.
    condition: Option<(Expr, String)>,
    /// Parsed task title templates, by action index.
    templates: Vec<Option<Template>>,
}

impl Loaded1 {
    /// A rule with its condition and title templates parsed.
    fn new(rule: Rule) -> Result<Loaded1> {
        let condition = match &rule.condition {
            Some(text) => Some((crate::filter::parse(text)?, text.clone())),
            None => None,
        };
        let templates = rule
            .actions
            .iter()
            .map(|a| match a {
                Action::CreateTask { title, .. } => Template::parse(title).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        Ok(Loaded1 {
            rule,
            condition,
            templates,
        })
    }
}

impl Loaded {
    fn wants(&self, pred: impl Fn(&Trigger) -> bool) -> bool {
        self.rules.iter().any(|r| pred(&r.rule.trigger))
    }
}

/// Whether any enabled rule reacts to interactions of `kind` or to created
/// customers: lets bulk imports skip per-row work when none does.
pub(crate) fn wants_interactions(crm: &Crm, tx: &Connection) -> Result<bool> {
    Ok(load(crm, tx)?.wants(|t| matches!(t, Trigger::InteractionLogged { .. })))
}

/// See [`wants_interactions`].
pub(crate) fn wants_created_customers(crm: &Crm, tx: &Connection) -> Result<bool> {
    Ok(load(crm, tx)?.wants(|t| matches!(t, Trigger::CustomerCreated)))
}

/// Whether any enabled rule reacts to entering or leaving `segment`.
pub(crate) fn wants_segment(crm: &Crm, tx: &Connection, segment: &str) -> Result<bool> {
    Ok(load(crm, tx)?.wants(|t| {
        matches!(t, Trigger::SegmentEntered { segment: s } | Trigger::SegmentLeft { segment: s } if s == segment)
    }))
}

fn load(crm: &Crm, tx: &Connection) -> Result<Arc<Loaded>> {
    let generation = db::rules::generation(tx)?;
    let mut cache = crm.rules.cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(l) = cache.as_ref().filter(|l| l.generation == generation) {
        return Ok(l.clone());
    }
    let rules = db::rules::list(tx)?
        .into_iter()
        .filter(|r| r.enabled)
        .map(Loaded1::new)
        .collect::<Result<Vec<_>>>()?;
    let loaded = Arc::new(Loaded { generation, rules });
    *cache = Some(loaded.clone());
    Ok(loaded)
}

/// Checks a rule against the schema; returns its normalized name and
/// definition.
pub(crate) fn check(tx: &Connection, new: &NewRule) -> Result<(String, Definition)> {
    let name = rule_name(&new.name)?;
    let description = new
        .description
        .as_deref()
        .map(|d| normalize::text(d, MAX_DESCRIPTION_LEN))
        .transpose()
        .map_err(|r| Error::validation("description", r))?;
    let trigger = match &new.trigger {
        Trigger::CustomerUpdated { fields } => Trigger::CustomerUpdated {
            fields: fields
                .iter()
                .enumerate()
                .map(|(i, f)| check_field(&format!("trigger.fields[{i}]"), f))
                .collect::<Result<_>>()?,
        },
        Trigger::SegmentEntered { segment } | Trigger::SegmentLeft { segment } => {
            let (_, s) = db::segments::by_name(tx, segment.trim())?.ok_or_else(|| {
                Error::validation(
                    "trigger.segment",
                    format!("there is no segment '{}'", segment.trim()),
                )
            })?;
            match new.trigger {
                Trigger::SegmentEntered { .. } => Trigger::SegmentEntered { segment: s.name },
                _ => Trigger::SegmentLeft { segment: s.name },
            }
        }
        Trigger::DealStageChanged {
            pipeline,
            from_stage,
            to_stage,
        } => {
            let pipeline = pipeline.as_deref().map(str::trim).map(str::to_string);
            if let Some(p) = &pipeline {
                let stages = db::rules::pipeline_stages(tx, p)?.ok_or_else(|| {
                    Error::validation("trigger.pipeline", format!("there is no pipeline '{p}'"))
                })?;
                for (field, stage) in [
                    ("trigger.from_stage", from_stage),
                    ("trigger.to_stage", to_stage),
                ] {
                    if let Some(s) = stage
                        && !stages.iter().any(|x| x == s.trim())
                    {
                        return Err(Error::validation(
                            field,
                            format!(
                                "pipeline '{p}' has no stage '{}'{}",
                                s.trim(),
                                hint(s.trim(), &stages)
                            ),
                        ));
                    }
                }
            }
            Trigger::DealStageChanged {
                pipeline,
                from_stage: from_stage.as_deref().map(|s| s.trim().to_string()),
                to_stage: to_stage.as_deref().map(|s| s.trim().to_string()),
            }
        }
        other => other.clone(),
    };
    let condition = match new.condition.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            let expr = crate::filter::parse(text)?;
            compile::compile(tx, text, &expr, Mode::Row, Crm::now(), None)?;
            Some(expr.to_string())
        }
    };
    if new.actions.is_empty() {
        return Err(Error::validation(
            "actions",
            "a rule needs at least one action",
        ));
    }
    if new.actions.len() > MAX_ACTIONS {
        return Err(Error::validation(
            "actions",
            format!("at most {MAX_ACTIONS} actions per rule"),
        ));
    }
    let actions = new
        .actions
        .iter()
        .enumerate()
        .map(|(i, a)| check_action(tx, &format!("actions[{i}]"), a, &trigger))
        .collect::<Result<Vec<_>>>()?;
    Ok((
        name,
        Definition {
            description,
            trigger,
            condition,
            actions,
        },
    ))
}

fn hint(name: &str, options: &[String]) -> String {
    let refs: Vec<&str> = options.iter().map(String::as_str).collect();
    crate::import::did_you_mean(name, &refs)
}

/// Customer fields a `customer_updated` trigger can watch.
const WATCHABLE: &[&str] = &[
    "external_id",
    "name",
    "first_name",
    "last_name",
    "organization_id",
    "emails",
    "phones",
    "addresses",
    "birth_date",
    "locale",
    "country",
    "tags",
    "attributes",
    "lifecycle_stage",
    "owner",
    "source",
];

fn check_field(field: &str, raw: &str) -> Result<String> {
    let f = raw.trim();
    if WATCHABLE.contains(&f) {
        return Ok(f.to_string());
    }
    let hint = crate::import::did_you_mean(f, WATCHABLE);
    Err(Error::validation(
        field,
        format!("'{f}' is not a customer field{hint}"),
    ))
}

fn check_action(tx: &Connection, field: &str, a: &Action, trigger: &Trigger) -> Result<Action> {
    Ok(match a {
        Action::SetStage { stage } => {
            let stage = stage.trim().to_ascii_lowercase();
            db::lifecycle::config(tx)?
                .check_stage(&stage)
                .map_err(|e| relabel(e, &format!("{field}.stage")))?;
            Action::SetStage { stage }
        }
        Action::AddTag { tag } | Action::RemoveTag { tag } => {
            let tag =
                normalize::tag(tag).map_err(|r| Error::validation(format!("{field}.tag"), r))?;
            match a {
                Action::AddTag { .. } => Action::AddTag { tag },
                _ => Action::RemoveTag { tag },
            }
        }
        Action::SetAttribute { key, value } => {
            let key = normalize::attribute_key(key)
                .map_err(|r| Error::validation(format!("{field}.key"), r))?;
            let value = match db::customers::attribute_type(tx, &key)? {
                Some(ty) => value
                    .clone()
                    .coerce(ty)
                    .map_err(|r| Error::validation(format!("{field}.value"), r))?,
                None => value.clone(),
            };
            Action::SetAttribute { key, value }
        }
        Action::CreateTask {
            title,
            due_in_days,
            priority,
            assign,
        } => {
            let t = Template::parse(title).map_err(|e| relabel(e, &format!("{field}.title")))?;
            if t.uses_deal() && !matches!(trigger, Trigger::DealStageChanged { .. }) {
                return Err(Error::validation(
                    format!("{field}.title"),
                    "{deal.…} is only known to rules triggered by a deal",
                ));
            }
            if due_in_days.is_some_and(|d| d > 3_650) {
                return Err(Error::validation(
                    format!("{field}.due_in_days"),
                    "at most 3650",
                ));
            }
            let assign = assign
                .as_ref()
                .map(|x| check_assignment(tx, &format!("{field}.assign"), x))
                .transpose()?;
            Action::CreateTask {
                title: title.clone(),
                due_in_days: *due_in_days,
                priority: *priority,
                assign,
            }
        }
        Action::AssignOwner {
            assignment,
            overwrite,
        } => Action::AssignOwner {
            assignment: check_assignment(tx, &format!("{field}.assignment"), assignment)?,
            overwrite: *overwrite,
        },
        Action::AddToSegment { segment } | Action::RemoveFromSegment { segment } => {
            let (_, s) = db::segments::by_name(tx, segment.trim())?.ok_or_else(|| {
                Error::validation(
                    format!("{field}.segment"),
                    format!("there is no segment '{}'", segment.trim()),
                )
            })?;
            if s.filter.is_some() {
                return Err(Error::validation(
                    format!("{field}.segment"),
                    format!(
                        "'{}' is a dynamic segment: its members follow its filter",
                        s.name
                    ),
                ));
            }
            match a {
                Action::AddToSegment { .. } => Action::AddToSegment { segment: s.name },
                _ => Action::RemoveFromSegment { segment: s.name },
            }
        }
        Action::Emit { event } => {
            let event = normalize::attribute_key(event)
                .map_err(|r| Error::validation(format!("{field}.event"), r))?;
            Action::Emit { event }
        }
    })
}

fn check_assignment(tx: &Connection, field: &str, a: &Assignment) -> Result<Assignment> {
    let team = db::rules::team(tx, a.team().trim())?.ok_or_else(|| {
        Error::validation(
            format!("{field}.team"),
            format!(
                "there is no team '{}': an assignment needs someone to assign to",
                a.team().trim()
            ),
        )
    })?;
    Ok(match a {
        Assignment::RoundRobin { .. } => Assignment::RoundRobin { team: team.name },
        Assignment::LeastOpenWork { .. } => Assignment::LeastOpenWork { team: team.name },
        Assignment::Territory {
            attribute, owners, ..
        } => {
            let attribute = attribute.trim();
            let attribute = if attribute == "country" {
                attribute.to_string()
            } else {
                normalize::attribute_key(attribute)
                    .map_err(|r| Error::validation(format!("{field}.attribute"), r))?
            };
            if owners.is_empty() {
                return Err(Error::validation(
                    format!("{field}.owners"),
                    "map at least one value to an owner",
                ));
            }
            for (value, owner) in owners {
                if !team.members.iter().any(|m| m.name == owner.trim()) {
                    return Err(Error::validation(
                        format!("{field}.owners.{value}"),
                        format!("'{}' is not a member of team '{}'", owner.trim(), team.name),
                    ));
                }
            }
            Assignment::Territory {
                attribute,
                owners: owners
                    .iter()
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect(),
                team: team.name,
            }
        }
    })
}

/// Puts `field` on a validation error from a nested check.
fn relabel(e: Error, field: &str) -> Error {
    match e {
        Error::Validation { reason, .. } => Error::validation(field, reason),
        other => other,
    }
}

/// The teams a rule assigns from.
pub(crate) fn teams_of(rule: &Rule) -> impl Iterator<Item = &str> {
    rule.actions.iter().filter_map(|a| match a {
        Action::AssignOwner { assignment, .. } => Some(assignment.team()),
        Action::CreateTask {
            assign: Some(a), ..
        } => Some(a.team()),
        _ => None,
    })
}

// ----- running ----------------------------------------------------------------

/// One pass of rules over a change and its cascade.
struct Run<'a> {
    crm: &'a Crm,
    tx: &'a Connection,
    loaded: Arc<Loaded>,
    now: DateTime<Utc>,
    /// A dry run: effects are collected here instead of stored, and the host
    /// is not called.
    dry: Option<Vec<RuleEffect>>,
    queue: VecDeque<Queued>,
    /// Whether any rule's actions ran.
    acted: bool,
    /// The customer last read or written by this run: rules reacting to
    /// one event read it once. Only rules change customers while it runs.
    customer: Option<(i64, Customer)>,
}

struct Queued {
    event: Event,
    depth: usize,
    /// The rules whose actions led here, first to last.
    chain: Vec<String>,
}

/// Runs the enabled rules that `event` triggers, and what they trigger in
/// turn, in `tx`. Returns whether any rule acted (what the caller read
/// before may be stale).
pub(crate) fn fire(crm: &Crm, tx: &Connection, event: Event) -> Result<bool> {
    let loaded = load(crm, tx)?;
    if loaded.rules.is_empty() {
        return Ok(false);
    }
    let mut run = Run::new(crm, tx, loaded, Crm::now());
    run.push(event, 0, Vec::new());
    run.drain()?;
    Ok(run.acted)
}

impl<'a> Run<'a> {
    fn new(crm: &'a Crm, tx: &'a Connection, loaded: Arc<Loaded>, now: DateTime<Utc>) -> Self {
        Run {
            crm,
            tx,
            loaded,
            now,
            dry: None,
            queue: VecDeque::new(),
            acted: false,
            customer: None,
        }
    }

    fn push(&mut self, event: Event, depth: usize, chain: Vec<String>) {
        self.queue.push_back(Queued {
            event,
            depth,
            chain,
        });
    }

    fn drain(&mut self) -> Result<()> {
        while let Some(q) = self.queue.pop_front() {
            let loaded = self.loaded.clone();
            for r in &loaded.rules {
                if !triggers(&r.rule.trigger, &q.event, self.tx)? {
                    continue;
                }
                let target = Target::of(self.tx, &q.event)?;
                if !self.holds(r, target.customer_rowid)? {
                    continue;
                }
                self.acted = true;
                let follow = self.apply(r, &target)?;
                if follow.is_empty() {
                    continue;
                }
                // The rule changed something that rules react to: a cascade
                // one level deeper, unless that is too deep or a cycle (the
                // write is then rolled back whole).
                let mut chain = q.chain.clone();
                chain.push(r.rule.name.clone());
                let cycle = q.chain.contains(&r.rule.name);
                if cycle || q.depth >= MAX_CASCADE_DEPTH {
                    return Err(Error::Rule {
                        rule: r.rule.name.clone(),
                        reason: if cycle {
                            format!(
                                "rules form a cycle, each undoing another's change ({})",
                                chain.join(" → ")
                            )
                        } else {
                            format!(
                                "rules cascaded more than {MAX_CASCADE_DEPTH} levels deep ({})",
                                chain.join(" → ")
                            )
                        },
                    });
                }
                for e in follow {
                    self.push(e, q.depth + 1, chain.clone());
                }
            }
        }
        Ok(())
    }

    /// Whether the rule's condition holds for the customer.
    fn holds(&self, r: &Loaded1, customer_rowid: Option<i64>) -> Result<bool> {
        let Some((expr, text)) = &r.condition else {
            return Ok(true);
        };
        let Some(rowid) = customer_rowid else {
            return Ok(false);
        };
        let c = compile::compile(self.tx, text, expr, Mode::Row, self.now, None)
            .map_err(|e| in_rule(&r.rule.name, e))?;
        db::rules::matches(self.tx, &c, rowid)
    }

    /// Applies the rule's actions; returns the events they cause.
    fn apply(&mut self, r: &Loaded1, target: &Target) -> Result<Vec<Event>> {
        let rule = &r.rule;
        let ctx = ChangeContext {
            rule: Some(rule.name.clone()),
            ..self.crm.context.clone()
        };
        let mut follow = Vec::new();
        let mut patch = CustomerPatch::default();
        let mut patched = false;
        let mut customer: Option<Customer> = match target.customer_rowid {
            Some(rowid) => {
                if !matches!(&self.customer, Some((r, _)) if *r == rowid) {
                    self.customer =
                        db::customers::get_by_rowid(self.tx, rowid)?.map(|c| (rowid, c));
                }
                self.customer.as_ref().map(|(_, c)| c.clone())
            }
            None => None,
        };
        let mut effects: Vec<(EntityKind, Vec<u8>, &'static str, String)> = Vec::new();
        // What earlier actions of this rule did, for the later ones: an
        // owner just assigned is the owner of a task created after it.
        let mut deal = target.deal.clone();
        let mut assigned: Option<String> = None;
        for (i, action) in rule.actions.iter().enumerate() {
            match action {
                Action::SetStage { stage } => {
                    if let Some(c) = &customer
                        && &c.lifecycle_stage != stage
                    {
                        // A move the configuration forbids (backward) is
                        // skipped and said so, rather than failing the
                        // write that triggered the rule.
                        if let Err(Error::Validation { reason, .. }) =
                            db::lifecycle::config(self.tx)?
                                .check_move(Some(&c.lifecycle_stage), stage)
                        {
                            // Shown by a dry run; not stored, or a rule that
                            // fires often would fill the effects with it.
                            if self.dry.is_some() {
                                effects.push((
                                    EntityKind::Customer,
                                    c.id.as_bytes().to_vec(),
                                    action.name(),
                                    format!("stayed in stage '{}': {reason}", c.lifecycle_stage),
                                ));
                            }
                            continue;
                        }
                        effects.push((
                            EntityKind::Customer,
                            c.id.as_bytes().to_vec(),
                            action.name(),
                            format!("moved from stage '{}' to '{stage}'", c.lifecycle_stage),
                        ));
                        patch.lifecycle_stage = Some(stage.clone());
                        patched = true;
                    }
                }
                Action::AddTag { tag } | Action::RemoveTag { tag } => {
                    let Some(c) = &customer else { continue };
                    let mut tags = patch.tags.clone().unwrap_or_else(|| c.tags.clone());
                    let add = matches!(action, Action::AddTag { .. });
                    let has = tags.contains(tag);
                    if add && !has {
                        tags.push(tag.clone());
                    } else if !add && has {
                        tags.retain(|t| t != tag);
                    } else {
                        continue;
                    }
                    effects.push((
                        EntityKind::Customer,
                        c.id.as_bytes().to_vec(),
                        action.name(),
                        format!("{} tag '{tag}'", if add { "added" } else { "removed" }),
                    ));
                    patch.tags = Some(tags);
                    patched = true;
                }
                Action::SetAttribute { key, value } => {
                    let Some(c) = &customer else { continue };
                    if c.attributes.get(key) == Some(value) {
                        continue;
                    }
                    effects.push((
                        EntityKind::Customer,
                        c.id.as_bytes().to_vec(),
                        action.name(),
                        format!("set attribute '{key}' to {}", value.to_json()),
                    ));
                    patch.set_attributes.insert(key.clone(), value.clone());
                    patched = true;
                }
                Action::AssignOwner {
                    assignment,
                    overwrite,
                } => {
                    if let Some(deal) = deal.as_mut() {
                        if deal.owner.is_some() && !overwrite {
                            continue;
                        }
                        let Some((owner, why)) = self.pick(rule, assignment, customer.as_ref())?
                        else {
                            continue;
                        };
                        if deal.owner.as_deref() == Some(&owner) {
                            continue;
                        }
                        crate::deals::set_deal_owner_tx(
                            self.tx, &ctx, deal.rowid, &owner, self.now,
                        )?;
                        effects.push((
                            EntityKind::Deal,
                            deal.id.as_bytes().to_vec(),
                            action.name(),
                            format!("assigned to {owner} by rule '{}': {why}", rule.name),
                        ));
                        deal.owner = Some(owner);
                    } else if let Some(c) = &customer {
                        if c.owner.is_some() && !overwrite {
                            continue;
                        }
                        let Some((owner, why)) = self.pick(rule, assignment, Some(c))? else {
                            effects.push((
                                EntityKind::Customer,
                                c.id.as_bytes().to_vec(),
                                action.name(),
                                format!(
                                    "left unassigned by rule '{}': nobody in team '{}' is available (all out or at capacity)",
                                    rule.name,
                                    assignment.team()
                                ),
                            ));
                            continue;
                        };
                        if c.owner.as_deref() == Some(&owner) {
                            continue;
                        }
                        effects.push((
                            EntityKind::Customer,
                            c.id.as_bytes().to_vec(),
                            action.name(),
                            format!("assigned to {owner} by rule '{}': {why}", rule.name),
                        ));
                        patch.owner = Some(Some(owner.clone()));
                        assigned = Some(owner);
                        patched = true;
                    }
                }
                Action::CreateTask {
                    due_in_days,
                    priority,
                    assign,
                    ..
                } => {
                    let template = r.templates[i].as_ref().expect("parsed with the rule");
                    let view = match (&customer, &assigned) {
                        (Some(c), Some(o)) => Some(Customer {
                            owner: Some(o.clone()),
                            ..c.clone()
                        }),
                        _ => customer.clone(),
                    };
                    let title = template.render(view.as_ref(), deal.as_ref(), rule);
                    let (owner, why) = match assign {
                        Some(a) => match self.pick(rule, a, customer.as_ref())? {
                            Some((o, why)) => (Some(o), Some(why)),
                            None => (None, None),
                        },
                        None => (
                            deal.as_ref()
                                .and_then(|d| d.owner.clone())
                                .or_else(|| view.as_ref().and_then(|c| c.owner.clone())),
                            None,
                        ),
                    };
                    let task = crate::deals::insert_task_tx(
                        self.tx,
                        &ctx,
                        &crate::model::deal::NewTask {
                            title: title.clone(),
                            owner: owner.clone(),
                            due_at: due_in_days.map(|d| self.now + Duration::days(d.into())),
                            priority: *priority,
                            customer_id: customer.as_ref().map(|c| c.id),
                            deal_id: deal.as_ref().map(|d| d.id),
                            ..Default::default()
                        },
                        self.now,
                    )?;
                    let detail = match (&owner, why) {
                        (Some(o), Some(why)) => format!(
                            "created task '{title}' for {o}, assigned by rule '{}': {why}",
                            rule.name
                        ),
                        (Some(o), None) => format!("created task '{title}' for {o}"),
                        (None, _) => format!("created task '{title}' (unassigned)"),
                    };
                    effects.push((
                        EntityKind::Task,
                        task.id.as_bytes().to_vec(),
                        action.name(),
                        detail,
                    ));
                }
                Action::AddToSegment { segment } | Action::RemoveFromSegment { segment } => {
                    let Some(c) = &customer else { continue };
                    let Some((seg_rowid, _)) = db::segments::by_name(self.tx, segment)? else {
                        return Err(Error::Rule {
                            rule: rule.name.clone(),
                            reason: format!("segment '{segment}' no longer exists"),
                        });
                    };
                    let add = matches!(action, Action::AddToSegment { .. });
                    let n = if add {
                        db::segments::add_members(
                            self.tx,
                            &ctx,
                            seg_rowid,
                            segment,
                            &[c.id],
                            self.now,
                        )?
                    } else {
                        db::segments::remove_members(
                            self.tx,
                            &ctx,
                            seg_rowid,
                            segment,
                            &[c.id],
                            self.now,
                        )?
                    };
                    if n == 0 {
                        continue;
                    }
                    let rowid = target.customer_rowid.expect("a customer has a rowid");
                    follow.push(if add {
                        Event::SegmentEntered {
                            customer_rowid: rowid,
                            segment: segment.clone(),
                        }
                    } else {
                        Event::SegmentLeft {
                            customer_rowid: rowid,
                            segment: segment.clone(),
                        }
                    });
                    effects.push((
                        EntityKind::Customer,
                        c.id.as_bytes().to_vec(),
                        action.name(),
                        format!(
                            "{} segment '{segment}'",
                            if add { "added to" } else { "removed from" }
                        ),
                    ));
                }
                Action::Emit { event: name } => {
                    let ev = RuleEvent {
                        event: name.clone(),
                        rule: rule.name.clone(),
                        trigger: rule.trigger.name().to_string(),
                        customer_id: customer.as_ref().map(|c| c.id),
                        deal_id: deal.as_ref().map(|d| d.id),
                    };
                    let (kind, id) = match (&deal, &customer) {
                        (Some(d), _) => (EntityKind::Deal, d.id.as_bytes().to_vec()),
                        (None, Some(c)) => (EntityKind::Customer, c.id.as_bytes().to_vec()),
                        (None, None) => continue,
                    };
                    let delivered = if self.dry.is_some() {
                        "would emit"
                    } else {
                        self.emit(rule, &ev)?
                    };
                    effects.push((
                        kind,
                        id,
                        action.name(),
                        format!("{delivered} event '{name}'"),
                    ));
                }
            }
        }
        if patched && let Some(c) = customer.as_mut() {
            let rowid = target.customer_rowid.expect("a customer has a rowid");
            let changed = self
                .crm
                .normalizer
                .apply_patch(c, &patch, self.now)
                .map_err(|e| in_rule(&rule.name, e))?;
            if !changed.is_empty() {
                db::customers::update(self.tx, &ctx, rowid, c, &changed)
                    .map_err(|e| in_rule(&rule.name, e))?;
                self.customer = Some((rowid, c.clone()));
                follow.push(Event::CustomerUpdated {
                    rowid,
                    fields: changed.iter().map(|f| f.to_string()).collect(),
                });
            }
        }
        for (entity, id, action, detail) in effects {
            let effect = RuleEffect {
                rule: rule.name.clone(),
                rule_version: rule.version,
                at: self.now,
                entity,
                entity_id: uuid::Uuid::from_slice(&id)
                    .map(|u| u.hyphenated().to_string())
                    .unwrap_or_default(),
                action: action.to_string(),
                detail,
            };
            match &mut self.dry {
                Some(v) => v.push(effect),
                None => db::rules::record_effect(self.tx, &effect, &id)?,
            }
        }
        Ok(follow)
    }

    /// Calls the host's handler; a failure or panic fails the rule.
    fn emit(&self, rule: &Rule, ev: &RuleEvent) -> Result<&'static str> {
        let handler = self
            .crm
            .rules
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(handler) = handler else {
            return Ok("recorded (no handler is set)");
        };
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.on_rule_event(ev)));
        match outcome {
            Ok(Ok(())) => Ok("emitted"),
            Ok(Err(message)) => Err(Error::Rule {
                rule: rule.name.clone(),
                reason: format!("the event handler failed on '{}': {message}", ev.event),
            }),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                Err(Error::Rule {
                    rule: rule.name.clone(),
                    reason: format!("the event handler panicked on '{}': {message}", ev.event),
                })
            }
        }
    }

    /// Chooses an owner; `None` when nobody is available. The string says
    /// why, for the explanation.
    fn pick(
        &self,
        rule: &Rule,
        a: &Assignment,
        customer: Option<&Customer>,
    ) -> Result<Option<(String, String)>> {
        let team = db::rules::team(self.tx, a.team())?.ok_or_else(|| Error::Rule {
            rule: rule.name.clone(),
            reason: format!("team '{}' no longer exists", a.team()),
        })?;
        let mut skipped = Vec::new();
        let mut available = Vec::new();
        for m in &team.members {
            if m.out {
                skipped.push(format!("{} is out", m.name));
                continue;
            }
            let work = crate::deals::open_work(self.tx, &m.name)?;
            if let Some(cap) = m.capacity
                && work >= u64::from(cap)
            {
                skipped.push(format!("{} is at capacity ({work} of {cap})", m.name));
                continue;
            }
            available.push((m.name.clone(), work));
        }
        let skipped_text = if skipped.is_empty() {
            String::new()
        } else {
            format!("; {}", skipped.join(", "))
        };
        Ok(match a {
            Assignment::RoundRobin { .. } => {
                let last = db::rules::last_assigned(self.tx, &team.name)?;
                let start = last
                    .as_ref()
                    .and_then(|l| team.members.iter().position(|m| &m.name == l))
                    .map_or(0, |p| p + 1);
                let n = team.members.len();
                let chosen = (0..n)
                    .map(|k| &team.members[(start + k) % n])
                    .find(|m| available.iter().any(|(a, _)| *a == m.name));
                match chosen {
                    Some(m) => {
                        db::rules::set_last_assigned(self.tx, &team.name, &m.name)?;
                        let after = match &last {
                            Some(l) => format!("next after {l}"),
                            None => "first in order".into(),
                        };
                        Some((
                            m.name.clone(),
                            format!(
                                "round-robin over team '{}', {after}{skipped_text}",
                                team.name
                            ),
                        ))
                    }
                    None => None,
                }
            }
            Assignment::LeastOpenWork { .. } => least(&team, &available, &skipped_text),
            Assignment::Territory {
                attribute, owners, ..
            } => {
                let value = customer.and_then(|c| {
                    if attribute == "country" {
                        c.country.clone()
                    } else {
                        c.attributes.get(attribute).map(|v| match v.to_json() {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        })
                    }
                });
                let mapped = value.as_ref().and_then(|v| owners.get(v).map(|o| (v, o)));
                match mapped {
                    Some((v, owner)) if available.iter().any(|(a, _)| a == owner) => Some((
                        owner.clone(),
                        format!("territory: {attribute} '{v}' belongs to {owner}"),
                    )),
                    Some((v, owner)) => least(&team, &available, &skipped_text).map(|(o, why)| {
                        (
                            o,
                            format!(
                                "territory: {attribute} '{v}' belongs to {owner}, who is not available, so {why}"
                            ),
                        )
                    }),
                    None => least(&team, &available, &skipped_text).map(|(o, why)| {
                        let what = match &value {
                            Some(v) => format!("no owner for {attribute} '{v}'"),
                            None => format!("no {attribute}"),
                        };
                        (o, format!("territory: {what}, so {why}"))
                    }),
                }
            }
        })
    }
}

/// The available member with the least open work (first in order on ties).
fn least(team: &Team, available: &[(String, u64)], skipped: &str) -> Option<(String, String)> {
    let (name, work) = available.iter().min_by_key(|(_, w)| *w)?;
    let others: Vec<String> = available
        .iter()
        .filter(|(n, _)| n != name)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!(" ({})", others.join(", "))
    };
    Some((
        name.clone(),
        format!(
            "least open work in team '{}': {name} has {work} open items{others}{skipped}",
            team.name
        ),
    ))
}

/// Whom an event concerns.
struct Target {
    customer_rowid: Option<i64>,
    deal: Option<DealRef>,
}

#[derive(Clone)]
pub(super) struct DealRef {
    pub rowid: i64,
    pub id: DealId,
    pub title: String,
    pub stage: String,
    pub owner: Option<String>,
}

impl Target {
    fn of(tx: &Connection, event: &Event) -> Result<Target> {
        if let Event::DealStageChanged { deal_rowid, .. } = event {
            let (deal, customer_rowid) = crate::deals::deal_by_rowid(tx, *deal_rowid)?
                .ok_or(Error::NotFound { entity: "deal" })?;
            return Ok(Target {
                customer_rowid,
                deal: Some(DealRef {
                    rowid: *deal_rowid,
                    id: deal.id,
                    title: deal.title,
                    stage: deal.stage,
                    owner: deal.owner,
                }),
            });
        }
        Ok(Target {
            customer_rowid: event.customer_rowid(),
            deal: None,
        })
    }
}

/// Whether `trigger` reacts to `event`.
fn triggers(trigger: &Trigger, event: &Event, tx: &Connection) -> Result<bool> {
    Ok(match (trigger, event) {
        (Trigger::CustomerCreated, Event::CustomerCreated { .. }) => true,
        (
            Trigger::CustomerUpdated { fields },
            Event::CustomerUpdated {
                fields: changed, ..
            },
        ) => fields.is_empty() || fields.iter().any(|f| changed.contains(f)),
        (Trigger::InteractionLogged { kind }, Event::InteractionLogged { kind: k, .. }) => {
            kind.as_ref().is_none_or(|want| want == k)
        }
        (
            Trigger::DealStageChanged {
                pipeline,
                from_stage,
                to_stage,
            },
            Event::DealStageChanged {
                deal_rowid,
                from,
                to,
            },
        ) => {
            to_stage.as_ref().is_none_or(|s| s == to)
                && from_stage.as_ref().is_none_or(|s| s == from)
                && match pipeline {
                    None => true,
                    Some(p) => db::rules::deal_pipeline(tx, *deal_rowid)?.as_deref() == Some(p),
                }
        }
        (Trigger::SegmentEntered { segment }, Event::SegmentEntered { segment: s, .. })
        | (Trigger::SegmentLeft { segment }, Event::SegmentLeft { segment: s, .. }) => segment == s,
        _ => false,
    })
}

/// An error raised while running a rule, naming it. Validation errors from
/// applying its actions (a backward stage move the configuration forbids)
/// become [`Error::Rule`]; storage errors pass through.
fn in_rule(rule: &str, e: Error) -> Error {
    match e {
        Error::Validation { field, reason } => Error::Rule {
            rule: rule.to_string(),
            reason: format!("invalid {field}: {reason}"),
        },
        Error::Parse { .. } => Error::Rule {
            rule: rule.to_string(),
            reason: format!("its condition no longer fits the schema: {e}"),
        },
        other => other,
    }
}

// ----- sweep and dry run ------------------------------------------------------

/// See [`Crm::run_sweep`].
pub(crate) fn sweep(crm: &Crm, tx: &Connection, now: DateTime<Utc>) -> Result<SweepReport> {
    let loaded = load(crm, tx)?;
    let mut report = SweepReport {
        at: now,
        rules: Vec::new(),
    };
    let mut run = Run::new(crm, tx, loaded.clone(), now);
    for r in loaded
        .rules
        .iter()
        .filter(|r| r.rule.trigger == Trigger::Schedule)
    {
        let c = match &r.condition {
            Some((expr, text)) => Some(
                compile::compile(tx, text, expr, Mode::Set, now, None)
                    .map_err(|e| in_rule(&r.rule.name, e))?,
            ),
            None => None,
        };
        let rule_rowid = db::rules::rowid_of(tx, &r.rule.name)?;
        let (matching, new) = db::rules::refresh_matches(tx, rule_rowid, c.as_ref())?;
        report.rules.push(SweepRule {
            rule: r.rule.name.clone(),
            matching,
            acted_on: new.len() as u64,
        });
        for rowid in new {
            let target = Target {
                customer_rowid: Some(rowid),
                deal: None,
            };
            let follow = run.apply(r, &target)?;
            for e in follow {
                run.push(e, 1, vec![r.rule.name.clone()]);
            }
            run.drain()?;
        }
    }
    Ok(report)
}

/// See [`Crm::dry_run_rule`].
pub(crate) fn dry_run(crm: &Crm, tx: &Connection, new: &NewRule, limit: u32) -> Result<DryRun> {
    let (name, def) = check(tx, new)?;
    let now = Crm::now();
    let rule = Rule {
        id: crate::model::ids::RuleId::new(),
        name,
        description: def.description,
        trigger: def.trigger,
        condition: def.condition,
        actions: def.actions,
        enabled: true,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let this = Loaded1::new(rule)?;
    let mut run = Run::new(crm, tx, load(crm, tx)?, now);
    run.dry = Some(Vec::new());
    // What the rule acts on: a deal rule on the open deals its trigger
    // names (whose customer meets the condition), any other on the
    // customers who meet it.
    let (matching, targets) = match &this.rule.trigger {
        Trigger::DealStageChanged {
            pipeline, to_stage, ..
        } => {
            let mut targets = Vec::new();
            let mut matching = 0u64;
            for deal_rowid in db::rules::open_deals(tx, pipeline.as_deref(), to_stage.as_deref())? {
                let target = Target::of(
                    tx,
                    &Event::DealStageChanged {
                        deal_rowid,
                        from: String::new(),
                        to: String::new(),
                    },
                )?;
                if run.holds(&this, target.customer_rowid)? {
                    matching += 1;
                    if targets.len() < limit as usize {
                        targets.push(target);
                    }
                }
            }
            (matching, targets)
        }
        _ => {
            // A rule on entering a segment acts on its members.
            let members = match &this.rule.trigger {
                Trigger::SegmentEntered { segment } => Some(Expr::InSegment {
                    name: segment.clone(),
                    span: Default::default(),
                }),
                _ => None,
            };
            let condition = match (members, &this.condition) {
                (Some(m), Some((expr, _))) => {
                    Some((Expr::And(vec![m, expr.clone()]), String::new()))
                }
                (Some(m), None) => Some((m, String::new())),
                (None, c) => c.clone(),
            };
            let compiled: Option<Compiled> = match &condition {
                Some((expr, text)) => Some(compile::compile(tx, text, expr, Mode::Set, now, None)?),
                None => None,
            };
            let (matching, first) = db::rules::matching(tx, compiled.as_ref(), limit)?;
            let targets = first
                .into_iter()
                .map(|rowid| Target {
                    customer_rowid: Some(rowid),
                    deal: None,
                })
                .collect();
            (matching, targets)
        }
    };
    let simulated = targets.len() as u64;
    for target in targets {
        let follow = run.apply(&this, &target)?;
        for e in follow {
            run.push(e, 1, vec![this.rule.name.clone()]);
        }
        run.drain()?;
    }
    Ok(DryRun {
        matching,
        simulated,
        effects: run.dry.take().unwrap_or_default(),
    })
}
