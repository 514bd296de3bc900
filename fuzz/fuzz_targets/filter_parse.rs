//! Any text as a filter expression: the parser answers with a tree or a
//! positioned error and never panics, and a tree's canonical text parses back
//! to the same tree.
#![no_main]

use crm_core::filter::{self, MAX_TEXT_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(expr) = filter::parse(text) else {
        return;
    };
    let canonical = expr.to_string();
    // Canonical spacing can make a text near the length limit longer.
    if canonical.len() > MAX_TEXT_LEN {
        return;
    }
    match filter::parse(&canonical) {
        Ok(again) => assert_eq!(again, expr, "{canonical}"),
        Err(error) => panic!("canonical text {canonical:?} does not parse: {error}"),
    }
});
