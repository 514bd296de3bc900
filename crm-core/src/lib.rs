//! An embeddable CRM engine: customers (people and organizations), their
//! interactions, consent, search and a change log, in one SQLite file.
//!
//! Everything starts at [`Crm`]:
//!
//! ```
//! use crm_core::{Crm, InteractionKind, NewCustomer, NewInteraction, TimelineQuery};
//!
//! let crm = Crm::open_in_memory()?;
//! let ana = crm.create_customer(NewCustomer {
//!     first_name: Some("Ana".into()),
//!     last_name: Some("Novak".into()),
//!     emails: vec!["ana@example.com".into()],
//!     tags: vec!["VIP".into()],
//!     ..Default::default()
//! })?;
//! crm.log_interaction(NewInteraction {
//!     amount_minor: Some(12_990),
//!     currency: Some("EUR".into()),
//!     ..NewInteraction::new(ana.id, InteractionKind::Purchase)
//! })?;
//! let page = crm.timeline(ana.id, &TimelineQuery::default())?;
//! assert_eq!(page.items[0].amount_minor, Some(12_990));
//! assert_eq!(crm.search("novak", 10)?[0].customer.id, ana.id);
//! # Ok::<(), crm_core::Error>(())
//! ```
//!
//! The domain (types, validation, normalization) lives in [`model`] and never
//! touches SQL; storage lives in a private `db` module.

#![warn(missing_docs)]

pub mod analytics;
#[cfg(feature = "arrow")]
pub mod arrow;
mod crm;
mod db;
pub mod deals;
pub mod error;
pub mod export;
pub mod filter;
pub mod import;
pub mod insights;
pub mod lifecycle;
pub mod model;
pub mod page;
pub mod rules;
pub mod segment;
pub mod synth;

pub use crate::crm::{
    AttributeDefinition, Crm, CustomerCard, CustomerSort, ListCustomers, ListenerId, OpenOptions,
    SearchHit, SearchMatch, TimelineQuery, Upserted,
};
pub use crate::db::schema::SCHEMA_VERSION;
pub use crate::error::{Error, Result};
pub use crate::insights::{
    CohortQuery, CustomerScores, Period, Satisfaction, SatisfactionQuery, ScoreOptions, ScoreRun,
};
pub use crate::lifecycle::{
    FunnelStep, LifecycleConfig, LifecycleStage, StageCount, StageTime, StageTransition,
    TransitionCause,
};
pub use crate::model::change::{Change, ChangeContext, ChangeListener, ChangeOp, EntityKind};
pub use crate::model::consent::{ConsentRecord, ConsentStatus, LegalBasis, NewConsent};
pub use crate::model::customer::{
    Address, AttributeType, AttributeValue, Customer, CustomerKind, CustomerPatch, NewCustomer,
};
pub use crate::model::deal::{
    Deal, DealPatch, DealQuery, DealStageChange, DealStatus, Forecast, ForecastQuery,
    ForecastStage, NewDeal, NewPipeline, NewTask, Pipeline, PipelineStage, Priority, Task,
    TaskPatch, TaskQuery, TaskStatus,
};
pub use crate::model::ids::{
    ConsentId, CustomerId, DealId, InteractionId, PipelineId, SegmentId, TaskId,
};
pub use crate::model::interaction::{
    CustomerRef, Direction, Interaction, InteractionKind, NewInteraction,
};
pub use crate::model::normalize;
pub use crate::page::Page;
pub use crate::segment::{
    Explain, FilterRef, MaterializeReport, MembersQuery, NewSegment, Segment, SegmentKind,
    SegmentPatch,
};

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_handle_is_send_and_sync() {
        assert_send_sync::<crate::Crm>();
    }
}
