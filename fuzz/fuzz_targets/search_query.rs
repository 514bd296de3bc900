//! Any text as a search query: FTS5 syntax in it is plain text, so a search
//! either answers or rejects the query as empty, and never errors otherwise.
#![no_main]

use crm_core::{Crm, Error, NewCustomer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    let crm = Crm::open_in_memory().expect("in-memory database");
    crm.create_customer(NewCustomer { name: Some("Ana Novak".into()), ..NewCustomer::default() }).expect("create");
    match crm.search(query, 10) {
        Ok(_) | Err(Error::Validation { .. }) => {}
        Err(other) => panic!("unexpected error: {other}"),
    }
});
