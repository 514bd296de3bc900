//! Filter queries and segments: who matches an expression, and named groups
//! of customers that are either defined by an expression (dynamic) or listed
//! one by one (static).
//!
//! ```
//! use crm_core::{Crm, NewCustomer};
//! use crm_core::segment::{MembersQuery, NewSegment};
//!
//! let crm = Crm::open_in_memory()?;
//! let ana = crm.create_customer(NewCustomer {
//!     name: Some("Ana Novak".into()),
//!     tags: vec!["vip".into()],
//!     ..Default::default()
//! })?;
//! crm.create_segment(&NewSegment::dynamic("vips", r#""vip" in tags"#))?;
//! assert_eq!(crm.segment_count("vips")?, 1);
//! assert!(crm.segment_contains("vips", ana.id)?);
//!
//! // Materializing stores the membership and logs who entered and left.
//! let report = crm.materialize_segment("vips")?;
//! assert_eq!((report.entered, report.left), (1, 0));
//!
//! let page = crm.segment_members("vips", &MembersQuery::default())?;
//! assert_eq!(page.items[0].id, ana.id);
//! # Ok::<(), crm_core::Error>(())
//! ```

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crm::Crm;
use crate::db;
use crate::db::segments::Membership;
use crate::error::{Error, Result};
use crate::filter::compile::{self, Compiled, Mode};
use crate::filter::{self, Expr};
use crate::model::customer::Customer;
use crate::model::ids::{CustomerId, SegmentId};
use crate::model::normalize;
use crate::page::{self, Page};

/// A filter expression, as text or as a tree (built in code or read back
/// from JSON).
#[derive(Clone, Copy, Debug)]
pub enum FilterRef<'a> {
    /// Text in the filter language; errors point into it.
    Text(&'a str),
    /// A syntax tree.
    Expr(&'a Expr),
}

impl<'a> From<&'a str> for FilterRef<'a> {
    fn from(text: &'a str) -> Self {
        FilterRef::Text(text)
    }
}

impl<'a> From<&'a String> for FilterRef<'a> {
    fn from(text: &'a String) -> Self {
        FilterRef::Text(text)
    }
}

impl<'a> From<&'a Expr> for FilterRef<'a> {
    fn from(expr: &'a Expr) -> Self {
        FilterRef::Expr(expr)
    }
}

impl FilterRef<'_> {
    /// The tree, and the text errors point into ("" for a tree).
    fn parsed(self) -> Result<(Expr, String)> {
        match self {
            FilterRef::Text(text) => Ok((filter::parse(text)?, text.to_string())),
            FilterRef::Expr(expr) => Ok((expr.clone(), String::new())),
        }
    }
}

/// One page of matching customers or segment members, in creation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersQuery {
    /// At most this many (1 to 10 000); default 100.
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Default for MembersQuery {
    fn default() -> Self {
        MembersQuery {
            limit: 100,
            cursor: None,
        }
    }
}

/// What [`Crm::explain`] tells about a filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// The canonical text of the expression.
    pub canonical: String,
    /// The SQL that counts the matching customers; values are parameters.
    pub sql: String,
    /// The parameters' values, in order (`?1`, `?2`, …), as text.
    pub params: Vec<String>,
    /// SQLite's query plan, one step per line, indented under its parent.
    pub plan: Vec<String>,
}

/// Dynamic or static.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// Defined by a filter expression; members are whoever matches now.
    Dynamic,
    /// An explicit list of customers.
    Static,
}

impl SegmentKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentKind::Dynamic => "dynamic",
            SegmentKind::Static => "static",
        }
    }
}

/// A segment as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its id.
    pub id: SegmentId,
    /// Its unique name, e.g. `churn-risk`.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// Dynamic or static.
    pub kind: SegmentKind,
    /// The canonical text of the expression of a dynamic segment.
    pub filter: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its definition last changed.
    pub updated_at: DateTime<Utc>,
    /// When its membership was last materialized.
    pub evaluated_at: Option<DateTime<Utc>>,
}

/// A segment to create.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewSegment {
    /// Its unique name: 1 to 100 characters.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The filter expression of a dynamic segment; `None` for a static one.
    pub filter: Option<String>,
}

impl NewSegment {
    /// A dynamic segment: whoever matches `filter`.
    pub fn dynamic(name: impl Into<String>, filter: impl Into<String>) -> Self {
        NewSegment {
            name: name.into(),
            description: None,
            filter: Some(filter.into()),
        }
    }

    /// A static segment, empty until customers are added.
    pub fn static_list(name: impl Into<String>) -> Self {
        NewSegment {
            name: name.into(),
            description: None,
            filter: None,
        }
    }
}

/// Changes to a segment's definition; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentPatch {
    /// A new description; `Some(None)` clears it.
    pub description: Option<Option<String>>,
    /// A new expression (dynamic segments only).
    pub filter: Option<String>,
}

/// The outcome of [`Crm::materialize_segment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterializeReport {
    /// Members now.
    pub members: u64,
    /// Customers who were not members at the last materialization and are now.
    pub entered: u64,
    /// Customers who were members at the last materialization and are not now.
    pub left: u64,
}

const MAX_NAME_LEN: usize = 100;
const MAX_DESCRIPTION_LEN: usize = 2_000;
/// Customers read per batch by [`Crm::for_each_segment_member`].
const STREAM_BATCH: u32 = 1_000;

fn segment_name(raw: &str) -> Result<String> {
    normalize::text(raw, MAX_NAME_LEN).map_err(|r| Error::validation("name", r))
}

fn description(raw: Option<&str>) -> Result<Option<String>> {
    raw.map(|d| normalize::text(d, MAX_DESCRIPTION_LEN))
        .transpose()
        .map_err(|r| Error::validation("description", r))
}

/// The rowid after the last item of a page, as a cursor.
#[derive(Serialize, Deserialize)]
struct After(i64);

impl Crm {
    // ----- ad-hoc filters -------------------------------------------------

    pub(crate) fn compile(
        conn: &rusqlite::Connection,
        filter: FilterRef<'_>,
        mode: Mode,
        segment: Option<&str>,
    ) -> Result<Compiled> {
        let (expr, text) = filter.parsed()?;
        compile::compile(conn, &text, &expr, mode, Crm::now(), segment)
    }

    /// Checks an expression against this CRM's schema (fields, attributes,
    /// segments, types) and returns its canonical text.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// assert_eq!(crm.check_filter("Country = 'SI'").unwrap_err().to_string(),
    ///            "line 1, column 11: strings are written in double quotes, found a single-quoted string");
    /// assert_eq!(crm.check_filter(r#"country="si"  AND tags is empty"#)?,
    ///            r#"country = "si" and tags is empty"#);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn check_filter<'a>(&self, filter: impl Into<FilterRef<'a>>) -> Result<String> {
        let filter = filter.into();
        let (expr, _) = filter.parsed()?;
        self.db
            .read(|conn| Crm::compile(conn, filter, Mode::Set, None))?;
        Ok(expr.to_string())
    }

    /// How many customers match.
    pub fn count_matching<'a>(&self, filter: impl Into<FilterRef<'a>>) -> Result<u64> {
        let filter = filter.into();
        self.db.read(|conn| {
            let c = Crm::compile(conn, filter, Mode::Set, None)?;
            db::segments::count(conn, &Membership::Filter(c))
        })
    }

    /// One page of the customers who match, in creation order.
    pub fn find_matching<'a>(
        &self,
        filter: impl Into<FilterRef<'a>>,
        query: &MembersQuery,
    ) -> Result<Page<Customer>> {
        let filter = filter.into();
        let limit = page::check_limit(query.limit)?;
        let after = decode_after(query)?;
        let rows = self.db.read(|conn| {
            let c = Crm::compile(conn, filter, Mode::Set, None)?;
            db::segments::page(conn, &Membership::Filter(c), after, limit + 1)
        })?;
        Ok(paginate(rows, limit))
    }

    /// Whether one customer matches; reads only that customer's rows.
    pub fn customer_matches<'a>(
        &self,
        customer: CustomerId,
        filter: impl Into<FilterRef<'a>>,
    ) -> Result<bool> {
        let filter = filter.into();
        self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            let c = Crm::compile(conn, filter, Mode::Row, None)?;
            db::segments::contains(conn, &Membership::Filter(c), rowid)
        })
    }

    /// The SQL an expression runs as and SQLite's plan for it, for finding
    /// out why a segment is slow.
    ///
    /// ```
    /// # let crm = crm_core::Crm::open_in_memory()?;
    /// let explain = crm.explain(r#""vip" in tags"#)?;
    /// assert!(explain.sql.contains("customer_tags"));
    /// assert_eq!(explain.params, vec!["vip"]);
    /// assert!(!explain.plan.is_empty());
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn explain<'a>(&self, filter: impl Into<FilterRef<'a>>) -> Result<Explain> {
        let filter = filter.into();
        let (expr, _) = filter.parsed()?;
        self.db.read(|conn| {
            let c = Crm::compile(conn, filter, Mode::Set, None)?;
            let (sql, plan) = db::segments::explain(conn, &c)?;
            Ok(Explain {
                canonical: expr.to_string(),
                sql,
                params: c.params.iter().map(value_text).collect(),
                plan,
            })
        })
    }

    // ----- segments ---------------------------------------------------------

    /// Creates a segment. A dynamic segment's expression is checked first;
    /// it may use other segments (`in_segment("…")`) but not itself.
    pub fn create_segment(&self, new: &NewSegment) -> Result<Segment> {
        let name = segment_name(&new.name)?;
        let description = description(new.description.as_deref())?;
        let now = Crm::now();
        self.db.write(|tx| {
            let (canonical, uses) = match &new.filter {
                Some(f) => {
                    let c = Crm::compile(tx, FilterRef::Text(f), Mode::Set, Some(&name))?;
                    (Some(filter::parse(f)?.to_string()), c.segments)
                }
                None => (None, Vec::new()),
            };
            let segment = Segment {
                id: SegmentId::new(),
                name: name.clone(),
                description,
                kind: if canonical.is_some() {
                    SegmentKind::Dynamic
                } else {
                    SegmentKind::Static
                },
                filter: canonical,
                created_at: now,
                updated_at: now,
                evaluated_at: None,
            };
            let rowid = db::segments::insert(tx, &self.context, &segment)?;
            db::segments::set_dependencies(tx, rowid, &uses)?;
            Ok(segment)
        })
    }

    /// A segment by name.
    pub fn segment(&self, name: &str) -> Result<Segment> {
        self.db
            .read(|conn| db::segments::require(conn, name).map(|(_, s)| s))
    }

    /// Every segment, by name.
    pub fn segments(&self) -> Result<Vec<Segment>> {
        self.db.read(db::segments::list)
    }

    /// Renames a segment; expressions of other segments that use it are
    /// rewritten to the new name.
    pub fn rename_segment(&self, name: &str, new_name: &str) -> Result<Segment> {
        let new_name = segment_name(new_name)?;
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut segment) = db::segments::require(tx, name)?;
            if segment.name == new_name {
                return Ok(segment);
            }
            let old = std::mem::replace(&mut segment.name, new_name.clone());
            segment.updated_at = now;
            db::segments::update(tx, &self.context, rowid, &segment, &["name"])?;
            for (user_rowid, mut user) in db::segments::dependents(tx, rowid)? {
                let text = user.filter.as_deref().unwrap_or_default();
                let mut expr = filter::parse(text)?;
                rename_references(&mut expr, &old, &new_name);
                user.filter = Some(expr.to_string());
                user.updated_at = now;
                db::segments::update(tx, &self.context, user_rowid, &user, &["filter"])?;
            }
            Ok(segment)
        })
    }

    /// Changes a segment's description or (for a dynamic one) expression.
    pub fn update_segment(&self, name: &str, patch: &SegmentPatch) -> Result<Segment> {
        let new_description = patch
            .description
            .as_ref()
            .map(|d| description(d.as_deref()))
            .transpose()?;
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, mut segment) = db::segments::require(tx, name)?;
            let mut changed = Vec::new();
            if let Some(d) = new_description {
                if d != segment.description {
                    segment.description = d;
                    changed.push("description");
                }
            }
            if let Some(f) = &patch.filter {
                if segment.kind == SegmentKind::Static {
                    return Err(Error::validation(
                        "filter",
                        "a static segment has members, not an expression",
                    ));
                }
                let c = Crm::compile(tx, FilterRef::Text(f), Mode::Set, Some(&segment.name))?;
                let canonical = filter::parse(f)?.to_string();
                if segment.filter.as_deref() != Some(&canonical) {
                    segment.filter = Some(canonical);
                    db::segments::set_dependencies(tx, rowid, &c.segments)?;
                    changed.push("filter");
                }
            }
            if !changed.is_empty() {
                segment.updated_at = now;
                db::segments::update(tx, &self.context, rowid, &segment, &changed)?;
            }
            Ok(segment)
        })
    }

    /// Deletes a segment. One that other segments use is refused with
    /// [`Error::Conflict`] naming them.
    pub fn delete_segment(&self, name: &str) -> Result<()> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, segment) = db::segments::require(tx, name)?;
            db::segments::delete(tx, &self.context, rowid, &segment, now)
        })
    }

    fn static_segment(tx: &rusqlite::Connection, name: &str) -> Result<(i64, Segment)> {
        let (rowid, segment) = db::segments::require(tx, name)?;
        if segment.kind != SegmentKind::Static {
            return Err(Error::validation(
                "segment",
                "members are added to static segments; a dynamic segment's members are whoever matches its expression",
            ));
        }
        Ok((rowid, segment))
    }

    /// Adds customers to a static segment; returns how many were not members
    /// yet. An unknown customer fails the whole call and adds no one.
    pub fn add_to_segment(&self, name: &str, customers: &[CustomerId]) -> Result<u64> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, segment) = Crm::static_segment(tx, name)?;
            if !crate::rules::engine::wants_segment(self, tx, &segment.name)? {
                return db::segments::add_members(
                    tx,
                    &self.context,
                    rowid,
                    &segment.name,
                    customers,
                    now,
                );
            }
            self.members_one_by_one(tx, rowid, &segment.name, customers, now, true)
        })
    }

    /// Removes customers from a static segment; returns how many were members.
    pub fn remove_from_segment(&self, name: &str, customers: &[CustomerId]) -> Result<u64> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, segment) = Crm::static_segment(tx, name)?;
            if !crate::rules::engine::wants_segment(self, tx, &segment.name)? {
                return db::segments::remove_members(
                    tx,
                    &self.context,
                    rowid,
                    &segment.name,
                    customers,
                    now,
                );
            }
            self.members_one_by_one(tx, rowid, &segment.name, customers, now, false)
        })
    }

    /// Adds or removes members one at a time, running the rules that react
    /// to each entering or leaving.
    fn members_one_by_one(
        &self,
        tx: &rusqlite::Connection,
        segment_rowid: i64,
        segment: &str,
        customers: &[CustomerId],
        now: chrono::DateTime<chrono::Utc>,
        add: bool,
    ) -> Result<u64> {
        let mut n = 0;
        for id in customers {
            let changed = if add {
                db::segments::add_members(tx, &self.context, segment_rowid, segment, &[*id], now)?
            } else {
                db::segments::remove_members(
                    tx,
                    &self.context,
                    segment_rowid,
                    segment,
                    &[*id],
                    now,
                )?
            };
            if changed == 0 {
                continue;
            }
            n += changed;
            let customer_rowid =
                db::customers::rowid_of(tx, *id)?.ok_or(Error::NotFound { entity: "customer" })?;
            let segment = segment.to_string();
            crate::rules::fire(
                self,
                tx,
                if add {
                    crate::rules::Event::SegmentEntered {
                        customer_rowid,
                        segment,
                    }
                } else {
                    crate::rules::Event::SegmentLeft {
                        customer_rowid,
                        segment,
                    }
                },
            )?;
        }
        Ok(n)
    }

    /// The membership test of a segment: its expression evaluated now, or
    /// its member list.
    fn membership(conn: &rusqlite::Connection, name: &str, mode: Mode) -> Result<Membership> {
        let (rowid, segment) = db::segments::require(conn, name)?;
        Ok(match segment.filter {
            Some(text) => Membership::Filter(Crm::compile(
                conn,
                FilterRef::Text(&text),
                mode,
                Some(&segment.name),
            )?),
            None => Membership::Members(rowid),
        })
    }

    /// How many members a segment has now (a dynamic segment is evaluated).
    pub fn segment_count(&self, name: &str) -> Result<u64> {
        self.db.read(|conn| {
            let m = Crm::membership(conn, name, Mode::Set)?;
            db::segments::count(conn, &m)
        })
    }

    /// One page of a segment's members, in creation order. A dynamic segment
    /// is evaluated for each page; for paging through a large one many
    /// times, [`Crm::materialize_segment`] it and page a static copy, or use
    /// [`Crm::for_each_segment_member`].
    pub fn segment_members(&self, name: &str, query: &MembersQuery) -> Result<Page<Customer>> {
        let limit = page::check_limit(query.limit)?;
        let after = decode_after(query)?;
        let rows = self.db.read(|conn| {
            let m = Crm::membership(conn, name, Mode::Set)?;
            db::segments::page(conn, &m, after, limit + 1)
        })?;
        Ok(paginate(rows, limit))
    }

    /// Calls `f` with every member of a segment, in creation order, reading
    /// them in batches so that memory stays bounded; `f` returns
    /// [`ControlFlow::Break`] to stop early. No lock is held while `f` runs,
    /// so it may use this handle.
    pub fn for_each_segment_member(
        &self,
        name: &str,
        mut f: impl FnMut(Customer) -> ControlFlow<()>,
    ) -> Result<()> {
        let mut after = 0;
        loop {
            let rows = self.db.read(|conn| {
                let m = Crm::membership(conn, name, Mode::Set)?;
                db::segments::page(conn, &m, after, STREAM_BATCH)
            })?;
            let done = rows.len() < STREAM_BATCH as usize;
            for (rowid, customer) in rows {
                after = rowid;
                if f(customer).is_break() {
                    return Ok(());
                }
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Whether a customer is a member of a segment now; reads only that
    /// customer's rows.
    pub fn segment_contains(&self, name: &str, customer: CustomerId) -> Result<bool> {
        self.db.read(|conn| {
            let rowid = db::customers::rowid_of(conn, customer)?
                .ok_or(Error::NotFound { entity: "customer" })?;
            let m = Crm::membership(conn, name, Mode::Row)?;
            db::segments::contains(conn, &m, rowid)
        })
    }

    /// Evaluates a dynamic segment and stores its membership; every customer
    /// who entered or left since the last materialization gets a change-log
    /// entry ([`crate::EntityKind::SegmentMember`]). All in one transaction.
    pub fn materialize_segment(&self, name: &str) -> Result<MaterializeReport> {
        let now = Crm::now();
        self.db.write(|tx| {
            let (rowid, segment) = db::segments::require(tx, name)?;
            let Some(text) = &segment.filter else {
                return Err(Error::validation(
                    "segment",
                    "a static segment's members are stored already; only dynamic segments are materialized",
                ));
            };
            let c = Crm::compile(tx, FilterRef::Text(text), Mode::Set, Some(&segment.name))?;
            let rules = crate::rules::engine::wants_segment(self, tx, &segment.name)?;
            let m = db::segments::materialize(
                tx,
                &self.context,
                rowid,
                &segment.name,
                &c,
                now,
                rules,
            )?;
            for customer_rowid in m.entered_rowids {
                let segment = segment.name.clone();
                crate::rules::fire(
                    self,
                    tx,
                    crate::rules::Event::SegmentEntered {
                        customer_rowid,
                        segment,
                    },
                )?;
            }
            for customer_rowid in m.left_rowids {
                let segment = segment.name.clone();
                crate::rules::fire(
                    self,
                    tx,
                    crate::rules::Event::SegmentLeft {
                        customer_rowid,
                        segment,
                    },
                )?;
            }
            Ok(MaterializeReport {
                members: m.members,
                entered: m.entered,
                left: m.left,
            })
        })
    }
}

fn decode_after(query: &MembersQuery) -> Result<i64> {
    Ok(query
        .cursor
        .as_deref()
        .map(page::decode::<After>)
        .transpose()?
        .map_or(0, |a| a.0))
}

fn paginate(rows: Vec<(i64, Customer)>, limit: u32) -> Page<Customer> {
    page::paginate(
        rows.into_iter().map(|(r, c)| (After(r), c)).collect(),
        limit,
    )
}

fn value_text(v: &rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(t) => t.clone(),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

/// Replaces `in_segment(old)` by `in_segment(new)` everywhere in `expr`.
fn rename_references(expr: &mut Expr, old: &str, new: &str) {
    match expr {
        Expr::And(parts) | Expr::Or(parts) => {
            for p in parts {
                rename_references(p, old, new);
            }
        }
        Expr::Not(inner) => rename_references(inner, old, new),
        Expr::InSegment { name, .. } if name == old => *name = new.to_string(),
        _ => {}
    }
}
