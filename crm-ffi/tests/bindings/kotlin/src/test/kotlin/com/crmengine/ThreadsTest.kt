package com.crmengine

import java.nio.file.Path
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.io.TempDir

/**
 * One handle shared by a UI thread that reads and a sync worker that writes:
 * results stay consistent and a read never waits for a write (WAL; file
 * databases).
 */
class ThreadsTest {
    @TempDir
    lateinit var dir: Path

    private fun open(name: String) = Crm.open(dir.resolve(name).toString())

    /** Every card, page by page, following the cursors. */
    private fun allCards(crm: Crm, pageSize: UInt): List<CustomerCard> {
        val cards = mutableListOf<CustomerCard>()
        var cursor: String? = null
        do {
            val page = crm.listCustomerCards(ListCustomers(limit = pageSize, cursor = cursor))
            cards += page.items
            cursor = page.nextCursor
        } while (cursor != null)
        return cards
    }

    @Test
    fun `a UI thread reads cards while a sync worker imports and writes`() = open("sync.crm").use { crm ->
        val batches = 12
        val batchSize = 200
        val failures = ConcurrentLinkedQueue<Throwable>()
        val reads = AtomicInteger()
        val done = AtomicBoolean(false)
        val worker = thread(name = "sync-worker") {
            try {
                repeat(batches) { b ->
                    // One import is one transaction: readers see all of it or none.
                    crm.importCustomers((0 until batchSize).map { NewCustomer(name = "B$b-$it", emails = listOf("b$b.$it@example.com")) })
                    val first = crm.findCustomerByEmail("b$b.0@example.com")!!
                    crm.logInteraction(NewInteraction(CustomerRef.Id(first.id), InteractionKind.Call, subject = "batch $b"))
                }
            } catch (t: Throwable) {
                failures.add(t)
            } finally {
                done.set(true)
            }
        }
        val ui = thread(name = "ui") {
            try {
                var last = 0UL
                while (!done.get()) {
                    val count = crm.countCustomers()
                    if (count < last) throw AssertionError("count went back from $last to $count")
                    if (count % batchSize.toULong() != 0UL) throw AssertionError("saw half an import: $count")
                    last = count
                    val page = crm.listCustomerCards(ListCustomers(sort = CustomerSort.NAME, limit = 50u))
                    // Read after the count, so it sees at least as many.
                    if (count >= 50UL && page.items.size != 50) {
                        throw AssertionError("a page of ${page.items.size} cards for $count customers")
                    }
                    reads.incrementAndGet()
                }
            } catch (t: Throwable) {
                failures.add(t)
            }
        }
        worker.join()
        ui.join()
        assertTrue(failures.isEmpty(), failures.joinToString { it.toString() })
        assertTrue(reads.get() > 0)
        val total = (batches * batchSize).toULong()
        assertEquals(total, crm.countCustomers())
        val cards = allCards(crm, 500u)
        assertEquals(total.toInt(), cards.map { it.id }.toSet().size)
        assertEquals(batches, cards.count { it.latestInteraction != null })
        assertEquals((0 until batches).map { "batch $it" }.toSet(), cards.mapNotNull { it.latestInteraction?.subject }.toSet())
    }

    @Test
    fun `reads complete while a long import holds the write lock and a second write waits for it`() = open("long.crm").use { crm ->
        crm.importCustomers((1..100).map { NewCustomer(name = "Existing $it") })
        val inImport = CountDownLatch(1)
        val release = CountDownLatch(1)
        // The import's progress listener runs inside its write transaction;
        // holding it there makes "a long write" deterministic.
        val holdTheWrite = object : ImportProgressListener {
            override fun onProgress(progress: ImportProgress) {
                if (inImport.count > 0L) {
                    inImport.countDown()
                    release.await(60, TimeUnit.SECONDS)
                }
            }
        }
        val importer = thread(name = "importer") {
            crm.importCustomers((1..2_000).map { NewCustomer(name = "Imported $it") }, ImportOptions(progressEvery = 500UL), holdTheWrite)
        }
        try {
            assertTrue(inImport.await(60, TimeUnit.SECONDS))
            // The UI reads the last committed state, without waiting.
            val started = System.nanoTime()
            repeat(20) {
                assertEquals(100UL, crm.countCustomers())
                assertEquals(50, crm.listCustomerCards().items.size)
                assertEquals(5, crm.search("existing", 5u).size)
            }
            val readMillis = (System.nanoTime() - started) / 1_000_000
            assertTrue(importer.isAlive)
            // A second write waits: SQLite has one writer.
            val written = CountDownLatch(1)
            val writer = thread(name = "second-writer") {
                crm.createCustomer(NewCustomer(name = "After the import"))
                written.countDown()
            }
            assertFalse(written.await(300, TimeUnit.MILLISECONDS))
            release.countDown()
            assertTrue(written.await(60, TimeUnit.SECONDS))
            writer.join()
            importer.join()
            println("60 reads during a held import took $readMillis ms")
        } finally {
            release.countDown()
        }
        assertEquals(2_101UL, crm.countCustomers())
    }

    @Test
    fun `many threads calling every kind of read and write on one handle`() = open("many.crm").use { crm ->
        val seed = crm.createCustomer(NewCustomer(name = "Seed", emails = listOf("seed@example.com")))
        val failures = ConcurrentLinkedQueue<Throwable>()
        val threads = (1..6).map { t ->
            thread(name = "t$t") {
                try {
                    repeat(40) { n ->
                        when ((t + n) % 6) {
                            0 -> crm.createCustomer(NewCustomer(name = "T$t-$n"))
                            1 -> crm.logInteraction(NewInteraction(CustomerRef.Id(seed.id), InteractionKind.Note, subject = "t$t n$n"))
                            2 -> crm.listCustomerCards(ListCustomers(limit = 20u))
                            3 -> crm.getCustomer(seed.id)
                            4 -> crm.timeline(seed.id, TimelineQuery(limit = 10u))
                            else -> crm.search("seed", 5u)
                        }
                    }
                } catch (t: Throwable) {
                    failures.add(t)
                }
            }
        }
        threads.forEach { it.join() }
        assertTrue(failures.isEmpty(), failures.joinToString { it.toString() })
        assertEquals(41UL, crm.countCustomers())
        assertEquals(40UL, crm.countInteractions())
        val seedCard = allCards(crm, 100u).single { it.id == seed.id }
        assertEquals(crm.timeline(seed.id, TimelineQuery(limit = 1u)).items.single().id, seedCard.latestInteraction!!.id)
        assertNull(allCards(crm, 100u).first { it.id != seed.id }.latestInteraction)
    }
}
