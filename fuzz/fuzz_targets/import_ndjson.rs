//! Any bytes as NDJSON customers and interactions: no panic, and a failed
//! all-or-nothing import leaves the database as it was.
#![no_main]

use crm_core::Crm;
use crm_core::import::{ColumnMapping, ImportMode, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let crm = Crm::open_in_memory().expect("in-memory database");
    let options = ImportOptions { mode: ImportMode::SkipInvalid, upsert: data.len() % 2 == 0, ..ImportOptions::default() };
    let _ = crm.import_customers_ndjson(data, &ColumnMapping::default(), &options, None);
    let _ = crm.import_interactions_ndjson(data, &ColumnMapping::default(), &options, None);
    let before = crm.count_customers().expect("count");
    if crm.import_customers_ndjson(data, &ColumnMapping::default(), &ImportOptions::default(), None).is_err() {
        assert_eq!(crm.count_customers().expect("count"), before);
    }
});
