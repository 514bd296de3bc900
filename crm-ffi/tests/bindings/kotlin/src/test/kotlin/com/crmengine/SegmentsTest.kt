package com.crmengine

import java.nio.file.Path
import java.time.Instant
import java.util.UUID
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicInteger
import kotlin.concurrent.thread
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

/** Tests of the filter language and segments through the Kotlin binding. */
class SegmentsTest {
    @TempDir
    lateinit var dir: Path

    private fun memory(): Crm = Crm.openInMemory()

    private fun Crm.person(name: String, country: String? = null, tags: List<String> = emptyList()): Customer =
        createCustomer(NewCustomer(name = name, country = country, tags = tags))

    /** Every page of `read`, followed through `nextCursor`. */
    private fun pages(read: (cursor: String?) -> CustomerPage): List<CustomerPage> {
        val pages = mutableListOf<CustomerPage>()
        var cursor: String? = null
        do {
            val page = read(cursor)
            pages += page
            cursor = page.nextCursor
        } while (cursor != null)
        return pages
    }

    // ----- README ----------------------------------------------------------------

    @Test
    fun `the README segments example runs`() {
        Crm.openInMemory().use { crm ->
            crm.createCustomer(NewCustomer(name = "Ana Novak", country = "SI", tags = listOf("vip")))

            // Ad-hoc: how many match, and who, one page at a time.
            val filter = """country = "SI" and "vip" in tags"""
            println(crm.countMatching(filter))                          // 1
            val page = crm.findMatching(filter, limit = 50u)             // …then cursor = page.nextCursor

            // A dynamic segment is whoever matches its filter now.
            crm.createSegment("si-vips", filter = filter, description = "VIPs in Slovenia")
            println(crm.segmentCount("si-vips"))                         // 1
            val report = crm.materializeSegment("si-vips")               // stores membership
            println("${report.entered} entered, ${report.left} left")    // 1 entered, 0 left

            // A static segment is a list you keep.
            val list = crm.createSegment("call-list")
            crm.addToSegment(list.name, page.items.map { it.id })

            try {
                crm.countMatching("""contry = "SI"""")
            } catch (e: CrmException.Parse) {
                println("${e.line}:${e.column} ${e.reason} (did you mean ${e.suggestion}?)")  // 1:1 unknown field 'contry' (did you mean country?)
            }

            assertEquals(1UL, crm.countMatching(filter))
            assertEquals(1, page.items.size)
            assertEquals(SegmentKind.STATIC, list.kind)
            assertEquals(MaterializeReport(members = 1UL, entered = 1UL, left = 0UL), report)
            assertEquals(1UL, crm.segmentCount("call-list"))
        }
    }

    // ----- errors with fields -----------------------------------------------------

    @Test
    fun `a misspelled field is Parse with its position and a suggestion`() = memory().use { crm ->
        val e = assertThrows<CrmException.Parse> { crm.countMatching("""contry = "SI"""") }
        assertEquals(1u, e.line)
        assertEquals(1u, e.column)
        assertEquals("country", e.suggestion)
        assertTrue(e.reason.contains("contry"), e.reason)
        // The same error from every entry point that takes a filter.
        val c = crm.person("Ana")
        for (call in listOf<() -> Any>(
            { crm.checkFilter("""contry = "SI"""") },
            { crm.findMatching("""contry = "SI"""") },
            { crm.customerMatches(c.id, """contry = "SI"""") },
            { crm.explain("""contry = "SI"""") },
            { crm.createSegment("s", filter = """contry = "SI"""") },
        )) {
            val again = assertThrows<CrmException.Parse> { call() }
            assertEquals(Triple(1u, 1u, "country"), Triple(again.line, again.column, again.suggestion))
        }
        assertTrue(crm.segments().isEmpty())
    }

    @Test
    fun `a type mismatch and a bad window are Parse errors without a suggestion`() = memory().use { crm ->
        val mismatch = assertThrows<CrmException.Parse> { crm.checkFilter(""""vip" > 3""") }
        assertEquals(1u, mismatch.line)
        assertEquals(1u, mismatch.column)
        assertNull(mismatch.suggestion)
        assertTrue(mismatch.reason.isNotEmpty())

        // A window with nothing before it is no condition at all.
        val bare = assertThrows<CrmException.Parse> { crm.countMatching("within -5d") }
        assertEquals(1u to 1u, bare.line to bare.column)
        // A negative window points at the window, on the line it is on.
        val negative = assertThrows<CrmException.Parse> { crm.countMatching("country = \"SI\"\n  and created_at within -5d") }
        assertEquals(2u, negative.line)
        assertEquals(25u, negative.column)
        assertNull(negative.suggestion)
        // The exception's message carries the fields.
        assertTrue(negative.message!!.contains("line=2"), negative.message)
    }

    @Test
    fun `absurdly long or deeply nested input is a Parse error and not a crash`() = memory().use { crm ->
        val huge = assertThrows<CrmException.Parse> { crm.countMatching("(".repeat(100_000)) }
        assertEquals(1u, huge.line)
        assertThrows<CrmException.Parse> { parseFilter("(".repeat(100_000)) }
        val nested = "(".repeat(1_000) + "country = \"SI\"" + ")".repeat(1_000)
        assertThrows<CrmException.Parse> { crm.checkFilter(nested) }
        assertThrows<CrmException.Parse> { crm.createSegment("deep", filter = nested) }
        val notNot = "not ".repeat(10_000) + "country = \"SI\""
        assertThrows<CrmException.Parse> { crm.countMatching(notNot) }
        // Deep JSON is refused too.
        assertThrows<CrmException.Parse> { formatFilter("""{"not":""".repeat(10_000) + "null" + "}".repeat(10_000)) }
        // The library is still fine.
        crm.person("Ana", country = "SI")
        assertEquals(1UL, crm.countMatching("country = \"si\""))
    }

    @Test
    fun `unknown segments customers and malformed ids have their own errors`() = memory().use { crm ->
        val c = crm.person("Ana")
        assertEquals("segment", assertThrows<CrmException.NotFound> { crm.segment("nope") }.entity)
        assertEquals("segment", assertThrows<CrmException.NotFound> { crm.segmentCount("nope") }.entity)
        assertEquals("segment", assertThrows<CrmException.NotFound> { crm.deleteSegment("nope") }.entity)
        assertEquals("customer", assertThrows<CrmException.NotFound> { crm.customerMatches(UUID.randomUUID().toString(), "country = \"SI\"") }.entity)
        assertEquals("customer_id", assertThrows<CrmException.Validation> { crm.customerMatches("not-an-id", "country = \"SI\"") }.field)
        crm.createSegment("list")
        val bad = assertThrows<CrmException.Validation> { crm.addToSegment("list", listOf(c.id, "not-an-id")) }
        assertEquals("customer_ids[1]", bad.field)
        assertEquals("customer", assertThrows<CrmException.NotFound> { crm.addToSegment("list", listOf(c.id, UUID.randomUUID().toString())) }.entity)
        assertEquals(0UL, crm.segmentCount("list"), "a failed add adds no one")
        assertEquals("limit", assertThrows<CrmException.Validation> { crm.findMatching("country is null", limit = 0u) }.field)
        assertEquals("cursor", assertThrows<CrmException.Validation> { crm.segmentMembers("list", cursor = "zz") }.field)
        assertEquals("name", assertThrows<CrmException.Validation> { crm.createSegment("") }.field)
        assertThrows<CrmException.Conflict> { crm.createSegment("list") }
        val unknownSegment = assertThrows<CrmException.Parse> { crm.countMatching("""in_segment("nope")""") }
        assertTrue(unknownSegment.reason.contains("nope"))
    }

    // ----- ad-hoc filters ----------------------------------------------------------

    @Test
    fun `checkFilter returns canonical text and matching reads what was written`() = memory().use { crm ->
        assertEquals(
            """country = "si" and tags is empty""",
            crm.checkFilter("""country="si"  AND tags is empty"""),
        )
        val ana = crm.person("Ana", country = "SI", tags = listOf("VIP"))
        val bo = crm.person("Bo", country = "AT")
        assertEquals(1UL, crm.countMatching("""country = "si""""))
        assertEquals(2UL, crm.countMatching("""country = "SI" or country = "AT""""))
        assertEquals(0UL, crm.countMatching("""count(purchases within 90d) >= 3"""))
        assertTrue(crm.customerMatches(ana.id, """"vip" in tags"""))
        assertFalse(crm.customerMatches(bo.id, """"vip" in tags"""))
        assertEquals(listOf(ana), crm.findMatching(""""vip" in tags""").items)
        assertNull(crm.findMatching(""""vip" in tags""").nextCursor)
    }

    @Test
    fun `explain shows the canonical text the SQL its parameters and the plan`() = memory().use { crm ->
        val explain = crm.explain(""""vip" in tags and country = "SI"""")
        assertEquals(""""vip" in tags and country = "SI"""", explain.canonical)
        assertTrue(explain.sql.startsWith("SELECT"), explain.sql)
        assertTrue(explain.sql.contains("customer_tags"), explain.sql)
        assertEquals(listOf("vip", "SI"), explain.params)
        assertTrue(explain.plan.isNotEmpty())
        assertTrue(explain.plan.all { it.isNotBlank() })
    }

    @Test
    fun `parseFilter and formatFilter round trip through JSON`() = memory().use { crm ->
        val text = """country="SI" and ("vip" in tags OR count(purchases within 90d) >= 3)"""
        val json = parseFilter(text)
        assertTrue(json.startsWith("{\"and\":"), json)
        val canonical = formatFilter(json)
        assertEquals(crm.checkFilter(text), canonical)
        assertEquals(json, parseFilter(canonical))
        // Parsing alone does not know the schema; checking does.
        assertTrue(parseFilter("""contry = "SI"""").contains("contry"))
        // Syntax errors have positions; JSON errors point into the JSON.
        val syntax = assertThrows<CrmException.Parse> { parseFilter("Country = 'SI'") }
        assertEquals(1u to 11u, syntax.line to syntax.column)
        val badJson = assertThrows<CrmException.Parse> { formatFilter("{\n  \"and\": [1,") }
        assertEquals(2u, badJson.line)
        assertThrows<CrmException.Parse> { formatFilter("""{"compare": {"op": "eq"}}""") }
        // A tree no text could give: no position to point at.
        val empty = assertThrows<CrmException.Parse> { formatFilter("""{"and": []}""") }
        assertEquals(0u to 0u, empty.line to empty.column)
    }

    // ----- segments ----------------------------------------------------------------

    @Test
    fun `a segment record converts every field`() = memory().use { crm ->
        val before = Instant.now().minusSeconds(5)
        val s = crm.createSegment("vips", filter = """ "vip"  IN tags """, description = "Our best")
        assertEquals(36, s.id.length)
        assertEquals("vips", s.name)
        assertEquals("Our best", s.description)
        assertEquals(SegmentKind.DYNAMIC, s.kind)
        assertEquals(""""vip" in tags""", s.filter)
        assertTrue(s.createdAt.isAfter(before) && s.createdAt.isBefore(Instant.now().plusSeconds(5)))
        assertEquals(s.createdAt, s.updatedAt)
        assertNull(s.evaluatedAt)
        assertEquals(s, crm.segment("vips"))
        val list = crm.createSegment("a-list")
        assertEquals(SegmentKind.STATIC, list.kind)
        assertNull(list.filter)
        assertNull(list.description)
        assertEquals(listOf("a-list", "vips"), crm.segments().map { it.name })
    }

    @Test
    fun `a dynamic segment is counted and paged like its filter`() = memory().use { crm ->
        val vips = (0 until 25).map { crm.person("VIP %02d".format(it), tags = listOf("vip")) }
        repeat(5) { crm.person("Other $it") }
        crm.createSegment("vips", filter = """"vip" in tags""")
        assertEquals(25UL, crm.segmentCount("vips"))
        val pages = pages { crm.segmentMembers("vips", limit = 10u, cursor = it) }
        assertEquals(listOf(10, 10, 5), pages.map { it.items.size })
        assertEquals(vips.map { it.id }, pages.flatMap { it.items }.map { it.id })
        val found = pages { crm.findMatching(""""vip" in tags""", limit = 10u, cursor = it) }
        assertEquals(pages.flatMap { it.items }, found.flatMap { it.items })
        assertEquals(25, crm.segmentMembers("vips").items.size, "default page size holds them all")
        assertTrue(crm.segmentContains("vips", vips[3].id))
        // Evaluated now: a new VIP counts at once.
        val late = crm.person("Late", tags = listOf("vip"))
        assertEquals(26UL, crm.segmentCount("vips"))
        assertTrue(crm.segmentContains("vips", late.id))
        assertEquals("segment", assertThrows<CrmException.Validation> { crm.addToSegment("vips", listOf(late.id)) }.field)
    }

    @Test
    fun `a static segment holds who is added until removed`() = memory().use { crm ->
        val (ana, bo, cy) = listOf("Ana", "Bo", "Cy").map { crm.person(it) }
        crm.createSegment("call-list", description = "Call this week")
        assertEquals(2UL, crm.addToSegment("call-list", listOf(ana.id, bo.id)))
        assertEquals(1UL, crm.addToSegment("call-list", listOf(bo.id, cy.id)), "Bo was in already")
        assertEquals(3UL, crm.segmentCount("call-list"))
        assertEquals(1UL, crm.removeFromSegment("call-list", listOf(bo.id)))
        assertEquals(0UL, crm.removeFromSegment("call-list", listOf(bo.id)))
        assertFalse(crm.segmentContains("call-list", bo.id))
        assertTrue(crm.segmentContains("call-list", cy.id))
        assertEquals(listOf(ana.id, cy.id), crm.segmentMembers("call-list").items.map { it.id })
        assertEquals(0UL, crm.addToSegment("call-list", emptyList()))
        // A static segment has no expression to change or materialize.
        assertEquals("filter", assertThrows<CrmException.Validation> { crm.updateSegment("call-list", filter = "country is null") }.field)
        assertEquals("segment", assertThrows<CrmException.Validation> { crm.materializeSegment("call-list") }.field)
        // Membership changes are in the change log.
        val members = crm.changesSince(0L, 1000u).filter { it.entity == EntityKind.SEGMENT_MEMBER }
        assertEquals(listOf(ChangeOp.CREATED, ChangeOp.CREATED, ChangeOp.CREATED, ChangeOp.DELETED), members.map { it.op })
        assertTrue(members.all { it.fields == listOf("call-list") })
        assertEquals(bo.id, members.last().entityId)
    }

    @Test
    fun `materializing reports who entered and left`() = memory().use { crm ->
        val ana = crm.person("Ana", country = "SI")
        val bo = crm.person("Bo", country = "SI")
        crm.person("Cy", country = "AT")
        crm.createSegment("slovenia", filter = """country = "SI"""")
        assertEquals(MaterializeReport(members = 2UL, entered = 2UL, left = 0UL), crm.materializeSegment("slovenia"))
        val evaluated = crm.segment("slovenia").evaluatedAt
        assertNotNull(evaluated)
        assertEquals(MaterializeReport(2UL, 0UL, 0UL), crm.materializeSegment("slovenia"))

        crm.updateCustomer(bo.id, CustomerPatch(country = "AT"))
        val dan = crm.person("Dan", country = "SI")
        val report = crm.materializeSegment("slovenia")
        assertEquals(2UL, report.members)
        assertEquals(1UL, report.entered)
        assertEquals(1UL, report.left)
        assertTrue(!crm.segment("slovenia").evaluatedAt!!.isBefore(evaluated))

        val log = crm.changesSince(0L, 1000u).filter { it.entity == EntityKind.SEGMENT_MEMBER }
        assertEquals(
            listOf(ana.id to ChangeOp.CREATED, bo.id to ChangeOp.CREATED, dan.id to ChangeOp.CREATED, bo.id to ChangeOp.DELETED).sortedBy { it.toString() },
            log.map { it.entityId to it.op }.sortedBy { it.toString() },
        )
        assertTrue(log.all { it.fields == listOf("slovenia") })
    }

    @Test
    fun `segments are renamed updated and deleted and the change log sees it`() = memory().use { crm ->
        val base = crm.createSegment("si", filter = """country = "SI"""", description = "Slovenia")
        crm.createSegment("si-vips", filter = """in_segment("si") and "vip" in tags""")
        val renamed = crm.renameSegment("si", "slovenia")
        assertEquals(base.id, renamed.id)
        assertEquals("slovenia", renamed.name)
        assertEquals("""in_segment("slovenia") and "vip" in tags""", crm.segment("si-vips").filter)

        val redefined = crm.updateSegment("slovenia", filter = """country="SI" OR country="HR"""")
        assertEquals("""country = "SI" or country = "HR"""", redefined.filter)
        assertEquals("Slovenia", redefined.description, "what is left null stays")
        assertEquals("Adriatic", crm.updateSegment("slovenia", description = "Adriatic").description)
        val cleared = crm.updateSegment("slovenia", clearDescription = true)
        assertNull(cleared.description)
        assertEquals(redefined.filter, cleared.filter)
        assertEquals(cleared, crm.updateSegment("slovenia"), "an empty update changes nothing")

        assertThrows<CrmException.Conflict> { crm.deleteSegment("slovenia") }
        crm.deleteSegment("si-vips")
        crm.deleteSegment("slovenia")
        assertTrue(crm.segments().isEmpty())

        val log = crm.changesSince(0L, 1000u)
        assertTrue(log.all { it.entity == EntityKind.SEGMENT })
        assertEquals(base.id, log.first().entityId)
        assertEquals(ChangeOp.CREATED, log.first().op)
        assertEquals(ChangeOp.DELETED, log.last().op)
        assertTrue(log.any { it.op == ChangeOp.UPDATED && it.fields == listOf("name") })
    }

    @Test
    fun `segment calls on a closed database throw Closed`() {
        val crm = memory()
        crm.createSegment("list")
        val asMaja = crm.withActor("maja")
        crm.closeDatabase()
        assertThrows<CrmException.Closed> { crm.segmentCount("list") }
        assertThrows<CrmException.Closed> { crm.countMatching("country is null") }
        assertThrows<CrmException.Closed> { asMaja.createSegment("other") }
        assertThrows<CrmException.Closed> { asMaja.segments() }
        // No database is needed to parse.
        assertEquals("country is null", formatFilter(parseFilter("country IS NULL")))
        crm.close()
        asMaja.close()
    }

    // ----- threads -----------------------------------------------------------------

    @Test
    fun `segment counts read from several threads while another writes customers`() {
        Crm.open(dir.resolve("segments.crm").toString()).use { crm ->
            crm.createSegment("vips", filter = """"vip" in tags""")
            crm.createSegment("list")
            val failures = ConcurrentLinkedQueue<Throwable>()
            val reads = AtomicInteger()
            val writes = 120
            val writer = thread(name = "writer") {
                try {
                    repeat(writes) { n ->
                        val c = crm.createCustomer(NewCustomer(name = "Customer $n", tags = if (n % 2 == 0) listOf("vip") else emptyList()))
                        if (n % 3 == 0) crm.addToSegment("list", listOf(c.id))
                    }
                } catch (t: Throwable) {
                    failures.add(t)
                }
            }
            val readers = (1..4).map { r ->
                thread(name = "reader-$r") {
                    try {
                        var lastVips = 0UL
                        var lastList = 0UL
                        do {
                            val vips = crm.segmentCount("vips")
                            val list = crm.segmentCount("list")
                            if (vips < lastVips || list < lastList) throw AssertionError("a count went back")
                            lastVips = vips
                            lastList = list
                            crm.segmentMembers("vips", limit = 10u)
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
            assertTrue(reads.get() >= 4)
            assertEquals(60UL, crm.segmentCount("vips"))
            assertEquals(40UL, crm.segmentCount("list"))
        }
    }
}
