//! Retention cohorts: customers grouped by the calendar month (UTC) of
//! their first purchase, and how many of each group bought again in each
//! later month.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use crm_core::analytics::{Transaction, cohorts};
//!
//! let at = |m: u32| Utc.with_ymd_and_hms(2024, m, 15, 0, 0, 0).unwrap();
//! let tx = |customer: u64, m| Transaction { customer, at: at(m), amount_minor: 1 };
//! let log = [tx(1, 1), tx(1, 2), tx(2, 1), tx(2, 3), tx(3, 2), tx(3, 3)];
//! let r = cohorts::retention(&log, at(3))?;
//! // Rows: January and February cohorts (and March, empty); columns: months since.
//! assert_eq!(r.sizes, [2, 1, 0]);
//! assert_eq!(r.active[0], [2, 1, 1]);
//! assert_eq!(r.matrix()[1], [Some(1.0), Some(1.0), None]);
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::summary::Transaction;
use crate::error::Result;

/// A retention matrix. Row c is the cohort acquired in month `cohorts[c]`
/// (one row for every month from the first acquisition to the observation
/// end, empty months included); column k of `active[c]` counts its customers
/// who bought in the k-th month after (k = 0: the acquisition month, so
/// `active[c][0] == sizes[c]`). Rows stop at the observation end's month,
/// so the matrix is a triangle.
///
/// ```
/// use chrono::NaiveDate;
/// use crm_core::analytics::cohorts::Retention;
///
/// let r = Retention {
///     cohorts: vec![NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2024, 2, 1).unwrap()],
///     sizes: vec![4, 2],
///     active: vec![vec![4, 1], vec![2]],
/// };
/// assert_eq!(r.rate(0, 1), Some(0.25));
/// assert_eq!(r.rate(1, 1), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The first day of each cohort's acquisition month, ascending and
    /// consecutive.
    pub cohorts: Vec<NaiveDate>,
    /// Customers acquired in each month.
    pub sizes: Vec<u64>,
    /// Per cohort, customers with a purchase k months after acquisition.
    pub active: Vec<Vec<u64>>,
}

impl Retention {
    /// The share of cohort `cohort` that bought `age` months after
    /// acquisition; `None` if that month is not observed or the cohort is
    /// empty.
    ///
    /// ```
    /// use crm_core::analytics::cohorts::Retention;
    /// assert_eq!(Retention::default().rate(0, 0), None);
    /// ```
    pub fn rate(&self, cohort: usize, age: usize) -> Option<f64> {
        let size = *self.sizes.get(cohort)?;
        let active = *self.active.get(cohort)?.get(age)?;
        (size > 0).then(|| active as f64 / size as f64)
    }

    /// The rates as a rectangular matrix, cohorts by age in months, `None`
    /// where there is no rate.
    ///
    /// ```
    /// use crm_core::analytics::cohorts::Retention;
    /// assert!(Retention::default().matrix().is_empty());
    /// ```
    pub fn matrix(&self) -> Vec<Vec<Option<f64>>> {
        let width = self.active.iter().map(Vec::len).max().unwrap_or(0);
        (0..self.sizes.len())
            .map(|c| (0..width).map(|k| self.rate(c, k)).collect())
            .collect()
    }
}

/// Month number since year 0: year·12 + month − 1.
fn month_of(at: DateTime<Utc>) -> i64 {
    i64::from(at.year()) * 12 + i64::from(at.month0())
}

fn first_day(month: i64) -> NaiveDate {
    let year = month.div_euclid(12) as i32;
    let month0 = month.rem_euclid(12) as u32;
    NaiveDate::from_ymd_opt(year, month0 + 1, 1).expect("a valid month")
}

/// Retention by acquisition month from a purchase log (any order).
/// Purchases in months after the one containing `observation_end` are
/// ignored; purchases in that month count (it may be partial), as in
/// [`crate::analytics::summary`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{Transaction, cohorts};
///
/// let at = |y, m| Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap();
/// let log = [
///     Transaction { customer: 1u64, at: at(2023, 12), amount_minor: 1 },
///     Transaction { customer: 1, at: at(2024, 2), amount_minor: 1 },
/// ];
/// let r = cohorts::retention(&log, at(2024, 2))?;
/// assert_eq!(r.active[0], [1, 0, 1]);
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn retention<K: crate::analytics::CustomerKey>(
    transactions: &[Transaction<K>],
    observation_end: DateTime<Utc>,
) -> Result<Retention> {
    let end = month_of(observation_end);
    // (customer, month) visits, consecutive repeats dropped on the way (a
    // log sorted by customer and time has many).
    let parts = super::par::map_chunks(transactions.len(), 1 << 18, |range| {
        let mut out: Vec<(K, i64)> = Vec::new();
        for t in &transactions[range] {
            let visit = (t.customer, month_of(t.at));
            if visit.1 <= end && out.last() != Some(&visit) {
                out.push(visit);
            }
        }
        out
    });
    let mut visits = parts.concat();
    if !visits.is_sorted() {
        visits.sort_unstable();
    }
    visits.dedup();
    let mut tally = Tally::default();
    for group in visits.chunk_by(|a, b| a.0 == b.0) {
        tally.add(group.iter().map(|v| v.1));
    }
    Ok(tally.finish(end))
}

/// Retention from purchases that arrive sorted by (customer, time), one at
/// a time (as the store reads them): memory grows with the months, not the
/// purchases or the customers.
pub(crate) fn retention_of_sorted<K: PartialEq>(
    purchases: impl Iterator<Item = (K, DateTime<Utc>)>,
    observation_end: DateTime<Utc>,
) -> Retention {
    let end = month_of(observation_end);
    let mut tally = Tally::default();
    let mut current: Option<K> = None;
    let mut months: Vec<i64> = Vec::new();
    for (customer, at) in purchases {
        let month = month_of(at);
        if month > end {
            continue;
        }
        if current.as_ref() != Some(&customer) {
            tally.add(months.drain(..));
            current = Some(customer);
        }
        if months.last() != Some(&month) {
            months.push(month);
        }
    }
    tally.add(months.drain(..));
    tally.finish(end)
}

/// Counts customers by acquisition month and months since.
#[derive(Default)]
struct Tally {
    /// Acquisition month → (customers, customers active k months after).
    rows: BTreeMap<i64, (u64, Vec<u64>)>,
}

impl Tally {
    /// One customer's distinct purchase months, ascending (none: ignored).
    fn add(&mut self, mut months: impl Iterator<Item = i64>) {
        let Some(first) = months.next() else {
            return;
        };
        let (size, active) = self.rows.entry(first).or_default();
        *size += 1;
        for age in std::iter::once(0).chain(months.map(|m| (m - first) as usize)) {
            if active.len() <= age {
                active.resize(age + 1, 0);
            }
            active[age] += 1;
        }
    }

    fn finish(self, end: i64) -> Retention {
        let Some(&start) = self.rows.keys().next() else {
            return Retention::default();
        };
        let rows = (end - start + 1) as usize;
        let mut out = Retention {
            cohorts: (start..=end).map(first_day).collect(),
            sizes: vec![0; rows],
            active: (0..rows).map(|c| vec![0; rows - c]).collect(),
        };
        for (month, (size, active)) in self.rows {
            let c = (month - start) as usize;
            out.sizes[c] = size;
            out.active[c][..active.len()].copy_from_slice(&active);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn later_purchases_are_ignored_and_order_does_not_matter() {
        let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
        let tx = |customer: u64, at| Transaction {
            customer,
            at,
            amount_minor: 5,
        };
        let log = [
            tx(2, at(2024, 3, 9)),
            tx(1, at(2024, 1, 31)),
            tx(1, at(2024, 1, 2)),
            tx(2, at(2024, 5, 1)),
            tx(3, at(2024, 9, 1)),
            tx(1, at(2024, 3, 1)),
        ];
        let r = retention(&log, at(2024, 4, 30)).unwrap();
        assert_eq!(r.cohorts.len(), 4);
        assert_eq!(r.cohorts[0], NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert_eq!(r.sizes, [1, 0, 1, 0]);
        assert_eq!(r.active[0], [1, 0, 1, 0]);
        assert_eq!(r.active[2], [1, 0]);
        assert_eq!(r.rate(1, 0), None);
        let m = r.matrix();
        assert_eq!(m.len(), 4);
        assert!(m.iter().all(|row| row.len() == 4));
        assert!(
            retention::<u64>(&[], at(2024, 1, 1))
                .unwrap()
                .sizes
                .is_empty()
        );
    }
}
