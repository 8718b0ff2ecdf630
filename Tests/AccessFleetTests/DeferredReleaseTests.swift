import AccessFleet
import Synchronization
import Testing

@Suite("Deferred release of what libnats may still be using")
struct DeferredReleaseTests {
    @Test func eachIsReleasedOnlyOnceItsGraceHasPassedAndOnlyOnce() {
        let clock = Atomic<UInt64>(1_000)
        let released = Mutex<[String]>([])
        let retired = DeferredRelease<String>(grace: .nanoseconds(100), now: { clock.load(ordering: .relaxed) }) { item in
            released.withLock { $0.append(item) }
        }
        retired.retire("a")
        clock.store(1_099, ordering: .relaxed)
        retired.retire("b")
        #expect(released.withLock { $0 }.isEmpty, "a's grace has not passed")
        #expect(retired.count == 2)
        clock.store(1_100, ordering: .relaxed)
        retired.retire("c")
        #expect(released.withLock { $0 } == ["a"])
        clock.store(10_000, ordering: .relaxed)
        retired.retire("d")
        #expect(released.withLock { $0 } == ["a", "b", "c"], "in the order they were retired, each once")
        #expect(retired.count == 1, "d is held until a later retire")
    }
}
