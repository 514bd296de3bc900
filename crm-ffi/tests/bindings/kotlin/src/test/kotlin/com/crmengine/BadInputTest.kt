package com.crmengine

import java.io.RandomAccessFile
import java.nio.charset.CharacterCodingException
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

/**
 * What an app can throw at the binding by mistake: nulls and empty values,
 * broken UTF-16, huge strings, a closed handle, a file locked by another
 * process, a damaged or foreign file. Each gives a typed error and leaves the
 * database as it was.
 */
class BadInputTest {
    @TempDir
    lateinit var dir: Path

    private fun path(name: String) = dir.resolve(name).toString()

    /** Runs a Python 3 script (its sqlite3 module is a second, independent SQLite). */
    private fun python(script: String, vararg args: String): Process =
        ProcessBuilder(listOf("python3", "-c", script.trimIndent()) + args).redirectErrorStream(true).start()

    private fun pythonOutput(script: String, vararg args: String): String {
        val p = python(script, *args)
        val out = p.inputStream.bufferedReader().readText().trim()
        assertTrue(p.waitFor(60, TimeUnit.SECONDS))
        assertEquals(0, p.exitValue(), out)
        return out
    }

    private fun integrityCheck(path: String) = pythonOutput(
        """
        import sqlite3, sys
        print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])
        """,
        path,
    )

    // ----- null-ish and empty values ----------------------------------------------

    @Test
    fun `nulls take the defaults and blank optional values are absent`() = Crm.openInMemory().use { crm ->
        val c = crm.createCustomer(NewCustomer(name = "Bare", owner = null, locale = null, externalId = " ", source = ""))
        assertNull(c.externalId)
        assertNull(c.source)
        val i = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, channel = "", metadata = "", currency = " "))
        assertNull(i.channel)
        assertNull(i.metadata)
        assertNull(i.currency)
        // An empty patch changes nothing and logs nothing.
        val history = crm.customerHistory(c.id).size
        assertEquals(c, crm.updateCustomer(c.id, CustomerPatch()))
        assertEquals(history, crm.customerHistory(c.id).size)
        assertNull(crm.updateCustomer(c.id, CustomerPatch(owner = "")).owner)
        assertEquals(ImportReport(0UL, 0UL, 0UL, 0UL, emptyList()), crm.importCustomers(emptyList()))
        assertEquals(1, crm.listCustomerCards(ListCustomers(sort = null, limit = null, cursor = null)).items.size)
        assertNull(crm.findCustomerByExternalId(""))
        assertNull(crm.consent(c.id, "newsletter", channel = null))
    }

    @Test
    fun `an empty value where one is required names the field`() = Crm.openInMemory().use { crm ->
        fun field(call: () -> Unit) = assertThrows<CrmException.Validation> { call() }.field
        assertEquals("name", field { crm.createCustomer(NewCustomer()) })
        assertEquals("name", field { crm.createCustomer(NewCustomer(name = "  ")) })
        assertEquals("emails[0]", field { crm.createCustomer(NewCustomer(name = "A", emails = listOf(""))) })
        assertEquals("tags[1]", field { crm.createCustomer(NewCustomer(name = "A", tags = listOf("ok", ""))) })
        assertEquals("phones[0]", field { crm.createCustomer(NewCustomer(name = "A", phones = listOf(""))) })
        assertEquals("birth_date", field { crm.createCustomer(NewCustomer(name = "A", birthDate = "")) })
        assertEquals("organization_id", field { crm.createCustomer(NewCustomer(name = "A", organizationId = "")) })
        assertEquals("customer_id", field { crm.getCustomer("") })
        assertEquals("customer_id", field { crm.timeline("") })
        assertEquals("cursor", field { crm.listCustomerCards(ListCustomers(cursor = "")) })
        assertEquals("email", field { crm.findCustomerByEmail("") })
        assertEquals("customer_email", field { crm.logInteraction(NewInteraction(CustomerRef.Email(""), InteractionKind.Note)) })
        assertEquals("kind", field { crm.logInteraction(NewInteraction(CustomerRef.Email("a@example.com"), InteractionKind.Custom(""))) })
        assertEquals("query", field { crm.search(" ", 10u) })
        assertEquals("name", field { crm.createSegment("") })
        // Recording consent takes a blank channel as none; looking it up
        // does not (crm-core's rule, the same in Rust and Python).
        val c = crm.createCustomer(NewCustomer(name = "C"))
        assertEquals(null, crm.recordConsent(c.id, NewConsent("newsletter", ConsentStatus.GRANTED, channel = "")).channel)
        assertEquals("channel", field { crm.consent(c.id, "newsletter", channel = "") })
        assertEquals("purpose", field { crm.hasConsent(c.id, "", null) })
        crm.deleteCustomer(c.id)
        assertEquals(1, assertThrows<CrmException.Parse> { crm.countMatching("") }.column.toInt())
        assertEquals(0UL, crm.countCustomers())
    }

    // ----- broken UTF-16 ------------------------------------------------------------

    @Test
    fun `a lone surrogate anywhere in a call is refused in Kotlin and nothing is written`() = Crm.openInMemory().use { crm ->
        val recorder = mutableListOf<Change>()
        crm.addChangeListener(object : ChangeListener {
            override fun onChanges(changes: List<Change>) { recorder += changes }
        })
        val high = "\uD800"
        val low = "\uDFFF"
        val calls: List<() -> Unit> = listOf(
            { crm.createCustomer(NewCustomer(name = "bad $high")) },
            { crm.createCustomer(NewCustomer(name = "ok", tags = listOf("fine", "bad$low"))) },
            { crm.createCustomer(NewCustomer(name = "ok", attributes = mapOf("nick" to AttributeValue.Text("x$high")))) },
            { crm.createCustomer(NewCustomer(name = "ok", attributes = mapOf("k$low" to AttributeValue.Text("x")))) },
            { crm.createCustomer(NewCustomer(name = "ok", addresses = listOf(Address(city = "Lj$low")))) },
            { crm.countMatching("name = \"$high\"") },
            { crm.listCustomerCards(ListCustomers(cursor = low)) },
            { crm.search("ana$high", 5u) },
            // In a list import the whole call is refused before row 1 is read,
            // whatever the mode.
            {
                crm.importCustomers(
                    listOf(NewCustomer(name = "first"), NewCustomer(name = "second $low"), NewCustomer(name = "third")),
                    ImportOptions(mode = ImportMode.SKIP_INVALID),
                )
            },
        )
        for (call in calls) {
            assertThrows<CharacterCodingException> { call() }
        }
        assertEquals(0UL, crm.countCustomers())
        assertTrue(recorder.isEmpty())
        // A proper surrogate pair (an emoji) is fine, and so is the library.
        assertEquals("Ana \uD83D\uDE00", crm.createCustomer(NewCustomer(name = "Ana \uD83D\uDE00")).name)
        assertEquals(1, recorder.size)
    }

    // ----- huge strings ---------------------------------------------------------------

    @Test
    fun `a 50 MB string is a validation error and not a crash`() {
        val file = path("huge.crm")
        Crm.open(file).use { crm ->
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val huge = "x".repeat(50_000_000)
            fun field(call: () -> Unit) = assertThrows<CrmException.Validation> { call() }.field
            assertEquals("name", field { crm.createCustomer(NewCustomer(name = huge)) })
            assertEquals("emails[0]", field { crm.createCustomer(NewCustomer(name = "B", emails = listOf(huge))) })
            assertEquals("body", field { crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Note, body = huge)) })
            assertEquals("customer_id", field { crm.getCustomer(huge) })
            assertEquals("cursor", field { crm.listCustomerCards(ListCustomers(cursor = huge)) })
            assertThrows<CrmException.Parse> { crm.countMatching(huge) }
            assertEquals(1UL, crm.countCustomers())
            assertEquals(0UL, crm.countInteractions())
        }
        assertEquals("ok", integrityCheck(file))
        assertTrue(Files.size(Path.of(file)) < 5_000_000)
    }

    // ----- closed handles ---------------------------------------------------------------

    @Test
    fun `every call on a closed database throws Closed and the file reopens intact`() {
        val file = path("closed.crm")
        val crm = Crm.open(file)
        val ana = crm.createCustomer(NewCustomer(name = "Ana", emails = listOf("ana@example.com")))
        val asMaja = crm.withActor("maja")
        crm.closeDatabase()
        crm.closeDatabase() // twice is fine
        val calls: List<() -> Unit> = listOf(
            { crm.countCustomers() },
            { crm.getCustomer(ana.id) },
            { crm.listCustomerCards() },
            { crm.listCustomers() },
            { crm.search("ana", 5u) },
            { crm.timeline(ana.id) },
            { crm.createCustomer(NewCustomer(name = "B")) },
            { asMaja.updateCustomer(ana.id, CustomerPatch(owner = "maja")) },
            { crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Note)) },
            { crm.recordConsent(ana.id, NewConsent("newsletter", ConsentStatus.GRANTED)) },
            { crm.importCustomers(listOf(NewCustomer(name = "C"))) },
            { crm.countMatching("name = \"Ana\"") },
            { crm.createSegment("s") },
            { crm.changesSince(0L, 10u) },
            { crm.addChangeListener(object : ChangeListener { override fun onChanges(changes: List<Change>) {} }) },
            { asMaja.withActor("luka").countCustomers() },
        )
        for (call in calls) {
            assertThrows<CrmException.Closed> { call() }
        }
        // Releasing the Kotlin object and then using it is a programming
        // error caught by the generated code; it never reaches Rust.
        crm.close()
        assertThrows<IllegalStateException> { crm.countCustomers() }
        asMaja.close()
        Crm.open(file).use { again ->
            assertEquals("Ana", again.getCustomer(ana.id).name)
            assertEquals(1UL, again.countCustomers())
        }
        assertEquals("ok", integrityCheck(file))
    }

    // ----- a file locked by another process -------------------------------------------

    @Test
    fun `a write to a file another process holds locked is Busy after the timeout and nothing is corrupted`() {
        val file = path("locked.crm")
        Crm.open(file, OpenOptions(busyTimeoutMs = 300u)).use { crm ->
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val told = mutableListOf<Change>()
            crm.addChangeListener(object : ChangeListener {
                override fun onChanges(changes: List<Change>) { told += changes }
            })
            val holder = python(
                """
                import sqlite3, sys, time
                db = sqlite3.connect(sys.argv[1], isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                print("locked", flush=True)
                time.sleep(float(sys.argv[2]))
                db.execute("ROLLBACK")
                print("released", flush=True)
                """,
                file,
                "3",
            )
            val out = holder.inputStream.bufferedReader()
            try {
                assertEquals("locked", out.readLine())
                val started = System.nanoTime()
                assertThrows<CrmException.Busy> { crm.createCustomer(NewCustomer(name = "Bo")) }
                assertThrows<CrmException.Busy> { crm.updateCustomer(ana.id, CustomerPatch(owner = "maja")) }
                val waitedMs = (System.nanoTime() - started) / 1_000_000
                assertTrue(waitedMs >= 2 * 300 - 50, "waited only $waitedMs ms")
                // Reads go on beside the other process's lock (WAL).
                assertEquals(1UL, crm.countCustomers())
                assertEquals("Ana", crm.listCustomerCards().items.single().name)
                // So does opening the file.
                Crm.open(file, OpenOptions(busyTimeoutMs = 300u)).use { second -> assertEquals(1UL, second.countCustomers()) }
                assertEquals("released", out.readLine())
            } finally {
                holder.destroy()
                holder.waitFor(10, TimeUnit.SECONDS)
            }
            assertTrue(told.isEmpty())
            // The failed writes left nothing behind, and writing works again.
            assertEquals(null, crm.getCustomer(ana.id).owner)
            crm.createCustomer(NewCustomer(name = "Bo"))
            assertEquals(2UL, crm.countCustomers())
            assertEquals(1, told.size)
        }
        assertEquals("ok", integrityCheck(file))
    }

    // ----- damaged and foreign files -------------------------------------------------------

    @Test
    fun `a file with damaged pages is Corrupt and not a crash`() {
        val file = path("damaged.crm")
        Crm.open(file).use { crm ->
            crm.importCustomers((1..500).map { NewCustomer(name = "Customer $it", emails = listOf("c$it@example.com")) })
            crm.closeDatabase()
        }
        RandomAccessFile(file, "rw").use { f ->
            val garbage = ByteArray(4096) { (it * 31 + 7).toByte() }
            var at = 4096L * 2
            while (at < f.length()) {
                f.seek(at)
                f.write(garbage)
                at += 4096L * 3
            }
        }
        val e = assertThrows<CrmException> {
            Crm.open(file).use { crm ->
                crm.countCustomers()
                crm.listCustomerCards(ListCustomers(limit = 1000u))
                crm.search("customer", 10u)
            }
        }
        assertTrue(e is CrmException.Corrupt, e.toString())
    }

    @Test
    fun `another application's SQLite file is Corrupt and left untouched`() {
        val file = path("other-app.db")
        pythonOutput(
            """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            db.execute("INSERT INTO notes (text) VALUES ('keep me')")
            db.commit()
            """,
            file,
        )
        val before = Files.readAllBytes(Path.of(file))
        assertThrows<CrmException.Corrupt> { Crm.open(file) }
        assertTrue(before.contentEquals(Files.readAllBytes(Path.of(file))))
    }

    @Test
    fun `a damaged row is a Storage error for that row only`() {
        val file = path("bad-row.crm")
        val (ana, bo) = Crm.open(file).use { crm ->
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val bo = crm.createCustomer(NewCustomer(name = "Bo"))
            crm.closeDatabase()
            ana to bo
        }
        // Another program (or a disk error) leaves text that is not JSON where JSON belongs.
        pythonOutput(
            """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("UPDATE customers SET attributes = '{oops' WHERE name = 'Bo'")
            db.commit()
            """,
            file,
        )
        Crm.open(file).use { crm ->
            assertTrue(assertThrows<CrmException.Storage> { crm.getCustomer(bo.id) }.reason.contains("attributes"))
            assertThrows<CrmException.Storage> { crm.listCustomerCards() }
            assertEquals("Ana", crm.getCustomer(ana.id).name)
            assertEquals(2UL, crm.countCustomers())
            crm.deleteCustomer(bo.id)
            assertEquals(listOf("Ana"), crm.listCustomerCards().items.map { it.name })
        }
        assertEquals("ok", integrityCheck(file))
    }
}
