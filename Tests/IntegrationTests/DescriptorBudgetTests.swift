import Glibc
import SandboxKernel
@testable import SandboxServe
import Synchronization
import Testing

/// `sandbox serve`'s descriptor budget: a request that does not fit waits until a
/// release makes room (woken by it, not by polling), stops waiting when its client
/// is gone, and a need above the total is capped so the largest plan still runs.
@Suite struct DescriptorBudgetTests {
    @Test func aWaiterTakesTheRoomAReleaseMakes() {
        let budget = DescriptorBudget(total: 100)
        #expect(budget.acquire(80, while: { true }))
        let got = Atomic<Int>(0)   // 0 waiting, 1 took it
        let done = Condition()
        Threads.detach {
            let ok = budget.acquire(50, while: { true })
            got.store(ok ? 1 : -1, ordering: .sequentiallyConsistent)
            done.lock(); done.broadcast(); done.unlock()
        }
        usleep(150_000)
        #expect(got.load(ordering: .sequentiallyConsistent) == 0, "took 50 while only 20 were free")
        done.lock()
        budget.release(80)
        var waited = 0
        while got.load(ordering: .sequentiallyConsistent) == 0 && waited < 100 { done.wait(milliseconds: 100); waited += 1 }
        done.unlock()
        #expect(got.load(ordering: .sequentiallyConsistent) == 1, "the waiter never took the released room")
        #expect(budget.available == 50)
        budget.release(50)
        #expect(budget.available == 100)
    }

    @Test func aWaiterWhoseClientIsGoneStopsWaiting() {
        let budget = DescriptorBudget(total: 10)
        #expect(budget.acquire(10, while: { true }))
        let asked = Atomic<Int>(0)
        // Still wanted for the first two checks, then the client is gone.
        let ok = budget.acquire(1, while: { asked.add(1, ordering: .relaxed).newValue < 3 })
        #expect(!ok, "a request whose client left took room")
        #expect(budget.available == 0, "a refused request took room")
    }

    @Test func aNeedAboveTheTotalIsCapped() {
        let budget = DescriptorBudget(total: 64)
        #expect(budget.acquire(1000, while: { false }), "the largest plan must still run, alone")
        #expect(budget.available == 0)
        budget.release(1000)
        #expect(budget.available == 64)
    }
}
