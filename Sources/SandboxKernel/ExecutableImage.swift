import CSandbox

/// The executable's own image in memory (`sandbox_image.h`).
public enum ExecutableImage {
    /// The whole pages of the executable's relocation tables that may be released:
    /// read-only, in a binary without text relocations. Empty for a binary without
    /// relocations.
    public static func relocationPages() -> [(start: UInt, length: UInt)] {
        var ranges = [sbx_image_range](repeating: sbx_image_range(), count: 2)
        let count = Int(sbx_relocation_pages(&ranges))
        return ranges.prefix(count).map { (start: UInt($0.start), length: UInt($0.length)) }
    }

    /// Unmaps the relocation pages, which the loader read once before `main` (1.1 MiB
    /// in the release binary) and nothing reads again: the supervisor's resident set
    /// no longer holds them for the whole run (issue 16). A later read faults the
    /// file's bytes back in. The page cache keeps them (shared): what shrinks is this
    /// process's resident set. Returns the bytes released, or a negative errno (a
    /// table not yet released then stays mapped; nothing else changes).
    @discardableResult
    public static func releaseRelocationPages() -> Int {
        sbx_release_relocation_pages()
    }
}
