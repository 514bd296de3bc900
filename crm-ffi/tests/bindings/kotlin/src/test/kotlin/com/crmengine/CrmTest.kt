package com.crmengine

import java.io.RandomAccessFile
import java.nio.charset.CharacterCodingException
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import java.util.UUID
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

/** Tests of the Kotlin binding: conversions, errors, threads, callbacks, files. */
class CrmTest {
    @TempDir
    lateinit var dir: Path

    private fun memory(): Crm = Crm.openInMemory()

    private fun ana() = NewCustomer(
        firstName = "Ana",
        lastName = "Novak",
        emails = listOf("Ana@Example.com"),
    )

    private fun file(name: String, text: String): String {
        val path = dir.resolve(name)
        Files.writeString(path, text)
        return path.toString()
    }

    // ----- conversions ---------------------------------------------------------

    @Test
    fun `the README example runs`() {
        Crm.openInMemory().use { crm ->            // or Crm.open(path)
            val ana = crm.createCustomer(NewCustomer(firstName = "Ana", lastName = "Novak", emails = listOf("Ana@Example.com")))
            crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Purchase, amountMinor = 12_990L, currency = "EUR"))
            try {
                crm.createCustomer(NewCustomer(name = "Bo", emails = listOf("not an email")))
            } catch (e: CrmException.Validation) {
                check(e.field == "emails[0]")
            }
            assertEquals(1UL, crm.countInteractions())
        }
    }

    @Test
    fun `a created customer comes back with every field converted`() = memory().use { crm ->
        val org = crm.createCustomer(NewCustomer(kind = CustomerKind.ORGANIZATION, name = "Acme d.o.o."))
        val before = Instant.now().minusSeconds(5)
        val c = crm.createCustomer(
            NewCustomer(
                kind = CustomerKind.PERSON,
                externalId = "X-1",
                firstName = "Ana",
                lastName = "Novak",
                organizationId = org.id,
                emails = listOf("Ana@Example.com", "ana.work@example.com"),
                phones = listOf("+386 40 123 456"),
                addresses = listOf(Address(label = "home", line1 = "Trg 1", city = "Ljubljana", country = "si")),
                birthDate = "1990-02-28",
                locale = "sl-SI",
                country = "SI",
                tags = listOf("VIP", "newsletter"),
                attributes = mapOf(
                    "plan" to AttributeValue.Text("pro"),
                    "seats" to AttributeValue.Number(3.5),
                    "trial" to AttributeValue.Bool(true),
                    "renews" to AttributeValue.Date("2025-01-31"),
                ),
                lifecycleStage = "lead",
                owner = "maja",
                source = "app",
            ),
        )
        assertEquals(36, c.id.length)
        assertEquals(CustomerKind.PERSON, c.kind)
        assertEquals("X-1", c.externalId)
        assertEquals("Ana Novak", c.name)
        assertEquals(org.id, c.organizationId)
        assertEquals(listOf("ana@example.com", "ana.work@example.com"), c.emails)
        assertEquals(listOf("+38640123456"), c.phones)
        assertEquals("Ljubljana", c.addresses.single().city)
        assertEquals("SI", c.addresses.single().country)
        assertNull(c.addresses.single().line2)
        assertEquals("1990-02-28", c.birthDate)
        assertEquals(listOf("newsletter", "vip"), c.tags)
        assertEquals(AttributeValue.Text("pro"), c.attributes["plan"])
        assertEquals(AttributeValue.Number(3.5), c.attributes["seats"])
        assertEquals(AttributeValue.Bool(true), c.attributes["trial"])
        assertEquals(AttributeValue.Date("2025-01-31"), c.attributes["renews"])
        assertEquals("lead", c.lifecycleStage)
        assertTrue(c.createdAt.isAfter(before) && c.createdAt.isBefore(Instant.now().plusSeconds(5)))
        assertEquals(c.createdAt, c.updatedAt)
        val stored = crm.getCustomer(c.id)
        assertEquals(c.copy(createdAt = stored.createdAt, updatedAt = stored.updatedAt), stored)
    }

    @Test
    fun `optional fields left out come back as null or empty`() = memory().use { crm ->
        val c = crm.createCustomer(NewCustomer(name = "Bare"))
        assertEquals(CustomerKind.PERSON, c.kind)
        assertNull(c.externalId)
        assertNull(c.firstName)
        assertNull(c.birthDate)
        assertNull(c.organizationId)
        assertTrue(c.emails.isEmpty() && c.tags.isEmpty() && c.attributes.isEmpty())
        assertEquals("subscriber", c.lifecycleStage)
        assertNull(crm.findCustomerByEmail("nobody@example.com"))
        assertNull(crm.findCustomerByExternalId("none"))
    }

    @Test
    fun `instants round trip to the microsecond including before 1970`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        for (at in listOf(Instant.parse("2024-05-01T10:00:00.123456Z"), Instant.parse("1969-07-20T20:17:40.5Z"))) {
            val logged = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, occurredAt = at))
            assertEquals(at, logged.occurredAt)
            assertEquals(at, crm.getInteraction(logged.id).occurredAt)
        }
    }

    @Test
    fun `an instant outside the supported range is a validation error`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        val e = assertThrows<CrmException.Validation> {
            crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, occurredAt = Instant.MAX))
        }
        assertEquals("occurred_at", e.field)
    }

    @Test
    fun `interaction kinds directions and money round trip`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        val purchase = crm.logInteraction(
            NewInteraction(
                customer = CustomerRef.Email("ANA@example.com"),
                kind = InteractionKind.Purchase,
                direction = Direction.INBOUND,
                channel = "Web",
                amountMinor = 12_990L,
                currency = "eur",
                product = "SKU-1",
                quantity = 2L,
                score = 9,
                metadata = """{"order": "A-1", "lines": [1, 2]}""",
            ),
        )
        assertEquals(InteractionKind.Purchase, purchase.kind)
        assertEquals(Direction.INBOUND, purchase.direction)
        assertEquals(c.id, purchase.customerId)
        assertEquals("web", purchase.channel)
        assertEquals(12_990L, purchase.amountMinor)
        assertEquals("EUR", purchase.currency)
        assertEquals(2L, purchase.quantity)
        assertEquals(9, purchase.score)
        assertEquals("""{"lines":[1,2],"order":"A-1"}""", purchase.metadata)

        val custom = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Custom("demo_booked")))
        assertEquals(InteractionKind.Custom("demo_booked"), crm.getInteraction(custom.id).kind)
        val builtin = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Custom("Web_Visit")))
        assertEquals(InteractionKind.WebVisit, builtin.kind)
        assertNull(builtin.direction)
        assertNull(builtin.metadata)
        assertEquals(3UL, crm.countInteractions())
    }

    @Test
    fun `metadata that is not a JSON object is rejected on the metadata field`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        for (bad in listOf("{oops", "[1, 2]")) {
            val e = assertThrows<CrmException.Validation> {
                crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, metadata = bad))
            }
            assertEquals("metadata", e.field)
        }
    }

    @Test
    fun `a patch sets clears and changes attributes and leaves the rest`() = memory().use { crm ->
        val c = crm.createCustomer(
            ana().copy(locale = "sl-SI", owner = "maja", attributes = mapOf("plan" to AttributeValue.Text("pro"))),
        )
        val updated = crm.updateCustomer(
            c.id,
            CustomerPatch(
                lastName = "Kovač",
                tags = listOf("Gold"),
                birthDate = "1991-03-01",
                setAttributes = mapOf("seats" to AttributeValue.Number(4.0)),
                removeAttributes = listOf("plan"),
                clear = listOf("locale", "owner"),
            ),
        )
        assertEquals("Ana Kovač", updated.name)
        assertEquals(listOf("gold"), updated.tags)
        assertEquals("1991-03-01", updated.birthDate)
        assertEquals(mapOf("seats" to AttributeValue.Number(4.0)), updated.attributes)
        assertNull(updated.locale)
        assertNull(updated.owner)
        assertEquals(c.emails, updated.emails)
        val e = assertThrows<CrmException.Validation> { crm.updateCustomer(c.id, CustomerPatch(clear = listOf("name"))) }
        assertEquals("name", e.field)
    }

    @Test
    fun `upsert creates then merges by email`() = memory().use { crm ->
        val first = crm.upsertCustomer(ana().copy(tags = listOf("a")))
        assertTrue(first.created)
        val second = crm.upsertCustomer(NewCustomer(name = "Ana N.", emails = listOf("ana@example.com"), tags = listOf("b")))
        assertFalse(second.created)
        assertEquals(first.customer.id, second.customer.id)
        assertEquals(listOf("a", "b"), second.customer.tags)
        assertEquals(1UL, crm.countCustomers())
    }

    @Test
    fun `attribute definitions come back typed and a second type is a conflict`() = memory().use { crm ->
        crm.defineAttribute("renews", AttributeType.DATE)
        assertEquals(listOf(AttributeDefinition("renews", AttributeType.DATE)), crm.attributeDefinitions())
        val e = assertThrows<CrmException.Conflict> { crm.defineAttribute("renews", AttributeType.NUMBER) }
        assertEquals("key", e.field)
        // A text that is a date is stored as a date where the key is a date.
        val c = crm.createCustomer(NewCustomer(name = "X", attributes = mapOf("renews" to AttributeValue.Text("2025-02-01"))))
        assertEquals(AttributeValue.Date("2025-02-01"), c.attributes["renews"])
    }

    @Test
    fun `consent is recorded answered and listed newest first`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        assertFalse(crm.hasConsent(c.id, "newsletter", "email"))
        val at = Instant.parse("2024-01-01T00:00:00Z")
        val granted = crm.recordConsent(
            c.id,
            NewConsent("newsletter", ConsentStatus.GRANTED, legalBasis = LegalBasis.CONSENT, proof = "form v3", recordedAt = at),
        )
        assertEquals(at, granted.recordedAt)
        assertNull(granted.channel)
        assertEquals(LegalBasis.CONSENT, granted.legalBasis)
        assertTrue(crm.hasConsent(c.id, "newsletter", "email"))
        crm.recordConsent(c.id, NewConsent("newsletter", ConsentStatus.WITHDRAWN, channel = "email"))
        assertFalse(crm.hasConsent(c.id, "newsletter", "email"))
        assertEquals(ConsentStatus.WITHDRAWN, crm.consent(c.id, "newsletter", "email")?.status)
        assertEquals(ConsentStatus.GRANTED, crm.consent(c.id, "newsletter")?.status)
        assertEquals(
            listOf(ConsentStatus.WITHDRAWN, ConsentStatus.GRANTED),
            crm.consentHistory(c.id).map { it.status },
        )
    }

    @Test
    fun `search and the change log see what was written and by whom`() = memory().use { crm ->
        val asMaja = crm.withActor("maja", "mobile-app")
        val c = asMaja.createCustomer(ana())
        asMaja.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Ticket, subject = "Broken zipper"))
        val byName = crm.search("novak", 10u)
        assertEquals(c.id, byName.single().customer.id)
        assertEquals(SearchMatch.Customer, byName.single().matched)
        val bySubject = crm.search("zipper", 10u).single()
        assertTrue(bySubject.matched is SearchMatch.Interaction)
        assertEquals("Broken zipper", (bySubject.matched as SearchMatch.Interaction).subject)

        crm.updateCustomer(c.id, CustomerPatch(owner = "luka"))
        val history = crm.customerHistory(c.id)
        assertEquals(listOf(ChangeOp.CREATED, ChangeOp.UPDATED), history.map { it.op })
        assertEquals("maja", history[0].actor)
        assertEquals("mobile-app", history[0].source)
        assertEquals(listOf("owner"), history[1].fields)
        val feed = crm.changesSince(0L, 100u)
        assertEquals(listOf(EntityKind.CUSTOMER, EntityKind.INTERACTION, EntityKind.CUSTOMER), feed.map { it.entity })
        assertTrue(feed.zipWithNext().all { (a, b) -> a.seq < b.seq })
        assertTrue(crm.changesSince(feed.last().seq, 100u).isEmpty())
    }

    @Test
    fun `open options set the default phone region and a bad region is a validation error`() {
        Crm.openInMemory(OpenOptions(defaultRegion = "SI")).use { crm ->
            assertEquals(listOf("+38640123456"), crm.createCustomer(NewCustomer(name = "A", phones = listOf("040 123 456"))).phones)
        }
        val e = assertThrows<CrmException.Validation> { Crm.openInMemory(OpenOptions(defaultRegion = "XX")) }
        assertEquals("default_region", e.field)
    }

    // ----- errors ----------------------------------------------------------------

    @Test
    fun `a bad email is a validation error naming the field and not the value`() = memory().use { crm ->
        val e = assertThrows<CrmException.Validation> {
            crm.createCustomer(NewCustomer(name = "A", emails = listOf("ok@example.com", "secret-address")))
        }
        assertEquals("emails[1]", e.field)
        assertTrue(e.reason.isNotEmpty())
        assertFalse(e.message!!.contains("secret-address"))
        assertEquals(0UL, crm.countCustomers())
    }

    @Test
    fun `an unknown id is not found and a malformed id is a validation error`() = memory().use { crm ->
        val missing = assertThrows<CrmException.NotFound> { crm.getCustomer(UUID.randomUUID().toString()) }
        assertEquals("customer", missing.entity)
        assertEquals("interaction", assertThrows<CrmException.NotFound> { crm.getInteraction(UUID.randomUUID().toString()) }.entity)
        assertThrows<CrmException.NotFound> { crm.deleteCustomer(UUID.randomUUID().toString()) }
        assertEquals("customer_id", assertThrows<CrmException.Validation> { crm.getCustomer("not-an-id") }.field)
        val org = assertThrows<CrmException.Validation> { crm.createCustomer(NewCustomer(name = "A", organizationId = "nope")) }
        assertEquals("organization_id", org.field)
        assertEquals("birth_date", assertThrows<CrmException.Validation> { crm.createCustomer(NewCustomer(name = "A", birthDate = "1.1.1990")) }.field)
    }

    @Test
    fun `a second customer with the same email is a conflict`() = memory().use { crm ->
        crm.createCustomer(ana())
        val e = assertThrows<CrmException.Conflict> { crm.createCustomer(NewCustomer(name = "Other", emails = listOf("ANA@example.com"))) }
        assertTrue(e.field.startsWith("emails"), e.field)
        assertEquals(1UL, crm.countCustomers())
    }

    @Test
    fun `a closed database throws Closed on every handle`() {
        val crm = memory()
        val asMaja = crm.withActor("maja")
        crm.createCustomer(ana())
        crm.closeDatabase()
        assertThrows<CrmException.Closed> { crm.countCustomers() }
        assertThrows<CrmException.Closed> { asMaja.createCustomer(ana()) }
        crm.close()
        asMaja.close()
    }

    @Test
    fun `an invalid CSV row in all-or-nothing mode throws InvalidRow and imports nothing`() = memory().use { crm ->
        val path = file("people.csv", "name,email\nAna,ana@example.com\nBob,not-an-email\nCid,cid@example.com\n")
        val e = assertThrows<CrmException.InvalidRow> { crm.importCustomersCsv(path) }
        assertEquals(2UL, e.row)
        assertEquals("emails[0]", e.field)
        assertEquals(0UL, crm.countCustomers())
    }

    @Test
    fun `a database written by a newer version is refused and left untouched`() {
        val path = dir.resolve("newer.crm")
        Crm.open(path.toString()).use { crm ->
            crm.createCustomer(ana())
            crm.closeDatabase()
        }
        assertFalse(Files.exists(Path.of("$path-wal")) && Files.size(Path.of("$path-wal")) > 0)
        // PRAGMA user_version is the big-endian int at offset 60 of the header.
        RandomAccessFile(path.toFile(), "rw").use { it.seek(60); it.writeInt(99) }
        val bytes = Files.readAllBytes(path)
        val e = assertThrows<CrmException.IncompatibleDatabase> { Crm.open(path.toString()) }
        assertEquals(99u, e.found)
        assertEquals(schemaVersion(), e.supported)
        assertTrue(bytes.contentEquals(Files.readAllBytes(path)))
    }

    @Test
    fun `a file that is not a database is corrupt`() {
        val path = file("notes.crm", "these are my notes, not a database\n".repeat(200))
        assertThrows<CrmException.Corrupt> { Crm.open(path) }
    }

    @Test
    fun `a missing import file is an io error and an empty path a validation error`() = memory().use { crm ->
        val e = assertThrows<CrmException.Io> { crm.importCustomersCsv(dir.resolve("missing.csv").toString()) }
        assertTrue(e.reason.isNotEmpty())
        assertFalse(e.reason.contains("missing.csv"))
        assertEquals("path", assertThrows<CrmException.Validation> { Crm.open("") }.field)
    }

    @Test
    fun `a page size out of range is a validation error on limit`() = memory().use { crm ->
        assertEquals("limit", assertThrows<CrmException.Validation> { crm.listCustomers(ListCustomers(limit = 0u)) }.field)
        assertEquals("limit", assertThrows<CrmException.Validation> { crm.search("x", 10_001u) }.field)
        assertEquals("cursor", assertThrows<CrmException.Validation> { crm.listCustomers(ListCustomers(cursor = "zz")) }.field)
    }

    // ----- strings ---------------------------------------------------------------

    @Test
    fun `empty strings are absent where optional and rejected where required`() = memory().use { crm ->
        assertEquals("name", assertThrows<CrmException.Validation> { crm.createCustomer(NewCustomer(name = "")) }.field)
        val c = crm.createCustomer(NewCustomer(name = "A", owner = "", locale = "", externalId = ""))
        assertNull(c.owner)
        assertNull(c.locale)
        assertNull(c.externalId)
        val i = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, subject = "", body = ""))
        assertNull(i.subject)
        assertNull(i.body)
        assertEquals("email", assertThrows<CrmException.Validation> { crm.findCustomerByEmail("") }.field)
        assertEquals("query", assertThrows<CrmException.Validation> { crm.search("", 10u) }.field)
    }

    @Test
    fun `huge strings are checked by length and the largest allowed one round trips`() = memory().use { crm ->
        assertEquals("name", assertThrows<CrmException.Validation> { crm.createCustomer(NewCustomer(name = "x".repeat(100_000))) }.field)
        val c = crm.createCustomer(ana())
        val body = "ž".repeat(1_000_000) // 1,000,000 characters, 2 MB of UTF-8
        val i = crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, body = body))
        assertEquals(body, crm.getInteraction(i.id).body)
        val e = assertThrows<CrmException.Validation> {
            crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Note, body = body + "!"))
        }
        assertEquals("body", e.field)
    }

    @Test
    fun `non-ASCII and astral characters round trip`() = memory().use { crm ->
        val name = "Žan Ñoño 日本 \uD83C\uDF89 Ελένη"
        val c = crm.createCustomer(NewCustomer(name = name, attributes = mapOf("nick" to AttributeValue.Text("\uD83D\uDE00"))))
        assertEquals(name, crm.getCustomer(c.id).name)
        assertEquals(AttributeValue.Text("\uD83D\uDE00"), c.attributes["nick"])
        assertEquals(c.id, crm.search("Žan", 5u).single().customer.id)
    }

    @Test
    fun `a lone UTF-16 surrogate is refused before reaching Rust and the library stays usable`() = memory().use { crm ->
        assertThrows<CharacterCodingException> { crm.createCustomer(NewCustomer(name = "bad \uD800 name")) }
        assertThrows<CharacterCodingException> { crm.findCustomerByEmail("\uDC00@example.com") }
        assertEquals(0UL, crm.countCustomers())
        assertEquals("Ana Novak", crm.createCustomer(ana()).name)
    }

    // ----- threads -----------------------------------------------------------------

    @Test
    fun `a writer thread and reader threads share one file database`() {
        Crm.open(dir.resolve("shared.crm").toString()).use { crm ->
            val failures = ConcurrentLinkedQueue<Throwable>()
            val reads = AtomicInteger()
            val writes = 150
            val writer = thread(name = "writer") {
                try {
                    repeat(writes) { n ->
                        val c = crm.createCustomer(NewCustomer(name = "Customer $n", emails = listOf("c$n@example.com")))
                        if (n % 10 == 0) crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), InteractionKind.Call, subject = "call $n"))
                    }
                } catch (t: Throwable) {
                    failures.add(t)
                }
            }
            val readers = (1..3).map { r ->
                thread(name = "reader-$r") {
                    try {
                        var last = 0UL
                        do {
                            val count = crm.countCustomers()
                            if (count < last) throw AssertionError("count went back from $last to $count")
                            last = count
                            crm.listCustomers(ListCustomers(sort = CustomerSort.NAME, limit = 20u))
                            crm.search("customer", 5u)
                            reads.incrementAndGet()
                        } while (writer.isAlive)
                    } catch (t: Throwable) {
                        failures.add(t)
                    }
                }
            }
            writer.join()
            readers.forEach { it.join() }
            assertTrue(failures.isEmpty(), failures.joinToString { it.toString() })
            assertTrue(reads.get() >= 3)
            assertEquals(writes.toULong(), crm.countCustomers())
            assertEquals(15UL, crm.countInteractions())
        }
    }

    // ----- progress callback ---------------------------------------------------------

    private class Recorder : ImportProgressListener {
        val seen = CopyOnWriteArrayList<ImportProgress>()
        val threads = CopyOnWriteArrayList<Thread>()
        override fun onProgress(progress: ImportProgress) {
            seen.add(progress)
            threads.add(Thread.currentThread())
        }
    }

    @Test
    fun `the progress listener is called every N rows and at the end on the calling thread`() = memory().use { crm ->
        val recorder = Recorder()
        val people = (1..7).map { NewCustomer(name = "P$it") } + NewCustomer(name = "") + NewCustomer(name = "P9")
        val report = crm.importCustomers(
            people,
            ImportOptions(mode = ImportMode.SKIP_INVALID, progressEvery = 3UL),
            recorder,
        )
        assertEquals(ImportReport(rows = 9UL, inserted = 8UL, updated = 0UL, rejected = 1UL, errors = listOf(RowError(8UL, "name", report.errors.single().reason))), report)
        assertEquals(listOf(3UL, 6UL, 9UL, 9UL), recorder.seen.map { it.rows })
        assertEquals(ImportProgress(rows = 9UL, applied = 8UL, rejected = 1UL), recorder.seen.last())
        assertTrue(recorder.threads.all { it == Thread.currentThread() })
    }

    @Test
    fun `a listener that throws does not stop the import or break the library`() = memory().use { crm ->
        var calls = 0
        val throwing = object : ImportProgressListener {
            override fun onProgress(progress: ImportProgress) {
                calls++
                throw IllegalStateException("listener bug")
            }
        }
        val report = crm.importCustomers((1..5).map { NewCustomer(name = "P$it") }, ImportOptions(progressEvery = 1UL), throwing)
        assertEquals(5UL, report.inserted)
        assertEquals(6, calls)
        assertEquals(5UL, crm.countCustomers())
        assertEquals("Ana Novak", crm.createCustomer(ana()).name)
    }

    // ----- pagination ------------------------------------------------------------------

    @Test
    fun `listing pages through every customer with cursors in the requested order`() = memory().use { crm ->
        val names = (0 until 25).map { "Customer %02d".format(it) }
        names.shuffled(java.util.Random(7)).forEach { crm.createCustomer(NewCustomer(name = it)) }
        for (descending in listOf(false, true)) {
            val seen = mutableListOf<String>()
            var cursor: String? = null
            var pages = 0
            do {
                val page = crm.listCustomers(ListCustomers(sort = CustomerSort.NAME, descending = descending, limit = 10u, cursor = cursor))
                seen += page.items.map { it.name }
                cursor = page.nextCursor
                pages++
            } while (cursor != null)
            assertEquals(3, pages)
            assertEquals(if (descending) names.reversed() else names, seen)
        }
        assertEquals(25, crm.listCustomers().items.size)
    }

    @Test
    fun `the timeline pages newest first and filters by kind`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        val start = Instant.parse("2024-01-01T00:00:00Z")
        repeat(12) { n ->
            val kind = if (n % 2 == 0) InteractionKind.Email else InteractionKind.Call
            crm.logInteraction(NewInteraction(CustomerRef.Id(c.id), kind, occurredAt = start.plus(Duration.ofDays(n.toLong()))))
        }
        val first = crm.timeline(c.id, TimelineQuery(limit = 5u))
        assertEquals(start.plus(Duration.ofDays(11)), first.items.first().occurredAt)
        val second = crm.timeline(c.id, TimelineQuery(limit = 5u, cursor = first.nextCursor))
        val third = crm.timeline(c.id, TimelineQuery(limit = 5u, cursor = second.nextCursor))
        assertNull(third.nextCursor)
        val all = first.items + second.items + third.items
        assertEquals(12, all.map { it.id }.toSet().size)
        assertTrue(all.zipWithNext().all { (a, b) -> !a.occurredAt.isBefore(b.occurredAt) })
        val calls = crm.timeline(c.id, TimelineQuery(kind = InteractionKind.Call))
        assertEquals(6, calls.items.size)
        assertTrue(calls.items.all { it.kind == InteractionKind.Call })
        assertEquals("customer", assertThrows<CrmException.NotFound> { crm.timeline(UUID.randomUUID().toString()) }.entity)
    }

    // ----- import and export ------------------------------------------------------------

    @Test
    fun `customers exported to CSV import into another CRM unchanged`() {
        val csv = dir.resolve("customers.csv").toString()
        val original = memory().use { crm ->
            crm.createCustomer(ana().copy(tags = listOf("vip"), birthDate = "1990-02-28", attributes = mapOf("seats" to AttributeValue.Number(3.0))))
            crm.createCustomer(NewCustomer(kind = CustomerKind.ORGANIZATION, name = "Acme, \"Quoted\"\nInc.", externalId = "ORG-1"))
            assertEquals(2UL, crm.exportCustomers(csv, ExportFormat.CSV))
            crm.listCustomers().items
        }
        memory().use { copy ->
            val report = copy.importCustomersCsv(csv)
            assertEquals(2UL, report.inserted)
            val imported = copy.listCustomers().items
            fun comparable(c: Customer) = c.copy(id = "", createdAt = Instant.EPOCH, updatedAt = Instant.EPOCH)
            assertEquals(original.map(::comparable), imported.map(::comparable))
        }
    }

    @Test
    fun `interactions exported to NDJSON import back with the same values`() = memory().use { crm ->
        val c = crm.createCustomer(ana())
        crm.logInteraction(
            NewInteraction(CustomerRef.Id(c.id), InteractionKind.Purchase, amountMinor = 4_990L, currency = "EUR", subject = "Order 1", metadata = """{"a":1}""", occurredAt = Instant.parse("2024-03-01T12:00:00Z")),
        )
        val ndjson = dir.resolve("interactions.ndjson").toString()
        assertEquals(1UL, crm.exportInteractions(ndjson, ExportFormat.NDJSON))
        val listener = Recorder()
        assertEquals(1UL, crm.importInteractionsNdjson(ndjson, listener = listener).inserted)
        assertEquals(1UL, listener.seen.last().applied)
        val (a, b) = crm.timeline(c.id).items
        assertNotEquals(a.id, b.id)
        assertEquals(a.copy(id = "", createdAt = Instant.EPOCH), b.copy(id = "", createdAt = Instant.EPOCH))
    }

    @Test
    fun `a column mapping renames and ignores columns and skip-invalid reports rows`() = memory().use { crm ->
        val csv = file(
            "mapped.csv",
            "Full Name,E-mail,Notes\nAna Novak,ana@example.com,likes tea\nNo Email,broken,\n,nobody@example.com,\n",
        )
        val mapping = ColumnMapping(columns = mapOf("name" to "Full Name", "emails" to "E-mail"), ignore = listOf("Notes"))
        val report = crm.importCustomersCsv(csv, mapping, ImportOptions(mode = ImportMode.SKIP_INVALID, maxErrors = 1UL))
        assertEquals(3UL, report.rows)
        assertEquals(1UL, report.inserted)
        assertEquals(2UL, report.rejected)
        assertEquals(listOf(RowError(2UL, "emails[0]", report.errors.single().reason)), report.errors)
        val unknown = assertThrows<CrmException.Validation> { crm.importCustomersCsv(csv) }
        assertEquals("Full Name", unknown.field)
    }

    @Test
    fun `NDJSON customers and interaction records import with upsert and references`() = memory().use { crm ->
        val ndjson = file(
            "people.ndjson",
            """{"name": "Ana Novak", "email": "ana@example.com", "external_id": "A1"}""" + "\n" +
                """{"name": "Ana N.", "external_id": "A1", "tags": ["vip"]}""" + "\n",
        )
        val report = crm.importCustomersNdjson(ndjson, options = ImportOptions(upsert = true))
        assertEquals(1UL, report.inserted)
        assertEquals(1UL, report.updated)
        val ana = crm.findCustomerByExternalId("A1")!!
        assertEquals(listOf("vip"), ana.tags)
        val interactions = crm.importInteractions(
            listOf(
                NewInteraction(CustomerRef.ExternalId("A1"), InteractionKind.Meeting, occurredAt = Instant.parse("2024-02-02T09:30:00Z")),
                NewInteraction(CustomerRef.Email("ana@example.com"), InteractionKind.Note, subject = "hello"),
                NewInteraction(CustomerRef.Id(UUID.randomUUID().toString()), InteractionKind.Note),
            ),
            ImportOptions(mode = ImportMode.SKIP_INVALID),
        )
        assertEquals(2UL, interactions.inserted)
        assertEquals(3UL, interactions.errors.single().row)
        val meeting = crm.timeline(ana.id, TimelineQuery(kind = InteractionKind.Meeting)).items.single()
        assertEquals(Instant.parse("2024-02-02T09:30:00Z"), meeting.occurredAt)
        val csv = file("calls.csv", "customer_email,kind,amount,currency\nana@example.com,purchase,12.50,EUR\n")
        assertEquals(1UL, crm.importInteractionsCsv(csv).inserted)
        assertEquals(1250L, crm.timeline(ana.id, TimelineQuery(kind = InteractionKind.Purchase)).items.single().amountMinor)
    }

    @Test
    fun `a list import with a bad element in all-or-nothing mode names its row`() = memory().use { crm ->
        val e = assertThrows<CrmException.InvalidRow> {
            crm.importCustomers(listOf(ana(), NewCustomer(name = "B", birthDate = "soon")))
        }
        assertEquals(2UL, e.row)
        assertEquals("birth_date", e.field)
        assertEquals(0UL, crm.countCustomers())
        val deleted = crm.createCustomer(ana())
        crm.deleteCustomer(deleted.id)
        assertNotNull(crm.customerHistory(deleted.id).lastOrNull { it.op == ChangeOp.DELETED })
    }
}
