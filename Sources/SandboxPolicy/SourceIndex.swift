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

    /// State of a value that continues over several lines.
    private struct ValueScan {
        var depth = 0
        /// The closing delimiter of an open multi-line string.
        var multiline: String? = nil
        /// The key whose value is an array: its items (at depth 1) are located too.
        var arrayPath: [TOMLPath.Component]? = nil
        var item = 0
        var itemStarted = false
    }

    init(source: String) {
        var header: [TOMLPath.Component] = []
        var arrayCounts: [String: Int] = [:]
        var scan = ValueScan()
        for (number, rawLine) in source.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = number + 1
            var line = Substring(rawLine)
            if let closing = scan.multiline {
                guard let r = line.range(of: closing) else { continue }
                scan.multiline = nil
                line = line[r.upperBound...]
                scanValue(line, lineNumber, &scan)
                continue
            }
            if scan.depth > 0 {
                scanValue(line, lineNumber, &scan)
                continue
            }
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.isEmpty || trimmed.first == "#" { continue }
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
                    record(TOMLPath(components: path).description, lineNumber)
                }
                scan = ValueScan()
                let value = rest.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
                if value.first == "[" { scan.arrayPath = path }
                scanValue(value, lineNumber, &scan)
            }
        }
    }

    private mutating func record(_ key: String, _ line: Int) {
        if lines[key] == nil { lines[key] = line }
    }

    /// The line of `path` or of its nearest ancestor that is written in the file.
    func line(for path: TOMLPath) -> Int? {
        var p: TOMLPath? = path
        while let current = p, !current.components.isEmpty {
            if let l = lines[current.description] { return l }
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

    /// Follows brackets over a value fragment, ignoring strings and comments, and
    /// records the line where each item of a tracked array starts.
    private mutating func scanValue(_ text: Substring, _ lineNumber: Int, _ scan: inout ValueScan) {
        var rest = text
        func itemBegins() {
            guard scan.depth == 1, let path = scan.arrayPath, !scan.itemStarted else { return }
            scan.itemStarted = true
            record(TOMLPath(components: path + [.index(scan.item)]).description, lineNumber)
        }
        while let c = rest.first {
            if c == "#" { break }
            if c == " " || c == "\t" || c == "\r" { rest = rest.dropFirst(); continue }
            if c == "\"" || c == "'" {
                itemBegins()
                let triple = String(repeating: String(c), count: 3)
                if rest.hasPrefix(triple) {
                    rest = rest.dropFirst(3)
                    if let r = rest.range(of: triple) {
                        rest = rest[r.upperBound...]
                        continue
                    }
                    scan.multiline = triple
                    return
                }
                rest = rest.dropFirst()
                while let s = rest.first {
                    rest = rest.dropFirst()
                    if s == "\\" && c == "\"" { rest = rest.dropFirst(); continue }
                    if s == c { break }
                }
                continue
            }
            if c == "," && scan.depth == 1 {
                scan.item += 1
                scan.itemStarted = false
            } else if c == "[" || c == "{" {
                itemBegins()
                scan.depth += 1
            } else if c == "]" || c == "}" {
                scan.depth = max(0, scan.depth - 1)
            } else {
                itemBegins()
            }
            rest = rest.dropFirst()
        }
    }
}
