//! Keyset pagination: pages and opaque cursors.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::{Error, Result};

/// The largest page a caller may ask for.
pub const MAX_PAGE_SIZE: u32 = 10_000;

/// One page of results and the cursor for the next one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in the requested order.
    pub items: Vec<T>,
    /// Pass this back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Encodes a position as an opaque cursor (hex of JSON: stable, URL-safe,
/// not meant to be read).
pub(crate) fn encode<T: Serialize>(position: &T) -> String {
    let json = serde_json::to_vec(position).unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T> {
    let bad = || Error::validation("cursor", "is not a cursor returned by this library");
    if cursor.len() % 2 != 0 || cursor.len() > 4096 {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>>>()?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

pub(crate) fn check_limit(limit: u32) -> Result<u32> {
    if limit == 0 || limit > MAX_PAGE_SIZE {
        return Err(Error::validation("limit", "must be between 1 and 10000"));
    }
    Ok(limit)
}

/// Builds a page from `limit + 1` fetched rows: the extra row only tells that
/// there is a next page.
pub(crate) fn paginate<P: Serialize, T>(mut rows: Vec<(P, T)>, limit: u32) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|(p, _)| encode(p))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, t)| t).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode(&(42_i64, "Ana".to_string()));
        assert_eq!(
            decode::<(i64, String)>(&c).unwrap(),
            (42, "Ana".to_string())
        );
        assert!(decode::<(i64, String)>("zz").is_err());
        assert!(decode::<(i64, String)>("abc").is_err());
        assert!(decode::<(i64, String)>("").is_err());
    }
}
