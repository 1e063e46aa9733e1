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

/// Red team, session 27: the helper is root in a user namespace root owns, so a uid-0
/// process without any capability passes the ptrace check on it (as the namespace's
/// owner) and, the helper sharing the supervisor's memory, could write into the
/// supervisor. A memory that is not dumpable needs CAP_SYS_PTRACE besides, which a
/// root supervisor's is (SupervisorHardening).
@Suite struct IdmapHelperMemoryTests {
    @Test func aRootProcessWithoutCapabilitiesCannotOpenTheHelpersMemory() {
        // Control: the helper of a dumpable creator — the attack works.
        #expect(sbx_test_open_helper_memory(0) == 0, "control: the attack should open a dumpable helper's memory")
        // The fence: the creator is not dumpable, as a root supervisor is.
        let fenced = sbx_test_open_helper_memory(1)
        #expect(fenced == EACCES || fenced == EPERM, "a capability-less root opened the helper's memory: \(fenced)")
    }
}

/// Red team, session 27 (second review): `doctor`, `explain` and a plan for
/// `isolation = "namespaces-or-nested"` start the idmap helper or the namespace probe
/// before any run; each hardens the process itself, so a root process is not
/// dumpable by the time a copy of it, or a helper sharing its memory, exists.
@Suite struct HardeningBeforeAnyRunTests {
    @Test func makingAnIdmapNamespaceHardensTheProcess() {
        #expect(sbx_test_dumpable_after(0) == 0, "still dumpable after an idmap user namespace was made")
    }

    @Test func theNamespaceProbeHardensTheProcess() {
        #expect(sbx_test_dumpable_after(1) == 0, "still dumpable after the namespace probe ran")
    }
}

/// Session 40's hang: a copy of the process made by a bare `fork` while another thread
/// held the dumpable lock kept a locked copy of it that no thread of its own would
/// release, and waited on it for ever (it hung a CI run). `sbx_copy_process` makes the
/// copy under the lock and frees the copy's. Here another thread really holds the lock
/// across the copy; the wait on the copy is bounded, so the control fails, not hangs.
@Suite struct CopyUnderTheDumpableLockTests {
    @Test func aCopyMadeWhileAnotherThreadHoldsTheLockCanTakeIt() {
        // Control: a bare fork while the lock is held; the copy waits on it for ever.
        #expect(sbx_test_copy_while_lock_held(0) == -ETIMEDOUT, "control: a bare fork's copy should wait on the held lock")
        // The fence: the product's copy.
        #expect(sbx_test_copy_while_lock_held(1) == 0, "the copy could not take the dumpable lock")
    }
}
