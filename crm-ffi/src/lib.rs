//! Kotlin and Swift bindings (uniffi) for the embeddable CRM engine.
//!
//! A thin layer: every method converts its arguments, calls the same method
//! of [`crm_core::Crm`] and converts the result back. Rules, validation and
//! queries all live in crm-core, so Kotlin, Swift, Python and Rust behave
//! alike. Each exported body runs inside [`error::guard`], so a panic
//! reaches the host as `CrmError.Internal`, never as a crash.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crm_core::Crm as CoreCrm;
use crm_core::filter::Expr as FilterExpr;
use crm_core::import::{ImportProgress as CoreImportProgress, ProgressFn};
use crm_core::{Change as CoreChange, ChangeListener as CoreChangeListener, ListenerId};

mod analytics;
mod deals;
mod error;
mod insights;
mod lifecycle;
mod records;
mod rules;
#[cfg(feature = "arrow")]
mod tables;

pub use crate::analytics::*;
pub use crate::deals::*;
pub use crate::error::CrmError;
use crate::error::guard;
pub use crate::insights::*;
pub use crate::lifecycle::*;
pub use crate::records::*;
pub use crate::rules::*;
#[cfg(feature = "arrow")]
pub use crate::tables::*;

uniffi::setup_scaffolding!();

/// The schema version this library writes; a file with a newer one is
/// refused with `CrmError.IncompatibleDatabase`.
#[uniffi::export]
pub fn schema_version() -> u32 {
    crm_core::SCHEMA_VERSION
}

/// Parses a filter expression into its syntax tree, as JSON, without
/// checking names against a CRM's schema (`Crm.check_filter` does that).
/// A malformed expression is `Parse` with its position.
#[uniffi::export]
pub fn parse_filter(text: String) -> Result<String, CrmError> {
    guard(|| {
        let expr = crm_core::filter::parse(&text)?;
        serde_json::to_string(&expr).map_err(|_| CrmError::Internal {
            message: "a filter tree could not be written as JSON".into(),
        })
    })
}

/// The canonical text of a syntax tree given as JSON (as `parse_filter`
/// writes it). JSON that is not such a tree is `Parse`, with the line and
/// column in the JSON; a tree that is not a valid expression (an `and` of
/// nothing, nesting too deep) is `Parse` at line and column 0.
#[uniffi::export]
pub fn format_filter(json: String) -> Result<String, CrmError> {
    guard(|| {
        let expr: FilterExpr = serde_json::from_str(&json).map_err(json_error)?;
        let text = expr.to_string();
        // Canonical text parses back to the same tree, so crm-core's parser
        // is the check that the tree is one it could have written.
        crm_core::filter::parse(&text).map_err(|err| match CrmError::from(err) {
            CrmError::Parse {
                reason, suggestion, ..
            } => CrmError::Parse {
                line: 0,
                column: 0,
                reason,
                suggestion,
            },
            other => other,
        })?;
        Ok(text)
    })
}

/// JSON that is not a filter tree. The message says what kind of mistake
/// and the position where, but not serde's text, which can quote values
/// of the input (and error messages never carry data).
fn json_error(err: serde_json::Error) -> CrmError {
    use serde_json::error::Category;
    let reason = match err.classify() {
        Category::Syntax | Category::Io => "not valid JSON",
        Category::Eof => "the JSON ends too early",
        Category::Data => "the JSON is not a filter tree as parse_filter writes it",
    };
    CrmError::Parse {
        line: u32::try_from(err.line()).unwrap_or(u32::MAX),
        column: u32::try_from(err.column()).unwrap_or(u32::MAX),
        reason: reason.into(),
        suggestion: None,
    }
}

/// Receives the progress of an import, implemented by the host app.
///
/// Called on the importing thread every `ImportOptions.progress_every` rows
/// and once at the end. Progress is advisory: an exception thrown by the
/// listener is ignored and the import goes on. Don't call the same CRM from
/// the listener: the import holds its write lock.
#[uniffi::export(foreign)]
pub trait ImportProgressListener: Send + Sync {
    /// How far the import has come.
    fn on_progress(&self, progress: ImportProgress) -> Result<(), CrmError>;
}

/// Runs `import` with crm-core's progress callback forwarding to the host's
/// listener, if there is one.
fn with_listener<T>(
    listener: Option<Arc<dyn ImportProgressListener>>,
    import: impl FnOnce(Option<ProgressFn<'_>>) -> T,
) -> T {
    match listener {
        None => import(None),
        Some(listener) => {
            let mut forward = |p: &CoreImportProgress| {
                // Ignored on purpose: a failing listener must not fail (or
                // half-apply) an import it only observes.
                let _ = listener.on_progress(ImportProgress::from(*p));
            };
            import(Some(&mut forward))
        }
    }
}

/// Told about every committed write, implemented by the host app: a UI
/// list refreshes, a sync worker wakes up. Register it with
/// `Crm.add_change_listener`.
///
/// Called on the thread that wrote, right after the commit and with no
/// lock held (it may read or write the CRM, though a UI should post to its
/// main thread and return), with that write's change-log entries in order,
/// in batches of at most 1,000. Keep it short: the writing call returns only
/// after every listener has run. An exception (Kotlin) or error (Swift) it
/// throws is ignored: the write stands and the other listeners still run.
#[uniffi::export(foreign)]
pub trait ChangeListener: Send + Sync {
    /// `changes` were committed.
    fn on_changes(&self, changes: Vec<Change>) -> Result<(), CrmError>;
}

/// crm-core's listener, forwarding to the host's.
struct ForwardChanges(Arc<dyn ChangeListener>);

impl CoreChangeListener for ForwardChanges {
    fn on_changes(&self, changes: &[CoreChange]) {
        let changes = changes.iter().cloned().map(Change::from).collect();
        // Ignored on purpose: a listener only observes a committed write.
        // (Fallible, so that what the host throws arrives here as an `Err`
        // rather than as a panic in the generated code.)
        let _ = self.0.on_changes(changes);
    }
}

/// The listeners registered through one database's handles (a handle and
/// those made from it by `with_actor`), so that closing the database
/// unregisters them; `None` once it is closed.
type Registered = Arc<Mutex<Option<Vec<ListenerId>>>>;

fn registered(r: &Registered) -> MutexGuard<'_, Option<Vec<ListenerId>>> {
    r.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_file(path: &str) -> Result<File, CrmError> {
    Ok(File::open(path)?)
}

/// A handle on one CRM database (a file, or private and in memory).
///
/// Thread-safe: share one handle between threads. Writes are serialized;
/// reads of a file database run beside them, each on its own connection.
#[derive(uniffi::Object)]
pub struct Crm {
    inner: CoreCrm,
    listeners: Registered,
}

impl Crm {
    fn wrap(inner: CoreCrm) -> Arc<Crm> {
        Arc::new(Crm {
            inner,
            listeners: Arc::new(Mutex::new(Some(Vec::new()))),
        })
    }
}

#[uniffi::export]
impl Crm {
    /// Opens (creating if needed) the CRM database file at `path`.
    ///
    /// A file written by a newer version fails with `IncompatibleDatabase`,
    /// a file that is not a CRM database with `Corrupt`; neither is changed.
    #[uniffi::constructor(default(options))]
    pub fn open(path: String, options: OpenOptions) -> Result<Arc<Crm>, CrmError> {
        guard(|| {
            Ok(Crm::wrap(CoreCrm::open_with(
                Some(Path::new(&path)),
                options.into(),
            )?))
        })
    }

    /// Opens a private in-memory CRM, gone when the last handle is dropped.
    #[uniffi::constructor(default(options))]
    pub fn open_in_memory(options: OpenOptions) -> Result<Arc<Crm>, CrmError> {
        guard(|| Ok(Crm::wrap(CoreCrm::open_with(None, options.into())?)))
    }

    /// A handle on the same database whose changes are logged as made by
    /// `actor` through `source`.
    #[uniffi::method(default(source = None))]
    pub fn with_actor(&self, actor: String, source: Option<String>) -> Result<Arc<Crm>, CrmError> {
        guard(|| {
            Ok(Arc::new(Crm {
                inner: self.inner.with_actor(actor, source.as_deref()),
                listeners: self.listeners.clone(),
            }))
        })
    }

    /// Closes the database for every handle on it (including those made by
    /// `with_actor`) and unregisters its change listeners; later calls fail
    /// with `Closed`. Kotlin names it `closeDatabase()`, since `close()`
    /// there is `AutoCloseable.close`, which releases only this handle.
    pub fn close(&self) -> Result<(), CrmError> {
        guard(|| {
            if let Some(ids) = registered(&self.listeners).take() {
                for id in ids {
                    self.inner.remove_change_listener(id);
                }
            }
            Ok(self.inner.close()?)
        })
    }

    // ----- change listeners --------------------------------------------------

    /// Registers a listener told about every write committed through this
    /// database's handles (this one and those from `with_actor`; not other
    /// processes, nor another `open` of the same file). Returns the id that
    /// unregisters it. The listener is held until it is removed or the
    /// database is closed.
    pub fn add_change_listener(&self, listener: Arc<dyn ChangeListener>) -> Result<u64, CrmError> {
        guard(|| {
            let mut registered = registered(&self.listeners);
            let ids = registered.as_mut().ok_or(CrmError::Closed)?;
            let id = self
                .inner
                .add_change_listener(Arc::new(ForwardChanges(listener)));
            ids.push(id);
            Ok(id.0)
        })
    }

    /// Unregisters a listener; returns whether it was registered (`false`
    /// for an unknown id, a second removal, or after the database was
    /// closed, which removed them all). A batch being delivered while it is
    /// removed may still reach it.
    pub fn remove_change_listener(&self, id: u64) -> Result<bool, CrmError> {
        guard(|| {
            let mut registered = registered(&self.listeners);
            let Some(ids) = registered.as_mut() else {
                return Ok(false);
            };
            // Only ids registered here: another database numbers its
            // listeners from 1 too.
            let Some(at) = ids.iter().position(|i| i.0 == id) else {
                return Ok(false);
            };
            Ok(self.inner.remove_change_listener(ids.swap_remove(at)))
        })
    }

    // ----- customers ---------------------------------------------------------

    /// Validates, normalizes and stores a new customer.
    pub fn create_customer(&self, customer: NewCustomer) -> Result<Customer, CrmError> {
        guard(|| Ok(self.inner.create_customer(customer.try_into()?)?.into()))
    }

    /// The customer with `id`, or `NotFound`.
    pub fn get_customer(&self, id: String) -> Result<Customer, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .get_customer(customer_id_in("customer_id", &id)?)?
                .into())
        })
    }

    /// The customer with this external id, if any.
    pub fn find_customer_by_external_id(
        &self,
        external_id: String,
    ) -> Result<Option<Customer>, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .find_customer_by_external_id(&external_id)?
                .map(Into::into))
        })
    }

    /// The customer who has this email (compared after normalization), if
    /// any.
    pub fn find_customer_by_email(&self, email: String) -> Result<Option<Customer>, CrmError> {
        guard(|| Ok(self.inner.find_customer_by_email(&email)?.map(Into::into)))
    }

    /// Applies a partial update and returns the customer as stored.
    pub fn update_customer(&self, id: String, patch: CustomerPatch) -> Result<Customer, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            Ok(self.inner.update_customer(id, &patch.try_into()?)?.into())
        })
    }

    /// Deletes a customer with their interactions and consent records.
    pub fn delete_customer(&self, id: String) -> Result<(), CrmError> {
        guard(|| {
            Ok(self
                .inner
                .delete_customer(customer_id_in("customer_id", &id)?)?)
        })
    }

    /// Creates the customer, or updates the one it matches (by external id,
    /// else by email).
    pub fn upsert_customer(&self, customer: NewCustomer) -> Result<Upserted, CrmError> {
        guard(|| Ok(self.inner.upsert_customer(customer.try_into()?)?.into()))
    }

    /// One page of customers; pass `next_cursor` back for the next one.
    #[uniffi::method(default(query))]
    pub fn list_customers(&self, query: ListCustomers) -> Result<CustomerPage, CrmError> {
        guard(|| Ok(self.inner.list_customers(&query.into())?.into()))
    }

    /// One page of customers as small list rows, each with its latest
    /// interaction: what a list screen shows, in one call and one read.
    /// Pages like `list_customers` (same query, same cursors).
    #[uniffi::method(default(query))]
    pub fn list_customer_cards(&self, query: ListCustomers) -> Result<CustomerCardPage, CrmError> {
        guard(|| Ok(self.inner.list_customer_cards(&query.into())?.into()))
    }

    /// How many customers there are.
    pub fn count_customers(&self) -> Result<u64, CrmError> {
        guard(|| Ok(self.inner.count_customers()?))
    }

    /// Declares the type of a custom attribute before first use.
    pub fn define_attribute(
        &self,
        key: String,
        attribute_type: AttributeType,
    ) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.define_attribute(&key, attribute_type.into())?))
    }

    /// Every custom attribute key with its type.
    pub fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .attribute_definitions()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    // ----- interactions ------------------------------------------------------

    /// Logs an interaction on a customer's timeline.
    pub fn log_interaction(&self, interaction: NewInteraction) -> Result<Interaction, CrmError> {
        guard(|| Ok(self.inner.log_interaction(interaction.try_into()?)?.into()))
    }

    /// The interaction with `id`, or `NotFound`.
    pub fn get_interaction(&self, id: String) -> Result<Interaction, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .get_interaction(interaction_id_in("interaction_id", &id)?)?
                .into())
        })
    }

    /// A customer's timeline, newest first, one page at a time.
    #[uniffi::method(default(query))]
    pub fn timeline(
        &self,
        customer_id: String,
        query: TimelineQuery,
    ) -> Result<InteractionPage, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self.inner.timeline(id, &query.try_into()?)?.into())
        })
    }

    /// How many interactions there are.
    pub fn count_interactions(&self) -> Result<u64, CrmError> {
        guard(|| Ok(self.inner.count_interactions()?))
    }

    // ----- consent -----------------------------------------------------------

    /// Appends a consent answer to the customer's ledger.
    pub fn record_consent(
        &self,
        customer_id: String,
        consent: NewConsent,
    ) -> Result<ConsentRecord, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self.inner.record_consent(id, &consent.try_into()?)?.into())
        })
    }

    /// The record that currently answers for `purpose` on `channel` (`None`:
    /// records that cover every channel), if any.
    #[uniffi::method(default(channel = None))]
    pub fn consent(
        &self,
        customer_id: String,
        purpose: String,
        channel: Option<String>,
    ) -> Result<Option<ConsentRecord>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self
                .inner
                .consent(id, &purpose, channel.as_deref())?
                .map(Into::into))
        })
    }

    /// Whether the customer's most recent answer for `purpose` on `channel`
    /// is `Granted`. No answer means no.
    #[uniffi::method(default(channel = None))]
    pub fn has_consent(
        &self,
        customer_id: String,
        purpose: String,
        channel: Option<String>,
    ) -> Result<bool, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self.inner.has_consent(id, &purpose, channel.as_deref())?)
        })
    }

    /// The customer's consent ledger, newest first, for one purpose or all.
    #[uniffi::method(default(purpose = None))]
    pub fn consent_history(
        &self,
        customer_id: String,
        purpose: Option<String>,
    ) -> Result<Vec<ConsentRecord>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self
                .inner
                .consent_history(id, purpose.as_deref())?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    // ----- search and change log ---------------------------------------------

    /// Full-text search over names, emails, phones, organizations and
    /// interaction subjects; at most `limit` (1–10,000) hits.
    pub fn search(&self, query: String, limit: u32) -> Result<Vec<SearchHit>, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .search(&query, limit)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Change-log entries after `after_seq` (0 for the start), oldest first.
    pub fn changes_since(&self, after_seq: i64, limit: u32) -> Result<Vec<Change>, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .changes_since(after_seq, limit)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Every change-log entry of one customer, oldest first.
    pub fn customer_history(&self, id: String) -> Result<Vec<Change>, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &id)?;
            Ok(self
                .inner
                .customer_history(id)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    // ----- filters -----------------------------------------------------------

    /// Checks an expression against this CRM's schema (fields, attributes,
    /// segments, types) and returns its canonical text. A mistake is
    /// `Parse`, with its position and, for a misspelled name, a suggestion.
    pub fn check_filter(&self, filter: String) -> Result<String, CrmError> {
        guard(|| Ok(self.inner.check_filter(&filter)?))
    }

    /// How many customers match the expression.
    pub fn count_matching(&self, filter: String) -> Result<u64, CrmError> {
        guard(|| Ok(self.inner.count_matching(&filter)?))
    }

    /// One page of the customers who match, in creation order; pass
    /// `next_cursor` back as `cursor` for the next one. `limit` (1–10,000)
    /// defaults to crm-core's page size.
    #[uniffi::method(default(limit = None, cursor = None))]
    pub fn find_matching(
        &self,
        filter: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<CustomerPage, CrmError> {
        guard(|| {
            let query = members_query(limit, cursor);
            Ok(self.inner.find_matching(&filter, &query)?.into())
        })
    }

    /// Whether one customer matches; reads only that customer's rows.
    pub fn customer_matches(&self, customer_id: String, filter: String) -> Result<bool, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self.inner.customer_matches(id, &filter)?)
        })
    }

    /// The SQL an expression runs as and SQLite's plan for it, for finding
    /// out why a segment is slow.
    pub fn explain(&self, filter: String) -> Result<Explain, CrmError> {
        guard(|| Ok(self.inner.explain(&filter)?.into()))
    }

    // ----- segments ----------------------------------------------------------

    /// Creates a segment: dynamic (whoever matches `filter`, which is
    /// checked first) or, without a filter, static (empty until customers
    /// are added). A name already taken is `Conflict`.
    #[uniffi::method(default(filter = None, description = None))]
    pub fn create_segment(
        &self,
        name: String,
        filter: Option<String>,
        description: Option<String>,
    ) -> Result<Segment, CrmError> {
        guard(|| {
            let new = new_segment(name, filter, description);
            Ok(self.inner.create_segment(&new)?.into())
        })
    }

    /// The segment named `name`, or `NotFound`.
    pub fn segment(&self, name: String) -> Result<Segment, CrmError> {
        guard(|| Ok(self.inner.segment(&name)?.into()))
    }

    /// Every segment, by name.
    pub fn segments(&self) -> Result<Vec<Segment>, CrmError> {
        guard(|| Ok(self.inner.segments()?.into_iter().map(Into::into).collect()))
    }

    /// Renames a segment; the expressions of segments that use it are
    /// rewritten to the new name.
    pub fn rename_segment(&self, name: String, new_name: String) -> Result<Segment, CrmError> {
        guard(|| Ok(self.inner.rename_segment(&name, &new_name)?.into()))
    }

    /// Changes a segment's expression (dynamic segments only) or
    /// description; what is left `None` stays. `clear_description` removes
    /// the description (and wins over a `description` in the same call).
    #[uniffi::method(default(filter = None, description = None, clear_description = false))]
    pub fn update_segment(
        &self,
        name: String,
        filter: Option<String>,
        description: Option<String>,
        clear_description: bool,
    ) -> Result<Segment, CrmError> {
        guard(|| {
            let patch = segment_patch(filter, description, clear_description);
            Ok(self.inner.update_segment(&name, &patch)?.into())
        })
    }

    /// Deletes a segment. One that other segments use is refused with
    /// `Conflict`.
    pub fn delete_segment(&self, name: String) -> Result<(), CrmError> {
        guard(|| Ok(self.inner.delete_segment(&name)?))
    }

    /// Adds customers to a static segment; returns how many were not
    /// members yet. An unknown customer fails the whole call and adds no
    /// one.
    pub fn add_to_segment(&self, name: String, customer_ids: Vec<String>) -> Result<u64, CrmError> {
        guard(|| {
            let ids = customer_ids_in("customer_ids", &customer_ids)?;
            Ok(self.inner.add_to_segment(&name, &ids)?)
        })
    }

    /// Removes customers from a static segment; returns how many were
    /// members.
    pub fn remove_from_segment(
        &self,
        name: String,
        customer_ids: Vec<String>,
    ) -> Result<u64, CrmError> {
        guard(|| {
            let ids = customer_ids_in("customer_ids", &customer_ids)?;
            Ok(self.inner.remove_from_segment(&name, &ids)?)
        })
    }

    /// How many members a segment has now (a dynamic segment is evaluated).
    pub fn segment_count(&self, name: String) -> Result<u64, CrmError> {
        guard(|| Ok(self.inner.segment_count(&name)?))
    }

    /// One page of a segment's members, in creation order; pass
    /// `next_cursor` back as `cursor` for the next one. A dynamic segment is
    /// evaluated for each page.
    #[uniffi::method(default(limit = None, cursor = None))]
    pub fn segment_members(
        &self,
        name: String,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Result<CustomerPage, CrmError> {
        guard(|| {
            let query = members_query(limit, cursor);
            Ok(self.inner.segment_members(&name, &query)?.into())
        })
    }

    /// Whether a customer is a member of a segment now; reads only that
    /// customer's rows.
    pub fn segment_contains(&self, name: String, customer_id: String) -> Result<bool, CrmError> {
        guard(|| {
            let id = customer_id_in("customer_id", &customer_id)?;
            Ok(self.inner.segment_contains(&name, id)?)
        })
    }

    /// Evaluates a dynamic segment and stores its membership; every
    /// customer who entered or left since the last materialization gets a
    /// change-log entry (`EntityKind.SegmentMember`).
    pub fn materialize_segment(&self, name: String) -> Result<MaterializeReport, CrmError> {
        guard(|| Ok(self.inner.materialize_segment(&name)?.into()))
    }

    // ----- import ------------------------------------------------------------

    /// Imports customers given as records; rows are numbered from 1.
    #[uniffi::method(default(options), default(listener = None))]
    pub fn import_customers(
        &self,
        customers: Vec<NewCustomer>,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let records = customers.iter().map(NewCustomer::to_import_record);
            let options = options.into();
            Ok(with_listener(listener, |p| {
                self.inner.import_customer_records(records, &options, p)
            })?
            .into())
        })
    }

    /// Imports customers from a CSV file with a header row.
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_customers_csv(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = open_file(&path)?;
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner.import_customers_csv(file, &mapping, &options, p)
            })?
            .into())
        })
    }

    /// Imports customers from an NDJSON file (one object per line).
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_customers_ndjson(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = BufReader::new(open_file(&path)?);
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner
                    .import_customers_ndjson(file, &mapping, &options, p)
            })?
            .into())
        })
    }

    /// Imports interactions given as records; rows are numbered from 1.
    #[uniffi::method(default(options), default(listener = None))]
    pub fn import_interactions(
        &self,
        interactions: Vec<NewInteraction>,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let records = interactions.iter().map(NewInteraction::to_import_record);
            let options = options.into();
            Ok(with_listener(listener, |p| {
                self.inner.import_interaction_records(records, &options, p)
            })?
            .into())
        })
    }

    /// Imports interactions from a CSV file with a header row.
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_interactions_csv(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = open_file(&path)?;
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner
                    .import_interactions_csv(file, &mapping, &options, p)
            })?
            .into())
        })
    }

    /// Imports interactions from an NDJSON file (one object per line).
    #[uniffi::method(default(mapping), default(options), default(listener = None))]
    pub fn import_interactions_ndjson(
        &self,
        path: String,
        mapping: ColumnMapping,
        options: ImportOptions,
        listener: Option<Arc<dyn ImportProgressListener>>,
    ) -> Result<ImportReport, CrmError> {
        guard(|| {
            let file = BufReader::new(open_file(&path)?);
            let (mapping, options) = (mapping.into(), options.into());
            Ok(with_listener(listener, |p| {
                self.inner
                    .import_interactions_ndjson(file, &mapping, &options, p)
            })?
            .into())
        })
    }

    // ----- export ------------------------------------------------------------

    /// Writes every customer to the file at `path` (created or truncated),
    /// in creation order; returns how many.
    pub fn export_customers(&self, path: String, format: ExportFormat) -> Result<u64, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .export_customers(File::create(&path)?, format.into())?)
        })
    }

    /// Writes every interaction to the file at `path` (created or
    /// truncated), in the order they were logged; returns how many.
    pub fn export_interactions(&self, path: String, format: ExportFormat) -> Result<u64, CrmError> {
        guard(|| {
            Ok(self
                .inner
                .export_interactions(File::create(&path)?, format.into())?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn crm() -> Arc<Crm> {
        Crm::open_in_memory(OpenOptions::default()).unwrap()
    }

    fn ana() -> NewCustomer {
        NewCustomer {
            first_name: Some("Ana".into()),
            last_name: Some("Novak".into()),
            emails: vec!["Ana@Example.com".into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_customer_round_trips_through_the_wrapper() {
        let crm = crm();
        let created = crm.create_customer(ana()).unwrap();
        assert_eq!(created.name, "Ana Novak");
        assert_eq!(created.emails, ["ana@example.com"]);
        let stored = crm.get_customer(created.id.clone()).unwrap();
        assert_eq!(stored.id, created.id);
        assert_eq!(stored.name, created.name);
        assert_eq!(
            crm.find_customer_by_email("ANA@example.com".into())
                .unwrap(),
            Some(stored)
        );
    }

    #[test]
    fn a_closed_handle_and_every_clone_report_closed() {
        let crm = crm();
        let as_maja = crm.with_actor("maja".into(), None).unwrap();
        crm.close().unwrap();
        assert_eq!(crm.count_customers(), Err(CrmError::Closed));
        assert_eq!(as_maja.count_customers(), Err(CrmError::Closed));
    }

    struct Recorder(Mutex<Vec<ImportProgress>>);

    impl ImportProgressListener for Recorder {
        fn on_progress(&self, progress: ImportProgress) -> Result<(), CrmError> {
            self.0.lock().unwrap().push(progress);
            Err(CrmError::Internal {
                message: "a listener that fails".into(),
            })
        }
    }

    #[test]
    fn a_failing_listener_sees_progress_and_does_not_stop_the_import() {
        let crm = crm();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        let people = (0..5)
            .map(|i| NewCustomer {
                name: Some(format!("P{i}")),
                ..Default::default()
            })
            .collect();
        let options = ImportOptions {
            progress_every: Some(2),
            ..Default::default()
        };
        let report = crm
            .import_customers(people, options, Some(recorder.clone()))
            .unwrap();
        assert_eq!(report.inserted, 5);
        let seen = recorder.0.lock().unwrap();
        assert_eq!(seen.iter().map(|p| p.rows).collect::<Vec<_>>(), [2, 4, 5]);
    }

    struct Panicking;

    impl ImportProgressListener for Panicking {
        fn on_progress(&self, _: ImportProgress) -> Result<(), CrmError> {
            panic!("a bug inside a write");
        }
    }

    #[test]
    fn a_panic_inside_a_write_is_internal_rolls_back_and_leaves_the_handle_usable() {
        let crm = crm();
        let changes = Changes::new(false);
        crm.add_change_listener(changes.clone()).unwrap();
        let people = (0..3)
            .map(|i| NewCustomer {
                name: Some(format!("P{i}")),
                ..Default::default()
            })
            .collect();
        let options = ImportOptions {
            progress_every: Some(1),
            ..Default::default()
        };
        let err = crm
            .import_customers(people, options, Some(Arc::new(Panicking)))
            .unwrap_err();
        assert_eq!(
            err,
            CrmError::Internal {
                message: "panic in the CRM library (a bug inside a write)".into()
            }
        );
        assert_eq!(crm.count_customers(), Ok(0));
        assert!(changes.ops().is_empty());
        crm.create_customer(ana()).unwrap();
        assert_eq!(crm.count_customers(), Ok(1));
        assert_eq!(changes.ops().len(), 1);
    }

    #[test]
    fn a_bad_element_of_a_list_import_is_a_numbered_row_error() {
        let crm = crm();
        let rows = vec![
            ana(),
            NewCustomer {
                name: Some("Bad".into()),
                birth_date: Some("31.12.1990".into()),
                ..Default::default()
            },
        ];
        let err = crm
            .import_customers(rows.clone(), ImportOptions::default(), None)
            .unwrap_err();
        assert!(
            matches!(err, CrmError::InvalidRow { row: 2, ref field, .. } if field == "birth_date"),
            "{err:?}"
        );
        assert_eq!(crm.count_customers(), Ok(0));

        let skip = ImportOptions {
            mode: Some(ImportMode::SkipInvalid),
            ..Default::default()
        };
        let report = crm.import_customers(rows, skip, None).unwrap();
        assert_eq!((report.inserted, report.rejected), (1, 1));
        assert_eq!(report.errors[0].row, 2);
    }

    #[test]
    fn a_parse_error_crosses_with_its_position_and_suggestion() {
        let err = crm().count_matching(r#"contry = "SI""#.into()).unwrap_err();
        assert_eq!(
            err,
            CrmError::Parse {
                line: 1,
                column: 1,
                reason: "unknown field 'contry'".into(),
                suggestion: Some("country".into()),
            }
        );
    }

    #[test]
    fn filters_round_trip_through_json() {
        let json = parse_filter(r#"country="SI"  AND "vip" in tags"#.into()).unwrap();
        assert_eq!(
            format_filter(json).unwrap(),
            r#"country = "SI" and "vip" in tags"#
        );
        for bad in ["{", "[1]", r#"{"and": []}"#] {
            let err = format_filter(bad.into()).unwrap_err();
            assert!(matches!(err, CrmError::Parse { .. }), "{bad}: {err:?}");
        }
        let err = format_filter(r#"{"and": []}"#.into()).unwrap_err();
        assert!(
            matches!(
                err,
                CrmError::Parse {
                    line: 0,
                    column: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn segments_are_created_counted_and_updated_through_the_wrapper() {
        let crm = crm();
        let ana = crm.create_customer(ana()).unwrap();
        let vips = crm
            .create_segment(
                "vips".into(),
                Some("\"ana@example.com\" in emails".into()),
                Some("Best".into()),
            )
            .unwrap();
        assert_eq!(vips.kind, SegmentKind::Dynamic);
        assert_eq!(vips.description.as_deref(), Some("Best"));
        assert_eq!(vips.evaluated_at, None);
        assert_eq!(crm.segment_count("vips".into()), Ok(1));
        assert_eq!(
            crm.segment_contains("vips".into(), ana.id.clone()),
            Ok(true)
        );
        let cleared = crm
            .update_segment("vips".into(), None, Some("ignored".into()), true)
            .unwrap();
        assert_eq!(cleared.description, None);
        let list = crm.create_segment("list".into(), None, None).unwrap();
        assert_eq!(list.kind, SegmentKind::Static);
        let err = crm
            .add_to_segment("list".into(), vec![ana.id.clone(), "nope".into()])
            .unwrap_err();
        assert!(
            matches!(err, CrmError::Validation { ref field, .. } if field == "customer_ids[1]"),
            "{err:?}"
        );
        assert_eq!(crm.add_to_segment("list".into(), vec![ana.id]), Ok(1));
        assert_eq!(
            crm.segment_members("list".into(), None, None)
                .unwrap()
                .items
                .len(),
            1
        );
    }

    /// Records what it is told; fails every call when `fail` is set.
    struct Changes {
        seen: Mutex<Vec<Change>>,
        fail: bool,
    }

    impl Changes {
        fn new(fail: bool) -> Arc<Changes> {
            Arc::new(Changes {
                seen: Mutex::new(Vec::new()),
                fail,
            })
        }

        fn ops(&self) -> Vec<(EntityKind, String, ChangeOp)> {
            let seen = self.seen.lock().unwrap();
            seen.iter()
                .map(|c| (c.entity, c.entity_id.clone(), c.op))
                .collect()
        }
    }

    impl ChangeListener for Changes {
        fn on_changes(&self, changes: Vec<Change>) -> Result<(), CrmError> {
            self.seen.lock().unwrap().extend(changes);
            if self.fail {
                return Err(CrmError::Internal {
                    message: "a listener that fails".into(),
                });
            }
            Ok(())
        }
    }

    #[test]
    fn listeners_are_told_what_changed_until_removed_and_a_failing_one_changes_nothing() {
        let crm = crm();
        let (good, failing) = (Changes::new(false), Changes::new(true));
        let id = crm.add_change_listener(good.clone()).unwrap();
        crm.add_change_listener(failing.clone()).unwrap();
        let created = crm.create_customer(ana()).unwrap();
        crm.delete_customer(created.id.clone()).unwrap();
        let expected = vec![
            (EntityKind::Customer, created.id.clone(), ChangeOp::Created),
            (EntityKind::Customer, created.id, ChangeOp::Deleted),
        ];
        assert_eq!(good.ops(), expected);
        assert_eq!(failing.ops(), expected);
        assert_eq!(crm.count_customers(), Ok(0));

        assert_eq!(crm.remove_change_listener(id), Ok(true));
        assert_eq!(crm.remove_change_listener(id), Ok(false));
        crm.create_customer(ana()).unwrap();
        assert_eq!(good.ops().len(), 2);
        assert_eq!(failing.ops().len(), 3);
    }

    #[test]
    fn closing_unregisters_listeners_and_refuses_new_ones() {
        let crm = crm();
        let as_maja = crm.with_actor("maja".into(), None).unwrap();
        let changes = Changes::new(false);
        let id = as_maja.add_change_listener(changes.clone()).unwrap();
        crm.create_customer(ana()).unwrap();
        assert_eq!(changes.ops().len(), 1);
        crm.close().unwrap();
        // The database holds no listener any more (it could keep a host
        // object, and with it this handle, alive).
        assert_eq!(Arc::strong_count(&changes), 1);
        assert_eq!(as_maja.remove_change_listener(id), Ok(false));
        assert_eq!(
            as_maja.add_change_listener(changes.clone()),
            Err(CrmError::Closed)
        );
    }

    #[test]
    fn an_id_from_another_database_removes_nothing() {
        let (one, two) = (crm(), crm());
        let changes = Changes::new(false);
        let id = one.add_change_listener(changes.clone()).unwrap();
        two.add_change_listener(changes.clone()).unwrap();
        assert_eq!(two.remove_change_listener(id + 1), Ok(false));
        two.create_customer(ana()).unwrap();
        assert_eq!(changes.ops().len(), 1);
    }

    #[test]
    fn cards_carry_the_first_email_and_a_summary_of_the_latest_interaction() {
        let crm = crm();
        let ana = crm.create_customer(ana()).unwrap();
        crm.create_customer(NewCustomer {
            name: Some("Bo".into()),
            ..Default::default()
        })
        .unwrap();
        for (subject, days) in [("older", 2), ("newest", 1)] {
            let at = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400 * days);
            crm.log_interaction(NewInteraction {
                customer: CustomerRef::Id { id: ana.id.clone() },
                kind: InteractionKind::Call,
                channel: None,
                direction: None,
                occurred_at: Some(at),
                subject: Some(subject.into()),
                body: Some("long text".into()),
                amount_minor: None,
                currency: None,
                product: None,
                quantity: None,
                score: None,
                metadata: None,
            })
            .unwrap();
        }
        let page = crm
            .list_customer_cards(ListCustomers {
                limit: Some(1),
                ..Default::default()
            })
            .unwrap();
        let card = &page.items[0];
        assert_eq!(card.id, ana.id);
        assert_eq!(card.email.as_deref(), Some("ana@example.com"));
        let latest = card.latest_interaction.as_ref().unwrap();
        assert_eq!(latest.subject.as_deref(), Some("newest"));
        assert_eq!(latest.kind, InteractionKind::Call);
        let next = crm
            .list_customer_cards(ListCustomers {
                cursor: page.next_cursor,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next.items[0].name, "Bo");
        assert_eq!(next.items[0].latest_interaction, None);
        assert_eq!(next.next_cursor, None);
    }

    #[test]
    fn a_missing_import_file_is_an_io_error() {
        let err = crm()
            .import_customers_csv(
                "/no/such/file.csv".into(),
                ColumnMapping::default(),
                ImportOptions::default(),
                None,
            )
            .unwrap_err();
        assert!(matches!(err, CrmError::Io { .. }), "{err:?}");
    }
}
