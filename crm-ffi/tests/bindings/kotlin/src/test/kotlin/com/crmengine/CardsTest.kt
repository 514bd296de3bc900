package com.crmengine

import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** `listCustomerCards`: small list rows with the latest interaction, paged by cursor. */
class CardsTest {
    @Test
    fun `a card carries the list fields and a summary of the latest interaction`() = Crm.openInMemory().use { crm ->
        val acme = crm.createCustomer(NewCustomer(kind = CustomerKind.ORGANIZATION, name = "Acme"))
        val ana = crm.createCustomer(
            NewCustomer(
                firstName = "Ana", lastName = "Novak",
                emails = listOf("Ana@Example.com", "ana.work@example.com"),
                phones = listOf("+386 40 123 456"),
                tags = listOf("VIP", "b2b"),
                lifecycleStage = "customer",
                owner = "maja",
                organizationId = acme.id,
            ),
        )
        val at = Instant.parse("2025-03-01T09:30:00.123456Z")
        crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Email, occurredAt = at.minusSeconds(3600), subject = "older"))
        val latest = crm.logInteraction(
            NewInteraction(
                CustomerRef.Id(ana.id), InteractionKind.Purchase,
                direction = Direction.INBOUND, channel = "Web", occurredAt = at,
                subject = "Order 7", body = "a long body the list does not need",
                amountMinor = 12_990L, currency = "EUR", metadata = """{"order": 7}""",
            ),
        )
        // Logged later but happened earlier: "latest" is by when it happened.
        crm.logInteraction(NewInteraction(CustomerRef.Id(ana.id), InteractionKind.Note, occurredAt = at.minusSeconds(86_400)))

        val cards = crm.listCustomerCards().items
        assertEquals(listOf(acme.id, ana.id), cards.map { it.id })
        assertEquals(
            CustomerCard(
                id = acme.id, kind = CustomerKind.ORGANIZATION, name = "Acme", email = null, phone = null,
                lifecycleStage = "subscriber", owner = null, tags = emptyList(), latestInteraction = null,
            ),
            cards[0],
        )
        assertEquals(
            CustomerCard(
                id = ana.id, kind = CustomerKind.PERSON, name = "Ana Novak",
                email = "ana@example.com", phone = "+38640123456",
                lifecycleStage = "customer", owner = "maja", tags = listOf("b2b", "vip"),
                latestInteraction = InteractionSummary(
                    id = latest.id, kind = InteractionKind.Purchase, channel = "web",
                    direction = Direction.INBOUND, occurredAt = at, subject = "Order 7",
                    amountMinor = 12_990L, currency = "EUR",
                ),
            ),
            cards[1],
        )
        // The full interaction is one call away.
        assertEquals("a long body the list does not need", crm.getInteraction(cards[1].latestInteraction!!.id).body)
    }

    @Test
    fun `cards page with cursors in every sort order like listCustomers`() = Crm.openInMemory().use { crm ->
        val names = (0 until 23).map { "Customer %02d".format(it) }
        names.shuffled(java.util.Random(3)).forEach { crm.createCustomer(NewCustomer(name = it)) }
        for (sort in CustomerSort.entries) {
            for (descending in listOf(false, true)) {
                val seen = mutableListOf<String>()
                var cursor: String? = null
                var pages = 0
                do {
                    val query = ListCustomers(sort = sort, descending = descending, limit = 5u, cursor = cursor)
                    val page = crm.listCustomerCards(query)
                    assertEquals(crm.listCustomers(query).items.map { it.id }, page.items.map { it.id })
                    seen += page.items.map { it.name }
                    cursor = page.nextCursor
                    pages++
                } while (cursor != null)
                assertEquals(5, pages)
                assertEquals(23, seen.toSet().size)
                if (sort == CustomerSort.NAME) assertEquals(if (descending) names.reversed() else names, seen)
            }
        }
    }

    @Test
    fun `an empty CRM has an empty last page and a bad page size names limit`() = Crm.openInMemory().use { crm ->
        val page = crm.listCustomerCards()
        assertEquals(emptyList<CustomerCard>(), page.items)
        assertNull(page.nextCursor)
        assertEquals("limit", assertThrows<CrmException.Validation> { crm.listCustomerCards(ListCustomers(limit = 0u)) }.field)
        assertEquals("limit", assertThrows<CrmException.Validation> { crm.listCustomerCards(ListCustomers(limit = 10_001u)) }.field)
    }
}
