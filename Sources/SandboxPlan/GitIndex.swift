/// The gitlinks (submodule entries, mode 160000) of a git index file: the paths git
/// on the host recurses into (`git status`, `git diff`), whatever `.gitmodules` says.
/// `.gitmodules` is a work-tree file the command may edit, and `git add` of a cloned
/// repository makes a gitlink with no `.gitmodules` entry at all; the index, under a
/// protected `.git`, is what git reads (red team, session 43: both left a submodule's
/// `.git` writable, and the host's `git status` ran the fsmonitor it was given).
///
/// Versions 2, 3 and 4 (path prefix compression) of gitformat-index(5), SHA-1 or
/// SHA-256 object names. A split index names its shared index (`link` extension),
/// whose entries the caller reads too: a gitlink may be in either.
enum GitIndex {
    struct Contents: Equatable {
        /// Paths relative to the work tree, as bytes (an index path need not be UTF-8).
        var gitlinks: [[UInt8]]
        /// The shared index's object name in hex, for a split index.
        var sharedIndex: String?
    }

    enum ReadError: Error, Equatable {
        case notAnIndex
        case version(UInt32)
        case truncated(entry: Int)
        /// A path longer than `maxPath` or more than `maxGitlinks` gitlinks: an index
        /// a command made (in a `.git` of its own that `.gitmodules` names) grew
        /// version 4's paths a byte an entry and held the planner for minutes and
        /// gigabytes (red team, session 44). Git's paths are at most PATH_MAX.
        case tooLarge(entry: Int)
    }

    static let maxPath = 4096
    static let maxGitlinks = 1024

    /// `objectSize`: 20 (SHA-1) or 32 (SHA-256, `extensions.objectFormat`).
    static func read(_ b: [UInt8], objectSize: Int) throws(ReadError) -> Contents {
        func u32(_ at: Int) -> UInt32 {
            UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
        }
        func u16(_ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }
        guard b.count >= 12 + objectSize, b[0] == 0x44, b[1] == 0x49, b[2] == 0x52, b[3] == 0x43 else { throw .notAnIndex } // "DIRC"
        let version = u32(4)
        guard (2...4).contains(version) else { throw .version(version) }
        let count = Int(u32(8))
        let end = b.count - objectSize // the trailing checksum
        var at = 12
        var previous: [UInt8] = []
        var gitlinks: [[UInt8]] = []
        // ctime, mtime (8 bytes each), dev, ino, mode, uid, gid, size (4 each).
        let fixed = 40 + objectSize + 2
        for i in 0..<count {
            let start = at
            guard at + fixed <= end else { throw .truncated(entry: i) }
            let mode = u32(at + 24)
            let flags = u16(at + 40 + objectSize)
            at += fixed
            if flags & 0x4000 != 0 {   // extended flags (version 3 and later)
                guard version >= 3, at + 2 <= end else { throw .truncated(entry: i) }
                at += 2
            }
            let gitlink = mode & 0o170000 == 0o160000
            if gitlink && gitlinks.count >= maxGitlinks { throw .tooLarge(entry: i) }
            let nameLength = Int(flags & 0xFFF)
            if version == 4 {
                // The number of bytes to drop from the previous path (git's varint),
                // then the rest of this path, NUL-terminated; no padding. The previous
                // path is kept in one buffer: a large index is read for every plan.
                guard at < end else { throw .truncated(entry: i) }
                var c = b[at]; at += 1
                var strip = Int(c & 127)
                while c & 128 != 0 {
                    guard at < end, strip < 1 << 24 else { throw .truncated(entry: i) }
                    c = b[at]; at += 1
                    strip = ((strip + 1) << 7) | Int(c & 127)
                }
                guard strip <= previous.count else { throw .truncated(entry: i) }
                let kept = previous.count - strip
                // The path's length as git takes it: the flags' unless 0xFFF (longer).
                let suffix: Int
                if nameLength == 0xFFF {
                    guard let nul = b[at..<end].firstIndex(of: 0) else { throw .truncated(entry: i) }
                    suffix = nul - at
                } else {
                    guard nameLength >= kept, nameLength - kept < end - at else { throw .truncated(entry: i) }
                    suffix = nameLength - kept
                }
                guard kept + suffix <= maxPath else { throw .tooLarge(entry: i) }
                previous.removeLast(strip)
                previous.append(contentsOf: b[at..<(at + suffix)])
                if gitlink { gitlinks.append(previous) }
                at += suffix + 1
            } else {
                // The flags' length (NUL-terminated past 0xFFF), then NULs to a
                // multiple of eight bytes, as git reads it.
                var length = nameLength
                if nameLength == 0xFFF {
                    guard let nul = b[at..<end].firstIndex(of: 0) else { throw .truncated(entry: i) }
                    length = nul - at
                }
                guard length < end - at else { throw .truncated(entry: i) }
                guard length <= maxPath else { throw .tooLarge(entry: i) }
                if gitlink { gitlinks.append(Array(b[at..<(at + length)])) }
                at = start + ((at + length - start + 8) & ~7)
                guard at <= end else { throw .truncated(entry: i) }
            }
        }
        // Extensions: a four-byte signature and a four-byte size each.
        var shared: String? = nil
        while at + 8 <= end {
            let size = Int(u32(at + 4))
            guard size <= end - at - 8 else { throw .truncated(entry: count) }
            if b[at] == 0x6C, b[at + 1] == 0x69, b[at + 2] == 0x6E, b[at + 3] == 0x6B, size >= objectSize { // "link"
                let hex = Array("0123456789abcdef".utf8)
                var name = ""
                for byte in b[(at + 8)..<(at + 8 + objectSize)] {
                    name.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                    name.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
                }
                // All zeros: no shared index.
                if name.contains(where: { $0 != "0" }) { shared = name }
            }
            at += 8 + size
        }
        return Contents(gitlinks: gitlinks, sharedIndex: shared)
    }
}
