//! Customer rows: insert, read, update, delete, list, and the checks that need
//! the database (unique emails and external ids, organizations, attribute
//! types).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Bulk, changes, derived, from_json, from_micros, lifecycle, search, to_micros};
use crate::error::{Error, Result};
use crate::model::change::{ChangeContext, ChangeOp, EntityKind};
use crate::model::customer::{AttributeType, AttributeValue, Customer, CustomerKind};
use crate::model::ids::CustomerId;

/// The columns every customer read selects, in the order `from_row` expects.
pub(crate) const COLUMNS: &str = "c.rowid AS rowid, c.id, c.kind, c.external_id, c.name, c.first_name, \
    c.last_name, (SELECT o.id FROM customers o WHERE o.rowid = c.organization_rowid) AS organization_id, \
    c.emails, c.phones, c.addresses, c.birth_date, c.locale, c.country, c.tags, c.attributes, \
    c.lifecycle_stage, c.owner, c.source, c.created_at, c.updated_at";

pub(crate) fn from_row(row: &Row<'_>) -> Result<Customer> {
    let id: Vec<u8> = row.get("id")?;
    let org: Option<Vec<u8>> = row.get("organization_id")?;
    let kind: String = row.get("kind")?;
    let birth_date: Option<String> = row.get("birth_date")?;
    Ok(Customer {
        id: CustomerId::from_slice(&id)?,
        kind: CustomerKind::parse(&kind)
            .map_err(|_| Error::Storage("unknown customer kind".into()))?,
        external_id: row.get("external_id")?,
        name: row.get("name")?,
        first_name: row.get("first_name")?,
        last_name: row.get("last_name")?,
        organization_id: org.map(|o| CustomerId::from_slice(&o)).transpose()?,
        emails: from_json(&row.get::<_, String>("emails")?, "emails")?,
        phones: from_json(&row.get::<_, String>("phones")?, "phones")?,
        addresses: from_json(&row.get::<_, String>("addresses")?, "addresses")?,
        birth_date: birth_date
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d"))
            .transpose()
            .map_err(|_| Error::Storage("malformed birth_date".into()))?,
        locale: row.get("locale")?,
        country: row.get("country")?,
        tags: from_json(&row.get::<_, String>("tags")?, "tags")?,
        attributes: read_attributes(&row.get::<_, String>("attributes")?)?,
        lifecycle_stage: row.get("lifecycle_stage")?,
        owner: row.get("owner")?,
        source: row.get("source")?,
        created_at: from_micros(row.get("created_at")?)?,
        updated_at: from_micros(row.get("updated_at")?)?,
    })
}

/// Attributes are stored as a plain JSON object (`{"plan":"pro","seats":5}`),
/// which SQL can query with `json_extract`; the types come back from the
/// stored shape: a string that is a date under a date key is a date.
fn read_attributes(text: &str) -> Result<BTreeMap<String, AttributeValue>> {
    let raw: BTreeMap<String, serde_json::Value> = from_json(text, "attributes")?;
    raw.into_iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::Bool(b) => AttributeValue::Bool(b),
                serde_json::Value::Number(n) => {
                    AttributeValue::Number(n.as_f64().unwrap_or(f64::NAN))
                }
                serde_json::Value::String(s) => AttributeValue::Text(s),
                serde_json::Value::Object(o) => match o.get("date").and_then(|d| d.as_str()) {
                    Some(d) => AttributeValue::Date(
                        NaiveDate::parse_from_str(d, "%Y-%m-%d")
                            .map_err(|_| Error::Storage("malformed date attribute".into()))?,
                    ),
                    None => return Err(Error::Storage("malformed attribute".into())),
                },
                _ => return Err(Error::Storage("malformed attribute".into())),
            };
            Ok((k, value))
        })
        .collect()
}

/// Dates are stored as `{"date": "YYYY-MM-DD"}` so that they read back as
/// dates without a lookup; other values are plain JSON scalars.
fn write_attributes(attrs: &BTreeMap<String, AttributeValue>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .map(|(k, v)| {
            let json = match v {
                AttributeValue::Date(_) => serde_json::json!({ "date": v.to_json() }),
                other => other.to_json(),
            };
            (k.clone(), json)
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Storage(e.to_string()))
}

/// Gives every attribute the type its key is defined with, defining new keys
/// by their first value.
pub(crate) fn reconcile_attributes(
    conn: &Connection,
    attrs: &mut BTreeMap<String, AttributeValue>,
    now: DateTime<Utc>,
    mut bulk: Option<&mut Bulk>,
) -> Result<()> {
    for (key, value) in attrs.iter_mut() {
        let known = match bulk.as_deref().and_then(|b| b.attribute_types.get(key)) {
            Some(ty) => Some(*ty),
            None => attribute_type(conn, key)?,
        };
        let ty = match known {
            Some(ty) => {
                let v = std::mem::replace(value, AttributeValue::Bool(false));
                *value = v
                    .coerce(ty)
                    .map_err(|r| Error::validation(format!("attributes.{key}"), r))?;
                ty
            }
            None => {
                define_attribute(conn, key, value.attribute_type(), now)?;
                value.attribute_type()
            }
        };
        if let Some(b) = bulk.as_deref_mut() {
            b.attribute_types.insert(key.clone(), ty);
        }
    }
    Ok(())
}

pub(crate) fn attribute_type(conn: &Connection, key: &str) -> Result<Option<AttributeType>> {
    let ty: Option<String> = conn
        .prepare_cached("SELECT type FROM attribute_definitions WHERE key = ?")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    ty.map(|t| AttributeType::parse(&t)).transpose()
}

pub(crate) fn define_attribute(
    conn: &Connection,
    key: &str,
    ty: AttributeType,
    now: DateTime<Utc>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO attribute_definitions (key, type, created_at) VALUES (?, ?, ?)",
    )?
    .execute(params![key, ty.as_str(), to_micros(now)])?;
    Ok(())
}

pub(crate) fn attribute_definitions(conn: &Connection) -> Result<Vec<(String, AttributeType)>> {
    let mut stmt =
        conn.prepare_cached("SELECT key, type FROM attribute_definitions ORDER BY key")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    rows.map(|r| {
        let (k, t) = r?;
        Ok((k, AttributeType::parse(&t)?))
    })
    .collect()
}

pub(crate) fn rowid_of(conn: &Connection, id: CustomerId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT rowid FROM customers WHERE id = ?")?
        .query_row([&id.as_bytes()[..]], |r| r.get(0))
        .optional()?)
}

pub(crate) fn rowid_by_external_id(
    conn: &Connection,
    external_id: &str,
) -> Result<Option<(i64, CustomerId)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT rowid, id FROM customers WHERE external_id = ?")?
        .query_row([external_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(rowid, id)| Ok((rowid, CustomerId::from_slice(&id)?)))
        .transpose()
}

pub(crate) fn rowid_by_email(conn: &Connection, email: &str) -> Result<Option<(i64, CustomerId)>> {
    // Two plain lookups rather than a join: the joined statement was
    // re-prepared by SQLite on every execution (a 30x slowdown in imports).
    let rowid: Option<i64> = conn
        .prepare_cached("SELECT customer_rowid FROM customer_emails WHERE email = ?")?
        .query_row([email], |r| r.get(0))
        .optional()?;
    let Some(rowid) = rowid else { return Ok(None) };
    let id: Vec<u8> = conn
        .prepare_cached("SELECT id FROM customers WHERE rowid = ?")?
        .query_row([rowid], |r| r.get(0))?;
    Ok(Some((rowid, CustomerId::from_slice(&id)?)))
}

pub(crate) fn get(conn: &Connection, id: CustomerId) -> Result<Option<Customer>> {
    let sql = format!("SELECT {COLUMNS} FROM customers c WHERE c.id = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([&id.as_bytes()[..]])?;
    rows.next()?.map(from_row).transpose()
}

pub(crate) fn get_by_rowid(conn: &Connection, rowid: i64) -> Result<Option<Customer>> {
    let sql = format!("SELECT {COLUMNS} FROM customers c WHERE c.rowid = ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([rowid])?;
    rows.next()?.map(from_row).transpose()
}

/// The database checks of a customer about to be written as row `own_rowid`
/// (`None` for a new one): unique external id and emails, an existing
/// organization. Returns the organization's rowid.
fn check(
    conn: &Connection,
    c: &Customer,
    own_rowid: Option<i64>,
    check_emails: bool,
) -> Result<Option<i64>> {
    if let Some(ext) = &c.external_id {
        if let Some((rowid, _)) = rowid_by_external_id(conn, ext)? {
            if Some(rowid) != own_rowid {
                return Err(Error::conflict(
                    "external_id",
                    "another customer has this external id",
                ));
            }
        }
    }
    if check_emails {
        let mut owner =
            conn.prepare_cached("SELECT customer_rowid FROM customer_emails WHERE email = ?")?;
        for (i, email) in c.emails.iter().enumerate() {
            let found: Option<i64> = owner.query_row([email], |r| r.get(0)).optional()?;
            if let Some(rowid) = found {
                if Some(rowid) != own_rowid {
                    return Err(Error::conflict(
                        format!("emails[{i}]"),
                        "another customer has this email",
                    ));
                }
            }
        }
    }
    match c.organization_id {
        None => Ok(None),
        Some(org) => {
            let row: Option<(i64, String)> = conn
                .prepare_cached("SELECT rowid, kind FROM customers WHERE id = ?")?
                .query_row([&org.as_bytes()[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                None => Err(Error::validation("organization_id", "no such organization")),
                Some((_, kind)) if kind != "organization" => Err(Error::validation(
                    "organization_id",
                    "the customer is not an organization",
                )),
                Some((rowid, _)) => Ok(Some(rowid)),
            }
        }
    }
}

/// Inserts a normalized customer; returns its rowid. An empty stage becomes
/// the configured default; a stage that is not configured is refused. In a
/// bulk insert, the change-log, search and stage-transition entries are left
/// to [`super::finish_bulk`].
pub(crate) fn insert(
    conn: &Connection,
    ctx: &ChangeContext,
    c: &mut Customer,
    bulk: Option<&mut Bulk>,
) -> Result<i64> {
    let deferred = bulk.is_some();
    lifecycle::checked_stage(conn, None, &mut c.lifecycle_stage)?;
    reconcile_attributes(conn, &mut c.attributes, c.created_at, bulk)?;
    let org_rowid = check(conn, c, None, true)?;
    conn.prepare_cached(
        "INSERT INTO customers (id, kind, external_id, name, first_name, last_name, organization_rowid, \
         emails, phones, addresses, birth_date, locale, country, tags, attributes, lifecycle_stage, owner, \
         source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        &c.id.as_bytes()[..],
        c.kind.as_str(),
        c.external_id,
        c.name,
        c.first_name,
        c.last_name,
        org_rowid,
        json(&c.emails)?,
        json(&c.phones)?,
        json(&c.addresses)?,
        c.birth_date.map(|d| d.format("%Y-%m-%d").to_string()),
        c.locale,
        c.country,
        json(&c.tags)?,
        write_attributes(&c.attributes),
        c.lifecycle_stage,
        c.owner,
        c.source,
        to_micros(c.created_at),
        to_micros(c.updated_at),
    ])?;
    let rowid = conn.last_insert_rowid();
    insert_emails(conn, rowid, &c.emails)?;
    derived::set_tags(conn, rowid, &c.tags, true)?;
    if !deferred {
        changes::append(
            conn,
            ctx,
            c.created_at,
            EntityKind::Customer,
            c.id.as_bytes(),
            ChangeOp::Created,
            &[],
        )?;
        search::index_customer(conn, rowid)?;
        lifecycle::record(
            conn,
            ctx,
            rowid,
            None,
            &c.lifecycle_stage,
            c.created_at,
            None,
        )?;
    }
    Ok(rowid)
}

fn insert_emails(conn: &Connection, rowid: i64, emails: &[String]) -> Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT INTO customer_emails (email, customer_rowid) VALUES (?, ?)")?;
    for email in emails {
        stmt.execute(params![email, rowid])?;
    }
    Ok(())
}

/// Writes the fields named in `changed` of an updated customer.
pub(crate) fn update(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    c: &mut Customer,
    changed: &[&str],
) -> Result<()> {
    update_noted(conn, ctx, rowid, c, changed, None)
}

/// [`update`], with a note kept on the stage transition if the stage
/// changes. A new stage is checked against the configuration (an empty one
/// is the configured default) and its transition recorded.
pub(crate) fn update_noted(
    conn: &Connection,
    ctx: &ChangeContext,
    rowid: i64,
    c: &mut Customer,
    changed: &[&str],
    note: Option<&str>,
) -> Result<()> {
    let previous_stage = if changed.contains(&"lifecycle_stage") {
        let from = lifecycle::current_stage(conn, rowid)?;
        lifecycle::checked_stage(conn, Some(&from), &mut c.lifecycle_stage)?;
        // An empty stage (the default) may turn out to be the stored one.
        (from != c.lifecycle_stage).then_some(from)
    } else {
        None
    };
    if changed.contains(&"attributes") {
        reconcile_attributes(conn, &mut c.attributes, c.updated_at, None)?;
    }
    let emails_changed = changed.contains(&"emails");
    let org_rowid = check(conn, c, Some(rowid), emails_changed)?;
    if org_rowid == Some(rowid) {
        return Err(Error::validation(
            "organization_id",
            "a customer can't belong to itself",
        ));
    }
    conn.prepare_cached(
        "UPDATE customers SET external_id = ?, name = ?, first_name = ?, last_name = ?, organization_rowid = ?, \
         emails = ?, phones = ?, addresses = ?, birth_date = ?, locale = ?, country = ?, tags = ?, attributes = ?, \
         lifecycle_stage = ?, owner = ?, source = ?, updated_at = ? WHERE rowid = ?",
    )?
    .execute(params![
        c.external_id,
        c.name,
        c.first_name,
        c.last_name,
        org_rowid,
        json(&c.emails)?,
        json(&c.phones)?,
        json(&c.addresses)?,
        c.birth_date.map(|d| d.format("%Y-%m-%d").to_string()),
        c.locale,
        c.country,
        json(&c.tags)?,
        write_attributes(&c.attributes),
        c.lifecycle_stage,
        c.owner,
        c.source,
        to_micros(c.updated_at),
        rowid,
    ])?;
    if emails_changed {
        conn.prepare_cached("DELETE FROM customer_emails WHERE customer_rowid = ?")?
            .execute([rowid])?;
        insert_emails(conn, rowid, &c.emails)?;
    }
    if changed.contains(&"tags") {
        derived::set_tags(conn, rowid, &c.tags, false)?;
    }
    changes::append(
        conn,
        ctx,
        c.updated_at,
        EntityKind::Customer,
        c.id.as_bytes(),
        ChangeOp::Updated,
        changed,
    )?;
    if let Some(from) = previous_stage {
        lifecycle::record(
            conn,
            ctx,
            rowid,
            Some(&from),
            &c.lifecycle_stage,
            c.updated_at,
            note,
        )?;
    }
    if changed
        .iter()
        .any(|f| matches!(*f, "name" | "emails" | "phones" | "organization_id"))
    {
        search::index_customer(conn, rowid)?;
    }
    if c.kind == CustomerKind::Organization && changed.contains(&"name") {
        search::reindex_members(conn, rowid)?;
    }
    Ok(())
}

/// Deletes a customer with its interactions and consent records; people of a
/// deleted organization lose their organization (logged as their update).
pub(crate) fn delete(
    conn: &Connection,
    ctx: &ChangeContext,
    id: CustomerId,
    now: DateTime<Utc>,
) -> Result<()> {
    let rowid = rowid_of(conn, id)?.ok_or(Error::NotFound { entity: "customer" })?;
    // Unindex first: it finds the organization's people through the link
    // that is cut below.
    search::unindex_customer(conn, rowid)?;
    let members: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT id FROM customers WHERE organization_rowid = ?")?
        .query_map([rowid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached("UPDATE customers SET organization_rowid = NULL, updated_at = ? WHERE organization_rowid = ?")?
        .execute(params![to_micros(now), rowid])?;
    for member in members {
        let member = CustomerId::from_slice(&member)?;
        changes::append(
            conn,
            ctx,
            now,
            EntityKind::Customer,
            member.as_bytes(),
            ChangeOp::Updated,
            &["organization_id"],
        )?;
    }
    // The customer's tasks go with them and their deals lose the link (by
    // foreign key): the change log says so.
    let ids_of = |sql: &str| -> Result<Vec<Vec<u8>>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_map([rowid], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    };
    for task in ids_of("SELECT id FROM tasks WHERE customer_rowid = ?")? {
        let task: [u8; 16] = task
            .try_into()
            .map_err(|_| Error::Storage("malformed task id in the database".into()))?;
        changes::append(
            conn,
            ctx,
            now,
            EntityKind::Task,
            &task,
            ChangeOp::Deleted,
            &[],
        )?;
    }
    for (column, field) in [
        ("customer_rowid", "customer_id"),
        ("organization_rowid", "organization_id"),
    ] {
        let deals = ids_of(&format!("SELECT id FROM deals WHERE {column} = ?"))?;
        for deal in deals {
            let deal: [u8; 16] = deal
                .try_into()
                .map_err(|_| Error::Storage("malformed deal id in the database".into()))?;
            changes::append(
                conn,
                ctx,
                now,
                EntityKind::Deal,
                &deal,
                ChangeOp::Updated,
                &[field],
            )?;
        }
        conn.prepare_cached(&format!(
            "UPDATE deals SET updated_at = ?1 WHERE {column} = ?2"
        ))?
        .execute(params![to_micros(now), rowid])?;
    }
    conn.prepare_cached("DELETE FROM customers WHERE rowid = ?")?
        .execute([rowid])?;
    changes::append(
        conn,
        ctx,
        now,
        EntityKind::Customer,
        id.as_bytes(),
        ChangeOp::Deleted,
        &[],
    )?;
    Ok(())
}

/// How a page of customers is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerSort {
    /// Creation order (the default).
    #[default]
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name, case-insensitively.
    Name,
}

/// The position after the last item of a page, as the store reads it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Position {
    Rowid(i64),
    Time(i64, i64),
    Text(String, i64),
}

/// One page of customers: each with its position (for the next cursor) and
/// its rowid.
pub(crate) fn list(
    conn: &Connection,
    sort: CustomerSort,
    descending: bool,
    after: Option<&Position>,
    limit: u32,
) -> Result<Vec<(Position, i64, Customer)>> {
    let (key, cmp) = match (sort, descending) {
        (CustomerSort::CreatedAt, _) => ("c.rowid", if descending { "<" } else { ">" }),
        (CustomerSort::UpdatedAt, _) => ("c.updated_at", if descending { "<" } else { ">" }),
        (CustomerSort::Name, _) => ("c.name COLLATE NOCASE", if descending { "<" } else { ">" }),
    };
    let dir = if descending { "DESC" } else { "ASC" };
    let order = match sort {
        CustomerSort::CreatedAt => format!("c.rowid {dir}"),
        _ => format!("{key} {dir}, c.rowid {dir}"),
    };
    let (filter, params): (String, Vec<rusqlite::types::Value>) = match (sort, after) {
        (_, None) => (String::new(), vec![]),
        (CustomerSort::CreatedAt, Some(Position::Rowid(r))) => {
            (format!("WHERE c.rowid {cmp} ?"), vec![(*r).into()])
        }
        (CustomerSort::UpdatedAt, Some(Position::Time(t, r))) => (
            format!("WHERE ({key}, c.rowid) {cmp} (?, ?)"),
            vec![(*t).into(), (*r).into()],
        ),
        (CustomerSort::Name, Some(Position::Text(n, r))) => (
            format!("WHERE ({key}, c.rowid) {cmp} (?, ?)"),
            vec![n.clone().into(), (*r).into()],
        ),
        _ => {
            return Err(Error::validation(
                "cursor",
                "was made for another sort order",
            ));
        }
    };
    let sql = format!("SELECT {COLUMNS} FROM customers c {filter} ORDER BY {order} LIMIT {limit}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get("rowid")?;
        let customer = from_row(row)?;
        let pos = match sort {
            CustomerSort::CreatedAt => Position::Rowid(rowid),
            CustomerSort::UpdatedAt => Position::Time(to_micros(customer.updated_at), rowid),
            CustomerSort::Name => Position::Text(customer.name.clone(), rowid),
        };
        out.push((pos, rowid, customer));
    }
    Ok(out)
}

pub(crate) fn count(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row("SELECT count(*) FROM customers", [], |r| r.get(0))?;
    Ok(n as u64)
}
