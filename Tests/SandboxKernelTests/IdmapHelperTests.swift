import CSandboxTestSupport
import Glibc
import Testing

/// The process that holds an idmapped bind's user namespace while its maps are written
/// shares the supervisor's memory (CLONE_VM) and sleeps until the supervisor kills it.
/// A supervisor killed first must not leave it asleep for ever: FaultTests found one
/// that outlived its killed supervisor before the helper was bound to its creator's
/// life (PDEATHSIG).
@Suite struct IdmapHelperTests {
    @Test func helperEndsWithItsCreator() throws {
        let fd = sbx_test_orphaned_userns_helper()
        if fd == -ESRCH { return } // ended (and reaped) already
        try #require(fd >= 0, "could not start the helper: \(String(cString: strerror(-fd)))")
        defer { close(fd) }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&p, 1, 5_000)
        #expect(ready == 1, "the helper outlived its creator by 5 s")
    }
}
