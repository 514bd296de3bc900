package com.crmengine

import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.io.TempDir

/** Pipelines, deals, the weighted forecast and tasks through the Kotlin binding. */
class DealsTest {
    @TempDir
    lateinit var dir: Path

    private val stages = listOf(
        PipelineStage(name = "Lead", probability = 10u),
        PipelineStage(name = "Qualified", probability = 30u),
        PipelineStage(name = "Proposal", probability = 60u),
        PipelineStage(name = "Won", probability = 100u, closed = true, won = true),
        PipelineStage(name = "Lost", probability = 0u, closed = true),
    )

    private fun sales(): Crm = Crm.openInMemory().also { it.createPipeline("Sales", "EUR", stages) }

    private fun Crm.lastSeq(): Long = changesSince(0L, 10_000u).lastOrNull()?.seq ?: 0L

    private fun field(call: () -> Unit): String = assertThrows<CrmException.Validation> { call() }.field

    @Test
    fun `pipelines round trip and bad ones store nothing`() {
        Crm.openInMemory().use { crm ->
            val before = crm.lastSeq()
            assertEquals("stages", field { crm.createPipeline("Sales", "EUR", emptyList()) })
            assertEquals("currency", field { crm.createPipeline("Sales", "EURO", stages) })
            assertEquals(
                "stages[5].name",
                field { crm.createPipeline("Sales", "EUR", stages + PipelineStage(name = "lead", probability = 5u)) },
            )
            assertEquals(
                "stages",
                field { crm.createPipeline("Sales", "EUR", listOf(PipelineStage("Won", 100u, closed = true, won = true))) },
            )
            assertTrue(crm.pipelines().isEmpty())
            assertEquals(before, crm.lastSeq())

            val p = crm.createPipeline(" Sales ", "eur", stages)
            assertEquals("Sales", p.name)
            assertEquals("EUR", p.currency)
            assertEquals(stages, p.stages)
            assertEquals(p, crm.pipeline("Sales"))
            assertThrows<CrmException.Conflict> { crm.createPipeline("Sales", "EUR", stages) }
            assertThrows<CrmException.NotFound> { crm.pipeline("Nope") }
        }
    }

    @Test
    fun `deals take their defaults from the pipeline and bad ones store nothing`() {
        sales().use { crm ->
            val acme = crm.createCustomer(NewCustomer(kind = CustomerKind.ORGANIZATION, name = "Acme"))
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val deal = crm.createDeal(
                NewDeal(
                    pipeline = "Sales", title = "Solar roof", valueMinor = 1_250_000L, owner = "maja",
                    expectedClose = "2030-01-31", customerId = ana.id, organizationId = acme.id,
                ),
            )
            assertEquals("Lead", deal.stage)
            assertEquals("EUR", deal.currency)
            assertEquals(10.toUByte(), deal.probability)
            assertNull(deal.probabilityOverride)
            assertEquals(DealStatus.OPEN, deal.status)
            assertEquals("2030-01-31", deal.expectedClose)
            assertEquals(deal, crm.getDeal(deal.id))
            assertEquals(listOf(deal), crm.deals(DealQuery(customerId = acme.id)).items)

            val before = crm.lastSeq()
            val usd = assertThrows<CrmException.Validation> {
                crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, currency = "USD"))
            }
            assertEquals("currency", usd.field)
            assertTrue("USD" in usd.reason && "EUR" in usd.reason, usd.reason)
            val typo = assertThrows<CrmException.Validation> {
                crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, stage = "Proposl"))
            }
            assertTrue("did you mean 'Proposal'" in typo.reason, typo.reason)
            assertEquals(
                "organization_id",
                field { crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, organizationId = ana.id)) },
            )
            assertEquals("value_minor", field { crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = -1L)) })
            assertEquals(
                "close_reason",
                field { crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, stage = "Lost")) },
            )
            assertEquals("expected_close", field {
                crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, expectedClose = "soon"))
            })
            assertThrows<CrmException.NotFound> { crm.createDeal(NewDeal(pipeline = "Nope", title = "Roof", valueMinor = 1L)) }
            assertEquals(1, crm.deals().items.size)
            assertEquals(before, crm.lastSeq())
        }
    }

    @Test
    fun `moves close and reopen deals and keep their history`() {
        sales().use { crm ->
            var deal = crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1_000L))
            deal = crm.moveDeal(deal.id, "Proposal")
            assertEquals(60.toUByte(), deal.probability)

            val before = crm.lastSeq()
            assertEquals("reason", field { crm.moveDeal(deal.id, "Lost") })
            val typo = assertThrows<CrmException.Validation> { crm.moveDeal(deal.id, "Lots", "price") }
            assertTrue("did you mean 'Lost'" in typo.reason, typo.reason)
            assertEquals(before, crm.lastSeq())
            assertEquals(deal, crm.getDeal(deal.id))

            val lost = crm.moveDeal(deal.id, "Lost", "price")
            assertEquals(DealStatus.LOST, lost.status)
            assertEquals(0.toUByte(), lost.probability)
            assertEquals("price", lost.closeReason)
            assertNotNull(lost.closedAt)
            val reopened = crm.moveDeal(deal.id, "Qualified", reason = "came back")
            assertEquals(DealStatus.OPEN, reopened.status)
            assertNull(reopened.closeReason)
            assertNull(reopened.closedAt)
            assertEquals(DealStatus.WON, crm.moveDeal(deal.id, "Won").status)

            val history = crm.dealHistory(deal.id).map { Triple(it.from, it.to, it.reason) }
            assertEquals(
                listOf(
                    Triple(null, "Lead", null),
                    Triple("Lead", "Proposal", null),
                    Triple("Proposal", "Lost", "price"),
                    Triple("Lost", "Qualified", "came back"),
                    Triple("Qualified", "Won", null),
                ),
                history,
            )
        }
    }

    @Test
    fun `updates set and clear fields`() {
        sales().use { crm ->
            val deal = crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1_000L, owner = "maja"))
            val updated = crm.updateDeal(deal.id, DealPatch(valueMinor = 2_000L, probability = 45u))
            assertEquals(2_000L, updated.valueMinor)
            assertEquals(45.toUByte(), updated.probability)
            val cleared = crm.updateDeal(deal.id, DealPatch(clear = listOf("probability", "owner")))
            assertEquals(10.toUByte(), cleared.probability)
            assertNull(cleared.owner)
            assertEquals(cleared, crm.getDeal(deal.id))
            val last = crm.changesSince(0L, 10_000u).last()
            assertEquals(EntityKind.DEAL, last.entity)
            assertEquals(listOf("owner", "probability"), last.fields)
            assertEquals("title", field { crm.updateDeal(deal.id, DealPatch(clear = listOf("title"))) })
        }
    }

    @Test
    fun `the forecast weighs each deal exactly`() {
        sales().use { crm ->
            data class Row(val title: String, val value: Long, val stage: String, val p: UByte?, val owner: String, val day: Int)
            listOf(
                Row("a", 1_001L, "Lead", null, "maja", 1),
                Row("b", 1_005L, "Lead", null, "maja", 10),
                Row("c", 999L, "Proposal", 33u, "rok", 20),
                Row("d", 5_000L, "Won", null, "rok", 5),
            ).forEach {
                crm.createDeal(
                    NewDeal(
                        pipeline = "Sales", title = it.title, valueMinor = it.value, stage = it.stage,
                        probability = it.p, owner = it.owner, expectedClose = "2030-03-%02d".format(it.day),
                    ),
                )
            }
            val f = crm.forecast(ForecastQuery(pipeline = "Sales"))
            assertEquals("EUR", f.currency)
            assertEquals(
                listOf(
                    listOf("Lead", 2UL, 2_006L, 201L),
                    listOf("Qualified", 0UL, 0L, 0L),
                    listOf("Proposal", 1UL, 999L, 330L),
                ),
                f.stages.map { listOf(it.stage, it.deals, it.valueMinor, it.weightedMinor) },
            )
            assertEquals(3_005L, f.totalMinor)
            assertEquals(531L, f.weightedMinor)
            assertEquals(2_006L, crm.forecast(ForecastQuery(pipeline = "Sales", owner = "maja")).totalMinor)
            val early = crm.forecast(ForecastQuery(pipeline = "Sales", closeFrom = "2030-03-01", closeTo = "2030-03-10"))
            assertEquals(2_006L, early.totalMinor)
            assertEquals("close_from", field {
                crm.forecast(ForecastQuery(pipeline = "Sales", closeFrom = "2030-03-10", closeTo = "2030-03-01"))
            })
        }
    }

    @Test
    fun `stages holding deals are kept and deals page`() {
        sales().use { crm ->
            val deal = crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, stage = "Qualified"))
            val e = assertThrows<CrmException.Conflict> {
                crm.updatePipelineStages("Sales", stages.filter { it.name != "Qualified" })
            }
            assertTrue("holds 1 deal" in e.reason, e.reason)
            val reweighed = stages.map { if (it.name == "Qualified") it.copy(probability = 40u) else it }
            assertEquals(40.toUByte(), crm.updatePipelineStages("Sales", reweighed).stages[1].probability)
            assertEquals(40.toUByte(), crm.getDeal(deal.id).probability)
            assertThrows<CrmException.Conflict> { crm.deletePipeline("Sales") }

            repeat(4) { crm.createDeal(NewDeal(pipeline = "Sales", title = "deal $it", valueMinor = 1L)) }
            val titles = mutableListOf<String>()
            var cursor: String? = null
            do {
                val page = crm.deals(DealQuery(pipeline = "Sales", limit = 2u, cursor = cursor))
                titles += page.items.map { it.title }
                cursor = page.nextCursor
            } while (cursor != null)
            assertEquals(listOf("Roof", "deal 0", "deal 1", "deal 2", "deal 3"), titles)
            assertEquals(4, crm.deals(DealQuery(pipeline = "Sales", stage = "Lead", status = DealStatus.OPEN)).items.size)

            crm.deals().items.forEach { crm.deleteDeal(it.id) }
            assertThrows<CrmException.NotFound> { crm.getDeal(deal.id) }
            crm.deletePipeline("Sales")
            assertTrue(crm.pipelines().isEmpty())
        }
    }

    @Test
    fun `tasks link, complete and go overdue`() {
        sales().use { crm ->
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val deal = crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L))
            val now = Instant.now()
            val ids = listOf(3L, 1L, 2L, -1L).mapIndexed { i, days ->
                val t = crm.createTask(
                    NewTask(
                        title = "task $i",
                        owner = if (i == 2) "rok" else "maja",
                        dueAt = now.minus(Duration.ofDays(days)),
                        customerId = ana.id,
                        dealId = if (i == 0) deal.id else null,
                    ),
                )
                assertEquals(TaskStatus.OPEN, t.status)
                assertEquals(Priority.NORMAL, t.priority)
                assertNull(t.rule)
                t.id
            }
            assertEquals(listOf("task 0", "task 2", "task 1"), crm.overdueTasks(now).items.map { it.title })
            val first = crm.overdueTasks(now, limit = 1u)
            assertEquals("task 2", crm.overdueTasks(now, limit = 1u, cursor = first.nextCursor).items[0].title)
            assertEquals(2, crm.overdueTasks(now, owner = "maja").items.size)

            val done = crm.completeTask(ids[0])
            assertEquals(TaskStatus.DONE, done.status)
            assertNotNull(done.completedAt)
            assertThrows<CrmException.Conflict> { crm.cancelTask(ids[0]) }
            assertNull(crm.reopenTask(ids[0]).completedAt)
            assertEquals(TaskStatus.CANCELLED, crm.cancelTask(ids[1]).status)
            assertEquals(2, crm.overdueTasks().items.size)

            assertEquals(1, crm.tasks(TaskQuery(dealId = deal.id)).items.size)
            assertEquals(3, crm.tasks(TaskQuery(customerId = ana.id, status = TaskStatus.OPEN)).items.size)
            val patched = crm.updateTask(ids[2], TaskPatch(priority = Priority.URGENT, notes = "bring samples", clear = listOf("due_at")))
            assertEquals(Priority.URGENT, patched.priority)
            assertNull(patched.dueAt)
            assertEquals(patched, crm.getTask(ids[2]))

            crm.deleteTask(ids[3])
            assertThrows<CrmException.NotFound> { crm.getTask(ids[3]) }
            crm.deleteDeal(deal.id)
            assertThrows<CrmException.NotFound> { crm.getTask(ids[0]) }
        }
    }

    @Test
    fun `bad tasks store nothing`() {
        sales().use { crm ->
            val ghost = crm.createCustomer(NewCustomer(name = "Ghost"))
            crm.deleteCustomer(ghost.id)
            val before = crm.lastSeq()
            assertEquals("title", field { crm.createTask(NewTask(title = " ")) })
            assertEquals("customer_id", field { crm.createTask(NewTask(title = "Call", customerId = ghost.id)) })
            assertEquals("deal_id", field { crm.createTask(NewTask(title = "Call", dealId = "not-a-uuid")) })
            assertTrue(crm.tasks().items.isEmpty())
            assertEquals(before, crm.lastSeq())
        }
    }

    @Test
    fun `deals and tasks export as Arrow tables`() {
        sales().use { crm ->
            val ana = crm.createCustomer(NewCustomer(name = "Ana"))
            val deal = crm.createDeal(NewDeal(pipeline = "Sales", title = "Roof", valueMinor = 1L, customerId = ana.id))
            crm.createDeal(NewDeal(pipeline = "Sales", title = "Shed", valueMinor = 1L))
            crm.createTask(NewTask(title = "Call", dealId = deal.id))
            assertEquals(2UL, crm.exportTable(Table.DEALS, dir.resolve("deals.arrow").toString()))
            val anas = TableOptions(filter = "name = \"Ana\"")
            assertEquals(1UL, crm.exportTable(Table.DEALS, dir.resolve("anas.arrow").toString(), anas))
            assertEquals(1UL, crm.exportTable(Table.TASKS, dir.resolve("tasks.arrow").toString()))
        }
    }
}
