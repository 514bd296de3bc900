//! Python ↔ core conversions, one explicit function per type.
//!
//! Out: plain dicts (ids as `str`, times as UTC-aware `datetime`, dates as
//! `date`, money as `int` minor units). In: Python values checked by type,
//! each mistake a `ValidationError` naming the field; everything the core
//! validates (formats, ranges, lengths) is left to the core.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use crm_core::filter::{self, Expr};
use crm_core::import::{ImportProgress, ImportReport};
use crm_core::segment::{FilterRef, MaterializeReport, Segment};
use crm_core::{
    Address, AttributeDefinition, AttributeValue, Change, ConsentRecord, ConsentStatus, Customer,
    CustomerCard, CustomerKind, CustomerPatch, CustomerRef, Direction, Interaction,
    InteractionKind, LegalBasis, NewCustomer, NewInteraction, SearchHit, SearchMatch, Upserted,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyDate, PyDateTime, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple,
    PyTzInfo,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::errors::{OrRaise, invalid, to_py_err};

// ===== out ==================================================================

/// A customer as a dict.
pub fn customer<'py>(py: Python<'py>, c: &Customer) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), c.id.to_string())?;
    d.set_item(intern!(py, "kind"), c.kind.as_str())?;
    d.set_item(intern!(py, "external_id"), &c.external_id)?;
    d.set_item(intern!(py, "name"), &c.name)?;
    d.set_item(intern!(py, "first_name"), &c.first_name)?;
    d.set_item(intern!(py, "last_name"), &c.last_name)?;
    d.set_item(
        intern!(py, "organization_id"),
        c.organization_id.map(|id| id.to_string()),
    )?;
    d.set_item(intern!(py, "emails"), &c.emails)?;
    d.set_item(intern!(py, "phones"), &c.phones)?;
    let addresses = PyList::empty(py);
    for a in &c.addresses {
        addresses.append(address(py, a)?)?;
    }
    d.set_item(intern!(py, "addresses"), addresses)?;
    d.set_item(intern!(py, "birth_date"), c.birth_date)?;
    d.set_item(intern!(py, "locale"), &c.locale)?;
    d.set_item(intern!(py, "country"), &c.country)?;
    d.set_item(intern!(py, "tags"), &c.tags)?;
    let attributes = PyDict::new(py);
    for (key, value) in &c.attributes {
        attributes.set_item(key, attribute_value(py, value)?)?;
    }
    d.set_item(intern!(py, "attributes"), attributes)?;
    d.set_item(intern!(py, "lifecycle_stage"), &c.lifecycle_stage)?;
    d.set_item(intern!(py, "owner"), &c.owner)?;
    d.set_item(intern!(py, "source"), &c.source)?;
    d.set_item(intern!(py, "created_at"), c.created_at)?;
    d.set_item(intern!(py, "updated_at"), c.updated_at)?;
    Ok(d)
}

/// A customer as a list row (a "card") with their latest interaction.
pub fn customer_card<'py>(py: Python<'py>, c: &CustomerCard) -> PyResult<Bound<'py, PyDict>> {
    // Fails to compile when the core adds a field, so it can't be forgotten here.
    let CustomerCard {
        id,
        kind,
        name,
        email,
        phone,
        lifecycle_stage,
        owner,
        tags,
        latest_interaction,
    } = c;
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), id.to_string())?;
    d.set_item(intern!(py, "kind"), kind.as_str())?;
    d.set_item(intern!(py, "name"), name)?;
    d.set_item(intern!(py, "email"), email)?;
    d.set_item(intern!(py, "phone"), phone)?;
    d.set_item(intern!(py, "lifecycle_stage"), lifecycle_stage)?;
    d.set_item(intern!(py, "owner"), owner)?;
    d.set_item(intern!(py, "tags"), tags)?;
    d.set_item(
        intern!(py, "latest_interaction"),
        latest_interaction
            .as_ref()
            .map(|i| interaction(py, i))
            .transpose()?,
    )?;
    Ok(d)
}

fn address<'py>(py: Python<'py>, a: &Address) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "label"), &a.label)?;
    d.set_item(intern!(py, "line1"), &a.line1)?;
    d.set_item(intern!(py, "line2"), &a.line2)?;
    d.set_item(intern!(py, "city"), &a.city)?;
    d.set_item(intern!(py, "region"), &a.region)?;
    d.set_item(intern!(py, "postal_code"), &a.postal_code)?;
    d.set_item(intern!(py, "country"), &a.country)?;
    Ok(d)
}

fn attribute_value<'py>(py: Python<'py>, v: &AttributeValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        AttributeValue::Text(s) => PyString::new(py, s).into_any(),
        AttributeValue::Number(n) => PyFloat::new(py, *n).into_any(),
        AttributeValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        AttributeValue::Date(d) => d.into_pyobject(py)?.into_any(),
    })
}

/// An interaction as a dict.
pub fn interaction<'py>(py: Python<'py>, i: &Interaction) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), i.id.to_string())?;
    d.set_item(intern!(py, "customer_id"), i.customer_id.to_string())?;
    d.set_item(intern!(py, "kind"), i.kind.as_str())?;
    d.set_item(intern!(py, "channel"), &i.channel)?;
    d.set_item(intern!(py, "direction"), i.direction.map(Direction::as_str))?;
    d.set_item(intern!(py, "occurred_at"), i.occurred_at)?;
    d.set_item(intern!(py, "subject"), &i.subject)?;
    d.set_item(intern!(py, "body"), &i.body)?;
    d.set_item(intern!(py, "amount_minor"), i.amount_minor)?;
    d.set_item(intern!(py, "currency"), &i.currency)?;
    d.set_item(intern!(py, "product"), &i.product)?;
    d.set_item(intern!(py, "quantity"), i.quantity)?;
    d.set_item(intern!(py, "score"), i.score)?;
    match &i.metadata {
        Some(m) => d.set_item(intern!(py, "metadata"), json_to_py(py, m)?)?,
        None => d.set_item(intern!(py, "metadata"), py.None())?,
    }
    d.set_item(intern!(py, "created_at"), i.created_at)?;
    Ok(d)
}

/// A consent record as a dict.
pub fn consent_record<'py>(py: Python<'py>, r: &ConsentRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), r.id.to_string())?;
    d.set_item(intern!(py, "customer_id"), r.customer_id.to_string())?;
    d.set_item(intern!(py, "purpose"), &r.purpose)?;
    d.set_item(intern!(py, "channel"), &r.channel)?;
    d.set_item(intern!(py, "status"), r.status.as_str())?;
    d.set_item(
        intern!(py, "legal_basis"),
        r.legal_basis.map(LegalBasis::as_str),
    )?;
    d.set_item(intern!(py, "source"), &r.source)?;
    d.set_item(intern!(py, "proof"), &r.proof)?;
    d.set_item(intern!(py, "recorded_at"), r.recorded_at)?;
    Ok(d)
}

/// A change-log entry as a dict.
pub fn change<'py>(py: Python<'py>, c: &Change) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "seq"), c.seq)?;
    d.set_item(intern!(py, "at"), c.at)?;
    d.set_item(intern!(py, "entity"), c.entity.as_str())?;
    d.set_item(intern!(py, "entity_id"), &c.entity_id)?;
    d.set_item(intern!(py, "op"), c.op.as_str())?;
    d.set_item(intern!(py, "fields"), &c.fields)?;
    d.set_item(intern!(py, "actor"), &c.actor)?;
    d.set_item(intern!(py, "source"), &c.source)?;
    d.set_item(intern!(py, "rule"), &c.rule)?;
    Ok(d)
}

/// A search hit as a flat dict: `matched` is `"customer"` or `"interaction"`,
/// with the interaction's id and subject in the second case.
pub fn search_hit<'py>(py: Python<'py>, h: &SearchHit) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "customer"), customer(py, &h.customer)?)?;
    d.set_item(intern!(py, "score"), h.score)?;
    match &h.matched {
        SearchMatch::Customer => {
            d.set_item(intern!(py, "matched"), "customer")?;
            d.set_item(intern!(py, "interaction_id"), py.None())?;
            d.set_item(intern!(py, "subject"), py.None())?;
        }
        SearchMatch::Interaction {
            interaction_id,
            subject,
        } => {
            d.set_item(intern!(py, "matched"), "interaction")?;
            d.set_item(intern!(py, "interaction_id"), interaction_id.to_string())?;
            d.set_item(intern!(py, "subject"), subject)?;
        }
    }
    Ok(d)
}

/// The outcome of an upsert.
pub fn upserted<'py>(py: Python<'py>, u: &Upserted) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "customer"), customer(py, &u.customer)?)?;
    d.set_item(intern!(py, "created"), u.created)?;
    Ok(d)
}

/// An attribute definition as `{"key", "type"}`.
pub fn attribute_definition<'py>(
    py: Python<'py>,
    a: &AttributeDefinition,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "key"), &a.key)?;
    d.set_item(intern!(py, "type"), a.attribute_type.as_str())?;
    Ok(d)
}

/// An import report.
pub fn report<'py>(py: Python<'py>, r: &ImportReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "rows"), r.rows)?;
    d.set_item(intern!(py, "inserted"), r.inserted)?;
    d.set_item(intern!(py, "updated"), r.updated)?;
    d.set_item(intern!(py, "rejected"), r.rejected)?;
    let errors = PyList::empty(py);
    for e in &r.errors {
        let row = PyDict::new(py);
        row.set_item(intern!(py, "row"), e.row)?;
        row.set_item(intern!(py, "field"), &e.field)?;
        row.set_item(intern!(py, "reason"), &e.reason)?;
        errors.append(row)?;
    }
    d.set_item(intern!(py, "errors"), errors)?;
    Ok(d)
}

/// Import progress, as passed to the callback.
pub fn progress<'py>(py: Python<'py>, p: &ImportProgress) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "rows"), p.rows)?;
    d.set_item(intern!(py, "applied"), p.applied)?;
    d.set_item(intern!(py, "rejected"), p.rejected)?;
    Ok(d)
}

/// A segment as a dict; `kind` is `"dynamic"` or `"static"`, `filter` the
/// canonical text of a dynamic segment's expression.
pub fn segment<'py>(py: Python<'py>, s: &Segment) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "id"), s.id.to_string())?;
    d.set_item(intern!(py, "name"), &s.name)?;
    d.set_item(intern!(py, "description"), &s.description)?;
    d.set_item(intern!(py, "kind"), s.kind.as_str())?;
    d.set_item(intern!(py, "filter"), &s.filter)?;
    d.set_item(intern!(py, "created_at"), s.created_at)?;
    d.set_item(intern!(py, "updated_at"), s.updated_at)?;
    d.set_item(intern!(py, "evaluated_at"), s.evaluated_at)?;
    Ok(d)
}

/// The outcome of a materialization as `{"members", "entered", "left"}`.
pub fn materialize_report<'py>(
    py: Python<'py>,
    r: &MaterializeReport,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "members"), r.members)?;
    d.set_item(intern!(py, "entered"), r.entered)?;
    d.set_item(intern!(py, "left"), r.left)?;
    Ok(d)
}

/// A filter's syntax tree as JSON-like Python values (the core's serde form).
pub fn filter_tree<'py>(py: Python<'py>, expr: &Expr) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(expr)
        .map_err(|e| to_py_err(crm_core::Error::Storage(e.to_string())))?;
    json_to_py(py, &value)
}

/// A page as `{"items": [...], "next_cursor": str | None}`.
pub fn page<'py, T>(
    py: Python<'py>,
    page: &crm_core::Page<T>,
    item: impl Fn(Python<'py>, &T) -> PyResult<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "items"), list(py, &page.items, item)?)?;
    d.set_item(intern!(py, "next_cursor"), &page.next_cursor)?;
    Ok(d)
}

/// A list of converted items.
pub fn list<'py, T>(
    py: Python<'py>,
    items: &[T],
    item: impl Fn(Python<'py>, &T) -> PyResult<Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for i in items {
        out.append(item(py, i)?)?;
    }
    Ok(out)
}

/// JSON (metadata) as Python values: objects become dicts, arrays lists,
/// integers ints and other numbers floats.
pub fn json_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let out = PyList::empty(py);
            for item in items {
                out.append(json_to_py(py, item)?)?;
            }
            out.into_any()
        }
        Value::Object(map) => {
            let out = PyDict::new(py);
            for (k, item) in map {
                out.set_item(k, json_to_py(py, item)?)?;
            }
            out.into_any()
        }
    })
}

// ===== in: scalars ==========================================================

/// A `str` (valid Unicode).
pub fn string(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<String> {
    let s = obj
        .cast::<PyString>()
        .map_err(|_| invalid(field, format!("must be a string, not {}", type_name(obj))))?;
    s.to_str()
        .map(str::to_string)
        .map_err(|_| invalid(field, "is not valid Unicode (it contains a lone surrogate)"))
}

/// A `str` or `None`.
pub fn opt_string(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<String>> {
    if obj.is_none() {
        Ok(None)
    } else {
        string(obj, field).map(Some)
    }
}

/// A list (or tuple) of `str`; errors name the element (`emails[1]`).
pub fn string_list(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<String>> {
    sequence(obj, field)?
        .iter()
        .enumerate()
        .map(|(i, item)| string(item, &format!("{field}[{i}]")))
        .collect()
}

/// The items of a list or tuple (a `str` is not a list of strings).
fn sequence<'py>(obj: &Bound<'py, PyAny>, field: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = obj.cast::<PyList>() {
        return Ok(list.iter().collect());
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return Ok(tuple.iter().collect());
    }
    Err(invalid(
        field,
        format!("must be a list, not {}", type_name(obj)),
    ))
}

/// A `bool` (not an int).
pub fn boolean(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<bool> {
    obj.cast::<PyBool>().map(|b| b.is_true()).map_err(|_| {
        invalid(
            field,
            format!("must be True or False, not {}", type_name(obj)),
        )
    })
}

/// An integer (an `int` or anything with `__index__`, but not a `bool` or a
/// `float`) that fits `T`.
pub fn integer<T: TryFrom<i128>>(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<T> {
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(invalid(
            field,
            format!("must be an integer, not {}", type_name(obj)),
        ));
    }
    let wide: i128 = obj
        .extract()
        .map_err(|_| invalid(field, format!("must be an integer, not {}", type_name(obj))))?;
    T::try_from(wide).map_err(|_| invalid(field, "is out of range"))
}

/// An integer or `None`.
pub fn opt_integer<T: TryFrom<i128>>(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<T>> {
    if obj.is_none() {
        Ok(None)
    } else {
        integer(obj, field).map(Some)
    }
}

/// A page size or other count given as an `int`.
pub fn limit(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<u32> {
    integer(obj, field)
}

/// A `date`, or an ISO `YYYY-MM-DD` string. A `datetime` is refused: a
/// date of birth with a time is a mistake, not a date.
pub fn date(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<NaiveDate> {
    if obj.is_instance_of::<PyDateTime>() {
        return Err(invalid(field, "must be a date, not a datetime"));
    }
    if obj.is_instance_of::<PyDate>() {
        return obj.extract().map_err(|_| invalid(field, "must be a date"));
    }
    if obj.is_instance_of::<PyString>() {
        let s = string(obj, field)?;
        return NaiveDate::from_str(s.trim())
            .map_err(|_| invalid(field, "must be a date (YYYY-MM-DD)"));
    }
    Err(invalid(
        field,
        format!(
            "must be a date or a YYYY-MM-DD string, not {}",
            type_name(obj)
        ),
    ))
}

/// A `date`, a string, or `None`.
pub fn opt_date(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<NaiveDate>> {
    if obj.is_none() {
        Ok(None)
    } else {
        date(obj, field).map(Some)
    }
}

/// A point in time: an aware `datetime` (converted to UTC), a naive one
/// (read as UTC, like the core reads naive ISO strings), a `date` (midnight
/// UTC) or an ISO 8601 / RFC 3339 string.
pub fn time(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<DateTime<Utc>> {
    let py = obj.py();
    if let Ok(dt) = obj.cast::<PyDateTime>() {
        let aware = !dt.call_method0(intern!(py, "utcoffset"))?.is_none();
        return if aware {
            let utc = dt.call_method1(intern!(py, "astimezone"), (PyTzInfo::utc(py)?,))?;
            utc.extract::<DateTime<Utc>>()
                .map_err(|_| invalid(field, "is out of range"))
        } else {
            obj.extract::<NaiveDateTime>()
                .map(|t| t.and_utc())
                .map_err(|_| invalid(field, "is out of range"))
        };
    }
    if obj.is_instance_of::<PyDate>() {
        let d: NaiveDate = obj
            .extract()
            .map_err(|_| invalid(field, "must be a date"))?;
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| invalid(field, "is out of range"));
    }
    if obj.is_instance_of::<PyString>() {
        let s = string(obj, field)?;
        return crm_core::import::parse_time(&s)
            .ok_or_else(|| invalid(field, "must be a time (ISO 8601 / RFC 3339, or YYYY-MM-DD)"));
    }
    Err(invalid(
        field,
        format!(
            "must be a datetime, a date or an ISO 8601 string, not {}",
            type_name(obj)
        ),
    ))
}

/// A time or `None`.
pub fn opt_time(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Option<DateTime<Utc>>> {
    if obj.is_none() {
        Ok(None)
    } else {
        time(obj, field).map(Some)
    }
}

/// An id given as a `str` (a UUID). The core parses it; the error names
/// `field`.
pub fn id<T: FromStr<Err = crm_core::Error>>(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<T> {
    let s = string(obj, field)?;
    s.parse().map_err(|e| match e {
        crm_core::Error::Validation { reason, .. } => invalid(field, reason),
        other => to_py_err(other),
    })
}

/// A name of a core enum (`"skip_invalid"`, `"ndjson"`, …), read through the
/// core's own serde names so the binding never keeps a second list.
pub fn enum_value<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<T> {
    let s = string(obj, field)?;
    serde_json::from_value(Value::String(s)).map_err(|e| invalid(field, serde_reason(&e)))
}

/// serde_json's message without its position suffix.
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "this type".to_string())
}

// ===== in: filters ==========================================================

/// A filter given as text in the filter language or as its syntax tree.
pub enum Filter {
    /// Text; the core's errors point into it.
    Text(String),
    /// A syntax tree read from a dict.
    Tree(Expr),
}

impl Filter {
    /// How the core takes it.
    pub fn as_ref(&self) -> FilterRef<'_> {
        match self {
            Filter::Text(text) => FilterRef::Text(text),
            Filter::Tree(expr) => FilterRef::Expr(expr),
        }
    }

    /// As text, for the core calls that store an expression as text
    /// (segments): a tree is printed as its canonical text.
    pub fn into_text(self) -> String {
        match self {
            Filter::Text(text) => text,
            Filter::Tree(expr) => expr.to_string(),
        }
    }
}

/// How deeply lists and dicts may nest in a syntax tree given as a dict: far
/// beyond any tree the core accepts (a few levels per nesting level of the
/// language), close enough that converting one never exhausts the stack.
const MAX_TREE_NESTING: usize = filter::MAX_DEPTH * 16;

/// A filter: a `str` in the filter language, or a dict holding its syntax
/// tree (what `parse_filter` returns).
pub fn filter(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Filter> {
    if obj.is_instance_of::<PyString>() {
        return string(obj, field).map(Filter::Text);
    }
    if obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyMapping>() {
        return tree(obj, field).map(Filter::Tree);
    }
    Err(invalid(
        field,
        format!(
            "must be a str (the filter language) or a dict (its syntax tree), not {}",
            type_name(obj)
        ),
    ))
}

/// A syntax tree given as a dict. A value Python can't express as JSON is a
/// `ValidationError` naming its path; JSON that is not a syntax tree is a
/// `ParseError` (with no position: there is no text).
pub fn tree(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Expr> {
    if !(obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyMapping>()) {
        return Err(invalid(
            field,
            format!("must be a dict (a syntax tree), not {}", type_name(obj)),
        ));
    }
    let not_a_tree = |message: String| {
        to_py_err(crm_core::Error::Parse {
            line: 0,
            column: 0,
            message,
            suggestion: None,
        })
    };
    let value = json_within(obj, field, MAX_TREE_NESTING).map_err(|(path, reason)| {
        if reason == TOO_DEEP {
            not_a_tree("the syntax tree is nested too deeply".into())
        } else {
            invalid(path, reason)
        }
    })?;
    serde_json::from_value(value)
        .map_err(|e| not_a_tree(format!("not a filter syntax tree: {}", serde_reason(&e))))
}

/// A list (or tuple) of ids; errors name the element (`customer_ids[1]`).
pub fn id_list<T: FromStr<Err = crm_core::Error>>(
    obj: &Bound<'_, PyAny>,
    field: &str,
) -> PyResult<Vec<T>> {
    sequence(obj, field)?
        .iter()
        .enumerate()
        .map(|(i, item)| id(item, &format!("{field}[{i}]")))
        .collect()
}

// ===== in: records ==========================================================

/// The `(key, value)` pairs of a dict or other mapping, keys as `str`.
pub fn items<'py>(
    obj: &Bound<'py, PyAny>,
    field: &str,
) -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
    let pairs: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = if let Ok(dict) = obj.cast::<PyDict>()
    {
        dict.iter().collect()
    } else if let Ok(mapping) = obj.cast::<PyMapping>() {
        mapping
            .items()?
            .iter()
            .map(|pair| pair.extract())
            .collect::<PyResult<_>>()?
    } else {
        return Err(invalid(
            field,
            format!("must be a dict, not {}", type_name(obj)),
        ));
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            let key = k
                .cast::<PyString>()
                .map_err(|_| invalid(field, "keys must be strings"))?;
            let key = key
                .to_str()
                .map_err(|_| invalid(field, "keys must be valid Unicode"))?;
            Ok((key.to_string(), v))
        })
        .collect()
}

pub fn unknown_field(key: &str, what: &str) -> PyErr {
    invalid(key, format!("unknown {what} field"))
}

/// The fields of a new customer, from keyword arguments or a dict. `None`
/// means "not given".
pub fn new_customer(fields: &Bound<'_, PyAny>) -> PyResult<NewCustomer> {
    let mut new = NewCustomer::default();
    for (key, value) in items(fields, "customer")? {
        let v = &value;
        let k = key.as_str();
        match k {
            "kind" => {
                new.kind = match opt_string(v, k)? {
                    Some(s) => CustomerKind::parse(&s).or_raise()?,
                    None => CustomerKind::default(),
                }
            }
            "external_id" => new.external_id = opt_string(v, k)?,
            "name" => new.name = opt_string(v, k)?,
            "first_name" => new.first_name = opt_string(v, k)?,
            "last_name" => new.last_name = opt_string(v, k)?,
            "organization_id" => new.organization_id = opt_id(v, k)?,
            "emails" => new.emails = opt_list(v, k)?,
            "phones" => new.phones = opt_list(v, k)?,
            "addresses" => {
                new.addresses = if v.is_none() {
                    Vec::new()
                } else {
                    addresses(v, k)?
                }
            }
            "birth_date" => new.birth_date = opt_date(v, k)?,
            "locale" => new.locale = opt_string(v, k)?,
            "country" => new.country = opt_string(v, k)?,
            "tags" => new.tags = opt_list(v, k)?,
            "attributes" => {
                if !v.is_none() {
                    for (key, value) in attributes(v)? {
                        if let Some(value) = value {
                            new.attributes.insert(key, value);
                        }
                    }
                }
            }
            "lifecycle_stage" => new.lifecycle_stage = opt_string(v, k)?,
            "owner" => new.owner = opt_string(v, k)?,
            "source" => new.source = opt_string(v, k)?,
            _ => return Err(unknown_field(k, "customer")),
        }
    }
    // Fails to compile when the core adds a field, so it can't be forgotten here.
    let NewCustomer {
        kind: _,
        external_id: _,
        name: _,
        first_name: _,
        last_name: _,
        organization_id: _,
        emails: _,
        phones: _,
        addresses: _,
        birth_date: _,
        locale: _,
        country: _,
        tags: _,
        attributes: _,
        lifecycle_stage: _,
        owner: _,
        source: _,
    } = &new;
    Ok(new)
}

/// A partial update. A field given as `None` is cleared (the core decides
/// which fields may be); `set_attributes` values of `None` remove the key.
pub fn customer_patch(fields: &Bound<'_, PyAny>) -> PyResult<CustomerPatch> {
    let mut patch = CustomerPatch::default();
    for (key, value) in items(fields, "changes")? {
        let v = &value;
        let k = key.as_str();
        if v.is_none() {
            match k {
                "set_attributes" | "remove_attributes" => {}
                _ => patch.clear(k).or_raise()?,
            }
            continue;
        }
        match k {
            "external_id" => patch.external_id = Some(Some(string(v, k)?)),
            "name" => patch.name = Some(string(v, k)?),
            "first_name" => patch.first_name = Some(Some(string(v, k)?)),
            "last_name" => patch.last_name = Some(Some(string(v, k)?)),
            "organization_id" => patch.organization_id = Some(Some(id(v, k)?)),
            "emails" => patch.emails = Some(string_list(v, k)?),
            "phones" => patch.phones = Some(string_list(v, k)?),
            "addresses" => patch.addresses = Some(addresses(v, k)?),
            "birth_date" => patch.birth_date = Some(Some(date(v, k)?)),
            "locale" => patch.locale = Some(Some(string(v, k)?)),
            "country" => patch.country = Some(Some(string(v, k)?)),
            "tags" => patch.tags = Some(string_list(v, k)?),
            "set_attributes" => {
                for (key, value) in attributes(v)? {
                    match value {
                        Some(value) => {
                            patch.set_attributes.insert(key, value);
                        }
                        None => patch.remove_attributes.push(key),
                    }
                }
            }
            "remove_attributes" => patch.remove_attributes.extend(string_list(v, k)?),
            "lifecycle_stage" => patch.lifecycle_stage = Some(string(v, k)?),
            "owner" => patch.owner = Some(Some(string(v, k)?)),
            "source" => patch.source = Some(Some(string(v, k)?)),
            _ => return Err(unknown_field(k, "customer")),
        }
    }
    let CustomerPatch {
        external_id: _,
        name: _,
        first_name: _,
        last_name: _,
        organization_id: _,
        emails: _,
        phones: _,
        addresses: _,
        birth_date: _,
        locale: _,
        country: _,
        tags: _,
        set_attributes: _,
        remove_attributes: _,
        lifecycle_stage: _,
        owner: _,
        source: _,
    } = &patch;
    Ok(patch)
}

fn opt_list(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<String>> {
    if obj.is_none() {
        Ok(Vec::new())
    } else {
        string_list(obj, field)
    }
}

pub fn opt_id<T: FromStr<Err = crm_core::Error>>(
    obj: &Bound<'_, PyAny>,
    field: &str,
) -> PyResult<Option<T>> {
    if obj.is_none() {
        Ok(None)
    } else {
        id(obj, field).map(Some)
    }
}

fn addresses(obj: &Bound<'_, PyAny>, field: &str) -> PyResult<Vec<Address>> {
    sequence(obj, field)?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{field}[{i}]");
            let mut a = Address::default();
            for (key, value) in items(item, &at)? {
                let f = format!("{at}.{key}");
                let v = opt_string(&value, &f)?;
                match key.as_str() {
                    "label" => a.label = v,
                    "line1" => a.line1 = v,
                    "line2" => a.line2 = v,
                    "city" => a.city = v,
                    "region" => a.region = v,
                    "postal_code" => a.postal_code = v,
                    "country" => a.country = v,
                    _ => return Err(invalid(f, "unknown address field")),
                }
            }
            let Address {
                label: _,
                line1: _,
                line2: _,
                city: _,
                region: _,
                postal_code: _,
                country: _,
            } = &a;
            Ok(a)
        })
        .collect()
}

/// Custom attributes: `str`, `int`/`float`, `bool` or `date` values; `None`
/// is returned as such (the caller decides what it means).
fn attributes(obj: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, Option<AttributeValue>>> {
    let mut out = BTreeMap::new();
    for (key, v) in items(obj, "attributes")? {
        let field = format!("attributes.{key}");
        let value = if v.is_none() {
            None
        } else if let Ok(b) = v.cast::<PyBool>() {
            Some(AttributeValue::Bool(b.is_true()))
        } else if let Ok(f) = v.cast::<PyFloat>() {
            // NaN and infinities go through: the core rejects them by name.
            Some(AttributeValue::Number(f.value()))
        } else if v.is_instance_of::<PyInt>() {
            let i: i64 = integer(&v, &field)?;
            // Numbers are stored as f64: refuse integers it can't hold exactly.
            if i.unsigned_abs() > 1 << 53 {
                return Err(invalid(
                    field,
                    "is too large to store exactly (beyond ±2**53)",
                ));
            }
            Some(AttributeValue::Number(i as f64))
        } else if v.is_instance_of::<PyString>() {
            Some(AttributeValue::Text(string(&v, &field)?))
        } else if v.is_instance_of::<PyDate>() {
            Some(AttributeValue::Date(date(&v, &field)?))
        } else {
            return Err(invalid(
                field,
                format!("must be a str, number, bool or date, not {}", type_name(&v)),
            ));
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// How an interaction names its customer: an id `str`, or a dict with exactly
/// one of `id`, `external_id`, `email`.
pub fn customer_ref(obj: &Bound<'_, PyAny>) -> PyResult<CustomerRef> {
    const FIELD: &str = "customer";
    if obj.is_instance_of::<PyString>() {
        return id(obj, FIELD).map(CustomerRef::Id);
    }
    let pairs = items(obj, FIELD).map_err(|_| {
        invalid(
            FIELD,
            "must be a customer id, or a dict with one of 'id', 'external_id', 'email'",
        )
    })?;
    let [(key, value)] = pairs.as_slice() else {
        return Err(invalid(
            FIELD,
            "must have exactly one of 'id', 'external_id', 'email'",
        ));
    };
    match key.as_str() {
        "id" => id(value, FIELD).map(CustomerRef::Id),
        "external_id" => string(value, FIELD).map(CustomerRef::ExternalId),
        "email" => string(value, FIELD).map(CustomerRef::Email),
        _ => Err(invalid(
            FIELD,
            "must have exactly one of 'id', 'external_id', 'email'",
        )),
    }
}

/// An interaction to log.
pub fn new_interaction(
    customer: &Bound<'_, PyAny>,
    kind: &Bound<'_, PyAny>,
    fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<NewInteraction> {
    let customer = customer_ref(customer)?;
    let kind = InteractionKind::parse(&string(kind, "kind")?).or_raise()?;
    let mut new = NewInteraction::new(customer, kind);
    if let Some(fields) = fields {
        for (key, value) in items(fields.as_any(), "interaction")? {
            let v = &value;
            let k = key.as_str();
            match k {
                "channel" => new.channel = opt_string(v, k)?,
                "direction" => {
                    new.direction = opt_string(v, k)?
                        .map(|d| Direction::parse(&d))
                        .transpose()
                        .or_raise()?
                }
                "occurred_at" => new.occurred_at = opt_time(v, k)?,
                "subject" => new.subject = opt_string(v, k)?,
                "body" => new.body = opt_string(v, k)?,
                "amount_minor" => new.amount_minor = opt_integer(v, k)?,
                "currency" => new.currency = opt_string(v, k)?,
                "product" => new.product = opt_string(v, k)?,
                "quantity" => new.quantity = opt_integer(v, k)?,
                "score" => new.score = opt_integer(v, k)?,
                "metadata" => {
                    new.metadata = if v.is_none() {
                        None
                    } else {
                        Some(json(v, k).map_err(|(field, reason)| invalid(field, reason))?)
                    }
                }
                _ => return Err(unknown_field(k, "interaction")),
            }
        }
    }
    let NewInteraction {
        customer: _,
        kind: _,
        channel: _,
        direction: _,
        occurred_at: _,
        subject: _,
        body: _,
        amount_minor: _,
        currency: _,
        product: _,
        quantity: _,
        score: _,
        metadata: _,
    } = &new;
    Ok(new)
}

/// A consent status name.
pub fn consent_status(obj: &Bound<'_, PyAny>) -> PyResult<ConsentStatus> {
    ConsentStatus::parse(&string(obj, "status")?).or_raise()
}

/// A legal basis name or `None`.
pub fn legal_basis(obj: &Bound<'_, PyAny>) -> PyResult<Option<LegalBasis>> {
    opt_string(obj, "legal_basis")?
        .map(|s| LegalBasis::parse(&s))
        .transpose()
        .or_raise()
}

/// One record of a bulk import as the core's field → JSON map.
pub fn record(obj: &Bound<'_, PyAny>) -> Result<Map<String, Value>, (String, String)> {
    let pairs = items(obj, "").map_err(|_| {
        (
            String::new(),
            format!("must be a dict, not {}", type_name(obj)),
        )
    })?;
    let mut out = Map::new();
    for (key, value) in pairs {
        let v = json(&value, &key)?;
        out.insert(key, v);
    }
    Ok(out)
}

/// A JSON-like Python value (`None`, `bool`, `int`, finite `float`, `str`,
/// `date`/`datetime` as ISO text, `Decimal` as text, lists and dicts) as
/// JSON. Errors are `(path, reason)`, e.g. `("metadata.tags[2]", …)`.
/// Lists and dicts nested deeper than JSON parsers accept (128 levels, as
/// serde_json's own limit) are refused rather than overflowing the stack.
pub fn json(obj: &Bound<'_, PyAny>, path: &str) -> Result<Value, (String, String)> {
    json_within(obj, path, MAX_JSON_NESTING)
}

/// The deepest JSON-like value accepted from Python.
const MAX_JSON_NESTING: usize = 128;

/// Why [`json_within`] refused a value.
const TOO_DEEP: &str = "is nested too deeply";

/// [`json`], refusing lists and dicts nested more than `nesting` deep.
fn json_within(
    obj: &Bound<'_, PyAny>,
    path: &str,
    nesting: usize,
) -> Result<Value, (String, String)> {
    let bad = |reason: String| Err((path.to_string(), reason));
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return match serde_json::Number::from_f64(f.value()) {
            Some(n) => Ok(Value::Number(n)),
            None => bad("must be a finite number (not NaN or infinity)".into()),
        };
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return bad("is out of range".into());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Value::String(s.to_string())),
            Err(_) => bad("is not valid Unicode (it contains a lone surrogate)".into()),
        };
    }
    if obj.is_instance_of::<PyDate>() {
        // Covers datetime too; the core parses ISO text (naive times as UTC).
        return match obj
            .call_method0(intern!(py, "isoformat"))
            .and_then(|s| s.extract::<String>())
        {
            Ok(s) => Ok(Value::String(s)),
            Err(_) => bad("is not a valid date or datetime".into()),
        };
    }
    // The nesting left inside a list or dict.
    let inner = || match nesting.checked_sub(1) {
        Some(n) => Ok(n),
        None => Err((path.to_string(), TOO_DEEP.to_string())),
    };
    if let Ok(list) = obj.cast::<PyList>() {
        let inner = inner()?;
        return list
            .iter()
            .enumerate()
            .map(|(i, item)| json_within(&item, &format!("{path}[{i}]"), inner))
            .collect();
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        let inner = inner()?;
        return tuple
            .iter()
            .enumerate()
            .map(|(i, item)| json_within(&item, &format!("{path}[{i}]"), inner))
            .collect();
    }
    if obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyMapping>() {
        let inner = inner()?;
        let pairs =
            items(obj, path).map_err(|_| (path.to_string(), "keys must be strings".to_string()))?;
        let mut map = Map::new();
        for (key, value) in pairs {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            map.insert(key, json_within(&value, &child, inner)?);
        }
        return Ok(Value::Object(map));
    }
    if is_decimal(obj) {
        // Money amounts (`amount`) are parsed exactly by the core from text.
        return match obj.str().and_then(|s| s.extract::<String>()) {
            Ok(s)
                if s.chars().all(|c| {
                    c.is_ascii_digit() || c == '.' || c == '-' || c == 'E' || c == '+'
                }) =>
            {
                Ok(Value::String(s))
            }
            _ => bad("must be a finite number".into()),
        };
    }
    if let Ok(i) = obj.extract::<i64>() {
        // Integer-like objects (numpy integers) via __index__.
        if obj.hasattr(intern!(py, "__index__")).unwrap_or(false) {
            return Ok(Value::from(i));
        }
    }
    bad(format!(
        "must be a str, number, bool, None, date, datetime, list or dict, not {}",
        type_name(obj)
    ))
}

fn is_decimal(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    py.import(intern!(py, "decimal"))
        .and_then(|m| m.getattr(intern!(py, "Decimal")))
        .and_then(|decimal| obj.is_instance(&decimal))
        .unwrap_or(false)
}
