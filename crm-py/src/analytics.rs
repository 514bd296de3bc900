//! `crm.analytics`: the core's customer analytics ([`crm_core::analytics`])
//! for Python, as the native submodule `crm._crm.analytics` that
//! `python/crm/analytics.py` re-exports.
//!
//! Like the rest of the binding it converts values and nothing else; every
//! model, formula and check is the core's.
//!
//! * **Columns in.** Lists, NumPy arrays, pandas and polars Series and
//!   pyarrow arrays all go through `numpy.asarray`; a contiguous float64
//!   array is read in place (so another thread must not write to it while a
//!   call that reads it runs). Python lists and object arrays are read item by
//!   item, so a `None` or a string is reported at its position instead of
//!   turning into NaN or a parsed number.
//! * **Money** is given in major units (floats, ints, `Decimal`) and turned
//!   into the core's integer minor units exactly: a value that is not a
//!   multiple of 10⁻ᵈ (after undoing float rounding of its decimal text) is
//!   refused, never rounded.
//! * **Dates** of every common kind (NumPy datetime64 in any unit, pandas,
//!   polars and pyarrow timestamps, `datetime`, `date`, ISO strings) become
//!   UTC instants; naive ones are read as UTC.
//! * **Customer keys** (ints or strings) become `u64` keys that sort like
//!   the originals, and the originals come back in the results.
//! * **Arrays out** are NumPy arrays that take over the core's vectors.
//! * Each core call runs with the GIL released; a panic in it (a bug) comes
//!   back as `CrmError` instead of unwinding into Python.
//!
//! Bad input is a `ValidationError` whose `field` names the argument or
//! column and the 0-based position, e.g. `amount[3]` (as `iloc` counts).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use crm_core::analytics::{
    BgNbd, ClvOptions, FitOptions, GammaGamma, SummaryOptions, TimeUnit, Transaction,
    TransactionColumns, cohorts, rfm as scoring,
};
use numpy::{
    PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods, dtype,
};
use pyo3::exceptions::{PyException, PyImportError, PyModuleNotFoundError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDate, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType,
};

use crate::errors::{CrmError, OrRaise, invalid};

/// The name under which the submodule is importable (`sys.modules`).
const MODULE: &str = "crm._crm.analytics";

/// Adds the submodule `analytics` to the `crm._crm` module.
pub fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = parent.py();
    let m = PyModule::new(py, "analytics")?;
    // Its functions take their `__module__` from this name, and
    // `import crm._crm.analytics` finds it in `sys.modules` (an extension
    // module is not a package, so the import system can't look inside it).
    m.setattr("__name__", MODULE)?;
    m.setattr(
        "__doc__",
        "Customer analytics as pure functions of arrays (native part of crm.analytics).",
    )?;
    m.add_class::<BgNbdModel>()?;
    m.add_class::<GammaGammaModel>()?;
    m.add_class::<Summary>()?;
    m.add_class::<RfmScores>()?;
    m.add_class::<Retention>()?;
    m.add_function(wrap_pyfunction!(fit_bgnbd, &m)?)?;
    m.add_function(wrap_pyfunction!(fit_gamma_gamma, &m)?)?;
    m.add_function(wrap_pyfunction!(summary, &m)?)?;
    m.add_function(wrap_pyfunction!(rfm, &m)?)?;
    m.add_function(wrap_pyfunction!(rfm_quintiles, &m)?)?;
    m.add_function(wrap_pyfunction!(cohort_retention, &m)?)?;
    // An attribute, not an entry of `__all__` (which `add` would make):
    // `crm.analytics` is its public home, with a stub of its own.
    parent.setattr("analytics", &m)?;
    py.import("sys")?.getattr("modules")?.set_item(MODULE, &m)?;
    Ok(())
}

// ===== running the core =====================================================

/// Runs a core computation with the GIL released. A panic in it (a bug) is
/// raised as `CrmError` rather than unwinding through Python; its message
/// stays on stderr (the panic hook prints it), out of the exception, which
/// may be logged and must not carry data.
fn compute<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> crm_core::Result<T> + Send,
{
    match py.detach(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(result) => result.or_raise(),
        Err(_) => Err(CrmError::new_err(
            "internal error in crm.analytics (a bug, please report it with the panic \
             message printed on stderr)",
        )),
    }
}

// ===== columns in ===========================================================

/// `field[i]`: element `i` of a column, as the core names elements.
fn at(field: &str, i: usize) -> String {
    format!("{field}[{i}]")
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "this type".to_string())
}

/// None, NaN, pandas' `NA` and `NaT`: a value that is not there.
fn is_missing(item: &Bound<'_, PyAny>) -> bool {
    if item.is_none() {
        return true;
    }
    if let Ok(f) = item.cast::<PyFloat>() {
        return f.value().is_nan();
    }
    matches!(type_name(item).as_str(), "NAType" | "NaTType")
}

/// The error for item `i` of `field` that is not `what`.
fn not_a(item: &Bound<'_, PyAny>, field: &str, i: usize, what: &str) -> PyErr {
    if is_missing(item) {
        invalid(at(field, i), "is missing")
    } else {
        invalid(
            at(field, i),
            format!("must be {what}, not {}", type_name(item)),
        )
    }
}

fn numpy(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    py.import(intern!(py, "numpy"))
}

/// `obj` as a one-dimensional NumPy array: `numpy.asarray(obj)`, except that
/// lists and tuples become object arrays (read item by item, so that a
/// `None` or a string is reported where it is, not turned into NaN or
/// parsed).
fn array<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return one_dimensional(a.clone(), field);
    }
    let np = numpy(py)?;
    let converted = if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "dtype"), intern!(py, "object"))?;
        np.call_method(intern!(py, "asarray"), (obj,), Some(&kwargs))
    } else {
        np.call_method1(intern!(py, "asarray"), (obj,))
    };
    let converted = converted.map_err(|e| {
        if e.is_instance_of::<PyException>(py) {
            invalid(
                field,
                format!(
                    "must be a column of values (a list, NumPy array, pandas or polars Series \
                     or pyarrow array), not {}",
                    type_name(obj)
                ),
            )
        } else {
            e
        }
    })?;
    one_dimensional(converted.cast_into::<PyUntypedArray>()?, field)
}

fn one_dimensional<'py>(
    a: Bound<'py, PyUntypedArray>,
    field: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    match a.ndim() {
        1 => Ok(a),
        n => Err(invalid(
            field,
            format!("must be one-dimensional, not {n}-dimensional"),
        )),
    }
}

/// `a.astype(T)`, as a typed array.
fn astype<'py, T: numpy::Element>(
    a: &Bound<'py, PyUntypedArray>,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let py = a.py();
    // No copy when it already is.
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "copy"), false)?;
    Ok(
        a.call_method(intern!(py, "astype"), (dtype::<T>(py),), Some(&kwargs))?
            .cast_into::<PyArray1<T>>()?,
    )
}

fn readonly<'py, T: numpy::Element>(
    a: &Bound<'py, PyArray1<T>>,
    field: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    a.try_readonly()
        .map_err(|_| invalid(field, "is being written to by Rust code elsewhere"))
}

/// Calls `f` on each item of an object array.
fn each_object<'py>(
    a: &Bound<'py, PyUntypedArray>,
    field: &str,
    mut f: impl FnMut(usize, &Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    let py = a.py();
    let objects = a.cast::<PyArray1<Py<PyAny>>>()?;
    let objects = readonly(objects, field)?;
    for (i, item) in objects.as_array().iter().enumerate() {
        f(i, item.bind(py))?;
    }
    Ok(())
}

/// The error for an array whose dtype is of the wrong kind altogether.
fn wrong_kind(a: &Bound<'_, PyUntypedArray>, field: &str, what: &str) -> PyErr {
    let kind = match a.dtype().kind() {
        b'b' => "booleans".to_string(),
        b'U' | b'S' => "strings".to_string(),
        b'M' => "dates".to_string(),
        b'm' => "durations".to_string(),
        b'f' | b'i' | b'u' => "numbers".to_string(),
        _ => format!("values of dtype {}", a.dtype()),
    };
    invalid(field, format!("must be {what}, not {kind}"))
}

/// A column of floats: read in place from a contiguous float64 array, else
/// converted.
enum Floats<'py> {
    Borrowed(PyReadonlyArray1<'py, f64>),
    Owned(Vec<f64>),
}

impl Floats<'_> {
    fn as_slice(&self) -> &[f64] {
        match self {
            // Only contiguous arrays are kept borrowed (see `borrow`).
            Floats::Borrowed(a) => a.as_slice().unwrap_or_default(),
            Floats::Owned(v) => v,
        }
    }

    fn borrow<'py>(a: &Bound<'py, PyArray1<f64>>, field: &str) -> PyResult<Floats<'py>> {
        let a = readonly(a, field)?;
        if a.as_slice().is_ok() {
            Ok(Floats::Borrowed(a))
        } else {
            Ok(Floats::Owned(a.as_array().iter().copied().collect()))
        }
    }
}

/// A column of numbers (`field` names it in errors).
fn floats<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Floats<'py>> {
    if let Ok(a) = obj.cast::<PyArray1<f64>>() {
        return Floats::borrow(a, field);
    }
    let a = array(obj, field)?;
    if a.len() == 0 {
        return Ok(Floats::Owned(Vec::new()));
    }
    match a.dtype().kind() {
        b'f' | b'i' | b'u' => Floats::borrow(&astype::<f64>(&a)?, field),
        b'O' => {
            let mut out = Vec::with_capacity(a.len());
            each_object(&a, field, |i, item| {
                out.push(float_item(item, field, i)?);
                Ok(())
            })?;
            Ok(Floats::Owned(out))
        }
        _ => Err(wrong_kind(&a, field, "numbers")),
    }
}

fn float_item(item: &Bound<'_, PyAny>, field: &str, i: usize) -> PyResult<f64> {
    if let Ok(f) = item.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if item.is_instance_of::<PyBool>() {
        return Err(invalid(at(field, i), "must be a number, not bool"));
    }
    if item.is_instance_of::<PyInt>() {
        return item
            .extract::<f64>()
            .map_err(|_| invalid(at(field, i), "is too large"));
    }
    if item.is_instance_of::<PyString>() {
        return Err(invalid(at(field, i), "must be a number, not str"));
    }
    // NumPy scalars, Decimal, Fraction: anything with __float__.
    item.extract::<f64>()
        .map_err(|_| not_a(item, field, i, "a number"))
}

/// A scalar number argument given as a float, int or NumPy scalar (as
/// opposed to an array of them).
fn is_scalar(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = obj.py();
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return Ok(true);
    }
    let generic = numpy(py)?.getattr(intern!(py, "generic"))?;
    obj.is_instance(&generic)
}

// ----- money ----------------------------------------------------------------

/// The largest whole number every smaller one of which a float holds exactly.
const EXACT: f64 = 9_007_199_254_740_992.0; // 2⁵³

const NEGATIVE: &str = "must not be negative (net refunds out beforehand)";

/// Conversion of amounts in major units to integer minor units with
/// `decimals` digits (the currency's exponent).
struct Money {
    decimals: u8,
    /// 10^decimals.
    factor: i64,
}

impl Money {
    fn new(decimals: i64) -> PyResult<Self> {
        match u8::try_from(decimals) {
            Ok(d) if d <= 18 => Ok(Money {
                decimals: d,
                factor: 10_i64.pow(u32::from(d)),
            }),
            _ => Err(invalid("decimals", "must be a whole number from 0 to 18")),
        }
    }

    /// 10^decimals as a float (exact: powers of ten up to 10²² are).
    fn scale(&self) -> f64 {
        self.factor as f64
    }

    /// The smallest amount, as text: "0.01" for two decimals.
    fn step(&self) -> String {
        match self.decimals {
            0 => "1".to_string(),
            d => format!("0.{}1", "0".repeat(usize::from(d) - 1)),
        }
    }

    /// A float amount: exact when its nearest multiple of 10^-decimals is,
    /// as a float, the amount itself (so 0.29, stored as
    /// 0.28999999999999998, is 29 cents; 0.295 is refused).
    fn of_float(&self, x: f64) -> Result<i64, String> {
        if x.is_nan() {
            return Err("is missing (NaN)".into());
        }
        if !x.is_finite() {
            return Err("must be a finite amount".into());
        }
        if x < 0.0 {
            return Err(NEGATIVE.into());
        }
        let scaled = x * self.scale();
        // Below 2⁵², adding ½ and truncating rounds (a tie can't pass the
        // check below either way) without a call to libm's `round`.
        let minor = if scaled < EXACT / 2.0 {
            (scaled + 0.5) as i64 as f64
        } else {
            scaled.round()
        };
        if minor > EXACT {
            return Err("is too large to convert to minor units exactly".into());
        }
        if minor / self.scale() != x {
            return Err(format!("is not a multiple of {}", self.step()));
        }
        Ok(minor as i64)
    }

    fn of_int(&self, v: i128) -> Result<i64, String> {
        if v < 0 {
            return Err(NEGATIVE.into());
        }
        v.checked_mul(i128::from(self.factor))
            .and_then(|m| i64::try_from(m).ok())
            .ok_or_else(|| "is too large for 64-bit minor units".to_string())
    }

    /// A column of amounts.
    fn column(&self, obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<i64>> {
        let a = Money::array(obj, field)?;
        let mut out = vec![0; a.len()];
        self.read(&a, field, &mut |i, v| out[i] = v)?;
        Ok(out)
    }

    /// `obj` as an array to read amounts from.
    fn array<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
        match obj.cast::<PyArray1<f64>>() {
            Ok(a) => Ok(a.as_untyped().clone()),
            Err(_) => array(obj, field),
        }
    }

    /// Gives `put` each amount of `a` (from [`Money::array`]) in minor
    /// units, with its position.
    fn read(
        &self,
        a: &Bound<'_, PyUntypedArray>,
        field: &str,
        put: &mut dyn FnMut(usize, i64),
    ) -> PyResult<()> {
        let bad = |i: usize| move |reason: String| invalid(at(field, i), reason);
        if a.len() == 0 {
            return Ok(());
        }
        match a.dtype().kind() {
            b'f' => {
                let floats = Floats::borrow(&astype::<f64>(a)?, field)?;
                for (i, &x) in floats.as_slice().iter().enumerate() {
                    put(i, self.of_float(x).map_err(bad(i))?);
                }
            }
            b'i' => {
                let ints = astype::<i64>(a)?;
                for (i, &v) in readonly(&ints, field)?.as_array().iter().enumerate() {
                    put(i, self.of_int(i128::from(v)).map_err(bad(i))?);
                }
            }
            b'u' => {
                let ints = astype::<u64>(a)?;
                for (i, &v) in readonly(&ints, field)?.as_array().iter().enumerate() {
                    put(i, self.of_int(i128::from(v)).map_err(bad(i))?);
                }
            }
            b'O' => {
                let py = a.py();
                let decimal = py
                    .import("decimal")?
                    .getattr("Decimal")?
                    .cast_into::<PyType>()?;
                each_object(a, field, |i, item| {
                    put(i, self.item(item, &decimal, field, i)?);
                    Ok(())
                })?;
            }
            _ => return Err(wrong_kind(a, field, "amounts")),
        }
        Ok(())
    }

    fn item(
        &self,
        item: &Bound<'_, PyAny>,
        decimal: &Bound<'_, PyType>,
        field: &str,
        i: usize,
    ) -> PyResult<i64> {
        let bad = |reason: String| invalid(at(field, i), reason);
        if let Ok(f) = item.cast::<PyFloat>() {
            return self.of_float(f.value()).map_err(bad);
        }
        if item.is_instance_of::<PyBool>() {
            return Err(invalid(at(field, i), "must be an amount, not bool"));
        }
        if item.is_instance_of::<PyInt>() {
            return match item.extract::<i128>() {
                Ok(v) => self.of_int(v).map_err(bad),
                Err(_) => Err(invalid(at(field, i), "is too large")),
            };
        }
        if item.is_instance(decimal)? {
            return self.of_decimal(item).map_err(bad);
        }
        if item.is_instance_of::<PyString>() {
            return Err(invalid(at(field, i), "must be an amount, not str"));
        }
        // NumPy scalars: integers through __index__, floats through __float__.
        if let Ok(v) = item.extract::<i64>() {
            return self.of_int(i128::from(v)).map_err(bad);
        }
        match item.extract::<f64>() {
            Ok(x) => self.of_float(x).map_err(bad),
            Err(_) => Err(not_a(item, field, i, "an amount")),
        }
    }

    /// A `Decimal` amount: exact or refused, in decimal arithmetic.
    fn of_decimal(&self, d: &Bound<'_, PyAny>) -> Result<i64, String> {
        let py = d.py();
        let call = |name: &str| -> Result<Bound<'_, PyAny>, String> {
            d.call_method0(name)
                .map_err(|_| "is not a valid Decimal".to_string())
        };
        let truthy = |v: Bound<'_, PyAny>| {
            v.is_truthy()
                .map_err(|_| "is not a valid Decimal".to_string())
        };
        if truthy(call("is_nan")?)? {
            return Err("is missing (NaN)".into());
        }
        if !truthy(call("is_finite")?)? {
            return Err("must be a finite amount".into());
        }
        if d.lt(0).map_err(|_| "is not a valid Decimal".to_string())? {
            return Err(NEGATIVE.into());
        }
        let minor = d
            .call_method1("scaleb", (self.decimals,))
            .map_err(|_| "is too large".to_string())?;
        let whole = minor
            .call_method0("to_integral_value")
            .map_err(|_| "is too large".to_string())?;
        if !minor.eq(&whole).unwrap_or(false) {
            return Err(format!("is not a multiple of {}", self.step()));
        }
        py.get_type::<PyInt>()
            .call1((whole,))
            .and_then(|v| v.extract::<i64>())
            .map_err(|_| "is too large for 64-bit minor units".to_string())
    }
}

// ----- dates ----------------------------------------------------------------

/// `obj` as an array to read points in time from.
fn time_array<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    // pandas hands out time-zone-aware columns as Timestamp objects; its
    // own conversion to naive UTC keeps them datetime64.
    let obj = match obj
        .getattr(intern!(py, "dtype"))
        .and_then(|d| d.getattr(intern!(py, "tz")))
    {
        Ok(tz) if !tz.is_none() && obj.hasattr(intern!(py, "dt"))? => obj
            .getattr(intern!(py, "dt"))?
            .call_method1(intern!(py, "tz_convert"), (py.None(),))?,
        _ => obj.clone(),
    };
    array(&obj, field)
}

/// Gives `put` each point in time of `a` (from [`time_array`]), with its
/// position (see the module documentation for what is accepted).
fn read_instants(
    a: &Bound<'_, PyUntypedArray>,
    field: &str,
    put: &mut dyn FnMut(usize, DateTime<Utc>),
) -> PyResult<()> {
    let py = a.py();
    if a.len() == 0 {
        return Ok(());
    }
    let objects = match a.dtype().kind() {
        b'M' => return datetime64(a, &|i| at(field, i), put),
        b'O' => a.clone(),
        b'U' => a
            .call_method1(intern!(py, "astype"), (intern!(py, "object"),))?
            .cast_into::<PyUntypedArray>()?,
        _ => return Err(wrong_kind(a, field, "dates or datetimes")),
    };
    each_object(&objects, field, |i, item| {
        put(i, instant_item(item, field, i)?);
        Ok(())
    })
}

/// (seconds, nanoseconds) since the epoch of `v` units of `per_second` a
/// second.
#[inline(always)]
fn fraction_of_second(v: i64, per_second: i64) -> Option<(i64, u32)> {
    let nanos = v.rem_euclid(per_second) * (1_000_000_000 / per_second);
    Some((v.div_euclid(per_second), nanos as u32))
}

/// (seconds, nanoseconds) since the epoch of `v` units of `seconds` seconds.
#[inline(always)]
fn whole_seconds(v: i64, seconds: i64) -> Option<(i64, u32)> {
    Some((v.checked_mul(seconds)?, 0))
}

/// The dates of a range of days since the epoch, looked up rather than
/// computed: chrono's calendar arithmetic is most of what converting a
/// datetime64 column costs, and a purchase log spans few days.
struct Calendar {
    first_day: i64,
    dates: Vec<NaiveDate>,
}

impl Calendar {
    /// The calendar from the day of `first` to the day of `last` (seconds
    /// since the epoch); None for a range of more than 2²⁰ days.
    fn spanning(first: i64, last: i64) -> Option<Calendar> {
        let (first_day, last_day) = (first.div_euclid(86_400), last.div_euclid(86_400));
        if last_day - first_day > 1 << 20 {
            return None;
        }
        let dates = (first_day..=last_day)
            .map(|day| DateTime::from_timestamp(day * 86_400, 0).map(|t| t.date_naive()))
            .collect::<Option<Vec<NaiveDate>>>()?;
        Some(Calendar { first_day, dates })
    }

    /// The instant `seconds` + `nanos` after the epoch.
    #[inline(always)]
    fn instant(&self, seconds: i64, nanos: u32) -> Option<DateTime<Utc>> {
        let day = usize::try_from(seconds.div_euclid(86_400) - self.first_day).ok()?;
        let time = NaiveTime::from_num_seconds_from_midnight_opt(
            seconds.rem_euclid(86_400) as u32,
            nanos,
        )?;
        Some(self.dates.get(day)?.and_time(time).and_utc())
    }
}

/// Gives `put` each point in time of a datetime64 array (read as integers
/// in its own unit), with its position; `name(i)` names element i in errors.
fn datetime64(
    a: &Bound<'_, PyUntypedArray>,
    name: &dyn Fn(usize) -> String,
    put: &mut dyn FnMut(usize, DateTime<Utc>),
) -> PyResult<()> {
    let py = a.py();
    let np = numpy(py)?;
    let (unit, count): (String, i64) = np
        .call_method1(intern!(py, "datetime_data"), (a.dtype(),))?
        .extract()?;
    let known = ["ns", "us", "ms", "s", "m", "h", "D", "W"];
    let (a, unit) = if count == 1 && known.contains(&unit.as_str()) {
        (a.clone(), unit)
    } else {
        // Months, years, multiples and units finer than nanoseconds:
        // through microseconds.
        let us = a
            .call_method1(intern!(py, "astype"), (intern!(py, "datetime64[us]"),))?
            .cast_into::<PyUntypedArray>()?;
        (us, "us".to_string())
    };
    let ints = a
        .call_method1(intern!(py, "view"), (dtype::<i64>(py),))?
        .cast_into::<PyArray1<i64>>()?;
    let ints = readonly(&ints, &name(0))?;
    let ints = ints.as_array();
    // One loop per unit, so that each divides by a constant.
    let mut convert = |split: &dyn Fn(i64) -> Option<(i64, u32)>| -> PyResult<()> {
        // NaT is the smallest int64.
        let present = ints.iter().copied().filter(|&v| v != i64::MIN);
        let (low, high) = present.fold((i64::MAX, i64::MIN), |(l, h), v| (l.min(v), h.max(v)));
        let calendar = match (split(low), split(high)) {
            (Some((first, _)), Some((last, _))) if low <= high => Calendar::spanning(first, last),
            _ => None,
        };
        for (i, &v) in ints.iter().enumerate() {
            if v == i64::MIN {
                return Err(invalid(name(i), "is missing (NaT)"));
            }
            let t = split(v).and_then(|(seconds, nanos)| match &calendar {
                Some(c) => c.instant(seconds, nanos),
                None => DateTime::from_timestamp(seconds, nanos),
            });
            put(i, t.ok_or_else(|| invalid(name(i), "is out of range"))?);
        }
        Ok(())
    };
    match unit.as_str() {
        "ns" => convert(&|v| fraction_of_second(v, 1_000_000_000)),
        "us" => convert(&|v| fraction_of_second(v, 1_000_000)),
        "ms" => convert(&|v| fraction_of_second(v, 1_000)),
        "s" => convert(&|v| Some((v, 0))),
        "m" => convert(&|v| whole_seconds(v, 60)),
        "h" => convert(&|v| whole_seconds(v, 3_600)),
        "D" => convert(&|v| whole_seconds(v, 86_400)),
        _ => convert(&|v| whole_seconds(v, 7 * 86_400)),
    }
}

fn instant_item(item: &Bound<'_, PyAny>, field: &str, i: usize) -> PyResult<DateTime<Utc>> {
    // pandas' NaT is a datetime too.
    let usable = item.is_instance_of::<PyString>()
        || (item.is_instance_of::<PyDate>()
            && !(item.is_instance_of::<PyDateTime>() && is_missing(item)));
    if usable {
        crate::convert::time(item, &at(field, i))
    } else {
        Err(not_a(item, field, i, "a date, datetime or ISO 8601 string"))
    }
}

/// One point in time: a `datetime` (aware, or naive = UTC), a `date`
/// (midnight UTC), an ISO 8601 string, a pandas `Timestamp` or a NumPy
/// `datetime64`.
fn instant(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    let py = obj.py();
    if is_missing(obj) {
        return Err(invalid(field, "is missing"));
    }
    if obj.is_instance_of::<PyDate>() || obj.is_instance_of::<PyString>() {
        return crate::convert::time(obj, field);
    }
    let a = numpy(py)?
        .call_method1(intern!(py, "asarray"), (obj,))?
        .call_method1(intern!(py, "reshape"), (-1,))?
        .cast_into::<PyUntypedArray>()?;
    let mut instant = None;
    if (a.dtype().kind(), a.len()) == (b'M', 1) {
        datetime64(&a, &|_| field.to_string(), &mut |_, t| instant = Some(t))?;
    }
    instant.ok_or_else(|| {
        invalid(
            field,
            format!("must be a date or datetime, not {}", type_name(obj)),
        )
    })
}

// ----- customer keys ----------------------------------------------------------

/// Order-preserving map of i64 onto u64.
const SIGN: u64 = 1 << 63;

/// What customer keys were, to give them back.
enum KeyKind<'py> {
    /// Signed ints, stored as `v ^ 2⁶³`.
    Signed,
    /// Unsigned ints, stored as they are.
    Unsigned,
    /// Strings: key k is the k-th distinct string in sorted order; these are
    /// the original objects, in that order.
    Strings(Vec<Bound<'py, PyAny>>),
}

/// Customer keys as the core takes them, `u64`s that sort as the
/// originals, one per row.
struct Keys<'py> {
    keys: Vec<u64>,
    kind: KeyKind<'py>,
}

impl<'py> Keys<'py> {
    fn read(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Self> {
        let py = obj.py();
        let a = array(obj, field)?;
        if a.len() == 0 {
            return Ok(Keys {
                keys: Vec::new(),
                kind: KeyKind::Signed,
            });
        }
        match a.dtype().kind() {
            b'i' => {
                let ints = astype::<i64>(&a)?;
                let ints = readonly(&ints, field)?;
                let keys = ints.as_array().iter().map(|&v| v as u64 ^ SIGN).collect();
                Ok(Keys {
                    keys,
                    kind: KeyKind::Signed,
                })
            }
            b'u' => {
                let ints = astype::<u64>(&a)?;
                let keys = readonly(&ints, field)?.as_array().iter().copied().collect();
                Ok(Keys {
                    keys,
                    kind: KeyKind::Unsigned,
                })
            }
            // Whole floats: an int column that had missing values.
            b'f' => {
                let floats = Floats::borrow(&astype::<f64>(&a)?, field)?;
                let mut keys = Vec::with_capacity(a.len());
                for (i, &v) in floats.as_slice().iter().enumerate() {
                    if v.is_nan() {
                        return Err(invalid(at(field, i), "is missing"));
                    }
                    if v.fract() != 0.0 || !(-EXACT..=EXACT).contains(&v) {
                        return Err(invalid(
                            at(field, i),
                            "must be an int or a string, not a fractional number",
                        ));
                    }
                    keys.push(v as i64 as u64 ^ SIGN);
                }
                Ok(Keys {
                    keys,
                    kind: KeyKind::Signed,
                })
            }
            b'O' => Self::objects(&a, field),
            b'U' => {
                let objects = a
                    .call_method1(intern!(py, "astype"), (intern!(py, "object"),))?
                    .cast_into::<PyUntypedArray>()?;
                Self::objects(&objects, field)
            }
            _ => Err(wrong_kind(&a, field, "ints or strings")),
        }
    }

    /// Keys from an object array: all ints, or all strings (the first
    /// decides).
    fn objects(a: &Bound<'py, PyUntypedArray>, field: &str) -> PyResult<Self> {
        let py = a.py();
        let objects = readonly(a.cast::<PyArray1<Py<PyAny>>>()?, field)?;
        let items = objects.as_array();
        let strings = items
            .iter()
            .next()
            .is_some_and(|first| first.bind(py).is_instance_of::<PyString>());
        if !strings {
            let mut keys = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item = item.bind(py);
                let v = if item.is_instance_of::<PyBool>() || item.is_instance_of::<PyString>() {
                    None
                } else {
                    item.extract::<i64>().ok()
                };
                match v {
                    Some(v) => keys.push(v as u64 ^ SIGN),
                    None if item.is_instance_of::<PyInt>() => {
                        return Err(invalid(at(field, i), "is too large for a 64-bit int"));
                    }
                    None if i == 0 => return Err(not_a(item, field, i, "an int or a string")),
                    None => {
                        return Err(not_a(item, field, i, "an int like the customers before it"));
                    }
                }
            }
            return Ok(Keys {
                keys,
                kind: KeyKind::Signed,
            });
        }
        // Strings are told apart by their text, borrowed from the objects the
        // array holds; codes in order of first appearance, then ranked.
        let mut code_of: HashMap<&str, u32> = HashMap::new();
        let mut texts: Vec<&str> = Vec::new();
        let mut first_seen: Vec<usize> = Vec::new();
        let mut codes: Vec<u32> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item = item.bind(py);
            let text = match item.cast::<PyString>() {
                Ok(s) => s
                    .to_str()
                    .map_err(|_| invalid(at(field, i), "is not valid Unicode"))?,
                Err(_) => {
                    return Err(not_a(
                        item,
                        field,
                        i,
                        "a string like the customers before it",
                    ));
                }
            };
            let next = texts.len() as u32;
            let code = *code_of.entry(text).or_insert_with(|| {
                texts.push(text);
                first_seen.push(i);
                next
            });
            codes.push(code);
        }
        let mut order: Vec<u32> = (0..texts.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| texts[a as usize].cmp(texts[b as usize]));
        let mut rank = vec![0u64; texts.len()];
        for (r, &code) in order.iter().enumerate() {
            rank[code as usize] = r as u64;
        }
        let originals = order
            .iter()
            .map(|&code| items[first_seen[code as usize]].bind(py).clone())
            .collect();
        Ok(Keys {
            keys: codes.iter().map(|&c| rank[c as usize]).collect(),
            kind: KeyKind::Strings(originals),
        })
    }
}

impl<'py> KeyKind<'py> {
    /// The original values of `keys`, as a NumPy array (int64, uint64 or
    /// object).
    fn values(&self, py: Python<'py>, keys: Vec<u64>) -> Bound<'py, PyAny> {
        match self {
            KeyKind::Signed => {
                let ints: Vec<i64> = keys.into_iter().map(|k| (k ^ SIGN) as i64).collect();
                PyArray1::from_vec(py, ints).into_any()
            }
            KeyKind::Unsigned => PyArray1::from_vec(py, keys).into_any(),
            KeyKind::Strings(originals) => {
                let objects: Vec<Py<PyAny>> = keys
                    .into_iter()
                    .map(|k| originals[k as usize].clone().unbind())
                    .collect();
                PyArray1::from_vec(py, objects).into_any()
            }
        }
    }
}

// ----- tables -----------------------------------------------------------------

/// Column `name` of a table (anything indexable by column name).
fn column<'py>(table: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = table.py();
    table.get_item(name).map_err(|e| {
        if e.is_instance_of::<PyException>(py) {
            invalid(
                name,
                format!("no such column in the table ({})", type_name(table)),
            )
        } else {
            e
        }
    })
}

fn same_length(field: &str, values: usize, reference: &str, expected: usize) -> PyResult<()> {
    if values == expected {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("has {values} values but {reference} has {expected}"),
        ))
    }
}

/// A purchase log read from a table's columns, converted straight into the
/// core's columns (in table order).
struct Log<'py> {
    customers: Vec<u64>,
    /// Seconds since the epoch.
    seconds: Vec<i64>,
    amounts_minor: Vec<i64>,
    /// The latest time, to its fraction of a second.
    latest: Option<DateTime<Utc>>,
    /// What the customer keys were, to give them back.
    kind: KeyKind<'py>,
}

impl<'py> Log<'py> {
    /// `amount`: the money column and how to read it; without one, every
    /// amount is 0.
    fn read(
        table: &Bound<'py, PyAny>,
        customer: &str,
        date: &str,
        amount: Option<(&str, &Money)>,
    ) -> PyResult<Self> {
        // Every column is looked up before any is converted.
        let customer_column = column(table, customer)?;
        let date_column = column(table, date)?;
        let amount_column = amount.map(|(name, _)| column(table, name)).transpose()?;
        let Keys { keys, kind } = Keys::read(&customer_column, customer)?;
        let n = keys.len();
        let dates = time_array(&date_column, date)?;
        same_length(date, dates.len(), customer, n)?;
        let amounts = match (amount, amount_column) {
            (Some((name, money)), Some(col)) => {
                let a = Money::array(&col, name)?;
                same_length(name, a.len(), customer, n)?;
                Some((name, money, a))
            }
            _ => None,
        };
        let mut seconds = vec![0_i64; n];
        let mut latest: Option<DateTime<Utc>> = None;
        read_instants(&dates, date, &mut |i, t| {
            if let Some(s) = seconds.get_mut(i) {
                *s = t.timestamp();
            }
            if latest.is_none_or(|l| t > l) {
                latest = Some(t);
            }
        })?;
        let mut amounts_minor = vec![0_i64; n];
        if let Some((name, money, a)) = amounts {
            money.read(&a, name, &mut |i, v| {
                if let Some(slot) = amounts_minor.get_mut(i) {
                    *slot = v;
                }
            })?;
        }
        Ok(Log {
            customers: keys,
            seconds,
            amounts_minor,
            latest,
            kind,
        })
    }

    /// `observation_end`, or else the latest purchase, as `lifetimes` does.
    fn end(&self, observation_end: Option<&Bound<'_, PyAny>>) -> PyResult<DateTime<Utc>> {
        match observation_end {
            Some(end) if !end.is_none() => instant(end, "observation_end"),
            _ => self.latest.ok_or_else(|| {
                invalid(
                    "observation_end",
                    "is needed for a table without rows (there is no latest date)",
                )
            }),
        }
    }

    /// The log as the core's columns.
    fn columns(&self) -> TransactionColumns<'_, u64> {
        TransactionColumns {
            customers: &self.customers,
            seconds: &self.seconds,
            amounts_minor: &self.amounts_minor,
        }
    }
}

fn time_unit(unit: &str) -> PyResult<TimeUnit> {
    match unit {
        "days" => Ok(TimeUnit::Days),
        "weeks" => Ok(TimeUnit::Weeks),
        _ => Err(invalid("unit", "must be \"days\" or \"weeks\"")),
    }
}

fn unit_name(unit: TimeUnit) -> &'static str {
    match unit {
        TimeUnit::Weeks => "weeks",
        _ => "days",
    }
}

// ===== out ====================================================================

fn array_of(py: Python<'_>, values: Vec<f64>) -> Py<PyArray1<f64>> {
    PyArray1::from_vec(py, values).unbind()
}

/// A square matrix as a 2-D array.
fn matrix<const N: usize>(py: Python<'_>, m: &[[f64; N]; N]) -> PyResult<Py<PyArray2<f64>>> {
    let flat: Vec<f64> = m.iter().flatten().copied().collect();
    Ok(PyArray1::from_vec(py, flat).reshape([N, N])?.unbind())
}

/// `names` → values as a dict.
fn named<'py>(py: Python<'py>, names: &[&str], values: &[f64]) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in names.iter().zip(values) {
        dict.set_item(name, value)?;
    }
    Ok(dict)
}

/// About six significant digits, as Python's `format(x, ".6g")`.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let exponent = x.abs().log10().floor() as i32;
    if (-5..6).contains(&exponent) {
        let decimals = (5 - exponent).max(0) as usize;
        let text = format!("{x:.decimals$}");
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    } else {
        format!("{x:.5e}")
    }
}

/// `module`, or an ImportError saying which extra installs it.
fn import_for<'py>(py: Python<'py>, module: &str, method: &str) -> PyResult<Bound<'py, PyModule>> {
    py.import(module).map_err(|e| {
        if e.is_instance_of::<PyImportError>(py) {
            let err = PyModuleNotFoundError::new_err(format!(
                "{method}() needs {module}, which is not installed: pip install 'crm[{module}]'"
            ));
            err.set_cause(py, Some(e));
            err
        } else {
            e
        }
    })
}

// ===== BG/NBD =================================================================

/// A BG/NBD model of purchase counts (Fader, Hardie & Lee 2005): purchase
/// rates λ ~ Gamma(r, alpha) while alive, dropout after each repeat purchase
/// with probability p ~ Beta(a, b). Parameters are in the data's time unit.
///
/// Make one with `fit_bgnbd`, or from known parameters with
/// `BgNbdModel(r, alpha, a, b)` (each finite and > 0). Customers' histories
/// are `frequency` (repeat purchases), `recency` (first to last purchase)
/// and `T` (first purchase to end of observation), as in a `Summary`.
#[pyclass(module = "crm.analytics", name = "BgNbdModel", frozen)]
struct BgNbdModel(BgNbd);

#[pymethods]
impl BgNbdModel {
    #[new]
    fn new(r: f64, alpha: f64, a: f64, b: f64) -> PyResult<Self> {
        BgNbd::new(r, alpha, a, b).or_raise().map(BgNbdModel)
    }

    /// Shape of the Gamma distribution of purchase rates.
    #[getter]
    fn r(&self) -> f64 {
        self.0.r
    }

    /// Rate of the Gamma distribution of purchase rates, per time unit.
    #[getter]
    fn alpha(&self) -> f64 {
        self.0.alpha
    }

    /// First shape of the Beta distribution of dropout probabilities.
    #[getter]
    fn a(&self) -> f64 {
        self.0.a
    }

    /// Second shape of the Beta distribution of dropout probabilities.
    #[getter]
    fn b(&self) -> f64 {
        self.0.b
    }

    /// The log-likelihood of the fitted data at the estimate (without the
    /// penalty); None when not fitted.
    #[getter]
    fn log_likelihood(&self) -> Option<f64> {
        self.0.log_likelihood
    }

    /// Standard errors as {"r", "alpha", "a", "b"} → float (from the
    /// Hessian at the estimate); None when not fitted or not available.
    #[getter]
    fn standard_errors<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.0
            .standard_errors
            .map(|se| named(py, &["r", "alpha", "a", "b"], &se))
            .transpose()
    }

    /// The 4×4 covariance matrix of (r, alpha, a, b); None when not fitted.
    #[getter]
    fn covariance(&self, py: Python<'_>) -> PyResult<Option<Py<PyArray2<f64>>>> {
        self.0
            .covariance
            .as_ref()
            .map(|c| matrix(py, c))
            .transpose()
    }

    /// Optimizer iterations the fit took (0 when not fitted).
    #[getter]
    fn iterations(&self) -> u32 {
        self.0.iterations
    }

    /// Each customer's expected number of purchases in the next `t` time
    /// units, E[Y(t) | frequency, recency, T].
    #[allow(non_snake_case)]
    #[pyo3(signature = (t, frequency, recency, T))]
    fn expected_purchases<'py>(
        &self,
        py: Python<'py>,
        t: f64,
        frequency: &Bound<'py, PyAny>,
        recency: &Bound<'py, PyAny>,
        T: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, tx, big_t) = history(frequency, recency, T)?;
        let (x, tx, big_t) = (x.as_slice(), tx.as_slice(), big_t.as_slice());
        let model = &self.0;
        let out = compute(py, || model.expected_purchases(t, x, tx, big_t))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Each customer's probability of being alive at the end of observation,
    /// P(alive | frequency, recency, T) (1 without repeat purchases).
    #[allow(non_snake_case)]
    #[pyo3(signature = (frequency, recency, T))]
    fn p_alive<'py>(
        &self,
        py: Python<'py>,
        frequency: &Bound<'py, PyAny>,
        recency: &Bound<'py, PyAny>,
        T: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (x, tx, big_t) = history(frequency, recency, T)?;
        let (x, tx, big_t) = (x.as_slice(), tx.as_slice(), big_t.as_slice());
        let model = &self.0;
        let out = compute(py, || model.p_alive(x, tx, big_t))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// E[X(t)]: the expected number of repeat purchases in `t` time units
    /// after the first purchase of a customer drawn at random. A float for a
    /// number; an array of them for an array of `t`.
    fn expected_purchases_unconditional(
        &self,
        py: Python<'_>,
        t: &Bound<'_, PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let model = &self.0;
        if is_scalar(t)? {
            let horizon = float_item(t, "t", 0).map_err(|_| invalid("t", "must be a number"))?;
            let value = compute(py, || model.expected_purchases_unconditional(horizon))?;
            return Ok(PyFloat::new(py, value).into_any().unbind());
        }
        let horizons = floats(t, "t")?;
        let horizons = horizons.as_slice();
        let values = compute(py, || {
            horizons
                .iter()
                .enumerate()
                .map(|(i, &h)| {
                    model
                        .expected_purchases_unconditional(h)
                        .map_err(|e| match e {
                            crm_core::Error::Validation { reason, .. } => {
                                crm_core::Error::validation(at("t", i), reason)
                            }
                            other => other,
                        })
                })
                .collect::<crm_core::Result<Vec<f64>>>()
        })?;
        Ok(PyArray1::from_vec(py, values).into_any().unbind())
    }

    fn __repr__(&self) -> String {
        let m = &self.0;
        let mut text = format!(
            "BgNbdModel(r={}, alpha={}, a={}, b={}",
            short(m.r),
            short(m.alpha),
            short(m.a),
            short(m.b)
        );
        if let Some(ll) = m.log_likelihood {
            text.push_str(&format!(", log_likelihood={}", short(ll)));
        }
        text.push(')');
        text
    }
}

/// The three columns of customers' histories.
#[allow(non_snake_case)]
fn history<'py>(
    frequency: &Bound<'py, PyAny>,
    recency: &Bound<'py, PyAny>,
    T: &Bound<'py, PyAny>,
) -> PyResult<(Floats<'py>, Floats<'py>, Floats<'py>)> {
    Ok((
        floats(frequency, "frequency")?,
        floats(recency, "recency")?,
        floats(T, "T")?,
    ))
}

fn fit_options(
    weights: Option<&[f64]>,
    penalizer: f64,
    max_iterations: Option<u32>,
) -> FitOptions<'_> {
    let defaults = FitOptions::default();
    FitOptions {
        weights,
        penalizer,
        max_iterations: max_iterations.unwrap_or(defaults.max_iterations),
    }
}

/// Fits a BG/NBD model by maximum likelihood to customers' histories:
/// `frequency` (repeat purchases, whole numbers), `recency` (time from the
/// first to the last purchase) and `T` (time from the first purchase to the
/// end of observation), e.g. the columns of a `Summary`.
///
/// `weights`: how many customers each row stands for; `penalizer`: an L2
/// penalty as `lifetimes`' `penalizer_coef`; `max_iterations`: the most
/// optimizer iterations (default 500). Runs with the GIL released.
#[allow(non_snake_case)]
#[pyfunction]
#[pyo3(signature = (frequency, recency, T, *, weights = None, penalizer = 0.0, max_iterations = None))]
fn fit_bgnbd<'py>(
    py: Python<'py>,
    frequency: &Bound<'py, PyAny>,
    recency: &Bound<'py, PyAny>,
    T: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    penalizer: f64,
    max_iterations: Option<u32>,
) -> PyResult<BgNbdModel> {
    let (x, tx, big_t) = history(frequency, recency, T)?;
    let weights = weights.map(|w| floats(w, "weights")).transpose()?;
    let (x, tx, big_t) = (x.as_slice(), tx.as_slice(), big_t.as_slice());
    let options = fit_options(
        weights.as_ref().map(Floats::as_slice),
        penalizer,
        max_iterations,
    );
    let model = compute(py, || BgNbd::fit_with(x, tx, big_t, &options))?;
    Ok(BgNbdModel(model))
}

// ===== Gamma-Gamma ============================================================

/// A Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005;
/// Fader & Hardie 2013): amounts ~ Gamma(p, ν) per customer, ν ~ Gamma(q,
/// gamma) across customers, independent of the purchase process.
///
/// Make one with `fit_gamma_gamma`, or from known parameters with
/// `GammaGammaModel(p, q, gamma)` (each finite and > 0). Monetary values are
/// in whatever unit they are given (a `Summary` gives major units).
#[pyclass(module = "crm.analytics", name = "GammaGammaModel", frozen)]
struct GammaGammaModel(GammaGamma);

#[pymethods]
impl GammaGammaModel {
    #[new]
    fn new(p: f64, q: f64, gamma: f64) -> PyResult<Self> {
        GammaGamma::new(p, q, gamma).or_raise().map(GammaGammaModel)
    }

    /// Shape of each customer's Gamma distribution of amounts.
    #[getter]
    fn p(&self) -> f64 {
        self.0.p
    }

    /// Shape of the Gamma distribution of the customers' rate ν.
    #[getter]
    fn q(&self) -> f64 {
        self.0.q
    }

    /// Rate of the Gamma distribution of ν, in the amounts' unit (`v` in
    /// lifetimes).
    #[getter]
    fn gamma(&self) -> f64 {
        self.0.gamma
    }

    /// The log-likelihood of the fitted data at the estimate (without the
    /// penalty); None when not fitted.
    #[getter]
    fn log_likelihood(&self) -> Option<f64> {
        self.0.log_likelihood
    }

    /// Standard errors as {"p", "q", "gamma"} → float; None when not fitted
    /// or not available.
    #[getter]
    fn standard_errors<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.0
            .standard_errors
            .map(|se| named(py, &["p", "q", "gamma"], &se))
            .transpose()
    }

    /// The 3×3 covariance matrix of (p, q, gamma); None when not fitted.
    #[getter]
    fn covariance(&self, py: Python<'_>) -> PyResult<Option<Py<PyArray2<f64>>>> {
        self.0
            .covariance
            .as_ref()
            .map(|c| matrix(py, c))
            .transpose()
    }

    /// Optimizer iterations the fit took (0 when not fitted).
    #[getter]
    fn iterations(&self) -> u32 {
        self.0.iterations
    }

    /// Each customer's expected mean spend per purchase given `frequency`
    /// repeat purchases of mean `monetary_value` (needs q > 1).
    fn expected_average_value<'py>(
        &self,
        py: Python<'py>,
        frequency: &Bound<'py, PyAny>,
        monetary_value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = floats(frequency, "frequency")?;
        let m = floats(monetary_value, "monetary_value")?;
        let (x, m) = (x.as_slice(), m.as_slice());
        let model = &self.0;
        let out = compute(py, || model.expected_average_value(x, m))?;
        Ok(PyArray1::from_vec(py, out))
    }

    /// Customer lifetime value over `months` months (lifetimes'
    /// `customer_lifetime_value`): each month's expected purchases from
    /// `bgnbd_model` times the expected average value, discounted at
    /// `discount_rate` a month. `unit` is the time unit of recency and T
    /// ("days": 30 a month, or "weeks": 4.345 a month).
    #[allow(non_snake_case, clippy::too_many_arguments)]
    #[pyo3(signature = (bgnbd_model, frequency, recency, T, monetary_value, *, months = 12, discount_rate = 0.01, unit = "days"))]
    fn clv<'py>(
        &self,
        py: Python<'py>,
        bgnbd_model: &Bound<'py, BgNbdModel>,
        frequency: &Bound<'py, PyAny>,
        recency: &Bound<'py, PyAny>,
        T: &Bound<'py, PyAny>,
        monetary_value: &Bound<'py, PyAny>,
        months: u32,
        discount_rate: f64,
        unit: &str,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let options = ClvOptions {
            months,
            discount_rate,
            ..ClvOptions::new(time_unit(unit)?)
        };
        let (x, tx, big_t) = history(frequency, recency, T)?;
        let m = floats(monetary_value, "monetary_value")?;
        let (x, tx, big_t, m) = (x.as_slice(), tx.as_slice(), big_t.as_slice(), m.as_slice());
        let (spend, purchases) = (&self.0, &bgnbd_model.get().0);
        let out = compute(py, || spend.clv(purchases, x, tx, big_t, m, &options))?;
        Ok(PyArray1::from_vec(py, out))
    }

    fn __repr__(&self) -> String {
        let m = &self.0;
        let mut text = format!(
            "GammaGammaModel(p={}, q={}, gamma={}",
            short(m.p),
            short(m.q),
            short(m.gamma)
        );
        if let Some(ll) = m.log_likelihood {
            text.push_str(&format!(", log_likelihood={}", short(ll)));
        }
        text.push(')');
        text
    }
}

/// Fits a Gamma-Gamma spend model by maximum likelihood to `frequency`
/// (repeat purchases) and `monetary_value` (their mean amount). Customers
/// without repeat purchases carry no information on spend and are skipped,
/// so a whole `Summary` can be passed.
///
/// `weights`, `penalizer` and `max_iterations` as for `fit_bgnbd`. Runs with
/// the GIL released.
#[pyfunction]
#[pyo3(signature = (frequency, monetary_value, *, weights = None, penalizer = 0.0, max_iterations = None))]
fn fit_gamma_gamma<'py>(
    py: Python<'py>,
    frequency: &Bound<'py, PyAny>,
    monetary_value: &Bound<'py, PyAny>,
    weights: Option<&Bound<'py, PyAny>>,
    penalizer: f64,
    max_iterations: Option<u32>,
) -> PyResult<GammaGammaModel> {
    let x = floats(frequency, "frequency")?;
    let m = floats(monetary_value, "monetary_value")?;
    let weights = weights.map(|w| floats(w, "weights")).transpose()?;
    let (x, m) = (x.as_slice(), m.as_slice());
    let options = fit_options(
        weights.as_ref().map(Floats::as_slice),
        penalizer,
        max_iterations,
    );
    let model = compute(py, || GammaGamma::fit_with(x, m, &options))?;
    Ok(GammaGammaModel(model))
}

// ===== summary ================================================================

/// The holdout columns of a calibration/holdout summary.
struct HoldoutArrays {
    frequency: Py<PyArray1<f64>>,
    monetary_value: Py<PyArray1<f64>>,
    duration: Py<PyArray1<f64>>,
}

/// Per-customer summary of a purchase log, one row per customer (ascending
/// key), as NumPy arrays: `customer` (the keys as given), `frequency`
/// (repeat purchase periods), `recency` (first to last purchase period), `T`
/// (first purchase period to the end of observation), `monetary_value`
/// (mean amount of the repeat purchase periods, 0 without any) and `total`
/// (everything spent, first purchase included), amounts in major units.
/// With a calibration end, the columns describe the calibration period and
/// `frequency_holdout`, `monetary_value_holdout` and `duration_holdout` the
/// rest (else they are None).
///
/// `to_dict()` gives the columns as a dict (`pandas.DataFrame(s.to_dict())`),
/// `to_pandas()` and `to_polars()` a DataFrame.
#[pyclass(module = "crm.analytics", name = "Summary", frozen)]
struct Summary {
    /// The customers' keys as given (int64, uint64 or object array of str).
    #[pyo3(get)]
    customer: Py<PyAny>,
    /// Repeat purchase periods.
    #[pyo3(get)]
    frequency: Py<PyArray1<f64>>,
    /// Periods from the first to the last purchase.
    #[pyo3(get)]
    recency: Py<PyArray1<f64>>,
    /// Periods from the first purchase to the end of (calibration) observation.
    #[pyo3(get, name = "T")]
    t: Py<PyArray1<f64>>,
    /// Mean amount of the repeat purchase periods (major units); 0 without
    /// repeat purchases.
    #[pyo3(get)]
    monetary_value: Py<PyArray1<f64>>,
    /// Everything spent in the (calibration) observation, first purchase
    /// included (major units).
    #[pyo3(get)]
    total: Py<PyArray1<f64>>,
    holdout: Option<HoldoutArrays>,
    len: usize,
    /// "days" or "weeks".
    #[pyo3(get)]
    unit: &'static str,
    /// The end of observation (UTC).
    #[pyo3(get)]
    observation_end: DateTime<Utc>,
    /// The end of calibration (UTC), or None.
    #[pyo3(get)]
    calibration_end: Option<DateTime<Utc>>,
    /// The currency exponent the amounts were read with.
    #[pyo3(get)]
    decimals: u8,
}

#[pymethods]
impl Summary {
    /// Purchase periods in the holdout, or None without calibration.
    #[getter]
    fn frequency_holdout(&self, py: Python<'_>) -> Option<Py<PyArray1<f64>>> {
        self.holdout.as_ref().map(|h| h.frequency.clone_ref(py))
    }

    /// Mean amount of the holdout's purchase periods (major units; 0 without
    /// any), or None without calibration.
    #[getter]
    fn monetary_value_holdout(&self, py: Python<'_>) -> Option<Py<PyArray1<f64>>> {
        self.holdout
            .as_ref()
            .map(|h| h.monetary_value.clone_ref(py))
    }

    /// The holdout's length in periods (the same for every customer), or
    /// None without calibration.
    #[getter]
    fn duration_holdout(&self, py: Python<'_>) -> Option<Py<PyArray1<f64>>> {
        self.holdout.as_ref().map(|h| h.duration.clone_ref(py))
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        let calibration = match self.calibration_end {
            Some(c) => format!("'{}'", c.to_rfc3339()),
            None => "None".to_string(),
        };
        format!(
            "Summary(customers={}, unit='{}', observation_end='{}', calibration_end={})",
            self.len,
            self.unit,
            self.observation_end.to_rfc3339(),
            calibration
        )
    }

    /// The columns as a dict of NumPy arrays, holdout columns included when
    /// there are any: `pandas.DataFrame(s.to_dict())`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("customer", &self.customer)?;
        dict.set_item("frequency", &self.frequency)?;
        dict.set_item("recency", &self.recency)?;
        dict.set_item("T", &self.t)?;
        dict.set_item("monetary_value", &self.monetary_value)?;
        dict.set_item("total", &self.total)?;
        if let Some(h) = &self.holdout {
            dict.set_item("frequency_holdout", &h.frequency)?;
            dict.set_item("monetary_value_holdout", &h.monetary_value)?;
            dict.set_item("duration_holdout", &h.duration)?;
        }
        Ok(dict)
    }

    /// The summary as a pandas DataFrame, one row per customer (needs
    /// pandas: `pip install 'crm[pandas]'`).
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        import_for(py, "pandas", "Summary.to_pandas")?
            .call_method1("DataFrame", (self.to_dict(py)?,))
    }

    /// The summary as a polars DataFrame, one row per customer (needs
    /// polars: `pip install 'crm[polars]'`).
    fn to_polars<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        import_for(py, "polars", "Summary.to_polars")?
            .call_method1("DataFrame", (self.to_dict(py)?,))
    }
}

/// Summarizes a purchase log per customer with the conventions of the
/// buy-till-you-die literature and of lifetimes'
/// `summary_data_from_transaction_data`.
///
/// `table` is anything indexable by column name (pandas or polars
/// DataFrame, pyarrow Table, dict of lists or arrays) with a `customer`
/// column (ints or strings), a `date` column (datetime64, Timestamps,
/// `datetime`, `date` or ISO strings; naive ones are UTC) and an `amount`
/// column in major units (floats, ints or Decimals; `amount=None` for no
/// money column). Amounts are converted exactly to minor units with
/// `decimals` (the currency's exponent); an amount that is not a multiple of
/// 10**-decimals, missing or negative is a ValidationError naming the column
/// and row (`amount[3]`, 0-based).
///
/// Time is counted in whole `unit`s ("days" or "weeks", UTC), purchases of
/// one period collapsed into one. `observation_end` (default: the latest
/// date in the table) is inclusive by period. With `calibration_end`, the
/// columns describe the purchases up to it and the holdout columns the rest.
/// Runs with the GIL released.
#[pyfunction]
#[pyo3(
    signature = (table, *, customer = "customer", date = "date", amount = Some("amount"), observation_end = None, unit = "days", calibration_end = None, decimals = 2),
    text_signature = "(table, *, customer='customer', date='date', amount='amount', observation_end=None, unit='days', calibration_end=None, decimals=2)"
)]
#[allow(clippy::too_many_arguments)]
fn summary<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    customer: &str,
    date: &str,
    amount: Option<&str>,
    observation_end: Option<&Bound<'py, PyAny>>,
    unit: &str,
    calibration_end: Option<&Bound<'py, PyAny>>,
    decimals: i64,
) -> PyResult<Summary> {
    let unit = time_unit(unit)?;
    let money = Money::new(decimals)?;
    let log = Log::read(table, customer, date, amount.map(|a| (a, &money)))?;
    let end = log.end(observation_end)?;
    let calibration = calibration_end
        .filter(|c| !c.is_none())
        .map(|c| instant(c, "calibration_end"))
        .transpose()?;
    let options = SummaryOptions {
        calibration_end: calibration,
        ..SummaryOptions::new(unit, end)
    };
    let columns = log.columns();
    let s = compute(py, || {
        crm_core::analytics::summary_of_columns(&columns, &options)
    })?;
    let Log { kind, .. } = log;
    let scale = money.scale();
    let major = |minor: Vec<f64>| -> Vec<f64> { minor.into_iter().map(|v| v / scale).collect() };
    let len = s.customers.len();
    let holdout = s.holdout.map(|h| HoldoutArrays {
        frequency: array_of(py, h.frequency),
        monetary_value: array_of(py, major(h.monetary_value)),
        duration: array_of(py, vec![h.duration; len]),
    });
    let total = s.total_minor.iter().map(|&m| m as f64 / scale).collect();
    Ok(Summary {
        customer: kind.values(py, s.customers).unbind(),
        frequency: array_of(py, s.frequency),
        recency: array_of(py, s.recency),
        t: array_of(py, s.t),
        monetary_value: array_of(py, major(s.monetary_value)),
        total: array_of(py, total),
        holdout,
        len,
        unit: unit_name(unit),
        observation_end: end,
        calibration_end: calibration,
        decimals: money.decimals,
    })
}

// ===== RFM ====================================================================

/// RFM scores, 1 to 5 (5 best) by quintile, one per customer in input order,
/// as NumPy uint8 arrays `r`, `f` and `m`, and each customer's `segment`
/// name (an object array of str: "champions", "loyal", …, "hibernating").
#[pyclass(module = "crm.analytics", name = "RfmScores", frozen)]
struct RfmScores {
    /// Recency scores (5: bought most recently).
    #[pyo3(get)]
    r: Py<PyArray1<u8>>,
    /// Frequency scores (5: bought most often).
    #[pyo3(get)]
    f: Py<PyArray1<u8>>,
    /// Monetary scores (5: spent most).
    #[pyo3(get)]
    m: Py<PyArray1<u8>>,
    /// Segment names, from the recency and frequency scores.
    #[pyo3(get)]
    segment: Py<PyAny>,
    len: usize,
}

#[pymethods]
impl RfmScores {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self) -> String {
        format!("RfmScores(customers={})", self.len)
    }

    /// The scores as a dict of arrays: "r", "f", "m", "segment".
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        dict.set_item("r", &self.r)?;
        dict.set_item("f", &self.f)?;
        dict.set_item("m", &self.m)?;
        dict.set_item("segment", &self.segment)?;
        Ok(dict)
    }
}

/// Scores customers by quintile on recency, frequency and monetary value
/// and names their segments.
///
/// `recency` is the time since each customer's last purchase (smaller is
/// better; from a `Summary`: `s.T - s.recency`), `frequency` their number
/// of purchases (`s.frequency + 1`), `monetary` what they spent in major
/// units (`s.total`), converted exactly to minor units with `decimals` as in
/// `summary`. A customer's score is 1 + ⌊5·w/n⌋ where w counts the customers
/// with a strictly worse value; ties score alike. Runs with the GIL released.
#[pyfunction]
#[pyo3(signature = (recency, frequency, monetary, *, decimals = 2))]
fn rfm<'py>(
    py: Python<'py>,
    recency: &Bound<'py, PyAny>,
    frequency: &Bound<'py, PyAny>,
    monetary: &Bound<'py, PyAny>,
    decimals: i64,
) -> PyResult<RfmScores> {
    let money = Money::new(decimals)?;
    let r = floats(recency, "recency")?;
    let f = floats(frequency, "frequency")?;
    let m = money.column(monetary, "monetary")?;
    let (r, f) = (r.as_slice(), f.as_slice());
    let (scores, segments) = compute(py, || {
        let scores = scoring::scores(r, f, &m)?;
        let segments = scores.segments();
        Ok((scores, segments))
    })?;
    let names: Vec<(scoring::Segment, Py<PyAny>)> = scoring::Segment::ALL
        .iter()
        .map(|&s| (s, PyString::intern(py, s.name()).into_any().unbind()))
        .collect();
    let mut segment_names = Vec::with_capacity(segments.len());
    for s in &segments {
        if let Some((_, name)) = names.iter().find(|(k, _)| k == s) {
            segment_names.push(name.clone_ref(py));
        }
    }
    Ok(RfmScores {
        len: scores.len(),
        r: PyArray1::from_vec(py, scores.recency).unbind(),
        f: PyArray1::from_vec(py, scores.frequency).unbind(),
        m: PyArray1::from_vec(py, scores.monetary).unbind(),
        segment: PyArray1::from_vec(py, segment_names).into_any().unbind(),
    })
}

/// Quintile scores (1–5, 5 best) of one column, with the tie rule of `rfm`;
/// `higher_is_better=False` for columns where smaller is better. Returns a
/// NumPy uint8 array.
#[pyfunction]
#[pyo3(signature = (values, *, higher_is_better = true))]
fn rfm_quintiles<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyAny>,
    higher_is_better: bool,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let values = floats(values, "values")?;
    let values = values.as_slice();
    let scores = compute(py, || scoring::quintiles(values, higher_is_better))?;
    Ok(PyArray1::from_vec(py, scores))
}

// ===== cohorts ================================================================

/// Retention by acquisition month (UTC): row c is the cohort whose first
/// purchase was in month `cohorts[c]` (a `datetime.date`, the month's first
/// day; every month from the first to the observation end's), `sizes[c]`
/// its customers, `active[c, k]` those who bought k months after acquisition
/// and `rates[c, k]` = active / size. The matrix is a triangle: cells past
/// the observation end are 0 in `active` and NaN in `rates` (as are the
/// rates of empty cohorts).
#[pyclass(module = "crm.analytics", name = "Retention", frozen)]
pub(crate) struct Retention {
    /// The first day of each cohort's month.
    #[pyo3(get)]
    cohorts: Py<PyList>,
    /// Customers acquired in each month (int64).
    #[pyo3(get)]
    sizes: Py<PyArray1<i64>>,
    /// Customers of cohort c with a purchase k months after acquisition
    /// (int64, cohorts × months).
    #[pyo3(get)]
    active: Py<PyArray2<i64>>,
    /// active / size, NaN where undefined (float64, cohorts × months).
    #[pyo3(get)]
    rates: Py<PyArray2<f64>>,
    len: usize,
}

#[pymethods]
impl Retention {
    fn __len__(&self) -> usize {
        self.len
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let cohorts = self.cohorts.bind(py);
        let bound = |i: usize| -> PyResult<String> { Ok(cohorts.get_item(i)?.str()?.to_string()) };
        Ok(match self.len {
            0 => "Retention(cohorts=0)".to_string(),
            n => format!(
                "Retention(cohorts={n}, from='{}', to='{}')",
                bound(0)?,
                bound(n - 1)?
            ),
        })
    }
}

/// Retention by acquisition month from a purchase log: `table` with a
/// `customer` and a `date` column, as for `summary`. Purchases after the
/// month of `observation_end` (default: the latest date in the table) are
/// ignored. Runs with the GIL released.
#[pyfunction]
#[pyo3(signature = (table, *, customer = "customer", date = "date", observation_end = None))]
fn cohort_retention<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyAny>,
    customer: &str,
    date: &str,
    observation_end: Option<&Bound<'py, PyAny>>,
) -> PyResult<Retention> {
    let log = Log::read(table, customer, date, None)?;
    let end = log.end(observation_end)?;
    // Seconds of valid times: always representable again.
    let transactions = log
        .customers
        .iter()
        .zip(&log.seconds)
        .map(|(&customer, &s)| {
            DateTime::from_timestamp(s, 0)
                .map(|at| Transaction {
                    customer,
                    at,
                    amount_minor: 0,
                })
                .ok_or_else(|| invalid(date, "is out of range"))
        })
        .collect::<PyResult<Vec<_>>>()?;
    drop(log);
    let r = compute(py, || cohorts::retention(&transactions, end))?;
    Retention::new(py, &r)
}

impl Retention {
    /// The core's retention as a `Retention` (also what
    /// `Crm.cohort_retention` returns).
    pub(crate) fn new(py: Python<'_>, r: &cohorts::Retention) -> PyResult<Retention> {
        let rates = r.matrix();
        let rows = r.sizes.len();
        let width = rates.first().map_or(0, Vec::len);
        let mut active = vec![0_i64; rows * width];
        for (c, row) in r.active.iter().enumerate() {
            for (k, &n) in row.iter().enumerate().take(width) {
                active[c * width + k] = i64::try_from(n).unwrap_or(i64::MAX);
            }
        }
        let rates: Vec<f64> = rates
            .into_iter()
            .flat_map(|row| row.into_iter().map(|v| v.unwrap_or(f64::NAN)))
            .collect();
        let sizes: Vec<i64> = r
            .sizes
            .iter()
            .map(|&n| i64::try_from(n).unwrap_or(i64::MAX))
            .collect();
        Ok(Retention {
            cohorts: PyList::new(py, &r.cohorts)?.unbind(),
            sizes: PyArray1::from_vec(py, sizes).unbind(),
            active: PyArray1::from_vec(py, active)
                .reshape([rows, width])?
                .unbind(),
            rates: PyArray1::from_vec(py, rates)
                .reshape([rows, width])?
                .unbind(),
            len: rows,
        })
    }
}
