/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings
/// escaped minimally (`"` `\` and control characters), integers in decimal. This is
/// the byte form a plan digest is computed over.
///
/// Why not Foundation's JSONEncoder: it is on the start-up path of every `exec`, and
/// its dynamic casts (Date, Data, URL special cases) made it the largest single cost
/// there. This encoder knows only what plans contain.
public enum CanonicalJSON {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = Sink()
        try value.encode(to: NodeEncoder(sink: sink, codingPath: []))
        var out: [UInt8] = []
        out.reserveCapacity(8192)
        write(sink.node ?? .scalar("null"), into: &out)
        return out
    }

    // MARK: Tree

    final class ObjectStorage { var items: [String: Node] = [:] }
    final class ArrayStorage { var items: [Node] = [] }
    enum Node {
        case object(ObjectStorage)
        case array(ArrayStorage)
        /// Already JSON text.
        case scalar(String)
    }
    final class Sink { var node: Node? }

    static func write(_ node: Node, into out: inout [UInt8]) {
        switch node {
        case .scalar(let s): out.append(contentsOf: s.utf8)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, item) in a.items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            let keys = o.items.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (i, key) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: quote(key).utf8)
                out.append(UInt8(ascii: ":"))
                write(o.items[key]!, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal for `s`.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
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
        case let s as String: return .scalar(quote(s))
        case let b as Bool: return .scalar(b ? "true" : "false")
        case let n as Int: return .scalar(String(n))
        case let n as Int32: return .scalar(String(n))
        case let n as UInt64: return .scalar(String(n))
        case let n as UInt32: return .scalar(String(n))
        case let n as UInt16: return .scalar(String(n))
        default:
            let sink = Sink()
            try value.encode(to: NodeEncoder(sink: sink, codingPath: path))
            return sink.node ?? .scalar("null")
        }
    }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: ObjectStorage
        var codingPath: [any CodingKey]

        mutating func encodeNil(forKey key: Key) throws { storage.items[key.stringValue] = .scalar("null") }
        mutating func encode(_ value: Bool, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(value ? "true" : "false") }
        mutating func encode(_ value: String, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(quote(value)) }
        mutating func encode(_ value: Double, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(value.description) }
        mutating func encode(_ value: Float, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(value.description) }
        mutating func encode(_ value: Int, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { storage.items[key.stringValue] = .scalar(String(value)) }
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
            storage.items[name] = .scalar("null")
            return DeferredEncoder(sink: sink, codingPath: codingPath + [key]) { storage.items[name] = $0 }
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let storage: ArrayStorage
        var codingPath: [any CodingKey]
        var count: Int { storage.items.count }

        mutating func encodeNil() throws { storage.items.append(.scalar("null")) }
        mutating func encode(_ value: Bool) throws { storage.items.append(.scalar(value ? "true" : "false")) }
        mutating func encode(_ value: String) throws { storage.items.append(.scalar(quote(value))) }
        mutating func encode(_ value: Int) throws { storage.items.append(.scalar(String(value))) }
        mutating func encode(_ value: UInt64) throws { storage.items.append(.scalar(String(value))) }
        mutating func encode(_ value: UInt16) throws { storage.items.append(.scalar(String(value))) }
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
            storage.items.append(.scalar("null"))
            return DeferredEncoder(sink: Sink(), codingPath: codingPath) { storage.items[index] = $0 }
        }
    }

    struct Single: SingleValueEncodingContainer {
        let sink: Sink
        var codingPath: [any CodingKey]
        mutating func encodeNil() throws { sink.node = .scalar("null") }
        mutating func encode(_ value: Bool) throws { sink.node = .scalar(value ? "true" : "false") }
        mutating func encode(_ value: String) throws { sink.node = .scalar(quote(value)) }
        mutating func encode(_ value: Double) throws { sink.node = .scalar(value.description) }
        mutating func encode(_ value: Float) throws { sink.node = .scalar(value.description) }
        mutating func encode(_ value: Int) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: Int8) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: Int16) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: Int32) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: Int64) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: UInt) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: UInt8) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: UInt16) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: UInt32) throws { sink.node = .scalar(String(value)) }
        mutating func encode(_ value: UInt64) throws { sink.node = .scalar(String(value)) }
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
        deinit { commit(inner.sink.node ?? .scalar("null")) }
        func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> { inner.container(keyedBy: type) }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { inner.unkeyedContainer() }
        func singleValueContainer() -> any SingleValueEncodingContainer { inner.singleValueContainer() }
    }
}
