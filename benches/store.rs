//! Point-query latencies of the library next to the same query written by
//! hand against the same SQLite file, in one criterion group each, so the
//! report shows both side by side.
//!
//! ```sh
//! cargo bench -p crm-core --bench store                      # 20,000 customers
//! CRM_BENCH_CUSTOMERS=1000000 cargo bench -p crm-core --bench store
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use crm_core::synth::{SynthConfig, populate};
use crm_core::{Crm, CustomerId, TimelineQuery};
use rusqlite::{Connection, OpenFlags};

struct Fixture {
    _dir: tempfile::TempDir,
    crm: Crm,
    raw: Connection,
    ids: Vec<CustomerId>,
}

fn fixture() -> Fixture {
    let customers = std::env::var("CRM_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.crm");
    let crm = Crm::open(&path).expect("open");
    populate(
        &crm,
        &SynthConfig {
            customers,
            ..SynthConfig::default()
        },
        None,
    )
    .expect("populate");
    let raw = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("raw connection");
    let ids = {
        let mut stmt = raw
            .prepare("SELECT id FROM customers WHERE kind = 'person' AND rowid % 101 = 0")
            .expect("prepare");
        stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("query")
            .map(|b| {
                let hex: String = b.expect("row").iter().map(|x| format!("{x:02x}")).collect();
                hex.parse().expect("id")
            })
            .collect()
    };
    Fixture {
        _dir: dir,
        crm,
        raw,
        ids,
    }
}

fn point_queries(c: &mut Criterion) {
    let f = fixture();
    let n = f.ids.len();

    let mut group = c.benchmark_group("get customer by id");
    let mut k = 0;
    group.bench_function("crm", |b| {
        b.iter(|| {
            k = (k + 1) % n;
            f.crm.get_customer(f.ids[k]).expect("get")
        })
    });
    group.bench_function("hand-written SQL", |b| {
        let mut stmt = f
            .raw
            .prepare("SELECT * FROM customers WHERE id = ?")
            .expect("prepare");
        b.iter(|| {
            k = (k + 1) % n;
            stmt.query_row([&f.ids[k].as_bytes()[..]], |r| r.get::<_, String>("name"))
                .expect("row")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("timeline, 50 latest");
    group.bench_function("crm", |b| {
        b.iter(|| {
            k = (k + 1) % n;
            f.crm
                .timeline(f.ids[k], &TimelineQuery::default())
                .expect("timeline")
        })
    });
    group.bench_function("hand-written SQL", |b| {
        let mut stmt = f
            .raw
            .prepare(
                "SELECT i.* FROM interactions i WHERE i.customer_rowid = (SELECT rowid FROM customers WHERE id = ?) \
                 ORDER BY occurred_at DESC, rowid DESC LIMIT 51",
            )
            .expect("prepare");
        b.iter(|| {
            k = (k + 1) % n;
            stmt.query_map([&f.ids[k].as_bytes()[..]], |r| r.get::<_, i64>("occurred_at")).expect("query").count()
        })
    });
    group.finish();

    let words = [
        "novak", "muller", "smith", "garcia", "blue", "ana", "luka", "rossi",
    ];
    let mut group = c.benchmark_group("search, top 20");
    group.bench_function("crm", |b| {
        b.iter(|| {
            k = (k + 1) % words.len();
            f.crm.search(words[k], 20).expect("search")
        })
    });
    group.bench_function("hand-written SQL", |b| {
        let mut stmt = f
            .raw
            .prepare(
                "SELECT c.* FROM customer_search JOIN customers c ON c.rowid = customer_search.rowid \
                 WHERE customer_search MATCH ? ORDER BY rank LIMIT 20",
            )
            .expect("prepare");
        b.iter(|| {
            k = (k + 1) % words.len();
            stmt.query_map([format!("\"{}\"*", words[k])], |r| r.get::<_, String>("name")).expect("query").count()
        })
    });
    group.finish();
}

criterion_group!(benches, point_queries);
criterion_main!(benches);
