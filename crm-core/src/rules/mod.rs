//! Rules: *trigger → condition → actions*, stored as data and run in the
//! transaction of the change that triggered them.

use rusqlite::Connection;

use crate::crm::Crm;
use crate::error::Result;

/// Something that happened inside a write transaction that rules may react
/// to.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    /// A deal moved from one stage of its pipeline to another.
    DealStageChanged {
        /// The deal's rowid.
        deal_rowid: i64,
        /// The stage it left.
        from: String,
        /// The stage it entered.
        to: String,
    },
}

/// Runs the enabled rules that `event` triggers, in `tx`.
pub(crate) fn fire(crm: &Crm, tx: &Connection, event: Event) -> Result<()> {
    let _ = (crm, tx, event);
    Ok(())
}
