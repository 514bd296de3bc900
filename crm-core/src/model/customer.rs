//! Customers: people and organizations.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::ids::CustomerId;
use crate::error::{Error, Result};
use crate::model::normalize;

/// Longest name accepted, in characters.
pub const MAX_NAME_LEN: usize = 512;
/// Most emails, phones or addresses on one customer.
pub const MAX_CONTACTS: usize = 32;
/// Most tags on one customer.
pub const MAX_TAGS: usize = 256;
/// Most custom attributes on one customer.
pub const MAX_ATTRIBUTES: usize = 256;
/// Longest short text field (owner, source, external id, address lines).
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest text attribute value.
pub const MAX_ATTRIBUTE_TEXT: usize = 4096;

/// Whether a customer is a person or an organization.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    /// A natural person (may belong to an organization).
    #[default]
    Person,
    /// A company or other organization.
    Organization,
}

impl CustomerKind {
    /// The stored name: `person` or `organization`.
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::Person => "person",
            CustomerKind::Organization => "organization",
        }
    }

    /// Parses `person` or `organization`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "person" => Ok(CustomerKind::Person),
            "organization" | "organisation" | "org" => Ok(CustomerKind::Organization),
            _ => Err(Error::validation(
                "kind",
                "must be 'person' or 'organization'",
            )),
        }
    }
}

/// A postal address.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Address {
    /// What the address is for, e.g. `billing`, `shipping`, `home`.
    pub label: Option<String>,
    /// First street line.
    pub line1: Option<String>,
    /// Second street line.
    pub line2: Option<String>,
    /// City or town.
    pub city: Option<String>,
    /// State, province or region.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
}

/// The type of a custom attribute. Each attribute key has one type, fixed by
/// its definition (explicit, or by the first value stored under the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    /// Free text.
    Text,
    /// A number (stored as a 64-bit float).
    Number,
    /// True or false.
    Bool,
    /// A calendar date.
    Date,
}

impl AttributeType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::Text => "text",
            AttributeType::Number => "number",
            AttributeType::Bool => "bool",
            AttributeType::Date => "date",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "text" => Ok(AttributeType::Text),
            "number" => Ok(AttributeType::Number),
            "bool" => Ok(AttributeType::Bool),
            "date" => Ok(AttributeType::Date),
            _ => Err(Error::validation(
                "attribute_type",
                "must be text, number, bool or date",
            )),
        }
    }
}

/// A typed custom attribute value.
///
/// In JSON it is a plain string, number or boolean; a date is written as
/// `"YYYY-MM-DD"` and read back as a date where the key is defined as a date
/// (or given explicitly as `{"date": "YYYY-MM-DD"}`).
#[derive(Clone, Debug, PartialEq)]
pub enum AttributeValue {
    /// Free text.
    Text(String),
    /// A finite number.
    Number(f64),
    /// True or false.
    Bool(bool),
    /// A calendar date.
    Date(NaiveDate),
}

impl AttributeValue {
    /// The type of this value.
    pub fn attribute_type(&self) -> AttributeType {
        match self {
            AttributeValue::Text(_) => AttributeType::Text,
            AttributeValue::Number(_) => AttributeType::Number,
            AttributeValue::Bool(_) => AttributeType::Bool,
            AttributeValue::Date(_) => AttributeType::Date,
        }
    }

    /// Converts the value to `ty`, where the conversion is lossless (a text
    /// that is a date becomes a date, a text that is a number a number).
    pub fn coerce(self, ty: AttributeType) -> std::result::Result<Self, String> {
        use AttributeValue as V;
        match (self, ty) {
            (v, t) if v.attribute_type() == t => Ok(v),
            (V::Text(s), AttributeType::Date) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(V::Date)
                .map_err(|_| "must be a date (YYYY-MM-DD)".to_string()),
            (V::Text(s), AttributeType::Number) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(V::Number(n)),
                _ => Err("must be a number".to_string()),
            },
            (V::Text(s), AttributeType::Bool) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok(V::Bool(true)),
                "false" | "no" | "0" => Ok(V::Bool(false)),
                _ => Err("must be true or false".to_string()),
            },
            (v, t) => Err(format!(
                "is a {} but the attribute is defined as {}",
                v.attribute_type().as_str(),
                t.as_str()
            )),
        }
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            AttributeValue::Text(s) => serde_json::Value::String(s.clone()),
            AttributeValue::Number(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            AttributeValue::Bool(b) => serde_json::Value::Bool(*b),
            AttributeValue::Date(d) => serde_json::Value::String(d.format("%Y-%m-%d").to_string()),
        }
    }
}

impl Serialize for AttributeValue {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Number(f64),
            Text(String),
            Date { date: NaiveDate },
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Bool(b) => AttributeValue::Bool(b),
            Raw::Number(n) => AttributeValue::Number(n),
            Raw::Text(s) => AttributeValue::Text(s),
            Raw::Date { date } => AttributeValue::Date(date),
        })
    }
}

/// A stored customer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Globally unique, time-ordered id.
    pub id: CustomerId,
    /// Person or organization.
    pub kind: CustomerKind,
    /// The id of this customer in another system (unique when set).
    pub external_id: Option<String>,
    /// Display name (full name of a person, name of an organization).
    pub name: String,
    /// Given name of a person.
    pub first_name: Option<String>,
    /// Family name of a person.
    pub last_name: Option<String>,
    /// The organization a person belongs to.
    pub organization_id: Option<CustomerId>,
    /// Lower-cased emails; the first is the primary one. Each email belongs to
    /// one customer at most.
    pub emails: Vec<String>,
    /// Phones in E.164; the first is the primary one.
    pub phones: Vec<String>,
    /// Postal addresses.
    pub addresses: Vec<Address>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// BCP 47 locale, e.g. `sl-SI`.
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Lower-cased tags, sorted and without duplicates.
    pub tags: Vec<String>,
    /// Typed custom attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Lifecycle stage, e.g. `lead` or `customer`.
    pub lifecycle_stage: String,
    /// The user who owns the relationship.
    pub owner: Option<String>,
    /// Where the customer came from (a form, an import, a campaign).
    pub source: Option<String>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
}

/// The lifecycle stage a new customer gets when none is given, unless the
/// [`crate::LifecycleConfig`] names another.
pub const DEFAULT_LIFECYCLE_STAGE: &str = "subscriber";

/// The default ordered lifecycle stages, earliest first (see
/// [`crate::LifecycleConfig`], which a CRM may change): what `stage >= "mql"`
/// in a filter expression compares by.
pub const LIFECYCLE_STAGES: &[&str] = &[
    "subscriber",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "evangelist",
];

/// The default off-track lifecycle stages: outside the order, entered and
/// left freely.
pub const DEFAULT_OFF_TRACK_STAGES: &[&str] = &["other", "churned"];

/// A customer to create. Only `name` (or, for a person, a first or last name)
/// is required; everything is validated and normalized when stored.
///
/// ```
/// use crm_core::NewCustomer;
/// let ana = NewCustomer {
///     first_name: Some("Ana".into()),
///     last_name: Some("Novak".into()),
///     emails: vec!["Ana@Example.com".into()],
///     ..NewCustomer::default()
/// };
/// # let _ = ana;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewCustomer {
    /// Person (default) or organization.
    pub kind: CustomerKind,
    /// Id in another system; unique.
    pub external_id: Option<String>,
    /// Display name; for a person it defaults to "first last".
    pub name: Option<String>,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Organization the person belongs to.
    pub organization_id: Option<CustomerId>,
    /// Emails, primary first.
    pub emails: Vec<String>,
    /// Phones, primary first; read in the CRM's default region unless they
    /// start with `+`.
    pub phones: Vec<String>,
    /// Postal addresses.
    pub addresses: Vec<Address>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// ISO 3166-1 alpha-2 country.
    pub country: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom attributes.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// Lifecycle stage: one of the configured stages (see
    /// [`crate::LifecycleConfig`]); defaults to the configured default stage
    /// ([`DEFAULT_LIFECYCLE_STAGE`] unless changed).
    pub lifecycle_stage: Option<String>,
    /// Owner.
    pub owner: Option<String>,
    /// Source.
    pub source: Option<String>,
}

/// A partial update: fields left `None` are unchanged.
///
/// For nullable fields, `Some(None)` clears the value; [`CustomerPatch::clear`]
/// does the same by field name. Lists (emails, phones, tags, addresses) are
/// replaced whole; attributes are set and removed key by key.
///
/// ```
/// use crm_core::CustomerPatch;
/// let mut patch = CustomerPatch { owner: Some(Some("maja".into())), ..Default::default() };
/// patch.clear("locale").unwrap();
/// assert_eq!(patch.locale, Some(None));
/// assert!(patch.clear("name").is_err()); // a name can't be cleared
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerPatch {
    /// New external id, or `Some(None)` to clear it.
    pub external_id: Option<Option<String>>,
    /// New display name.
    pub name: Option<String>,
    /// New first name, or clear.
    pub first_name: Option<Option<String>>,
    /// New last name, or clear.
    pub last_name: Option<Option<String>>,
    /// New organization, or clear.
    pub organization_id: Option<Option<CustomerId>>,
    /// Replaces all emails.
    pub emails: Option<Vec<String>>,
    /// Replaces all phones.
    pub phones: Option<Vec<String>>,
    /// Replaces all addresses.
    pub addresses: Option<Vec<Address>>,
    /// New birth date, or clear.
    pub birth_date: Option<Option<NaiveDate>>,
    /// New locale, or clear.
    pub locale: Option<Option<String>>,
    /// New country, or clear.
    pub country: Option<Option<String>>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Attributes to set (others are kept).
    pub set_attributes: BTreeMap<String, AttributeValue>,
    /// Attribute keys to remove.
    pub remove_attributes: Vec<String>,
    /// New lifecycle stage.
    pub lifecycle_stage: Option<String>,
    /// New owner, or clear.
    pub owner: Option<Option<String>>,
    /// New source, or clear.
    pub source: Option<Option<String>>,
}

impl CustomerPatch {
    /// Clears the nullable field named `field` (list fields are emptied).
    /// Unknown fields and fields that can't be empty (`name`,
    /// `lifecycle_stage`) are a validation error.
    pub fn clear(&mut self, field: &str) -> Result<()> {
        match field {
            "external_id" => self.external_id = Some(None),
            "first_name" => self.first_name = Some(None),
            "last_name" => self.last_name = Some(None),
            "organization_id" => self.organization_id = Some(None),
            "emails" => self.emails = Some(Vec::new()),
            "phones" => self.phones = Some(Vec::new()),
            "addresses" => self.addresses = Some(Vec::new()),
            "birth_date" => self.birth_date = Some(None),
            "locale" => self.locale = Some(None),
            "country" => self.country = Some(None),
            "tags" => self.tags = Some(Vec::new()),
            "owner" => self.owner = Some(None),
            "source" => self.source = Some(None),
            "name" | "lifecycle_stage" => {
                return Err(Error::validation(field, "can't be cleared"));
            }
            _ => return Err(Error::validation(field, "unknown customer field")),
        }
        Ok(())
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &CustomerPatch::default()
    }
}

/// Normalization context: settings that change how input is read.
#[derive(Clone, Debug, Default)]
pub(crate) struct Normalizer {
    pub default_region: Option<String>,
}

fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => normalize::text(v, max)
            .map(Some)
            .map_err(|r| Error::validation(field, r)),
    }
}

impl Normalizer {
    pub fn external_id(&self, v: Option<&str>) -> Result<Option<String>> {
        opt_text("external_id", v, MAX_SHORT_TEXT)
    }

    pub fn name_parts(
        &self,
        kind: CustomerKind,
        name: Option<&str>,
        first: Option<&str>,
        last: Option<&str>,
    ) -> Result<(String, Option<String>, Option<String>)> {
        let first = opt_text("first_name", first, MAX_NAME_LEN)?;
        let last = opt_text("last_name", last, MAX_NAME_LEN)?;
        if kind == CustomerKind::Organization && (first.is_some() || last.is_some()) {
            return Err(Error::validation(
                "first_name",
                "an organization has only a name",
            ));
        }
        let name = match opt_text("name", name, MAX_NAME_LEN)? {
            Some(n) => n,
            None => match (&first, &last) {
                (None, None) => {
                    return Err(Error::validation(
                        "name",
                        "is empty (give a name, or a first or last name)",
                    ));
                }
                (f, l) => [f.as_deref(), l.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
            },
        };
        Ok((name, first, last))
    }

    pub fn emails(&self, raw: &[String]) -> Result<Vec<String>> {
        if raw.len() > MAX_CONTACTS {
            return Err(Error::validation("emails", "more than 32 emails"));
        }
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for (i, e) in raw.iter().enumerate() {
            let email =
                normalize::email(e).map_err(|r| Error::validation(format!("emails[{i}]"), r))?;
            if !out.contains(&email) {
                out.push(email);
            }
        }
        Ok(out)
    }

    pub fn phones(&self, raw: &[String]) -> Result<Vec<String>> {
        if raw.len() > MAX_CONTACTS {
            return Err(Error::validation("phones", "more than 32 phones"));
        }
        let mut out: Vec<String> = Vec::with_capacity(raw.len());
        for (i, p) in raw.iter().enumerate() {
            let phone = normalize::phone(p, self.default_region.as_deref())
                .map_err(|r| Error::validation(format!("phones[{i}]"), r))?;
            if !out.contains(&phone) {
                out.push(phone);
            }
        }
        Ok(out)
    }

    pub fn addresses(&self, raw: &[Address]) -> Result<Vec<Address>> {
        if raw.len() > MAX_CONTACTS {
            return Err(Error::validation("addresses", "more than 32 addresses"));
        }
        raw.iter()
            .enumerate()
            .map(|(i, a)| {
                let f = |name: &str, v: &Option<String>| {
                    opt_text(
                        &format!("addresses[{i}].{name}"),
                        v.as_deref(),
                        MAX_SHORT_TEXT,
                    )
                };
                let country = match a
                    .country
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    Some(c) => Some(
                        normalize::country(c)
                            .map_err(|r| Error::validation(format!("addresses[{i}].country"), r))?,
                    ),
                    None => None,
                };
                Ok(Address {
                    label: f("label", &a.label)?,
                    line1: f("line1", &a.line1)?,
                    line2: f("line2", &a.line2)?,
                    city: f("city", &a.city)?,
                    region: f("region", &a.region)?,
                    postal_code: f("postal_code", &a.postal_code)?,
                    country,
                })
            })
            .collect()
    }

    pub fn birth_date(&self, d: Option<NaiveDate>, today: NaiveDate) -> Result<Option<NaiveDate>> {
        match d {
            Some(d) if d > today => Err(Error::validation("birth_date", "is in the future")),
            Some(d) if d < NaiveDate::from_ymd_opt(1850, 1, 1).unwrap_or(NaiveDate::MIN) => {
                Err(Error::validation("birth_date", "is before 1850"))
            }
            other => Ok(other),
        }
    }

    pub fn locale(&self, v: Option<&str>) -> Result<Option<String>> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            Some(l) => normalize::locale(l)
                .map(Some)
                .map_err(|r| Error::validation("locale", r)),
            None => Ok(None),
        }
    }

    pub fn country(&self, v: Option<&str>) -> Result<Option<String>> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            Some(c) => normalize::country(c)
                .map(Some)
                .map_err(|r| Error::validation("country", r)),
            None => Ok(None),
        }
    }

    pub fn tags(&self, raw: &[String]) -> Result<Vec<String>> {
        if raw.len() > MAX_TAGS {
            return Err(Error::validation("tags", "more than 256 tags"));
        }
        let mut out = raw
            .iter()
            .enumerate()
            .map(|(i, t)| normalize::tag(t).map_err(|r| Error::validation(format!("tags[{i}]"), r)))
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// A stage name, lower-cased; empty when none is given, which the store
    /// turns into the configured default stage (it also checks that the
    /// stage is configured).
    pub fn lifecycle_stage(&self, v: Option<&str>) -> Result<String> {
        match v.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(String::new()),
            Some(s) => {
                let stage = s.to_ascii_lowercase();
                normalize::attribute_key(&stage).map_err(|_| {
                    Error::validation("lifecycle_stage", "must be a lower-case identifier")
                })
            }
        }
    }

    pub fn short(&self, field: &str, v: Option<&str>) -> Result<Option<String>> {
        opt_text(field, v, MAX_SHORT_TEXT)
    }

    /// Checks keys and values of attributes (types are reconciled with the
    /// stored definitions by the store).
    pub fn attribute(&self, key: &str, value: &AttributeValue) -> Result<String> {
        let key = normalize::attribute_key(key)
            .map_err(|r| Error::validation(format!("attributes.{key}"), r))?;
        match value {
            AttributeValue::Number(n) if !n.is_finite() => Err(Error::validation(
                format!("attributes.{key}"),
                "must be a finite number",
            )),
            AttributeValue::Text(s) => normalize::check_length(s, MAX_ATTRIBUTE_TEXT)
                .map(|_| key.clone())
                .map_err(|r| Error::validation(format!("attributes.{key}"), r)),
            _ => Ok(key),
        }
    }
}

impl Normalizer {
    /// Validates and normalizes `new` into a customer with a fresh id.
    /// Checks that need the database (uniqueness, the organization, attribute
    /// types) are the store's.
    pub fn new_customer(&self, new: &NewCustomer, now: DateTime<Utc>) -> Result<Customer> {
        let (name, first_name, last_name) = self.name_parts(
            new.kind,
            new.name.as_deref(),
            new.first_name.as_deref(),
            new.last_name.as_deref(),
        )?;
        if new.kind == CustomerKind::Organization && new.organization_id.is_some() {
            return Err(Error::validation(
                "organization_id",
                "an organization can't belong to an organization",
            ));
        }
        let mut attributes = BTreeMap::new();
        if new.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::validation("attributes", "more than 256 attributes"));
        }
        for (key, value) in &new.attributes {
            attributes.insert(self.attribute(key, value)?, value.clone());
        }
        Ok(Customer {
            id: CustomerId::new(),
            kind: new.kind,
            external_id: self.external_id(new.external_id.as_deref())?,
            name,
            first_name,
            last_name,
            organization_id: new.organization_id,
            emails: self.emails(&new.emails)?,
            phones: self.phones(&new.phones)?,
            addresses: self.addresses(&new.addresses)?,
            birth_date: self.birth_date(new.birth_date, now.date_naive())?,
            locale: self.locale(new.locale.as_deref())?,
            country: self.country(new.country.as_deref())?,
            tags: self.tags(&new.tags)?,
            attributes,
            lifecycle_stage: self.lifecycle_stage(new.lifecycle_stage.as_deref())?,
            owner: self.short("owner", new.owner.as_deref())?,
            source: self.short("source", new.source.as_deref())?,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies `patch` to `customer`, returning the names of the fields whose
    /// value actually changed (empty: nothing to write).
    pub fn apply_patch(
        &self,
        customer: &mut Customer,
        patch: &CustomerPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<&'static str>> {
        let mut next = customer.clone();
        if patch.name.is_some() || patch.first_name.is_some() || patch.last_name.is_some() {
            let first = match &patch.first_name {
                Some(v) => v.clone(),
                None => next.first_name.clone(),
            };
            let last = match &patch.last_name {
                Some(v) => v.clone(),
                None => next.last_name.clone(),
            };
            // A new first or last name without a new display name re-derives
            // the display name only if it was derived before.
            let derived_before = [
                customer.first_name.as_deref(),
                customer.last_name.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ")
                == customer.name;
            let name = match &patch.name {
                Some(n) => Some(n.clone()),
                None if derived_before => None,
                None => Some(next.name.clone()),
            };
            let (n, f, l) = self.name_parts(
                next.kind,
                name.as_deref(),
                first.as_deref(),
                last.as_deref(),
            )?;
            next.name = n;
            next.first_name = f;
            next.last_name = l;
        }
        if let Some(v) = &patch.external_id {
            next.external_id = self.external_id(v.as_deref())?;
        }
        if let Some(v) = &patch.organization_id {
            if next.kind == CustomerKind::Organization && v.is_some() {
                return Err(Error::validation(
                    "organization_id",
                    "an organization can't belong to an organization",
                ));
            }
            next.organization_id = *v;
        }
        if let Some(v) = &patch.emails {
            next.emails = self.emails(v)?;
        }
        if let Some(v) = &patch.phones {
            next.phones = self.phones(v)?;
        }
        if let Some(v) = &patch.addresses {
            next.addresses = self.addresses(v)?;
        }
        if let Some(v) = &patch.birth_date {
            next.birth_date = self.birth_date(*v, now.date_naive())?;
        }
        if let Some(v) = &patch.locale {
            next.locale = self.locale(v.as_deref())?;
        }
        if let Some(v) = &patch.country {
            next.country = self.country(v.as_deref())?;
        }
        if let Some(v) = &patch.tags {
            next.tags = self.tags(v)?;
        }
        for key in &patch.remove_attributes {
            next.attributes.remove(key.trim());
        }
        for (key, value) in &patch.set_attributes {
            next.attributes
                .insert(self.attribute(key, value)?, value.clone());
        }
        if next.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::validation("attributes", "more than 256 attributes"));
        }
        if let Some(v) = &patch.lifecycle_stage {
            next.lifecycle_stage = self.lifecycle_stage(Some(v))?;
        }
        if let Some(v) = &patch.owner {
            next.owner = self.short("owner", v.as_deref())?;
        }
        if let Some(v) = &patch.source {
            next.source = self.short("source", v.as_deref())?;
        }

        let mut changed = Vec::new();
        macro_rules! diff {
            ($($field:ident),*) => {
                $(if next.$field != customer.$field { changed.push(stringify!($field)); })*
            };
        }
        diff!(
            external_id,
            name,
            first_name,
            last_name,
            organization_id,
            emails,
            phones,
            addresses,
            birth_date,
            locale,
            country,
            tags,
            attributes,
            lifecycle_stage,
            owner,
            source
        );
        if !changed.is_empty() {
            next.updated_at = now;
            *customer = next;
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm() -> Normalizer {
        Normalizer {
            default_region: Some("SI".into()),
        }
    }

    #[test]
    fn a_person_without_a_name_gets_first_and_last() {
        let c = norm()
            .new_customer(
                &NewCustomer {
                    first_name: Some(" Ana ".into()),
                    last_name: Some("Novak".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        assert_eq!(c.name, "Ana Novak");
        // The store fills in the configured default stage.
        assert_eq!(c.lifecycle_stage, "");
    }

    #[test]
    fn an_empty_name_is_rejected() {
        let err = norm()
            .new_customer(&NewCustomer::default(), Utc::now())
            .unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "name"));
        let err = norm()
            .new_customer(
                &NewCustomer {
                    name: Some("   ".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "name"));
    }

    #[test]
    fn errors_name_the_element_and_hide_the_value() {
        let err = norm()
            .new_customer(
                &NewCustomer {
                    name: Some("Ana".into()),
                    emails: vec!["ana@example.com".into(), "secret-address".into()],
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("emails[1]"), "{text}");
        assert!(!text.contains("secret-address"), "{text}");
    }

    #[test]
    fn renaming_a_derived_name_follows_the_parts() {
        let n = norm();
        let mut c = n
            .new_customer(
                &NewCustomer {
                    first_name: Some("Ana".into()),
                    last_name: Some("Novak".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        let changed = n
            .apply_patch(
                &mut c,
                &CustomerPatch {
                    last_name: Some(Some("Kovač".into())),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        assert_eq!(c.name, "Ana Kovač");
        assert_eq!(changed, vec!["name", "last_name"]);
    }

    #[test]
    fn a_patch_that_changes_nothing_reports_nothing() {
        let n = norm();
        let mut c = n
            .new_customer(
                &NewCustomer {
                    name: Some("Acme".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        let before = c.clone();
        let changed = n
            .apply_patch(
                &mut c,
                &CustomerPatch {
                    name: Some("Acme".into()),
                    ..Default::default()
                },
                Utc::now(),
            )
            .unwrap();
        assert!(changed.is_empty());
        assert_eq!(c, before);
    }

    #[test]
    fn attribute_values_coerce_only_losslessly() {
        assert_eq!(
            AttributeValue::Text("2024-02-29".into())
                .coerce(AttributeType::Date)
                .unwrap(),
            AttributeValue::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        assert!(
            AttributeValue::Text("soon".into())
                .coerce(AttributeType::Date)
                .is_err()
        );
        assert!(
            AttributeValue::Bool(true)
                .coerce(AttributeType::Number)
                .is_err()
        );
        let v: AttributeValue = serde_json::from_str(r#"{"date":"2024-01-31"}"#).unwrap();
        assert_eq!(v.attribute_type(), AttributeType::Date);
    }
}
