/// A key path inside a policy file: `network.allow[0].ports[1]`,
/// `binary.pin."/usr/bin/python3"`.
struct TOMLPath: Hashable, CustomStringConvertible {
    enum Component: Hashable {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    static let root = TOMLPath()

    func key(_ k: String) -> TOMLPath { TOMLPath(components: components + [.key(k)]) }
    func index(_ i: Int) -> TOMLPath { TOMLPath(components: components + [.index(i)]) }

    var parent: TOMLPath? {
        components.isEmpty ? nil : TOMLPath(components: Array(components.dropLast()))
    }

    var description: String {
        var out = ""
        for c in components {
            switch c {
            case .key(let k):
                if !out.isEmpty { out += "." }
                out += TOMLPath.render(key: k)
            case .index(let i):
                out += "[\(i)]"
            }
        }
        return out
    }

    /// Bare keys as they are; anything else quoted, as TOML would need it.
    static func render(key: String) -> String {
        let bare = !key.isEmpty && key.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "_" || $0 == "-"
        }
        if bare { return key }
        var quoted = "\""
        for ch in key {
            switch ch {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            default: quoted += String(ch)
            }
        }
        return quoted + "\""
    }
}

/// Finds the line where a key is written, so diagnostics about values (which the TOML
/// parser does not locate) still carry a line number.
///
/// TOMLKit exposes source positions only for syntax errors, so this is a small,
/// conservative scanner of the text the parser has already accepted: it follows
/// `[table]` and `[[array]]` headers and `key = value` lines, skipping over
/// multi-line arrays, inline tables and strings. A key path it cannot place falls
/// back to its nearest written ancestor (e.g. an item of an inline array → the
/// array's line).
struct SourceIndex {
    private var lines: [String: Int] = [:]
    /// The line of each item of an array value, by the array's key path: one integer
    /// per item, not one key path string.
    private var itemLines: [String: [Int]] = [:]

    /// State of a value that continues over several lines.
    private struct ValueScan {
        var depth = 0
        /// The quote (`"` or `'`) of an open multi-line string.
        var multiline: UInt8? = nil
        /// The key whose value is an array: its items (at depth 1) are located too.
        var arrayPath: [TOMLPath.Component]? = nil {
            didSet { arrayKey = arrayPath.map { TOMLPath(components: $0).description } }
        }
        private(set) var arrayKey: String? = nil
        var item = 0
        var itemStarted = false
        /// The line of each item seen so far.
        var items: [Int] = []
    }

    init(source: String) {
        // Byte-wise over UTF-8 (every delimiter is ASCII): linear, and cheap even in a
        // debug build, since this also runs on files that are refused.
        let bytes = Array(source.utf8)
        bytes.withUnsafeBufferPointer { b in build(b) }
    }

    private mutating func build(_ b: UnsafeBufferPointer<UInt8>) {
        var header: [TOMLPath.Component] = []
        var arrayCounts: [String: Int] = [:]
        var scan = ValueScan()
        var lineNumber = 0
        var start = 0
        while start <= b.count {
            var end = start
            while end < b.count, b[end] != 0x0A { end += 1 }
            lineNumber += 1
            defer { start = end + 1 }
            var pos = start
            if let quote = scan.multiline {
                guard let close = SourceIndex.findTriple(quote, b, pos, end) else { continue }
                scan.multiline = nil
                pos = close + 3
                scanValue(b, pos, end, lineNumber, &scan)
                continue
            }
            if scan.depth > 0 {
                scanValue(b, pos, end, lineNumber, &scan)
                continue
            }
            while pos < end, b[pos] == 0x20 || b[pos] == 0x09 { pos += 1 }
            if pos == end || b[pos] == UInt8(ascii: "#") { continue }
            let trimmed = Substring(String(decoding: UnsafeBufferPointer(rebasing: b[pos..<end]), as: UTF8.self))
            if trimmed.hasPrefix("[[") {
                guard let (keys, _) = SourceIndex.parseKeys(trimmed.dropFirst(2)) else { continue }
                let tablePath = TOMLPath(components: keys.map { .key($0) })
                let name = tablePath.description
                let i = (arrayCounts[name] ?? -1) + 1
                arrayCounts[name] = i
                header = tablePath.components + [.index(i)]
                record(tablePath.description, lineNumber)
                record(TOMLPath(components: header).description, lineNumber)
            } else if trimmed.hasPrefix("[") {
                guard let (keys, _) = SourceIndex.parseKeys(trimmed.dropFirst()) else { continue }
                header = keys.map { .key($0) }
                record(TOMLPath(components: header).description, lineNumber)
            } else {
                guard let (keys, rest) = SourceIndex.parseKeys(trimmed), rest.first == "=" else { continue }
                var path = header
                for k in keys {
                    path.append(.key(k))
                    // Each prefix costs its length: a key deeper than any the loader
                    // accepts (one of 20 000 parts took 50 s here) is not indexed.
                    if path.count <= PolicyLimits.maxKeyDepth {
                        record(TOMLPath(components: path).description, lineNumber)
                    }
                }
                flushItems(&scan)
                scan = ValueScan()
                // The value starts after the `=`: its offset from the end of the line.
                var value = end - (rest.utf8.count - 1)
                while value < end, b[value] == 0x20 || b[value] == 0x09 { value += 1 }
                if value < end, b[value] == UInt8(ascii: "[") { scan.arrayPath = path }
                scanValue(b, value, end, lineNumber, &scan)
            }
        }
        flushItems(&scan)
    }

    /// The offset of the next `quote` × 3 in `b[from..<to]`.
    private static func findTriple(_ quote: UInt8, _ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int? {
        var i = from
        while i + 2 < to {
            if b[i] == quote, b[i + 1] == quote, b[i + 2] == quote { return i }
            i += 1
        }
        return nil
    }

    private mutating func record(_ key: String, _ line: Int) {
        if lines[key] == nil { lines[key] = line }
    }

    /// Files the item lines of the array value just scanned under its key path.
    private mutating func flushItems(_ scan: inout ValueScan) {
        if let key = scan.arrayKey, !scan.items.isEmpty, itemLines[key] == nil { itemLines[key] = scan.items }
        scan.items = []
    }

    /// The line of `path` or of its nearest ancestor that is written in the file.
    func line(for path: TOMLPath) -> Int? {
        var p: TOMLPath? = path
        while let current = p, !current.components.isEmpty {
            if let l = lines[current.description] { return l }
            if case .index(let i)? = current.components.last, let parent = current.parent,
               let items = itemLines[parent.description], i >= 0, i < items.count {
                return items[i]
            }
            p = current.parent
        }
        return nil
    }

    /// Parses a dotted key (`a."b.c".d`) and returns the keys and what follows it
    /// (starting at `=`, `]` or `]]`, whitespace skipped).
    private static func parseKeys(_ text: Substring) -> ([String], Substring)? {
        var rest = text
        var keys: [String] = []
        func skipSpace() { rest = rest.drop(while: { $0 == " " || $0 == "\t" }) }
        while true {
            skipSpace()
            guard let first = rest.first else { return nil }
            if first == "\"" || first == "'" {
                rest = rest.dropFirst()
                var key = ""
                var closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if c == first { closed = true; break }
                    if c == "\\" && first == "\"", let next = rest.first {
                        rest = rest.dropFirst()
                        switch next {
                        case "n": key.append("\n")
                        case "t": key.append("\t")
                        default: key.append(next)
                        }
                        continue
                    }
                    key.append(c)
                }
                if !closed { return nil }
                keys.append(key)
            } else {
                let bare = rest.prefix(while: { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" })
                if bare.isEmpty { return nil }
                keys.append(String(bare))
                rest = rest.dropFirst(bare.count)
            }
            skipSpace()
            if rest.first == "." { rest = rest.dropFirst(); continue }
            return (keys, rest)
        }
    }

    /// Follows brackets over a value fragment (`b[from..<to]`), ignoring strings and
    /// comments, and records the line where each item of a tracked array starts.
    private mutating func scanValue(_ b: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ lineNumber: Int,
                                    _ scan: inout ValueScan) {
        var i = from
        func itemBegins() {
            guard scan.depth == 1, scan.arrayPath != nil, !scan.itemStarted else { return }
            scan.itemStarted = true
            if scan.items.count == scan.item { scan.items.append(lineNumber) }
        }
        while i < to {
            let c = b[i]
            if c == UInt8(ascii: "#") { break }
            if c == 0x20 || c == 0x09 || c == 0x0D { i += 1; continue }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                itemBegins()
                if i + 2 < to, b[i + 1] == c, b[i + 2] == c {
                    if let close = SourceIndex.findTriple(c, b, i + 3, to) {
                        i = close + 3
                        continue
                    }
                    scan.multiline = c
                    return
                }
                i += 1
                while i < to {
                    let s = b[i]
                    i += 1
                    if s == UInt8(ascii: "\\") && c == UInt8(ascii: "\"") { i += 1; continue }
                    if s == c { break }
                }
                continue
            }
            if c == UInt8(ascii: ",") && scan.depth == 1 {
                scan.item += 1
                scan.itemStarted = false
            } else if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") {
                itemBegins()
                scan.depth += 1
            } else if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                scan.depth = max(0, scan.depth - 1)
            } else {
                itemBegins()
            }
            i += 1
        }
    }
}
