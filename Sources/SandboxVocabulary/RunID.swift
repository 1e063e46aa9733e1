/// The run-id rule, the one every consumer applies: the planner (`{run_id}` in
/// paths), the run directory, the cgroup directories, the uid lease and the egress
/// interface's ownership mark.
///
/// `[a-z0-9-]{1,64}`: a run id becomes a directory name and a cgroup name, so it
/// keeps out `/`, `.`, `..` and every cgroup control file name (they contain dots);
/// lowercase only, so two ids never name the same thing on a case-folding
/// filesystem. Generated ids are 12 hex digits.
public enum RunID {
    public static let maxLength = 64

    /// The rule in words, for error messages.
    public static let rule = "1 to 64 of a-z, 0-9 and '-'"

    public static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= maxLength && id.utf8.allSatisfy {
            ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                || $0 == UInt8(ascii: "-")
        }
    }
}
