use std::time::Instant;
use crm_core::synth::*;
fn main() {
    let crm = crm_core::Crm::open("/tmp/prof/p.crm").unwrap();
    let g = Generator::new(SynthConfig { customers: 20_000, ..Default::default() });
    let t = Instant::now();
    let people: Vec<_> = g.people(&[]).collect();
    println!("gen people {:?}", t.elapsed());
    let t = Instant::now();
    let n = crm_core::Crm::open_in_memory().unwrap();
    let _ = n;
    for p in &people { for ph in &p.phones { crm_core::normalize::phone(ph, None).unwrap(); } }
    println!("phones {:?}", t.elapsed());
    let t = Instant::now();
    for p in &people { for e in &p.emails { crm_core::normalize::email(e).unwrap(); } }
    println!("emails {:?}", t.elapsed());
    let t = Instant::now();
    crm.import_customers(people, &Default::default(), None).unwrap();
    println!("import people {:?}", t.elapsed());
    let t = Instant::now();
    let inter: Vec<_> = g.interactions().collect();
    println!("gen interactions {} {:?}", inter.len(), t.elapsed());
    let t = Instant::now();
    crm.import_interactions(inter, &Default::default(), None).unwrap();
    println!("import interactions {:?}", t.elapsed());
}
