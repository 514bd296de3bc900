//! Rules and assignment teams for Kotlin and Swift: crm-core's `rules`
//! (*trigger → condition → actions*, stored as data and run in the
//! transaction of the change that triggered them), as methods of `Crm`.
//!
//! Only conversions live here. `Trigger`, `Action` and `Assignment` are
//! enums with fields (sealed classes in Kotlin, enums with associated values
//! in Swift); ids are UUID strings, times `SystemTime`, conditions text in
//! the filter language. Every check, and so every error with its field name
//! (`actions[0].stage`, `members`, `condition`), is crm-core's. A rule that
//! fails while running (its event handler threw, its actions cascaded in a
//! cycle) fails the write that triggered it with `CrmError.Rule`, and that
//! write is rolled back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crm_core::rules::{
    Action as CoreAction, Assignment as CoreAssignment, DryRun as CoreDryRun,
    EffectsQuery as CoreEffectsQuery, NewRule as CoreNewRule, Rule as CoreRule,
    RuleEffect as CoreRuleEffect, RuleEvent as CoreRuleEvent,
    RuleEventHandler as CoreRuleEventHandler, SweepReport as CoreSweepReport,
    SweepRule as CoreSweepRule, Team as CoreTeam, TeamMember as CoreTeamMember,
    Trigger as CoreTrigger,
};
use crm_core::{AttributeValue as CoreAttributeValue, InteractionKind as CoreInteractionKind};

use crate::Crm;
use crate::deals::Priority;
use crate::error::{CrmError, guard};
use crate::records::{AttributeValue, EntityKind, InteractionKind, date_in, time_in, time_out};

// ----- triggers, actions, assignments --------------------------------------------

/// What makes a rule run.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum Trigger {
    /// A customer was created (by a call, an upsert or an import).
    CustomerCreated,
    /// A customer was changed. With `fields`, only when one of them changed
    /// (`lifecycle_stage`, `tags`, `attributes`, `owner`, …).
    CustomerUpdated {
        /// The fields to watch; empty watches every field.
        #[uniffi(default)]
        fields: Vec<String>,
    },
    /// An interaction was logged (or imported). With `kind`, only of that
    /// kind.
    InteractionLogged {
        /// The kind to react to; `None` reacts to every kind.
        #[uniffi(default)]
        kind: Option<InteractionKind>,
    },
    /// A deal moved to another stage. The condition is evaluated for the
    /// deal's customer (a deal without one never matches a condition).
    DealStageChanged {
        /// Only deals of this pipeline.
        #[uniffi(default)]
        pipeline: Option<String>,
        /// Only moves out of this stage.
        #[uniffi(default)]
        from_stage: Option<String>,
        /// Only moves into this stage.
        #[uniffi(default)]
        to_stage: Option<String>,
    },
    /// A customer entered the segment.
    SegmentEntered {
        /// The segment's name.
        segment: String,
    },
    /// A customer left the segment.
    SegmentLeft {
        /// The segment's name.
        segment: String,
    },
    /// The host's scheduled sweep (`Crm.run_sweep`, e.g. daily): the rule
    /// acts once on each customer who has newly come to match its condition
    /// since the previous sweep.
    Schedule,
}

impl From<CoreTrigger> for Trigger {
    fn from(t: CoreTrigger) -> Self {
        match t {
            CoreTrigger::CustomerCreated => Trigger::CustomerCreated,
            CoreTrigger::CustomerUpdated { fields } => Trigger::CustomerUpdated { fields },
            CoreTrigger::InteractionLogged { kind } => Trigger::InteractionLogged {
                kind: kind.map(Into::into),
            },
            CoreTrigger::DealStageChanged {
                pipeline,
                from_stage,
                to_stage,
            } => Trigger::DealStageChanged {
                pipeline,
                from_stage,
                to_stage,
            },
            CoreTrigger::SegmentEntered { segment } => Trigger::SegmentEntered { segment },
            CoreTrigger::SegmentLeft { segment } => Trigger::SegmentLeft { segment },
            CoreTrigger::Schedule => Trigger::Schedule,
        }
    }
}

impl TryFrom<Trigger> for CoreTrigger {
    type Error = CrmError;

    fn try_from(t: Trigger) -> Result<Self, CrmError> {
        Ok(match t {
            Trigger::CustomerCreated => CoreTrigger::CustomerCreated,
            Trigger::CustomerUpdated { fields } => CoreTrigger::CustomerUpdated { fields },
            Trigger::InteractionLogged { kind } => CoreTrigger::InteractionLogged {
                kind: kind.map(CoreInteractionKind::try_from).transpose()?,
            },
            Trigger::DealStageChanged {
                pipeline,
                from_stage,
                to_stage,
            } => CoreTrigger::DealStageChanged {
                pipeline,
                from_stage,
                to_stage,
            },
            Trigger::SegmentEntered { segment } => CoreTrigger::SegmentEntered { segment },
            Trigger::SegmentLeft { segment } => CoreTrigger::SegmentLeft { segment },
            Trigger::Schedule => CoreTrigger::Schedule,
        })
    }
}

/// Who an assignment picks.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
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
        owners: HashMap<String, String>,
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

impl From<CoreAssignment> for Assignment {
    fn from(a: CoreAssignment) -> Self {
        match a {
            CoreAssignment::RoundRobin { team } => Assignment::RoundRobin { team },
            CoreAssignment::Territory {
                attribute,
                owners,
                team,
            } => Assignment::Territory {
                attribute,
                owners: owners.into_iter().collect(),
                team,
            },
            CoreAssignment::LeastOpenWork { team } => Assignment::LeastOpenWork { team },
        }
    }
}

impl From<Assignment> for CoreAssignment {
    fn from(a: Assignment) -> Self {
        match a {
            Assignment::RoundRobin { team } => CoreAssignment::RoundRobin { team },
            Assignment::Territory {
                attribute,
                owners,
                team,
            } => CoreAssignment::Territory {
                attribute,
                owners: owners.into_iter().collect(),
                team,
            },
            Assignment::LeastOpenWork { team } => CoreAssignment::LeastOpenWork { team },
        }
    }
}

/// What a rule does.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum Action {
    /// Moves the customer to a lifecycle stage (a transition caused by the
    /// rule).
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
        #[uniffi(default)]
        due_in_days: Option<u32>,
        /// Priority; `None`: crm-core's default (normal). A stored rule
        /// always has it.
        #[uniffi(default)]
        priority: Option<Priority>,
        /// Who gets it; `None`: the customer's (or deal's) owner.
        #[uniffi(default)]
        assign: Option<Assignment>,
    },
    /// Sets the owner of the customer (or of the deal, for a deal trigger).
    AssignOwner {
        /// How the owner is chosen.
        assignment: Assignment,
        /// Replace an existing owner; by default only the unowned are
        /// assigned.
        #[uniffi(default = false)]
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
    /// Tells the host's `RuleEventHandler`, inside the transaction: a
    /// handler that throws rolls the write back.
    Emit {
        /// The event's name, for the host.
        event: String,
    },
}

impl From<CoreAction> for Action {
    fn from(a: CoreAction) -> Self {
        match a {
            CoreAction::SetStage { stage } => Action::SetStage { stage },
            CoreAction::AddTag { tag } => Action::AddTag { tag },
            CoreAction::RemoveTag { tag } => Action::RemoveTag { tag },
            CoreAction::SetAttribute { key, value } => Action::SetAttribute {
                key,
                value: value.into(),
            },
            CoreAction::CreateTask {
                title,
                due_in_days,
                priority,
                assign,
            } => Action::CreateTask {
                title,
                due_in_days,
                priority: Some(priority.into()),
                assign: assign.map(Into::into),
            },
            CoreAction::AssignOwner {
                assignment,
                overwrite,
            } => Action::AssignOwner {
                assignment: assignment.into(),
                overwrite,
            },
            CoreAction::AddToSegment { segment } => Action::AddToSegment { segment },
            CoreAction::RemoveFromSegment { segment } => Action::RemoveFromSegment { segment },
            CoreAction::Emit { event } => Action::Emit { event },
        }
    }
}

impl Action {
    /// The core action; a bad date value is reported on
    /// `actions[index].value`.
    fn into_core(self, index: usize) -> Result<CoreAction, CrmError> {
        Ok(match self {
            Action::SetStage { stage } => CoreAction::SetStage { stage },
            Action::AddTag { tag } => CoreAction::AddTag { tag },
            Action::RemoveTag { tag } => CoreAction::RemoveTag { tag },
            Action::SetAttribute { key, value } => CoreAction::SetAttribute {
                key,
                value: match value {
                    AttributeValue::Text { value } => CoreAttributeValue::Text(value),
                    AttributeValue::Number { value } => CoreAttributeValue::Number(value),
                    AttributeValue::Bool { value } => CoreAttributeValue::Bool(value),
                    AttributeValue::Date { value } => CoreAttributeValue::Date(date_in(
                        &format!("actions[{index}].value"),
                        &value,
                    )?),
                },
            },
            Action::CreateTask {
                title,
                due_in_days,
                priority,
                assign,
            } => CoreAction::CreateTask {
                title,
                due_in_days,
                priority: priority.map(Into::into).unwrap_or_default(),
                assign: assign.map(Into::into),
            },
            Action::AssignOwner {
                assignment,
                overwrite,
            } => CoreAction::AssignOwner {
                assignment: assignment.into(),
                overwrite,
            },
            Action::AddToSegment { segment } => CoreAction::AddToSegment { segment },
            Action::RemoveFromSegment { segment } => CoreAction::RemoveFromSegment { segment },
            Action::Emit { event } => CoreAction::Emit { event },
        })
    }
}

// ----- rules -------------------------------------------------------------------------

/// A rule to create (or the new definition of one).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewRule {
    /// Unique name (it is what the change log records).
    pub name: String,
    /// What makes it run.
    pub trigger: Trigger,
    /// What it does, in order (at least one).
    pub actions: Vec<Action>,
    /// The filter-language condition on the customer; `None` always holds.
    #[uniffi(default)]
    pub condition: Option<String>,
    /// What it is for.
    #[uniffi(default)]
    pub description: Option<String>,
    /// Whether it runs.
    #[uniffi(default = true)]
    pub enabled: bool,
}

impl TryFrom<NewRule> for CoreNewRule {
    type Error = CrmError;

    fn try_from(r: NewRule) -> Result<Self, CrmError> {
        Ok(CoreNewRule {
            name: r.name,
            description: r.description,
            trigger: r.trigger.try_into()?,
            condition: r.condition,
            actions: r
                .actions
                .into_iter()
                .enumerate()
                .map(|(i, a)| a.into_core(i))
                .collect::<Result<_, _>>()?,
            enabled: r.enabled,
        })
    }
}

impl From<CoreNewRule> for NewRule {
    fn from(r: CoreNewRule) -> Self {
        NewRule {
            name: r.name,
            trigger: r.trigger.into(),
            actions: r.actions.into_iter().map(Into::into).collect(),
            condition: r.condition,
            description: r.description,
            enabled: r.enabled,
        }
    }
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Rule {
    /// Its id.
    pub id: String,
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
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
}

impl From<CoreRule> for Rule {
    fn from(r: CoreRule) -> Self {
        Rule {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            trigger: r.trigger.into(),
            condition: r.condition,
            actions: r.actions.into_iter().map(Into::into).collect(),
            enabled: r.enabled,
            version: r.version,
            created_at: time_out(r.created_at),
            updated_at: time_out(r.updated_at),
        }
    }
}

/// One thing a rule did (or, in a dry run, would do), with why.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RuleEffect {
    /// The rule.
    pub rule: String,
    /// The rule's version.
    pub rule_version: u32,
    /// When.
    pub at: SystemTime,
    /// What kind of entity it acted on.
    pub entity: EntityKind,
    /// The entity's id.
    pub entity_id: String,
    /// The action (`set_stage`, `assign_owner`, …).
    pub action: String,
    /// What it did and why, in a sentence ("assigned to cy by rule 'assign
    /// new': round-robin over team 'sales', next after ana; bo is out").
    pub detail: String,
}

impl From<CoreRuleEffect> for RuleEffect {
    fn from(e: CoreRuleEffect) -> Self {
        RuleEffect {
            rule: e.rule,
            rule_version: e.rule_version,
            at: time_out(e.at),
            entity: e.entity.into(),
            entity_id: e.entity_id,
            action: e.action,
            detail: e.detail,
        }
    }
}

/// Which effects `Crm.rule_effects` lists. `None` means crm-core's default.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct EffectsQuery {
    /// Only this rule's.
    #[uniffi(default)]
    pub rule: Option<String>,
    /// Only effects on this entity (a customer's, deal's or task's id).
    #[uniffi(default)]
    pub entity_id: Option<String>,
    /// At most this many, newest first (default 100, at most 10,000).
    #[uniffi(default)]
    pub limit: Option<u32>,
}

impl From<EffectsQuery> for CoreEffectsQuery {
    fn from(q: EffectsQuery) -> Self {
        CoreEffectsQuery {
            rule: q.rule,
            entity_id: q.entity_id,
            limit: q.limit,
        }
    }
}

/// What a dry run found.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DryRun {
    /// Customers the condition holds for now.
    pub matching: u64,
    /// Of those, how many were acted on (the first `limit`, by creation).
    pub simulated: u64,
    /// What the actions would do to them, including what other enabled
    /// rules would do in cascade. Nothing was stored, and no event reached
    /// the host.
    pub effects: Vec<RuleEffect>,
}

impl From<CoreDryRun> for DryRun {
    fn from(d: CoreDryRun) -> Self {
        DryRun {
            matching: d.matching,
            simulated: d.simulated,
            effects: d.effects.into_iter().map(Into::into).collect(),
        }
    }
}

/// What one scheduled rule did in a sweep.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SweepRule {
    /// The rule.
    pub rule: String,
    /// Customers its condition holds for.
    pub matching: u64,
    /// Of those, the ones it had not matched at the previous sweep: it
    /// acted on these.
    pub acted_on: u64,
}

impl From<CoreSweepRule> for SweepRule {
    fn from(r: CoreSweepRule) -> Self {
        SweepRule {
            rule: r.rule,
            matching: r.matching,
            acted_on: r.acted_on,
        }
    }
}

/// What `Crm.run_sweep` did.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SweepReport {
    /// The time the conditions were evaluated at.
    pub at: SystemTime,
    /// Per enabled scheduled rule, by name.
    pub rules: Vec<SweepRule>,
}

impl From<CoreSweepReport> for SweepReport {
    fn from(r: CoreSweepReport) -> Self {
        SweepReport {
            at: time_out(r.at),
            rules: r.rules.into_iter().map(Into::into).collect(),
        }
    }
}

// ----- the host's event handler ---------------------------------------------------

/// An `Emit` action, as the host application receives it.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct RuleEvent {
    /// The event name given in the action.
    pub event: String,
    /// The rule that emitted it.
    pub rule: String,
    /// The trigger that ran the rule (`interaction_logged`, …).
    pub trigger: String,
    /// The customer concerned, if any.
    pub customer_id: Option<String>,
    /// The deal concerned (deal triggers).
    pub deal_id: Option<String>,
}

impl From<&CoreRuleEvent> for RuleEvent {
    fn from(e: &CoreRuleEvent) -> Self {
        RuleEvent {
            event: e.event.clone(),
            rule: e.rule.clone(),
            trigger: e.trigger.clone(),
            customer_id: e.customer_id.map(|id| id.to_string()),
            deal_id: e.deal_id.map(|id| id.to_string()),
        }
    }
}

/// Receives the events of `Emit` actions, implemented by the host app.
/// Register it with `Crm.set_rule_event_handler`.
///
/// Called on the writing thread inside the write transaction that
/// triggered the rule: an exception (Kotlin) or error (Swift) it throws
/// rolls that write back, and the writing call fails with `Rule` naming the
/// rule, the reason carrying the exception's message. Don't call the same
/// CRM from the handler (it would get `Busy`); hand the event to a queue.
#[uniffi::export(foreign)]
pub trait RuleEventHandler: Send + Sync {
    /// `event` was emitted.
    fn on_rule_event(&self, event: RuleEvent) -> Result<(), CrmError>;
}

/// crm-core's handler, forwarding to the host's.
struct ForwardRuleEvents(Arc<dyn RuleEventHandler>);

impl CoreRuleEventHandler for ForwardRuleEvents {
    fn on_rule_event(&self, event: &CoreRuleEvent) -> Result<(), String> {
        self.0.on_rule_event(event.into()).map_err(|err| match err {
            // What the host threw, as the generated code caught it.
            CrmError::Internal { message } => message,
            other => other.to_string(),
        })
    }
}

// ----- teams -------------------------------------------------------------------------

/// A member of an assignment team.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct TeamMember {
    /// The owner name assignments write.
    pub name: String,
    /// The most open work (open tasks and open deals owned) the member may
    /// have; a member at capacity is skipped. `None`: unlimited.
    #[uniffi(default)]
    pub capacity: Option<u32>,
    /// Out of office: skipped by every assignment.
    #[uniffi(default = false)]
    pub out: bool,
}

impl From<CoreTeamMember> for TeamMember {
    fn from(m: CoreTeamMember) -> Self {
        TeamMember {
            name: m.name,
            capacity: m.capacity,
            out: m.out,
        }
    }
}

impl From<TeamMember> for CoreTeamMember {
    fn from(m: TeamMember) -> Self {
        CoreTeamMember {
            name: m.name,
            capacity: m.capacity,
            out: m.out,
        }
    }
}

/// The people assignment rules hand work to, in order.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Team {
    /// Unique name.
    pub name: String,
    /// The members, in round-robin order (at least one).
    pub members: Vec<TeamMember>,
}

impl From<CoreTeam> for Team {
    fn from(t: CoreTeam) -> Self {
        Team {
            name: t.name,
            members: t.members.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Team> for CoreTeam {
    fn from(t: Team) -> Self {
        CoreTeam {
            name: t.name,
            members: t.members.into_iter().map(Into::into).collect(),
        }
    }
}

// ----- rules as data ---------------------------------------------------------------

/// Reads a rule from JSON (crm-core's serialized form: `{"name": …,
/// "trigger": {"type": "customer_created"}, "actions": [{"type": "add_tag",
/// "tag": "new"}]}`); every mistake, an unknown action included, is
/// `Validation` on `rule`.
#[uniffi::export]
pub fn rule_from_json(json: String) -> Result<NewRule, CrmError> {
    guard(|| Ok(CoreNewRule::from_json(&json)?.into()))
}

/// A rule as JSON, in the form `rule_from_json` reads (to store rules as
/// data, or to share them with the Python and Rust APIs).
#[uniffi::export]
pub fn rule_to_json(rule: NewRule) -> Result<String, CrmError> {
    guard(|| {
        let rule = CoreNewRule::try_from(rule)?;
        serde_json::to_string(&rule).map_err(|_| CrmError::Internal {
            message: "a rule could not be written as JSON".into(),
        })
    })
}

// ----- methods ----------------------------------------------------------------------

fn list<C, T: From<C>>(items: Vec<C>) -> Vec<T> {
    items.into_iter().map(Into::into).collect()
}

#[uniffi::export]
impl Crm {
    // ----- rules -------------------------------------------------------------------

    /// Checks and stores a rule (version 1). An invalid condition is
    /// `Parse`; an action naming a stage, segment, team or attribute that
    /// does not exist is `Validation` on its field (`actions[0].stage`); a
    /// name in use is `Conflict`. Nothing is stored then.
    pub fn create_rule(&self, rule: NewRule) -> Result<Rule, CrmError> {
        guard(|| Ok(self.inner.create_rule(&rule.try_into()?)?.into()))
    }

    /// The rule called `name`, or `NotFound`.
    pub fn rule(&self, name: String) -> Result<Rule, CrmError> {
        guard(|| Ok(self.inner.rule(&name)?.into()))
    }

    /// Every rule, by name.
    pub fn rules(&self) -> Result<Vec<Rule>, CrmError> {
        guard(|| Ok(list(self.inner.rules()?)))
    }

    /// Replaces a rule's definition (its name stays): a new version.
    pub fn update_rule(&self, name: String, rule: NewRule) -> Result<Rule, CrmError> {
        guard(|| Ok(self.inner.update_rule(&name, &rule.try_into()?)?.into()))
    }

    /// Enables or disables a rule (a new version if it changes).
    pub fn set_rule_enabled(&self, name: String, enabled: bool) -> Result<Rule, CrmError> {
        guard(|| Ok(self.inner.set_rule_enabled(&name, enabled)?.into()))
    }

    /// Every version of a rule, oldest first.
    pub fn rule_versions(&self, name: String) -> Result<Vec<Rule>, CrmError> {
        guard(|| Ok(list(self.inner.rule_versions(&name)?)))
    }

    /// Deletes a rule (its effects stay in the change log).
    pub fn delete_rule(&self, name: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_rule(&name)?))
    }

    /// What a rule would do to the existing data, without storing anything:
    /// its actions run for the first `limit` customers matching its
    /// condition (by creation), with the cascades other enabled rules would
    /// add, and everything is rolled back. The rule need not be stored, and
    /// the event handler is not called.
    #[uniffi::method(default(limit = 100))]
    pub fn dry_run_rule(&self, rule: NewRule, limit: u32) -> Result<DryRun, CrmError> {
        guard(|| Ok(self.inner.dry_run_rule(&rule.try_into()?, limit)?.into()))
    }

    /// Runs the scheduled rules (`Trigger.Schedule`) at `now` (default: the
    /// current time), in one transaction: each acts once on the customers
    /// who newly match its condition since the previous sweep. Call it from
    /// the host's scheduler (e.g. WorkManager, daily).
    #[uniffi::method(default(now = None))]
    pub fn run_sweep(&self, now: Option<SystemTime>) -> Result<SweepReport, CrmError> {
        guard(|| {
            let now = now.map(|t| time_in("now", t)).transpose()?;
            Ok(self.inner.run_sweep(now)?.into())
        })
    }

    /// What rules did, newest first: to one entity, or by one rule.
    #[uniffi::method(default(query))]
    pub fn rule_effects(&self, query: EffectsQuery) -> Result<Vec<RuleEffect>, CrmError> {
        guard(|| Ok(list(self.inner.rule_effects(&query.into())?)))
    }

    /// Sets (replacing) the handler that receives `Emit` events; `None`
    /// removes it. Without a handler, emitted events are only recorded in
    /// `rule_effects`. The handler is shared by every handle on this
    /// database.
    pub fn set_rule_event_handler(
        &self,
        handler: Option<Arc<dyn RuleEventHandler>>,
    ) -> Result<(), CrmError> {
        guard(|| {
            self.inner.set_rule_event_handler(
                handler.map(|h| Arc::new(ForwardRuleEvents(h)) as Arc<dyn CoreRuleEventHandler>),
            );
            Ok(())
        })
    }

    // ----- teams -------------------------------------------------------------------

    /// Creates or replaces an assignment team. A team without members
    /// (`Validation` on `members`), or with a member twice, is refused.
    pub fn set_team(&self, team: Team) -> Result<Team, CrmError> {
        guard(|| Ok(self.inner.set_team(&team.into())?.into()))
    }

    /// The team called `name`, or `NotFound`.
    pub fn team(&self, name: String) -> Result<Team, CrmError> {
        guard(|| Ok(self.inner.team(&name)?.into()))
    }

    /// Every team, by name.
    pub fn teams(&self) -> Result<Vec<Team>, CrmError> {
        guard(|| Ok(list(self.inner.teams()?)))
    }

    /// Marks a member out of office (skipped by assignments) or back.
    pub fn set_member_out(
        &self,
        team: String,
        member: String,
        out: bool,
    ) -> Result<Team, CrmError> {
        guard(|| Ok(self.inner.set_member_out(&team, &member, out)?.into()))
    }

    /// Deletes a team; `Conflict` while a rule assigns from it.
    pub fn delete_team(&self, name: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_team(&name)?))
    }
}
