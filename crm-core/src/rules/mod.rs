//! Rules: *trigger → condition → actions*, stored as data and run in the
//! transaction of the change that triggered them.
//!
//! A rule reacts to one [`Trigger`] (a customer created or updated, an
//! interaction logged, a deal changing stage, a segment entered or left, or
//! the scheduled [`Crm::run_sweep`]); if its condition (the filter language,
//! evaluated for the customer concerned) holds, its [`Action`]s run, in the
//! same transaction: if anything fails, the change that triggered the rule
//! is rolled back with it. Every effect is in the change log with the rule's
//! name ([`crate::Change::rule`]) and in [`Crm::rule_effects`] with a
//! sentence saying why ("assigned to maja by round-robin over team 'sales':
//! next after ana").
//!
//! ```
//! use crm_core::rules::{Action, NewRule, Trigger};
//! use crm_core::{Crm, InteractionKind, NewCustomer, NewInteraction};
//!
//! let crm = Crm::open_in_memory()?;
//! crm.create_rule(&NewRule {
//!     condition: Some("count(purchases) >= 1".into()),
//!     actions: vec![Action::SetStage { stage: "customer".into() }, Action::AddTag { tag: "buyer".into() }],
//!     ..NewRule::new("first purchase", Trigger::InteractionLogged { kind: Some(InteractionKind::Purchase) })
//! })?;
//! let ana = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
//! crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Purchase))?;
//! let ana = crm.get_customer(ana.id)?;
//! assert_eq!(ana.lifecycle_stage, "customer");
//! assert_eq!(ana.tags, ["buyer"]);
//! # Ok::<(), crm_core::Error>(())
//! ```
//!
//! Rules are evaluated deterministically: those reacting to one event run
//! in name order, each seeing what the ones before it did.
//!
//! Cascades are bounded: an action that changes a customer is itself a
//! "customer updated" event that other rules (and the same one) may react
//! to, up to [`MAX_CASCADE_DEPTH`] levels; a rule that changes something
//! again further down its own cascade is a cycle. Either fails the write
//! with [`Error::Rule`] naming the rule and the chain.

pub(crate) mod engine;
mod template;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db;
use crate::error::{Error, Result};
use crate::model::change::EntityKind;
use crate::model::customer::AttributeValue;
use crate::model::ids::{CustomerId, DealId, RuleId};
use crate::model::interaction::InteractionKind;
use crate::model::normalize;

pub(crate) use engine::{Event, fire};

/// How many levels deep one change may cascade through rules.
pub const MAX_CASCADE_DEPTH: usize = 8;

/// What makes a rule run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A customer was created (by a call, an upsert or an import).
    CustomerCreated,
    /// A customer was changed. With `fields`, only when one of them changed
    /// (`lifecycle_stage`, `tags`, `attributes`, `owner`, …).
    CustomerUpdated {
        /// The fields to watch; empty watches every field.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    /// An interaction was logged (or imported). With `kind`, only of that kind.
    InteractionLogged {
        /// The kind to react to; `None` reacts to every kind.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<InteractionKind>,
    },
    /// A deal moved to another stage. The condition is evaluated for the
    /// deal's customer (a deal without one never matches a condition).
    DealStageChanged {
        /// Only deals of this pipeline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pipeline: Option<String>,
        /// Only moves out of this stage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_stage: Option<String>,
        /// Only moves into this stage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_stage: Option<String>,
    },
    /// A customer entered the segment (added to a static one, or found a
    /// member when a dynamic one was materialized).
    SegmentEntered {
        /// The segment's name.
        segment: String,
    },
    /// A customer left the segment.
    SegmentLeft {
        /// The segment's name.
        segment: String,
    },
    /// The host's scheduled sweep ([`Crm::run_sweep`], e.g. daily): the rule
    /// acts once on each customer who has newly come to match its condition
    /// ("no purchase for 90 days") since the previous sweep.
    Schedule,
}

impl Trigger {
    /// The trigger's name, as in its serialized `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::CustomerCreated => "customer_created",
            Trigger::CustomerUpdated { .. } => "customer_updated",
            Trigger::InteractionLogged { .. } => "interaction_logged",
            Trigger::DealStageChanged { .. } => "deal_stage_changed",
            Trigger::SegmentEntered { .. } => "segment_entered",
            Trigger::SegmentLeft { .. } => "segment_left",
            Trigger::Schedule => "schedule",
        }
    }
}

/// Who an assignment picks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Assignment {
    /// The next available member of the team after the one assigned last,
    /// in the team's order.
    RoundRobin {
        /// The team's name.
        team: String,
    },
    /// The owner the customer's value of `attribute` maps to (a custom
    /// attribute key, or `country`); when the value is missing or unmapped,
    /// or its owner is out or at capacity, the available member of `team`
    /// with the least open work.
    Territory {
        /// The custom attribute key (or `country`) that decides.
        attribute: String,
        /// Value → member of `team`.
        owners: BTreeMap<String, String>,
        /// The team the owners belong to, and the fallback.
        team: String,
    },
    /// The available member of the team with the fewest open tasks and open
    /// deals; ties go to the earlier member in the team's order.
    LeastOpenWork {
        /// The team's name.
        team: String,
    },
}

impl Assignment {
    /// The team the assignment draws from.
    pub fn team(&self) -> &str {
        match self {
            Assignment::RoundRobin { team }
            | Assignment::Territory { team, .. }
            | Assignment::LeastOpenWork { team } => team,
        }
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Moves the customer to a lifecycle stage (a transition caused by the
    /// rule). A backward move the lifecycle configuration forbids is
    /// skipped: the customer stays where they are and the write goes on.
    SetStage {
        /// A configured stage.
        stage: String,
    },
    /// Adds a tag.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Removes a tag.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// Sets a custom attribute.
    SetAttribute {
        /// The attribute key.
        key: String,
        /// Its value (of the key's defined type).
        value: AttributeValue,
    },
    /// Creates a task linked to the customer (and to the deal, for a deal
    /// trigger). The title is a template: `{name}`, `{email}`, `{stage}`,
    /// `{owner}`, `{attr.KEY}`, `{deal.title}`, `{deal.stage}`, `{rule}`;
    /// `{{` and `}}` are literal braces.
    CreateTask {
        /// The title template.
        title: String,
        /// Due this many days after the rule runs; `None`: no due date.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_in_days: Option<u32>,
        /// Priority.
        #[serde(default)]
        priority: crate::model::deal::Priority,
        /// Who gets it; `None`: the customer's (or deal's) owner.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assign: Option<Assignment>,
    },
    /// Sets the owner of the customer (or of the deal, for a deal trigger).
    AssignOwner {
        /// How the owner is chosen.
        assignment: Assignment,
        /// Replace an existing owner; by default only the unowned are
        /// assigned.
        #[serde(default)]
        overwrite: bool,
    },
    /// Adds the customer to a static segment.
    AddToSegment {
        /// The segment's name.
        segment: String,
    },
    /// Removes the customer from a static segment.
    RemoveFromSegment {
        /// The segment's name.
        segment: String,
    },
    /// Tells the host application ([`Crm::set_rule_event_handler`]), inside
    /// the transaction: a handler that fails rolls the write back.
    Emit {
        /// The event's name, for the host.
        event: String,
    },
}

impl Action {
    /// The action's name, as in its serialized `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::SetStage { .. } => "set_stage",
            Action::AddTag { .. } => "add_tag",
            Action::RemoveTag { .. } => "remove_tag",
            Action::SetAttribute { .. } => "set_attribute",
            Action::CreateTask { .. } => "create_task",
            Action::AssignOwner { .. } => "assign_owner",
            Action::AddToSegment { .. } => "add_to_segment",
            Action::RemoveFromSegment { .. } => "remove_from_segment",
            Action::Emit { .. } => "emit",
        }
    }
}

/// A rule to create (or the new definition of one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    /// Unique name (it is what the change log records).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
    /// What makes it run.
    pub trigger: Trigger,
    /// The filter-language condition on the customer; `None` always holds.
    #[serde(default)]
    pub condition: Option<String>,
    /// What it does, in order (at least one).
    pub actions: Vec<Action>,
    /// Whether it runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl NewRule {
    /// An enabled rule with no condition and no actions yet.
    pub fn new(name: impl Into<String>, trigger: Trigger) -> Self {
        NewRule {
            name: name.into(),
            description: None,
            trigger,
            condition: None,
            actions: Vec::new(),
            enabled: true,
        }
    }

    /// Reads a rule from JSON (the serialized form of [`NewRule`]); every
    /// mistake is a [`Error::Validation`] naming where it is.
    ///
    /// ```
    /// let rule = crm_core::rules::NewRule::from_json(r#"{
    ///     "name": "vip", "trigger": {"type": "customer_created"},
    ///     "actions": [{"type": "add_tag", "tag": "new"}]}"#)?;
    /// assert_eq!(rule.actions.len(), 1);
    /// let err = crm_core::rules::NewRule::from_json(r#"{
    ///     "name": "x", "trigger": {"type": "customer_created"},
    ///     "actions": [{"type": "send_fax"}]}"#).unwrap_err();
    /// assert!(err.to_string().contains("unknown variant `send_fax`"), "{err}");
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<NewRule> {
        serde_json::from_str(json).map_err(|e| Error::validation("rule", e))
    }

    /// Reads a rule from a JSON value; see [`NewRule::from_json`].
    pub fn from_value(value: serde_json::Value) -> Result<NewRule> {
        serde_json::from_value(value).map_err(|e| Error::validation("rule", e))
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id.
    pub id: RuleId,
    /// Unique name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// What makes it run.
    pub trigger: Trigger,
    /// The condition, in canonical form.
    pub condition: Option<String>,
    /// What it does.
    pub actions: Vec<Action>,
    /// Whether it runs.
    pub enabled: bool,
    /// 1 when created; every change of definition or of `enabled` adds one.
    pub version: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The stored part of a rule's definition (as JSON in the database).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Definition {
    pub description: Option<String>,
    pub trigger: Trigger,
    pub condition: Option<String>,
    pub actions: Vec<Action>,
}

/// A member of an assignment team.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    /// The owner name assignments write.
    pub name: String,
    /// The most open work (open tasks and open deals owned) the member may
    /// have; a member at capacity is skipped. `None`: unlimited.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Out of office: skipped by every assignment.
    #[serde(default)]
    pub out: bool,
}

impl TeamMember {
    /// An available member without a capacity limit.
    pub fn new(name: impl Into<String>) -> Self {
        TeamMember {
            name: name.into(),
            capacity: None,
            out: false,
        }
    }
}

/// The people assignment rules hand work to, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Unique name.
    pub name: String,
    /// The members, in round-robin order (at least one).
    pub members: Vec<TeamMember>,
}

/// One thing a rule did (or, in a dry run, would do), with why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleEffect {
    /// The rule.
    pub rule: String,
    /// The rule's version.
    pub rule_version: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// What kind of entity it acted on.
    pub entity: EntityKind,
    /// The entity's id.
    pub entity_id: String,
    /// The action (`set_stage`, `assign_owner`, …).
    pub action: String,
    /// What it did and why, in a sentence.
    pub detail: String,
}

/// Which effects [`Crm::rule_effects`] lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EffectsQuery {
    /// Only this rule's.
    pub rule: Option<String>,
    /// Only effects on this entity (a customer's, deal's or task's id).
    pub entity_id: Option<String>,
    /// At most this many, newest first (default 100, at most 10,000).
    pub limit: Option<u32>,
}

/// What a dry run found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DryRun {
    /// Customers the condition holds for now.
    pub matching: u64,
    /// Of those, how many were acted on (the first `limit`, by creation).
    pub simulated: u64,
    /// What the actions would do to them, including what other enabled rules
    /// would do in cascade. Nothing was stored, and no event reached the
    /// host.
    pub effects: Vec<RuleEffect>,
}

/// What one scheduled rule did in a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRule {
    /// The rule.
    pub rule: String,
    /// Customers its condition holds for.
    pub matching: u64,
    /// Of those, the ones it had not matched at the previous sweep: it
    /// acted on these.
    pub acted_on: u64,
}

/// What [`Crm::run_sweep`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The time the conditions were evaluated at.
    pub at: DateTime<Utc>,
    /// Per enabled scheduled rule, by name.
    pub rules: Vec<SweepRule>,
}

/// An `emit` action, as the host application receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleEvent {
    /// The event name given in the action.
    pub event: String,
    /// The rule that emitted it.
    pub rule: String,
    /// The trigger that ran the rule (`interaction_logged`, …).
    pub trigger: String,
    /// The customer concerned, if any.
    pub customer_id: Option<CustomerId>,
    /// The deal concerned (deal triggers).
    pub deal_id: Option<DealId>,
}

/// Receives [`Action::Emit`] events, inside the write transaction that
/// triggered the rule: return `Err` (or panic) to roll that write back; the
/// caller then gets [`Error::Rule`] with the message. The handler must not
/// use the CRM it is called from (it would get [`Error::Busy`]). Any
/// `Fn(&RuleEvent) -> Result<(), String>` closure is a handler.
pub trait RuleEventHandler: Send + Sync {
    /// `event` was emitted.
    fn on_rule_event(&self, event: &RuleEvent) -> std::result::Result<(), String>;
}

impl<F: Fn(&RuleEvent) -> std::result::Result<(), String> + Send + Sync> RuleEventHandler for F {
    fn on_rule_event(&self, event: &RuleEvent) -> std::result::Result<(), String> {
        self(event)
    }
}

/// Rules state shared by the clones of a handle: the loaded rules and the
/// host's event handler.
#[derive(Default)]
pub(crate) struct RulesState {
    pub cache: Mutex<Option<Arc<engine::Loaded>>>,
    pub handler: RwLock<Option<Arc<dyn RuleEventHandler>>>,
}

const MAX_NAME_LEN: usize = 100;
const MAX_DESCRIPTION_LEN: usize = 2_000;
const MAX_ACTIONS: usize = 50;

fn rule_name(raw: &str) -> Result<String> {
    normalize::text(raw, MAX_NAME_LEN).map_err(|r| Error::validation("name", r))
}

fn member_name(field: &str, raw: &str) -> Result<String> {
    normalize::text(raw, MAX_NAME_LEN).map_err(|r| Error::validation(field, r))
}

/// Checks a team and returns it normalized.
fn check_team(team: &Team) -> Result<Team> {
    let name = member_name("name", &team.name)?;
    if team.members.is_empty() {
        return Err(Error::validation(
            "members",
            "a team needs at least one member, or its assignments would go to nobody",
        ));
    }
    let mut members: Vec<TeamMember> = Vec::with_capacity(team.members.len());
    for (i, m) in team.members.iter().enumerate() {
        let n = member_name(&format!("members[{i}].name"), &m.name)?;
        if members.iter().any(|o| o.name == n) {
            return Err(Error::validation(
                format!("members[{i}].name"),
                format!("'{n}' is already a member"),
            ));
        }
        members.push(TeamMember {
            name: n,
            capacity: m.capacity,
            out: m.out,
        });
    }
    Ok(Team { name, members })
}

impl Crm {
    // ----- rules ----------------------------------------------------------

    /// Checks and stores a rule (version 1). An invalid condition, an action
    /// naming a stage, segment, team or attribute that does not exist, or a
    /// trigger on an unknown segment is an error and nothing is stored.
    pub fn create_rule(&self, new: &NewRule) -> Result<Rule> {
        let now = Crm::now();
        let rule = self.db.write(|tx| {
            let (name, def) = engine::check(tx, new)?;
            if db::rules::by_name(tx, &name)?.is_some() {
                return Err(Error::conflict("name", format!("a rule '{name}' exists")));
            }
            let rule = Rule {
                id: RuleId::new(),
                name,
                description: def.description,
                trigger: def.trigger,
                condition: def.condition,
                actions: def.actions,
                enabled: new.enabled,
                version: 1,
                created_at: now,
                updated_at: now,
            };
            db::rules::insert(tx, &self.context, &rule)?;
            Ok(rule)
        })?;
        Ok(rule)
    }

    /// The rule called `name`, or [`Error::NotFound`].
    pub fn rule(&self, name: &str) -> Result<Rule> {
        self.db
            .read(|conn| db::rules::require(conn, name).map(|(_, r)| r))
    }

    /// Every rule, by name.
    pub fn rules(&self) -> Result<Vec<Rule>> {
        self.db.read(db::rules::list)
    }

    /// Replaces a rule's definition (its name stays): a new version.
    pub fn update_rule(&self, name: &str, new: &NewRule) -> Result<Rule> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, old) = db::rules::require(tx, name)?;
            let (new_name, def) = engine::check(tx, new)?;
            if new_name != old.name {
                return Err(Error::validation(
                    "name",
                    "a rule keeps its name (the change log refers to it); create a new rule instead",
                ));
            }
            let rule = Rule {
                description: def.description,
                trigger: def.trigger,
                condition: def.condition,
                actions: def.actions,
                enabled: new.enabled,
                version: old.version + 1,
                updated_at: now,
                ..old
            };
            db::rules::update(tx, &self.context, rowid, &rule, &["definition"])?;
            Ok(rule)
        })
    }

    /// Enables or disables a rule (a new version if it changes).
    pub fn set_rule_enabled(&self, name: &str, enabled: bool) -> Result<Rule> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, old) = db::rules::require(tx, name)?;
            if old.enabled == enabled {
                return Ok(old);
            }
            let rule = Rule {
                enabled,
                version: old.version + 1,
                updated_at: now,
                ..old
            };
            db::rules::update(tx, &self.context, rowid, &rule, &["enabled"])?;
            Ok(rule)
        })
    }

    /// Every version of a rule, oldest first.
    pub fn rule_versions(&self, name: &str) -> Result<Vec<Rule>> {
        self.db.read(|conn| {
            let (rowid, rule) = db::rules::require(conn, name)?;
            db::rules::versions(conn, rowid, &rule)
        })
    }

    /// Deletes a rule (its effects stay in the change log).
    pub fn delete_rule(&self, name: &str) -> Result<()> {
        self.db.write(|tx| {
            let (rowid, rule) = db::rules::require(tx, name)?;
            db::rules::delete(tx, &self.context, rowid, &rule, Crm::now())
        })
    }

    /// What a rule would do to the existing data, without storing anything:
    /// its condition is evaluated over every customer, and its actions run
    /// for the first `limit` matching customers (by creation) as if its
    /// trigger had fired for them, with the cascades other enabled rules
    /// would add; then everything is rolled back. A rule triggered by
    /// entering a segment acts on the segment's members who meet the
    /// condition; a rule triggered by deals on the open deals of its
    /// pipeline and stage (when it names them) whose customer meets it. The rule need not be
    /// stored (check a rule before creating it) and the host's event
    /// handler is not called.
    ///
    /// ```
    /// use crm_core::rules::{Action, NewRule, Trigger};
    /// use crm_core::{Crm, NewCustomer};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// crm.create_customer(NewCustomer { name: Some("Ana".into()), country: Some("SI".into()), ..Default::default() })?;
    /// crm.create_customer(NewCustomer { name: Some("Bo".into()), country: Some("SE".into()), ..Default::default() })?;
    /// let rule = NewRule {
    ///     condition: Some(r#"country = "SI""#.into()),
    ///     actions: vec![Action::AddTag { tag: "slovenia".into() }],
    ///     ..NewRule::new("tag slovenians", Trigger::CustomerUpdated { fields: vec![] })
    /// };
    /// let run = crm.dry_run_rule(&rule, 100)?;
    /// assert_eq!((run.matching, run.effects.len()), (1, 1));
    /// assert_eq!(run.effects[0].detail, "added tag 'slovenia'");
    /// assert_eq!(crm.count_matching(r#""slovenia" in tags"#)?, 0); // nothing stored
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn dry_run_rule(&self, rule: &NewRule, limit: u32) -> Result<DryRun> {
        crate::page::check_limit(limit)?;
        self.db
            .write_rolled_back(|tx| engine::dry_run(self, tx, rule, limit))
    }

    /// Runs the scheduled rules ([`Trigger::Schedule`]) at `now` (default:
    /// the current time), in one transaction: each acts once on the
    /// customers who newly match its condition since the previous sweep.
    /// Customers who stop matching are forgotten, so they are acted on again
    /// if they match again later. Call it from the host's scheduler (e.g.
    /// daily).
    ///
    /// ```
    /// use crm_core::rules::{Action, NewRule, Trigger};
    /// use crm_core::{Crm, NewCustomer};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// crm.create_rule(&NewRule {
    ///     condition: Some("days_since(last purchase) is null".into()),
    ///     actions: vec![Action::AddTag { tag: "never-bought".into() }],
    ///     ..NewRule::new("never bought", Trigger::Schedule)
    /// })?;
    /// assert_eq!(crm.run_sweep(None)?.rules[0].acted_on, 1);
    /// assert_eq!(crm.run_sweep(None)?.rules[0].acted_on, 0); // once per customer
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn run_sweep(&self, now: Option<DateTime<Utc>>) -> Result<SweepReport> {
        let now = now.map_or_else(Crm::now, |t| t.trunc_subsecs(6));
        self.db.write(|tx| engine::sweep(self, tx, now))
    }

    /// What rules did, newest first: to each entity, or by one rule.
    pub fn rule_effects(&self, query: &EffectsQuery) -> Result<Vec<RuleEffect>> {
        let limit = crate::page::check_limit(query.limit.unwrap_or(100))?;
        let entity =
            match &query.entity_id {
                Some(id) => Some(uuid::Uuid::parse_str(id.trim()).map_err(|_| {
                    Error::validation("entity_id", "not a valid id (expected a UUID)")
                })?),
                None => None,
            };
        self.db.read(|conn| {
            db::rules::effects(
                conn,
                query.rule.as_deref(),
                entity.as_ref().map(|u| u.as_bytes()),
                limit,
            )
        })
    }

    /// Sets (replacing) the handler that receives [`Action::Emit`] events;
    /// `None` removes it. Without a handler, emitted events are only
    /// recorded in [`Crm::rule_effects`].
    pub fn set_rule_event_handler(&self, handler: Option<Arc<dyn RuleEventHandler>>) {
        *self
            .rules
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = handler;
    }

    // ----- teams ----------------------------------------------------------

    /// Creates or replaces an assignment team. A team without members, or
    /// with a member twice, is refused.
    ///
    /// ```
    /// use crm_core::rules::{Team, TeamMember};
    /// let crm = crm_core::Crm::open_in_memory()?;
    /// crm.set_team(&Team { name: "sales".into(), members: vec![TeamMember::new("ana"), TeamMember::new("bo")] })?;
    /// assert_eq!(crm.team("sales")?.members.len(), 2);
    /// assert!(crm.set_team(&Team { name: "empty".into(), members: vec![] }).is_err());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn set_team(&self, team: &Team) -> Result<Team> {
        let team = check_team(team)?;
        self.db.write(|tx| {
            db::rules::put_team(tx, &self.context, &team, Crm::now())?;
            Ok(team)
        })
    }

    /// The team called `name`, or [`Error::NotFound`].
    pub fn team(&self, name: &str) -> Result<Team> {
        self.db.read(|conn| db::rules::require_team(conn, name))
    }

    /// Every team, by name.
    pub fn teams(&self) -> Result<Vec<Team>> {
        self.db.read(db::rules::teams)
    }

    /// Marks a member out of office (skipped by assignments) or back.
    pub fn set_member_out(&self, team: &str, member: &str, out: bool) -> Result<Team> {
        self.db.write(|tx| {
            let mut t = db::rules::require_team(tx, team)?;
            let m = t
                .members
                .iter_mut()
                .find(|m| m.name == member.trim())
                .ok_or(Error::NotFound {
                    entity: "team member",
                })?;
            if m.out != out {
                m.out = out;
                db::rules::put_team(tx, &self.context, &t, Crm::now())?;
            }
            Ok(t)
        })
    }

    /// Deletes a team; refused while a rule assigns from it.
    pub fn delete_team(&self, name: &str) -> Result<()> {
        self.db.write(|tx| {
            let team = db::rules::require_team(tx, name)?;
            let users: Vec<String> = db::rules::list(tx)?
                .into_iter()
                .filter(|r| engine::teams_of(r).any(|t| t == team.name))
                .map(|r| r.name)
                .collect();
            if !users.is_empty() {
                return Err(Error::conflict(
                    "team",
                    format!("rules assign from it: {}", users.join(", ")),
                ));
            }
            db::rules::delete_team(tx, &self.context, &team.name, Crm::now())
        })
    }
}
