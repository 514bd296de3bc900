//! Per-customer transaction summaries with the conventions of the
//! buy-till-you-die literature (and of the `lifetimes` Python package):
//!
//! * time is counted in whole periods of a [`TimeUnit`] (UTC days, or
//!   Monday-to-Sunday weeks), and all purchases of a customer in one period
//!   are collapsed into one (their amounts summed);
//! * `frequency` is the number of *repeat* purchase periods: periods with a
//!   purchase, minus one for the first;
//! * `recency` is the time from the first to the last purchase period;
//! * `t` (T in the literature) is the time from the first purchase period to
//!   the period containing the observation end;
//! * `monetary_value` is the mean amount of the repeat purchase periods
//!   (the first purchase excluded), 0 without repeat purchases.
//!
//! The observation end is inclusive *by period*: every purchase in the period
//! containing `observation_end` counts (as in `lifetimes`), later ones are
//! ignored, and customers whose first purchase comes later are left out.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use crm_core::analytics::{summary, SummaryOptions, TimeUnit, Transaction};
//!
//! let day = |d: u32| Utc.with_ymd_and_hms(2024, 3, d, 12, 0, 0).unwrap();
//! let transactions = [
//!     Transaction { customer: 7, at: day(1), amount_minor: 1_000 },
//!     Transaction { customer: 7, at: day(1), amount_minor: 500 }, // same day: collapsed
//!     Transaction { customer: 7, at: day(4), amount_minor: 2_000 },
//!     Transaction { customer: 7, at: day(9), amount_minor: 4_000 },
//!     Transaction { customer: 9, at: day(5), amount_minor: 700 },
//! ];
//! let s = summary(&transactions, &SummaryOptions::new(TimeUnit::Days, day(10)))?;
//! assert_eq!(s.customers, [7, 9]);
//! assert_eq!(s.frequency, [2.0, 0.0]);
//! assert_eq!(s.recency, [8.0, 0.0]);
//! assert_eq!(s.t, [9.0, 5.0]);
//! assert_eq!(s.monetary_value, [3_000.0, 0.0]);
//! assert_eq!(s.total_minor, [7_500, 700]);
//! # Ok::<(), crm_core::Error>(())
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::check_len;
use crate::error::{Error, Result};

/// One purchase: who, when, and how much in integer minor units of one
/// currency (cents).
///
/// The customer key is anything `Copy + Ord`: a dense `u64` index (the
/// default, fastest), or a [`crate::CustomerId`].
///
/// ```
/// use chrono::Utc;
/// use crm_core::CustomerId;
/// use crm_core::analytics::Transaction;
///
/// let t = Transaction { customer: CustomerId::new(), at: Utc::now(), amount_minor: 12_990 };
/// assert_eq!(t.amount_minor, 12_990);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction<K = u64> {
    /// The customer.
    pub customer: K,
    /// When the purchase happened.
    pub at: DateTime<Utc>,
    /// The amount in minor units (≥ 0; net refunds out beforehand).
    pub amount_minor: i64,
}

/// The period in which time is counted.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::TimeUnit;
///
/// let sunday = Utc.with_ymd_and_hms(2024, 3, 10, 23, 0, 0).unwrap();
/// let monday = Utc.with_ymd_and_hms(2024, 3, 11, 1, 0, 0).unwrap();
/// assert_eq!(TimeUnit::Days.period_of(monday) - TimeUnit::Days.period_of(sunday), 1);
/// assert_eq!(TimeUnit::Weeks.period_of(monday) - TimeUnit::Weeks.period_of(sunday), 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TimeUnit {
    /// UTC calendar days.
    #[default]
    Days,
    /// Weeks from Monday 00:00 UTC to Sunday 24:00 UTC (ISO weeks; `W` in
    /// pandas).
    Weeks,
}

impl TimeUnit {
    /// The index of the period containing `at`: days since 1970-01-01, or
    /// weeks since the week starting Monday 1969-12-29 (UTC).
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use crm_core::analytics::TimeUnit;
    ///
    /// let epoch = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
    /// assert_eq!(TimeUnit::Days.period_of(epoch), 0);
    /// assert_eq!(TimeUnit::Weeks.period_of(epoch), 0);
    /// ```
    pub fn period_of(self, at: DateTime<Utc>) -> i64 {
        self.period_of_seconds(at.timestamp())
    }

    /// [`TimeUnit::period_of`] a time given in seconds since the epoch.
    fn period_of_seconds(self, seconds: i64) -> i64 {
        let days = seconds.div_euclid(86_400);
        match self {
            TimeUnit::Days => days,
            // 1970-01-01 was a Thursday, three days after a Monday.
            TimeUnit::Weeks => (days + 3).div_euclid(7),
        }
    }

    /// How many periods make a month in [`crate::analytics::ClvOptions`]:
    /// 30 days, or 4.345 weeks (the factors `lifetimes` uses).
    ///
    /// ```
    /// use crm_core::analytics::TimeUnit;
    /// assert_eq!(TimeUnit::Days.periods_per_month(), 30.0);
    /// ```
    pub fn periods_per_month(self) -> f64 {
        match self {
            TimeUnit::Days => 30.0,
            TimeUnit::Weeks => 4.345,
        }
    }
}

/// How to summarize: the time unit, the end of observation, and optionally
/// the end of a calibration period (the rest up to `observation_end` being
/// the holdout).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{SummaryOptions, TimeUnit};
///
/// let end = Utc.with_ymd_and_hms(2024, 12, 31, 0, 0, 0).unwrap();
/// let options = SummaryOptions {
///     calibration_end: Some(Utc.with_ymd_and_hms(2024, 9, 30, 0, 0, 0).unwrap()),
///     ..SummaryOptions::new(TimeUnit::Weeks, end)
/// };
/// assert_eq!(options.unit, TimeUnit::Weeks);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryOptions {
    /// The period in which frequency, recency and T are counted.
    pub unit: TimeUnit,
    /// The end of observation: purchases in its period count, later ones
    /// don't.
    pub observation_end: DateTime<Utc>,
    /// With a calibration end, [`Summary`]'s columns describe the purchases
    /// up to its period, and [`Summary::holdout`] those of the periods after
    /// it up to the observation end.
    pub calibration_end: Option<DateTime<Utc>>,
}

impl SummaryOptions {
    /// Options for `unit` and `observation_end`, without calibration split.
    ///
    /// ```
    /// use chrono::Utc;
    /// use crm_core::analytics::{SummaryOptions, TimeUnit};
    /// let options = SummaryOptions::new(TimeUnit::Days, Utc::now());
    /// assert!(options.calibration_end.is_none());
    /// ```
    pub fn new(unit: TimeUnit, observation_end: DateTime<Utc>) -> Self {
        SummaryOptions {
            unit,
            observation_end,
            calibration_end: None,
        }
    }
}

/// One row per customer, as columns (see [`summary`] for the
/// definitions), customers in ascending key order. All times are in the
/// [`SummaryOptions::unit`]; amounts in minor units.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{summary, SummaryOptions, TimeUnit, Transaction};
///
/// let at = Utc.with_ymd_and_hms(2024, 1, 1, 9, 0, 0).unwrap();
/// let s = summary(&[Transaction { customer: 1, at, amount_minor: 100 }],
///                 &SummaryOptions::new(TimeUnit::Days, at))?;
/// assert_eq!((s.len(), s.frequency[0], s.t[0]), (1, 0.0, 0.0));
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary<K = u64> {
    /// The customers, ascending.
    pub customers: Vec<K>,
    /// Repeat purchase periods (x).
    pub frequency: Vec<f64>,
    /// Periods from the first to the last purchase (tₓ).
    pub recency: Vec<f64>,
    /// Periods from the first purchase to the end of (calibration) observation (T).
    pub t: Vec<f64>,
    /// Mean amount of the repeat purchase periods, in minor units; 0 without
    /// repeat purchases.
    pub monetary_value: Vec<f64>,
    /// Everything the customer spent in the (calibration) observation,
    /// first purchase included, in minor units: the M of RFM.
    pub total_minor: Vec<i64>,
    /// With [`SummaryOptions::calibration_end`]: what each customer did after
    /// it.
    pub holdout: Option<Holdout>,
}

/// The holdout columns of a calibration/holdout split, aligned with
/// [`Summary::customers`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{summary, SummaryOptions, TimeUnit, Transaction};
///
/// let day = |d: u32| Utc.with_ymd_and_hms(2024, 5, d, 0, 0, 0).unwrap();
/// let tx = |d, amount_minor| Transaction { customer: 1u64, at: day(d), amount_minor };
/// let options = SummaryOptions {
///     calibration_end: Some(day(10)),
///     ..SummaryOptions::new(TimeUnit::Days, day(20))
/// };
/// let s = summary(&[tx(1, 100), tx(5, 100), tx(12, 300), tx(15, 500)], &options)?;
/// let holdout = s.holdout.unwrap();
/// assert_eq!((s.frequency[0], s.t[0]), (1.0, 9.0));
/// assert_eq!((holdout.frequency[0], holdout.monetary_value[0], holdout.duration), (2.0, 400.0, 10.0));
/// # Ok::<(), crm_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    /// Purchase periods in the holdout (every one counts: the first purchase
    /// was in calibration).
    pub frequency: Vec<f64>,
    /// Mean amount of those periods, in minor units (0 without any). Unlike
    /// `lifetimes`, which averages the individual holdout transactions, this
    /// averages per period, as the calibration column does.
    pub monetary_value: Vec<f64>,
    /// The holdout's length: periods from the calibration end's to the
    /// observation end's.
    pub duration: f64,
}

impl<K> Summary<K> {
    /// The number of customers.
    ///
    /// ```
    /// use crm_core::analytics::Summary;
    /// let empty = Summary::<u64> { customers: vec![], frequency: vec![], recency: vec![], t: vec![],
    ///     monetary_value: vec![], total_minor: vec![], holdout: None };
    /// assert!(empty.is_empty() && empty.len() == 0);
    /// ```
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// Whether there are no customers.
    ///
    /// ```
    /// use crm_core::analytics::Summary;
    /// let empty = Summary::<u64> { customers: vec![], frequency: vec![], recency: vec![], t: vec![],
    ///     monetary_value: vec![], total_minor: vec![], holdout: None };
    /// assert!(empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }
}

/// Summarizes purchases per customer with the conventions of the
/// buy-till-you-die literature (and of the `lifetimes` Python package):
///
/// * time is counted in whole periods of a [`TimeUnit`] (UTC days, or
///   Monday-to-Sunday weeks), and all purchases of a customer in one period
///   are collapsed into one (their amounts summed);
/// * `frequency` is the number of *repeat* purchase periods: periods with a
///   purchase, minus one for the first;
/// * `recency` is the time from the first to the last purchase period;
/// * `t` (T in the literature) is the time from the first purchase period to
///   the period containing the observation end;
/// * `monetary_value` is the mean amount of the repeat purchase periods
///   (the first purchase excluded), 0 without repeat purchases;
/// * `total_minor` is everything spent, first purchase included.
///
/// The observation end is inclusive *by period*: every purchase in the
/// period containing `observation_end` counts (as in `lifetimes`), later
/// ones are ignored, and customers whose first purchase comes later are left
/// out. With a calibration end, the columns describe the periods up to its
/// period and [`Summary::holdout`] the periods after it.
///
/// The transactions may come in any order; already sorted by (customer,
/// time), as a store returns them, they are not copied. Work is split
/// between cores by customer.
///
/// Errors with [`Error::Validation`] on a negative amount
/// (`transactions[i].amount_minor`), a calibration end after the observation
/// end, or a customer's spend overflowing `i64`.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{summary, SummaryOptions, TimeUnit, Transaction};
///
/// let at = |m: u32| Utc.with_ymd_and_hms(2024, m, 1, 0, 0, 0).unwrap();
/// let tx = [
///     Transaction { customer: 2u64, at: at(3), amount_minor: 500 },
///     Transaction { customer: 2, at: at(1), amount_minor: 100 },
/// ];
/// let s = summary(&tx, &SummaryOptions::new(TimeUnit::Weeks, at(6)))?;
/// assert_eq!((s.frequency[0], s.monetary_value[0]), (1.0, 500.0));
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn summary<K: CustomerKey>(
    transactions: &[Transaction<K>],
    options: &SummaryOptions,
) -> Result<Summary<K>> {
    summarize(&Records(transactions), options)
}

/// A purchase log as columns, one entry per purchase in each, as data
/// frames hold it: the form bindings hand over without building a record
/// per purchase. [`summary_of_columns`] summarizes it.
///
/// ```
/// use crm_core::analytics::TransactionColumns;
/// let log = TransactionColumns { customers: &[7u64, 7], seconds: &[0, 86_400], amounts_minor: &[100, 250] };
/// assert_eq!(log.customers.len(), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TransactionColumns<'a, K> {
    /// Each purchase's customer.
    pub customers: &'a [K],
    /// When each purchase was made, in seconds since 1970-01-01 00:00 UTC.
    pub seconds: &'a [i64],
    /// Each purchase's amount in minor units (not negative).
    pub amounts_minor: &'a [i64],
}

/// [`summary`] of a log given as columns: the same result as of the
/// records `(customers[i], seconds[i], amounts_minor[i])`. Columns of
/// different lengths are an [`Error::Validation`] naming the shorter or
/// longer one (`seconds`, `amounts_minor`); a negative amount names its
/// element (`amounts_minor[i]`).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use crm_core::analytics::{summary_of_columns, SummaryOptions, TimeUnit, TransactionColumns};
///
/// let day = 86_400;
/// let log = TransactionColumns {
///     customers: &[9u64, 7, 7, 7],
///     seconds: &[4 * day, 0, 3 * day, 8 * day],
///     amounts_minor: &[700, 1_000, 2_000, 4_000],
/// };
/// let end = Utc.with_ymd_and_hms(1970, 1, 10, 0, 0, 0).unwrap();
/// let s = summary_of_columns(&log, &SummaryOptions::new(TimeUnit::Days, end))?;
/// assert_eq!(s.customers, [7, 9]);
/// assert_eq!((s.frequency[0], s.recency[0], s.t[0]), (2.0, 8.0, 9.0));
/// # Ok::<(), crm_core::Error>(())
/// ```
pub fn summary_of_columns<K: CustomerKey>(
    log: &TransactionColumns<'_, K>,
    options: &SummaryOptions,
) -> Result<Summary<K>> {
    let n = log.customers.len();
    check_len("seconds", log.seconds.len(), "customers", n)?;
    check_len("amounts_minor", log.amounts_minor.len(), "customers", n)?;
    summarize(log, options)
}

/// A purchase log the summary reads: records or columns.
trait Log<K>: Sync {
    fn len(&self) -> usize;
    fn customer(&self, i: usize) -> K;
    fn seconds(&self, i: usize) -> i64;
    fn amount(&self, i: usize) -> i64;
    /// How element `i`'s amount is named in errors.
    fn amount_field(&self, i: usize) -> String;
}

/// A slice of records as a [`Log`].
struct Records<'a, K>(&'a [Transaction<K>]);

impl<K: CustomerKey> Log<K> for Records<'_, K> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn customer(&self, i: usize) -> K {
        self.0[i].customer
    }
    fn seconds(&self, i: usize) -> i64 {
        self.0[i].at.timestamp()
    }
    fn amount(&self, i: usize) -> i64 {
        self.0[i].amount_minor
    }
    fn amount_field(&self, i: usize) -> String {
        format!("transactions[{i}].amount_minor")
    }
}

impl<K: CustomerKey> Log<K> for TransactionColumns<'_, K> {
    fn len(&self) -> usize {
        self.customers.len()
    }
    fn customer(&self, i: usize) -> K {
        self.customers[i]
    }
    fn seconds(&self, i: usize) -> i64 {
        self.seconds[i]
    }
    fn amount(&self, i: usize) -> i64 {
        self.amounts_minor[i]
    }
    fn amount_field(&self, i: usize) -> String {
        format!("amounts_minor[{i}]")
    }
}

fn summarize<K: CustomerKey>(log: &impl Log<K>, options: &SummaryOptions) -> Result<Summary<K>> {
    let unit = options.unit;
    let (end, calibration) = periods(options)?;
    let n = log.len();
    // Both checks on all cores: the first negative amount of each chunk,
    // and whether the chunk is sorted, its step from the previous chunk
    // included. Seconds order as times do (and sub-second differences never
    // change a period), so sorted by (customer, second) is sorted enough.
    let checks = super::par::map_chunks(n, 1 << 18, |range| {
        let negative = range.clone().find(|&i| log.amount(i) < 0);
        let sorted = range.clone().skip(usize::from(range.start == 0)).all(|i| {
            (log.customer(i - 1), log.seconds(i - 1)) <= (log.customer(i), log.seconds(i))
        });
        (negative, sorted)
    });
    if let Some(i) = checks.iter().find_map(|c| c.0) {
        return Err(Error::validation(
            log.amount_field(i),
            "must not be negative (net refunds out before summarizing)",
        ));
    }
    let sorted = checks.iter().all(|c| c.1);
    let record = |i: usize| {
        (
            log.customer(i),
            unit.period_of_seconds(log.seconds(i)),
            log.amount(i),
        )
    };
    let builders = if sorted {
        build_in_parts(
            n,
            |i, j| log.customer(i) == log.customer(j),
            |range| range.map(record).filter(|r| r.1 <= end),
            end,
            calibration,
        )?
    } else {
        match RadixRecords::new(log, unit, end) {
            Some(sorted) => build_in_parts(
                sorted.records.len(),
                |i, j| sorted.customer(i) == sorted.customer(j),
                |range| sorted.records[range].iter().map(|r| sorted.decode(r)),
                end,
                calibration,
            )?,
            None => {
                let parts = super::par::map_chunks(n, 1 << 18, |range| {
                    range.map(record).filter(|r| r.1 <= end).collect::<Vec<_>>()
                });
                let mut records = parts.concat();
                drop(parts);
                sort_records(&mut records);
                build_in_parts(
                    records.len(),
                    |i, j| records[i].0 == records[j].0,
                    |range| records[range].iter().copied(),
                    end,
                    calibration,
                )?
            }
        }
    };
    let mut builders = builders.into_iter();
    let mut out = builders
        .next()
        .unwrap_or_else(|| Builder::new(end, calibration));
    for part in builders {
        out.append(part);
    }
    Ok(out.finish())
}

/// The periods of the observation end and of the calibration end.
fn periods(options: &SummaryOptions) -> Result<(i64, Option<i64>)> {
    let unit = options.unit;
    let calibration = match options.calibration_end {
        Some(c) if c > options.observation_end => {
            return Err(Error::validation(
                "calibration_end",
                "must not be after observation_end",
            ));
        }
        Some(c) => Some(unit.period_of(c)),
        None => None,
    };
    Ok((unit.period_of(options.observation_end), calibration))
}

/// [`summary`] of purchases that arrive one at a time, already sorted by
/// (customer, time), as the store reads them from an index: memory grows
/// with the customers, not the purchases. The caller checks the amounts
/// (none negative) and the order.
pub(crate) fn summary_of_sorted<K: Copy + Ord>(
    purchases: impl Iterator<Item = (K, DateTime<Utc>, i64)>,
    options: &SummaryOptions,
) -> Result<Summary<K>> {
    let unit = options.unit;
    let (end, calibration) = periods(options)?;
    let mut builder = Builder::new(end, calibration);
    builder.consume(
        purchases
            .map(|(customer, at, amount)| (customer, unit.period_of(at), amount))
            .filter(|r| r.1 <= end),
    )?;
    Ok(builder.finish())
}

/// Builds the summary of `0..n` in as many parts as there are threads, cut
/// between customers (`same(i, j)`: items i and j are of one customer), in
/// parallel; `items(range)` yields the records of a range in order.
fn build_in_parts<K, I>(
    n: usize,
    same: impl Fn(usize, usize) -> bool,
    items: impl Fn(std::ops::Range<usize>) -> I + Sync,
    end: i64,
    calibration: Option<i64>,
) -> Result<Vec<Builder<K>>>
where
    K: Copy + Ord + Send + Sync,
    I: Iterator<Item = (K, i64, i64)>,
{
    let parts = if n < 1 << 16 {
        1
    } else {
        super::par::threads()
    };
    let mut cuts = vec![0];
    for k in 1..parts {
        let mut c = (n * k / parts).max(cuts[cuts.len() - 1]);
        while c > 0 && c < n && same(c - 1, c) {
            c += 1;
        }
        if c > cuts[cuts.len() - 1] && c < n {
            cuts.push(c);
        }
    }
    cuts.push(n);
    let build = |range: std::ops::Range<usize>| -> Result<Builder<K>> {
        let mut builder = Builder::new(end, calibration);
        builder.consume(items(range))?;
        Ok(builder)
    };
    if cuts.len() == 2 {
        return Ok(vec![build(0..n)?]);
    }
    let build = &build;
    std::thread::scope(|scope| {
        let handles: Vec<_> = cuts
            .windows(2)
            .skip(1)
            .map(|w| {
                let range = w[0]..w[1];
                scope.spawn(move || build(range))
            })
            .collect();
        let mut out = vec![build(cuts[0]..cuts[1])?];
        for handle in handles {
            out.push(handle.join().expect("a summary worker thread panicked")?);
        }
        Ok(out)
    })
}

/// A customer key of a transaction log: anything `Copy + Ord` that can be
/// sent between threads. Integer keys also have an order-preserving image
/// in `u64`, which lets [`summary`] order an unsorted log by a radix sort
/// instead of comparisons (several times faster on millions of purchases);
/// a key type of your own can implement the trait with the defaults
/// (`impl CustomerKey for MyId {}`), and is then sorted by comparison.
///
/// ```
/// use crm_core::analytics::CustomerKey;
/// assert!((-1i64).to_u64() < 0i64.to_u64());
/// assert_eq!(i64::from_u64(7i64.to_u64().unwrap()), Some(7));
/// ```
pub trait CustomerKey: Copy + Ord + Send + Sync {
    /// An image in `u64` that keeps the keys' order, if there is one.
    fn to_u64(self) -> Option<u64> {
        None
    }

    /// The key whose image is `value`.
    fn from_u64(value: u64) -> Option<Self> {
        let _ = value;
        None
    }
}

macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl CustomerKey for $t {
            fn to_u64(self) -> Option<u64> {
                Some(self as u64)
            }
            fn from_u64(value: u64) -> Option<Self> {
                <$t>::try_from(value).ok()
            }
        }
    )*};
}

macro_rules! signed_key {
    ($($t:ty),*) => {$(
        impl CustomerKey for $t {
            fn to_u64(self) -> Option<u64> {
                Some((self as i64 as u64) ^ (1 << 63))
            }
            fn from_u64(value: u64) -> Option<Self> {
                <$t>::try_from((value ^ (1 << 63)) as i64).ok()
            }
        }
    )*};
}

unsigned_key!(u8, u16, u32, u64, usize);
signed_key!(i8, i16, i32, i64, isize);

/// Purchases (up to the end period) ordered by (customer, period) with a
/// radix sort, each packed as ((key − min key) · 2^bits + period offset,
/// amount). `None` when the keys have no `u64` image or their range and
/// the periods' don't fit 64 bits together.
struct RadixRecords<K> {
    records: Vec<(u64, i64)>,
    /// Bits of the period offset.
    bits: u32,
    /// The earliest period.
    first: i64,
    /// The smallest key's image.
    min: u64,
    marker: std::marker::PhantomData<K>,
}

impl<K: CustomerKey> RadixRecords<K> {
    fn new(log: &impl Log<K>, unit: TimeUnit, end: i64) -> Option<Self> {
        let n = log.len();
        // Key range and first period, in parallel.
        let parts = super::par::map_chunks(n, 1 << 18, |range| {
            let (mut lo, mut hi, mut first) = (u64::MAX, 0, i64::MAX);
            for i in range {
                let k = log.customer(i).to_u64()?;
                let period = unit.period_of_seconds(log.seconds(i));
                if period <= end {
                    (lo, hi, first) = (lo.min(k), hi.max(k), first.min(period));
                }
            }
            Some((lo, hi, first))
        });
        let (mut min, mut max, mut first) = (u64::MAX, 0, i64::MAX);
        for part in parts {
            let (lo, hi, f) = part?;
            (min, max, first) = (min.min(lo), max.max(hi), first.min(f));
        }
        if first > end {
            return None; // nothing before the end: the comparison path is trivial
        }
        let bits = super::index_bits((end - first + 1) as usize);
        // One more key than the customers': purchases after the end take it,
        // sort last and are cut off, so that the records fill one
        // allocation in place.
        let past = (max - min).checked_add(1)?;
        let key_bits = u64::BITS - past.leading_zeros();
        if key_bits + bits > 64 {
            return None;
        }
        let mut records = vec![(0u64, 0i64); n];
        super::par::fill_chunks(&mut records, 1 << 18, |offset, part| {
            for (k, slot) in part.iter_mut().enumerate() {
                let i = offset + k;
                let period = unit.period_of_seconds(log.seconds(i));
                *slot = match log.customer(i).to_u64() {
                    Some(key) if period <= end => (
                        ((key - min) << bits) | (period - first) as u64,
                        log.amount(i),
                    ),
                    _ => (past << bits, 0),
                };
            }
        });
        super::radix_sort(&mut records, key_bits + bits);
        let kept = records.partition_point(|r| r.0 < past << bits);
        records.truncate(kept);
        Some(RadixRecords {
            records,
            bits,
            first,
            min,
            marker: std::marker::PhantomData,
        })
    }

    fn customer(&self, i: usize) -> u64 {
        self.records[i].0 >> self.bits
    }

    fn decode(&self, &(packed, amount): &(u64, i64)) -> (K, i64, i64) {
        let offset = packed & ((1u64 << self.bits) - 1);
        let key =
            K::from_u64((packed >> self.bits) + self.min).expect("the image of a key of the log");
        (key, self.first + offset as i64, amount)
    }
}

/// Sorts by (customer, period), the two halves on two threads when there
/// are many.
fn sort_records<K: Copy + Ord + Send>(records: &mut Vec<(K, i64, i64)>) {
    let key = |r: &(K, i64, i64)| (r.0, r.1);
    if records.len() < 1 << 16 || super::par::threads() < 2 {
        records.sort_unstable_by_key(key);
        return;
    }
    let mid = records.len() / 2;
    {
        let (left, right) = records.split_at_mut(mid);
        std::thread::scope(|scope| {
            scope.spawn(|| left.sort_unstable_by_key(key));
            right.sort_unstable_by_key(key);
        });
    }
    let mut merged = Vec::with_capacity(records.len());
    let (left, right) = records.split_at(mid);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if key(&right[j]) < key(&left[i]) {
            merged.push(right[j]);
            j += 1;
        } else {
            merged.push(left[i]);
            i += 1;
        }
    }
    merged.extend_from_slice(&left[i..]);
    merged.extend_from_slice(&right[j..]);
    *records = merged;
}

/// Accumulates the summary from records sorted by (customer, period).
struct Builder<K> {
    end: i64,
    calibration: Option<i64>,
    out: Summary<K>,
    holdout_frequency: Vec<f64>,
    holdout_monetary: Vec<f64>,
}

/// One customer's running totals.
struct Current<K> {
    customer: K,
    first: i64,
    last: i64,
    /// The period being collapsed and its amount so far.
    period: i64,
    period_amount: i128,
    periods: u64,
    repeat_amount: i128,
    total: i128,
    holdout_periods: u64,
    holdout_amount: i128,
}

impl<K: Copy + Ord> Builder<K> {
    fn new(end: i64, calibration: Option<i64>) -> Self {
        Builder {
            end,
            calibration,
            out: Summary {
                customers: Vec::new(),
                frequency: Vec::new(),
                recency: Vec::new(),
                t: Vec::new(),
                monetary_value: Vec::new(),
                total_minor: Vec::new(),
                holdout: None,
            },
            holdout_frequency: Vec::new(),
            holdout_monetary: Vec::new(),
        }
    }

    fn consume(&mut self, records: impl Iterator<Item = (K, i64, i64)>) -> Result<()> {
        let cutoff = self.calibration.unwrap_or(self.end);
        let mut current: Option<Current<K>> = None;
        for (customer, period, amount) in records {
            match &mut current {
                Some(c) if c.customer == customer => {
                    if period == c.period {
                        c.period_amount += i128::from(amount);
                        continue;
                    }
                    close_period(c, cutoff);
                    c.period = period;
                    c.period_amount = i128::from(amount);
                }
                _ => {
                    if let Some(mut c) = current.take() {
                        close_period(&mut c, cutoff);
                        self.push(c)?;
                    }
                    current = Some(Current {
                        customer,
                        first: period,
                        last: period,
                        period,
                        period_amount: i128::from(amount),
                        periods: 0,
                        repeat_amount: 0,
                        total: 0,
                        holdout_periods: 0,
                        holdout_amount: 0,
                    });
                }
            }
        }
        if let Some(mut c) = current.take() {
            close_period(&mut c, cutoff);
            self.push(c)?;
        }
        Ok(())
    }

    fn push(&mut self, c: Current<K>) -> Result<()> {
        let cutoff = self.calibration.unwrap_or(self.end);
        if c.first > cutoff {
            // First purchase in the holdout: not a calibration customer.
            return Ok(());
        }
        let frequency = c.periods - 1;
        let total = i64::try_from(c.total).map_err(|_| {
            Error::validation("amount_minor", "a customer's total spend overflows i64")
        })?;
        self.out.customers.push(c.customer);
        self.out.frequency.push(frequency as f64);
        self.out.recency.push((c.last - c.first) as f64);
        self.out.t.push((cutoff - c.first) as f64);
        self.out.monetary_value.push(if frequency > 0 {
            c.repeat_amount as f64 / frequency as f64
        } else {
            0.0
        });
        self.out.total_minor.push(total);
        if self.calibration.is_some() {
            self.holdout_frequency.push(c.holdout_periods as f64);
            self.holdout_monetary.push(if c.holdout_periods > 0 {
                c.holdout_amount as f64 / c.holdout_periods as f64
            } else {
                0.0
            });
        }
        Ok(())
    }

    /// Appends the customers of `other` (all after this one's).
    fn append(&mut self, other: Builder<K>) {
        let (a, b) = (&mut self.out, other.out);
        a.customers.extend(b.customers);
        a.frequency.extend(b.frequency);
        a.recency.extend(b.recency);
        a.t.extend(b.t);
        a.monetary_value.extend(b.monetary_value);
        a.total_minor.extend(b.total_minor);
        self.holdout_frequency.extend(other.holdout_frequency);
        self.holdout_monetary.extend(other.holdout_monetary);
    }

    fn finish(mut self) -> Summary<K> {
        if let Some(calibration) = self.calibration {
            self.out.holdout = Some(Holdout {
                frequency: self.holdout_frequency,
                monetary_value: self.holdout_monetary,
                duration: (self.end - calibration) as f64,
            });
        }
        self.out
    }
}

/// Books the period `c.period` (with `c.period_amount`) into calibration or
/// holdout.
fn close_period<K>(c: &mut Current<K>, cutoff: i64) {
    if c.period <= cutoff {
        if c.periods > 0 {
            c.repeat_amount += c.period_amount;
        }
        c.periods += 1;
        c.last = c.period;
        c.total += c.period_amount;
    } else {
        c.holdout_periods += 1;
        c.holdout_amount += c.period_amount;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::hours(day * 24 + 10)
    }

    fn tx(customer: u64, day: i64, amount_minor: i64) -> Transaction {
        Transaction {
            customer,
            at: at(day),
            amount_minor,
        }
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut txs = vec![
            tx(3, 0, 10),
            tx(1, 2, 5),
            tx(3, 9, 20),
            tx(1, 0, 7),
            tx(3, 9, 1),
            tx(2, 30, 4),
        ];
        let options = SummaryOptions::new(TimeUnit::Days, at(20));
        let shuffled = summary(&txs, &options).unwrap();
        txs.sort_by_key(|t| (t.customer, t.at));
        let sorted = summary(&txs, &options).unwrap();
        assert_eq!(shuffled, sorted);
        // Customer 2's first purchase is after the end.
        assert_eq!(sorted.customers, [1, 3]);
        assert_eq!(sorted.frequency, [1.0, 1.0]);
        assert_eq!(sorted.monetary_value, [5.0, 21.0]);
        assert_eq!(sorted.total_minor, [12, 31]);
    }

    #[test]
    fn the_radix_order_agrees_with_a_plain_sort() {
        let mut rng = fastrand::Rng::with_seed(5);
        let start = at(0);
        let log: Vec<Transaction<i64>> = (0..200_000)
            .map(|_| Transaction {
                customer: rng.i64(-2500..2500),
                at: start + Duration::hours(rng.i64(0..400 * 24)),
                amount_minor: rng.i64(0..100),
            })
            .collect();
        let end = TimeUnit::Days.period_of(start) + 300;
        let sorted = RadixRecords::new(&Records(&log), TimeUnit::Days, end).unwrap();
        let got: Vec<(i64, i64, i64)> = sorted.records.iter().map(|r| sorted.decode(r)).collect();
        let mut plain: Vec<(i64, i64, i64)> = log
            .iter()
            .map(|t| (t.customer, TimeUnit::Days.period_of(t.at), t.amount_minor))
            .filter(|r| r.1 <= end)
            .collect();
        // A stable sort: amounts of one (customer, period) keep their order.
        plain.sort_by_key(|r| (r.0, r.1));
        assert_eq!(got, plain);
        // The comparison sort orders alike.
        let mut records: Vec<(i64, i64, i64)> = log
            .iter()
            .map(|t| (t.customer, TimeUnit::Days.period_of(t.at), t.amount_minor))
            .filter(|r| r.1 <= end)
            .collect();
        sort_records(&mut records);
        let keys = |v: &[(i64, i64, i64)]| v.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>();
        assert_eq!(keys(&records), keys(&plain));
    }

    #[test]
    fn columns_summarize_as_records_do() {
        let mut rng = fastrand::Rng::with_seed(9);
        let log: Vec<Transaction<i64>> = (0..50_000)
            .map(|_| Transaction {
                customer: rng.i64(-300..3000),
                at: at(0) + Duration::seconds(rng.i64(0..500 * 86_400)),
                amount_minor: rng.i64(0..1000),
            })
            .collect();
        let customers: Vec<i64> = log.iter().map(|t| t.customer).collect();
        let seconds: Vec<i64> = log.iter().map(|t| t.at.timestamp()).collect();
        let amounts: Vec<i64> = log.iter().map(|t| t.amount_minor).collect();
        let columns = TransactionColumns {
            customers: &customers,
            seconds: &seconds,
            amounts_minor: &amounts,
        };
        for options in [
            SummaryOptions::new(TimeUnit::Days, at(400)),
            SummaryOptions {
                calibration_end: Some(at(300)),
                ..SummaryOptions::new(TimeUnit::Weeks, at(450))
            },
        ] {
            assert_eq!(
                summary_of_columns(&columns, &options).unwrap(),
                summary(&log, &options).unwrap()
            );
        }
        let options = SummaryOptions::new(TimeUnit::Days, at(400));
        let short = TransactionColumns {
            seconds: &seconds[1..],
            ..columns
        };
        assert!(matches!(
            summary_of_columns(&short, &options),
            Err(Error::Validation { ref field, .. }) if field == "seconds"
        ));
        let mut negative = amounts.clone();
        negative[7] = -1;
        let bad = TransactionColumns {
            amounts_minor: &negative,
            ..columns
        };
        assert!(matches!(
            summary_of_columns(&bad, &options),
            Err(Error::Validation { ref field, .. }) if field == "amounts_minor[7]"
        ));
    }

    #[test]
    fn keys_without_a_radix_image_give_the_same_summary() {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        struct Id(u64);
        impl CustomerKey for Id {}
        let log: Vec<Transaction<u64>> = (0..5_000u64)
            .map(|i| tx((i * 7919) % 301, (i as i64 * 31) % 200, (i % 50) as i64))
            .collect();
        let wrapped: Vec<Transaction<Id>> = log
            .iter()
            .map(|t| Transaction {
                customer: Id(t.customer),
                at: t.at,
                amount_minor: t.amount_minor,
            })
            .collect();
        let options = SummaryOptions::new(TimeUnit::Days, at(150));
        let a = summary(&log, &options).unwrap();
        let b = summary(&wrapped, &options).unwrap();
        assert_eq!(
            a.customers,
            b.customers.iter().map(|c| c.0).collect::<Vec<_>>()
        );
        assert_eq!((a.frequency, a.recency, a.t), (b.frequency, b.recency, b.t));
        assert_eq!(a.total_minor, b.total_minor);
    }

    #[test]
    fn parallel_parts_agree_with_one_pass() {
        let mut rng = fastrand::Rng::with_seed(9);
        let txs: Vec<Transaction> = (0..150_000)
            .map(|_| tx(rng.u64(0..20_000), rng.i64(0..60), rng.i64(0..1000)))
            .collect();
        let options = SummaryOptions {
            calibration_end: Some(at(40)),
            ..SummaryOptions::new(TimeUnit::Days, at(50))
        };
        let end = TimeUnit::Days.period_of(at(50));
        let mut records: Vec<(u64, i64, i64)> = txs
            .iter()
            .map(|t| (t.customer, TimeUnit::Days.period_of(t.at), t.amount_minor))
            .filter(|r| r.1 <= end)
            .collect();
        records.sort_by_key(|r| (r.0, r.1));
        let mut one = Builder::new(end, Some(TimeUnit::Days.period_of(at(40))));
        one.consume(records.into_iter()).unwrap();
        let one = one.finish();
        assert_eq!(summary(&txs, &options).unwrap(), one);
        let mut sorted = txs.clone();
        sorted.sort_by_key(|t| (t.customer, t.at));
        assert_eq!(summary(&sorted, &options).unwrap(), one);
    }

    #[test]
    fn weeks_collapse_purchases_of_the_same_week() {
        // 2024-01-01 is a Monday: days 0..=6 are one week.
        let txs = [tx(1, 0, 1), tx(1, 6, 2), tx(1, 7, 4), tx(1, 20, 8)];
        let s = summary(&txs, &SummaryOptions::new(TimeUnit::Weeks, at(27))).unwrap();
        assert_eq!((s.frequency[0], s.recency[0], s.t[0]), (2.0, 2.0, 3.0));
        assert_eq!(s.monetary_value[0], 6.0);
    }

    #[test]
    fn holdout_customers_and_durations() {
        let txs = [
            tx(1, 0, 1),
            tx(1, 3, 2),
            tx(1, 12, 4),
            tx(1, 12, 4),
            tx(2, 11, 9),
        ];
        let options = SummaryOptions {
            calibration_end: Some(at(10)),
            ..SummaryOptions::new(TimeUnit::Days, at(15))
        };
        let s = summary(&txs, &options).unwrap();
        assert_eq!(s.customers, [1]);
        let h = s.holdout.unwrap();
        assert_eq!(
            (h.frequency[0], h.monetary_value[0], h.duration),
            (1.0, 8.0, 5.0)
        );
        assert_eq!(s.total_minor, [3]);
    }

    #[test]
    fn bad_input_is_rejected() {
        let err = summary(
            &[tx(1, 0, 5), tx(1, 1, -1)],
            &SummaryOptions::new(TimeUnit::Days, at(3)),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Validation { ref field, .. } if field == "transactions[1].amount_minor")
        );
        let options = SummaryOptions {
            calibration_end: Some(at(5)),
            ..SummaryOptions::new(TimeUnit::Days, at(3))
        };
        let err = summary(&[tx(1, 0, 5)], &options).unwrap_err();
        assert!(matches!(err, Error::Validation { ref field, .. } if field == "calibration_end"));
        let huge = [tx(1, 0, i64::MAX), tx(1, 1, i64::MAX)];
        assert!(summary(&huge, &SummaryOptions::new(TimeUnit::Days, at(3))).is_err());
    }

    #[test]
    fn nothing_in_nothing_out() {
        let s = summary::<u64>(&[], &SummaryOptions::new(TimeUnit::Days, at(3))).unwrap();
        assert!(s.is_empty());
    }
}
