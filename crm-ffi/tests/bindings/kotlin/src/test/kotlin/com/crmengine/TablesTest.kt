package com.crmengine

import java.io.FileInputStream
import java.io.FileOutputStream
import java.nio.file.Files
import java.nio.file.Path
import java.time.Instant
import org.apache.arrow.memory.RootAllocator
import org.apache.arrow.vector.BigIntVector
import org.apache.arrow.vector.FieldVector
import org.apache.arrow.vector.TimeStampMicroTZVector
import org.apache.arrow.vector.VarCharVector
import org.apache.arrow.vector.VectorSchemaRoot
import org.apache.arrow.vector.ipc.ArrowFileReader
import org.apache.arrow.vector.ipc.ArrowFileWriter
import org.apache.arrow.vector.types.TimeUnit
import org.apache.arrow.vector.types.pojo.ArrowType
import org.apache.arrow.vector.types.pojo.Field
import org.apache.arrow.vector.types.pojo.Schema
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Tables as Arrow IPC files through the binding: what `exportTable` writes,
 * Arrow Java reads (schemas, values, dictionary-encoded categories, lists,
 * UTC times); files Arrow Java writes are imported with the core's
 * validation; filters, segments and time ranges restrict the rows; bad
 * input is a typed error and imports nothing.
 */
class TablesTest {
    private val dir: Path = Files.createTempDirectory("crm-tables")
    private val allocator = RootAllocator()

    @AfterEach
    fun cleanUp() {
        allocator.close()
        dir.toFile().deleteRecursively()
    }

    private val t0: Instant = Instant.parse("2025-03-01T10:00:00Z")

    /** Two customers (Ana, a VIP with an email; Bo), three interactions, one consent answer. */
    private fun store(): Pair<Crm, List<String>> {
        val crm = Crm.openInMemory()
        val ana = crm.createCustomer(NewCustomer(name = "Ana Novak", emails = listOf("Ana@Example.com"), tags = listOf("vip"), country = "si"))
        val bo = crm.createCustomer(NewCustomer(name = "Bo"))
        for ((i, who) in listOf(ana, ana, bo).withIndex()) {
            crm.logInteraction(
                NewInteraction(
                    CustomerRef.Id(who.id), InteractionKind.Purchase,
                    occurredAt = t0.plusSeconds(86_400L * i), amountMinor = 1_000L * (i + 1), currency = "EUR",
                ),
            )
        }
        crm.recordConsent(ana.id, NewConsent("newsletter", ConsentStatus.GRANTED))
        return crm to listOf(ana.id, bo.id)
    }

    /** The rows of an Arrow IPC file as column name → value (dictionary-encoded columns decoded). */
    private fun read(path: Path): List<Map<String, Any?>> {
        val rows = mutableListOf<Map<String, Any?>>()
        FileInputStream(path.toFile()).channel.use { channel ->
            ArrowFileReader(channel, allocator).use { reader ->
                val root = reader.vectorSchemaRoot
                for (block in reader.recordBlocks) {
                    reader.loadRecordBatch(block)
                    val dictionaries = reader.dictionaryVectors
                    fun cell(v: FieldVector, i: Int): Any? {
                        val encoding = v.field.dictionary ?: return v.getObject(i)
                        if (v.isNull(i)) return null
                        val index = (v.getObject(i) as Number).toInt()
                        return dictionaries.getValue(encoding.id).vector.getObject(index)?.toString()
                    }
                    for (i in 0 until root.rowCount) {
                        rows += root.fieldVectors.associate { it.name to cell(it, i) }
                    }
                }
            }
        }
        return rows
    }

    private fun columns(path: Path): List<String> = FileInputStream(path.toFile()).channel.use { channel ->
        ArrowFileReader(channel, allocator).use { it.vectorSchemaRoot.schema.fields.map(Field::getName) }
    }

    /** Writes an Arrow IPC file with Arrow Java: text columns, and optional time and integer ones. */
    private fun write(path: Path, text: Map<String, List<String?>>, times: Map<String, List<Instant>> = emptyMap(), longs: Map<String, List<Long?>> = emptyMap()) {
        val fields = text.keys.map { Field.nullable(it, ArrowType.Utf8()) } +
            times.keys.map { Field.nullable(it, ArrowType.Timestamp(TimeUnit.MICROSECOND, "UTC")) } +
            longs.keys.map { Field.nullable(it, ArrowType.Int(64, true)) }
        val n = (text.values + times.values + longs.values).first().size
        VectorSchemaRoot.create(Schema(fields), allocator).use { root ->
            root.allocateNew()
            for ((name, values) in text) {
                val v = root.getVector(name) as VarCharVector
                values.forEachIndexed { i, s -> if (s == null) v.setNull(i) else v.setSafe(i, s.toByteArray()) }
            }
            for ((name, values) in times) {
                val v = root.getVector(name) as TimeStampMicroTZVector
                values.forEachIndexed { i, t -> v.setSafe(i, t.epochSecond * 1_000_000 + t.nano / 1_000) }
            }
            for ((name, values) in longs) {
                val v = root.getVector(name) as BigIntVector
                values.forEachIndexed { i, x -> if (x == null) v.setNull(i) else v.setSafe(i, x) }
            }
            root.rowCount = n
            FileOutputStream(path.toFile()).channel.use { channel ->
                ArrowFileWriter(root, null, channel).use { w ->
                    w.start()
                    w.writeBatch()
                    w.end()
                }
            }
        }
    }

    @Test
    fun everyTableIsWrittenAsAnArrowFileThatArrowJavaReads() {
        val (crm, ids) = store()
        crm.use {
            val customers = dir.resolve("customers.arrow")
            assertEquals(2UL, crm.exportTable(Table.CUSTOMERS, customers.toString()))
            val rows = read(customers)
            assertEquals(ids, rows.map { it["id"].toString() })
            assertEquals("Ana Novak", rows[0]["name"].toString())
            assertEquals(listOf("ana@example.com"), (rows[0]["emails"] as List<*>).map { it.toString() })
            assertEquals(listOf("vip"), (rows[0]["tags"] as List<*>).map { it.toString() })
            assertEquals("SI", rows[0]["country"])
            assertNull(rows[1]["country"])
            assertTrue(columns(customers).containsAll(listOf("created_at", "updated_at", "lifecycle_stage")))

            val interactions = dir.resolve("interactions.arrow")
            assertEquals(3UL, crm.exportTable(Table.INTERACTIONS, interactions.toString()))
            val logged = read(interactions)
            assertEquals(listOf(1_000L, 2_000L, 3_000L), logged.map { it["amount_minor"] })
            assertEquals(listOf("EUR", "EUR", "EUR"), logged.map { it["currency"] })
            assertEquals(listOf("purchase", "purchase", "purchase"), logged.map { it["kind"] })
            assertEquals(listOf(ids[0], ids[0], ids[1]), logged.map { it["customer_id"].toString() })
            // Microseconds since the epoch, UTC.
            assertEquals(t0.epochSecond * 1_000_000, logged[0]["occurred_at"])

            val consent = dir.resolve("consent.arrow")
            assertEquals(1UL, crm.exportTable(Table.CONSENT, consent.toString()))
            assertEquals("newsletter", read(consent).single()["purpose"])

            // Never scored: no rows, but the whole schema.
            val scores = dir.resolve("scores.arrow")
            assertEquals(0UL, crm.exportTable(Table.SCORES, scores.toString()))
            assertTrue(columns(scores).containsAll(listOf("customer_id", "p_alive", "clv")))
        }
    }

    @Test
    fun filtersSegmentsAndTimesRestrictTheRows() {
        val (crm, ids) = store()
        crm.use {
            val path = dir.resolve("t.arrow").toString()
            assertEquals(1UL, crm.exportTable(Table.CUSTOMERS, path, TableOptions(filter = "\"vip\" in tags")))
            assertEquals(ids[0], read(Path.of(path)).single()["id"].toString())
            assertEquals(2UL, crm.exportTable(Table.INTERACTIONS, path, TableOptions(filter = "\"vip\" in tags")))
            crm.createSegment("bo", filter = """name = "Bo"""")
            assertEquals(1UL, crm.exportTable(Table.INTERACTIONS, path, TableOptions(segment = "bo")))
            val window = TableOptions(since = t0.plusSeconds(86_400), until = t0.plusSeconds(2 * 86_400))
            assertEquals(1UL, crm.exportTable(Table.INTERACTIONS, path, window))
            // Small batches: the same rows.
            assertEquals(3UL, crm.exportTable(Table.INTERACTIONS, path, TableOptions(batchSize = 1U)))
            assertEquals(3, read(Path.of(path)).size)
        }
    }

    @Test
    fun filesWrittenByArrowJavaAreImported() {
        Crm.openInMemory().use { crm ->
            val customers = dir.resolve("customers.arrow")
            write(customers, mapOf("external_id" to listOf("c1", "c2"), "name" to listOf("Ana", "Bo"), "email" to listOf("Ana@Example.com", null)))
            val report = crm.importCustomersArrow(customers.toString())
            assertEquals(2UL, report.inserted)
            assertEquals(listOf("ana@example.com"), crm.findCustomerByExternalId("c1")!!.emails)

            val interactions = dir.resolve("interactions.arrow")
            write(
                interactions,
                mapOf("customer_external_id" to listOf("c1", "c2"), "kind" to listOf("purchase", "note"), "currency" to listOf("EUR", null)),
                times = mapOf("occurred_at" to listOf(t0, t0.plusSeconds(60))),
                longs = mapOf("amount_minor" to listOf(12_990L, null)),
            )
            assertEquals(2UL, crm.importInteractionsArrow(interactions.toString()).inserted)
            val ana = crm.findCustomerByExternalId("c1")!!
            val purchase = crm.timeline(ana.id).items.single()
            assertEquals(12_990L, purchase.amountMinor)
            assertEquals(t0, purchase.occurredAt)
        }
    }

    @Test
    fun anExportedTableImportsIntoAnotherCrm() {
        val (crm, _) = store()
        val path = dir.resolve("customers.arrow")
        crm.use { crm.exportTable(Table.CUSTOMERS, path.toString()) }
        Crm.openInMemory().use { copy ->
            assertEquals(2UL, copy.importCustomersArrow(path.toString()).inserted)
            val names = copy.listCustomers().items.map { it.name }.sortedBy { it }
            assertEquals(listOf("Ana Novak", "Bo"), names)
            assertEquals(listOf("vip"), copy.findCustomerByEmail("ana@example.com")!!.tags)
        }
    }

    @Test
    fun badInputIsATypedErrorAndImportsNothing() {
        val (crm, _) = store()
        crm.use {
            val path = dir.resolve("t.arrow").toString()
            assertThrows<CrmException.Parse> { crm.exportTable(Table.CUSTOMERS, path, TableOptions(filter = "stge = 1")) }
            assertThrows<CrmException.NotFound> { crm.exportTable(Table.CUSTOMERS, path, TableOptions(segment = "nobody")) }
            assertEquals("batch_size", assertThrows<CrmException.Validation> { crm.exportTable(Table.CUSTOMERS, path, TableOptions(batchSize = 0U)) }.field)
            assertEquals("since", assertThrows<CrmException.Validation> { crm.exportTable(Table.CUSTOMERS, path, TableOptions(since = t0)) }.field)
        }
        Crm.openInMemory().use { crm ->
            val misspelled = dir.resolve("misspelled.arrow")
            write(misspelled, mapOf("name" to listOf("Ana"), "emial" to listOf("ana@example.com")))
            assertEquals("emial", assertThrows<CrmException.Validation> { crm.importCustomersArrow(misspelled.toString()) }.field)

            val badRow = dir.resolve("bad-row.arrow")
            write(badRow, mapOf("name" to listOf("Ana", "Bo"), "email" to listOf("ana@example.com", "not-an-email")))
            assertEquals(2UL, assertThrows<CrmException.InvalidRow> { crm.importCustomersArrow(badRow.toString()) }.row)
            assertEquals(0UL, crm.countCustomers())

            val skipped = crm.importCustomersArrow(badRow.toString(), options = ImportOptions(mode = ImportMode.SKIP_INVALID))
            assertEquals(1UL, skipped.inserted)
            assertEquals(2UL, skipped.errors.single().row)

            val notArrow = dir.resolve("customers.csv")
            Files.writeString(notArrow, "name\nAna\n")
            assertEquals("file", assertThrows<CrmException.Validation> { crm.importCustomersArrow(notArrow.toString()) }.field)
            assertEquals(1UL, crm.countCustomers())
        }
    }
}
