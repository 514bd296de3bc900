//! Any text as a rule in its JSON form, read and then checked against a CRM
//! (stages, segments, teams, attributes, the condition's schema) by a dry
//! run. Every outcome is a dry run or a typed validation or parse error;
//! nothing panics, and nothing is stored.
#![no_main]

use std::sync::OnceLock;

use crm_core::rules::{NewRule, Team, TeamMember};
use crm_core::{Crm, Error, NewCustomer, NewSegment};
use libfuzzer_sys::fuzz_target;

fn fixture() -> &'static Crm {
    static CRM: OnceLock<Crm> = OnceLock::new();
    CRM.get_or_init(|| {
        let crm = Crm::open_in_memory().expect("in-memory database");
        crm.create_customer(NewCustomer {
            name: Some("Ana Novak".into()),
            country: Some("SI".into()),
            tags: vec!["vip".into()],
            ..NewCustomer::default()
        })
        .expect("create");
        crm.create_segment(&NewSegment::static_list("list"))
            .expect("segment");
        crm.set_team(&Team {
            name: "sales".into(),
            members: vec![TeamMember::new("ana")],
        })
        .expect("team");
        crm
    })
}

fuzz_target!(|text: &str| {
    let crm = fixture();
    let rule = match NewRule::from_json(text) {
        Ok(rule) => rule,
        Err(Error::Validation { .. }) => return,
        Err(other) => panic!("{text:?}: unexpected error {other}"),
    };
    let changes = crm.changes_since(0, 10_000).expect("changes").len();
    match crm.dry_run_rule(&rule, 10) {
        Ok(_) | Err(Error::Validation { .. } | Error::Parse { .. } | Error::Rule { .. }) => {}
        Err(other) => panic!("{text:?}: unexpected error {other}"),
    }
    assert_eq!(crm.changes_since(0, 10_000).expect("changes").len(), changes, "a dry run stored something");
});
