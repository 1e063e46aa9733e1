import Glibc
import Testing

/// SANDBOX_TESTS_ALLOW_SKIP=1 is the only way a missing kernel feature becomes a skip;
/// CI never sets it.
let allowSkip = getenv("SANDBOX_TESTS_ALLOW_SKIP").map { String(cString: $0) == "1" } ?? false

/// Records a failure for a missing feature (or, with SANDBOX_TESTS_ALLOW_SKIP=1, prints
/// why the test does nothing) and returns false; true when `condition` holds.
func require(_ condition: Bool, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    if condition { return true }
    if allowSkip {
        print("SKIPPED (SANDBOX_TESTS_ALLOW_SKIP=1): \(what)")
    } else {
        Issue.record("missing kernel feature: \(what) (set SANDBOX_TESTS_ALLOW_SKIP=1 to skip)", sourceLocation: sourceLocation)
    }
    return false
}
