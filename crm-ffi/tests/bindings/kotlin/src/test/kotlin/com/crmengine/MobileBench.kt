package com.crmengine

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test

/**
 * The Kotlin side of `scripts/bench-mobile.sh`: the calls `examples/bench_mobile.rs`
 * times in Rust, through the binding (JNA, the generated converters, crm-ffi),
 * on the same file, with the Rust figures of the same run passed in as
 * system properties (`crm.bench.rust.*`, nanoseconds). Tagged `bench`, which
 * the normal test run excludes.
 */
@Tag("bench")
class MobileBench {
    private fun median(xs: List<Long>) = xs.sorted()[xs.size / 2]

    /** Nanoseconds per call: the median over [rounds] timed loops of [perRound] calls, after [warmup] loops. */
    private inline fun perCall(rounds: Int, perRound: Int, warmup: Int = 3, call: (Int) -> Unit): Long {
        repeat(warmup) { repeat(perRound) { call(it) } }
        val times = (1..rounds).map {
            val started = System.nanoTime()
            for (i in 0 until perRound) call(i)
            (System.nanoTime() - started) / perRound
        }
        return median(times)
    }

    private fun rust(key: String): Long? = System.getProperty("crm.bench.rust.$key")?.takeIf { it.isNotBlank() }?.toLong()

    private fun row(what: String, kotlinNs: Long, key: String, unit: String) {
        val scale = if (unit == "ms") 1e6 else 1e3
        val rustNs = rust(key)
        val k = "%.2f %s".format(kotlinNs / scale, unit)
        if (rustNs == null) {
            println("| $what | $k | — | — | — |")
        } else {
            val r = "%.2f %s".format(rustNs / scale, unit)
            val overheadUs = "%+.1f µs".format((kotlinNs - rustNs) / 1e3)
            println("| $what | $k | $r | %.2f | $overheadUs |".format(kotlinNs.toDouble() / rustNs))
        }
        println("BENCH kotlin.${key}_ns=$kotlinNs")
    }

    @Test
    fun `the binding's per-call time against Rust`() {
        val path = System.getProperty("crm.bench.file")
        require(!path.isNullOrBlank()) { "pass -Dcrm.bench.file=<a file made by examples/bench_mobile.rs>" }

        // Open: a new handle each time, as in Rust; the first page on it.
        val opens = mutableListOf<Long>()
        val firstPages = mutableListOf<Long>()
        repeat(25) { n ->
            val started = System.nanoTime()
            val crm = Crm.open(path)
            val opened = System.nanoTime()
            val page = crm.listCustomerCards(ListCustomers(sort = CustomerSort.NAME, limit = 50u))
            val paged = System.nanoTime()
            assertEquals(50, page.items.size)
            crm.close()
            if (n >= 5) { // the first few load classes and warm the JIT
                opens += opened - started
                firstPages += paged - opened
            }
        }

        Crm.open(path).use { crm ->
            val ids = crm.listCustomers(ListCustomers(limit = 1_000u)).items.map { it.id }
            val query = ListCustomers(sort = CustomerSort.NAME, limit = 50u)
            val cards = perCall(5, 200) { crm.listCustomerCards(query) }
            val get = perCall(5, 5_000) { crm.getCustomer(ids[it % ids.size]) }
            val count = perCall(5, 200) { crm.countCustomers() }
            val bare = perCall(5, 20_000) { schemaVersion() }

            println("| call | Kotlin (JVM, JNA) | Rust (same run) | Kotlin / Rust | overhead per call |")
            println("|---|---|---|---|---|")
            row("open the file (new handle; median of 20)", median(opens), "open", "ms")
            row("first page of 50 cards by name on that new handle (median of 20)", median(firstPages), "first_page", "ms")
            row("the same page again, warm", cards, "cards", "ms")
            row("getCustomer by id", get, "get_customer", "µs")
            row("countCustomers", count, "count_customers", "µs")
            println("| schemaVersion() (no database: the bare cost of a call) | %.2f µs | — | — | — |".format(bare / 1e3))
            println("BENCH kotlin.schema_version_ns=$bare")
        }
    }
}
