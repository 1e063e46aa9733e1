import CSandbox
import Glibc
import SandboxVocabulary

/// Where a path lives on its filesystem, whatever mount shows it: the device
/// (`major:minor`) and the path below that filesystem's root. Two paths that name the
/// same place through different bind mounts (an alias of a directory, or of one of
/// its subdirectories) have the same location, so "is X inside Y" can be decided
/// without trusting the names: Y contains X when they are on the same device and
/// Y's path is a prefix of X's. Read from `/proc/self/mountinfo`.
public struct FileSystemLocation: Sendable, Equatable, CustomStringConvertible {
    public var device: String
    public var path: String

    public var description: String { "\(device):\(path)" }

    /// `st_dev` as mountinfo writes it, `major:minor` (glibc's encoding of `dev_t`).
    public static func device(_ dev: UInt64) -> String {
        let major = ((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0xFFF)
        let minor = ((dev >> 12) & 0xFFFF_FF00) | (dev & 0xFF)
        return "\(major):\(minor)"
    }

    /// Whether `other` is this place or lies beneath it, by the paths' bytes
    /// (`PathText`): `hasPrefix(path + "/")` compares `Character`s, and a slash a
    /// combining mark follows is none, so a file below `/w/\u{301}d` was not inside
    /// `/w` and `require_root_owned` passed it (red team, session 45).
    public func contains(_ other: FileSystemLocation) -> Bool {
        device == other.device && PathText.isBeneath(other.path, path)
    }

    /// The location of an existing path (resolved with realpath), nil if it cannot be
    /// resolved or no mount holds it.
    public static func of(_ path: String) -> FileSystemLocation? { of(path, in: mounts()) }

    /// The mount table, read once for several lookups (`of(_:in:)`).
    public struct Table: Sendable {
        let mounts: [Mount]

        /// Whether the mounts that make up the trees at `paths` are the same in this
        /// table (read now) as in `built` (``trees(at:)`` of the table the sandbox was
        /// built from, with ``withUniqueIDs()``): every
        /// mount whose mount point is one of them, above one (path resolution goes
        /// through it) or beneath one (a bind clones it, or it hides what is under
        /// it), with its id, parent, root, device, options, type and unique id.
        /// mountinfo's ids are reused (the lowest free one): a mount replaced by
        /// another of the same source at the same place reads the same line (red
        /// team, session 36); the unique id (STATX_MNT_ID_UNIQUE, Linux 6.8) tells
        /// them apart. Where the kernel has none, the lines alone are compared.
        public func sameTrees(as built: Table, at paths: [String]) -> Bool {
            trees(at: paths).withUniqueIDs().mounts == built.trees(at: paths).mounts
        }

        /// Where the filesystems mounted writable at or beneath `path` (resolved) are:
        /// a bind of `path` takes them with it (a recursive clone, each mount's own
        /// flags kept and a read-only one locked so), so what lies in them lies in
        /// what the bind shows, whatever their devices.
        public func locations(mountedWritableBeneath path: String) -> [FileSystemLocation] {
            mounts.filter { PathText.isBeneath($0.mountPoint, path) && $0.options.split(separator: ",").contains("rw") }
                .map { FileSystemLocation(device: $0.device, path: $0.root) }
        }

        /// The mounts that make up the trees at `paths` (see ``sameTrees(as:at:)``).
        public func trees(at paths: [String]) -> Table {
            Table(mounts: mounts.filter { m in paths.contains { PathText.isBeneath($0, m.mountPoint) || PathText.isBeneath(m.mountPoint, $0) } })
        }

        /// Each mount with the unique id of the mount its mount point shows (the
        /// topmost there), as far as the kernel gives one.
        public func withUniqueIDs() -> Table {
            Table(mounts: mounts.map { m in
                var m = m
                var id: UInt64 = 0
                if sbx_mounts_unique_id_at(m.mountPoint, &id) == 0 { m.unique = id }
                return m
            })
        }
    }
    public static func table() -> Table { Table(mounts: mounts()) }
    public static func of(_ path: String, in table: Table) -> FileSystemLocation? { of(path, in: table.mounts) }

    static func of(_ path: String, in mounts: [Mount]) -> FileSystemLocation? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return of(resolved: String(cString: real), in: mounts)
    }

    /// The location of a path already resolved (absolute, no symlink, no `.` or `..`,
    /// as realpath gives it): the mount table's answer alone.
    public static func of(resolved canonical: String, in table: Table) -> FileSystemLocation? {
        of(resolved: canonical, in: table.mounts)
    }

    static func of(resolved canonical: String, in mounts: [Mount]) -> FileSystemLocation? {
        var best: Mount?
        for m in mounts where PathText.isBeneath(canonical, m.mountPoint) {
            // The longest mount point wins; of equal ones the later mount is on top.
            if best == nil || m.mountPoint.utf8.count >= best!.mountPoint.utf8.count { best = m }
        }
        guard let m = best else { return nil }
        // Cut by bytes: a prepend mark before the slash makes one `Character` of both.
        let rest = m.mountPoint == "/" ? canonical
            : PathText.same(canonical, m.mountPoint) ? "" : "/" + PathText.remainder(of: canonical, under: m.mountPoint)
        let inFS = m.root == "/" ? (rest.isEmpty ? "/" : rest) : m.root + rest
        return FileSystemLocation(device: m.device, path: inFS)
    }

    /// One line of mountinfo (proc(5)): `id parent major:minor root mount-point
    /// options [optional…] - fstype source super-options`.
    struct Mount: Sendable, Equatable {
        var device: String
        var root: String
        var mountPoint: String
        /// The mount's id, its parent's, and its per-mount options (`rw,nosuid,…`).
        var id: String = ""
        var parent: String = ""
        var options: String = ""
        /// The unique id of the mount at the mount point (``Table/withUniqueIDs()``).
        var unique: UInt64? = nil
        /// The mount point's bytes were valid UTF-8 (else `mountPoint` is lossy).
        var valid: Bool = true
        /// The filesystem type (`ext4`, `cgroup2`, …), after the ` - ` separator.
        var fstype: String = ""
        /// The superblock options as written (`rw,memory`: a v1 cgroup mount lists its
        /// controllers here).
        var superOptions: String = ""
    }

    /// `/proc/self/mountinfo`, `\\ooo` escapes decoded. The one mount-table reader of
    /// the project (the planner's table, the cgroup probe). Parsed as bytes: this runs
    /// on every plan, and splitting the text as Swift `String`s cost three times the read.
    static func mounts(mountinfo path: String = "/proc/self/mountinfo") -> [Mount] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { Glibc.close(fd) }
        // 64 KiB reads, as this reader always made: few calls for a large table.
        return parse(FD.read(fd, chunk: 65536).bytes)
    }

    /// Parses mountinfo text; lines without the five leading fields are skipped, and
    /// the fields after ` - ` are empty where a line lacks them.
    static func parse(_ text: [UInt8]) -> [Mount] {
        var out: [Mount] = []
        var fields: [ArraySlice<UInt8>] = []
        var start = 0
        for i in 0...text.count {
            let c: UInt8 = i < text.count ? text[i] : 0x0A
            guard c == 0x20 || c == 0x0A else { continue }
            if i > start { fields.append(text[start..<i]) }
            start = i + 1
            if c == 0x0A {
                if fields.count >= 5 {
                    let point = unescape(fields[4])
                    var m = Mount(device: unescape(fields[2]).text, root: unescape(fields[3]).text,
                                  mountPoint: point.text, valid: point.valid)
                    m.id = String(decoding: fields[0], as: UTF8.self)
                    m.parent = String(decoding: fields[1], as: UTF8.self)
                    if fields.count > 5 { m.options = String(decoding: fields[5], as: UTF8.self) }
                    // Optional fields come before the lone "-"; fstype, source and super
                    // options after it.
                    if fields.count > 6, let dash = fields[6...].firstIndex(where: { $0.count == 1 && $0.first == 0x2D }),
                       dash + 3 < fields.count {
                        m.fstype = String(decoding: fields[dash + 1], as: UTF8.self)
                        m.superOptions = String(decoding: fields[dash + 3], as: UTF8.self)
                    }
                    out.append(m)
                }
                fields.removeAll(keepingCapacity: true)
            }
        }
        return out
    }

    /// mountinfo writes space, tab, newline and backslash as `\ooo`. `valid`: the
    /// decoded bytes are UTF-8.
    public static func unescape(_ bytes: ArraySlice<UInt8>) -> (text: String, valid: Bool) {
        var out: [UInt8] = []
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if bytes[i] == 0x5C, bytes.endIndex - i >= 4,
               bytes[(i + 1)...(i + 3)].allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }) {
                out.append(bytes[(i + 1)...(i + 3)].reduce(0) { $0 &* 8 &+ ($1 - 0x30) })
                i += 4
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        if let s = String(validating: out, as: UTF8.self) { return (s, true) }
        return (String(decoding: out, as: UTF8.self), false)
    }
}
