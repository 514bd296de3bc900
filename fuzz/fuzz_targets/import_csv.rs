//! Any bytes as a CSV of customers and of interactions: the import reports
//! rows or fails with a typed error, and never panics.
#![no_main]

use crm_core::Crm;
use crm_core::import::{ColumnMapping, ImportMode, ImportOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let crm = Crm::open_in_memory().expect("in-memory database");
    let options = ImportOptions { mode: ImportMode::SkipInvalid, ..ImportOptions::default() };
    let _ = crm.import_customers_csv(data, &ColumnMapping::default(), &options, None);
    let _ = crm.import_interactions_csv(data, &ColumnMapping::default(), &options, None);
    let strict = ImportOptions::default();
    let before = crm.count_customers().expect("count");
    if crm.import_customers_csv(data, &ColumnMapping::default(), &strict, None).is_err() {
        assert_eq!(crm.count_customers().expect("count"), before, "a failed import changed nothing");
    }
});
