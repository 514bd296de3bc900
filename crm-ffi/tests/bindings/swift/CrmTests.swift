// XCTest tests of the Swift binding, the counterpart of
// tests/bindings/kotlin/src/test/kotlin/com/crmengine/CrmTest.kt (and, in
// "filters and segments", of SegmentsTest.kt).
//
// For a machine with a Swift toolchain (not run on Linux CI here). Build the
// module from the generated sources (scripts/test-kotlin.sh writes them to
// target/bindings/swift: CrmEngine.swift, CrmEngineFFI.h,
// CrmEngineFFI.modulemap) and link libcrm_ffi; see crm-ffi/README.md.
//
// Swift strings are always valid Unicode, so the Kotlin test of lone UTF-16
// surrogates has no counterpart here. The change listener, customer cards,
// threads and bad-input sections mirror ChangeListenerTest.kt, CardsTest.kt,
// ThreadsTest.kt and BadInputTest.kt.

import Foundation
import XCTest

@testable import CrmEngine

final class CrmTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func memory() throws -> Crm { try Crm.openInMemory() }

    private func ana() -> NewCustomer {
        NewCustomer(firstName: "Ana", lastName: "Novak", emails: ["Ana@Example.com"])
    }

    private func file(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Runs `body`, which must throw a `CrmError` that `matches` accepts.
    private func assertCrmError<T>(
        _ body: @autoclosure () throws -> T,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ matches: (CrmError) -> Bool
    ) {
        do {
            _ = try body()
            XCTFail("expected a CrmError", file: file, line: line)
        } catch let error as CrmError {
            XCTAssertTrue(matches(error), "unexpected \(error)", file: file, line: line)
        } catch {
            XCTFail("expected a CrmError, got \(error)", file: file, line: line)
        }
    }

    private func assertTime(_ a: Date, _ b: Date, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.timeIntervalSince1970, b.timeIntervalSince1970, accuracy: 1e-6, file: file, line: line)
    }

    // MARK: conversions

    func testACreatedCustomerComesBackWithEveryFieldConverted() throws {
        let crm = try memory()
        let org = try crm.createCustomer(customer: NewCustomer(kind: .organization, name: "Acme d.o.o."))
        let c = try crm.createCustomer(customer: NewCustomer(
            kind: .person,
            externalId: "X-1",
            firstName: "Ana",
            lastName: "Novak",
            organizationId: org.id,
            emails: ["Ana@Example.com", "ana.work@example.com"],
            phones: ["+386 40 123 456"],
            addresses: [Address(label: "home", line1: "Trg 1", city: "Ljubljana", country: "si")],
            birthDate: "1990-02-28",
            locale: "sl-SI",
            country: "SI",
            tags: ["VIP", "newsletter"],
            attributes: [
                "plan": .text(value: "pro"),
                "seats": .number(value: 3.5),
                "trial": .bool(value: true),
                "renews": .date(value: "2025-01-31"),
            ],
            lifecycleStage: "lead",
            owner: "maja",
            source: "app"
        ))
        XCTAssertEqual(c.kind, .person)
        XCTAssertEqual(c.name, "Ana Novak")
        XCTAssertEqual(c.organizationId, org.id)
        XCTAssertEqual(c.emails, ["ana@example.com", "ana.work@example.com"])
        XCTAssertEqual(c.phones, ["+38640123456"])
        XCTAssertEqual(c.addresses.first?.country, "SI")
        XCTAssertNil(c.addresses.first?.line2)
        XCTAssertEqual(c.birthDate, "1990-02-28")
        XCTAssertEqual(c.tags, ["newsletter", "vip"])
        XCTAssertEqual(c.attributes["seats"], .number(value: 3.5))
        XCTAssertEqual(c.attributes["renews"], .date(value: "2025-01-31"))
        XCTAssertLessThan(abs(c.createdAt.timeIntervalSinceNow), 5)
        let stored = try crm.getCustomer(id: c.id)
        XCTAssertEqual(stored.id, c.id)
        XCTAssertEqual(stored.attributes, c.attributes)
    }

    func testOptionalFieldsLeftOutComeBackAsNilOrEmpty() throws {
        let crm = try memory()
        let c = try crm.createCustomer(customer: NewCustomer(name: "Bare"))
        XCTAssertEqual(c.kind, .person)
        XCTAssertNil(c.externalId)
        XCTAssertNil(c.birthDate)
        XCTAssertTrue(c.emails.isEmpty && c.attributes.isEmpty)
        XCTAssertEqual(c.lifecycleStage, "subscriber")
        XCTAssertNil(try crm.findCustomerByEmail(email: "nobody@example.com"))
    }

    func testDatesRoundTripIncludingBefore1970() throws {
        let crm = try memory()
        let c = try crm.createCustomer(customer: ana())
        for at in [Date(timeIntervalSince1970: 1_714_557_600.123456), Date(timeIntervalSince1970: -14_182_940.5)] {
            let logged = try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .note, occurredAt: at))
            assertTime(try crm.getInteraction(id: logged.id).occurredAt, at)
        }
    }

    func testInteractionKindsDirectionsAndMoneyRoundTrip() throws {
        let crm = try memory()
        let c = try crm.createCustomer(customer: ana())
        let purchase = try crm.logInteraction(interaction: NewInteraction(
            customer: .email(email: "ANA@example.com"),
            kind: .purchase,
            channel: "Web",
            direction: .inbound,
            amountMinor: 12_990,
            currency: "eur",
            quantity: 2,
            score: 9,
            metadata: #"{"order": "A-1", "lines": [1, 2]}"#
        ))
        XCTAssertEqual(purchase.customerId, c.id)
        XCTAssertEqual(purchase.kind, .purchase)
        XCTAssertEqual(purchase.direction, .inbound)
        XCTAssertEqual(purchase.channel, "web")
        XCTAssertEqual(purchase.amountMinor, 12_990)
        XCTAssertEqual(purchase.currency, "EUR")
        XCTAssertEqual(purchase.metadata, #"{"lines":[1,2],"order":"A-1"}"#)
        let custom = try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .custom(name: "demo_booked")))
        XCTAssertEqual(try crm.getInteraction(id: custom.id).kind, .custom(name: "demo_booked"))
        let builtin = try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .custom(name: "Web_Visit")))
        XCTAssertEqual(builtin.kind, .webVisit)
        assertCrmError(try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .note, metadata: "[1]"))) {
            if case .Validation(let field, _) = $0 { return field == "metadata" } else { return false }
        }
    }

    func testAPatchSetsClearsAndChangesAttributes() throws {
        let crm = try memory()
        var new = ana()
        new.locale = "sl-SI"
        new.owner = "maja"
        new.attributes = ["plan": .text(value: "pro")]
        let c = try crm.createCustomer(customer: new)
        let updated = try crm.updateCustomer(id: c.id, patch: CustomerPatch(
            lastName: "Kovač",
            tags: ["Gold"],
            setAttributes: ["seats": .number(value: 4)],
            removeAttributes: ["plan"],
            clear: ["locale", "owner"]
        ))
        XCTAssertEqual(updated.name, "Ana Kovač")
        XCTAssertEqual(updated.tags, ["gold"])
        XCTAssertEqual(updated.attributes, ["seats": .number(value: 4)])
        XCTAssertNil(updated.locale)
        XCTAssertNil(updated.owner)
        assertCrmError(try crm.updateCustomer(id: c.id, patch: CustomerPatch(clear: ["name"]))) {
            if case .Validation(let field, _) = $0 { return field == "name" } else { return false }
        }
    }

    func testConsentIsRecordedAnsweredAndListedNewestFirst() throws {
        let crm = try memory()
        let c = try crm.createCustomer(customer: ana())
        XCTAssertFalse(try crm.hasConsent(customerId: c.id, purpose: "newsletter", channel: "email"))
        _ = try crm.recordConsent(customerId: c.id, consent: NewConsent(purpose: "newsletter", status: .granted, legalBasis: .consent))
        XCTAssertTrue(try crm.hasConsent(customerId: c.id, purpose: "newsletter", channel: "email"))
        _ = try crm.recordConsent(customerId: c.id, consent: NewConsent(purpose: "newsletter", status: .withdrawn, channel: "email"))
        XCTAssertFalse(try crm.hasConsent(customerId: c.id, purpose: "newsletter", channel: "email"))
        XCTAssertEqual(try crm.consentHistory(customerId: c.id).map(\.status), [.withdrawn, .granted])
    }

    func testSearchAndTheChangeLogSeeWhatWasWrittenAndByWhom() throws {
        let crm = try memory()
        let asMaja = try crm.withActor(actor: "maja", source: "mobile-app")
        let c = try asMaja.createCustomer(customer: ana())
        _ = try asMaja.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .ticket, subject: "Broken zipper"))
        XCTAssertEqual(try crm.search(query: "novak", limit: 10).first?.customer.id, c.id)
        let hit = try crm.search(query: "zipper", limit: 10)
        XCTAssertEqual(hit.count, 1)
        if case .interaction(_, let subject) = hit[0].matched { XCTAssertEqual(subject, "Broken zipper") } else { XCTFail("\(hit)") }
        let history = try crm.customerHistory(id: c.id)
        XCTAssertEqual(history.first?.actor, "maja")
        XCTAssertEqual(history.first?.op, .created)
        XCTAssertEqual(try crm.changesSince(afterSeq: 0, limit: 100).map(\.entity), [.customer, .interaction])
    }

    // MARK: errors

    func testABadEmailIsAValidationErrorNamingTheFieldAndNotTheValue() throws {
        let crm = try memory()
        assertCrmError(try crm.createCustomer(customer: NewCustomer(name: "A", emails: ["ok@example.com", "secret-address"]))) {
            guard case .Validation(let field, let reason) = $0 else { return false }
            return field == "emails[1]" && !reason.contains("secret-address")
        }
        XCTAssertEqual(try crm.countCustomers(), 0)
    }

    func testAnUnknownIdIsNotFoundAndAMalformedIdIsAValidationError() throws {
        let crm = try memory()
        assertCrmError(try crm.getCustomer(id: UUID().uuidString)) { $0 == .NotFound(entity: "customer") }
        assertCrmError(try crm.getCustomer(id: "not-an-id")) {
            if case .Validation(let field, _) = $0 { return field == "customer_id" } else { return false }
        }
    }

    func testASecondCustomerWithTheSameEmailIsAConflict() throws {
        let crm = try memory()
        _ = try crm.createCustomer(customer: ana())
        assertCrmError(try crm.createCustomer(customer: NewCustomer(name: "Other", emails: ["ANA@example.com"]))) {
            if case .Conflict = $0 { return true } else { return false }
        }
    }

    func testAClosedDatabaseThrowsClosedOnEveryHandle() throws {
        let crm = try memory()
        let asMaja = try crm.withActor(actor: "maja")
        try crm.close()
        assertCrmError(try crm.countCustomers()) { $0 == .Closed }
        assertCrmError(try asMaja.createCustomer(customer: self.ana())) { $0 == .Closed }
    }

    func testAnInvalidCsvRowInAllOrNothingModeThrowsInvalidRowAndImportsNothing() throws {
        let crm = try memory()
        let path = try file("people.csv", "name,email\nAna,ana@example.com\nBob,not-an-email\n")
        assertCrmError(try crm.importCustomersCsv(path: path)) {
            guard case .InvalidRow(let row, let field, _) = $0 else { return false }
            return row == 2 && field == "emails[0]"
        }
        XCTAssertEqual(try crm.countCustomers(), 0)
    }

    func testADatabaseWrittenByANewerVersionIsRefused() throws {
        let path = dir.appendingPathComponent("newer.crm").path
        let crm = try Crm.open(path: path)
        _ = try crm.createCustomer(customer: ana())
        try crm.close()
        // PRAGMA user_version is the big-endian int at offset 60 of the header.
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        handle.seek(toFileOffset: 60)
        handle.write(Data([0, 0, 0, 99]))
        handle.closeFile()
        assertCrmError(try Crm.open(path: path)) { $0 == .IncompatibleDatabase(found: 99, supported: schemaVersion()) }
    }

    func testAFileThatIsNotADatabaseIsCorrupt() throws {
        let path = try file("notes.crm", String(repeating: "these are my notes, not a database\n", count: 200))
        assertCrmError(try Crm.open(path: path)) { $0 == .Corrupt }
    }

    func testAMissingImportFileIsAnIoError() throws {
        let crm = try memory()
        assertCrmError(try crm.importCustomersCsv(path: dir.appendingPathComponent("missing.csv").path)) {
            if case .Io(let message) = $0 { return !message.contains("missing.csv") } else { return false }
        }
    }

    // MARK: strings

    func testEmptyStringsAreAbsentWhereOptionalAndRejectedWhereRequired() throws {
        let crm = try memory()
        assertCrmError(try crm.createCustomer(customer: NewCustomer(name: ""))) {
            if case .Validation(let field, _) = $0 { return field == "name" } else { return false }
        }
        let c = try crm.createCustomer(customer: NewCustomer(name: "A", locale: "", owner: ""))
        XCTAssertNil(c.owner)
        XCTAssertNil(c.locale)
    }

    func testHugeStringsAreCheckedByLength() throws {
        let crm = try memory()
        let c = try crm.createCustomer(customer: ana())
        let body = String(repeating: "ž", count: 1_000_000)
        let i = try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .note, body: body))
        XCTAssertEqual(try crm.getInteraction(id: i.id).body, body)
        assertCrmError(try crm.logInteraction(interaction: NewInteraction(customer: .id(id: c.id), kind: .note, body: body + "!"))) {
            if case .Validation(let field, _) = $0 { return field == "body" } else { return false }
        }
    }

    func testNonAsciiAndAstralCharactersRoundTrip() throws {
        let crm = try memory()
        let name = "Žan Ñoño 日本 🎉 Ελένη"
        let c = try crm.createCustomer(customer: NewCustomer(name: name))
        XCTAssertEqual(try crm.getCustomer(id: c.id).name, name)
    }

    // MARK: threads

    /// State shared by the writer and reader threads, behind a lock.
    final class Shared: @unchecked Sendable {
        private let lock = NSLock()
        private var failures: [String] = []
        private var writerDone = false
        func fail(_ what: String) { lock.lock(); failures.append(what); lock.unlock() }
        func finish() { lock.lock(); writerDone = true; lock.unlock() }
        var finished: Bool { lock.lock(); defer { lock.unlock() }; return writerDone }
        var allFailures: [String] { lock.lock(); defer { lock.unlock() }; return failures }
    }

    func testAWriterAndReadersShareOneFileDatabase() throws {
        let crm = try Crm.open(path: dir.appendingPathComponent("shared.crm").path)
        let writes = 150
        let shared = Shared()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            do {
                for n in 0..<writes {
                    _ = try crm.createCustomer(customer: NewCustomer(name: "Customer \(n)", emails: ["c\(n)@example.com"]))
                }
            } catch {
                shared.fail("\(error)")
            }
            shared.finish()
        }
        for _ in 0..<3 {
            DispatchQueue.global().async(group: group) {
                var last: UInt64 = 0
                repeat {
                    do {
                        let count = try crm.countCustomers()
                        if count < last { shared.fail("count went back from \(last) to \(count)") }
                        last = count
                        _ = try crm.listCustomers(query: ListCustomers(sort: .name, limit: 20))
                        _ = try crm.search(query: "customer", limit: 5)
                    } catch {
                        shared.fail("\(error)")
                    }
                } while !shared.finished
            }
        }
        group.wait()
        XCTAssertEqual(shared.allFailures, [])
        XCTAssertEqual(try crm.countCustomers(), UInt64(writes))
    }

    // MARK: progress listener

    final class Recorder: ImportProgressListener, @unchecked Sendable {
        private let lock = NSLock()
        private(set) var seen: [ImportProgress] = []
        func onProgress(progress: ImportProgress) throws {
            lock.lock(); seen.append(progress); lock.unlock()
        }
    }

    final class Throwing: ImportProgressListener, @unchecked Sendable {
        struct Boom: Error {}
        func onProgress(progress: ImportProgress) throws { throw Boom() }
    }

    func testTheProgressListenerIsCalledEveryNRowsAndAtTheEnd() throws {
        let crm = try memory()
        let recorder = Recorder()
        let people = (1...7).map { NewCustomer(name: "P\($0)") } + [NewCustomer(name: ""), NewCustomer(name: "P9")]
        let report = try crm.importCustomers(
            customers: people,
            options: ImportOptions(mode: .skipInvalid, progressEvery: 3),
            listener: recorder
        )
        XCTAssertEqual(report.inserted, 8)
        XCTAssertEqual(report.errors.map(\.row), [8])
        XCTAssertEqual(recorder.seen.map(\.rows), [3, 6, 9, 9])
    }

    func testAListenerThatThrowsDoesNotStopTheImportOrBreakTheLibrary() throws {
        let crm = try memory()
        let report = try crm.importCustomers(
            customers: (1...5).map { NewCustomer(name: "P\($0)") },
            options: ImportOptions(progressEvery: 1),
            listener: Throwing()
        )
        XCTAssertEqual(report.inserted, 5)
        XCTAssertEqual(try crm.createCustomer(customer: ana()).name, "Ana Novak")
    }

    // MARK: pagination

    func testListingPagesThroughEveryCustomerWithCursors() throws {
        let crm = try memory()
        let names = (0..<25).map { String(format: "Customer %02d", $0) }
        for name in names.shuffled() { _ = try crm.createCustomer(customer: NewCustomer(name: name)) }
        var seen: [String] = []
        var cursor: String? = nil
        var pages = 0
        repeat {
            let page = try crm.listCustomers(query: ListCustomers(sort: .name, limit: 10, cursor: cursor))
            seen += page.items.map(\.name)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil
        XCTAssertEqual(pages, 3)
        XCTAssertEqual(seen, names)
    }

    // MARK: import and export

    func testCustomersExportedToCsvImportIntoAnotherCrmUnchanged() throws {
        let csv = dir.appendingPathComponent("customers.csv").path
        let crm = try memory()
        var new = ana()
        new.tags = ["vip"]
        new.birthDate = "1990-02-28"
        _ = try crm.createCustomer(customer: new)
        XCTAssertEqual(try crm.exportCustomers(path: csv, format: .csv), 1)
        let copy = try memory()
        XCTAssertEqual(try copy.importCustomersCsv(path: csv).inserted, 1)
        let a = try crm.listCustomers().items[0]
        let b = try copy.listCustomers().items[0]
        XCTAssertEqual([a.name, a.birthDate], [b.name, b.birthDate])
        XCTAssertEqual(a.emails, b.emails)
        XCTAssertEqual(a.tags, b.tags)
    }

    // MARK: filters and segments

    private func person(_ crm: Crm, _ name: String, country: String? = nil, tags: [String] = []) throws -> Customer {
        try crm.createCustomer(customer: NewCustomer(name: name, country: country, tags: tags))
    }

    /// Every page of `read`, followed through `nextCursor`.
    private func pages(_ read: (String?) throws -> CustomerPage) rethrows -> [CustomerPage] {
        var pages: [CustomerPage] = []
        var cursor: String? = nil
        repeat {
            let page = try read(cursor)
            pages.append(page)
            cursor = page.nextCursor
        } while cursor != nil
        return pages
    }

    func testTheReadmeSegmentsExampleRuns() throws {
        let crm = try Crm.openInMemory()
        _ = try crm.createCustomer(customer: NewCustomer(name: "Ana Novak", country: "SI", tags: ["vip"]))

        let filter = #"country = "SI" and "vip" in tags"#
        let count = try crm.countMatching(filter: filter)                       // 1
        let page = try crm.findMatching(filter: filter, limit: 50)              // …then cursor: page.nextCursor

        _ = try crm.createSegment(name: "si-vips", filter: filter, description: "VIPs in Slovenia")
        let report = try crm.materializeSegment(name: "si-vips")                 // entered 1, left 0

        let list = try crm.createSegment(name: "call-list")                      // static
        _ = try crm.addToSegment(name: list.name, customerIds: page.items.map(\.id))

        do {
            _ = try crm.countMatching(filter: #"contry = "SI""#)
        } catch let CrmError.Parse(line, column, reason, suggestion) {
            print("\(line):\(column) \(reason) (did you mean \(suggestion ?? "?")?)")
        }

        XCTAssertEqual(count, 1)
        XCTAssertEqual(report, MaterializeReport(members: 1, entered: 1, left: 0))
        XCTAssertEqual(list.kind, .static)
        XCTAssertEqual(try crm.segmentCount(name: "call-list"), 1)
    }

    func testAMisspelledFieldIsParseWithItsPositionAndASuggestion() throws {
        let crm = try memory()
        let c = try person(crm, "Ana")
        let misspelled = #"contry = "SI""#
        let isTheMisspelling: (CrmError) -> Bool = {
            guard case .Parse(let line, let column, let reason, let suggestion) = $0 else { return false }
            return line == 1 && column == 1 && suggestion == "country" && reason.contains("contry")
        }
        assertCrmError(try crm.countMatching(filter: misspelled), isTheMisspelling)
        assertCrmError(try crm.checkFilter(filter: misspelled), isTheMisspelling)
        assertCrmError(try crm.findMatching(filter: misspelled), isTheMisspelling)
        assertCrmError(try crm.customerMatches(customerId: c.id, filter: misspelled), isTheMisspelling)
        assertCrmError(try crm.explain(filter: misspelled), isTheMisspelling)
        assertCrmError(try crm.createSegment(name: "s", filter: misspelled), isTheMisspelling)
        XCTAssertEqual(try crm.segments(), [])
    }

    func testATypeMismatchAndABadWindowAreParseErrorsWithoutASuggestion() throws {
        let crm = try memory()
        assertCrmError(try crm.checkFilter(filter: #""vip" > 3"#)) {
            guard case .Parse(let line, let column, _, let suggestion) = $0 else { return false }
            return line == 1 && column == 1 && suggestion == nil
        }
        assertCrmError(try crm.countMatching(filter: "within -5d")) {
            guard case .Parse(let line, let column, _, _) = $0 else { return false }
            return line == 1 && column == 1
        }
        assertCrmError(try crm.countMatching(filter: "country = \"SI\"\n  and created_at within -5d")) {
            guard case .Parse(let line, let column, _, let suggestion) = $0 else { return false }
            return line == 2 && column == 25 && suggestion == nil
        }
    }

    func testAbsurdlyLongOrDeeplyNestedInputIsAParseErrorAndNotACrash() throws {
        let crm = try memory()
        let isParse: (CrmError) -> Bool = { if case .Parse = $0 { return true } else { return false } }
        assertCrmError(try crm.countMatching(filter: String(repeating: "(", count: 100_000)), isParse)
        assertCrmError(try parseFilter(text: String(repeating: "(", count: 100_000)), isParse)
        let nested = String(repeating: "(", count: 1_000) + #"country = "SI""# + String(repeating: ")", count: 1_000)
        assertCrmError(try crm.checkFilter(filter: nested), isParse)
        assertCrmError(try crm.countMatching(filter: String(repeating: "not ", count: 10_000) + #"country = "SI""#), isParse)
        let deepJson = String(repeating: #"{"not":"#, count: 10_000) + "null" + String(repeating: "}", count: 10_000)
        assertCrmError(try formatFilter(json: deepJson), isParse)
        _ = try person(crm, "Ana", country: "SI")
        XCTAssertEqual(try crm.countMatching(filter: #"country = "si""#), 1)
    }

    func testUnknownSegmentsCustomersAndMalformedIdsHaveTheirOwnErrors() throws {
        let crm = try memory()
        let c = try person(crm, "Ana")
        assertCrmError(try crm.segment(name: "nope")) { $0 == .NotFound(entity: "segment") }
        assertCrmError(try crm.segmentCount(name: "nope")) { $0 == .NotFound(entity: "segment") }
        assertCrmError(try crm.customerMatches(customerId: UUID().uuidString, filter: "country is null")) {
            $0 == .NotFound(entity: "customer")
        }
        _ = try crm.createSegment(name: "list")
        assertCrmError(try crm.addToSegment(name: "list", customerIds: [c.id, "not-an-id"])) {
            if case .Validation(let field, _) = $0 { return field == "customer_ids[1]" } else { return false }
        }
        assertCrmError(try crm.addToSegment(name: "list", customerIds: [c.id, UUID().uuidString])) {
            $0 == .NotFound(entity: "customer")
        }
        XCTAssertEqual(try crm.segmentCount(name: "list"), 0)
        assertCrmError(try crm.findMatching(filter: "country is null", limit: 0)) {
            if case .Validation(let field, _) = $0 { return field == "limit" } else { return false }
        }
        assertCrmError(try crm.createSegment(name: "list")) {
            if case .Conflict = $0 { return true } else { return false }
        }
    }

    func testCheckFilterReturnsCanonicalTextAndMatchingReadsWhatWasWritten() throws {
        let crm = try memory()
        XCTAssertEqual(try crm.checkFilter(filter: #"country="si"  AND tags is empty"#), #"country = "si" and tags is empty"#)
        let ana = try person(crm, "Ana", country: "SI", tags: ["VIP"])
        let bo = try person(crm, "Bo", country: "AT")
        XCTAssertEqual(try crm.countMatching(filter: #"country = "si""#), 1)
        XCTAssertEqual(try crm.countMatching(filter: #"country = "SI" or country = "AT""#), 2)
        XCTAssertTrue(try crm.customerMatches(customerId: ana.id, filter: #""vip" in tags"#))
        XCTAssertFalse(try crm.customerMatches(customerId: bo.id, filter: #""vip" in tags"#))
        XCTAssertEqual(try crm.findMatching(filter: #""vip" in tags"#).items.map(\.id), [ana.id])
    }

    func testExplainShowsTheCanonicalTextTheSqlItsParametersAndThePlan() throws {
        let crm = try memory()
        let explain = try crm.explain(filter: #""vip" in tags and country = "SI""#)
        XCTAssertEqual(explain.canonical, #""vip" in tags and country = "SI""#)
        XCTAssertTrue(explain.sql.contains("customer_tags"), explain.sql)
        XCTAssertEqual(explain.params, ["vip", "SI"])
        XCTAssertFalse(explain.plan.isEmpty)
    }

    func testParseFilterAndFormatFilterRoundTripThroughJson() throws {
        let crm = try memory()
        let text = #"country="SI" and ("vip" in tags OR count(purchases within 90d) >= 3)"#
        let json = try parseFilter(text: text)
        let canonical = try formatFilter(json: json)
        XCTAssertEqual(canonical, try crm.checkFilter(filter: text))
        XCTAssertEqual(try parseFilter(text: canonical), json)
        assertCrmError(try parseFilter(text: "Country = 'SI'")) {
            guard case .Parse(let line, let column, _, _) = $0 else { return false }
            return line == 1 && column == 11
        }
        assertCrmError(try formatFilter(json: "{\n  \"and\": [1,")) {
            guard case .Parse(let line, _, _, _) = $0 else { return false }
            return line == 2
        }
        assertCrmError(try formatFilter(json: #"{"and": []}"#)) {
            guard case .Parse(let line, let column, _, _) = $0 else { return false }
            return line == 0 && column == 0
        }
    }

    func testASegmentRecordConvertsEveryField() throws {
        let crm = try memory()
        let s = try crm.createSegment(name: "vips", filter: #" "vip"  IN tags "#, description: "Our best")
        XCTAssertEqual(s.id.count, 36)
        XCTAssertEqual(s.name, "vips")
        XCTAssertEqual(s.description, "Our best")
        XCTAssertEqual(s.kind, .dynamic)
        XCTAssertEqual(s.filter, #""vip" in tags"#)
        XCTAssertLessThan(abs(s.createdAt.timeIntervalSinceNow), 5)
        XCTAssertEqual(s.createdAt, s.updatedAt)
        XCTAssertNil(s.evaluatedAt)
        XCTAssertEqual(try crm.segment(name: "vips"), s)
        let list = try crm.createSegment(name: "a-list")
        XCTAssertEqual(list.kind, .static)
        XCTAssertNil(list.filter)
        XCTAssertEqual(try crm.segments().map(\.name), ["a-list", "vips"])
    }

    func testADynamicSegmentIsCountedAndPagedLikeItsFilter() throws {
        let crm = try memory()
        let vips = try (0..<25).map { try person(crm, String(format: "VIP %02d", $0), tags: ["vip"]) }
        for n in 0..<5 { _ = try person(crm, "Other \(n)") }
        _ = try crm.createSegment(name: "vips", filter: #""vip" in tags"#)
        XCTAssertEqual(try crm.segmentCount(name: "vips"), 25)
        let members = try pages { try crm.segmentMembers(name: "vips", limit: 10, cursor: $0) }
        XCTAssertEqual(members.map(\.items.count), [10, 10, 5])
        XCTAssertEqual(members.flatMap(\.items).map(\.id), vips.map(\.id))
        let found = try pages { try crm.findMatching(filter: #""vip" in tags"#, limit: 10, cursor: $0) }
        XCTAssertEqual(found.flatMap(\.items), members.flatMap(\.items))
        XCTAssertTrue(try crm.segmentContains(name: "vips", customerId: vips[3].id))
        let late = try person(crm, "Late", tags: ["vip"])
        XCTAssertEqual(try crm.segmentCount(name: "vips"), 26)
        assertCrmError(try crm.addToSegment(name: "vips", customerIds: [late.id])) {
            if case .Validation(let field, _) = $0 { return field == "segment" } else { return false }
        }
    }

    func testAStaticSegmentHoldsWhoIsAddedUntilRemoved() throws {
        let crm = try memory()
        let ana = try person(crm, "Ana")
        let bo = try person(crm, "Bo")
        let cy = try person(crm, "Cy")
        _ = try crm.createSegment(name: "call-list", description: "Call this week")
        XCTAssertEqual(try crm.addToSegment(name: "call-list", customerIds: [ana.id, bo.id]), 2)
        XCTAssertEqual(try crm.addToSegment(name: "call-list", customerIds: [bo.id, cy.id]), 1)
        XCTAssertEqual(try crm.segmentCount(name: "call-list"), 3)
        XCTAssertEqual(try crm.removeFromSegment(name: "call-list", customerIds: [bo.id]), 1)
        XCTAssertEqual(try crm.removeFromSegment(name: "call-list", customerIds: [bo.id]), 0)
        XCTAssertFalse(try crm.segmentContains(name: "call-list", customerId: bo.id))
        XCTAssertEqual(try crm.segmentMembers(name: "call-list").items.map(\.id), [ana.id, cy.id])
        assertCrmError(try crm.updateSegment(name: "call-list", filter: "country is null")) {
            if case .Validation(let field, _) = $0 { return field == "filter" } else { return false }
        }
        assertCrmError(try crm.materializeSegment(name: "call-list")) {
            if case .Validation(let field, _) = $0 { return field == "segment" } else { return false }
        }
        let log = try crm.changesSince(afterSeq: 0, limit: 1000).filter { $0.entity == .segmentMember }
        XCTAssertEqual(log.map(\.op), [.created, .created, .created, .deleted])
        XCTAssertTrue(log.allSatisfy { $0.fields == ["call-list"] })
        XCTAssertEqual(log.last?.entityId, bo.id)
    }

    func testMaterializingReportsWhoEnteredAndLeft() throws {
        let crm = try memory()
        _ = try person(crm, "Ana", country: "SI")
        let bo = try person(crm, "Bo", country: "SI")
        _ = try person(crm, "Cy", country: "AT")
        _ = try crm.createSegment(name: "slovenia", filter: #"country = "SI""#)
        XCTAssertEqual(try crm.materializeSegment(name: "slovenia"), MaterializeReport(members: 2, entered: 2, left: 0))
        XCTAssertNotNil(try crm.segment(name: "slovenia").evaluatedAt)
        _ = try crm.updateCustomer(id: bo.id, patch: CustomerPatch(country: "AT"))
        _ = try person(crm, "Dan", country: "SI")
        XCTAssertEqual(try crm.materializeSegment(name: "slovenia"), MaterializeReport(members: 2, entered: 1, left: 1))
        let left = try crm.changesSince(afterSeq: 0, limit: 1000).filter { $0.entity == .segmentMember && $0.op == .deleted }
        XCTAssertEqual(left.map(\.entityId), [bo.id])
        XCTAssertEqual(left.first?.fields, ["slovenia"])
    }

    func testSegmentsAreRenamedUpdatedAndDeleted() throws {
        let crm = try memory()
        let base = try crm.createSegment(name: "si", filter: #"country = "SI""#, description: "Slovenia")
        _ = try crm.createSegment(name: "si-vips", filter: #"in_segment("si") and "vip" in tags"#)
        let renamed = try crm.renameSegment(name: "si", newName: "slovenia")
        XCTAssertEqual(renamed.id, base.id)
        XCTAssertEqual(try crm.segment(name: "si-vips").filter, #"in_segment("slovenia") and "vip" in tags"#)
        let redefined = try crm.updateSegment(name: "slovenia", filter: #"country="SI" OR country="HR""#)
        XCTAssertEqual(redefined.filter, #"country = "SI" or country = "HR""#)
        XCTAssertEqual(redefined.description, "Slovenia")
        XCTAssertNil(try crm.updateSegment(name: "slovenia", clearDescription: true).description)
        assertCrmError(try crm.deleteSegment(name: "slovenia")) {
            if case .Conflict = $0 { return true } else { return false }
        }
        try crm.deleteSegment(name: "si-vips")
        try crm.deleteSegment(name: "slovenia")
        XCTAssertEqual(try crm.segments(), [])
        let log = try crm.changesSince(afterSeq: 0, limit: 1000)
        XCTAssertTrue(log.allSatisfy { $0.entity == .segment })
        XCTAssertEqual(log.last?.op, .deleted)
    }

    func testSegmentCallsOnAClosedDatabaseThrowClosed() throws {
        let crm = try memory()
        _ = try crm.createSegment(name: "list")
        let asMaja = try crm.withActor(actor: "maja")
        try crm.close()
        assertCrmError(try crm.segmentCount(name: "list")) { $0 == .Closed }
        assertCrmError(try crm.countMatching(filter: "country is null")) { $0 == .Closed }
        assertCrmError(try asMaja.createSegment(name: "other")) { $0 == .Closed }
        XCTAssertEqual(try formatFilter(json: try parseFilter(text: "country IS NULL")), "country is null")
    }

    func testSegmentCountsReadFromSeveralThreadsWhileAnotherWritesCustomers() throws {
        let crm = try Crm.open(path: dir.appendingPathComponent("segments.crm").path)
        _ = try crm.createSegment(name: "vips", filter: #""vip" in tags"#)
        _ = try crm.createSegment(name: "list")
        let writes = 120
        let shared = Shared()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            do {
                for n in 0..<writes {
                    let c = try crm.createCustomer(customer: NewCustomer(name: "Customer \(n)", tags: n % 2 == 0 ? ["vip"] : []))
                    if n % 3 == 0 { _ = try crm.addToSegment(name: "list", customerIds: [c.id]) }
                }
            } catch {
                shared.fail("\(error)")
            }
            shared.finish()
        }
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                var lastVips: UInt64 = 0
                var lastList: UInt64 = 0
                repeat {
                    do {
                        let vips = try crm.segmentCount(name: "vips")
                        let list = try crm.segmentCount(name: "list")
                        if vips < lastVips || list < lastList { shared.fail("a count went back") }
                        lastVips = vips
                        lastList = list
                        _ = try crm.segmentMembers(name: "vips", limit: 10)
                    } catch {
                        shared.fail("\(error)")
                    }
                } while !shared.finished
            }
        }
        group.wait()
        XCTAssertEqual(shared.allFailures, [])
        XCTAssertEqual(try crm.segmentCount(name: "vips"), 60)
        XCTAssertEqual(try crm.segmentCount(name: "list"), 40)
    }

    // MARK: change listener

    final class Changes: ChangeListener, @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [Change] = []
        private var batchSizes: [Int] = []
        func onChanges(changes: [Change]) throws {
            lock.lock(); seen += changes; batchSizes.append(changes.count); lock.unlock()
        }
        var all: [Change] { lock.lock(); defer { lock.unlock() }; return seen }
        var batches: [Int] { lock.lock(); defer { lock.unlock() }; return batchSizes }
    }

    final class ThrowingChanges: ChangeListener, @unchecked Sendable {
        struct Boom: Error {}
        private let lock = NSLock()
        private var count = 0
        func onChanges(changes: [Change]) throws {
            lock.lock(); count += 1; lock.unlock()
            throw Boom()
        }
        var calls: Int { lock.lock(); defer { lock.unlock() }; return count }
    }

    func testAListenerIsToldTheEntityIdAndChangeTypeOfEveryWrite() throws {
        let crm = try memory()
        let changes = Changes()
        _ = try crm.addChangeListener(listener: changes)
        let ana = try crm.withActor(actor: "maja", source: "mobile-app").createCustomer(customer: self.ana())
        _ = try crm.updateCustomer(id: ana.id, patch: CustomerPatch(owner: "luka"))
        let call = try crm.logInteraction(interaction: NewInteraction(customer: .id(id: ana.id), kind: .call))
        try crm.deleteCustomer(id: ana.id)
        XCTAssertEqual(changes.all.map(\.entity), [.customer, .customer, .interaction, .customer])
        XCTAssertEqual(changes.all.map(\.op), [.created, .updated, .created, .deleted])
        XCTAssertEqual(changes.all.map(\.entityId), [ana.id, ana.id, call.id, ana.id])
        XCTAssertEqual(changes.all[0].actor, "maja")
        XCTAssertEqual(changes.all[1].fields, ["owner"])
        XCTAssertEqual(try crm.changesSince(afterSeq: 0, limit: 100), changes.all)
    }

    func testAnImportIsReportedInBatchesOfAtMost1000() throws {
        let crm = try memory()
        let changes = Changes()
        _ = try crm.addChangeListener(listener: changes)
        _ = try crm.importCustomers(customers: (1...2_500).map { NewCustomer(name: "P\($0)") })
        XCTAssertEqual(changes.batches, [1_000, 1_000, 500])
    }

    func testARemovedListenerIsNotCalledAgain() throws {
        let crm = try memory()
        let (kept, removed) = (Changes(), Changes())
        _ = try crm.addChangeListener(listener: kept)
        let id = try crm.addChangeListener(listener: removed)
        _ = try crm.createCustomer(customer: NewCustomer(name: "A"))
        XCTAssertTrue(try crm.removeChangeListener(id: id))
        XCTAssertFalse(try crm.removeChangeListener(id: id))
        _ = try crm.createCustomer(customer: NewCustomer(name: "B"))
        XCTAssertEqual(removed.all.count, 1)
        XCTAssertEqual(kept.all.count, 2)
    }

    func testAListenerThatThrowsDoesNotBreakTheWriteOrTheOtherListeners() throws {
        let crm = try memory()
        let (before, throwing, after) = (Changes(), ThrowingChanges(), Changes())
        _ = try crm.addChangeListener(listener: before)
        _ = try crm.addChangeListener(listener: throwing)
        _ = try crm.addChangeListener(listener: after)
        let ana = try crm.createCustomer(customer: self.ana())
        _ = try crm.updateCustomer(id: ana.id, patch: CustomerPatch(owner: "maja"))
        XCTAssertEqual(throwing.calls, 2)
        XCTAssertEqual(before.all, after.all)
        XCTAssertEqual(after.all.count, 2)
        XCTAssertEqual(try crm.getCustomer(id: ana.id).owner, "maja")
    }

    func testClosingTheDatabaseUnregistersListeners() throws {
        let crm = try memory()
        let asMaja = try crm.withActor(actor: "maja")
        let id = try asMaja.addChangeListener(listener: Changes())
        try crm.close()
        XCTAssertFalse(try asMaja.removeChangeListener(id: id))
        assertCrmError(try crm.addChangeListener(listener: Changes())) { $0 == .Closed }
    }

    // MARK: customer cards

    func testACardCarriesTheListFieldsAndASummaryOfTheLatestInteraction() throws {
        let crm = try memory()
        let ana = try crm.createCustomer(customer: NewCustomer(
            firstName: "Ana", lastName: "Novak", emails: ["Ana@Example.com", "b@example.com"], tags: ["VIP"]))
        let at = Date(timeIntervalSince1970: 1_740_821_400)
        _ = try crm.logInteraction(interaction: NewInteraction(
            customer: .id(id: ana.id), kind: .email, occurredAt: at.addingTimeInterval(-3600), subject: "older"))
        let latest = try crm.logInteraction(interaction: NewInteraction(
            customer: .id(id: ana.id), kind: .purchase, occurredAt: at, subject: "Order 7", body: "long",
            amountMinor: 12_990, currency: "EUR"))
        let card = try XCTUnwrap(crm.listCustomerCards().items.first)
        XCTAssertEqual(card.id, ana.id)
        XCTAssertEqual(card.name, "Ana Novak")
        XCTAssertEqual(card.email, "ana@example.com")
        XCTAssertEqual(card.tags, ["vip"])
        let summary = try XCTUnwrap(card.latestInteraction)
        XCTAssertEqual(summary.id, latest.id)
        XCTAssertEqual(summary.kind, .purchase)
        XCTAssertEqual(summary.subject, "Order 7")
        XCTAssertEqual(summary.amountMinor, 12_990)
        assertTime(summary.occurredAt, at)
    }

    func testCardsPageWithCursors() throws {
        let crm = try memory()
        for n in 0..<23 { _ = try crm.createCustomer(customer: NewCustomer(name: String(format: "Customer %02d", n))) }
        var seen: [String] = []
        var cursor: String? = nil
        repeat {
            let page = try crm.listCustomerCards(query: ListCustomers(sort: .name, descending: true, limit: 5, cursor: cursor))
            seen += page.items.map(\.name)
            cursor = page.nextCursor
        } while cursor != nil
        XCTAssertEqual(seen, (0..<23).reversed().map { String(format: "Customer %02d", $0) })
    }

    // MARK: threads (mobile)

    func testReadsCompleteWhileALongImportHoldsTheWriteLock() throws {
        let crm = try Crm.open(path: dir.appendingPathComponent("long.crm").path)
        _ = try crm.importCustomers(customers: (1...100).map { NewCustomer(name: "Existing \($0)") })
        final class Hold: ImportProgressListener, @unchecked Sendable {
            let entered = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            private let lock = NSLock()
            private var first = true
            func onProgress(progress: ImportProgress) throws {
                lock.lock(); let isFirst = first; first = false; lock.unlock()
                if isFirst {
                    entered.signal()
                    _ = release.wait(timeout: .now() + 60)
                }
            }
        }
        let hold = Hold()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? crm.importCustomers(
                customers: (1...2_000).map { NewCustomer(name: "Imported \($0)") },
                options: ImportOptions(progressEvery: 500), listener: hold)
            done.signal()
        }
        XCTAssertEqual(hold.entered.wait(timeout: .now() + 60), .success)
        for _ in 0..<20 {
            XCTAssertEqual(try crm.countCustomers(), 100)
            XCTAssertEqual(try crm.listCustomerCards().items.count, 50)
        }
        XCTAssertEqual(done.wait(timeout: .now()), .timedOut)  // the import is still running
        hold.release.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(try crm.countCustomers(), 2_100)
    }

    // MARK: bad input (mobile)

    /// Runs a Python 3 script in another process (its own SQLite).
    private func python(_ script: String, _ args: [String]) throws -> (Process, FileHandle) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + args
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        return (process, pipe.fileHandleForReading)
    }

    func testA50MBStringIsAValidationErrorAndNotACrash() throws {
        let crm = try memory()
        let huge = String(repeating: "x", count: 50_000_000)
        assertCrmError(try crm.createCustomer(customer: NewCustomer(name: huge))) {
            if case .Validation(let field, _) = $0 { return field == "name" } else { return false }
        }
        assertCrmError(try crm.getCustomer(id: huge)) {
            if case .Validation(let field, _) = $0 { return field == "customer_id" } else { return false }
        }
        assertCrmError(try crm.listCustomerCards(query: ListCustomers(cursor: huge))) {
            if case .Validation(let field, _) = $0 { return field == "cursor" } else { return false }
        }
        XCTAssertEqual(try crm.countCustomers(), 0)
    }

    func testEveryCallOnAClosedDatabaseThrowsClosed() throws {
        let crm = try Crm.open(path: dir.appendingPathComponent("closed.crm").path)
        let ana = try crm.createCustomer(customer: self.ana())
        try crm.close()
        try crm.close()
        assertCrmError(try crm.listCustomerCards()) { $0 == .Closed }
        assertCrmError(try crm.getCustomer(id: ana.id)) { $0 == .Closed }
        assertCrmError(try crm.search(query: "ana", limit: 5)) { $0 == .Closed }
        assertCrmError(try crm.logInteraction(interaction: NewInteraction(customer: .id(id: ana.id), kind: .note))) { $0 == .Closed }
        assertCrmError(try crm.importCustomers(customers: [NewCustomer(name: "B")])) { $0 == .Closed }
    }

    func testAWriteToAFileAnotherProcessHoldsLockedIsBusy() throws {
        let path = dir.appendingPathComponent("locked.crm").path
        let crm = try Crm.open(path: path, options: OpenOptions(busyTimeoutMs: 300))
        _ = try crm.createCustomer(customer: ana())
        let (holder, out) = try python("""
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1], isolation_level=None)
            db.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(2)
            db.execute("ROLLBACK")
            """, [path])
        XCTAssertEqual(String(decoding: out.availableData, as: UTF8.self), "locked\n")
        assertCrmError(try crm.createCustomer(customer: NewCustomer(name: "Bo"))) { $0 == .Busy }
        XCTAssertEqual(try crm.countCustomers(), 1)  // reads go on (WAL)
        holder.waitUntilExit()
        _ = try crm.createCustomer(customer: NewCustomer(name: "Bo"))
        XCTAssertEqual(try crm.countCustomers(), 2)
    }

    func testADamagedFileIsCorruptAndAForeignOneIsLeftUntouched() throws {
        let path = dir.appendingPathComponent("damaged.crm").path
        let crm = try Crm.open(path: path)
        _ = try crm.importCustomers(customers: (1...500).map { NewCustomer(name: "Customer \($0)") })
        try crm.close()
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        let size = handle.seekToEndOfFile()
        var at: UInt64 = 4096 * 2
        while at < size {
            handle.seek(toFileOffset: at)
            handle.write(Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 31 + 7) }))
            at += 4096 * 3
        }
        handle.closeFile()
        func openAndRead() throws {
            let damaged = try Crm.open(path: path)
            _ = try damaged.countCustomers()
            _ = try damaged.listCustomerCards(query: ListCustomers(limit: 1000))
        }
        assertCrmError(try openAndRead()) { $0 == .Corrupt }

        let foreign = dir.appendingPathComponent("other-app.db").path
        let (maker, _) = try python("""
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            db.commit()
            """, [foreign])
        maker.waitUntilExit()
        let before = try Data(contentsOf: URL(fileURLWithPath: foreign))
        assertCrmError(try Crm.open(path: foreign)) { $0 == .Corrupt }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: foreign)), before)
    }
}
