import CSandboxTestSupport
import Glibc
import Testing

/// The spec a server's spawner clones from (sandbox_spawner.h) is the one the
/// executor built: every field read back equal, descriptors as the indexes they
/// travel as; one that does not fit in a message is refused (and then cloned by the
/// server itself), never cut short.
@Suite struct SpawnerSpecTests {
    @Test func everyFieldReadsBackEqual() {
        #expect(sbx_test_spawner_roundtrip() == 0)
    }

    /// A sandbox built ahead receives its command (argv, environment, the checked
    /// executable, stdio) whole, and only those fields of its spec change.
    @Test func theCommandOfASandboxBuiltAheadReadsBackEqual() {
        #expect(sbx_test_command_roundtrip() == 0)
    }

    @Test func moreDescriptorsThanOneMessageCarriesDoNotFit() {
        // cwd, sync, error, status: 4, plus one per moved mount; a message carries 253.
        #expect(sbx_test_spawner_fit(249) == 0)
        #expect(sbx_test_spawner_fit(250) == -EMFILE)
    }
}
