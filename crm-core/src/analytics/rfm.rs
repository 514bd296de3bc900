//! RFM: recency, frequency and monetary scores from 1 to 5 by quintile (5
//! best), and the usual named segments.
//!
//! **Scores and ties.** A customer's score on one dimension is
//! `1 + ⌊5·w / n⌋`, where `n` is the number of customers and `w` the number
//! of customers with a strictly *worse* value. So a score of s means "better
//! than at least (s−1)·20 % and less than s·20 % of customers"; without
//! ties each score holds a fifth of the customers (give or take one), and
//! customers with equal values always get equal scores: a block of ties gets
//! the score of its worst-placed member. The result does not depend on the
//! order of the input. (When many customers share a value, as with
//! frequency, some scores may be empty: if 60 % of customers bought once,
//! they all score 1 and the next value scores 4.)
//!
//! Recency is better when *smaller* (time since the last purchase),
//! frequency and monetary value when larger; money is summed in integer
//! minor units, so it is exact.
//!
//! ```
//! use crm_core::analytics::rfm::{self, Segment};
//!
//! let days_since_last = [2.0, 40.0, 300.0, 10.0, 700.0];
//! let purchases = [12.0, 3.0, 1.0, 8.0, 2.0];
//! let spent_minor = [250_000, 9_000, 1_500, 120_000, 3_000];
//! let scores = rfm::scores(&days_since_last, &purchases, &spent_minor)?;
//! assert_eq!(scores.recency, [5, 3, 2, 4, 1]);
//! assert_eq!(scores.frequency, [5, 3, 1, 4, 2]);
//! assert_eq!(scores.monetary, [5, 3, 1, 4, 2]);
//! assert_eq!(scores.segments()[0], Segment::Champions);
//! assert_eq!(scores.segments()[4].name(), "hibernating");
//! # Ok::<(), crm_core::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use super::check_len;
use super::summary::Summary;
use crate::error::{Error, Result};

/// RFM scores (1–5, 5 best), one per customer in input order.
///
/// ```
/// use crm_core::analytics::rfm;
/// let s = rfm::scores(&[1.0, 2.0], &[1.0, 1.0], &[10, 20])?;
/// assert_eq!((s.len(), s.frequency[0], s.frequency[1]), (2, 1, 1)); // tied
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScores {
    /// Recency scores (5: bought most recently).
    pub recency: Vec<u8>,
    /// Frequency scores (5: bought most often).
    pub frequency: Vec<u8>,
    /// Monetary scores (5: spent most).
    pub monetary: Vec<u8>,
}

impl RfmScores {
    /// The number of customers.
    ///
    /// ```
    /// use crm_core::analytics::rfm::RfmScores;
    /// assert_eq!(RfmScores::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.recency.len()
    }

    /// Whether there are no customers.
    ///
    /// ```
    /// use crm_core::analytics::rfm::RfmScores;
    /// assert!(RfmScores::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.recency.is_empty()
    }

    /// Each customer's [`Segment`], from their recency and frequency scores.
    ///
    /// ```
    /// use crm_core::analytics::rfm::{self, Segment};
    /// let s = rfm::scores(&[1.0, 90.0, 30.0, 10.0, 60.0], &[9.0, 1.0, 2.0, 4.0, 3.0], &[100, 5, 20, 40, 30])?;
    /// assert_eq!(s.segments()[0], Segment::Champions);
    /// assert_eq!(s.segments()[1], Segment::Hibernating);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn segments(&self) -> Vec<Segment> {
        self.recency
            .iter()
            .zip(&self.frequency)
            .map(|(&r, &f)| Segment::from_scores(r, f))
            .collect()
    }
}

/// Scores customers: `recency` is the time since their last purchase (any
/// unit; smaller is better), `frequency` their number of purchases,
/// `monetary_minor` what they spent in minor units. See the
/// [module](self) for the tie rule.
///
/// Errors with [`Error::Validation`] on mismatched lengths or a NaN.
///
/// ```
/// use crm_core::analytics::rfm;
/// let s = rfm::scores(&[5.0, 1.0, 9.0, 3.0, 7.0], &[1.0; 5], &[1, 2, 3, 4, 5])?;
/// assert_eq!(s.recency, [3, 5, 1, 4, 2]);
/// assert_eq!(s.frequency, [1; 5]);
/// assert_eq!(s.monetary, [1, 2, 3, 4, 5]);
/// assert!(rfm::scores(&[1.0], &[1.0, 2.0], &[1]).is_err());
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn scores(recency: &[f64], frequency: &[f64], monetary_minor: &[i64]) -> Result<RfmScores> {
    check_len("frequency", frequency.len(), "recency", recency.len())?;
    check_len(
        "monetary_minor",
        monetary_minor.len(),
        "recency",
        recency.len(),
    )?;
    Ok(RfmScores {
        recency: quintiles_of("recency", recency, false)?,
        frequency: quintiles_of("frequency", frequency, true)?,
        // i64 → u64 preserving order.
        monetary: ranked(
            monetary_minor
                .iter()
                .map(|&m| (m as u64) ^ (1 << 63))
                .collect(),
        ),
    })
}

/// Quintile scores (1–5, 5 best) of one column with the tie rule of the
/// [module](self); NaN is rejected.
///
/// ```
/// use crm_core::analytics::rfm;
/// assert_eq!(rfm::quintiles(&[3.0, 3.0, 1.0, 8.0, 5.0], true)?, [2, 2, 1, 5, 4]);
/// assert_eq!(rfm::quintiles(&[3.0, 3.0, 1.0, 8.0, 5.0], false)?, [3, 3, 5, 1, 2]);
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn quintiles(values: &[f64], higher_is_better: bool) -> Result<Vec<u8>> {
    quintiles_of("values", values, higher_is_better)
}

fn quintiles_of(field: &str, values: &[f64], higher_is_better: bool) -> Result<Vec<u8>> {
    if let Some(i) = values.iter().position(|v| v.is_nan()) {
        return Err(Error::validation(
            format!("{field}[{i}]"),
            "is not a number",
        ));
    }
    // f64 → u64 preserving order (−0 and +0 are equal values).
    let key = |v: f64| {
        let bits = (v + 0.0).to_bits();
        let k = if bits >> 63 == 1 {
            !bits
        } else {
            bits | 1 << 63
        };
        if higher_is_better { k } else { !k }
    };
    Ok(ranked(values.iter().map(|&v| key(v)).collect()))
}

/// Scores 1 + ⌊5·w/n⌋ where w counts the items with a strictly smaller key
/// (keys: larger is better).
fn ranked(keys: Vec<u64>) -> Vec<u8> {
    let n = keys.len();
    let mut order: Vec<(u64, u32)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, i as u32))
        .collect();
    // Worst first.
    order.sort_unstable();
    let mut out = vec![0u8; n];
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && order[end].0 == order[start].0 {
            end += 1;
        }
        let score = 1 + (5 * start as u128 / n as u128) as u8;
        for &(_, i) in &order[start..end] {
            out[i as usize] = score;
        }
        start = end;
    }
    out
}

/// The usual RFM segments, on the grid of recency score (rows) by
/// frequency score (columns):
///
/// | R \ F | 1              | 2                   | 3                   | 4             | 5             |
/// |-------|----------------|---------------------|---------------------|---------------|---------------|
/// | 5     | new customers  | potential loyalists | potential loyalists | champions     | champions     |
/// | 4     | promising      | potential loyalists | potential loyalists | loyal         | loyal         |
/// | 3     | about to sleep | about to sleep      | need attention      | loyal         | loyal         |
/// | 2     | hibernating    | hibernating         | at risk             | at risk       | can't lose them |
/// | 1     | hibernating    | hibernating         | at risk             | at risk       | can't lose them |
///
/// Monetary value does not move customers between these segments; it is
/// reported alongside.
///
/// ```
/// use crm_core::analytics::rfm::Segment;
/// assert_eq!(Segment::from_scores(5, 5), Segment::Champions);
/// assert_eq!(Segment::from_scores(1, 5).name(), "cannot_lose_them");
/// assert_eq!(Segment::ALL.len(), 10);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Bought recently and often.
    Champions,
    /// Buy often, fairly recently.
    Loyal,
    /// Recent, with a few purchases.
    PotentialLoyalists,
    /// Just made their first purchase.
    NewCustomers,
    /// Recent, one purchase.
    Promising,
    /// Average recency and frequency.
    NeedAttention,
    /// Below-average recency and frequency.
    AboutToSleep,
    /// Used to buy fairly often, but not for a long time.
    AtRisk,
    /// Used to buy most often, but not for a long time.
    CannotLoseThem,
    /// Rarely, and long ago.
    Hibernating,
}

impl Segment {
    /// Every segment, best first.
    ///
    /// ```
    /// use crm_core::analytics::rfm::Segment;
    /// let names: Vec<&str> = Segment::ALL.iter().map(|s| s.name()).collect();
    /// assert_eq!(names[0], "champions");
    /// assert_eq!(names[9], "hibernating");
    /// ```
    pub const ALL: [Segment; 10] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalists,
        Segment::NewCustomers,
        Segment::Promising,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::CannotLoseThem,
        Segment::Hibernating,
    ];

    /// The segment of recency score `r` and frequency score `f` (each 1–5;
    /// values outside are clamped).
    ///
    /// ```
    /// use crm_core::analytics::rfm::Segment;
    /// assert_eq!(Segment::from_scores(3, 3), Segment::NeedAttention);
    /// assert_eq!(Segment::from_scores(5, 1), Segment::NewCustomers);
    /// ```
    pub fn from_scores(r: u8, f: u8) -> Segment {
        match (r.clamp(1, 5), f.clamp(1, 5)) {
            (5, 4..=5) => Segment::Champions,
            (3..=4, 4..=5) => Segment::Loyal,
            (4..=5, 2..=3) => Segment::PotentialLoyalists,
            (5, 1) => Segment::NewCustomers,
            (4, 1) => Segment::Promising,
            (3, 3) => Segment::NeedAttention,
            (3, 1..=2) => Segment::AboutToSleep,
            (1..=2, 3..=4) => Segment::AtRisk,
            (1..=2, 5) => Segment::CannotLoseThem,
            _ => Segment::Hibernating,
        }
    }

    /// The segment's name in snake case, as serialized.
    ///
    /// ```
    /// use crm_core::analytics::rfm::Segment;
    /// assert_eq!(Segment::PotentialLoyalists.name(), "potential_loyalists");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalists => "potential_loyalists",
            Segment::NewCustomers => "new_customers",
            Segment::Promising => "promising",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::CannotLoseThem => "cannot_lose_them",
            Segment::Hibernating => "hibernating",
        }
    }
}

impl<K> Summary<K> {
    /// RFM scores of the summarized customers: recency is the time since
    /// the last purchase (`t − recency`), frequency the number of purchase
    /// periods (`frequency + 1`), monetary value the total spent
    /// (`total_minor`).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use crm_core::analytics::{summary, SummaryOptions, TimeUnit, Transaction};
    ///
    /// let day = |d: u32| Utc.with_ymd_and_hms(2024, 7, d, 0, 0, 0).unwrap();
    /// let tx = |customer, d, amount_minor| Transaction { customer, at: day(d), amount_minor };
    /// let s = summary(&[tx(1u64, 1, 100), tx(1, 29, 100), tx(2, 2, 50)],
    ///                 &SummaryOptions::new(TimeUnit::Days, day(30)))?;
    /// let rfm = s.rfm()?;
    /// assert_eq!((rfm.recency, rfm.frequency, rfm.monetary), (vec![3, 1], vec![3, 1], vec![3, 1]));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn rfm(&self) -> Result<RfmScores> {
        let since_last: Vec<f64> = self
            .t
            .iter()
            .zip(&self.recency)
            .map(|(t, r)| t - r)
            .collect();
        let purchases: Vec<f64> = self.frequency.iter().map(|f| f + 1.0).collect();
        scores(&since_last, &purchases, &self.total_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_fill_each_quintile_equally() {
        let values: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let s = quintiles(&values, true).unwrap();
        for score in 1..=5 {
            assert_eq!(s.iter().filter(|&&v| v == score).count(), 200);
        }
        // Value v scores 1 + ⌊v / 200⌋.
        for (v, s) in values.iter().zip(&s) {
            assert_eq!(*s, 1 + (*v as usize / 200) as u8);
        }
    }

    #[test]
    fn all_equal_scores_one() {
        assert_eq!(quintiles(&[4.0; 7], true).unwrap(), [1; 7]);
        assert!(quintiles(&[], true).unwrap().is_empty());
        assert!(matches!(
            quintiles(&[1.0, f64::NAN], true),
            Err(Error::Validation { ref field, .. }) if field == "values[1]"
        ));
    }

    #[test]
    fn every_cell_of_the_grid_has_a_segment() {
        let mut seen = std::collections::BTreeSet::new();
        for r in 1..=5 {
            for f in 1..=5 {
                seen.insert(Segment::from_scores(r, f));
            }
        }
        assert_eq!(seen.len(), 10);
        for s in Segment::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.name()));
        }
    }
}
