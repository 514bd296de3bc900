//! The [`Crm`] handle: the public API over one database.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::db::{self, Database, customers::Position};
use crate::error::{Error, Result};
use crate::model::change::{Change, ChangeContext, ChangeListener};
use crate::model::consent::{ConsentRecord, NewConsent};
use crate::model::customer::{AttributeType, Customer, CustomerPatch, NewCustomer, Normalizer};
use crate::model::ids::{ConsentId, CustomerId, InteractionId};
use crate::model::interaction::{Interaction, InteractionKind, NewInteraction};
use crate::page::{self, Page};
use crate::rules::Event;

pub use crate::db::customers::CustomerSort;

/// How to open a CRM.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// ISO 3166 region for phone numbers written without a country code,
    /// e.g. `"SI"`; without it such numbers are rejected.
    pub default_region: Option<String>,
    /// How long a write waits for another process's lock before failing with
    /// [`Error::Busy`], in milliseconds.
    pub busy_timeout_ms: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            default_region: None,
            busy_timeout_ms: 5_000,
        }
    }
}

/// A handle on one CRM database.
///
/// Cheap to clone (clones share the connections) and `Send + Sync`: share it
/// between threads freely. Writes are serialized (SQLite has one writer);
/// reads of a file database run in parallel with them on pooled read-only
/// connections (WAL).
///
/// ```
/// use crm_core::{Crm, NewCustomer};
/// let crm = Crm::open_in_memory()?;
/// let ana = crm.create_customer(NewCustomer {
///     name: Some("Ana Novak".into()),
///     emails: vec!["Ana@Example.com".into()],
///     ..Default::default()
/// })?;
/// assert_eq!(ana.emails, ["ana@example.com"]);
/// assert_eq!(crm.get_customer(ana.id)?.name, "Ana Novak");
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Crm {
    pub(crate) db: Arc<Database>,
    pub(crate) normalizer: Arc<Normalizer>,
    pub(crate) context: ChangeContext,
    pub(crate) rules: Arc<crate::rules::RulesState>,
}

impl std::fmt::Debug for Crm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crm")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// What [`Crm::upsert_customer`] did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upserted {
    /// The customer as stored now.
    pub customer: Customer,
    /// `true` if a new customer was created, `false` if one was updated.
    pub created: bool,
}

/// Which customers to list, in what order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListCustomers {
    /// Sort key.
    pub sort: CustomerSort,
    /// Largest first.
    pub descending: bool,
    /// Page size (1–10,000).
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for ListCustomers {
    fn default() -> Self {
        ListCustomers {
            sort: CustomerSort::CreatedAt,
            descending: false,
            limit: 50,
            cursor: None,
        }
    }
}

/// Which part of a timeline to read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineQuery {
    /// Only interactions of this kind.
    pub kind: Option<InteractionKind>,
    /// Page size (1–10,000).
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for TimelineQuery {
    fn default() -> Self {
        TimelineQuery {
            kind: None,
            limit: 50,
            cursor: None,
        }
    }
}

/// Where a search matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum SearchMatch {
    /// The customer's own name, emails, phones or organization.
    Customer,
    /// The subject of one of the customer's interactions.
    Interaction {
        /// The interaction.
        interaction_id: InteractionId,
        /// Its subject.
        subject: String,
    },
}

/// A customer as one row of a list: the fields a list shows and the latest
/// interaction. See [`Crm::list_customer_cards`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomerCard {
    /// The customer's id.
    pub id: CustomerId,
    /// Person or organization.
    pub kind: crate::model::customer::CustomerKind,
    /// Display name.
    pub name: String,
    /// The first email, if any.
    pub email: Option<String>,
    /// The first phone, if any.
    pub phone: Option<String>,
    /// Lifecycle stage.
    pub lifecycle_stage: String,
    /// Owner.
    pub owner: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The most recent interaction (by when it happened), if any.
    pub latest_interaction: Option<Interaction>,
}

impl CustomerCard {
    fn new(c: Customer, latest_interaction: Option<Interaction>) -> Self {
        CustomerCard {
            id: c.id,
            kind: c.kind,
            email: c.emails.into_iter().next(),
            phone: c.phones.into_iter().next(),
            name: c.name,
            lifecycle_stage: c.lifecycle_stage,
            owner: c.owner,
            tags: c.tags,
            latest_interaction,
        }
    }
}

/// Identifies a registered [`ChangeListener`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ListenerId(pub u64);

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The customer found.
    pub customer: Customer,
    /// Relevance (higher is better; BM25).
    pub score: f64,
    /// What matched.
    pub matched: SearchMatch,
}

/// A custom attribute's declared type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeDefinition {
    /// The key, as used in `attributes`.
    pub key: String,
    /// Its type.
    pub attribute_type: AttributeType,
}

impl Crm {
    /// Opens (creating if needed) the CRM database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Crm> {
        Crm::open_with(Some(path.as_ref()), OpenOptions::default())
    }

    /// Opens a private in-memory CRM (gone when the last clone is dropped).
    pub fn open_in_memory() -> Result<Crm> {
        Crm::open_with(None, OpenOptions::default())
    }

    /// Opens a file (`Some(path)`) or in-memory (`None`) CRM with options.
    ///
    /// A database written by a newer version fails with
    /// [`Error::IncompatibleDatabase`]; a file that is not a CRM database with
    /// [`Error::Corrupt`]. Neither is modified.
    pub fn open_with(path: Option<&Path>, options: OpenOptions) -> Result<Crm> {
        let default_region = match options.default_region {
            Some(r) => {
                crate::model::normalize::phone_region(&r)
                    .map_err(|reason| Error::validation("default_region", reason))?;
                Some(r.trim().to_ascii_uppercase())
            }
            None => None,
        };
        if path.is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Error::validation("path", "is empty"));
        }
        let db = Database::open(path, options.busy_timeout_ms)?;
        Ok(Crm {
            db: Arc::new(db),
            normalizer: Arc::new(Normalizer { default_region }),
            context: ChangeContext::default(),
            rules: Arc::default(),
        })
    }

    /// A handle on the same database whose changes are logged as made by
    /// `actor` through `source`.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let as_maja = crm.with_actor("maja", Some("mobile-app"));
    /// let c = as_maja.create_customer(crm_core::NewCustomer { name: Some("Acme".into()), ..Default::default() })?;
    /// assert_eq!(crm.customer_history(c.id)?[0].actor.as_deref(), Some("maja"));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn with_actor(&self, actor: impl Into<String>, source: Option<&str>) -> Crm {
        Crm {
            context: ChangeContext {
                actor: Some(actor.into()),
                source: source.map(str::to_string),
                ..ChangeContext::default()
            },
            ..self.clone()
        }
    }

    /// Closes the database for every clone of this handle; later calls fail
    /// with [`Error::Closed`]. Dropping the last clone closes it too.
    pub fn close(&self) -> Result<()> {
        self.db.close()
    }

    /// The current time at the stored precision (microseconds), so that a
    /// value returned by a write equals the value read back.
    pub(crate) fn now() -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }

    // ----- customers -------------------------------------------------------

    /// Validates, normalizes and stores a new customer.
    pub fn create_customer(&self, new: NewCustomer) -> Result<Customer> {
        let mut customer = self.normalizer.new_customer(&new, Self::now())?;
        self.db.write(|tx| {
            let rowid = db::customers::insert(tx, &self.context, &mut customer, None)?;
            if crate::rules::fire(self, tx, Event::CustomerCreated { rowid })? {
                customer = db::customers::get_by_rowid(tx, rowid)?
                    .ok_or(Error::NotFound { entity: "customer" })?;
            }
            Ok(())
        })?;
        Ok(customer)
    }

    /// The customer with `id`, or [`Error::NotFound`].
    pub fn get_customer(&self, id: CustomerId) -> Result<Customer> {
        self.db
            .read(|conn| db::customers::get(conn, id))?
            .ok_or(Error::NotFound { entity: "customer" })
    }

    /// The customer with this external id, if any.
    pub fn find_customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        self.db.read(
            |conn| match db::customers::rowid_by_external_id(conn, external_id.trim())? {
                Some((rowid, _)) => db::customers::get_by_rowid(conn, rowid),
                None => Ok(None),
            },
        )
    }

    /// The customer who has this email (compared after normalization), if any.
    pub fn find_customer_by_email(&self, email: &str) -> Result<Option<Customer>> {
        let email =
            crate::model::normalize::email(email).map_err(|r| Error::validation("email", r))?;
        self.db
            .read(|conn| match db::customers::rowid_by_email(conn, &email)? {
                Some((rowid, _)) => db::customers::get_by_rowid(conn, rowid),
                None => Ok(None),
            })
    }

    /// Applies a partial update and returns the customer as stored. A patch
    /// that changes nothing writes nothing (no change-log entry).
    pub fn update_customer(&self, id: CustomerId, patch: &CustomerPatch) -> Result<Customer> {
        self.db.write(|tx| {
            let rowid =
                db::customers::rowid_of(tx, id)?.ok_or(Error::NotFound { entity: "customer" })?;
            let mut customer = db::customers::get_by_rowid(tx, rowid)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            let changed = self
                .normalizer
                .apply_patch(&mut customer, patch, Self::now())?;
            if !changed.is_empty() {
                db::customers::update(tx, &self.context, rowid, &mut customer, &changed)?;
                let fields = changed.iter().map(|f| f.to_string()).collect();
                if crate::rules::fire(self, tx, Event::CustomerUpdated { rowid, fields })? {
                    customer = db::customers::get_by_rowid(tx, rowid)?
                        .ok_or(Error::NotFound { entity: "customer" })?;
                }
            }
            Ok(customer)
        })
    }

    /// Deletes a customer with their interactions and consent records.
    pub fn delete_customer(&self, id: CustomerId) -> Result<()> {
        self.db
            .write(|tx| db::customers::delete(tx, &self.context, id, Self::now()))
    }

    /// Creates the customer, or updates the one it matches: first by external
    /// id, else by any of its emails.
    ///
    /// On update, fields given in `new` replace stored ones; emails, phones
    /// and tags are merged (stored ones first); attributes are merged key by
    /// key; addresses are replaced when given. If the external id and an
    /// email point at two different customers, nothing is written and
    /// [`Error::Conflict`] is returned.
    pub fn upsert_customer(&self, new: NewCustomer) -> Result<Upserted> {
        self.db.write(|tx| {
            let (mut done, rowid, changed) =
                upsert_tracked(tx, &self.normalizer, &self.context, &new)?;
            let event = if done.created {
                Some(Event::CustomerCreated { rowid })
            } else if !changed.is_empty() {
                Some(Event::CustomerUpdated {
                    rowid,
                    fields: changed.iter().map(|f| f.to_string()).collect(),
                })
            } else {
                None
            };
            if let Some(event) = event
                && crate::rules::fire(self, tx, event)?
            {
                done.customer = db::customers::get_by_rowid(tx, rowid)?
                    .ok_or(Error::NotFound { entity: "customer" })?;
            }
            Ok(done)
        })
    }

    /// One page of customers.
    pub fn list_customers(&self, query: &ListCustomers) -> Result<Page<Customer>> {
        let limit = page::check_limit(query.limit)?;
        let after: Option<Position> = query.cursor.as_deref().map(page::decode).transpose()?;
        let rows = self.db.read(|conn| {
            db::customers::list(
                conn,
                query.sort,
                query.descending,
                after.as_ref(),
                limit + 1,
            )
        })?;
        let rows = rows.into_iter().map(|(pos, _, c)| (pos, c)).collect();
        Ok(page::paginate(rows, limit))
    }

    /// One page of customers as small list rows with each one's latest
    /// interaction: what a list screen shows, in one call and one read.
    ///
    /// ```
    /// use crm_core::{Crm, InteractionKind, ListCustomers, NewCustomer, NewInteraction};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// let ana = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// crm.log_interaction(NewInteraction::new(ana.id, InteractionKind::Call))?;
    /// let page = crm.list_customer_cards(&ListCustomers::default())?;
    /// assert_eq!(page.items[0].name, "Ana");
    /// assert_eq!(page.items[0].latest_interaction.as_ref().unwrap().kind, InteractionKind::Call);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn list_customer_cards(&self, query: &ListCustomers) -> Result<Page<CustomerCard>> {
        let limit = page::check_limit(query.limit)?;
        let after: Option<Position> = query.cursor.as_deref().map(page::decode).transpose()?;
        let rows = self.db.read(|conn| {
            let rows = db::customers::list(
                conn,
                query.sort,
                query.descending,
                after.as_ref(),
                limit + 1,
            )?;
            rows.into_iter()
                .map(|(pos, rowid, c)| {
                    let latest = db::interactions::timeline(conn, rowid, c.id, None, None, 1)?
                        .pop()
                        .map(|(_, i)| i);
                    Ok((pos, CustomerCard::new(c, latest)))
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(page::paginate(rows, limit))
    }

    /// How many customers there are.
    pub fn count_customers(&self) -> Result<u64> {
        self.db.read(db::customers::count)
    }

    /// Declares the type of a custom attribute before first use (otherwise
    /// the first value stored under the key decides). Declaring an existing
    /// key with the same type is a no-op; with another type, a conflict.
    pub fn define_attribute(&self, key: &str, attribute_type: AttributeType) -> Result<()> {
        let key =
            crate::model::normalize::attribute_key(key).map_err(|r| Error::validation("key", r))?;
        self.db
            .write(|tx| match db::customers::attribute_type(tx, &key)? {
                Some(t) if t == attribute_type => Ok(()),
                Some(_) => Err(Error::conflict(
                    "key",
                    "the attribute is already defined with another type",
                )),
                None => db::customers::define_attribute(tx, &key, attribute_type, Self::now()),
            })
    }

    /// Every custom attribute key with its type.
    pub fn attribute_definitions(&self) -> Result<Vec<AttributeDefinition>> {
        Ok(self
            .db
            .read(db::customers::attribute_definitions)?
            .into_iter()
            .map(|(key, attribute_type)| AttributeDefinition {
                key,
                attribute_type,
            })
            .collect())
    }

    // ----- interactions ----------------------------------------------------

    /// Logs an interaction on a customer's timeline.
    pub fn log_interaction(&self, new: NewInteraction) -> Result<Interaction> {
        let now = Self::now();
        let valid = new.validate(now)?;
        let id = InteractionId::new();
        let customer_id = self.db.write(|tx| {
            let (rowid, customer_id) = db::interactions::resolve_customer(tx, &new.customer)?;
            db::interactions::insert(tx, &self.context, rowid, &valid, id, now, false)?;
            crate::rules::fire(
                self,
                tx,
                Event::InteractionLogged {
                    customer_rowid: rowid,
                    kind: valid.kind.clone(),
                },
            )?;
            Ok(customer_id)
        })?;
        Ok(Interaction {
            id,
            customer_id,
            kind: valid.kind,
            channel: valid.channel,
            direction: valid.direction,
            occurred_at: valid.occurred_at,
            subject: valid.subject,
            body: valid.body,
            amount_minor: valid.amount_minor,
            currency: valid.currency,
            product: valid.product,
            quantity: valid.quantity,
            score: valid.score,
            metadata: new.metadata.filter(|m| !m.is_null()),
            created_at: now,
        })
    }

    /// The interaction with `id`, or [`Error::NotFound`].
    pub fn get_interaction(&self, id: InteractionId) -> Result<Interaction> {
        self.db
            .read(|conn| db::interactions::get(conn, id))?
            .ok_or(Error::NotFound {
                entity: "interaction",
            })
    }

    /// A customer's timeline, newest first, one page at a time.
    pub fn timeline(
        &self,
        customer: CustomerId,
        query: &TimelineQuery,
    ) -> Result<Page<Interaction>> {
        let limit = page::check_limit(query.limit)?;
        let before: Option<(i64, i64)> = query.cursor.as_deref().map(page::decode).transpose()?;
        let rows = self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            db::interactions::timeline(
                conn,
                rowid,
                customer,
                before,
                query.kind.as_ref(),
                limit + 1,
            )
        })?;
        Ok(page::paginate(rows, limit))
    }

    /// How many interactions there are.
    pub fn count_interactions(&self) -> Result<u64> {
        self.db.read(db::interactions::count)
    }

    // ----- consent ---------------------------------------------------------

    /// Appends a consent answer to the customer's ledger.
    pub fn record_consent(&self, customer: CustomerId, new: &NewConsent) -> Result<ConsentRecord> {
        let (purpose, channel, source, proof) = new.validate()?;
        let record = ConsentRecord {
            id: ConsentId::new(),
            customer_id: customer,
            purpose,
            channel,
            status: new.status,
            legal_basis: new.legal_basis,
            source,
            proof,
            recorded_at: new
                .recorded_at
                .map_or_else(Self::now, |t| t.trunc_subsecs(6)),
        };
        self.db.write(|tx| {
            let rowid = db::customers::rowid_of(tx, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            db::consent::insert(tx, &self.context, rowid, &record)
        })?;
        Ok(record)
    }

    /// The record that currently answers for `purpose` on `channel`: the most
    /// recent one for that channel or for every channel (`channel = None`
    /// asks about records that cover every channel). `None` if there is none.
    pub fn consent(
        &self,
        customer: CustomerId,
        purpose: &str,
        channel: Option<&str>,
    ) -> Result<Option<ConsentRecord>> {
        let purpose = crate::model::consent::identifier("purpose", purpose)?;
        let channel = channel
            .map(|c| crate::model::consent::identifier("channel", c))
            .transpose()?;
        self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            db::consent::current(conn, rowid, &purpose, channel.as_deref())
        })
    }

    /// Whether the customer currently consents to `purpose` on `channel`:
    /// the most recent answer is `granted`. No answer means no.
    ///
    /// ```
    /// use crm_core::{ConsentStatus, Crm, NewConsent, NewCustomer};
    /// let crm = Crm::open_in_memory()?;
    /// let c = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// assert!(!crm.has_consent(c.id, "newsletter", Some("email"))?);
    /// crm.record_consent(c.id, &NewConsent::new("newsletter", ConsentStatus::Granted))?;
    /// assert!(crm.has_consent(c.id, "newsletter", Some("email"))?);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn has_consent(
        &self,
        customer: CustomerId,
        purpose: &str,
        channel: Option<&str>,
    ) -> Result<bool> {
        Ok(self
            .consent(customer, purpose, channel)?
            .is_some_and(|r| r.status == crate::model::consent::ConsentStatus::Granted))
    }

    /// The customer's consent ledger, newest first, for one purpose or all.
    pub fn consent_history(
        &self,
        customer: CustomerId,
        purpose: Option<&str>,
    ) -> Result<Vec<ConsentRecord>> {
        let purpose = purpose
            .map(|p| crate::model::consent::identifier("purpose", p))
            .transpose()?;
        self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            db::consent::history(conn, rowid, purpose.as_deref())
        })
    }

    // ----- search and change log -------------------------------------------

    /// Full-text search over names, emails, phones, organization names and
    /// interaction subjects. Every word must match; the last one matches as a
    /// prefix. Customers matching on their own fields come first, ranked by
    /// BM25 (name over emails and phones over organization), then customers
    /// found through the subject of an interaction, most recent first; each
    /// customer appears once.
    ///
    /// Ranking visits every match: over a million customers a one- or
    /// two-letter prefix that matches a large share of them takes tens of
    /// milliseconds, a name a few milliseconds.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        let limit = page::check_limit(limit)?;
        let fts = db::search::fts_query(query)?;
        self.db.read(|conn| {
            let mut hits: Vec<SearchHit> = db::search::customers(conn, &fts, limit)?
                .into_iter()
                .map(|(score, customer)| SearchHit {
                    customer,
                    score,
                    matched: SearchMatch::Customer,
                })
                .collect();
            if hits.len() < limit as usize {
                for (score, rowid, interaction_id, subject) in
                    db::search::interactions(conn, &fts, limit * 4)?
                {
                    if hits.len() >= limit as usize {
                        break;
                    }
                    let Some(customer) = db::customers::get_by_rowid(conn, rowid)? else {
                        continue;
                    };
                    if hits.iter().any(|h| h.customer.id == customer.id) {
                        continue;
                    }
                    hits.push(SearchHit {
                        customer,
                        score,
                        matched: SearchMatch::Interaction {
                            interaction_id,
                            subject,
                        },
                    });
                }
            }
            Ok(hits)
        })
    }

    /// Registers a listener told about every committed write of this
    /// database (through any handle cloned from this one, e.g. by
    /// [`Crm::with_actor`]); returns the id that unregisters it.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use crm_core::{Change, Crm, NewCustomer};
    ///
    /// let crm = Crm::open_in_memory()?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let id = crm.add_change_listener(Arc::new(move |changes: &[Change]| {
    ///     sink.lock().unwrap().extend(changes.iter().map(|c| c.entity_id.clone()));
    /// }));
    /// let ana = crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// assert_eq!(*seen.lock().unwrap(), vec![ana.id.to_string()]);
    /// assert!(crm.remove_change_listener(id));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn add_change_listener(&self, listener: Arc<dyn ChangeListener>) -> ListenerId {
        ListenerId(self.db.add_listener(listener))
    }

    /// Unregisters a listener; returns whether it was registered.
    pub fn remove_change_listener(&self, id: ListenerId) -> bool {
        self.db.remove_listener(id.0)
    }

    /// Change-log entries after sequence number `after_seq` (0 for the
    /// start), oldest first: the change feed.
    pub fn changes_since(&self, after_seq: i64, limit: u32) -> Result<Vec<Change>> {
        let limit = page::check_limit(limit)?;
        self.db
            .read(|conn| db::changes::since(conn, after_seq, limit))
    }

    /// Every change-log entry of one customer, oldest first.
    pub fn customer_history(&self, id: CustomerId) -> Result<Vec<Change>> {
        self.db
            .read(|conn| db::changes::for_entity(conn, id.as_bytes()))
    }
}

/// Create-or-update, shared by [`Crm::upsert_customer`] and imports; also
/// returns the customer's rowid and the fields an update changed (what
/// rules react to).
pub(crate) fn upsert_tracked(
    tx: &rusqlite::Connection,
    normalizer: &Normalizer,
    context: &ChangeContext,
    new: &NewCustomer,
) -> Result<(Upserted, i64, Vec<&'static str>)> {
    let now = Crm::now();
    let mut candidate = normalizer.new_customer(new, now)?;
    let by_external = match &candidate.external_id {
        Some(ext) => db::customers::rowid_by_external_id(tx, ext)?,
        None => None,
    };
    let mut by_email = None;
    for email in &candidate.emails {
        if let Some(found) = db::customers::rowid_by_email(tx, email)? {
            by_email = Some(found);
            break;
        }
    }
    let target = match (by_external, by_email) {
        (Some(a), Some(b)) if a.0 != b.0 => {
            return Err(Error::conflict(
                "emails",
                "the email belongs to another customer than the external id",
            ));
        }
        (Some(a), _) => Some(a),
        (None, b) => b,
    };
    let Some((rowid, _)) = target else {
        let rowid = db::customers::insert(tx, context, &mut candidate, None)?;
        return Ok((
            Upserted {
                customer: candidate,
                created: true,
            },
            rowid,
            Vec::new(),
        ));
    };
    let mut stored =
        db::customers::get_by_rowid(tx, rowid)?.ok_or(Error::NotFound { entity: "customer" })?;
    let merge = |old: &[String], new: &[String]| {
        let mut out = old.to_vec();
        out.extend(new.iter().filter(|n| !old.contains(n)).cloned());
        out
    };
    let patch = CustomerPatch {
        external_id: candidate.external_id.clone().map(Some),
        name: new.name.as_ref().map(|_| candidate.name.clone()),
        first_name: candidate.first_name.clone().map(Some),
        last_name: candidate.last_name.clone().map(Some),
        organization_id: candidate.organization_id.map(Some),
        emails: Some(merge(&stored.emails, &candidate.emails)),
        phones: Some(merge(&stored.phones, &candidate.phones)),
        addresses: (!candidate.addresses.is_empty()).then(|| candidate.addresses.clone()),
        birth_date: candidate.birth_date.map(Some),
        locale: candidate.locale.clone().map(Some),
        country: candidate.country.clone().map(Some),
        tags: Some(merge(&stored.tags, &candidate.tags)),
        set_attributes: candidate.attributes.clone(),
        remove_attributes: Vec::new(),
        lifecycle_stage: new
            .lifecycle_stage
            .as_ref()
            .map(|_| candidate.lifecycle_stage.clone()),
        owner: candidate.owner.clone().map(Some),
        source: candidate.source.clone().map(Some),
    };
    let changed = normalizer.apply_patch(&mut stored, &patch, now)?;
    if !changed.is_empty() {
        db::customers::update(tx, context, rowid, &mut stored, &changed)?;
    }
    Ok((
        Upserted {
            customer: stored,
            created: false,
        },
        rowid,
        changed,
    ))
}
