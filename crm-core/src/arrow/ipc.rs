//! Tables to and from Arrow IPC files (Feather v2): the columnar door for
//! programs that don't share memory with the library, such as Kotlin on the
//! JVM (Arrow Java) or a notebook on another machine.

use std::io::{BufReader, Read, Seek, SeekFrom, Write};

use arrow_array::RecordBatchReader;
use arrow_ipc::reader::{FileReader, StreamReader};
use arrow_ipc::writer::FileWriter;

use super::{ReadOptions, Table, from_arrow};
use crate::crm::Crm;
use crate::error::{Error, Result};
use crate::import::{ColumnMapping, ImportOptions, ImportReport, ProgressFn};

/// The first bytes of an Arrow IPC file.
const FILE_MAGIC: &[u8; 6] = b"ARROW1";

/// Opens Arrow IPC data: the file format (Feather v2, starting with
/// `ARROW1`) or the stream format.
fn ipc_reader<R: Read + Seek + Send + 'static>(
    mut input: R,
) -> Result<Box<dyn RecordBatchReader + Send>> {
    let mut magic = [0_u8; 6];
    let start = input.stream_position()?;
    let is_file = input.read_exact(&mut magic).is_ok() && &magic == FILE_MAGIC;
    input.seek(SeekFrom::Start(start))?;
    let invalid = |e: arrow_schema::ArrowError| {
        Error::validation("file", format!("not an Arrow IPC file or stream: {e}"))
    };
    Ok(if is_file {
        Box::new(FileReader::try_new_buffered(input, None).map_err(invalid)?)
    } else {
        Box::new(StreamReader::try_new(BufReader::new(input), None).map_err(invalid)?)
    })
}

impl Crm {
    /// Writes a table as an Arrow IPC file (Feather v2; what
    /// `pyarrow.feather`, `polars.read_ipc` and Arrow Java's
    /// `ArrowFileReader` read), with the schema of [`Crm::read_table`];
    /// returns the number of rows. Memory stays bounded: batches are
    /// written as they are read.
    ///
    /// ```
    /// use crm_core::arrow::{ReadOptions, Table};
    /// use crm_core::{Crm, NewCustomer};
    /// let crm = Crm::open_in_memory()?;
    /// crm.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// let mut file = Vec::new();
    /// let rows = crm.export_table(Table::Customers, &ReadOptions::default(), &mut file)?;
    /// assert_eq!(rows, 1);
    /// assert!(file.starts_with(b"ARROW1"));
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn export_table<W: Write>(
        &self,
        table: Table,
        options: &ReadOptions<'_>,
        out: W,
    ) -> Result<u64> {
        let reader = self.read_table(table, options)?;
        let mut writer = FileWriter::try_new_buffered(out, &reader.schema()).map_err(from_arrow)?;
        let mut rows = 0;
        for batch in reader {
            let batch = batch.map_err(from_arrow)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(from_arrow)?;
        }
        writer.finish().map_err(from_arrow)?;
        writer
            .into_inner()
            .map_err(from_arrow)?
            .flush()
            .map_err(Error::from)?;
        Ok(rows)
    }

    /// Imports customers from Arrow IPC data (the file or the stream
    /// format), column by column as [`Crm::import_customers_arrow`].
    ///
    /// ```
    /// use crm_core::arrow::{ReadOptions, Table};
    /// use crm_core::import::{ColumnMapping, ImportOptions};
    /// use crm_core::{Crm, NewCustomer};
    /// let source = Crm::open_in_memory()?;
    /// source.create_customer(NewCustomer { name: Some("Ana".into()), ..Default::default() })?;
    /// let mut file = Vec::new();
    /// source.export_table(Table::Customers, &ReadOptions::default(), &mut file)?;
    ///
    /// let copy = Crm::open_in_memory()?;
    /// let report = copy.import_customers_ipc(
    ///     std::io::Cursor::new(file),
    ///     &ColumnMapping::default(),
    ///     &ImportOptions::default(),
    ///     None,
    /// )?;
    /// assert_eq!(report.inserted, 1);
    /// # Ok::<(), crm_core::Error>(())
    /// ```
    pub fn import_customers_ipc<R: Read + Seek + Send + 'static>(
        &self,
        input: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        self.import_customers_arrow(ipc_reader(input)?, mapping, options, progress)
    }

    /// Imports interactions from Arrow IPC data (the file or the stream
    /// format), column by column as [`Crm::import_interactions_arrow`].
    pub fn import_interactions_ipc<R: Read + Seek + Send + 'static>(
        &self,
        input: R,
        mapping: &ColumnMapping,
        options: &ImportOptions,
        progress: Option<ProgressFn<'_>>,
    ) -> Result<ImportReport> {
        self.import_interactions_arrow(ipc_reader(input)?, mapping, options, progress)
    }
}
