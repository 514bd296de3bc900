package com.crmengine

import java.nio.file.Files
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Lifecycle stages through the Kotlin binding: the configuration, the moves it
 *  allows, the recorded transitions and the queries over them. */
class LifecycleTest {
    private fun memory(): Crm = Crm.openInMemory()

    private val defaultOrder = listOf("subscriber", "lead", "mql", "sql", "opportunity", "customer", "evangelist")

    /** lead → trial → sql (which may fall back) → customer; lost off track. */
    private val custom = LifecycleConfig(
        stages = listOf(
            LifecycleStage("lead"),
            LifecycleStage("trial"),
            LifecycleStage("sql", allowBackward = true),
            LifecycleStage("customer"),
        ),
        offTrack = listOf("lost"),
        defaultStage = "lead",
    )

    private fun Crm.person(name: String, stage: String? = null): Customer =
        createCustomer(NewCustomer(name = name, lifecycleStage = stage))

    private fun Crm.moves(id: String): List<Pair<String?, String>> = stageHistory(id).map { it.from to it.to }

    /** An instant strictly between the writes before and after it. */
    private fun tick(): Instant {
        Thread.sleep(2)
        val now = Instant.now()
        Thread.sleep(2)
        return now
    }

    @Test
    fun `the default configuration and a custom one round trip`() = memory().use { crm ->
        val config = crm.lifecycleConfig()
        assertEquals(defaultOrder, config.stages.map { it.name })
        assertTrue(config.stages.none { it.allowBackward })
        assertEquals(listOf("other", "churned"), config.offTrack)
        assertEquals("subscriber", config.defaultStage)

        val stored = crm.setLifecycleConfig(custom.copy(stages = listOf(LifecycleStage(" Lead ")) + custom.stages.drop(1)))
        assertEquals(custom, stored)
        assertEquals(custom, crm.lifecycleConfig())
        val last = crm.changesSince(0L, 100u).last()
        assertEquals(EntityKind.SETTINGS, last.entity)
        assertEquals(listOf("lifecycle"), last.fields)
        assertEquals("lead", crm.person("Ana").lifecycleStage)
    }

    @Test
    fun `bad configurations are Validation and change nothing`() = memory().use { crm ->
        val cases = listOf(
            custom.copy(stages = emptyList()) to "lifecycle.stages",
            custom.copy(offTrack = listOf("trial")) to "lifecycle.off_track[0]",
            custom.copy(defaultStage = "nobody") to "lifecycle.default_stage",
            custom.copy(stages = listOf(LifecycleStage("has space"))) to "lifecycle.stages[0]",
        )
        for ((config, field) in cases) {
            val e = assertThrows<CrmException.Validation> { crm.setLifecycleConfig(config) }
            assertEquals(field, e.field)
        }
        assertEquals("subscriber", crm.lifecycleConfig().defaultStage)
        assertTrue(crm.changesSince(0L, 100u).isEmpty())
    }

    @Test
    fun `removing a stage customers are in is a Conflict`() = memory().use { crm ->
        crm.person("Ana", "mql")
        val config = crm.lifecycleConfig()
        val e = assertThrows<CrmException.Conflict> {
            crm.setLifecycleConfig(config.copy(stages = config.stages.filter { it.name != "mql" }))
        }
        assertTrue(e.reason.contains("'mql'") && e.reason.contains("1 customer"), e.reason)
        assertEquals(defaultOrder, crm.lifecycleConfig().stages.map { it.name })
    }

    @Test
    fun `an unknown stage is Validation everywhere and stores nothing`() = memory().use { crm ->
        val ana = crm.person("Ana", "lead")
        val before = crm.changesSince(0L, 1000u).size
        val attempts: List<() -> Unit> = listOf(
            { crm.person("Bo", "mqll") },
            { crm.updateCustomer(ana.id, CustomerPatch(lifecycleStage = "mqll")) },
            { crm.setLifecycleStage(ana.id, "mqll") },
            { crm.upsertCustomer(NewCustomer(name = "Cy", emails = listOf("cy@example.com"), lifecycleStage = "mqll")) },
        )
        for (attempt in attempts) {
            val e = assertThrows<CrmException.Validation> { attempt() }
            assertEquals("lifecycle_stage", e.field)
            assertTrue(e.reason.contains("did you mean 'mql'"), e.reason)
        }
        val e = assertThrows<CrmException.InvalidRow> {
            crm.importCustomers(listOf(NewCustomer(name = "Di", lifecycleStage = "lead"), NewCustomer(name = "Ed", lifecycleStage = "mqll")))
        }
        assertEquals(2UL, e.row)
        assertEquals("lifecycle_stage", e.field)
        assertEquals(1UL, crm.countCustomers())
        assertEquals(listOf<Pair<String?, String>>(null to "lead"), crm.moves(ana.id))
        assertEquals(before, crm.changesSince(0L, 1000u).size)
    }

    @Test
    fun `moving backward needs the stage left to allow it`() = memory().use { crm ->
        crm.setLifecycleConfig(custom)
        val ana = crm.person("Ana")
        crm.setLifecycleStage(ana.id, "trial")
        val e = assertThrows<CrmException.Validation> { crm.setLifecycleStage(ana.id, "lead") }
        assertTrue(e.reason.contains("'trial'") && e.reason.contains("'lead'"), e.reason)
        assertEquals("trial", crm.getCustomer(ana.id).lifecycleStage)
        crm.setLifecycleStage(ana.id, "sql")
        assertEquals("lead", crm.setLifecycleStage(ana.id, "lead", note = "went quiet").lifecycleStage)
        crm.setLifecycleStage(ana.id, "customer")
        crm.setLifecycleStage(ana.id, "lost")
        crm.setLifecycleStage(ana.id, "lead")
        assertEquals(
            listOf(null to "lead", "lead" to "trial", "trial" to "sql", "sql" to "lead", "lead" to "customer", "customer" to "lost", "lost" to "lead"),
            crm.moves(ana.id),
        )
        assertEquals("went quiet", crm.stageHistory(ana.id)[3].note)
    }

    @Test
    fun `transitions record their cause`() = memory().use { crm ->
        val ana = crm.person("Ana")
        crm.updateCustomer(ana.id, CustomerPatch(lifecycleStage = "lead"))
        val history = crm.stageHistory(ana.id)
        assertEquals(listOf(TransitionCause.MANUAL, TransitionCause.MANUAL), history.map { it.cause })
        assertEquals(ana.createdAt, history[0].at)
        assertNull(history[0].from)
        assertNull(history[1].rule)

        crm.importCustomers(listOf(NewCustomer(name = "Bo", emails = listOf("bo@example.com"), lifecycleStage = "mql")))
        crm.importCustomers(
            listOf(NewCustomer(name = "Bo", emails = listOf("bo@example.com"), lifecycleStage = "sql")),
            ImportOptions(upsert = true),
        )
        val bo = crm.findCustomerByEmail("bo@example.com")!!
        assertEquals(
            listOf(Triple(null, "mql", TransitionCause.IMPORT), Triple("mql", "sql", TransitionCause.IMPORT)),
            crm.stageHistory(bo.id).map { Triple(it.from, it.to, it.cause) },
        )
    }

    @Test
    fun `time in stages counts at an instant and the funnel`() = memory().use { crm ->
        val t0 = tick()
        val a = crm.person("A", "lead")
        val b = crm.person("B", "lead")
        val start = tick()
        crm.setLifecycleStage(a.id, "mql")
        crm.setLifecycleStage(a.id, "churned")
        crm.setLifecycleStage(a.id, "customer")
        crm.setLifecycleStage(b.id, "mql")
        val end = tick()

        // Time in stages, in the configured order (ordered, then off track).
        val last = crm.stageHistory(a.id).last().at
        val times = crm.timeInStages(a.id, now = last.plus(Duration.ofSeconds(90)))
        assertEquals(listOf("lead", "mql", "customer", "churned"), times.map { it.stage })
        assertEquals(90L, times[2].seconds)
        assertTrue(times.all { it.entered == 1u })
        assertEquals(4, crm.timeInStages(a.id).size)

        // Counts at an instant, every configured stage listed.
        fun counts(at: Instant) = crm.stageCounts(at).filter { it.customers > 0UL }.associate { it.stage to it.customers }
        assertEquals(emptyMap<String, ULong>(), counts(t0))
        assertEquals(mapOf("lead" to 2UL), counts(start))
        assertEquals(mapOf("mql" to 1UL, "customer" to 1UL), counts(end))
        assertEquals(defaultOrder + listOf("other", "churned"), crm.stageCounts(end).map { it.stage })

        // The funnel: a moved on (through churned) from mql, b did not.
        val funnel = crm.stageFunnel(start, end).associateBy { it.stage }
        assertEquals(defaultOrder, funnel.keys.toList())
        assertEquals(2UL, funnel.getValue("mql").entered)
        assertEquals(1UL, funnel.getValue("mql").advanced)
        assertEquals(0.5, funnel.getValue("mql").conversionRate)
        assertEquals(0UL, funnel.getValue("lead").entered)
        assertNull(funnel.getValue("lead").conversionRate)
        val e = assertThrows<CrmException.Validation> { crm.stageFunnel(end, start) }
        assertEquals("until", e.field)
    }

    @Test
    fun `filters compare stages by the configured order`() = memory().use { crm ->
        for ((name, stage) in listOf("A" to "lead", "B" to "sql", "C" to "mql", "D" to "churned")) crm.person(name, stage)
        assertEquals(2UL, crm.countMatching("""stage >= "mql""""))
        val config = crm.lifecycleConfig()
        val swapped = config.stages.toMutableList().also { it[2] = config.stages[3]; it[3] = config.stages[2] }
        crm.setLifecycleConfig(config.copy(stages = swapped))
        assertEquals(0UL, crm.countMatching("""stage > "mql""""))
        assertEquals(2UL, crm.countMatching("""stage >= "sql""""))
        assertEquals(1UL, crm.countMatching("""stage < "sql""""))
        val e = assertThrows<CrmException.Parse> { crm.countMatching("""stage > "sqll"""") }
        assertEquals("sql", e.suggestion)
    }

    @Test
    fun `the transitions export as a table`() = memory().use { crm ->
        val ana = crm.person("Ana", "lead")
        val since = tick()
        crm.setLifecycleStage(ana.id, "mql")
        val dir = Files.createTempDirectory("crm-lifecycle")
        try {
            val path = dir.resolve("transitions.arrow").toString()
            assertEquals(2UL, crm.exportTable(Table.STAGE_TRANSITIONS, path))
            assertEquals(1UL, crm.exportTable(Table.STAGE_TRANSITIONS, path, TableOptions(since = since)))
        } finally {
            dir.toFile().deleteRecursively()
        }
    }
}
