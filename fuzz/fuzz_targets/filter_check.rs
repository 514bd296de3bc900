//! Any text as a filter run on a CRM: checked and compiled against its schema
//! (attributes, segments), then run both ways — over the population and for
//! one customer. Every outcome is a count or a positioned parse error; SQL
//! never fails, nothing panics, and both ways agree.
#![no_main]

use std::sync::OnceLock;

use crm_core::{
    AttributeValue, Crm, Customer, Error, InteractionKind, NewCustomer, NewInteraction, NewSegment,
};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static (Crm, Customer) {
    static CRM: OnceLock<(Crm, Customer)> = OnceLock::new();
    CRM.get_or_init(|| {
        let crm = Crm::open_in_memory().expect("in-memory database");
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("plan".into(), AttributeValue::Text("pro".into()));
        attributes.insert("seats".into(), AttributeValue::Number(3.0));
        let ana = crm
            .create_customer(NewCustomer {
                name: Some("Ana Novak".into()),
                country: Some("SI".into()),
                tags: vec!["vip".into()],
                attributes,
                ..NewCustomer::default()
            })
            .expect("create");
        crm.log_interaction(NewInteraction {
            amount_minor: Some(1_000),
            currency: Some("EUR".into()),
            ..NewInteraction::new(ana.id, InteractionKind::Purchase)
        })
        .expect("log");
        crm.create_segment(&NewSegment::dynamic("vip", r#""vip" in tags"#))
            .expect("segment");
        (crm, ana)
    })
}

fuzz_target!(|text: &str| {
    let (crm, ana) = fixture();
    let all = match crm.count_matching(text) {
        Ok(n) => n,
        Err(Error::Parse { .. }) => return,
        Err(other) => panic!("{text:?}: unexpected error {other}"),
    };
    let one = crm.customer_matches(ana.id, text).expect("compiled once, compiles again");
    assert_eq!(all == 1, one, "{text:?}: set and row evaluation disagree");
});
