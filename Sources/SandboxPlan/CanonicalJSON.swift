/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings
/// escaped minimally (`"` `\` and control characters), integers in decimal. This is
/// the byte form a plan digest is computed over.
///
/// Why not Foundation's JSONEncoder: it is on the start-up path of every `exec`, and
/// its dynamic casts (Date, Data, URL special cases) made it the largest single cost
/// there. This encoder knows only what plans and results contain. For the same reason
/// strings are kept unescaped in the tree and escaped byte by byte straight into the
/// output. The plan itself, encoded on every run, is written without `Codable` at all
/// (`PlanJSON.swift`); this encoder is what that writer is checked against.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        bytes(of: try tree(value))
    }

    /// The tree `encode` writes.
    static func tree<T: Encodable>(_ value: T) throws -> Node {
        let sink = Sink()
        try value.encode(to: NodeEncoder(sink: sink, codingPath: []))
        return sink.node ?? .literal("null")
    }

    static func bytes(of node: Node) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16384)
        write(node, into: &out)
        return out
    }

    // MARK: Tree

    final class ObjectStorage { var items: [String: Node] = [:] }
    final class ArrayStorage { var items: [Node] = [] }
    enum Node {
        case object(ObjectStorage)
        case array(ArrayStorage)
        /// A string, escaped when written.
        case string(String)
        /// Already JSON text (numbers, `true`, `false`, `null`).
        case literal(String)
    }
    final class Sink { var node: Node? }

    static func write(_ node: Node, into out: inout [UInt8]) {
        switch node {
        case .string(let s): appendQuoted(s, into: &out)
        case .literal(let s): out.append(contentsOf: s.utf8)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            var first = true
            for item in a.items {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            // Sorted by UTF-8 bytes: compare contiguous byte arrays, made once per key.
            let entries = o.items.map { (key: Array($0.key.utf8), node: $0.value) }
                .sorted { $0.key.lexicographicallyPrecedes($1.key) }
            var first = true
            for entry in entries {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                entry.key.withUnsafeBufferPointer { appendQuoted(bytes: $0, into: &out) }
                out.append(UInt8(ascii: ":"))
                write(entry.node, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal for `s`.
    public static func quote(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func appendQuoted(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendQuoted(bytes: $0, into: &out) }
    }

    /// Escapes `"`, `\` and the control characters below 0x20 (`\n`, `\r`, `\t` by
    /// name, the rest as `\u00xx` in lowercase hex); every other byte, including each
    /// byte of a multi-byte UTF-8 sequence (all ≥ 0x80), is copied as it is.
    static func appendQuoted(bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        out.append(UInt8(ascii: "\""))
        for b in bytes {
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(b)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(b)
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                hex.withUTF8Buffer { d in out.append(d[Int(b >> 4)]); out.append(d[Int(b & 15)]) }
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Canonical JSON (no whitespace outside strings) laid out as `JSONEncoder`'s
    /// `.prettyPrinted` does: each member and element on a line of its own, indented
    /// two spaces a level, `"key" : value`, an empty object or array as `{` and `}`
    /// with an empty line between. Strings and scalars are copied as they are, but for
    /// backspace and form feed, which JSONEncoder writes as `\b` and `\f`.
    static func indented(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count * 2)
        var depth = 0
        func newline() {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * depth))
        }
        var i = 0
        while i < json.count {
            let b = json[i]
            switch b {
            case UInt8(ascii: "\""):
                // The string as it is, through its closing quote.
                out.append(b)
                i += 1
                while i < json.count {
                    let c = json[i]
                    i += 1
                    if c == UInt8(ascii: "\\"), i < json.count {
                        // JSONEncoder names backspace and form feed (\b, \f), which the
                        // canonical form writes as \u0008 and \u000c.
                        if json[i] == UInt8(ascii: "u"), i + 5 <= json.count, json[(i + 1)..<(i + 4)].elementsEqual("000".utf8),
                           json[i + 4] == UInt8(ascii: "8") || json[i + 4] == UInt8(ascii: "c") {
                            out.append(c)
                            out.append(json[i + 4] == UInt8(ascii: "8") ? UInt8(ascii: "b") : UInt8(ascii: "f"))
                            i += 5
                            continue
                        }
                        out.append(c)
                        out.append(json[i])
                        i += 1
                        continue
                    }
                    out.append(c)
                    if c == UInt8(ascii: "\"") { break }
                }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                out.append(b)
                let close = b == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if i + 1 < json.count, json[i + 1] == close {
                    out.append(UInt8(ascii: "\n"))
                    newline()
                    out.append(close)
                    i += 2
                    continue
                }
                depth += 1
                newline()
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                newline()
                out.append(b)
            case UInt8(ascii: ","):
                out.append(b)
                newline()
            case UInt8(ascii: ":"):
                out.append(contentsOf: [UInt8(ascii: " "), b, UInt8(ascii: " ")])
            default:
                out.append(b)
            }
            i += 1
        }
        return out
    }

    // MARK: Encoder

    struct NodeEncoder: Encoder {
        let sink: Sink
        var codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
            let storage: ObjectStorage
            if case .object(let existing)? = sink.node { storage = existing } else {
                storage = ObjectStorage(); sink.node = .object(storage)
            }
            return KeyedEncodingContainer(Keyed<Key>(storage: storage, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            let storage: ArrayStorage
            if case .array(let existing)? = sink.node { storage = existing } else {
                storage = ArrayStorage(); sink.node = .array(storage)
            }
            return Unkeyed(storage: storage, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer { Single(sink: sink, codingPath: codingPath) }
    }

    static func node<T: Encodable>(_ value: T, path: [any CodingKey]) throws -> Node {
        switch value {
        case let s as String: return .string(s)
        case let b as Bool: return .literal(b ? "true" : "false")
        case let n as Int: return .literal(String(n))
        case let n as Int32: return .literal(String(n))
        case let n as UInt64: return .literal(String(n))
        case let n as UInt32: return .literal(String(n))
        case let n as UInt16: return .literal(String(n))
        default:
            let sink = Sink()
            try value.encode(to: NodeEncoder(sink: sink, codingPath: path))
            return sink.node ?? .literal("null")
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: ObjectStorage
        var codingPath: [any CodingKey]

        mutating func encodeNil(forKey key: Key) throws { storage.items[key.stringValue] = .literal("null") }
        mutating func encode(_ value: Bool, forKey key: Key) throws { storage.items[key.stringValue] = .literal(value ? "true" : "false") }
        mutating func encode(_ value: String, forKey key: Key) throws { storage.items[key.stringValue] = .string(value) }
        mutating func encode(_ value: Double, forKey key: Key) throws { storage.items[key.stringValue] = .literal(value.description) }
        mutating func encode(_ value: Float, forKey key: Key) throws { storage.items[key.stringValue] = .literal(value.description) }
        mutating func encode(_ value: Int, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { storage.items[key.stringValue] = .literal(String(value)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            storage.items[key.stringValue] = try node(value, path: codingPath + [key])
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let nested = ObjectStorage()
            storage.items[key.stringValue] = .object(nested)
            return KeyedEncodingContainer(Keyed<NestedKey>(storage: nested, codingPath: codingPath + [key]))
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let nested = ArrayStorage()
            storage.items[key.stringValue] = .array(nested)
            return Unkeyed(storage: nested, codingPath: codingPath + [key])
        }
        mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }
        mutating func superEncoder(forKey key: Key) -> any Encoder {
            let sink = Sink()
            let storage = self.storage
            let name = key.stringValue
            storage.items[name] = .literal("null")
            return DeferredEncoder(sink: sink, codingPath: codingPath + [key]) { storage.items[name] = $0 }
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let storage: ArrayStorage
        var codingPath: [any CodingKey]
        var count: Int { storage.items.count }

        mutating func encodeNil() throws { storage.items.append(.literal("null")) }
        mutating func encode(_ value: Bool) throws { storage.items.append(.literal(value ? "true" : "false")) }
        mutating func encode(_ value: String) throws { storage.items.append(.string(value)) }
        mutating func encode(_ value: Int) throws { storage.items.append(.literal(String(value))) }
        mutating func encode(_ value: UInt64) throws { storage.items.append(.literal(String(value))) }
        mutating func encode(_ value: UInt16) throws { storage.items.append(.literal(String(value))) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            storage.items.append(try node(value, path: codingPath))
        }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let nested = ObjectStorage()
            storage.items.append(.object(nested))
            return KeyedEncodingContainer(Keyed<NestedKey>(storage: nested, codingPath: codingPath))
        }
        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let nested = ArrayStorage()
            storage.items.append(.array(nested))
            return Unkeyed(storage: nested, codingPath: codingPath)
        }
        mutating func superEncoder() -> any Encoder {
            let storage = self.storage
            let index = storage.items.count
            storage.items.append(.literal("null"))
            return DeferredEncoder(sink: Sink(), codingPath: codingPath) { storage.items[index] = $0 }
        }
    }

    struct Single: SingleValueEncodingContainer {
        let sink: Sink
        var codingPath: [any CodingKey]
        mutating func encodeNil() throws { sink.node = .literal("null") }
        mutating func encode(_ value: Bool) throws { sink.node = .literal(value ? "true" : "false") }
        mutating func encode(_ value: String) throws { sink.node = .string(value) }
        mutating func encode(_ value: Double) throws { sink.node = .literal(value.description) }
        mutating func encode(_ value: Float) throws { sink.node = .literal(value.description) }
        mutating func encode(_ value: Int) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: Int8) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: Int16) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: Int32) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: Int64) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: UInt) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: UInt8) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: UInt16) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: UInt32) throws { sink.node = .literal(String(value)) }
        mutating func encode(_ value: UInt64) throws { sink.node = .literal(String(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws { sink.node = try node(value, path: codingPath) }
    }

    /// For superEncoder: writes its result back into the parent when encoding ends.
    final class DeferredEncoder: Encoder {
        let inner: NodeEncoder
        let commit: (Node) -> Void
        var codingPath: [any CodingKey] { inner.codingPath }
        var userInfo: [CodingUserInfoKey: Any] { [:] }
        init(sink: Sink, codingPath: [any CodingKey], commit: @escaping (Node) -> Void) {
            inner = NodeEncoder(sink: sink, codingPath: codingPath); self.commit = commit
        }
        deinit { commit(inner.sink.node ?? .literal("null")) }
        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
        func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
    }
}
