from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import crm


def test_threads_read_while_one_writes_on_a_file_database(file_db: crm.Crm) -> None:
    for i in range(50):
        file_db.create_customer(name=f"Seed {i}")
    stop = threading.Event()

    def write() -> int:
        written = 0
        for i in range(200):
            file_db.create_customer(name=f"New {i}", emails=[f"new{i}@example.com"])
            written += 1
        stop.set()
        return written

    def read() -> int:
        reads = 0
        last = 0
        while not stop.is_set() or reads < 5:
            n = file_db.count_customers()
            assert n >= last  # committed writes never disappear
            last = n
            page = file_db.list_customers(limit=10)
            assert len(page["items"]) == 10
            assert file_db.search("seed", limit=5)
            reads += 1
        return reads

    with ThreadPoolExecutor(max_workers=5) as pool:
        writer = pool.submit(write)
        readers = [pool.submit(read) for _ in range(4)]
        assert writer.result(timeout=60) == 200
        assert all(r.result(timeout=60) >= 5 for r in readers)
    assert file_db.count_customers() == 250


def test_one_handle_serves_many_writer_threads(db_path: Path) -> None:
    with crm.open(db_path) as db:

        def work(t: int) -> list[str]:
            as_thread = db.with_actor(f"thread-{t}")
            return [as_thread.create_customer(name=f"T{t} C{i}")["id"] for i in range(25)]

        with ThreadPoolExecutor(max_workers=4) as pool:
            ids = [i for batch in pool.map(work, range(4)) for i in batch]
        assert len(set(ids)) == 100
        assert db.count_customers() == 100
        assert {c["actor"] for c in db.changes_since(limit=1000)} == {f"thread-{t}" for t in range(4)}


def test_storage_work_releases_the_gil(file_db: crm.Crm) -> None:
    # While one thread runs a long import, another thread keeps running
    # Python code: the import doesn't hold the GIL.
    rows = [{"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(20_000)]
    ticks = 0
    done = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0)

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        started = time.perf_counter()
        file_db.import_customers(iter(rows))
        elapsed = time.perf_counter() - started
    finally:
        done.set()
        ticker.join()
    assert file_db.count_customers() == 20_000
    assert ticks > 10, (ticks, elapsed)


def test_iterators_can_be_shared_between_threads(db: crm.Crm) -> None:
    ids = {db.create_customer(name=f"C{i}")["id"] for i in range(300)}
    it = db.iter_customers(page_size=7)

    def drain() -> list[str]:
        return [c["id"] for c in it]

    with ThreadPoolExecutor(max_workers=3) as pool:
        parts = list(pool.map(lambda _: drain(), range(3)))
    seen = [i for part in parts for i in part]
    assert len(seen) == len(set(seen)) == 300
    assert set(seen) == ids
