//! The consent ledger: what each customer agreed to, for which purpose and
//! channel, with proof.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ConsentId, CustomerId};
use crate::error::{Error, Result};
use crate::model::normalize;

/// The answer a customer gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    /// The customer agreed.
    Granted,
    /// The customer refused.
    Denied,
    /// The customer took back an earlier agreement.
    Withdrawn,
}

impl ConsentStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentStatus::Granted => "granted",
            ConsentStatus::Denied => "denied",
            ConsentStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "granted" => Ok(ConsentStatus::Granted),
            "denied" => Ok(ConsentStatus::Denied),
            "withdrawn" => Ok(ConsentStatus::Withdrawn),
            _ => Err(Error::validation(
                "status",
                "must be granted, denied or withdrawn",
            )),
        }
    }
}

/// The legal basis of processing (GDPR article 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The customer's consent.
    Consent,
    /// Needed for a contract with the customer.
    Contract,
    /// Required by law.
    LegalObligation,
    /// To protect someone's life.
    VitalInterests,
    /// A task in the public interest.
    PublicTask,
    /// The business's legitimate interests.
    LegitimateInterests,
}

impl LegalBasis {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
            LegalBasis::LegalObligation => "legal_obligation",
            LegalBasis::VitalInterests => "vital_interests",
            LegalBasis::PublicTask => "public_task",
            LegalBasis::LegitimateInterests => "legitimate_interests",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "consent" => LegalBasis::Consent,
            "contract" => LegalBasis::Contract,
            "legal_obligation" => LegalBasis::LegalObligation,
            "vital_interests" => LegalBasis::VitalInterests,
            "public_task" => LegalBasis::PublicTask,
            "legitimate_interests" => LegalBasis::LegitimateInterests,
            _ => {
                return Err(Error::validation(
                    "legal_basis",
                    "must be a GDPR article 6 basis, e.g. consent",
                ));
            }
        })
    }
}

/// One entry of the consent ledger. The ledger is append-only: a change of
/// mind is a new record, so the history is the proof.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Record id.
    pub id: ConsentId,
    /// The customer.
    pub customer_id: CustomerId,
    /// What the data is used for, e.g. `email_marketing`.
    pub purpose: String,
    /// The channel, e.g. `email`, `sms`; `None` means every channel.
    pub channel: Option<String>,
    /// The answer.
    pub status: ConsentStatus,
    /// Legal basis.
    pub legal_basis: Option<LegalBasis>,
    /// Where the answer was given (a form, the preference centre, a call).
    pub source: Option<String>,
    /// Evidence: the wording shown, a form id, an IP address.
    pub proof: Option<String>,
    /// When the customer answered.
    pub recorded_at: DateTime<Utc>,
}

/// A consent answer to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewConsent {
    /// What the data is used for; a lower-case identifier.
    pub purpose: String,
    /// Channel; `None` for every channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// The answer.
    pub status: ConsentStatus,
    /// Legal basis.
    #[serde(default)]
    pub legal_basis: Option<LegalBasis>,
    /// Where it was given.
    #[serde(default)]
    pub source: Option<String>,
    /// Evidence.
    #[serde(default)]
    pub proof: Option<String>,
    /// When; now when `None`.
    #[serde(default)]
    pub recorded_at: Option<DateTime<Utc>>,
}

impl NewConsent {
    /// A consent answer for `purpose` on every channel, recorded now.
    pub fn new(purpose: impl Into<String>, status: ConsentStatus) -> Self {
        NewConsent {
            purpose: purpose.into(),
            channel: None,
            status,
            legal_basis: None,
            source: None,
            proof: None,
            recorded_at: None,
        }
    }
}

/// Validates a purpose or channel name: a lower-case identifier.
pub(crate) fn identifier(field: &str, raw: &str) -> Result<String> {
    normalize::attribute_key(&raw.trim().to_ascii_lowercase()).map_err(|_| {
        Error::validation(
            field,
            "must be a lower-case identifier such as email_marketing",
        )
    })
}

/// The normalized text fields of a consent answer: purpose, channel, source,
/// proof.
pub(crate) type ValidConsent = (String, Option<String>, Option<String>, Option<String>);

impl NewConsent {
    pub(crate) fn validate(&self) -> Result<ValidConsent> {
        let purpose = identifier("purpose", &self.purpose)?;
        let channel = match self
            .channel
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(c) => Some(identifier("channel", c)?),
            None => None,
        };
        let source = match self
            .source
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(s) => Some(normalize::text(s, 256).map_err(|r| Error::validation("source", r))?),
            None => None,
        };
        let proof = match self
            .proof
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(p) => Some(normalize::text(p, 10_000).map_err(|r| Error::validation("proof", r))?),
            None => None,
        };
        Ok((purpose, channel, source, proof))
    }
}
