package com.crmengine

import com.sun.jna.Native
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import kotlin.concurrent.thread
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

/** The change listener: a Kotlin object the library calls after each committed write. */
class ChangeListenerTest {
    @TempDir
    lateinit var dir: Path

    /** Records every batch it is given, and the thread it was given on. */
    private class Recorder : ChangeListener {
        val batches = CopyOnWriteArrayList<List<Change>>()
        val threads = CopyOnWriteArrayList<Thread>()
        val changes get() = batches.flatten()
        fun seen() = changes.map { Triple(it.entity, it.entityId, it.op) }

        override fun onChanges(changes: List<Change>) {
            batches.add(changes)
            threads.add(Thread.currentThread())
        }
    }

    @Test
    fun `a listener is told the entity, id and change type of every write`() = Crm.openInMemory().use { crm ->
        val recorder = Recorder()
        crm.addChangeListener(recorder)
        val asMaja = crm.withActor("maja", "mobile-app")
        val ana = asMaja.createCustomer(NewCustomer(name = "Ana Novak", emails = listOf("ana@example.com")))
        crm.updateCustomer(ana.id, CustomerPatch(owner = "luka", tags = listOf("vip")))
        crm.updateCustomer(ana.id, CustomerPatch(owner = "luka")) // changes nothing: no one is told
        val call = crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Call))
        val consent = crm.recordConsent(ana.id, NewConsent("newsletter", ConsentStatus.GRANTED))
        crm.deleteCustomer(ana.id)

        assertEquals(
            listOf(
                Triple(EntityKind.CUSTOMER, ana.id, ChangeOp.CREATED),
                Triple(EntityKind.CUSTOMER, ana.id, ChangeOp.UPDATED),
                Triple(EntityKind.INTERACTION, call.id, ChangeOp.CREATED),
                Triple(EntityKind.CONSENT, consent.id, ChangeOp.CREATED),
                Triple(EntityKind.CUSTOMER, ana.id, ChangeOp.DELETED),
            ),
            recorder.seen(),
        )
        val changes = recorder.changes
        assertEquals(listOf("owner", "tags"), changes[1].fields.sorted())
        assertEquals("maja", changes[0].actor)
        assertEquals("mobile-app", changes[0].source)
        assertTrue(changes.zipWithNext().all { (a, b) -> a.seq < b.seq })
        // What the listener was told is what the change log holds.
        assertEquals(crm.changesSince(0L, 100u), changes)
        assertTrue(recorder.threads.all { it == Thread.currentThread() })
    }

    @Test
    fun `segment definitions and memberships are reported too`() = Crm.openInMemory().use { crm ->
        val ana = crm.createCustomer(NewCustomer(name = "Ana", country = "SI"))
        val recorder = Recorder()
        crm.addChangeListener(recorder)
        crm.createSegment("si", filter = """country = "SI"""")
        crm.materializeSegment("si")
        assertEquals(listOf(EntityKind.SEGMENT, EntityKind.SEGMENT_MEMBER), recorder.changes.map { it.entity })
        assertEquals(ana.id, recorder.changes[1].entityId)
        assertEquals(listOf("si"), recorder.changes[1].fields)
    }

    @Test
    fun `an import is reported in batches of at most 1000 after it commits`() = Crm.openInMemory().use { crm ->
        val recorder = Recorder()
        crm.addChangeListener(recorder)
        var countSeenByListener = -1L
        crm.addChangeListener(object : ChangeListener {
            override fun onChanges(changes: List<Change>) {
                if (countSeenByListener < 0) countSeenByListener = crm.countCustomers().toLong()
            }
        })
        val report = crm.importCustomers((1..2_500).map { NewCustomer(name = "P$it") })
        assertEquals(2_500UL, report.inserted)
        assertEquals(listOf(1_000, 1_000, 500), recorder.batches.map { it.size })
        assertTrue(recorder.changes.all { it.entity == EntityKind.CUSTOMER && it.op == ChangeOp.CREATED })
        assertEquals(2_500, recorder.changes.map { it.entityId }.toSet().size)
        // Called after the commit: the whole import is visible from the first batch.
        assertEquals(2_500L, countSeenByListener)
    }

    @Test
    fun `a removed listener is not called again and a second removal returns false`() = Crm.openInMemory().use { crm ->
        val (kept, removed) = Recorder() to Recorder()
        crm.addChangeListener(kept)
        val id = crm.addChangeListener(removed)
        crm.createCustomer(NewCustomer(name = "A"))
        assertTrue(crm.removeChangeListener(id))
        assertFalse(crm.removeChangeListener(id))
        assertFalse(crm.removeChangeListener(999_999UL))
        crm.createCustomer(NewCustomer(name = "B"))
        assertEquals(1, removed.changes.size)
        assertEquals(2, kept.changes.size)
    }

    @Test
    fun `a listener can unregister itself from inside its callback`() = Crm.openInMemory().use { crm ->
        var calls = 0
        var id = 0UL
        id = crm.addChangeListener(object : ChangeListener {
            override fun onChanges(changes: List<Change>) {
                calls++
                check(crm.removeChangeListener(id))
            }
        })
        crm.createCustomer(NewCustomer(name = "A"))
        crm.createCustomer(NewCustomer(name = "B"))
        assertEquals(1, calls)
    }

    @Test
    fun `listeners that throw do not break the write or the other listeners`() = Crm.openInMemory().use { crm ->
        val before = Recorder()
        val after = Recorder()
        var calls = 0
        crm.addChangeListener(before)
        for (throwable in listOf(
            IllegalStateException("listener bug"),
            CrmException.NotFound("customer"),
            AssertionError("an Error, not an Exception"),
        )) {
            crm.addChangeListener(object : ChangeListener {
                override fun onChanges(changes: List<Change>) {
                    calls++
                    throw throwable
                }
            })
        }
        crm.addChangeListener(after)
        // An Error (not an Exception) escapes the generated code; JNA hands it
        // to its callback exception handler (by default: printed to stderr).
        val escaped = CopyOnWriteArrayList<Throwable>()
        val defaultHandler = Native.getCallbackExceptionHandler()
        Native.setCallbackExceptionHandler { _, e -> escaped.add(e) }
        try {
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            crm.updateCustomer(ana.id, CustomerPatch(owner = "maja"))
            crm.importCustomers((1..3).map { NewCustomer(name = "P$it") })
            assertEquals("maja", crm.getCustomer(ana.id).owner)
        } finally {
            Native.setCallbackExceptionHandler(defaultHandler)
        }
        assertEquals(3, escaped.size)
        assertTrue(escaped.all { it is AssertionError })
        assertEquals(9, calls) // 3 writes, 3 throwing listeners
        assertEquals(5, before.changes.size)
        assertEquals(before.changes, after.changes)
        assertEquals(4UL, crm.countCustomers())
    }

    @Test
    fun `a listener may read and write the CRM it listens to`() = Crm.openInMemory().use { crm ->
        // A "follow-up" rule: every new customer gets a note on their timeline.
        crm.addChangeListener(object : ChangeListener {
            override fun onChanges(changes: List<Change>) {
                for (c in changes) {
                    if (c.entity == EntityKind.CUSTOMER && c.op == ChangeOp.CREATED) {
                        val customer = crm.getCustomer(c.entityId)
                        crm.logInteraction(NewInteraction(CustomerRef.Id(customer.id), InteractionKind.Note, subject = "welcome ${customer.name}"))
                    }
                }
            }
        })
        val recorder = Recorder()
        crm.addChangeListener(recorder)
        val ana = crm.createCustomer(NewCustomer(name = "Ana"))
        assertEquals("welcome Ana", crm.timeline(ana.id).items.single().subject)
        assertEquals(setOf(EntityKind.CUSTOMER, EntityKind.INTERACTION), recorder.changes.map { it.entity }.toSet())
    }

    @Test
    fun `each write is reported on the thread that made it`() {
        Crm.open(dir.resolve("threads.crm").toString()).use { crm ->
            val recorder = Recorder()
            crm.addChangeListener(recorder)
            val writers = (1..4).map { w ->
                thread(name = "writer-$w") { repeat(25) { crm.createCustomer(NewCustomer(name = "W$w-$it")) } }
            }
            writers.forEach { it.join() }
            assertEquals(100, recorder.changes.size)
            assertEquals(100, recorder.batches.size)
            assertEquals(writers.toSet(), recorder.threads.toSet())
            assertEquals(100UL, crm.countCustomers())
        }
    }

    @Test
    fun `a handle from withActor shares the listeners and closing the database unregisters them`() {
        val crm = Crm.openInMemory()
        val asMaja = crm.withActor("maja")
        val recorder = Recorder()
        val id = asMaja.addChangeListener(recorder)
        crm.createCustomer(NewCustomer(name = "A"))
        assertEquals(1, recorder.changes.size)
        crm.closeDatabase()
        assertFalse(asMaja.removeChangeListener(id))
        assertThrows<CrmException.Closed> { crm.addChangeListener(Recorder()) }
        crm.close()
        asMaja.close()
    }

    @Test
    fun `a listener blocked in its callback holds up only its own writer`() {
        Crm.open(dir.resolve("slow.crm").toString()).use { crm ->
            val entered = CountDownLatch(1)
            val release = CountDownLatch(1)
            val first = AtomicBoolean(true)
            crm.addChangeListener(object : ChangeListener {
                override fun onChanges(changes: List<Change>) {
                    if (first.getAndSet(false)) {
                        entered.countDown()
                        release.await(30, TimeUnit.SECONDS)
                    }
                }
            })
            val slowWriter = thread { crm.createCustomer(NewCustomer(name = "slow")) }
            assertTrue(entered.await(30, TimeUnit.SECONDS))
            // The slow writer's callback runs with no lock held: others read and write.
            assertEquals(1UL, crm.countCustomers())
            val other = thread { crm.createCustomer(NewCustomer(name = "other")) }
            other.join(30_000)
            assertFalse(other.isAlive)
            assertTrue(slowWriter.isAlive)
            release.countDown()
            slowWriter.join()
            assertEquals(2UL, crm.countCustomers())
        }
    }
}
