//! The records and enums that cross the FFI, mirroring crm-core's types,
//! and the conversions between the two.
//!
//! Conventions: ids are hyphenated UUID strings; times are `SystemTime`
//! (Kotlin `Instant`, Swift `Date`); calendar dates are `"YYYY-MM-DD"`
//! strings; money is integer minor units plus an ISO-4217 code; metadata is
//! JSON text. Input records leave optional settings as `None`, which means
//! crm-core's default. Every parse goes through crm-core, so a bad value is
//! rejected with the same field name and reason as in Rust and Python.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crm_core::export::ExportFormat as CoreExportFormat;
use crm_core::import::{
    ColumnMapping as CoreColumnMapping, ImportMode as CoreImportMode,
    ImportOptions as CoreImportOptions, ImportProgress as CoreImportProgress,
    ImportReport as CoreImportReport, RowError as CoreRowError,
};
use crm_core::{
    Address as CoreAddress, AttributeDefinition as CoreAttributeDefinition,
    AttributeType as CoreAttributeType, AttributeValue as CoreAttributeValue, Change as CoreChange,
    ChangeOp as CoreChangeOp, ConsentRecord as CoreConsentRecord,
    ConsentStatus as CoreConsentStatus, Customer as CoreCustomer, CustomerCard as CoreCustomerCard,
    CustomerId as CoreCustomerId, CustomerKind as CoreCustomerKind,
    CustomerPatch as CoreCustomerPatch, CustomerRef as CoreCustomerRef,
    CustomerSort as CoreCustomerSort, Direction as CoreDirection, EntityKind as CoreEntityKind,
    Error as CoreError, Interaction as CoreInteraction, InteractionId as CoreInteractionId,
    InteractionKind as CoreInteractionKind, LegalBasis as CoreLegalBasis,
    ListCustomers as CoreListCustomers, NewConsent as CoreNewConsent,
    NewCustomer as CoreNewCustomer, NewInteraction as CoreNewInteraction,
    OpenOptions as CoreOpenOptions, Page as CorePage, SearchHit as CoreSearchHit,
    SearchMatch as CoreSearchMatch, TimelineQuery as CoreTimelineQuery, Upserted as CoreUpserted,
};
use crm_core::{
    Explain as CoreExplain, MaterializeReport as CoreMaterializeReport,
    MembersQuery as CoreMembersQuery, NewSegment as CoreNewSegment, Segment as CoreSegment,
    SegmentKind as CoreSegmentKind, SegmentPatch as CoreSegmentPatch,
};

use crate::error::CrmError;

// ----- scalar conversions -----------------------------------------------------

/// A stored time, for the host.
pub(crate) fn time_out(t: DateTime<Utc>) -> SystemTime {
    t.into()
}

/// A host time, for crm-core. Unlike chrono's `From<SystemTime>` this does
/// not panic on a time outside chrono's range (e.g. Kotlin's `Instant.MAX`).
pub(crate) fn time_in(field: &str, t: SystemTime) -> Result<DateTime<Utc>, CrmError> {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (i64::try_from(d.as_secs()).ok(), d.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).ok();
            match d.subsec_nanos() {
                0 => (secs.map(|s| -s), 0),
                n => (secs.map(|s| -s - 1), 1_000_000_000 - n),
            }
        }
    };
    secs.and_then(|s| DateTime::from_timestamp(s, nanos))
        .ok_or_else(|| validation(field, "is out of the supported time range"))
}

/// A calendar date, for the host: `YYYY-MM-DD`.
pub(crate) fn date_out(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A `YYYY-MM-DD` date from the host, read by crm-core's date parser (the
/// one that reads date attributes).
pub(crate) fn date_in(field: &str, s: &str) -> Result<NaiveDate, CrmError> {
    match CoreAttributeValue::Text(s.to_string()).coerce(CoreAttributeType::Date) {
        Ok(CoreAttributeValue::Date(d)) => Ok(d),
        Ok(_) => Err(validation(field, "must be a date (YYYY-MM-DD)")),
        Err(reason) => Err(validation(field, reason)),
    }
}

/// A customer id from the host; a malformed one is a validation error on
/// `field`.
pub(crate) fn customer_id_in(field: &str, s: &str) -> Result<CoreCustomerId, CrmError> {
    s.parse::<CoreCustomerId>().map_err(|e| renamed(e, field))
}

/// Customer ids from the host; a malformed one is a validation error on
/// `field[i]`.
pub(crate) fn customer_ids_in(
    field: &str,
    ids: &[String],
) -> Result<Vec<CoreCustomerId>, CrmError> {
    ids.iter()
        .enumerate()
        .map(|(i, s)| customer_id_in(&format!("{field}[{i}]"), s))
        .collect()
}

/// An interaction id from the host.
pub(crate) fn interaction_id_in(field: &str, s: &str) -> Result<CoreInteractionId, CrmError> {
    s.parse::<CoreInteractionId>()
        .map_err(|e| renamed(e, field))
}

/// Metadata JSON text from the host (crm-core checks it is an object).
/// Blank text is no metadata, as for other optional text and as in a list
/// import.
fn metadata_in(s: &str) -> Result<Option<Value>, CrmError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(s)
        .map(Some)
        .map_err(|_| validation("metadata", "must be valid JSON"))
}

fn validation(field: &str, reason: impl Into<String>) -> CrmError {
    CrmError::Validation {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// crm-core's validation error, reported on the host's field name.
fn renamed(err: CoreError, field: &str) -> CrmError {
    match err {
        CoreError::Validation { reason, .. } => validation(field, reason),
        other => other.into(),
    }
}

// ----- opening ------------------------------------------------------------------

/// How to open a CRM. `None` means crm-core's default.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct OpenOptions {
    /// ISO 3166 region for phone numbers written without a country code,
    /// e.g. `"SI"`; without it such numbers are rejected.
    #[uniffi(default)]
    pub default_region: Option<String>,
    /// How long a write waits for another process's lock before failing
    /// with `Busy`, in milliseconds (default 5000).
    #[uniffi(default)]
    pub busy_timeout_ms: Option<u32>,
}

impl From<OpenOptions> for CoreOpenOptions {
    fn from(o: OpenOptions) -> Self {
        let default = CoreOpenOptions::default();
        CoreOpenOptions {
            default_region: o.default_region,
            busy_timeout_ms: o.busy_timeout_ms.unwrap_or(default.busy_timeout_ms),
        }
    }
}

// ----- customers ----------------------------------------------------------------

/// Whether a customer is a person or an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CustomerKind {
    /// A natural person.
    Person,
    /// A company or other organization.
    Organization,
}

impl From<CoreCustomerKind> for CustomerKind {
    fn from(k: CoreCustomerKind) -> Self {
        match k {
            CoreCustomerKind::Person => CustomerKind::Person,
            CoreCustomerKind::Organization => CustomerKind::Organization,
        }
    }
}

impl From<CustomerKind> for CoreCustomerKind {
    fn from(k: CustomerKind) -> Self {
        match k {
            CustomerKind::Person => CoreCustomerKind::Person,
            CustomerKind::Organization => CoreCustomerKind::Organization,
        }
    }
}

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct Address {
    /// What the address is for, e.g. `billing`.
    #[uniffi(default)]
    pub label: Option<String>,
    /// First street line.
    #[uniffi(default)]
    pub line1: Option<String>,
    /// Second street line.
    #[uniffi(default)]
    pub line2: Option<String>,
    /// City or town.
    #[uniffi(default)]
    pub city: Option<String>,
    /// State, province or region.
    #[uniffi(default)]
    pub region: Option<String>,
    /// Postal code.
    #[uniffi(default)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    #[uniffi(default)]
    pub country: Option<String>,
}

impl From<CoreAddress> for Address {
    fn from(a: CoreAddress) -> Self {
        Address {
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

impl From<Address> for CoreAddress {
    fn from(a: Address) -> Self {
        CoreAddress {
            label: a.label,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// The declared type of a custom attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum AttributeType {
    /// Free text.
    Text,
    /// A number.
    Number,
    /// True or false.
    Bool,
    /// A calendar date.
    Date,
}

impl From<CoreAttributeType> for AttributeType {
    fn from(t: CoreAttributeType) -> Self {
        match t {
            CoreAttributeType::Text => AttributeType::Text,
            CoreAttributeType::Number => AttributeType::Number,
            CoreAttributeType::Bool => AttributeType::Bool,
            CoreAttributeType::Date => AttributeType::Date,
        }
    }
}

impl From<AttributeType> for CoreAttributeType {
    fn from(t: AttributeType) -> Self {
        match t {
            AttributeType::Text => CoreAttributeType::Text,
            AttributeType::Number => CoreAttributeType::Number,
            AttributeType::Bool => CoreAttributeType::Bool,
            AttributeType::Date => CoreAttributeType::Date,
        }
    }
}

/// A typed custom attribute value.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum AttributeValue {
    /// Free text.
    Text {
        /// The text.
        value: String,
    },
    /// A finite number.
    Number {
        /// The number.
        value: f64,
    },
    /// True or false.
    Bool {
        /// The flag.
        value: bool,
    },
    /// A calendar date.
    Date {
        /// `YYYY-MM-DD`.
        value: String,
    },
}

impl From<CoreAttributeValue> for AttributeValue {
    fn from(v: CoreAttributeValue) -> Self {
        match v {
            CoreAttributeValue::Text(value) => AttributeValue::Text { value },
            CoreAttributeValue::Number(value) => AttributeValue::Number { value },
            CoreAttributeValue::Bool(value) => AttributeValue::Bool { value },
            CoreAttributeValue::Date(d) => AttributeValue::Date { value: date_out(d) },
        }
    }
}

impl AttributeValue {
    /// The core value; a bad date is reported on `attributes.KEY`.
    fn into_core(self, key: &str) -> Result<CoreAttributeValue, CrmError> {
        Ok(match self {
            AttributeValue::Text { value } => CoreAttributeValue::Text(value),
            AttributeValue::Number { value } => CoreAttributeValue::Number(value),
            AttributeValue::Bool { value } => CoreAttributeValue::Bool(value),
            AttributeValue::Date { value } => {
                CoreAttributeValue::Date(date_in(&format!("attributes.{key}"), &value)?)
            }
        })
    }

    /// The value in crm-core's JSON record form (a date explicitly tagged).
    fn to_json(&self) -> Value {
        match self {
            AttributeValue::Text { value } => Value::String(value.clone()),
            // A non-finite number has no JSON form; crm-core rejects the null.
            AttributeValue::Number { value } => {
                serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number)
            }
            AttributeValue::Bool { value } => Value::Bool(*value),
            AttributeValue::Date { value } => serde_json::json!({ "date": value }),
        }
    }
}

fn attributes_in(
    attributes: HashMap<String, AttributeValue>,
) -> Result<std::collections::BTreeMap<String, CoreAttributeValue>, CrmError> {
    attributes
        .into_iter()
        .map(|(key, value)| {
            let value = value.into_core(&key)?;
            Ok((key, value))
        })
        .collect()
}

/// A stored customer.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Customer {
    /// Globally unique, time-ordered id.
    pub id: String,
    /// Person or organization.
    pub kind: CustomerKind,
    /// The id in another system (unique when set).
    pub external_id: Option<String>,
    /// Display name.
    pub name: String,
    /// Given name of a person.
    pub first_name: Option<String>,
    /// Family name of a person.
    pub last_name: Option<String>,
    /// The organization a person belongs to.
    pub organization_id: Option<String>,
    /// Lower-cased emails, primary first.
    pub emails: Vec<String>,
    /// Phones in E.164, primary first.
    pub phones: Vec<String>,
    /// Postal addresses.
    pub addresses: Vec<Address>,
    /// Date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Lower-cased tags, sorted.
    pub tags: Vec<String>,
    /// Typed custom attributes.
    pub attributes: HashMap<String, AttributeValue>,
    /// Lifecycle stage, e.g. `lead`.
    pub lifecycle_stage: String,
    /// The user who owns the relationship.
    pub owner: Option<String>,
    /// Where the customer came from.
    pub source: Option<String>,
    /// When the record was created.
    pub created_at: SystemTime,
    /// When the record last changed.
    pub updated_at: SystemTime,
}

impl From<CoreCustomer> for Customer {
    fn from(c: CoreCustomer) -> Self {
        Customer {
            id: c.id.to_string(),
            kind: c.kind.into(),
            external_id: c.external_id,
            name: c.name,
            first_name: c.first_name,
            last_name: c.last_name,
            organization_id: c.organization_id.map(|o| o.to_string()),
            emails: c.emails,
            phones: c.phones,
            addresses: c.addresses.into_iter().map(Into::into).collect(),
            birth_date: c.birth_date.map(date_out),
            locale: c.locale,
            country: c.country,
            tags: c.tags,
            attributes: c
                .attributes
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            lifecycle_stage: c.lifecycle_stage,
            owner: c.owner,
            source: c.source,
            created_at: time_out(c.created_at),
            updated_at: time_out(c.updated_at),
        }
    }
}

/// A customer to create. Only a name (or, for a person, a first or last
/// name) is required; crm-core validates and normalizes the rest.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct NewCustomer {
    /// Person (when `None`) or organization.
    #[uniffi(default)]
    pub kind: Option<CustomerKind>,
    /// Id in another system; unique.
    #[uniffi(default)]
    pub external_id: Option<String>,
    /// Display name; for a person it defaults to "first last".
    #[uniffi(default)]
    pub name: Option<String>,
    /// Given name.
    #[uniffi(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[uniffi(default)]
    pub last_name: Option<String>,
    /// Id of the organization the person belongs to.
    #[uniffi(default)]
    pub organization_id: Option<String>,
    /// Emails, primary first.
    #[uniffi(default)]
    pub emails: Vec<String>,
    /// Phones, primary first.
    #[uniffi(default)]
    pub phones: Vec<String>,
    /// Postal addresses.
    #[uniffi(default)]
    pub addresses: Vec<Address>,
    /// Date of birth, `YYYY-MM-DD`.
    #[uniffi(default)]
    pub birth_date: Option<String>,
    /// BCP 47 locale.
    #[uniffi(default)]
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    #[uniffi(default)]
    pub country: Option<String>,
    /// Tags.
    #[uniffi(default)]
    pub tags: Vec<String>,
    /// Custom attributes.
    #[uniffi(default)]
    pub attributes: HashMap<String, AttributeValue>,
    /// Lifecycle stage (default `subscriber`).
    #[uniffi(default)]
    pub lifecycle_stage: Option<String>,
    /// Owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// Source.
    #[uniffi(default)]
    pub source: Option<String>,
}

impl TryFrom<NewCustomer> for CoreNewCustomer {
    type Error = CrmError;

    fn try_from(n: NewCustomer) -> Result<Self, CrmError> {
        Ok(CoreNewCustomer {
            kind: n.kind.map(Into::into).unwrap_or_default(),
            external_id: n.external_id,
            name: n.name,
            first_name: n.first_name,
            last_name: n.last_name,
            organization_id: n
                .organization_id
                .map(|o| customer_id_in("organization_id", &o))
                .transpose()?,
            emails: n.emails,
            phones: n.phones,
            addresses: n.addresses.into_iter().map(Into::into).collect(),
            birth_date: n
                .birth_date
                .map(|d| date_in("birth_date", &d))
                .transpose()?,
            locale: n.locale,
            country: n.country,
            tags: n.tags,
            attributes: attributes_in(n.attributes)?,
            lifecycle_stage: n.lifecycle_stage,
            owner: n.owner,
            source: n.source,
        })
    }
}

/// Puts `value` under `field` when there is one.
fn put(record: &mut Map<String, Value>, field: &str, value: Option<Value>) {
    if let Some(v) = value {
        record.insert(field.to_string(), v);
    }
}

fn text(s: &Option<String>) -> Option<Value> {
    s.clone().map(Value::String)
}

fn texts(list: &[String]) -> Option<Value> {
    (!list.is_empty()).then(|| Value::Array(list.iter().cloned().map(Value::String).collect()))
}

impl NewCustomer {
    /// The customer as a crm-core import record (field → JSON value), so
    /// that a list import parses every row in crm-core and reports a bad
    /// row with its number instead of failing the whole list.
    pub(crate) fn to_import_record(&self) -> Map<String, Value> {
        let mut r = Map::new();
        put(
            &mut r,
            "kind",
            self.kind
                .map(|k| Value::from(CoreCustomerKind::from(k).as_str())),
        );
        put(&mut r, "external_id", text(&self.external_id));
        put(&mut r, "name", text(&self.name));
        put(&mut r, "first_name", text(&self.first_name));
        put(&mut r, "last_name", text(&self.last_name));
        put(&mut r, "organization_id", text(&self.organization_id));
        put(&mut r, "emails", texts(&self.emails));
        put(&mut r, "phones", texts(&self.phones));
        if !self.addresses.is_empty() {
            let addresses = self
                .addresses
                .iter()
                .cloned()
                .map(CoreAddress::from)
                .collect::<Vec<_>>();
            put(&mut r, "addresses", serde_json::to_value(addresses).ok());
        }
        put(&mut r, "birth_date", text(&self.birth_date));
        put(&mut r, "locale", text(&self.locale));
        put(&mut r, "country", text(&self.country));
        put(&mut r, "tags", texts(&self.tags));
        if !self.attributes.is_empty() {
            let attributes = self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect();
            r.insert("attributes".into(), Value::Object(attributes));
        }
        put(&mut r, "lifecycle_stage", text(&self.lifecycle_stage));
        put(&mut r, "owner", text(&self.owner));
        put(&mut r, "source", text(&self.source));
        r
    }
}

/// A partial update. A field left `None` is unchanged; a field set to a
/// value is replaced by it; a field named in `clear` is emptied (applied
/// after the sets, with crm-core's `CustomerPatch::clear`, so `name` and
/// `lifecycle_stage` can't be cleared). Lists are replaced whole;
/// attributes are set and removed key by key.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct CustomerPatch {
    /// New external id.
    #[uniffi(default)]
    pub external_id: Option<String>,
    /// New display name.
    #[uniffi(default)]
    pub name: Option<String>,
    /// New first name.
    #[uniffi(default)]
    pub first_name: Option<String>,
    /// New last name.
    #[uniffi(default)]
    pub last_name: Option<String>,
    /// New organization id.
    #[uniffi(default)]
    pub organization_id: Option<String>,
    /// Replaces all emails.
    #[uniffi(default)]
    pub emails: Option<Vec<String>>,
    /// Replaces all phones.
    #[uniffi(default)]
    pub phones: Option<Vec<String>>,
    /// Replaces all addresses.
    #[uniffi(default)]
    pub addresses: Option<Vec<Address>>,
    /// New birth date, `YYYY-MM-DD`.
    #[uniffi(default)]
    pub birth_date: Option<String>,
    /// New locale.
    #[uniffi(default)]
    pub locale: Option<String>,
    /// New country.
    #[uniffi(default)]
    pub country: Option<String>,
    /// Replaces all tags.
    #[uniffi(default)]
    pub tags: Option<Vec<String>>,
    /// New lifecycle stage.
    #[uniffi(default)]
    pub lifecycle_stage: Option<String>,
    /// New owner.
    #[uniffi(default)]
    pub owner: Option<String>,
    /// New source.
    #[uniffi(default)]
    pub source: Option<String>,
    /// Attributes to set (others are kept).
    #[uniffi(default)]
    pub set_attributes: HashMap<String, AttributeValue>,
    /// Attribute keys to remove.
    #[uniffi(default)]
    pub remove_attributes: Vec<String>,
    /// Names of fields to clear, e.g. `["locale", "owner"]`.
    #[uniffi(default)]
    pub clear: Vec<String>,
}

impl TryFrom<CustomerPatch> for CoreCustomerPatch {
    type Error = CrmError;

    fn try_from(p: CustomerPatch) -> Result<Self, CrmError> {
        let mut patch = CoreCustomerPatch {
            external_id: p.external_id.map(Some),
            name: p.name,
            first_name: p.first_name.map(Some),
            last_name: p.last_name.map(Some),
            organization_id: p
                .organization_id
                .map(|o| customer_id_in("organization_id", &o).map(Some))
                .transpose()?,
            emails: p.emails,
            phones: p.phones,
            addresses: p.addresses.map(|a| a.into_iter().map(Into::into).collect()),
            birth_date: p
                .birth_date
                .map(|d| date_in("birth_date", &d).map(Some))
                .transpose()?,
            locale: p.locale.map(Some),
            country: p.country.map(Some),
            tags: p.tags,
            set_attributes: attributes_in(p.set_attributes)?,
            remove_attributes: p.remove_attributes,
            lifecycle_stage: p.lifecycle_stage,
            owner: p.owner.map(Some),
            source: p.source.map(Some),
        };
        for field in &p.clear {
            patch.clear(field)?;
        }
        Ok(patch)
    }
}

/// What `upsert_customer` did.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Upserted {
    /// The customer as stored now.
    pub customer: Customer,
    /// `true` if created, `false` if an existing customer was updated.
    pub created: bool,
}

impl From<CoreUpserted> for Upserted {
    fn from(u: CoreUpserted) -> Self {
        Upserted {
            customer: u.customer.into(),
            created: u.created,
        }
    }
}

/// Sort key of a customer list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CustomerSort {
    /// Creation order.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name, case-insensitively.
    Name,
}

impl From<CustomerSort> for CoreCustomerSort {
    fn from(s: CustomerSort) -> Self {
        match s {
            CustomerSort::CreatedAt => CoreCustomerSort::CreatedAt,
            CustomerSort::UpdatedAt => CoreCustomerSort::UpdatedAt,
            CustomerSort::Name => CoreCustomerSort::Name,
        }
    }
}

/// Which customers to list. `None` means crm-core's default (creation
/// order, 50 per page).
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ListCustomers {
    /// Sort key.
    #[uniffi(default)]
    pub sort: Option<CustomerSort>,
    /// Largest first.
    #[uniffi(default = false)]
    pub descending: bool,
    /// Page size (1–10,000).
    #[uniffi(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[uniffi(default)]
    pub cursor: Option<String>,
}

impl From<ListCustomers> for CoreListCustomers {
    fn from(q: ListCustomers) -> Self {
        let default = CoreListCustomers::default();
        CoreListCustomers {
            sort: q.sort.map_or(default.sort, Into::into),
            descending: q.descending,
            limit: q.limit.unwrap_or(default.limit),
            cursor: q.cursor,
        }
    }
}

/// One page of customers.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CustomerPage {
    /// The customers, in the requested order.
    pub items: Vec<Customer>,
    /// Pass back in `ListCustomers.cursor` for the next page; `None` on
    /// the last page.
    pub next_cursor: Option<String>,
}

impl From<CorePage<CoreCustomer>> for CustomerPage {
    fn from(p: CorePage<CoreCustomer>) -> Self {
        CustomerPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// A customer as one row of a list: what a list screen shows, and the
/// latest interaction. `Crm.get_customer` has the rest.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CustomerCard {
    /// The customer's id.
    pub id: String,
    /// Person or organization.
    pub kind: CustomerKind,
    /// Display name.
    pub name: String,
    /// The primary (first) email, if any.
    pub email: Option<String>,
    /// The primary (first) phone, if any.
    pub phone: Option<String>,
    /// Lifecycle stage, e.g. `lead`.
    pub lifecycle_stage: String,
    /// The user who owns the relationship.
    pub owner: Option<String>,
    /// Lower-cased tags, sorted.
    pub tags: Vec<String>,
    /// The most recent interaction (by when it happened), if any.
    pub latest_interaction: Option<InteractionSummary>,
}

impl From<CoreCustomerCard> for CustomerCard {
    fn from(c: CoreCustomerCard) -> Self {
        CustomerCard {
            id: c.id.to_string(),
            kind: c.kind.into(),
            name: c.name,
            email: c.email,
            phone: c.phone,
            lifecycle_stage: c.lifecycle_stage,
            owner: c.owner,
            tags: c.tags,
            latest_interaction: c.latest_interaction.map(Into::into),
        }
    }
}

/// An interaction as a list row shows it: without the body, metadata and
/// product lines, which can be large (`Crm.get_interaction(id)` has them),
/// so a page of cards stays small.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct InteractionSummary {
    /// The interaction's id.
    pub id: String,
    /// The kind.
    pub kind: InteractionKind,
    /// The channel, e.g. `web`.
    pub channel: Option<String>,
    /// Who started it.
    pub direction: Option<Direction>,
    /// When it happened.
    pub occurred_at: SystemTime,
    /// Subject line.
    pub subject: Option<String>,
    /// Amount in integer minor units of `currency`.
    pub amount_minor: Option<i64>,
    /// ISO-4217 currency.
    pub currency: Option<String>,
}

impl From<CoreInteraction> for InteractionSummary {
    fn from(i: CoreInteraction) -> Self {
        InteractionSummary {
            id: i.id.to_string(),
            kind: i.kind.into(),
            channel: i.channel,
            direction: i.direction.map(Into::into),
            occurred_at: time_out(i.occurred_at),
            subject: i.subject,
            amount_minor: i.amount_minor,
            currency: i.currency,
        }
    }
}

/// One page of customer cards.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct CustomerCardPage {
    /// The cards, in the requested order.
    pub items: Vec<CustomerCard>,
    /// Pass back in `ListCustomers.cursor` for the next page; `None` on
    /// the last page.
    pub next_cursor: Option<String>,
}

impl From<CorePage<CoreCustomerCard>> for CustomerCardPage {
    fn from(p: CorePage<CoreCustomerCard>) -> Self {
        CustomerCardPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// A custom attribute's declared type.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct AttributeDefinition {
    /// The key.
    pub key: String,
    /// Its type.
    pub attribute_type: AttributeType,
}

impl From<CoreAttributeDefinition> for AttributeDefinition {
    fn from(d: CoreAttributeDefinition) -> Self {
        AttributeDefinition {
            key: d.key,
            attribute_type: d.attribute_type.into(),
        }
    }
}

// ----- interactions -------------------------------------------------------------

/// What kind of interaction an entry records. `Custom` holds any other
/// lower-case identifier (a built-in name given as custom is read as the
/// built-in kind).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum InteractionKind {
    /// A purchase.
    Purchase,
    /// An email.
    Email,
    /// A phone call.
    Call,
    /// A meeting.
    Meeting,
    /// A note.
    Note,
    /// A support ticket.
    Ticket,
    /// A web visit.
    WebVisit,
    /// A social-media mention.
    Social,
    /// A survey answer.
    SurveyResponse,
    /// A kind of the host application's own.
    Custom {
        /// A lower-case identifier, e.g. `demo_booked`.
        name: String,
    },
}

impl From<CoreInteractionKind> for InteractionKind {
    fn from(k: CoreInteractionKind) -> Self {
        match k {
            CoreInteractionKind::Purchase => InteractionKind::Purchase,
            CoreInteractionKind::Email => InteractionKind::Email,
            CoreInteractionKind::Call => InteractionKind::Call,
            CoreInteractionKind::Meeting => InteractionKind::Meeting,
            CoreInteractionKind::Note => InteractionKind::Note,
            CoreInteractionKind::Ticket => InteractionKind::Ticket,
            CoreInteractionKind::WebVisit => InteractionKind::WebVisit,
            CoreInteractionKind::Social => InteractionKind::Social,
            CoreInteractionKind::SurveyResponse => InteractionKind::SurveyResponse,
            CoreInteractionKind::Custom(name) => InteractionKind::Custom { name },
        }
    }
}

impl TryFrom<InteractionKind> for CoreInteractionKind {
    type Error = CrmError;

    fn try_from(k: InteractionKind) -> Result<Self, CrmError> {
        Ok(match k {
            InteractionKind::Purchase => CoreInteractionKind::Purchase,
            InteractionKind::Email => CoreInteractionKind::Email,
            InteractionKind::Call => CoreInteractionKind::Call,
            InteractionKind::Meeting => CoreInteractionKind::Meeting,
            InteractionKind::Note => CoreInteractionKind::Note,
            InteractionKind::Ticket => CoreInteractionKind::Ticket,
            InteractionKind::WebVisit => CoreInteractionKind::WebVisit,
            InteractionKind::Social => CoreInteractionKind::Social,
            InteractionKind::SurveyResponse => CoreInteractionKind::SurveyResponse,
            InteractionKind::Custom { name } => CoreInteractionKind::parse(&name)?,
        })
    }
}

impl InteractionKind {
    /// The name crm-core reads in an import record.
    fn record_name(&self) -> String {
        match self {
            InteractionKind::Custom { name } => name.clone(),
            builtin => CoreInteractionKind::try_from(builtin.clone())
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
        }
    }
}

/// Who started an interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// From the business.
    Outbound,
}

impl From<CoreDirection> for Direction {
    fn from(d: CoreDirection) -> Self {
        match d {
            CoreDirection::Inbound => Direction::Inbound,
            CoreDirection::Outbound => Direction::Outbound,
        }
    }
}

impl From<Direction> for CoreDirection {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => CoreDirection::Inbound,
            Direction::Outbound => CoreDirection::Outbound,
        }
    }
}

/// How an interaction names its customer.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum CustomerRef {
    /// By id.
    Id {
        /// The customer id.
        id: String,
    },
    /// By external id.
    ExternalId {
        /// The external id.
        external_id: String,
    },
    /// By any of the customer's emails.
    Email {
        /// The email.
        email: String,
    },
}

impl TryFrom<CustomerRef> for CoreCustomerRef {
    type Error = CrmError;

    fn try_from(r: CustomerRef) -> Result<Self, CrmError> {
        Ok(match r {
            CustomerRef::Id { id } => CoreCustomerRef::Id(customer_id_in("customer_id", &id)?),
            CustomerRef::ExternalId { external_id } => CoreCustomerRef::ExternalId(external_id),
            CustomerRef::Email { email } => CoreCustomerRef::Email(email),
        })
    }
}

/// A stored interaction.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Interaction {
    /// Globally unique, time-ordered id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The kind.
    pub kind: InteractionKind,
    /// The channel, e.g. `web`.
    pub channel: Option<String>,
    /// Who started it.
    pub direction: Option<Direction>,
    /// When it happened.
    pub occurred_at: SystemTime,
    /// Subject line.
    pub subject: Option<String>,
    /// Free text.
    pub body: Option<String>,
    /// Amount in integer minor units of `currency` (cents for EUR).
    pub amount_minor: Option<i64>,
    /// ISO-4217 currency.
    pub currency: Option<String>,
    /// Product.
    pub product: Option<String>,
    /// Quantity of `product`.
    pub quantity: Option<i64>,
    /// Satisfaction score, 0–10.
    pub score: Option<i32>,
    /// A JSON object, as text.
    pub metadata: Option<String>,
    /// When it was recorded.
    pub created_at: SystemTime,
}

impl From<CoreInteraction> for Interaction {
    fn from(i: CoreInteraction) -> Self {
        Interaction {
            id: i.id.to_string(),
            customer_id: i.customer_id.to_string(),
            kind: i.kind.into(),
            channel: i.channel,
            direction: i.direction.map(Into::into),
            occurred_at: time_out(i.occurred_at),
            subject: i.subject,
            body: i.body,
            amount_minor: i.amount_minor,
            currency: i.currency,
            product: i.product,
            quantity: i.quantity,
            score: i.score,
            metadata: i.metadata.map(|m| m.to_string()),
            created_at: time_out(i.created_at),
        }
    }
}

/// An interaction to log.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewInteraction {
    /// The customer.
    pub customer: CustomerRef,
    /// The kind.
    pub kind: InteractionKind,
    /// Channel.
    #[uniffi(default)]
    pub channel: Option<String>,
    /// Direction.
    #[uniffi(default)]
    pub direction: Option<Direction>,
    /// When it happened; now when `None`.
    #[uniffi(default)]
    pub occurred_at: Option<SystemTime>,
    /// Subject.
    #[uniffi(default)]
    pub subject: Option<String>,
    /// Body.
    #[uniffi(default)]
    pub body: Option<String>,
    /// Amount in minor units; requires `currency`.
    #[uniffi(default)]
    pub amount_minor: Option<i64>,
    /// ISO-4217 currency.
    #[uniffi(default)]
    pub currency: Option<String>,
    /// Product.
    #[uniffi(default)]
    pub product: Option<String>,
    /// Quantity.
    #[uniffi(default)]
    pub quantity: Option<i64>,
    /// Satisfaction score 0–10.
    #[uniffi(default)]
    pub score: Option<i32>,
    /// A JSON object, as text.
    #[uniffi(default)]
    pub metadata: Option<String>,
}

impl TryFrom<NewInteraction> for CoreNewInteraction {
    type Error = CrmError;

    fn try_from(n: NewInteraction) -> Result<Self, CrmError> {
        Ok(CoreNewInteraction {
            channel: n.channel,
            direction: n.direction.map(Into::into),
            occurred_at: n
                .occurred_at
                .map(|t| time_in("occurred_at", t))
                .transpose()?,
            subject: n.subject,
            body: n.body,
            amount_minor: n.amount_minor,
            currency: n.currency,
            product: n.product,
            quantity: n.quantity,
            score: n.score,
            metadata: n
                .metadata
                .as_deref()
                .map(metadata_in)
                .transpose()?
                .flatten(),
            ..CoreNewInteraction::new(CoreCustomerRef::try_from(n.customer)?, n.kind.try_into()?)
        })
    }
}

impl NewInteraction {
    /// The interaction as a crm-core import record (see
    /// [`NewCustomer::to_import_record`]).
    pub(crate) fn to_import_record(&self) -> Map<String, Value> {
        let mut r = Map::new();
        let (field, value) = match &self.customer {
            CustomerRef::Id { id } => ("customer_id", id),
            CustomerRef::ExternalId { external_id } => ("customer_external_id", external_id),
            CustomerRef::Email { email } => ("customer_email", email),
        };
        r.insert(field.into(), Value::String(value.clone()));
        r.insert("kind".into(), Value::String(self.kind.record_name()));
        put(&mut r, "channel", text(&self.channel));
        put(
            &mut r,
            "direction",
            self.direction
                .map(|d| Value::from(CoreDirection::from(d).as_str())),
        );
        put(
            &mut r,
            "occurred_at",
            self.occurred_at.map(|t| match time_in("occurred_at", t) {
                Ok(t) => Value::String(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
                // Not a time crm-core can read, so the row is rejected there.
                Err(_) => Value::String("out of range".into()),
            }),
        );
        put(&mut r, "subject", text(&self.subject));
        put(&mut r, "body", text(&self.body));
        put(&mut r, "amount_minor", self.amount_minor.map(Value::from));
        put(&mut r, "currency", text(&self.currency));
        put(&mut r, "product", text(&self.product));
        put(&mut r, "quantity", self.quantity.map(Value::from));
        put(&mut r, "score", self.score.map(Value::from));
        put(&mut r, "metadata", text(&self.metadata));
        r
    }
}

/// Which part of a timeline to read. `None` means crm-core's default (all
/// kinds, 50 per page).
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct TimelineQuery {
    /// Only interactions of this kind.
    #[uniffi(default)]
    pub kind: Option<InteractionKind>,
    /// Page size (1–10,000).
    #[uniffi(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[uniffi(default)]
    pub cursor: Option<String>,
}

impl TryFrom<TimelineQuery> for CoreTimelineQuery {
    type Error = CrmError;

    fn try_from(q: TimelineQuery) -> Result<Self, CrmError> {
        let default = CoreTimelineQuery::default();
        Ok(CoreTimelineQuery {
            kind: q.kind.map(TryInto::try_into).transpose()?,
            limit: q.limit.unwrap_or(default.limit),
            cursor: q.cursor,
        })
    }
}

/// One page of a timeline.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct InteractionPage {
    /// The interactions, newest first.
    pub items: Vec<Interaction>,
    /// Pass back in `TimelineQuery.cursor` for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<String>,
}

impl From<CorePage<CoreInteraction>> for InteractionPage {
    fn from(p: CorePage<CoreInteraction>) -> Self {
        InteractionPage {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

// ----- consent ------------------------------------------------------------------

/// The answer a customer gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ConsentStatus {
    /// Agreed.
    Granted,
    /// Refused.
    Denied,
    /// Took back an earlier agreement.
    Withdrawn,
}

impl From<CoreConsentStatus> for ConsentStatus {
    fn from(s: CoreConsentStatus) -> Self {
        match s {
            CoreConsentStatus::Granted => ConsentStatus::Granted,
            CoreConsentStatus::Denied => ConsentStatus::Denied,
            CoreConsentStatus::Withdrawn => ConsentStatus::Withdrawn,
        }
    }
}

impl From<ConsentStatus> for CoreConsentStatus {
    fn from(s: ConsentStatus) -> Self {
        match s {
            ConsentStatus::Granted => CoreConsentStatus::Granted,
            ConsentStatus::Denied => CoreConsentStatus::Denied,
            ConsentStatus::Withdrawn => CoreConsentStatus::Withdrawn,
        }
    }
}

/// The legal basis of processing (GDPR article 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum LegalBasis {
    /// The customer's consent.
    Consent,
    /// Needed for a contract.
    Contract,
    /// Required by law.
    LegalObligation,
    /// To protect someone's life.
    VitalInterests,
    /// A task in the public interest.
    PublicTask,
    /// Legitimate interests.
    LegitimateInterests,
}

impl From<CoreLegalBasis> for LegalBasis {
    fn from(b: CoreLegalBasis) -> Self {
        match b {
            CoreLegalBasis::Consent => LegalBasis::Consent,
            CoreLegalBasis::Contract => LegalBasis::Contract,
            CoreLegalBasis::LegalObligation => LegalBasis::LegalObligation,
            CoreLegalBasis::VitalInterests => LegalBasis::VitalInterests,
            CoreLegalBasis::PublicTask => LegalBasis::PublicTask,
            CoreLegalBasis::LegitimateInterests => LegalBasis::LegitimateInterests,
        }
    }
}

impl From<LegalBasis> for CoreLegalBasis {
    fn from(b: LegalBasis) -> Self {
        match b {
            LegalBasis::Consent => CoreLegalBasis::Consent,
            LegalBasis::Contract => CoreLegalBasis::Contract,
            LegalBasis::LegalObligation => CoreLegalBasis::LegalObligation,
            LegalBasis::VitalInterests => CoreLegalBasis::VitalInterests,
            LegalBasis::PublicTask => CoreLegalBasis::PublicTask,
            LegalBasis::LegitimateInterests => CoreLegalBasis::LegitimateInterests,
        }
    }
}

/// One entry of a customer's consent ledger.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct ConsentRecord {
    /// Record id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// What the data is used for, e.g. `email_marketing`.
    pub purpose: String,
    /// The channel; `None` means every channel.
    pub channel: Option<String>,
    /// The answer.
    pub status: ConsentStatus,
    /// Legal basis.
    pub legal_basis: Option<LegalBasis>,
    /// Where the answer was given.
    pub source: Option<String>,
    /// Evidence.
    pub proof: Option<String>,
    /// When the customer answered.
    pub recorded_at: SystemTime,
}

impl From<CoreConsentRecord> for ConsentRecord {
    fn from(r: CoreConsentRecord) -> Self {
        ConsentRecord {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            purpose: r.purpose,
            channel: r.channel,
            status: r.status.into(),
            legal_basis: r.legal_basis.map(Into::into),
            source: r.source,
            proof: r.proof,
            recorded_at: time_out(r.recorded_at),
        }
    }
}

/// A consent answer to record.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct NewConsent {
    /// What the data is used for; a lower-case identifier.
    pub purpose: String,
    /// The answer.
    pub status: ConsentStatus,
    /// Channel; `None` for every channel.
    #[uniffi(default)]
    pub channel: Option<String>,
    /// Legal basis.
    #[uniffi(default)]
    pub legal_basis: Option<LegalBasis>,
    /// Where it was given.
    #[uniffi(default)]
    pub source: Option<String>,
    /// Evidence.
    #[uniffi(default)]
    pub proof: Option<String>,
    /// When; now when `None`.
    #[uniffi(default)]
    pub recorded_at: Option<SystemTime>,
}

impl TryFrom<NewConsent> for CoreNewConsent {
    type Error = CrmError;

    fn try_from(n: NewConsent) -> Result<Self, CrmError> {
        Ok(CoreNewConsent {
            channel: n.channel,
            legal_basis: n.legal_basis.map(Into::into),
            source: n.source,
            proof: n.proof,
            recorded_at: n
                .recorded_at
                .map(|t| time_in("recorded_at", t))
                .transpose()?,
            ..CoreNewConsent::new(n.purpose, n.status.into())
        })
    }
}

// ----- search and change log -----------------------------------------------------

/// Where a search matched.
#[derive(Clone, Debug, PartialEq, uniffi::Enum)]
pub enum SearchMatch {
    /// The customer's own name, emails, phones or organization.
    Customer,
    /// The subject of one of the customer's interactions.
    Interaction {
        /// The interaction.
        interaction_id: String,
        /// Its subject.
        subject: String,
    },
}

impl From<CoreSearchMatch> for SearchMatch {
    fn from(m: CoreSearchMatch) -> Self {
        match m {
            CoreSearchMatch::Customer => SearchMatch::Customer,
            CoreSearchMatch::Interaction {
                interaction_id,
                subject,
            } => SearchMatch::Interaction {
                interaction_id: interaction_id.to_string(),
                subject,
            },
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct SearchHit {
    /// The customer found.
    pub customer: Customer,
    /// Relevance (higher is better).
    pub score: f64,
    /// What matched.
    pub matched: SearchMatch,
}

impl From<CoreSearchHit> for SearchHit {
    fn from(h: CoreSearchHit) -> Self {
        SearchHit {
            customer: h.customer.into(),
            score: h.score,
            matched: h.matched.into(),
        }
    }
}

/// What kind of entity changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum EntityKind {
    /// A customer.
    Customer,
    /// An interaction.
    Interaction,
    /// A consent record.
    Consent,
    /// A segment's definition (created, renamed, redefined, deleted); the
    /// entry's id is the segment's.
    Segment,
    /// A customer entering (`Created`) or leaving (`Deleted`) a segment: the
    /// entry's id is the customer's and its `fields` hold the segment's name.
    SegmentMember,
    /// A sales pipeline's definition.
    Pipeline,
    /// A deal.
    Deal,
    /// A task.
    Task,
    /// A rule's definition.
    Rule,
    /// An assignment team.
    Team,
    /// The lifecycle configuration.
    Settings,
}

impl From<CoreEntityKind> for EntityKind {
    fn from(k: CoreEntityKind) -> Self {
        match k {
            CoreEntityKind::Customer => EntityKind::Customer,
            CoreEntityKind::Interaction => EntityKind::Interaction,
            CoreEntityKind::Consent => EntityKind::Consent,
            CoreEntityKind::Segment => EntityKind::Segment,
            CoreEntityKind::SegmentMember => EntityKind::SegmentMember,
            CoreEntityKind::Pipeline => EntityKind::Pipeline,
            CoreEntityKind::Deal => EntityKind::Deal,
            CoreEntityKind::Task => EntityKind::Task,
            CoreEntityKind::Rule => EntityKind::Rule,
            CoreEntityKind::Team => EntityKind::Team,
            CoreEntityKind::Settings => EntityKind::Settings,
        }
    }
}

/// What happened to an entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeOp {
    /// Created.
    Created,
    /// Some fields changed.
    Updated,
    /// Deleted.
    Deleted,
}

impl From<CoreChangeOp> for ChangeOp {
    fn from(o: CoreChangeOp) -> Self {
        match o {
            CoreChangeOp::Created => ChangeOp::Created,
            CoreChangeOp::Updated => ChangeOp::Updated,
            CoreChangeOp::Deleted => ChangeOp::Deleted,
        }
    }
}

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Change {
    /// Position in the log; strictly increasing.
    pub seq: i64,
    /// When the change was made.
    pub at: SystemTime,
    /// The kind of entity.
    pub entity: EntityKind,
    /// The entity's id.
    pub entity_id: String,
    /// What happened.
    pub op: ChangeOp,
    /// For updates, the fields that changed.
    pub fields: Vec<String>,
    /// Who made the change.
    pub actor: Option<String>,
    /// Through what.
    pub source: Option<String>,
    /// The rule whose action made the change, if a rule made it.
    pub rule: Option<String>,
}

impl From<CoreChange> for Change {
    fn from(c: CoreChange) -> Self {
        Change {
            seq: c.seq,
            at: time_out(c.at),
            entity: c.entity.into(),
            entity_id: c.entity_id,
            op: c.op.into(),
            fields: c.fields,
            actor: c.actor,
            source: c.source,
            rule: c.rule,
        }
    }
}

// ----- filters and segments ----------------------------------------------------------

/// Which page of matching customers or segment members to read: `None`
/// means crm-core's default (100 per page, from the start).
pub(crate) fn members_query(limit: Option<u32>, cursor: Option<String>) -> CoreMembersQuery {
    CoreMembersQuery {
        limit: limit.unwrap_or(CoreMembersQuery::default().limit),
        cursor,
    }
}

/// What `explain` tells about a filter: the SQL it runs as and SQLite's
/// plan for it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Explain {
    /// The canonical text of the expression.
    pub canonical: String,
    /// The SQL that counts the matching customers; values are parameters.
    pub sql: String,
    /// The parameters' values, in order (`?1`, `?2`, …), as text.
    pub params: Vec<String>,
    /// SQLite's query plan, one step per line, indented under its parent.
    pub plan: Vec<String>,
}

impl From<CoreExplain> for Explain {
    fn from(e: CoreExplain) -> Self {
        Explain {
            canonical: e.canonical,
            sql: e.sql,
            params: e.params,
            plan: e.plan,
        }
    }
}

/// Whether a segment is defined by an expression or by a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SegmentKind {
    /// Defined by a filter expression; members are whoever matches now.
    Dynamic,
    /// An explicit list of customers.
    Static,
}

impl From<CoreSegmentKind> for SegmentKind {
    fn from(k: CoreSegmentKind) -> Self {
        match k {
            CoreSegmentKind::Dynamic => SegmentKind::Dynamic,
            CoreSegmentKind::Static => SegmentKind::Static,
        }
    }
}

/// A named group of customers: dynamic (whoever matches `filter`) or
/// static (customers added one by one).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct Segment {
    /// Globally unique, time-ordered id.
    pub id: String,
    /// Its unique name, e.g. `churn-risk`.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Dynamic or static.
    pub kind: SegmentKind,
    /// The canonical text of a dynamic segment's expression; `None` for a
    /// static one.
    pub filter: Option<String>,
    /// When it was created.
    pub created_at: SystemTime,
    /// When its definition last changed.
    pub updated_at: SystemTime,
    /// When its membership was last materialized; `None` if never.
    pub evaluated_at: Option<SystemTime>,
}

impl From<CoreSegment> for Segment {
    fn from(s: CoreSegment) -> Self {
        Segment {
            id: s.id.to_string(),
            name: s.name,
            description: s.description,
            kind: s.kind.into(),
            filter: s.filter,
            created_at: time_out(s.created_at),
            updated_at: time_out(s.updated_at),
            evaluated_at: s.evaluated_at.map(time_out),
        }
    }
}

/// The segment `create_segment` makes: dynamic with a filter, static
/// without.
pub(crate) fn new_segment(
    name: String,
    filter: Option<String>,
    description: Option<String>,
) -> CoreNewSegment {
    CoreNewSegment {
        name,
        description,
        filter,
    }
}

/// The change `update_segment` makes: `None` leaves a field as it is;
/// `clear_description` empties the description (and wins over a
/// `description` given in the same call, as `CustomerPatch.clear` does).
pub(crate) fn segment_patch(
    filter: Option<String>,
    description: Option<String>,
    clear_description: bool,
) -> CoreSegmentPatch {
    CoreSegmentPatch {
        description: if clear_description {
            Some(None)
        } else {
            description.map(Some)
        },
        filter,
    }
}

/// The outcome of `materialize_segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct MaterializeReport {
    /// Members now.
    pub members: u64,
    /// Customers who were not members at the last materialization and are
    /// now.
    pub entered: u64,
    /// Customers who were members at the last materialization and are not
    /// now.
    pub left: u64,
}

impl From<CoreMaterializeReport> for MaterializeReport {
    fn from(r: CoreMaterializeReport) -> Self {
        MaterializeReport {
            members: r.members,
            entered: r.entered,
            left: r.left,
        }
    }
}

// ----- import and export -----------------------------------------------------------

/// What to do with bad rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ImportMode {
    /// The first bad row aborts the import with `InvalidRow`; nothing is
    /// written.
    AllOrNothing,
    /// Bad rows are reported and skipped; good rows are applied.
    SkipInvalid,
}

impl From<ImportMode> for CoreImportMode {
    fn from(m: ImportMode) -> Self {
        match m {
            ImportMode::AllOrNothing => CoreImportMode::AllOrNothing,
            ImportMode::SkipInvalid => CoreImportMode::SkipInvalid,
        }
    }
}

/// How to import. `None` means crm-core's default (all-or-nothing, 1000
/// row errors kept, progress every 10,000 rows).
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ImportOptions {
    /// What to do with bad rows.
    #[uniffi(default)]
    pub mode: Option<ImportMode>,
    /// Customers only: update the customer a row matches (by external id,
    /// else email) instead of rejecting it as a conflict.
    #[uniffi(default = false)]
    pub upsert: bool,
    /// At most this many row errors are kept in the report.
    #[uniffi(default)]
    pub max_errors: Option<u64>,
    /// The progress listener is called every this many rows (and at the
    /// end).
    #[uniffi(default)]
    pub progress_every: Option<u64>,
}

impl From<ImportOptions> for CoreImportOptions {
    fn from(o: ImportOptions) -> Self {
        let default = CoreImportOptions::default();
        CoreImportOptions {
            mode: o.mode.map_or(default.mode, Into::into),
            upsert: o.upsert,
            max_errors: o.max_errors.map_or(default.max_errors, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            }),
            progress_every: o.progress_every.unwrap_or(default.progress_every),
        }
    }
}

/// Maps fields to the columns (CSV headers, NDJSON keys) that hold them.
/// Columns named like a field need no mapping; unknown columns are an error
/// unless listed in `ignore`.
#[derive(Clone, Debug, Default, PartialEq, uniffi::Record)]
pub struct ColumnMapping {
    /// field → column.
    #[uniffi(default)]
    pub columns: HashMap<String, String>,
    /// Columns to skip.
    #[uniffi(default)]
    pub ignore: Vec<String>,
}

impl From<ColumnMapping> for CoreColumnMapping {
    fn from(m: ColumnMapping) -> Self {
        CoreColumnMapping {
            columns: m.columns.into_iter().collect(),
            ignore: m.ignore,
        }
    }
}

/// A rejected row.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RowError {
    /// 1-based row number.
    pub row: u64,
    /// The field or column that was wrong (empty when the whole row was).
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

impl From<CoreRowError> for RowError {
    fn from(e: CoreRowError) -> Self {
        RowError {
            row: e.row,
            field: e.field,
            reason: e.reason,
        }
    }
}

/// How far an import has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ImportProgress {
    /// Rows read so far.
    pub rows: u64,
    /// Rows applied so far.
    pub applied: u64,
    /// Rows rejected so far.
    pub rejected: u64,
}

impl From<CoreImportProgress> for ImportProgress {
    fn from(p: CoreImportProgress) -> Self {
        ImportProgress {
            rows: p.rows,
            applied: p.applied,
            rejected: p.rejected,
        }
    }
}

/// The outcome of an import.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct ImportReport {
    /// Rows read.
    pub rows: u64,
    /// New records created.
    pub inserted: u64,
    /// Existing customers updated (upsert only).
    pub updated: u64,
    /// Rows rejected (may exceed `errors.size`).
    pub rejected: u64,
    /// The first `max_errors` rejected rows.
    pub errors: Vec<RowError>,
}

impl From<CoreImportReport> for ImportReport {
    fn from(r: CoreImportReport) -> Self {
        ImportReport {
            rows: r.rows,
            inserted: r.inserted,
            updated: r.updated,
            rejected: r.rejected,
            errors: r.errors.into_iter().map(Into::into).collect(),
        }
    }
}

/// The format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ExportFormat {
    /// CSV with a header row (imports back unchanged).
    Csv,
    /// One JSON object per line.
    Ndjson,
}

impl From<ExportFormat> for CoreExportFormat {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Csv => CoreExportFormat::Csv,
            ExportFormat::Ndjson => CoreExportFormat::Ndjson,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id() -> String {
        CoreCustomerId::new().to_string()
    }

    #[test]
    fn times_round_trip_to_the_nanosecond_and_before_the_epoch() {
        for t in [
            UNIX_EPOCH + Duration::new(1_714_557_600, 123_456_789),
            UNIX_EPOCH - Duration::new(86_400 * 365, 250_000_000),
            UNIX_EPOCH - Duration::new(5, 0),
            UNIX_EPOCH,
        ] {
            assert_eq!(time_out(time_in("at", t).unwrap()), t);
        }
    }

    #[test]
    fn a_time_beyond_chronos_range_is_a_validation_error_not_a_panic() {
        let far = UNIX_EPOCH + Duration::from_secs(31_556_889_864_403_199); // Kotlin Instant.MAX
        assert_eq!(
            time_in("occurred_at", far),
            Err(CrmError::Validation {
                field: "occurred_at".into(),
                reason: "is out of the supported time range".into()
            })
        );
    }

    #[test]
    fn dates_are_read_by_core_and_written_as_iso() {
        let d = date_in("birth_date", " 1990-02-28 ").unwrap();
        assert_eq!(date_out(d), "1990-02-28");
        let err = date_in("birth_date", "28.2.1990").unwrap_err();
        assert!(
            matches!(err, CrmError::Validation { ref field, .. } if field == "birth_date"),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_id_is_reported_on_the_hosts_field() {
        let err = customer_id_in("organization_id", "nope").unwrap_err();
        assert!(
            matches!(err, CrmError::Validation { ref field, .. } if field == "organization_id")
        );
        let good = id();
        assert_eq!(
            customer_id_in("customer_id", &good).unwrap().to_string(),
            good
        );
    }

    #[test]
    fn a_new_customer_converts_every_field() {
        let org = id();
        let new = NewCustomer {
            kind: Some(CustomerKind::Person),
            external_id: Some("X-1".into()),
            first_name: Some("Ana".into()),
            last_name: Some("Novak".into()),
            organization_id: Some(org.clone()),
            emails: vec!["Ana@Example.com".into()],
            phones: vec!["+38640123456".into()],
            addresses: vec![Address {
                city: Some("Ljubljana".into()),
                ..Default::default()
            }],
            birth_date: Some("1990-02-28".into()),
            tags: vec!["VIP".into()],
            attributes: HashMap::from([
                (
                    "plan".into(),
                    AttributeValue::Text {
                        value: "pro".into(),
                    },
                ),
                (
                    "renews".into(),
                    AttributeValue::Date {
                        value: "2025-01-31".into(),
                    },
                ),
                ("seats".into(), AttributeValue::Number { value: 3.0 }),
                ("trial".into(), AttributeValue::Bool { value: false }),
            ]),
            ..Default::default()
        };
        let core = CoreNewCustomer::try_from(new).unwrap();
        assert_eq!(core.kind, CoreCustomerKind::Person);
        assert_eq!(core.organization_id.unwrap().to_string(), org);
        assert_eq!(core.birth_date, NaiveDate::from_ymd_opt(1990, 2, 28));
        assert_eq!(core.addresses[0].city.as_deref(), Some("Ljubljana"));
        assert_eq!(
            core.attributes["renews"],
            CoreAttributeValue::Date(NaiveDate::from_ymd_opt(2025, 1, 31).unwrap())
        );
        assert_eq!(core.attributes["seats"], CoreAttributeValue::Number(3.0));
        assert_eq!(
            core.emails,
            ["Ana@Example.com"],
            "normalizing is crm-core's job, on store"
        );
    }

    #[test]
    fn no_kind_means_cores_default() {
        let core = CoreNewCustomer::try_from(NewCustomer::default()).unwrap();
        assert_eq!(core.kind, CoreCustomerKind::default());
    }

    #[test]
    fn a_bad_date_attribute_names_the_attribute() {
        let new = NewCustomer {
            attributes: HashMap::from([(
                "renews".into(),
                AttributeValue::Date {
                    value: "soon".into(),
                },
            )]),
            ..Default::default()
        };
        let err = CoreNewCustomer::try_from(new).unwrap_err();
        assert!(
            matches!(err, CrmError::Validation { ref field, .. } if field == "attributes.renews"),
            "{err:?}"
        );
    }

    #[test]
    fn a_stored_customer_converts_back() {
        let crm = crm_core::Crm::open_in_memory().unwrap();
        let stored = crm
            .create_customer(CoreNewCustomer {
                name: Some("Acme".into()),
                kind: CoreCustomerKind::Organization,
                birth_date: None,
                attributes: [(
                    "since".to_string(),
                    CoreAttributeValue::Text("2020-01-01".into()),
                )]
                .into(),
                ..Default::default()
            })
            .unwrap();
        let ffi = Customer::from(stored.clone());
        assert_eq!(ffi.id, stored.id.to_string());
        assert_eq!(ffi.kind, CustomerKind::Organization);
        assert_eq!(ffi.created_at, SystemTime::from(stored.created_at));
        assert_eq!(
            ffi.attributes["since"],
            AttributeValue::Text {
                value: "2020-01-01".into()
            }
        );
    }

    #[test]
    fn a_patch_sets_then_clears_by_name() {
        let patch = CoreCustomerPatch::try_from(CustomerPatch {
            owner: Some("maja".into()),
            locale: Some("sl-SI".into()),
            birth_date: Some("2000-01-01".into()),
            remove_attributes: vec!["plan".into()],
            clear: vec!["locale".into(), "tags".into()],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(patch.owner, Some(Some("maja".into())));
        assert_eq!(
            patch.locale,
            Some(None),
            "clear wins over a set of the same field"
        );
        assert_eq!(patch.tags, Some(vec![]));
        assert_eq!(patch.birth_date, Some(NaiveDate::from_ymd_opt(2000, 1, 1)));
        assert_eq!(patch.remove_attributes, ["plan"]);
        assert_eq!(patch.name, None);
    }

    #[test]
    fn clearing_a_required_or_unknown_field_is_cores_validation_error() {
        for name in ["name", "nmae"] {
            let err = CoreCustomerPatch::try_from(CustomerPatch {
                clear: vec![name.into()],
                ..Default::default()
            })
            .unwrap_err();
            assert!(
                matches!(err, CrmError::Validation { ref field, .. } if field == name),
                "{err:?}"
            );
        }
    }

    #[test]
    fn interaction_kinds_round_trip_and_custom_names_are_parsed_by_core() {
        let kinds = [
            InteractionKind::Purchase,
            InteractionKind::Email,
            InteractionKind::Call,
            InteractionKind::Meeting,
            InteractionKind::Note,
            InteractionKind::Ticket,
            InteractionKind::WebVisit,
            InteractionKind::Social,
            InteractionKind::SurveyResponse,
            InteractionKind::Custom {
                name: "demo_booked".into(),
            },
        ];
        for k in kinds {
            let core = CoreInteractionKind::try_from(k.clone()).unwrap();
            assert_eq!(InteractionKind::from(core), k);
        }
        let builtin = CoreInteractionKind::try_from(InteractionKind::Custom {
            name: "Purchase".into(),
        })
        .unwrap();
        assert_eq!(builtin, CoreInteractionKind::Purchase);
        let err = CoreInteractionKind::try_from(InteractionKind::Custom {
            name: "not a kind!".into(),
        })
        .unwrap_err();
        assert!(matches!(err, CrmError::Validation { ref field, .. } if field == "kind"));
    }

    #[test]
    fn a_new_interaction_converts_metadata_time_and_reference() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let new = NewInteraction {
            customer: CustomerRef::Email {
                email: "ana@example.com".into(),
            },
            kind: InteractionKind::Purchase,
            channel: None,
            direction: Some(Direction::Inbound),
            occurred_at: Some(at),
            subject: None,
            body: None,
            amount_minor: Some(12_990),
            currency: Some("EUR".into()),
            product: None,
            quantity: Some(2),
            score: None,
            metadata: Some(r#"{"order":"A-1"}"#.into()),
        };
        let core = CoreNewInteraction::try_from(new.clone()).unwrap();
        assert_eq!(
            core.customer,
            CoreCustomerRef::Email("ana@example.com".into())
        );
        assert_eq!(core.occurred_at.map(SystemTime::from), Some(at));
        assert_eq!(core.metadata, Some(serde_json::json!({"order": "A-1"})));
        assert_eq!(core.direction, Some(CoreDirection::Inbound));

        let blank = CoreNewInteraction::try_from(NewInteraction {
            metadata: Some(" ".into()),
            ..new.clone()
        })
        .unwrap();
        assert_eq!(blank.metadata, None);

        let err = CoreNewInteraction::try_from(NewInteraction {
            metadata: Some("{not json".into()),
            ..new
        })
        .unwrap_err();
        assert!(matches!(err, CrmError::Validation { ref field, .. } if field == "metadata"));
    }

    #[test]
    fn list_imports_give_core_the_same_customer_as_a_create() {
        // The record path and the create path must agree: import one, create
        // the other, compare what was stored.
        let crm = crm_core::Crm::open_in_memory().unwrap();
        let org = crm
            .create_customer(CoreNewCustomer {
                kind: CoreCustomerKind::Organization,
                name: Some("Acme".into()),
                ..Default::default()
            })
            .unwrap();
        let make = |n: u8| NewCustomer {
            external_id: Some(format!("X-{n}")),
            first_name: Some("Ana".into()),
            last_name: Some("Novak".into()),
            organization_id: Some(org.id.to_string()),
            emails: vec![format!("ana{n}@example.com")],
            phones: vec!["+38640123456".into()],
            addresses: vec![Address {
                line1: Some("Trg 1".into()),
                country: Some("si".into()),
                ..Default::default()
            }],
            birth_date: Some("1990-02-28".into()),
            locale: Some("sl-SI".into()),
            country: Some("SI".into()),
            tags: vec!["VIP".into(), "newsletter".into()],
            attributes: HashMap::from([
                (
                    "plan".into(),
                    AttributeValue::Text {
                        value: "pro".into(),
                    },
                ),
                (
                    "renews".into(),
                    AttributeValue::Date {
                        value: "2025-01-31".into(),
                    },
                ),
                ("seats".into(), AttributeValue::Number { value: 3.5 }),
                ("trial".into(), AttributeValue::Bool { value: true }),
            ]),
            lifecycle_stage: Some("lead".into()),
            owner: Some("maja".into()),
            source: Some("app".into()),
            ..Default::default()
        };
        let created = Customer::from(crm.create_customer(make(1).try_into().unwrap()).unwrap());
        let report = crm
            .import_customer_records(
                [make(2).to_import_record()],
                &CoreImportOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(report.inserted, 1, "{report:?}");
        let imported = Customer::from(crm.find_customer_by_external_id("X-2").unwrap().unwrap());
        let comparable = |c: Customer| Customer {
            id: String::new(),
            external_id: None,
            emails: vec![],
            created_at: UNIX_EPOCH,
            updated_at: UNIX_EPOCH,
            ..c
        };
        assert_eq!(comparable(created), comparable(imported));
    }

    #[test]
    fn list_imports_give_core_the_same_interaction_as_a_log() {
        let crm = crm_core::Crm::open_in_memory().unwrap();
        let c = crm
            .create_customer(CoreNewCustomer {
                name: Some("Ana".into()),
                emails: vec!["ana@example.com".into()],
                ..Default::default()
            })
            .unwrap();
        let new = NewInteraction {
            customer: CustomerRef::Id {
                id: c.id.to_string(),
            },
            kind: InteractionKind::Custom {
                name: "demo_booked".into(),
            },
            channel: Some("Web".into()),
            direction: Some(Direction::Outbound),
            occurred_at: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_000)),
            subject: Some("Demo".into()),
            body: Some("Went well".into()),
            amount_minor: Some(-500),
            currency: Some("eur".into()),
            product: Some("SKU-1".into()),
            quantity: Some(3),
            score: Some(9),
            metadata: Some(r#"{"a":[1,2]}"#.into()),
        };
        let logged = Interaction::from(
            crm.log_interaction(new.clone().try_into().unwrap())
                .unwrap(),
        );
        let report = crm
            .import_interaction_records(
                [new.to_import_record()],
                &CoreImportOptions::default(),
                None,
            )
            .unwrap();
        assert_eq!(report.inserted, 1, "{report:?}");
        let page = crm.timeline(c.id, &CoreTimelineQuery::default()).unwrap();
        let imported = page
            .items
            .into_iter()
            .map(Interaction::from)
            .find(|i| i.id != logged.id)
            .unwrap();
        let comparable = |i: Interaction| Interaction {
            id: String::new(),
            created_at: UNIX_EPOCH,
            ..i
        };
        assert_eq!(comparable(logged), comparable(imported));
    }

    #[test]
    fn options_left_empty_take_cores_defaults() {
        assert_eq!(
            CoreListCustomers::from(ListCustomers::default()),
            CoreListCustomers::default()
        );
        assert_eq!(
            CoreTimelineQuery::try_from(TimelineQuery::default()).unwrap(),
            CoreTimelineQuery::default()
        );
        assert_eq!(
            CoreImportOptions::from(ImportOptions::default()),
            CoreImportOptions::default()
        );
        let open = CoreOpenOptions::from(OpenOptions::default());
        assert_eq!(
            open.busy_timeout_ms,
            CoreOpenOptions::default().busy_timeout_ms
        );
        let set = CoreImportOptions::from(ImportOptions {
            mode: Some(ImportMode::SkipInvalid),
            upsert: true,
            max_errors: Some(u64::MAX),
            progress_every: Some(7),
        });
        assert_eq!(set.mode, CoreImportMode::SkipInvalid);
        assert_eq!(set.max_errors, usize::MAX);
        assert_eq!(set.progress_every, 7);
    }
}
