extension Character {
    /// `0`–`9` only. For an ASCII character this is what `isASCII && isNumber` says,
    /// read from its byte: `isNumber` and `isLetter` look the character up in the
    /// runtime's Unicode tables, whose first use in a process costs page faults on
    /// every run's start-up (policy values, sizes, durations, digests are ASCII).
    public var isASCIIDigit: Bool { asciiValue.map { (0x30...0x39).contains($0) } ?? false }

    /// `A`–`Z` and `a`–`z` only: for an ASCII character, `isLetter`. Where a check
    /// took `isLetter` or `isNumber` without `isASCII` (the BPF cache's file name, the
    /// kernel release's numbers), these are stricter: any other character is neither.
    public var isASCIILetter: Bool { asciiValue.map { (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) } ?? false }
}

public enum PathText {
    /// Whether the absolute, normal `path` is `root` or lies beneath it, by its bytes
    /// (no lookup): the one lexical "beneath" of the planner, the mount table and the
    /// executor. Bytes, not `String` comparison: Swift compares strings by Unicode
    /// canonical equivalence, under which two names the kernel tells apart (é as one
    /// scalar, or e and a combining accent) are one (red team, session 37).
    public static func isBeneath(_ path: String, _ root: String) -> Bool {
        // Over the strings' contiguous UTF-8 (no generic sequence algorithm: a cold
        // run's pages).
        var path = path, root = root
        return root.withUTF8 { r in
            path.withUTF8 { p in
                if r.count == 1 && r[0] == 0x2F { return true }
                guard p.count >= r.count, prefixEqual(p, r, r.count) else { return false }
                return p.count == r.count || p[r.count] == 0x2F
            }
        }
    }

    /// Whether two host paths are the same bytes (not merely canonically equivalent
    /// text, which `==` on `String` says).
    public static func same(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in b.withUTF8 { y in x.count == y.count && prefixEqual(x, y, x.count) } }
    }

    /// What follows `root` in `path` (which ``isBeneath(_:_:)`` puts beneath it), cut
    /// by bytes: "" for the root itself, else the part after the separating slash.
    /// Not by `Character`s: a slash followed by a combining mark is one character,
    /// so a cut by their count took the mark with it (red team, session 37).
    public static func remainder(of path: String, under root: String) -> String {
        let n = root.utf8.count
        var path = path
        return path.withUTF8 { p in
            let start = n == 1 && p.first == 0x2F ? 1 : n + 1
            return start >= p.count ? "" : String(decoding: UnsafeBufferPointer(rebasing: p[start...]), as: UTF8.self)
        }
    }

    /// Whether `path` holds U+FFFD, what a name that is not UTF-8 decodes to (lossy
    /// `String(cString:)` of getcwd, readlink, realpath): a path the kernel does not
    /// know by that text. Searched as its bytes (EF BF BD).
    public static func hasReplacementCharacter(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { b in
            guard b.count >= 3 else { return false }
            for i in 0...(b.count - 3) where b[i] == 0xEF && b[i + 1] == 0xBF && b[i + 2] == 0xBD { return true }
            return false
        }
    }

    /// Whether `path` is absolute: its first byte a slash. Not `hasPrefix("/")`, which
    /// compares `Character`s: a slash followed by a combining mark is one character
    /// and no "/", so `/\u{301}x` read as relative (session 44's read-back).
    public static func isAbsolute(_ path: String) -> Bool { path.utf8.first == 0x2F }

    /// The directory holding `path` (absolute, no trailing slash), cut at its last
    /// slash byte; `/` for `/` and a name under it. Not `lastIndex(of: "/")`, which
    /// passes over a slash followed by a combining mark and so went up two levels
    /// (session 44's read-back: a repository above such a directory was not found).
    public static func parent(_ path: String) -> String {
        var path = path
        return path.withUTF8 { b in
            var i = b.count - 1
            while i > 0 && b[i] != 0x2F { i -= 1 }
            return i <= 0 ? "/" : String(decoding: UnsafeBufferPointer(rebasing: b[..<i]), as: UTF8.self)
        }
    }

    /// What follows the last slash byte of `path` (all of it when it has none).
    public static func lastComponent(_ path: String) -> String {
        var path = path
        return path.withUTF8 { b in
            var i = b.count
            while i > 0 && b[i - 1] != 0x2F { i -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: b[i...]), as: UTF8.self)
        }
    }

    /// Whether `path`'s bytes end with `suffix`'s (not `hasSuffix`, which compares
    /// characters: a combining mark after the suffix's first byte hides it).
    public static func endsWith(_ path: String, _ suffix: String) -> Bool {
        let p = Array(path.utf8), s = Array(suffix.utf8)
        return p.count >= s.count && p[(p.count - s.count)...].elementsEqual(s)
    }

    /// The components of a relative path, split at its slash bytes (empty ones left out).
    public static func components(_ path: String) -> [String] {
        Array(path.utf8).split(separator: 0x2F).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func prefixEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i < n { if a[i] != b[i] { return false }; i += 1 }
        return true
    }

    /// A host path as a set member or dictionary key: equal, hashed and ordered by
    /// its bytes (``isBeneath(_:_:)`` says why).
    public struct Key: Hashable, Comparable, Sendable {
        public let bytes: [UInt8]
        public init(_ path: String) { bytes = Array(path.utf8) }
        public init(bytes: [UInt8]) { self.bytes = bytes }
        public static func < (a: Key, b: Key) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
    }

    /// Whether `path` is ASCII and already what lexical normalisation gives: absolute,
    /// no empty, `.` or `..` component, no trailing slash (`/` itself is normal).
    /// Checked on its bytes, so the normalisers return such a path as it is instead of
    /// splitting and joining it (their generic `split`/`joined` cost a cold run page
    /// faults). Not ASCII: false, since the normalisers split characters, and a
    /// combining mark after a `/` makes a character that is not a slash.
    public static func isNormalAbsolute(_ path: String) -> Bool {
        var path = path
        return path.withUTF8 { b in
            guard let first = b.first, first == 0x2F else { return false }
            if b.count == 1 { return true }
            if b[b.count - 1] == 0x2F { return false }
            var start = 1   // the current component's first byte
            for i in 1...b.count {
                if i < b.count && b[i] >= 0x80 { return false }
                guard i == b.count || b[i] == 0x2F else { continue }
                let n = i - start
                if n == 0 { return false }
                if n == 1 && b[start] == 0x2E { return false }
                if n == 2 && b[start] == 0x2E && b[start + 1] == 0x2E { return false }
                start = i + 1
            }
            return true
        }
    }
}

extension String {
    /// What FoundationEssentials' `String(bytes:encoding: .utf8)` gives — a leading
    /// byte-order mark (EF BB BF) dropped, nil when the bytes are not UTF-8 — without
    /// its generic decoder, whose first use in a process instantiates the metadata of
    /// every encoding it handles (the UTF-16 and UTF-32 adaptors) on a cold run's path
    /// (the policy text). `UTF8TextTests` holds the two side by side.
    /// Not `String(validating:as:)` either: its generic validator costs a cold `plan`
    /// 0.05 ms of metadata lookups (perf, session 40). `String(decoding:as: UTF8.self)`
    /// takes the contiguous UTF-8 fast path and repairs what is not UTF-8, so the text
    /// is valid exactly when it gives back the same bytes.
    public init?(utf8Text bytes: [UInt8]) {
        let body = bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? bytes[3...] : bytes[...]
        let text = String(decoding: body, as: UTF8.self)
        guard text.utf8.elementsEqual(body) else { return nil }
        self = text
    }
}

extension Array where Element == String {
    /// `joined(separator:)` written out. The stdlib's is generic at run time here, and
    /// the first generic call of a cold run makes the Swift runtime scan every protocol
    /// conformance record in the binary, page by page (perf, session 40: 0.5 ms of a
    /// cold `exec`). Use it on the cold path; elsewhere either will do.
    public func joinedText(separator: String = "") -> String {
        var out = ""
        for i in indices {
            if i > startIndex { out.append(separator) }
            out.append(self[i])
        }
        return out
    }
}

