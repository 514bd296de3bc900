package com.crmengine

import java.time.Instant
import java.util.concurrent.ConcurrentLinkedQueue
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Tests of rules and assignment teams through the Kotlin binding. */
class RulesTest {
    private fun memory(): Crm = Crm.openInMemory()

    private fun Crm.person(name: String, country: String? = null, tags: List<String> = emptyList()): Customer =
        createCustomer(NewCustomer(name = name, country = country, tags = tags))

    private fun Crm.purchase(id: String) = logInteraction(NewInteraction(CustomerRef.Id(id), InteractionKind.Purchase))

    private fun Crm.team(name: String, vararg members: String) =
        setTeam(Team(name, members.map { TeamMember(it) }))

    private fun Crm.effectsOn(id: String): List<RuleEffect> = ruleEffects(EffectsQuery(entityId = id))

    // ----- README ----------------------------------------------------------------

    @Test
    fun `the README rules example runs`() {
        Crm.openInMemory().use { crm ->
            crm.setTeam(Team("sales", listOf(TeamMember("ana"), TeamMember("bo", capacity = 20u))))
            crm.createRule(
                NewRule(
                    name = "first purchase",
                    trigger = Trigger.InteractionLogged(kind = InteractionKind.Purchase),
                    condition = "count(purchases) >= 1",
                    actions = listOf(
                        Action.SetStage("customer"),
                        Action.AssignOwner(Assignment.RoundRobin(team = "sales")),
                        Action.CreateTask("Welcome call with {name}", dueInDays = 2u),
                        Action.Emit("became_customer"),
                    ),
                ),
            )
            crm.setRuleEventHandler(object : RuleEventHandler {
                override fun onRuleEvent(event: RuleEvent) {
                    println("${event.event} ${event.customerId}")  // hand it to a queue; throwing rolls back
                }
            })

            val ana = crm.createCustomer(NewCustomer(name = "Ana Novak"))
            crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Purchase))
            println(crm.getCustomer(ana.id).owner)                       // ana
            for (effect in crm.ruleEffects(EffectsQuery(entityId = ana.id))) {
                println(effect.detail)  // assigned to ana by rule 'first purchase': round-robin over team 'sales', …
            }

            // Rules are data: store them as JSON, check them before enabling.
            val json = ruleToJson(crm.rule("first purchase").let {
                NewRule(it.name, it.trigger, it.actions, it.condition, it.description, enabled = false)
            })
            val preview = crm.dryRunRule(ruleFromJson(json), limit = 10u)
            println("${preview.matching} match; ${preview.effects.size} effects")

            val stored = crm.getCustomer(ana.id)
            assertEquals("customer", stored.lifecycleStage)
            assertEquals("ana", stored.owner)
            assertEquals(1UL, preview.matching)
        }
    }

    // ----- triggers, actions and the change log -------------------------------------

    @Test
    fun `a purchase moves the customer and the change log names the rule`() = memory().use { crm ->
        crm.createRule(
            NewRule(
                "repeat buyer",
                Trigger.InteractionLogged(InteractionKind.Purchase),
                listOf(Action.SetStage("customer"), Action.AddTag("repeat")),
                condition = "count(purchases) >= 2",
            ),
        )
        val ana = crm.person("Ana")
        crm.purchase(ana.id)
        assertEquals("subscriber", crm.getCustomer(ana.id).lifecycleStage)
        // A call is not a purchase: the trigger's kind filters it out.
        crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Call))
        assertTrue(crm.getCustomer(ana.id).tags.isEmpty())
        crm.purchase(ana.id)
        val moved = crm.getCustomer(ana.id)
        assertEquals("customer", moved.lifecycleStage)
        assertEquals(listOf("repeat"), moved.tags)

        val byRule = crm.customerHistory(ana.id).filter { it.rule != null }
        assertEquals(1, byRule.size)
        assertEquals("repeat buyer", byRule[0].rule)
        assertEquals(ChangeOp.UPDATED, byRule[0].op)
        assertTrue("lifecycle_stage" in byRule[0].fields)

        val last = crm.stageHistory(ana.id).last()
        assertEquals(TransitionCause.RULE, last.cause)
        assertEquals("repeat buyer", last.rule)

        val details = crm.effectsOn(ana.id).map { it.detail }
        assertTrue("moved from stage 'subscriber' to 'customer'" in details, "$details")
        assertTrue("added tag 'repeat'" in details, "$details")
        val effect = crm.effectsOn(ana.id).first()
        assertEquals(EntityKind.CUSTOMER, effect.entity)
        assertEquals(1u, effect.ruleVersion)
    }

    @Test
    fun `the returned customer includes what rules did on creation`() = memory().use { crm ->
        crm.createRule(NewRule("tag new", Trigger.CustomerCreated, listOf(Action.AddTag("new"))))
        assertEquals(listOf("new"), crm.person("Ana").tags)
    }

    @Test
    fun `set attribute takes a typed value`() = memory().use { crm ->
        crm.defineAttribute("since", AttributeType.DATE)
        crm.createRule(
            NewRule("stamp", Trigger.CustomerCreated, listOf(Action.SetAttribute("since", AttributeValue.Date("2024-05-01")))),
        )
        assertEquals(AttributeValue.Date("2024-05-01"), crm.person("Ana").attributes["since"])
        assertEquals(
            "actions[0].value",
            assertThrows<CrmException.Validation> {
                crm.createRule(NewRule("bad", Trigger.CustomerCreated, listOf(Action.SetAttribute("since", AttributeValue.Date("May")))))
            }.field,
        )
    }

    // ----- assignment -----------------------------------------------------------------

    @Test
    fun `round robin skips members who are out and explains itself`() = memory().use { crm ->
        crm.team("sales", "ana", "bo", "cy")
        val team = crm.setMemberOut("sales", "bo", true)
        assertEquals(listOf(false, true, false), team.members.map { it.out })
        crm.createRule(NewRule("assign new", Trigger.CustomerCreated, listOf(Action.AssignOwner(Assignment.RoundRobin("sales")))))
        val customers = (0 until 4).map { crm.person("c$it") }
        assertEquals(listOf("ana", "cy", "ana", "cy"), customers.map { it.owner })
        assertEquals(
            "assigned to cy by rule 'assign new': round-robin over team 'sales', next after ana; bo is out",
            crm.effectsOn(customers[1].id)[0].detail,
        )
        // Someone who already has an owner keeps them (overwrite is false by default).
        assertEquals("zed", crm.createCustomer(NewCustomer(name = "Owned", owner = "zed")).owner)
        assertEquals(listOf("sales"), crm.teams().map { it.name })
        assertEquals(crm.team("sales"), team)
    }

    @Test
    fun `territory assigns by country and falls back to the team`() = memory().use { crm ->
        crm.team("field", "maja", "sven")
        crm.createRule(
            NewRule(
                "territories",
                Trigger.CustomerCreated,
                listOf(Action.AssignOwner(Assignment.Territory("country", mapOf("SE" to "sven"), "field"))),
            ),
        )
        assertEquals("sven", crm.person("Swede", country = "SE").owner)
        val fr = crm.person("French", country = "FR")
        assertEquals("maja", fr.owner)
        val why = crm.effectsOn(fr.id)[0].detail
        assertTrue("territory: no owner for country 'FR', so least open work" in why, why)
        // The assignment reads back as it was given.
        val action = crm.rule("territories").actions[0] as Action.AssignOwner
        assertEquals(Assignment.Territory("country", mapOf("SE" to "sven"), "field"), action.assignment)
        assertFalse(action.overwrite)
    }

    @Test
    fun `create task fills its title template and follows capacity`() = memory().use { crm ->
        crm.setTeam(Team("support", listOf(TeamMember("ana", capacity = 1u), TeamMember("bo", capacity = 1u))))
        crm.createRule(
            NewRule(
                "welcome call",
                Trigger.CustomerCreated,
                listOf(Action.CreateTask("Welcome {name}", dueInDays = 2u, assign = Assignment.LeastOpenWork("support"))),
            ),
        )
        val stored = crm.rule("welcome call").actions[0] as Action.CreateTask
        assertEquals(Priority.NORMAL, stored.priority)  // crm-core's default, filled in
        crm.person("Ana Novak")
        crm.person("Bo Berg")
        crm.person("Cy Doe")
        val details = crm.ruleEffects(EffectsQuery(rule = "welcome call"))
            .filter { it.entity == EntityKind.TASK }
            .map { it.detail }
            .sorted()
        assertEquals(3, details.size, "$details")
        assertTrue(details[0].startsWith("created task 'Welcome Ana Novak' for ana, assigned by rule 'welcome call'"), details[0])
        assertTrue(details[1].startsWith("created task 'Welcome Bo Berg' for bo"), details[1])
        // Both members are at capacity: the third task goes to nobody.
        assertEquals("created task 'Welcome Cy Doe' (unassigned)", details[2])
        val taskChanges = crm.changesSince(0, 1000u).filter { it.entity == EntityKind.TASK }
        assertEquals(3, taskChanges.size)
        assertTrue(taskChanges.all { it.rule == "welcome call" && it.op == ChangeOp.CREATED })

        val tasks = crm.tasks().items
        assertEquals(listOf("Welcome Ana Novak", "Welcome Bo Berg", "Welcome Cy Doe"), tasks.map { it.title })
        assertEquals(listOf("ana", "bo", null), tasks.map { it.owner })
        assertTrue(tasks.all { it.rule == "welcome call" && it.priority == Priority.NORMAL })
        assertTrue(tasks[0].dueAt!! > tasks[0].createdAt)
    }

    @Test
    fun `a deal changing stage creates a task for its owner`() = memory().use { crm ->
        crm.createPipeline(
            "sales",
            "EUR",
            listOf(PipelineStage("lead", 10u), PipelineStage("proposal", 50u), PipelineStage("won", 100u, closed = true, won = true)),
        )
        crm.createRule(
            NewRule(
                "proposal follow-up",
                Trigger.DealStageChanged(pipeline = "sales", toStage = "proposal"),
                listOf(Action.CreateTask("Follow up {deal.title} for {name}", dueInDays = 3u, priority = Priority.HIGH)),
            ),
        )
        val ana = crm.person("Ana")
        val deal = crm.createDeal(NewDeal("sales", "Big order", 100_000, owner = "maja", customerId = ana.id))
        crm.moveDeal(deal.id, "proposal")
        val tasks = crm.tasks(TaskQuery(dealId = deal.id)).items
        assertEquals(1, tasks.size)
        assertEquals("Follow up Big order for Ana", tasks[0].title)
        assertEquals("maja", tasks[0].owner)
        assertEquals(ana.id, tasks[0].customerId)
        assertEquals(Priority.HIGH, tasks[0].priority)
        assertEquals("proposal follow-up", tasks[0].rule)
        assertEquals("created task 'Follow up Big order for Ana' for maja", crm.effectsOn(tasks[0].id).single().detail)
    }

    // ----- the host's event handler -------------------------------------------------------

    @Test
    fun `an emitted event reaches the Kotlin handler and a throwing handler rolls the write back`() = memory().use { crm ->
        crm.createRule(
            NewRule("vip alert", Trigger.CustomerCreated, listOf(Action.Emit("vip_created")), condition = """"vip" in tags"""),
        )
        val seen = ConcurrentLinkedQueue<RuleEvent>()
        crm.setRuleEventHandler(object : RuleEventHandler {
            override fun onRuleEvent(event: RuleEvent) {
                seen.add(event)
            }
        })
        val vip = crm.person("Vip", tags = listOf("vip"))
        crm.person("Not vip")
        assertEquals(listOf(RuleEvent("vip_created", "vip alert", "customer_created", vip.id, null)), seen.toList())

        crm.setRuleEventHandler(object : RuleEventHandler {
            override fun onRuleEvent(event: RuleEvent): Unit = throw IllegalStateException("queue is down")
        })
        val before = crm.countCustomers()
        val e = assertThrows<CrmException.Rule> { crm.person("Vip 2", tags = listOf("vip")) }
        assertEquals("vip alert", e.rule)
        assertTrue("queue is down" in e.reason, e.reason)
        assertEquals(before, crm.countCustomers())

        // A CrmException thrown by the handler is a failure too.
        crm.setRuleEventHandler(object : RuleEventHandler {
            override fun onRuleEvent(event: RuleEvent): Unit = throw CrmException.Busy()
        })
        val busy = assertThrows<CrmException.Rule> { crm.person("Vip 3", tags = listOf("vip")) }
        assertTrue("locked" in busy.reason, busy.reason)
        assertEquals(before, crm.countCustomers())

        // Without a handler, events are only recorded; the handle still works.
        crm.setRuleEventHandler(null)
        val after = crm.person("Vip 4", tags = listOf("vip"))
        assertEquals(listOf("emit"), crm.effectsOn(after.id).map { it.action })
        assertEquals(1, seen.size)
    }

    // ----- cascades ---------------------------------------------------------------------

    @Test
    fun `rules that undo each other are reported as a cycle and nothing is written`() = memory().use { crm ->
        val watchTags = Trigger.CustomerUpdated(fields = listOf("tags"))
        crm.createRule(
            NewRule("cool down", watchTags, listOf(Action.RemoveTag("hot"), Action.AddTag("cold")), condition = """"hot" in tags"""),
        )
        crm.createRule(
            NewRule("heat up", watchTags, listOf(Action.RemoveTag("cold"), Action.AddTag("hot")), condition = """"cold" in tags"""),
        )
        val ana = crm.person("Ana")
        val e = assertThrows<CrmException.Rule> { crm.updateCustomer(ana.id, CustomerPatch(tags = listOf("hot"))) }
        assertTrue("cycle" in e.reason, e.reason)
        assertTrue("cool down →" in e.reason, e.reason)
        assertTrue(crm.getCustomer(ana.id).tags.isEmpty())
    }

    @Test
    fun `segment membership triggers rules and actions cascade`() = memory().use { crm ->
        crm.createSegment("vip list")
        crm.createRule(
            NewRule("list vips", Trigger.CustomerUpdated(listOf("tags")), listOf(Action.AddToSegment("vip list")), condition = """"vip" in tags"""),
        )
        crm.createRule(NewRule("vips are qualified", Trigger.SegmentEntered("vip list"), listOf(Action.SetStage("sql"))))
        val ana = crm.updateCustomer(crm.person("Ana").id, CustomerPatch(tags = listOf("vip")))
        assertTrue(crm.segmentContains("vip list", ana.id))
        assertEquals("sql", ana.lifecycleStage)
    }

    // ----- the sweep, dry runs, versions --------------------------------------------------

    @Test
    fun `the sweep acts once per customer until they stop matching`() = memory().use { crm ->
        crm.createRule(NewRule("churn dormant", Trigger.Schedule, listOf(Action.SetStage("churned")), condition = """"dormant" in tags"""))
        val ana = crm.person("Ana", tags = listOf("dormant"))
        crm.person("Bo")
        val at = Instant.parse("2030-01-01T00:00:00Z")
        val report = crm.runSweep(at)
        assertEquals(at, report.at)
        assertEquals(listOf(SweepRule("churn dormant", matching = 1UL, actedOn = 1UL)), report.rules)
        assertEquals("churned", crm.getCustomer(ana.id).lifecycleStage)
        // Moved back by hand: the sweep does not act again while she still matches.
        crm.setLifecycleStage(ana.id, "lead")
        assertEquals(0UL, crm.runSweep().rules[0].actedOn)
        assertEquals("lead", crm.getCustomer(ana.id).lifecycleStage)
        // She stops matching, then matches again: acted on again.
        crm.updateCustomer(ana.id, CustomerPatch(tags = emptyList()))
        assertEquals(0UL, crm.runSweep().rules[0].matching)
        crm.updateCustomer(ana.id, CustomerPatch(tags = listOf("dormant")))
        assertEquals(1UL, crm.runSweep().rules[0].actedOn)
    }

    @Test
    fun `a dry run shows effects and stores nothing`() = memory().use { crm ->
        crm.team("sales", "ana")
        for (i in 0 until 5) crm.person("c$i", country = if (i % 2 == 0) "SI" else "AT")
        val changesBefore = crm.changesSince(0, 10_000u).size
        val rule = NewRule(
            "tag si",
            Trigger.CustomerCreated,
            listOf(Action.AddTag("si"), Action.AssignOwner(Assignment.RoundRobin("sales")), Action.Emit("tagged")),
            condition = """country = "SI"""",
        )
        val run = crm.dryRunRule(rule, 2u)
        assertEquals(3UL, run.matching)
        assertEquals(2UL, run.simulated)
        assertEquals(6, run.effects.size)
        assertTrue(run.effects.any { it.detail == "would emit event 'tagged'" })
        assertEquals(0UL, crm.countMatching(""""si" in tags"""))
        assertEquals(changesBefore, crm.changesSince(0, 10_000u).size)
        assertTrue(crm.rules().isEmpty())
        assertTrue(crm.ruleEffects().isEmpty())
    }

    @Test
    fun `rules are versioned and disabled rules do not run`() = memory().use { crm ->
        val rule = NewRule("tagger", Trigger.CustomerCreated, listOf(Action.AddTag("a")))
        val created = crm.createRule(rule)
        assertEquals(1u, created.version)
        assertTrue(created.enabled)
        assertEquals(2u, crm.updateRule("tagger", rule.copy(actions = listOf(Action.AddTag("b")))).version)
        assertEquals(listOf("b"), crm.person("x").tags)
        val off = crm.setRuleEnabled("tagger", false)
        assertEquals(3u, off.version)
        assertFalse(off.enabled)
        assertTrue(crm.person("y").tags.isEmpty())
        val versions = crm.ruleVersions("tagger")
        assertEquals(listOf(1u, 2u, 3u), versions.map { it.version })
        assertEquals(listOf<Action>(Action.AddTag("a")), versions[0].actions)
        assertFalse(versions[2].enabled)
        assertEquals(listOf("tagger"), crm.rules().map { it.name })
        crm.deleteRule("tagger")
        assertEquals("rule", assertThrows<CrmException.NotFound> { crm.rule("tagger") }.entity)
    }

    @Test
    fun `rules round-trip through JSON`() {
        val rule = NewRule(
            "follow up",
            Trigger.DealStageChanged(pipeline = "sales", toStage = "proposal"),
            listOf(
                Action.CreateTask("Follow up {deal.title}", dueInDays = 3u, priority = Priority.HIGH, assign = Assignment.RoundRobin("sales")),
                Action.AssignOwner(Assignment.Territory("region", mapOf("north" to "ana"), "sales"), overwrite = true),
                Action.SetAttribute("score", AttributeValue.Number(1.5)),
                Action.RemoveFromSegment("old"),
            ),
            condition = "count(purchases) >= 1",
            description = "after a proposal",
            enabled = false,
        )
        val json = ruleToJson(rule)
        assertTrue(""""type":"deal_stage_changed"""" in json, json)
        assertEquals(rule, ruleFromJson(json))
        val read = ruleFromJson("""{"name": "vip", "trigger": {"type": "customer_created"}, "actions": [{"type": "add_tag", "tag": "new"}]}""")
        assertEquals(NewRule("vip", Trigger.CustomerCreated, listOf(Action.AddTag("new"))), read)
    }

    // ----- bad input --------------------------------------------------------------------

    @Test
    fun `bad rules are refused with typed errors and nothing is stored`() = memory().use { crm ->
        fun base(vararg actions: Action = arrayOf(Action.AddTag("x"))) = NewRule("r", Trigger.CustomerCreated, actions.toList())

        val parse = assertThrows<CrmException.Parse> { crm.createRule(base().copy(condition = """contry = "SI"""")) }
        assertEquals("country", parse.suggestion)

        val unknown = assertThrows<CrmException.Validation> {
            ruleFromJson("""{"name": "r", "trigger": {"type": "customer_created"}, "actions": [{"type": "send_fax"}]}""")
        }
        assertEquals("rule", unknown.field)
        assertTrue("send_fax" in unknown.reason, unknown.reason)

        val stage = assertThrows<CrmException.Validation> { crm.createRule(base(Action.SetStage("custmer"))) }
        assertEquals("actions[0].stage", stage.field)
        assertTrue("did you mean 'customer'" in stage.reason, stage.reason)

        val team = assertThrows<CrmException.Validation> { crm.createRule(base(Action.AssignOwner(Assignment.RoundRobin("ghosts")))) }
        assertEquals("actions[0].assignment.team", team.field)
        assertEquals("members", assertThrows<CrmException.Validation> { crm.setTeam(Team("empty", emptyList())) }.field)

        // No actions, or a trigger on a segment that does not exist.
        assertThrows<CrmException.Validation> { crm.createRule(base().copy(actions = emptyList())) }
        assertEquals(
            "trigger.segment",
            assertThrows<CrmException.Validation> { crm.createRule(base().copy(trigger = Trigger.SegmentEntered("nope"))) }.field,
        )
        assertTrue(crm.rules().isEmpty())

        // A duplicate name is a conflict; a team a rule assigns from can't be deleted.
        crm.createRule(base())
        assertThrows<CrmException.Conflict> { crm.createRule(base()) }
        crm.team("sales", "ana")
        crm.createRule(NewRule("assign", Trigger.CustomerCreated, listOf(Action.AssignOwner(Assignment.LeastOpenWork("sales"), overwrite = true))))
        assertThrows<CrmException.Conflict> { crm.deleteTeam("sales") }
        assertEquals("team member", assertThrows<CrmException.NotFound> { crm.setMemberOut("sales", "zed", true) }.entity)
        crm.deleteRule("assign")
        crm.deleteTeam("sales")
        assertTrue(crm.teams().isEmpty())
    }
}
