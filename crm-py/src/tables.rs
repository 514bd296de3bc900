//! `crm.Table`: a table of the database as Arrow data (`Crm.table(...)`).
//!
//! A `Table` describes a read (which table, which rows); every read of it
//! (`to_arrow()`, `to_pandas()`, `to_polars()`, iteration, or a consumer of
//! `__arrow_c_stream__`) starts a fresh `Crm::read_table` in the core. The
//! options are checked when the `Table` is made, so that bad input raises
//! the crm exception there; the batches cross into Python through the Arrow
//! PyCapsule interface (pyo3-arrow), without copies.

use std::sync::Mutex;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::{ArrowError, DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use crm_core::arrow::{ReadOptions, Table as CoreTable, TableReader};
use pyo3::exceptions::PyImportError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use pyo3_arrow::{PyRecordBatch, PyRecordBatchReader, PyScalar, PySchema, PyTable};

use crate::Handle;
use crate::convert::{self, Filter};
use crate::errors::{OrRaise, to_py_err};

/// A table of the database as Arrow data: which table and which rows. Each
/// read starts afresh, so a `Table` can be read any number of times.
#[pyclass(module = "crm", name = "Table", frozen)]
pub struct Table {
    handle: Handle,
    table: CoreTable,
    filter: Option<Filter>,
    segment: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    batch_size: usize,
}

/// The arguments of `Crm.table`, converted and checked by the core.
#[allow(clippy::too_many_arguments)]
pub fn table<'py>(
    handle: &Handle,
    py: Python<'py>,
    name: &Bound<'py, PyAny>,
    filter: Option<&Bound<'py, PyAny>>,
    segment: Option<&Bound<'py, PyAny>>,
    since: Option<&Bound<'py, PyAny>>,
    until: Option<&Bound<'py, PyAny>>,
    batch_size: Option<&Bound<'py, PyAny>>,
) -> PyResult<Table> {
    fn given<'a, 'py>(o: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
        o.filter(|o| !o.is_none())
    }
    let table: CoreTable = convert::string(name, "name")?.parse().or_raise()?;
    let t = Table {
        handle: handle.clone(),
        table,
        filter: given(filter)
            .map(|f| convert::filter(f, "filter"))
            .transpose()?,
        segment: given(segment)
            .map(|s| convert::string(s, "segment"))
            .transpose()?,
        since: given(since)
            .map(|s| convert::time(s, "since"))
            .transpose()?,
        until: given(until)
            .map(|u| convert::time(u, "until"))
            .transpose()?,
        batch_size: match given(batch_size) {
            Some(b) => convert::integer(b, "batch_size")?,
            None => ReadOptions::default().batch_size,
        },
    };
    // Checks everything (the filter against the schema, the segment, the
    // batch size, since/until for this table) before any read.
    t.schema_ref(py)?;
    Ok(t)
}

impl Table {
    fn options(&self) -> ReadOptions<'_> {
        ReadOptions {
            batch_size: self.batch_size,
            filter: self.filter.as_ref().map(Filter::as_ref),
            segment: self.segment.as_deref(),
            since: self.since,
            until: self.until,
        }
    }

    fn schema_ref(&self, py: Python<'_>) -> PyResult<SchemaRef> {
        let options = self.options();
        let table = self.table;
        self.handle
            .run(py, move |c| c.table_schema(table, &options))
    }

    /// Starts a read.
    fn open(&self, py: Python<'_>, batch_size: Option<usize>) -> PyResult<TableReader> {
        let mut options = self.options();
        if let Some(n) = batch_size {
            options.batch_size = n;
        }
        let table = self.table;
        self.handle.run(py, move |c| c.read_table(table, &options))
    }

    /// Reads every batch, with the GIL released; a failure is the crm
    /// exception.
    fn read_all(&self, py: Python<'_>) -> PyResult<(SchemaRef, Vec<RecordBatch>)> {
        let reader = self.open(py, None)?;
        let schema = reader.schema();
        let batches = py
            .detach(move || reader.collect::<Result<Vec<_>, _>>())
            .map_err(arrow_to_py)?;
        Ok((schema, batches))
    }
}

/// An error of a read as the crm exception it holds.
fn arrow_to_py(e: ArrowError) -> PyErr {
    match e {
        ArrowError::ExternalError(inner) => match inner.downcast::<crm_core::Error>() {
            Ok(err) => to_py_err(*err),
            Err(other) => to_py_err(crm_core::Error::Storage(other.to_string())),
        },
        other => to_py_err(crm_core::Error::Storage(other.to_string())),
    }
}

/// Imports an optional dependency, or raises an ImportError saying how to
/// install it.
fn require<'py>(
    py: Python<'py>,
    module: &str,
    what: &str,
    extra: &str,
) -> PyResult<Bound<'py, PyModule>> {
    py.import(module).map_err(|e| {
        let err =
            PyImportError::new_err(format!("{what} needs {module}: pip install 'crm[{extra}]'"));
        err.set_cause(py, Some(e));
        err
    })
}

/// A [`TableReader`] whose batches are read with the GIL released when the
/// consumer of the stream holds it (pyarrow and polars call `get_next` from
/// their own code, with or without it).
struct Detached(TableReader);

impl Iterator for Detached {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: PyGILState_Check may be called without the GIL.
        let attached = unsafe { pyo3::ffi::PyGILState_Check() } == 1;
        if attached {
            let reader = &mut self.0;
            Python::attach(|py| py.detach(|| reader.next()))
        } else {
            self.0.next()
        }
    }
}

impl RecordBatchReader for Detached {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }
}

/// A readable name of a column type.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "string".into(),
        DataType::Dictionary(_, v) if **v == DataType::Utf8 => "category".into(),
        DataType::List(f) => format!("list<{}>", type_name(f.data_type())),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp[us, {tz}]"),
        DataType::Boolean => "bool".into(),
        DataType::Float64 => "float64".into(),
        DataType::Int64 => "int64".into(),
        DataType::Int32 => "int32".into(),
        DataType::UInt8 => "uint8".into(),
        other => other.to_string(),
    }
}

#[pymethods]
impl Table {
    /// The table's name: customers, interactions, consent, scores,
    /// stage_transitions, deals or tasks.
    #[getter]
    fn name(&self) -> &'static str {
        self.table.name()
    }

    /// The columns a read has now, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        require(py, "pyarrow", "Table.schema", "arrow")?;
        PySchema::new(self.schema_ref(py)?).into_pyarrow(py)
    }

    /// The column names a read has now.
    #[getter]
    fn columns(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        Ok(self
            .schema_ref(py)?
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect())
    }

    /// The Arrow C stream of a fresh read (the Arrow PyCapsule interface):
    /// pyarrow, polars, DuckDB and others read a `Table` directly.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reader: Box<dyn RecordBatchReader + Send> = Box::new(Detached(self.open(py, None)?));
        let stream = Bound::new(py, PyRecordBatchReader::new(reader))?;
        stream.call_method1(intern!(py, "__arrow_c_stream__"), (requested_schema,))
    }

    /// Reads the rows into a `pyarrow.Table`.
    fn to_arrow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        require(py, "pyarrow", "to_arrow()", "arrow")?;
        let (schema, batches) = self.read_all(py)?;
        PyTable::try_new(batches, schema)?.into_pyarrow(py)
    }

    /// Reads the rows into a pandas DataFrame (through pyarrow; keyword
    /// arguments go to `pyarrow.Table.to_pandas`, whose `split_blocks` is
    /// true unless given). Dictionary columns become categoricals, times
    /// `datetime64[us, UTC]`.
    #[pyo3(signature = (**kwargs))]
    fn to_pandas<'py>(
        &self,
        py: Python<'py>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        require(py, "pandas", "to_pandas()", "pandas")?;
        require(py, "pyarrow", "to_pandas()", "pandas")?;
        let (schema, batches) = self.read_all(py)?;
        let table = PyTable::try_new(batches, schema)?.into_pyarrow(py)?;
        // One block per column: no copy to consolidate columns of a type.
        let options = PyDict::new(py);
        options.set_item(intern!(py, "split_blocks"), true)?;
        if let Some(k) = kwargs {
            options.update(k.as_mapping())?;
        }
        table.call_method(intern!(py, "to_pandas"), (), Some(&options))
    }

    /// Reads the rows into a polars DataFrame (polars reads the Arrow data
    /// directly; pyarrow is not needed).
    fn to_polars<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let polars = require(py, "polars", "to_polars()", "polars")?;
        let (schema, batches) = self.read_all(py)?;
        let reader: Box<dyn RecordBatchReader + Send> = Box::new(RecordBatchIterator::new(
            batches.into_iter().map(Ok),
            schema,
        ));
        let stream = Bound::new(py, PyRecordBatchReader::new(reader))?;
        polars.getattr(intern!(py, "DataFrame"))?.call1((stream,))
    }

    /// Iterates over a fresh read, one `pyarrow.RecordBatch` at a time.
    fn __iter__(&self, py: Python<'_>) -> PyResult<TableBatches> {
        require(py, "pyarrow", "iterating over a Table", "arrow")?;
        Ok(TableBatches(Mutex::new(Some(self.open(py, None)?))))
    }

    /// The first `n` rows for display: `(columns, rows)`, the columns as
    /// `(name, type)` pairs and the rows as lists of Python values. Reads
    /// only those rows.
    fn _preview<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyTuple>> {
        let mut reader = self.open(py, Some(n.max(1)))?;
        let schema = reader.schema();
        let first = py.detach(|| reader.next().transpose());
        drop(reader);
        let batch = first.map_err(arrow_to_py)?;
        let columns = PyList::empty(py);
        for f in schema.fields() {
            columns.append((f.name(), type_name(f.data_type())))?;
        }
        let rows = PyList::empty(py);
        if let Some(batch) = batch {
            for i in 0..batch.num_rows().min(n) {
                let row = PyList::empty(py);
                for (column, field) in batch.columns().iter().zip(schema.fields()) {
                    let scalar = PyScalar::try_new(column.slice(i, 1), field.clone())?;
                    row.append(Bound::new(py, scalar)?.call_method0(intern!(py, "as_py"))?)?;
                }
                rows.append(row)?;
            }
        }
        PyTuple::new(py, [columns.into_any(), rows.into_any()])
    }

    fn _repr_html_<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import(intern!(py, "crm._tables"))?
            .call_method1(intern!(py, "repr_html"), (slf,))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |o: Bound<'_, PyAny>| -> PyResult<String> { Ok(o.repr()?.to_string()) };
        let mut parts = vec![repr(PyString::new(py, self.table.name()).into_any())?];
        if let Some(f) = &self.filter {
            let text = match f {
                Filter::Text(t) => t.clone(),
                Filter::Tree(e) => e.to_string(),
            };
            parts.push(format!(
                "filter={}",
                repr(PyString::new(py, &text).into_any())?
            ));
        }
        if let Some(s) = &self.segment {
            parts.push(format!(
                "segment={}",
                repr(PyString::new(py, s).into_any())?
            ));
        }
        for (name, t) in [("since", self.since), ("until", self.until)] {
            if let Some(t) = t {
                parts.push(format!("{name}='{}'", t.to_rfc3339()));
            }
        }
        if self.batch_size != ReadOptions::default().batch_size {
            parts.push(format!("batch_size={}", self.batch_size));
        }
        let columns = match self.schema_ref(py) {
            Ok(schema) => schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => "?".into(),
        };
        Ok(format!(
            "crm.Table({}; columns: {columns})",
            parts.join(", ")
        ))
    }
}

/// The batches of one read of a `Table`, as `pyarrow.RecordBatch`es.
#[pyclass(module = "crm", name = "TableBatches", frozen)]
pub struct TableBatches(Mutex<Option<TableReader>>);

#[pymethods]
impl TableBatches {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut guard = self
            .0
            .lock_py_attached(py)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(reader) = guard.as_mut() else {
            return Ok(None);
        };
        match py.detach(|| reader.next()) {
            Some(Ok(batch)) => Ok(Some(PyRecordBatch::new(batch).into_pyarrow(py)?)),
            Some(Err(e)) => {
                *guard = None;
                Err(arrow_to_py(e))
            }
            None => {
                *guard = None;
                Ok(None)
            }
        }
    }
}
