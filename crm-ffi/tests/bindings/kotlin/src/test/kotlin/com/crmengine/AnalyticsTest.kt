package com.crmengine

import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import java.time.OffsetDateTime
import kotlin.math.abs
import kotlin.random.Random
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * The analytics functions through the binding: the fits on the CDNOW sample
 * and the reference vectors crm-core is validated against
 * (crm-core/tests/data/analytics), predictions at the edges, summaries with
 * a holdout, RFM, cohorts, and bad input as `CrmException.Validation` naming
 * the element.
 */
class AnalyticsTest {
    private class Cdnow(val x: List<Double>, val tx: List<Double>, val t: List<Double>, val zbar: List<Double>)

    companion object {
        /** crm-core's reference data (Maven runs the tests in this project's directory). */
        private val DATA: Path = Path.of("../../../../crm-core/tests/data/analytics").toAbsolutePath().normalize()

        private fun json(name: String): Any? = Json.parse(Files.readString(DATA.resolve(name)))

        /** The CDNOW sample (Fader, Hardie & Lee 2005): x, t_x, T in weeks, mean repeat spend. */
        private val cdnow: Cdnow by lazy {
            val rows = Files.readAllLines(DATA.resolve("cdnow.csv")).drop(1).filter { it.isNotBlank() }
                .map { line -> line.split(',').drop(1).map(String::toDouble) }
            Cdnow(rows.map { it[0] }, rows.map { it[1] }, rows.map { it[2] }, rows.map { it[3] })
        }

        private val cdnowFit by lazy { json("cdnow_fit.json") }

        /** The published CDNOW estimates, as a model with known parameters. */
        private val PUBLISHED = BgNbdModel(r = 0.243, alpha = 4.414, a = 0.793, b = 2.426)
    }

    // ----- helpers -------------------------------------------------------------------

    private fun assertClose(want: List<Double>, got: List<Double>, rel: Double, what: String, floor: Double = 0.0) {
        assertEquals(want.size, got.size, "$what: length")
        for (i in want.indices) {
            val err = if (got[i] == want[i]) 0.0 else abs(got[i] - want[i]) / maxOf(abs(want[i]), floor)
            assertTrue(err <= rel, "$what[$i]: got ${got[i]}, want ${want[i]} (relative difference $err)")
        }
    }

    private fun assertClose(want: Double, got: Double, rel: Double, what: String) =
        assertClose(listOf(want), listOf(got), rel, what)

    /** The field of the `Validation` the call throws (with a reason). */
    private fun field(call: () -> Any?): String {
        val e = assertThrows<CrmException.Validation> { call() }
        assertTrue(e.reason.isNotBlank())
        return e.field
    }

    private fun day(d: Int, month: Int = 5): Instant = Instant.parse("2024-%02d-%02dT12:00:00Z".format(month, d))

    private fun tx(customer: String, d: Int, amountMinor: Long, month: Int = 5) =
        AnalyticsTransaction(customer, day(d, month), amountMinor)

    // ----- the README ----------------------------------------------------------------

    /** Two years of purchases by 2,000 customers who buy at their own pace and may stop. */
    private fun purchaseLog(): List<AnalyticsTransaction> {
        val rng = Random(7)
        val start = Instant.parse("2023-01-02T00:00:00Z")
        val log = mutableListOf<AnalyticsTransaction>()
        for (c in 0 until 2_000) {
            val customer = "customer-$c"
            var d = rng.nextInt(0, 365)
            val perDay = 0.003 + rng.nextDouble() * 0.05
            val dropout = 0.05 + rng.nextDouble() * 0.4
            val basket = 1_000 + rng.nextLong(0, 9_000)
            log += AnalyticsTransaction(customer, start.plus(Duration.ofDays(d.toLong())), basket)
            while (++d < 730) {
                if (rng.nextDouble() < perDay) {
                    log += AnalyticsTransaction(customer, start.plus(Duration.ofDays(d.toLong())), basket / 2 + rng.nextLong(0, basket))
                    if (rng.nextDouble() < dropout) break
                }
            }
        }
        return log.shuffled(rng)
    }

    @Test
    fun `the README example runs`() {
        val purchases = purchaseLog()
        val end = Instant.parse("2024-12-31T23:59:59Z")
        // README: from here
        val summary = summarizeTransactions(purchases, SummaryOptions(TimeUnit.WEEKS, observationEnd = end))
        val (x, tx, t) = Triple(summary.frequency, summary.recency, summary.t)

        val bgnbd = fitBgnbd(x, tx, t)
        println("r=${bgnbd.r} alpha=${bgnbd.alpha} a=${bgnbd.a} b=${bgnbd.b} LL=${bgnbd.logLikelihood}")
        val nextQuarter = bgnbd.expectedPurchases(13.0, x, tx, t)       // per customer
        val alive = bgnbd.pAlive(x, tx, t)

        val spend = fitGammaGamma(x, summary.monetaryValue)
        val clv = spend.clv(bgnbd, x, tx, t, summary.monetaryValue, ClvOptions(unit = TimeUnit.WEEKS))
        val best = clv.indices.sortedByDescending { clv[it] }.take(10).map { summary.customers[it] }

        val rfm = rfmScores(t.zip(tx) { a, b -> a - b }, x.map { it + 1 }, summary.totalMinor)
        val champions = summary.customers.filterIndexed { i, _ -> rfm.segments[i] == RfmSegment.CHAMPIONS }
        // README: to here
        assertEquals(2_000, summary.customers.size)
        assertEquals(2_000.0, bgnbd.customers)
        assertEquals(4, bgnbd.standardErrors!!.size)
        assertTrue(nextQuarter.all { it >= 0 } && alive.all { it in 0.0..1.0 })
        assertTrue(spend.q > 1 && clv.all { it >= 0 })
        assertEquals(10, best.size)
        assertTrue(champions.isNotEmpty())
    }

    // ----- BG/NBD on CDNOW -------------------------------------------------------------

    @Test
    fun `a BG-NBD fit on CDNOW matches the reference estimates and the paper`() {
        val bg = cdnowFit["bgnbd"]
        val model = fitBgnbd(cdnow.x, cdnow.tx, cdnow.t)
        val got = listOf(model.r, model.alpha, model.a, model.b)
        assertClose(bg["params"].doubles(), got, 1e-6, "estimates")
        assertClose(bg["log_likelihood"] as Double, model.logLikelihood!!, 1e-9, "log-likelihood")
        assertClose(bg["standard_errors"].doubles(), model.standardErrors!!, 1e-4, "standard errors")
        assertEquals(4, model.covariance!!.size)
        assertClose(model.standardErrors!![1] * model.standardErrors!![1], model.covariance!![1][1], 1e-9, "variance of alpha")
        assertEquals(2_357.0, model.customers)
        assertTrue(model.iterations > 0u)
        // Fader, Hardie & Lee (2005), to the three decimals published.
        got.zip(bg["published"]["params"].doubles()).forEach { (g, p) -> assertTrue(abs(g - p) <= 0.0005, "$g vs $p") }
        assertTrue(abs(model.logLikelihood!! - -9582.4) <= 0.05)
    }

    @Test
    fun `BG-NBD predictions on CDNOW match lifetimes'`() {
        val bg = cdnowFit["bgnbd"]
        val p = bg["params"].doubles()
        val model = BgNbdModel(p[0], p[1], p[2], p[3])
        val predictions = bg["lifetimes_predictions"]
        val index = predictions["index"].doubles().map { it.toInt() }
        val (x, tx, t) = Triple(index.map { cdnow.x[it] }, index.map { cdnow.tx[it] }, index.map { cdnow.t[it] })
        assertClose(predictions["expected_purchases_10"].doubles(), model.expectedPurchases(10.0, x, tx, t), 1e-10, "E[Y(10)]")
        assertClose(predictions["p_alive"].doubles(), model.pAlive(x, tx, t), 1e-10, "P(alive)")
    }

    @Test
    fun `a Gamma-Gamma fit on CDNOW matches the reference estimates`() {
        val gg = cdnowFit["gamma_gamma"]
        val model = fitGammaGamma(cdnow.x, cdnow.zbar)
        assertClose(gg["params"].doubles(), listOf(model.p, model.q, model.gamma), 1e-6, "estimates")
        assertClose(gg["log_likelihood"] as Double, model.logLikelihood!!, 1e-9, "log-likelihood")
        assertClose(gg["standard_errors"].doubles(), model.standardErrors!!, 1e-4, "standard errors")
        assertEquals(3, model.covariance!!.size)
        // Only customers with repeat purchases carry information on spend.
        assertEquals(cdnow.x.count { it > 0 }.toDouble(), model.customers)
    }

    @Test
    fun `fit options carry the penalizer, the weights and the iteration limit`() {
        val penalized = FitOptions(penalizer = cdnowFit["penalizer"] as Double)
        val bg = fitBgnbd(cdnow.x, cdnow.tx, cdnow.t, penalized)
        assertClose(cdnowFit["bgnbd"]["penalized_params"].doubles(), listOf(bg.r, bg.alpha, bg.a, bg.b), 1e-6, "penalized BG/NBD")
        val gg = fitGammaGamma(cdnow.x, cdnow.zbar, penalized)
        assertClose(cdnowFit["gamma_gamma"]["penalized_params"].doubles(), listOf(gg.p, gg.q, gg.gamma), 1e-6, "penalized Gamma-Gamma")

        // Every row standing for two customers: the same estimates, twice the customers.
        val twice = fitBgnbd(cdnow.x, cdnow.tx, cdnow.t, FitOptions(weights = List(cdnow.x.size) { 2.0 }))
        assertEquals(4_714.0, twice.customers)
        assertClose(cdnowFit["bgnbd"]["params"].doubles(), listOf(twice.r, twice.alpha, twice.a, twice.b), 1e-5, "weighted")
        assertClose(2 * (cdnowFit["bgnbd"]["log_likelihood"] as Double), twice.logLikelihood!!, 1e-8, "weighted log-likelihood")

        // One BFGS iteration, then the Newton polish: fewer steps in all than by default.
        val capped = fitBgnbd(cdnow.x, cdnow.tx, cdnow.t, FitOptions(maxIterations = 1u))
        assertTrue(capped.iterations < fitBgnbd(cdnow.x, cdnow.tx, cdnow.t).iterations, "${capped.iterations}")
    }

    // ----- predictions -------------------------------------------------------------------

    @Test
    fun `a model built from known parameters has no fit statistics and predicts`() {
        assertNull(PUBLISHED.logLikelihood)
        assertNull(PUBLISHED.standardErrors)
        assertNull(PUBLISHED.covariance)
        assertEquals(0.0, PUBLISHED.customers)
        assertEquals(0u, PUBLISHED.iterations)
        val year = PUBLISHED.expectedPurchasesUnconditional(52.0)
        assertTrue(year > PUBLISHED.expectedPurchasesUnconditional(26.0))
        // A record: equal by value, copied with another parameter.
        assertEquals(PUBLISHED, BgNbdModel(0.243, 4.414, 0.793, 2.426))
        assertTrue(PUBLISHED.copy(alpha = 2.0).expectedPurchasesUnconditional(52.0) > year)
    }

    @Test
    fun `predictions at the edges - no repeat purchase, recency equal to T, T of zero, horizon of zero`() {
        val m = PUBLISHED
        // No repeat purchase: in the BG/NBD one cannot have dropped out yet.
        assertEquals(listOf(1.0, 1.0), m.pAlive(listOf(0.0, 0.0), listOf(0.0, 0.0), listOf(30.0, 0.0)))
        val quiet = m.expectedPurchases(10.0, listOf(0.0), listOf(0.0), listOf(30.0))[0]
        assertTrue(quiet > 0 && quiet < 1, "$quiet")
        // Recency = T (the last purchase just now): P(alive) = (b+x-1) / (b+x-1+a).
        val justNow = m.pAlive(listOf(4.0), listOf(30.0), listOf(30.0))[0]
        assertClose((m.b + 3) / (m.b + 3 + m.a), justNow, 1e-12, "P(alive) at recency = T")
        val longAgo = m.pAlive(listOf(4.0), listOf(2.0), listOf(30.0))[0]
        assertTrue(longAgo < justNow)
        val e = m.expectedPurchases(10.0, listOf(4.0, 4.0), listOf(30.0, 2.0), listOf(30.0, 30.0))
        assertTrue(e[0] > e[1])
        // First purchase at the end of observation (T = 0).
        val fresh = m.expectedPurchases(10.0, listOf(0.0), listOf(0.0), listOf(0.0))[0]
        assertClose(m.expectedPurchasesUnconditional(10.0), fresh, 1e-12, "E[Y(10)] at T = 0")
        // Nothing expected in no time.
        assertEquals(listOf(0.0, 0.0), m.expectedPurchases(0.0, listOf(0.0, 4.0), listOf(0.0, 3.0), listOf(5.0, 5.0)))
        assertEquals(0.0, m.expectedPurchasesUnconditional(0.0))
        // Empty columns are no customers, not an error.
        assertEquals(emptyList<Double>(), m.pAlive(emptyList(), emptyList(), emptyList()))
    }

    @Test
    fun `BG-NBD predictions match crm-core's 40-digit references up to a million purchases`() {
        val ref = json("bgnbd_closed_forms.json")
        val customers = ref["customers"]
        val (x, tx, t) = listOf("frequency", "recency", "T").map { customers[it].doubles() }
        val horizons = ref["horizons"].doubles()
        for (case in ref["cases"] as List<*>) {
            val p = case["params"].doubles()
            val m = BgNbdModel(p[0], p[1], p[2], p[3])
            assertClose(case["p_alive"].doubles(), m.pAlive(x, tx, t), 1e-10, "P(alive) $p", floor = 1e-300)
            (case["expected_purchases"] as List<*>).forEachIndexed { k, want ->
                assertClose(want.doubles(), m.expectedPurchases(horizons[k], x, tx, t), 1e-10, "E[Y(${horizons[k]})] $p", floor = 1e-300)
            }
            assertClose(case["unconditional"].doubles(), horizons.map { m.expectedPurchasesUnconditional(it) }, 1e-10, "E[X(t)] $p")
        }
    }

    @Test
    fun `a million customers cross the boundary in one call`() {
        val m = PUBLISHED
        val n = 1_000_000
        val x = List(n) { (it % 10).toDouble() }
        val t = List(n) { 20.0 }
        val alive = m.pAlive(x, x, t)
        assertEquals(n, alive.size)
        assertEquals(1.0, alive[0])
        assertEquals(alive[3], alive[13])
    }

    // ----- Gamma-Gamma and CLV -----------------------------------------------------------

    @Test
    fun `Gamma-Gamma expected values and CLV match the reference vectors`() {
        val ref = json("gamma_gamma.json")
        val frequency = listOf(0.0) + ref["frequency"].doubles()
        val monetary = listOf(0.0) + ref["monetary_value"].doubles()
        for (case in ref["cases"] as List<*>) {
            val p = case["params"].doubles()
            val model = GammaGammaModel(p[0], p[1], p[2])
            // The first value, without repeat purchases, is the population's mean p·γ/(q−1).
            assertClose(case["expected_average_value"].doubles(), model.expectedAverageValue(frequency, monetary), 1e-12, "E[M] $p")
        }

        val clv = ref["clv"]
        val b = clv["bgnbd"].doubles()
        val g = clv["gamma_gamma"].doubles()
        val (bg, gg) = BgNbdModel(b[0], b[1], b[2], b[3]) to GammaGammaModel(g[0], g[1], g[2])
        val columns = listOf("frequency", "recency", "T", "monetary_value").map { clv[it].doubles() }
        val weekly = ClvOptions(unit = TimeUnit.WEEKS)
        val got = gg.clv(bg, columns[0], columns[1], columns[2], columns[3], weekly)
        assertClose(clv["clv"].doubles(), got, 1e-10, "CLV")
        assertClose(clv["lifetimes_clv"].doubles(), got, 1e-9, "CLV vs lifetimes")
        assertEquals(12.0, clv["months"])
        assertEquals(0.01, clv["discount_rate"])
        assertEquals(4.345, clv["periods_per_month"])
        // The unit's month, or one given explicitly; a horizon of no months is worth nothing.
        assertEquals(got, gg.clv(bg, columns[0], columns[1], columns[2], columns[3], ClvOptions(periodsPerMonth = 4.345)))
        val daily = gg.clv(bg, columns[0], columns[1], columns[2], columns[3], ClvOptions())
        assertTrue(daily[1] > got[1])
        val none = gg.clv(bg, columns[0], columns[1], columns[2], columns[3], ClvOptions(unit = TimeUnit.WEEKS, months = 0u))
        assertTrue(none.all { it == 0.0 })
        val undiscounted = gg.clv(bg, columns[0], columns[1], columns[2], columns[3], ClvOptions(unit = TimeUnit.WEEKS, discountRate = 0.0))
        assertTrue(undiscounted[1] > got[1])
    }

    // ----- RFM -------------------------------------------------------------------------

    @Test
    fun `RFM scores rank by quintile, tie equal values and name the segments`() {
        val s = rfmScores(
            recency = listOf(2.0, 40.0, 300.0, 10.0, 700.0),
            frequency = listOf(12.0, 3.0, 1.0, 8.0, 2.0),
            monetaryMinor = listOf(250_000L, 9_000L, 1_500L, 120_000L, 3_000L),
        )
        assertEquals(listOf(5, 3, 2, 4, 1), s.recency)
        assertEquals(listOf(5, 3, 1, 4, 2), s.frequency)
        assertEquals(listOf(5, 3, 1, 4, 2), s.monetary)
        assertEquals(RfmSegment.CHAMPIONS, s.segments[0])
        assertEquals(RfmSegment.HIBERNATING, s.segments[4])
        val tied = rfmScores(listOf(1.0, 2.0), listOf(1.0, 1.0), listOf(10L, 20L))
        assertEquals(tied.frequency[0], tied.frequency[1])
        assertEquals(RfmScores(emptyList(), emptyList(), emptyList(), emptyList()), rfmScores(emptyList(), emptyList(), emptyList()))
        assertEquals(10, RfmSegment.entries.size)
    }

    // ----- summaries and cohorts ---------------------------------------------------------

    @Test
    fun `a summary collapses same-day purchases and orders customers by their keys`() {
        val log = listOf(
            tx("zoe@example.com", 5, 700),
            tx("ana@example.com", 1, 1_000),
            tx("ana@example.com", 1, 500),              // same day: one purchase of 1,500
            tx("ana@example.com", 4, 2_000),
            tx("ana@example.com", 9, 4_000),
            tx("ana@example.com", 11, 9_999),           // after the end: ignored
            tx("max@example.com", 12, 100),             // first purchase after the end: left out
        )
        val s = summarizeTransactions(log, SummaryOptions(TimeUnit.DAYS, observationEnd = day(10)))
        assertEquals(listOf("ana@example.com", "zoe@example.com"), s.customers)
        assertEquals(listOf(2.0, 0.0), s.frequency)
        assertEquals(listOf(8.0, 0.0), s.recency)
        assertEquals(listOf(9.0, 5.0), s.t)
        assertEquals(listOf(3_000.0, 0.0), s.monetaryValue)
        assertEquals(listOf(7_500L, 700L), s.totalMinor)
        assertNull(s.holdout)

        val weeks = summarizeTransactions(log, SummaryOptions(TimeUnit.WEEKS, observationEnd = day(10)))
        // 2024-05-01 is a Wednesday: days 1, 4 and 5 share a week; days 9 to 12 are in the
        // next, the end's, every purchase of which counts.
        assertEquals(listOf("ana@example.com", "max@example.com", "zoe@example.com"), weeks.customers)
        assertEquals(listOf(1.0, 0.0, 0.0), weeks.frequency)
        assertEquals(listOf(1.0, 0.0, 1.0), weeks.t)
        assertEquals(listOf(13_999.0, 0.0, 0.0), weeks.monetaryValue)

        val empty = summarizeTransactions(emptyList(), SummaryOptions(TimeUnit.DAYS, observationEnd = day(10)))
        assertTrue(empty.customers.isEmpty() && empty.frequency.isEmpty())
    }

    @Test
    fun `a calibration end splits the summary into calibration and holdout`() {
        val log = listOf(tx("ana", 1, 100), tx("ana", 5, 100), tx("ana", 12, 300), tx("ana", 15, 500), tx("bo", 14, 800))
        val options = SummaryOptions(TimeUnit.DAYS, observationEnd = day(20), calibrationEnd = day(10))
        val s = summarizeTransactions(log, options)
        // Bo's first purchase is in the holdout: not a customer of the calibration period.
        assertEquals(listOf("ana"), s.customers)
        assertEquals(listOf(1.0), s.frequency)
        assertEquals(listOf(4.0), s.recency)
        assertEquals(listOf(9.0), s.t)
        assertEquals(listOf(200L), s.totalMinor)
        val holdout = s.holdout!!
        assertEquals(listOf(2.0), holdout.frequency)
        assertEquals(listOf(400.0), holdout.monetaryValue)
        assertEquals(10.0, holdout.duration)
    }

    @Test
    fun `summaries, RFM and cohorts match crm-core's reference on a synthetic log`() {
        val ref = json("summary.json")
        // Customer numbers as zero-padded strings, so that their order is the reference's.
        val key = { n: Double -> "c%05d".format(n.toInt()) }
        val log = (ref["transactions"] as List<*>).map { row ->
            row as List<*>
            AnalyticsTransaction(key(row[0] as Double), OffsetDateTime.parse(row[1] as String).toInstant(), (row[2] as Double).toLong())
        }
        val end = OffsetDateTime.parse(ref["observation_end"] as String).toInstant()
        var daily: TransactionSummary? = null
        for (case in ref["cases"] as List<*>) {
            val unit = if (case["unit"] == "days") TimeUnit.DAYS else TimeUnit.WEEKS
            val calibrationEnd = (case["calibration_end"] as String?)?.let { OffsetDateTime.parse(it).toInstant() }
            val s = summarizeTransactions(log, SummaryOptions(unit, end, calibrationEnd))
            val want = case["expected"]
            val what = "$unit, calibration end $calibrationEnd"
            assertEquals(want["customers"].doubles().map(key), s.customers, what)
            assertEquals(want["frequency"].doubles(), s.frequency, what)
            assertEquals(want["recency"].doubles(), s.recency, what)
            assertEquals(want["T"].doubles(), s.t, what)
            assertClose(want["monetary_value"].doubles(), s.monetaryValue, 1e-15, what, floor = 1.0)
            assertEquals(want["total_minor"].doubles().map { it.toLong() }, s.totalMinor, what)
            if (calibrationEnd == null) {
                assertNull(s.holdout, what)
            } else {
                val h = s.holdout!!
                assertEquals(want["holdout_frequency"].doubles(), h.frequency, what)
                assertClose(want["holdout_monetary_value"].doubles(), h.monetaryValue, 1e-15, what, floor = 1.0)
                assertEquals(want["holdout_duration"] as Double, h.duration, what)
            }
            if (unit == TimeUnit.DAYS && calibrationEnd == null) daily = s
        }

        // RFM of the daily summary: days since the last purchase, purchases, total spent.
        val s = daily!!
        val rfm = rfmScores(s.t.zip(s.recency) { t, r -> t - r }, s.frequency.map { it + 1 }, s.totalMinor)
        val scores = ref["rfm"]
        assertEquals(scores["recency"].doubles().map { it.toInt() }, rfm.recency)
        assertEquals(scores["frequency"].doubles().map { it.toInt() }, rfm.frequency)
        assertEquals(scores["monetary"].doubles().map { it.toInt() }, rfm.monetary)

        val r = cohortRetention(log, end)
        val retention = ref["retention"]
        assertEquals(retention["first_cohort"], r.cohorts[0])
        assertEquals(retention["sizes"].doubles().map { it.toLong() }, r.sizes.map { it.toLong() })
        assertEquals(
            (retention["active"] as List<*>).map { row -> row.doubles().map { it.toLong() } },
            r.active.map { row -> row.map { it.toLong() } },
        )
    }

    @Test
    fun `cohort retention counts customers by the month of their first purchase`() {
        val at = { m: Int -> Instant.parse("2024-%02d-15T00:00:00Z".format(m)) }
        val log = listOf(1 to 1, 1 to 2, 2 to 1, 2 to 3, 3 to 2, 3 to 3, 4 to 5)
            .map { (c, m) -> AnalyticsTransaction("customer $c", at(m), 1L) }
        val r = cohortRetention(log.reversed(), observationEnd = at(3))
        // Rows: the January, February and March cohorts (March empty); columns: months since.
        assertEquals(listOf("2024-01-01", "2024-02-01", "2024-03-01"), r.cohorts)
        assertEquals(listOf(2UL, 1UL, 0UL), r.sizes)
        assertEquals(listOf(listOf(2UL, 1UL, 1UL), listOf(1UL, 1UL), listOf(0UL)), r.active)
        assertEquals(Retention(emptyList(), emptyList(), emptyList()), cohortRetention(emptyList(), at(3)))
    }

    // ----- bad input -----------------------------------------------------------------------

    @Test
    fun `bad histories are validation errors naming the element`() {
        val m = PUBLISHED
        val nan = Double.NaN
        // Lengths.
        assertEquals("recency", field { fitBgnbd(listOf(1.0, 2.0), listOf(1.0), listOf(3.0, 3.0)) })
        assertEquals("T", field { fitBgnbd(listOf(1.0), listOf(1.0), listOf(3.0, 3.0)) })
        assertEquals("recency", field { m.pAlive(listOf(1.0, 2.0), listOf(1.0), listOf(3.0, 3.0)) })
        assertEquals("T", field { m.expectedPurchases(1.0, listOf(1.0), listOf(1.0), emptyList()) })
        // Recency after T.
        assertEquals("recency[3]", field { fitBgnbd(listOf(1.0, 2.0, 3.0, 4.0), listOf(1.0, 1.0, 1.0, 5.0), listOf(3.0, 3.0, 3.0, 4.0)) })
        assertEquals("recency[0]", field { m.pAlive(listOf(1.0), listOf(4.0), listOf(3.0)) })
        // Negative, NaN, infinite, fractional.
        assertEquals("recency[1]", field { fitBgnbd(listOf(1.0, 1.0), listOf(1.0, -1.0), listOf(3.0, 3.0)) })
        assertEquals("T[2]", field { fitBgnbd(listOf(1.0, 1.0, 0.0), listOf(1.0, 1.0, 0.0), listOf(3.0, 3.0, -1.0)) })
        assertEquals("frequency[0]", field { fitBgnbd(listOf(-1.0), listOf(0.0), listOf(3.0)) })
        assertEquals("frequency[0]", field { m.pAlive(listOf(nan), listOf(0.0), listOf(3.0)) })
        assertEquals("recency[0]", field { m.pAlive(listOf(1.0), listOf(nan), listOf(3.0)) })
        assertEquals("T[0]", field { m.expectedPurchases(1.0, listOf(1.0), listOf(1.0), listOf(Double.POSITIVE_INFINITY)) })
        assertEquals("frequency[1]", field { fitBgnbd(listOf(1.0, 1.5), listOf(1.0, 1.0), listOf(3.0, 3.0)) })
        // A last purchase without repeat purchases.
        assertEquals("recency[0]", field { m.pAlive(listOf(0.0), listOf(1.0), listOf(3.0)) })
        // Spend.
        assertEquals("monetary_value", field { fitGammaGamma(listOf(1.0, 2.0), listOf(10.0)) })
        assertEquals("monetary_value[1]", field { fitGammaGamma(listOf(1.0, 2.0), listOf(10.0, -5.0)) })
        assertEquals("monetary_value[0]", field { fitGammaGamma(listOf(3.0), listOf(0.0)) })
        assertEquals("monetary_value[0]", field { GammaGammaModel(6.25, 3.74, 15.44).expectedAverageValue(listOf(1.0), listOf(nan)) })
        assertEquals("frequency[0]", field { GammaGammaModel(6.25, 3.74, 15.44).expectedAverageValue(listOf(0.5), listOf(1.0)) })
        // RFM.
        assertEquals("frequency", field { rfmScores(listOf(1.0, 2.0), listOf(1.0), listOf(1L, 2L)) })
        assertEquals("monetary_minor", field { rfmScores(listOf(1.0), listOf(1.0), listOf(1L, 2L)) })
        assertEquals("recency[1]", field { rfmScores(listOf(1.0, nan), listOf(1.0, 1.0), listOf(1L, 2L)) })
        assertEquals("frequency[0]", field { rfmScores(listOf(1.0), listOf(nan), listOf(1L)) })
    }

    @Test
    fun `bad parameters, options and times are validation errors naming the field`() {
        val m = PUBLISHED
        val gg = GammaGammaModel(6.25, 3.74, 15.44)
        val one = listOf(1.0)
        // Parameters of a model built by hand.
        assertEquals("r", field { BgNbdModel(0.0, 1.0, 1.0, 1.0).pAlive(one, one, one) })
        assertEquals("alpha", field { m.copy(alpha = Double.NaN).expectedPurchasesUnconditional(1.0) })
        assertEquals("b", field { m.copy(b = -1.0).expectedPurchases(1.0, one, one, one) })
        assertEquals("p", field { GammaGammaModel(0.0, 3.74, 15.44).expectedAverageValue(one, one) })
        assertEquals("q", field { gg.copy(q = 0.9).expectedAverageValue(one, one) })
        assertEquals("a", field { gg.clv(m.copy(a = 0.0), one, one, one, one, ClvOptions()) })
        // The horizon is `t`, as in crm-core and Python.
        assertEquals("t", field { m.expectedPurchases(-1.0, one, one, one) })
        assertEquals("t", field { m.expectedPurchasesUnconditional(Double.NaN) })
        // Options.
        assertEquals("weights", field { fitBgnbd(cdnow.x, cdnow.tx, cdnow.t, FitOptions(weights = listOf(1.0))) })
        assertEquals("weights[1]", field { fitGammaGamma(listOf(1.0, 2.0), listOf(5.0, 6.0), FitOptions(weights = listOf(1.0, -1.0))) })
        assertEquals("penalizer", field { fitBgnbd(cdnow.x, cdnow.tx, cdnow.t, FitOptions(penalizer = -1.0)) })
        assertEquals("discount_rate", field { gg.clv(m, one, one, one, one, ClvOptions(discountRate = -0.1)) })
        assertEquals("periods_per_month", field { gg.clv(m, one, one, one, one, ClvOptions(periodsPerMonth = 0.0)) })
        // Transactions and times.
        val name = "ana@example.com"
        val negative = assertThrows<CrmException.Validation> {
            summarizeTransactions(listOf(tx(name, 1, 100), tx(name, 2, -100)), SummaryOptions(TimeUnit.DAYS, day(10)))
        }
        assertEquals("transactions[1].amount_minor", negative.field)
        assertFalse(negative.message!!.contains(name), "an error never carries the data: ${negative.message}")
        assertEquals("calibration_end", field { summarizeTransactions(emptyList(), SummaryOptions(TimeUnit.DAYS, day(10), calibrationEnd = day(11))) })
        assertEquals("transactions[1].at", field {
            summarizeTransactions(listOf(tx(name, 1, 1), AnalyticsTransaction(name, Instant.MAX, 1)), SummaryOptions(TimeUnit.DAYS, day(10)))
        })
        assertEquals("observation_end", field { summarizeTransactions(emptyList(), SummaryOptions(TimeUnit.WEEKS, Instant.MIN)) })
        assertEquals("transactions[0].at", field { cohortRetention(listOf(AnalyticsTransaction(name, Instant.MIN, 1)), day(10)) })
        assertEquals("observation_end", field { cohortRetention(emptyList(), Instant.MAX) })
    }

    @Test
    fun `empty input and data without a maximum are validation errors`() {
        assertEquals("frequency", field { fitBgnbd(emptyList(), emptyList(), emptyList()) })
        assertEquals("frequency", field { fitGammaGamma(emptyList(), emptyList()) })
        // Without a single repeat purchase neither dropout nor spend can be estimated.
        assertEquals("frequency", field { fitBgnbd(listOf(0.0, 0.0), listOf(0.0, 0.0), listOf(5.0, 8.0)) })
        assertEquals("frequency", field { fitGammaGamma(listOf(0.0, 0.0), listOf(0.0, 0.0)) })
        // Everyone bought just now, the same number of times: no one ever drops
        // out, and the likelihood grows without bound.
        val noMaximum = assertThrows<CrmException.Validation> { fitBgnbd(List(4) { 5.0 }, List(4) { 10.0 }, List(4) { 10.0 }) }
        assertEquals("frequency", noMaximum.field)
        assertTrue(noMaximum.reason.contains("no maximum"), noMaximum.reason)
        // Identical spend: the same for Gamma-Gamma, which a small penalty cures.
        assertEquals("monetary_value", field { fitGammaGamma(listOf(1.0, 2.0, 3.0), List(3) { 10.0 }) })
        val penalized = fitGammaGamma(listOf(1.0, 2.0, 3.0), List(3) { 10.0 }, FitOptions(penalizer = 0.001))
        assertTrue(penalized.p > 0 && penalized.q > 0 && penalized.gamma > 0)
    }
}

// ----- reading the reference files ---------------------------------------------------------

/** A member of a JSON object (read by [Json]). */
@Suppress("UNCHECKED_CAST")
private operator fun Any?.get(key: String): Any? = (this as Map<String, Any?>)[key]

/** A JSON array of numbers. */
private fun Any?.doubles(): List<Double> = (this as List<*>).map { it as Double }

/**
 * A small JSON reader for the reference files (the tests have no JSON
 * library): objects become maps, arrays lists, numbers `Double`.
 */
private class Json private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? = Json(text).run {
            val v = value()
            space()
            check(i == s.length) { "text after the JSON value at $i" }
            v
        }
    }

    private fun space() {
        while (i < s.length && s[i].isWhitespace()) i++
    }

    private fun expect(c: Char) {
        space()
        check(s[i] == c) { "expected '$c' at $i" }
        i++
    }

    private fun value(): Any? {
        space()
        return when {
            s[i] == '{' -> members()
            s[i] == '[' -> elements()
            s[i] == '"' -> string()
            s.startsWith("true", i) -> true.also { i += 4 }
            s.startsWith("false", i) -> false.also { i += 5 }
            s.startsWith("null", i) -> null.also { i += 4 }
            else -> number()
        }
    }

    private fun members(): Map<String, Any?> {
        expect('{')
        val out = LinkedHashMap<String, Any?>()
        space()
        if (s[i] == '}') return out.also { i++ }
        while (true) {
            space()
            val key = string()
            expect(':')
            out[key] = value()
            space()
            if (s[i++] == '}') return out
        }
    }

    private fun elements(): List<Any?> {
        expect('[')
        val out = ArrayList<Any?>()
        space()
        if (s[i] == ']') return out.also { i++ }
        while (true) {
            out += value()
            space()
            if (s[i++] == ']') return out
        }
    }

    private fun string(): String {
        expect('"')
        val out = StringBuilder()
        while (s[i] != '"') {
            if (s[i] == '\\') {
                i++
                when (val c = s[i]) {
                    'u' -> out.append(s.substring(i + 1, i + 5).toInt(16).toChar()).also { i += 4 }
                    'n' -> out.append('\n')
                    't' -> out.append('\t')
                    'r' -> out.append('\r')
                    'b' -> out.append('\b')
                    'f' -> out.append('\u000C')
                    else -> out.append(c)
                }
                i++
            } else {
                out.append(s[i++])
            }
        }
        i++
        return out.toString()
    }

    private fun number(): Double {
        val start = i
        while (i < s.length && s[i] in "+-0123456789.eE") i++
        return s.substring(start, i).toDouble()
    }
}
