/// The seccomp violations of one run as the supervisor collects them: memory and
/// result size stay bounded whatever the command does (a flood of calls, or of
/// distinct syscalls), and the totals stay exact.
///
/// Bounds (constants on `RunResult.Violation`): at most `maxEntries` syscalls get an
/// entry; each entry keeps the arguments of its first `maxCalls` calls, and the run
/// keeps at most `maxRecordedCalls` argument lists in all. Everything else is only
/// counted: `count` per entry, `dropped` for syscalls past the entry cap, `total` for
/// all. State is O(1) in the number of calls: a run that makes a billion calls holds
/// the same entries and three integers.
struct ViolationLog {
    private(set) var entries: [String: RunResult.Violation] = [:]
    /// Every call recorded, exact.
    private(set) var total = 0
    /// Calls of syscalls that got no entry (the entry cap was reached first).
    private(set) var dropped = 0
    /// Argument lists kept so far, across entries.
    private var recordedCalls = 0

    mutating func record(syscall: String, args: [UInt64]) {
        total += 1
        if var existing = entries[syscall] {
            existing.count += 1
            if existing.calls.count < RunResult.Violation.maxCalls, recordedCalls < RunResult.Violation.maxRecordedCalls {
                existing.calls.append(args)
                recordedCalls += 1
            }
            entries[syscall] = existing
        } else if entries.count < RunResult.Violation.maxEntries {
            let keep = recordedCalls < RunResult.Violation.maxRecordedCalls
            if keep { recordedCalls += 1 }
            entries[syscall] = RunResult.Violation(kind: "seccomp", syscall: syscall, args: args,
                                                   calls: keep ? [args] : [], count: 1)
        } else {
            dropped += 1
        }
    }

    /// The entries in the result's order (by syscall name).
    var sorted: [RunResult.Violation] { entries.values.sorted { ($0.syscall ?? "") < ($1.syscall ?? "") } }
}
