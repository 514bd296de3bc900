package com.crmengine

import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.UUID
import kotlin.math.abs
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Analytics over the store through the binding: scores computed from the
 * purchase log equal the analytics functions on the same log (one core),
 * are fields of the filter language and read back per customer; bad input
 * is `Validation` and changes nothing; satisfaction (NPS, CSAT) per period
 * and segment; retention cohorts.
 */
class InsightsTest {
    /** A CRM with a purchase log, the ids of its buyers (in key order) and of customers without purchases. */
    private class Store(val crm: Crm, val ids: List<String>, val idle: List<String>, val log: List<AnalyticsTransaction>)

    private val end: Instant = Instant.parse("2025-06-30T23:00:00Z")

    /**
     * [buyers] customers who buy at their own pace over the year to [end] and
     * may stop (0 to a dozen repeat purchases), EUR amounts around their own
     * basket, and [idle] customers without purchases. In the log each buyer
     * is a zero-padded key ("c0007") created in key order, so the analytics
     * functions order customers as the store does.
     */
    private fun store(buyers: Int = 400, idle: Int = 5, seed: Long = 11, end: Instant = this.end): Store {
        val rng = java.util.Random(seed)
        val start = end.minus(Duration.ofDays(365)).plusSeconds(3_600)
        val crm = Crm.openInMemory()
        val ids = (0 until buyers).map { crm.createCustomer(NewCustomer(name = key(it))).id }
        val idleIds = (0 until idle).map { crm.createCustomer(NewCustomer(name = "idle $it")).id }
        val log = mutableListOf<AnalyticsTransaction>()
        for (c in 0 until buyers) {
            val perDay = 0.005 + rng.nextDouble() * 0.06
            val dropout = 0.05 + rng.nextDouble() * 0.4
            val basket = 1_000L + rng.nextInt(9_000)
            var d = rng.nextInt(365)
            // Whole seconds, the last day's before the end.
            val at = { day: Int -> start.plus(Duration.ofDays(day.toLong())).plusSeconds(rng.nextInt(82_800).toLong()) }
            log += AnalyticsTransaction(key(c), at(d), basket)
            while (++d < 365) {
                if (rng.nextDouble() < perDay) {
                    log += AnalyticsTransaction(key(c), at(d), basket / 2 + rng.nextInt(basket.toInt()))
                    if (rng.nextDouble() < dropout) break
                }
            }
        }
        val report = crm.importInteractions(
            log.map { t ->
                NewInteraction(
                    CustomerRef.Id(ids[t.customer.drop(1).toInt()]), InteractionKind.Purchase,
                    occurredAt = t.at, amountMinor = t.amountMinor, currency = "EUR",
                )
            },
        )
        assertEquals(log.size.toULong(), report.inserted)
        return Store(crm, ids, idleIds, log)
    }

    private fun key(c: Int) = "c%04d".format(c)

    private fun options() = ScoreOptions(observationEnd = end)

    private fun assertClose(want: Double, got: Double, what: String, rel: Double = 1e-9) {
        val err = if (want == got) 0.0 else abs(got - want) / abs(want)
        assertTrue(err <= rel, "$what: got $got, want $want (relative difference $err)")
    }

    /** The field of the `Validation` the call throws (with a reason). */
    private fun field(call: () -> Any?): String {
        val e = assertThrows<CrmException.Validation> { call() }
        assertTrue(e.reason.isNotBlank())
        return e.field
    }

    // ----- README ------------------------------------------------------------------------

    @Test
    fun `the README example runs`() {
        // A year of purchases up to today, since the example scores as of now
        // (the same days before today whatever the date).
        val s = store(buyers = 300, idle = 1, end = Instant.now().truncatedTo(ChronoUnit.DAYS))
        val crm = s.crm
        crm.updateCustomer(s.ids[0], CustomerPatch(country = "SI", tags = listOf("vip")))
        crm.logInteraction(NewInteraction(CustomerRef.Id(s.ids[0]), InteractionKind.SurveyResponse, score = 9))
        val customerId = s.ids[0]
        // README: from here
        val run = crm.computeScores(ScoreOptions(currency = "EUR"))     // fits, scores and stores every buyer
        println("${run.customers} customers, P(alive) model r=${run.bgnbd.r}, spend model p=${run.gammaGamma.p}")
        val atRisk = crm.countMatching("p_alive < 0.3 and rfm.m >= 4")  // valuable, probably gone
        val champions = crm.findMatching("""rfm.segment = "champions"""", limit = 50u)
        val scores = crm.customerScores(customerId)                     // null: no purchase at the last run
        println("P(alive) ${scores?.pAlive}, CLV ${scores?.clv} EUR, ${scores?.rfmSegment}")

        val nps = crm.satisfaction(SatisfactionQuery(period = Period.QUARTER), segment = """"vip" in tags""")
        nps.forEach { println("${it.periodStart}: NPS ${it.nps}, CSAT ${it.csat} % of ${it.responses}") }
        val retention = crm.cohortRetention(CohortQuery(), segment = """country = "SI"""")
        // README: to here
        assertEquals(300UL, run.customers)
        assertTrue(atRisk < 300UL)
        assertTrue(champions.items.isNotEmpty())
        assertNotNull(scores)
        assertEquals(listOf(1UL), nps.map { it.responses })
        assertEquals(listOf(1UL), retention.sizes.filter { it > 0UL })
    }

    // ----- scores ----------------------------------------------------------------------

    @Test
    fun `stored scores equal the analytics functions on the same purchase log`() {
        val s = store()
        val run = s.crm.computeScores(options())

        // The same pipeline on the log itself, as a data scientist would run it.
        val summary = summarizeTransactions(s.log, SummaryOptions(TimeUnit.DAYS, end))
        val (x, tx, t) = Triple(summary.frequency, summary.recency, summary.t)
        val bg = fitBgnbd(x, tx, t)
        val pAlive = bg.pAlive(x, tx, t)
        val expected = bg.expectedPurchases(90.0, x, tx, t)
        val monetary = summary.monetaryValue.map { it / 100 }       // EUR: major units
        val gg = fitGammaGamma(x, monetary)
        val value = gg.expectedAverageValue(x, monetary)
        val clv = gg.clv(bg, x, tx, t, monetary, ClvOptions(unit = TimeUnit.DAYS))
        val rfm = rfmScores(t.zip(tx) { a, b -> a - b }, x.map { it + 1 }, summary.totalMinor)

        // The run: every buyer, every purchase, the options filled in.
        assertEquals(s.log.map { it.customer }.distinct().size, summary.customers.size)
        assertEquals(summary.customers.size.toULong(), run.customers)
        assertEquals(s.log.size.toULong(), run.purchases)
        assertEquals(0UL, run.skippedRefunds)
        assertEquals(0UL, run.skippedOtherCurrency)
        assertEquals(end, run.observationEnd)
        assertEquals(
            ScoreOptions(
                kind = InteractionKind.Purchase, currency = "EUR", unit = TimeUnit.DAYS, observationEnd = end,
                horizonDays = 90u, clvMonths = 12u, discountRate = 0.01, penalizer = 0.0,
            ),
            run.options,
        )
        assertEquals(run, s.crm.scoreRun())
        // The models, as the records the analytics functions return.
        listOf(bg.r to run.bgnbd.r, bg.alpha to run.bgnbd.alpha, bg.a to run.bgnbd.a, bg.b to run.bgnbd.b)
            .forEach { (want, got) -> assertClose(want, got, "BG/NBD parameter") }
        assertClose(bg.logLikelihood!!, run.bgnbd.logLikelihood!!, "BG/NBD log-likelihood")
        assertEquals(bg.customers, run.bgnbd.customers)
        listOf(gg.p to run.gammaGamma.p, gg.q to run.gammaGamma.q, gg.gamma to run.gammaGamma.gamma)
            .forEach { (want, got) -> assertClose(want, got, "Gamma-Gamma parameter") }
        assertEquals(4, run.bgnbd.standardErrors!!.size)

        // Each customer's scores.
        summary.customers.forEachIndexed { i, key ->
            val id = s.ids[key.drop(1).toInt()]
            val got = s.crm.customerScores(id)!!
            assertEquals(id, got.customerId)
            assertEquals(Triple(x[i], tx[i], t[i]), Triple(got.frequency, got.recency, got.t), key)
            assertEquals(summary.totalMinor[i], got.totalMinor, key)
            assertClose(monetary[i], got.monetaryValue, "monetary value of $key")
            assertClose(pAlive[i], got.pAlive, "p_alive of $key")
            assertClose(expected[i], got.expectedPurchases, "expected purchases of $key")
            assertClose(value[i], got.expectedValue, "expected value of $key")
            assertClose(clv[i], got.clv, "clv of $key")
            assertEquals(listOf(rfm.recency[i], rfm.frequency[i], rfm.monetary[i]), listOf(got.rfmR, got.rfmF, got.rfmM), key)
            assertEquals(rfm.segments[i], got.rfmSegment, key)
        }
    }

    @Test
    fun `stored scores are fields of the filter language and agree with customerScores`() {
        val s = store()
        s.crm.computeScores(options())
        val scores = s.ids.map { s.crm.customerScores(it)!! }

        val low = scores.count { it.pAlive < 0.3 }
        assertTrue(low in 1 until scores.size, "the data has both kinds: $low of ${scores.size}")
        assertEquals(low.toULong(), s.crm.countMatching("p_alive < 0.3"))
        val champions = scores.count { it.rfmSegment == RfmSegment.CHAMPIONS }
        assertTrue(champions > 0)
        assertEquals(champions.toULong(), s.crm.countMatching("""rfm.segment = "champions""""))
        assertEquals(scores.count { it.rfmR >= 4 && it.clv > 50 }.toULong(), s.crm.countMatching("rfm.r >= 4 and clv > 50"))
        // Every found customer is one whose scores say so.
        val found = s.crm.findMatching("p_alive < 0.3", limit = 10_000u).items.map { it.id }.toSet()
        assertEquals(s.ids.filterIndexed { i, _ -> scores[i].pAlive < 0.3 }.toSet(), found)
        val one = s.ids[scores.indexOfFirst { it.rfmSegment == RfmSegment.CHAMPIONS }]
        assertTrue(s.crm.customerMatches(one, """rfm.segment = "champions""""))

        // Customers without a purchase have no scores: a comparison on them is false.
        s.idle.forEach { assertNull(s.crm.customerScores(it)) }
        assertEquals(s.idle.size.toULong(), s.crm.countMatching("p_alive is null"))
        assertEquals((s.idle.size + scores.size - low).toULong(), s.crm.countMatching("not p_alive < 0.3"))
        val e = assertThrows<CrmException.Parse> { s.crm.countMatching("palive < 0.3") }
        assertEquals("p_alive", e.suggestion)
    }

    @Test
    fun `weekly scores count in weeks`() {
        val s = store(buyers = 300)
        val run = s.crm.computeScores(ScoreOptions(unit = TimeUnit.WEEKS, horizonDays = 28u, observationEnd = end))
        assertEquals(TimeUnit.WEEKS, run.options.unit)
        val summary = summarizeTransactions(s.log, SummaryOptions(TimeUnit.WEEKS, end))
        val bg = fitBgnbd(summary.frequency, summary.recency, summary.t)
        assertClose(bg.r, run.bgnbd.r, "r")
        val first = s.crm.customerScores(s.ids[0])!!
        assertEquals(summary.t[0], first.t)
        val expected = bg.expectedPurchases(4.0, summary.frequency, summary.recency, summary.t)[0]
        assertClose(expected, first.expectedPurchases, "expected purchases in 4 weeks")
    }

    @Test
    fun `an unknown customer is NotFound and a malformed id Validation`() {
        val s = store(buyers = 300, idle = 0)
        s.crm.computeScores(options())
        val e = assertThrows<CrmException.NotFound> { s.crm.customerScores(UUID.randomUUID().toString()) }
        assertEquals("customer", e.entity)
        assertEquals("customer_id", field { s.crm.customerScores("not an id") })
        // A deleted customer's scores go with them.
        s.crm.deleteCustomer(s.ids[0])
        assertThrows<CrmException.NotFound> { s.crm.customerScores(s.ids[0]) }
        assertEquals(299UL, s.crm.countMatching("p_alive is not null"))
    }

    @Test
    fun `bad options and unfit data are validation errors and change nothing`() {
        Crm.openInMemory().use { empty ->
            assertEquals("purchases", field { empty.computeScores() })
            assertNull(empty.scoreRun())
        }

        val s = store(buyers = 300)
        val first = s.crm.computeScores(options())
        val before = s.crm.customerScores(s.ids[0])
        val unchanged = { what: String ->
            assertEquals(first, s.crm.scoreRun(), what)
            assertEquals(before, s.crm.customerScores(s.ids[0]), what)
        }
        for ((bad, name) in listOf(
            options().copy(horizonDays = 0u) to "horizon_days",
            options().copy(horizonDays = 3_651u) to "horizon_days",
            options().copy(clvMonths = 500u) to "clv_months",
            options().copy(discountRate = Double.NaN) to "discount_rate",
            options().copy(penalizer = -1.0) to "penalizer",
            options().copy(currency = "EURO") to "currency",
            options().copy(kind = InteractionKind.Custom("")) to "kind",
            options().copy(observationEnd = Instant.MAX) to "observation_end",
            // Nothing in that currency, or nobody yet: no purchases to fit.
            options().copy(currency = "JPY") to "purchases",
            options().copy(observationEnd = end.minus(Duration.ofDays(3_000))) to "purchases",
        )) {
            assertEquals(name, field { s.crm.computeScores(bad) }, "$bad")
            unchanged(name)
        }

        // A second currency: the caller must choose one.
        s.crm.logInteraction(
            NewInteraction(CustomerRef.Id(s.ids[1]), InteractionKind.Purchase, occurredAt = end.minusSeconds(86_400), amountMinor = 900L, currency = "USD"),
        )
        val twoCurrencies = assertThrows<CrmException.Validation> { s.crm.computeScores(options()) }
        assertEquals("currency", twoCurrencies.field)
        assertTrue(twoCurrencies.reason.contains("EUR, USD"), twoCurrencies.reason)
        unchanged("two currencies")
        val euros = s.crm.computeScores(options().copy(currency = "eur"))
        assertEquals("EUR", euros.options.currency)
        assertEquals(1UL, euros.skippedOtherCurrency)
        assertEquals(first.bgnbd, euros.bgnbd)
        assertEquals(euros, s.crm.scoreRun())
    }

    // ----- satisfaction --------------------------------------------------------------

    @Test
    fun `satisfaction gives NPS and CSAT per period and per segment`() = Crm.openInMemory().use { crm ->
        val vip = crm.createCustomer(NewCustomer(name = "V", tags = listOf("vip"))).id
        val other = crm.createCustomer(NewCustomer(name = "O")).id
        val jan = { d: Int -> Instant.parse("2025-01-%02dT12:00:00Z".format(d)) }
        val mar = { d: Int -> Instant.parse("2025-03-%02dT12:00:00Z".format(d)) }
        val answer = { who: String, at: Instant, score: Int, subject: String ->
            crm.logInteraction(NewInteraction(CustomerRef.Id(who), InteractionKind.SurveyResponse, occurredAt = at, subject = subject, score = score))
        }
        // January: 10, 9, 8, 2 → 2 promoters, 1 passive, 1 detractor.
        listOf(vip to 10, vip to 9, other to 8, other to 2).forEach { (who, score) -> answer(who, jan(5), score, "nps") }
        // March: 6 and 0 from the VIP, and an answer to another survey.
        answer(vip, mar(1), 6, "nps")
        answer(vip, mar(31), 0, "nps")
        answer(other, mar(2), 9, "csat")
        // Not a survey answer, or without a score: not counted.
        crm.logInteraction(NewInteraction(CustomerRef.Id(other), InteractionKind.SurveyResponse, occurredAt = jan(6), subject = "nps"))
        crm.logInteraction(NewInteraction(CustomerRef.Id(other), InteractionKind.Call, occurredAt = jan(6), score = 0))

        val nps = SatisfactionQuery(subject = "nps")
        val months = crm.satisfaction(nps)
        assertEquals(listOf("2025-01-01", "2025-03-01"), months.map { it.periodStart }, "February had no answers")
        assertEquals(
            Satisfaction(
                periodStart = "2025-01-01", responses = 4UL, promoters = 2UL, passives = 1UL, detractors = 1UL,
                nps = 25.0, satisfied = 3UL, csat = 75.0, meanScore = 7.25,
            ),
            months[0],
        )
        assertEquals(Triple(2UL, -100.0, 0.0), months[1].let { Triple(it.responses, it.nps, it.csat) })
        // Every survey by default, by month.
        assertEquals(listOf(4UL, 3UL), crm.satisfaction().map { it.responses })

        val vips = crm.satisfaction(nps.copy(period = Period.ALL), segment = """"vip" in tags""")
        assertEquals(1, vips.size)
        assertNull(vips[0].periodStart)
        assertEquals(4UL, vips[0].responses)
        assertEquals(0.0, vips[0].nps)          // 2 promoters, 2 detractors

        val quarters = crm.satisfaction(SatisfactionQuery(period = Period.QUARTER, satisfiedFrom = 9))
        assertEquals(listOf("2025-01-01"), quarters.map { it.periodStart })
        assertEquals(7UL to 3UL, quarters[0].responses to quarters[0].satisfied)
        val weeks = crm.satisfaction(nps.copy(from = mar(1), to = mar(31), period = Period.WEEK))
        assertEquals(listOf("2025-02-24"), weeks.map { it.periodStart }, "the end is exclusive; weeks start on Monday")
        assertEquals(listOf("2025-01-05", "2025-03-01", "2025-03-31"), crm.satisfaction(nps.copy(period = Period.DAY)).map { it.periodStart })
        assertEquals(listOf("2025-01-01"), crm.satisfaction(nps.copy(period = Period.YEAR)).map { it.periodStart })
        assertTrue(crm.satisfaction(nps.copy(subject = "none")).isEmpty())

        assertEquals("satisfied_from", field { crm.satisfaction(nps.copy(satisfiedFrom = 11)) })
        assertEquals("satisfied_from", field { crm.satisfaction(nps.copy(satisfiedFrom = -1)) })
        assertEquals("from", field { crm.satisfaction(nps.copy(from = mar(2), to = jan(1))) })
        assertEquals("to", field { crm.satisfaction(nps.copy(to = Instant.MAX)) })
        val parse = assertThrows<CrmException.Parse> { crm.satisfaction(nps, segment = "vip in tagz") }
        assertEquals(1u, parse.line)
    }

    // ----- cohorts ----------------------------------------------------------------------

    @Test
    fun `cohorts from the store equal cohortRetention on the same log and follow a segment`() {
        val s = store()
        val query = CohortQuery(observationEnd = end)
        val stored = s.crm.cohortRetention(query)
        assertEquals(cohortRetention(s.log, end), stored)
        assertEquals(12, stored.cohorts.size)
        assertEquals("2024-07-01", stored.cohorts[0])
        assertEquals(s.ids.size.toULong(), stored.sizes.sum())

        // A segment: the first 100 customers, tagged.
        s.ids.take(100).forEach { s.crm.updateCustomer(it, CustomerPatch(tags = listOf("early"))) }
        val early = s.log.filter { it.customer < key(100) }
        assertEquals(cohortRetention(early, end), s.crm.cohortRetention(query, segment = """"early" in tags"""))

        // Other interactions are not purchases; an empty CRM has no cohorts.
        assertEquals(Retention(emptyList(), emptyList(), emptyList()), s.crm.cohortRetention(query.copy(kind = InteractionKind.Meeting)))
        Crm.openInMemory().use { assertEquals(Retention(emptyList(), emptyList(), emptyList()), it.cohortRetention()) }
        assertEquals("observation_end", field { s.crm.cohortRetention(CohortQuery(observationEnd = Instant.MIN)) })
        assertThrows<CrmException.Parse> { s.crm.cohortRetention(query, segment = "early in") }
        assertFalse(s.crm.cohortRetention(query, segment = """country = "SI"""").sizes.any { it > 0UL })
    }
}
