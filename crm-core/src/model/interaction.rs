//! Interactions: the entries of a customer's timeline.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{CustomerId, InteractionId};
use crate::error::{Error, Result};
use crate::model::normalize;

/// Longest subject, in characters.
pub const MAX_SUBJECT_LEN: usize = 1_000;
/// Longest body, in characters.
pub const MAX_BODY_LEN: usize = 1_000_000;
/// Largest metadata object, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 65_536;

/// What kind of interaction an entry records.
///
/// The built-in kinds have names (`purchase`, `web_visit`, …); any other
/// lower-case identifier is a custom kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum InteractionKind {
    /// A purchase (amount and currency expected).
    Purchase,
    /// An email sent or received.
    Email,
    /// A phone call.
    Call,
    /// A meeting.
    Meeting,
    /// A note written by a user.
    Note,
    /// A support ticket.
    Ticket,
    /// A visit to a web page.
    WebVisit,
    /// A social-media mention or message.
    Social,
    /// An answer to a survey (score expected).
    SurveyResponse,
    /// A kind of the host application's own.
    Custom(String),
}

impl InteractionKind {
    /// The stored name.
    pub fn as_str(&self) -> &str {
        match self {
            InteractionKind::Purchase => "purchase",
            InteractionKind::Email => "email",
            InteractionKind::Call => "call",
            InteractionKind::Meeting => "meeting",
            InteractionKind::Note => "note",
            InteractionKind::Ticket => "ticket",
            InteractionKind::WebVisit => "web_visit",
            InteractionKind::Social => "social",
            InteractionKind::SurveyResponse => "survey_response",
            InteractionKind::Custom(s) => s,
        }
    }

    /// Parses a kind name; unknown identifiers become custom kinds.
    ///
    /// ```
    /// use crm_core::InteractionKind;
    /// assert_eq!(InteractionKind::parse("Purchase").unwrap(), InteractionKind::Purchase);
    /// assert_eq!(InteractionKind::parse("demo_booked").unwrap().as_str(), "demo_booked");
    /// assert!(InteractionKind::parse("not a kind!").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        let lowered = s.trim().to_ascii_lowercase();
        Ok(match lowered.as_str() {
            "purchase" => InteractionKind::Purchase,
            "email" => InteractionKind::Email,
            "call" => InteractionKind::Call,
            "meeting" => InteractionKind::Meeting,
            "note" => InteractionKind::Note,
            "ticket" | "support_ticket" => InteractionKind::Ticket,
            "web_visit" => InteractionKind::WebVisit,
            "social" | "social_mention" => InteractionKind::Social,
            "survey_response" | "survey" => InteractionKind::SurveyResponse,
            _ => {
                let key = normalize::attribute_key(&lowered).map_err(|_| {
                    Error::validation("kind", "must be a known kind or a lower-case identifier")
                })?;
                InteractionKind::Custom(key)
            }
        })
    }
}

impl fmt::Display for InteractionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for InteractionKind {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InteractionKind {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        InteractionKind::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Whether the customer or the business started the interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the business.
    Inbound,
    /// From the business to the customer.
    Outbound,
}

impl Direction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// Parses `inbound` or `outbound`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "inbound" | "in" => Ok(Direction::Inbound),
            "outbound" | "out" => Ok(Direction::Outbound),
            _ => Err(Error::validation(
                "direction",
                "must be 'inbound' or 'outbound'",
            )),
        }
    }
}

/// A stored interaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// Globally unique, time-ordered id.
    pub id: InteractionId,
    /// The customer the interaction belongs to.
    pub customer_id: CustomerId,
    /// What kind of interaction it is.
    pub kind: InteractionKind,
    /// The channel, e.g. `web`, `store`, `phone`, `email`.
    pub channel: Option<String>,
    /// Who started it.
    pub direction: Option<Direction>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// A short subject line.
    pub subject: Option<String>,
    /// Free text.
    pub body: Option<String>,
    /// Amount in integer minor units of `currency` (cents for EUR).
    pub amount_minor: Option<i64>,
    /// ISO-4217 currency of `amount_minor`.
    pub currency: Option<String>,
    /// Product (SKU or name).
    pub product: Option<String>,
    /// Quantity of `product`.
    pub quantity: Option<i64>,
    /// Satisfaction score, 0 to 10.
    pub score: Option<i32>,
    /// Free-form JSON object of the host application's own.
    pub metadata: Option<serde_json::Value>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// How an interaction names its customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerRef {
    /// By id.
    Id(CustomerId),
    /// By external id.
    ExternalId(String),
    /// By (any of the customer's) email.
    Email(String),
}

impl From<CustomerId> for CustomerRef {
    fn from(id: CustomerId) -> Self {
        CustomerRef::Id(id)
    }
}

/// An interaction to log.
///
/// ```
/// use crm_core::{CustomerId, InteractionKind, NewInteraction};
/// let purchase = NewInteraction {
///     amount_minor: Some(4_990),
///     currency: Some("EUR".into()),
///     product: Some("SKU-1".into()),
///     ..NewInteraction::new(CustomerId::new(), InteractionKind::Purchase)
/// };
/// # let _ = purchase;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInteraction {
    /// The customer.
    pub customer: CustomerRef,
    /// The kind.
    pub kind: InteractionKind,
    /// Channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// Direction.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// When it happened; now when `None`.
    #[serde(default)]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Amount in minor units; requires `currency`.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// ISO-4217 currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// Product.
    #[serde(default)]
    pub product: Option<String>,
    /// Quantity.
    #[serde(default)]
    pub quantity: Option<i64>,
    /// Satisfaction score 0–10.
    #[serde(default)]
    pub score: Option<i32>,
    /// A JSON object.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

impl NewInteraction {
    /// An interaction of `kind` for `customer`, everything else empty.
    pub fn new(customer: impl Into<CustomerRef>, kind: InteractionKind) -> Self {
        NewInteraction {
            customer: customer.into(),
            kind,
            channel: None,
            direction: None,
            occurred_at: None,
            subject: None,
            body: None,
            amount_minor: None,
            currency: None,
            product: None,
            quantity: None,
            score: None,
            metadata: None,
        }
    }
}

/// A validated interaction, ready to store.
#[derive(Clone, Debug)]
pub(crate) struct ValidInteraction {
    pub kind: InteractionKind,
    pub channel: Option<String>,
    pub direction: Option<Direction>,
    pub occurred_at: DateTime<Utc>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
    pub product: Option<String>,
    pub quantity: Option<i64>,
    pub score: Option<i32>,
    pub metadata: Option<String>,
}

fn opt(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>> {
    match v {
        Some(s) if !s.trim().is_empty() => normalize::text(s, max)
            .map(Some)
            .map_err(|r| Error::validation(field, r)),
        _ => Ok(None),
    }
}

impl NewInteraction {
    /// Validates every field except the customer reference.
    pub(crate) fn validate(&self, now: DateTime<Utc>) -> Result<ValidInteraction> {
        let currency = match self
            .currency
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(c) => Some(normalize::currency(c).map_err(|r| Error::validation("currency", r))?),
            None => None,
        };
        if self.amount_minor.is_some() && currency.is_none() {
            return Err(Error::validation(
                "currency",
                "is required when an amount is given",
            ));
        }
        if let Some(score) = self.score {
            if !(0..=10).contains(&score) {
                return Err(Error::validation("score", "must be between 0 and 10"));
            }
        }
        if let Some(q) = self.quantity {
            if q < 0 {
                return Err(Error::validation("quantity", "must not be negative"));
            }
        }
        let metadata = match &self.metadata {
            None | Some(serde_json::Value::Null) => None,
            Some(v @ serde_json::Value::Object(_)) => {
                let text = v.to_string();
                if text.len() > MAX_METADATA_BYTES {
                    return Err(Error::validation("metadata", "is larger than 64 KiB"));
                }
                Some(text)
            }
            Some(_) => return Err(Error::validation("metadata", "must be a JSON object")),
        };
        let body = match self.body.as_deref() {
            Some(b) if !b.trim().is_empty() => {
                normalize::check_length(b, MAX_BODY_LEN)
                    .map_err(|r| Error::validation("body", r))?;
                Some(b.to_string())
            }
            _ => None,
        };
        Ok(ValidInteraction {
            kind: self.kind.clone(),
            channel: opt("channel", self.channel.as_deref(), 64)?.map(|c| c.to_lowercase()),
            direction: self.direction,
            occurred_at: self.occurred_at.map_or(now, |t| t.trunc_subsecs(6)),
            subject: opt("subject", self.subject.as_deref(), MAX_SUBJECT_LEN)?,
            body,
            amount_minor: self.amount_minor,
            currency,
            product: opt("product", self.product.as_deref(), 256)?,
            quantity: self.quantity,
            score: self.score,
            metadata,
        })
    }
}
