import Testing
@testable import SandboxPolicy

/// Which owners a policy file may have inside a user namespace (`PolicyFile.untrusted`):
/// the overflow uid counts as "no mapped user" only where no range maps it (red team,
/// session 46: in "0 100000 65536" it is the namespace's own nobody, who could write
/// the file the check trusted). Controls: a nested run's map, which leaves it out,
/// trusts it; the initial namespace never does.
@Suite struct PolicyFileOwnerTests {
    @Test func theOverflowUidStandsForNoUserOnlyWhereNoRangeMapsIt() {
        #expect(!PolicyFile.overflowStandsForNoUser(uidMap: "         0     100000      65536\n", overflow: 65534))
        #expect(!PolicyFile.overflowStandsForNoUser(uidMap: "0 1000 1\n65534 100000 1\n", overflow: 65534))
        #expect(PolicyFile.overflowStandsForNoUser(uidMap: "0 1000 1\n", overflow: 65534), "control: root alone mapped")
        #expect(PolicyFile.overflowStandsForNoUser(uidMap: "0 100000 1000\n", overflow: 65534), "control: a range below it")
        #expect(!PolicyFile.overflowStandsForNoUser(uidMap: "         0          0 4294967295\n", overflow: 65534),
                "the initial namespace: 65534 is a real user")
        #expect(!PolicyFile.overflowStandsForNoUser(uidMap: "", overflow: 65534))
    }
}
