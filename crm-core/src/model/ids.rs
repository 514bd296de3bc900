//! Globally unique, time-ordered identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new id: a UUIDv7, so ids made on two devices never collide and
            /// sort by creation time.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The id as 16 bytes, as stored.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }

            pub(crate) fn from_slice(bytes: &[u8]) -> Result<Self> {
                Uuid::from_slice(bytes)
                    .map(Self)
                    .map_err(|_| Error::Storage(concat!("malformed ", $field, " in the database").into()))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = Error;

            /// Parses the hyphenated (or simple) UUID form.
            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| Error::validation($field, "not a valid id (expected a UUID)"))
            }
        }
    };
}

id_type!(
    /// The id of a customer (person or organization).
    ///
    /// ```
    /// use crm_core::CustomerId;
    /// let id = CustomerId::new();
    /// let parsed: CustomerId = id.to_string().parse().unwrap();
    /// assert_eq!(id, parsed);
    /// ```
    CustomerId,
    "customer_id"
);
id_type!(
    /// The id of an interaction on a customer's timeline.
    InteractionId,
    "interaction_id"
);
id_type!(
    /// The id of a consent record.
    ConsentId,
    "consent_id"
);

id_type!(
    /// The id of a segment.
    SegmentId,
    "segment_id"
);

id_type!(
    /// The id of a sales pipeline.
    PipelineId,
    "pipeline_id"
);

id_type!(
    /// The id of a deal (an opportunity in a pipeline).
    DealId,
    "deal_id"
);

id_type!(
    /// The id of a task.
    TaskId,
    "task_id"
);

id_type!(
    /// The id of a rule.
    RuleId,
    "rule_id"
);
