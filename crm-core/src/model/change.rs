//! The change log: one entry per mutation, the basis of audit, field history
//! and the change feed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What kind of entity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A customer.
    Customer,
    /// An interaction.
    Interaction,
    /// A consent record.
    Consent,
    /// A segment's definition (created, renamed, redefined, deleted).
    Segment,
    /// A customer entering (`created`) or leaving (`deleted`) a segment: the
    /// entry's id is the customer's and its `fields` hold the segment's
    /// name.
    SegmentMember,
    /// A sales pipeline's definition.
    Pipeline,
    /// A deal.
    Deal,
    /// A task.
    Task,
    /// A rule's definition (created, changed, enabled or disabled, deleted).
    Rule,
    /// An assignment team.
    Team,
    /// The lifecycle configuration (its id is all zeros).
    Settings,
}

impl EntityKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Customer => "customer",
            EntityKind::Interaction => "interaction",
            EntityKind::Consent => "consent",
            EntityKind::Segment => "segment",
            EntityKind::SegmentMember => "segment_member",
            EntityKind::Pipeline => "pipeline",
            EntityKind::Deal => "deal",
            EntityKind::Task => "task",
            EntityKind::Rule => "rule",
            EntityKind::Team => "team",
            EntityKind::Settings => "settings",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(EntityKind::Customer),
            "interaction" => Some(EntityKind::Interaction),
            "consent" => Some(EntityKind::Consent),
            "segment" => Some(EntityKind::Segment),
            "segment_member" => Some(EntityKind::SegmentMember),
            "pipeline" => Some(EntityKind::Pipeline),
            "deal" => Some(EntityKind::Deal),
            "task" => Some(EntityKind::Task),
            "rule" => Some(EntityKind::Rule),
            "team" => Some(EntityKind::Team),
            "settings" => Some(EntityKind::Settings),
            _ => None,
        }
    }
}

/// What happened to the entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// It was created.
    Created,
    /// Some fields changed.
    Updated,
    /// It was deleted.
    Deleted,
}

impl ChangeOp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Created => "created",
            ChangeOp::Updated => "updated",
            ChangeOp::Deleted => "deleted",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ChangeOp::Created),
            "updated" => Some(ChangeOp::Updated),
            "deleted" => Some(ChangeOp::Deleted),
            _ => None,
        }
    }
}

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Position in the log; strictly increasing, so a reader can resume after
    /// the last sequence number it saw.
    pub seq: i64,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// The kind of entity.
    pub entity: EntityKind,
    /// The entity's id (hyphenated UUID).
    pub entity_id: String,
    /// What happened.
    pub op: ChangeOp,
    /// For updates, the names of the fields that changed.
    pub fields: Vec<String>,
    /// Who made the change (see [`crate::Crm::with_actor`]).
    pub actor: Option<String>,
    /// Through what (an app, an import, a sync).
    pub source: Option<String>,
    /// The rule whose action made the change, if a rule made it.
    pub rule: Option<String>,
}

/// Who is making changes, recorded with each change-log entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeContext {
    /// The user or service.
    pub actor: Option<String>,
    /// The application or channel.
    pub source: Option<String>,
    /// The rule on whose behalf changes are made; set by the rules engine.
    pub rule: Option<String>,
    /// Whether the changes come from an import (recorded as the cause of
    /// lifecycle transitions).
    pub importing: bool,
}

/// Told about every committed write: a UI list refreshes, a sync worker
/// wakes up. Register with [`crate::Crm::add_change_listener`].
///
/// [`ChangeListener::on_changes`] runs on the thread that wrote, right after
/// the commit and with no lock held, so it may read or write the CRM; it is
/// given the write's change-log entries in order, in batches of at most
/// 1 000. A listener that panics is skipped for that batch; the write
/// stands. Writes that change nothing (a patch equal to the stored values)
/// notify no one. Any `Fn(&[Change])` closure is a listener.
pub trait ChangeListener: Send + Sync {
    /// `changes` were committed.
    fn on_changes(&self, changes: &[Change]);
}

impl<F: Fn(&[Change]) + Send + Sync> ChangeListener for F {
    fn on_changes(&self, changes: &[Change]) {
        self(changes)
    }
}
