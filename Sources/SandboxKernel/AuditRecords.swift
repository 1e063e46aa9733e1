#if canImport(Glibc)
import Glibc
#endif
/// The kernel audit records the denial account reads (Docs/denials.md), parsed, and
/// the routing of each to the run it belongs to. Pure: no sockets here (the reader is
/// `AuditReader`), so recorded lines can be tested.
///
/// A record arrives as a netlink message of type `t` whose text is
/// `audit(SECONDS.MS:SERIAL): key=value key=value …`. Untrusted strings (paths,
/// comm, exe) are either `"quoted"` or, when they hold a space, a quote or a byte
/// outside printable ASCII, hex without quotes.

/// `AUDIT_SECCOMP` (1326): a seccomp filter returned an action that is logged (any
/// action but ALLOW; ERRNO only from a filter with SECCOMP_FILTER_FLAG_LOG).
public struct SeccompAuditRecord: Sendable, Equatable {
    /// The record's time: ms since the epoch (CLOCK_REALTIME of the kernel).
    public var timeMs: UInt64
    /// The caller's real uid on the host: a run's leased uid.
    public var uid: UInt32
    /// The caller's pid in the initial pid namespace.
    public var pid: Int32
    /// `AUDIT_ARCH_*` of the call (the libseccomp architecture token has the same value).
    public var arch: UInt32
    public var syscall: Int32
    /// The filter's return value: action (upper 16 bits: 0x50000 ERRNO, 0x7fc00000
    /// USER_NOTIF, 0x80000000 KILL_PROCESS, 0 KILL_THREAD) and data (the errno).
    public var code: UInt32

    public static let errnoAction: UInt32 = 0x0005_0000
    public static let notifyAction: UInt32 = 0x7fc0_0000
    public var action: UInt32 { code & 0xffff_0000 }
    public var errno: Int32 { Int32(code & 0xffff) }
}

/// `AUDIT_LANDLOCK_ACCESS` (1423): one denied access of a Landlock domain.
public struct LandlockAccessRecord: Sendable, Equatable {
    public var timeMs: UInt64
    /// The youngest domain that denied it (hex id).
    public var domain: String
    /// What was missing: `fs.read_file`, `fs.remove_file`, `scope.signal`,
    /// `scope.abstract_unix_socket`, `net.connect_tcp`…
    public var blockers: [String]
    /// The object: a path (`path=`, hex-decoded; an abstract socket's leading NUL as
    /// `@`), a signalled process (`opid=`/`ocomm=`), a TCP port (`dest=`, `src=`).
    public var path: String?
    public var opid: Int32?
    public var ocomm: String?
    public var daddr: String?
    public var port: UInt16?
}

/// `AUDIT_LANDLOCK_DOMAIN` (1424): a domain seen for the first time (`allocated`,
/// with the pid and uid that called landlock_restrict_self), or freed
/// (`deallocated`, with its exact number of denials).
public struct LandlockDomainRecord: Sendable, Equatable {
    public var timeMs: UInt64
    public var domain: String
    public var status: String
    public var pid: Int32?
    public var uid: UInt32?
    public var denials: UInt64?
}

public enum AuditEvent: Sendable, Equatable {
    case seccomp(SeccompAuditRecord)
    case landlockAccess(LandlockAccessRecord)
    case landlockDomain(LandlockDomainRecord)
}

public enum AuditRecordParser {
    public static let seccompType: UInt16 = 1326
    public static let landlockAccessType: UInt16 = 1423
    public static let landlockDomainType: UInt16 = 1424

    /// The event of one record, or nil for another type or a record without the
    /// fields that type must have.
    public static func parse(type: UInt16, text: Substring) -> AuditEvent? {
        guard let time = timeMs(text) else { return nil }
        switch type {
        case seccompType:
            var copy = String(text)
            return copy.withUTF8 { parseSeccomp(UnsafeRawBufferPointer($0)) }.map { .seccomp($0) }
        case landlockAccessType:
            let f = fields(text)
            guard let domain = f["domain"], let blockers = f["blockers"] else { return nil }
            var r = LandlockAccessRecord(timeMs: time, domain: domain,
                                         blockers: blockers.split(separator: ",").map(String.init))
            r.path = f["path"].map(untrusted)
            r.opid = f["opid"].flatMap { Int32($0) }
            r.ocomm = f["ocomm"].map(untrusted)
            r.daddr = f["daddr"]
            r.port = (f["dest"] ?? f["src"]).flatMap { UInt16($0) }
            return .landlockAccess(r)
        case landlockDomainType:
            let f = fields(text)
            guard let domain = f["domain"], let status = f["status"] else { return nil }
            return .landlockDomain(LandlockDomainRecord(
                timeMs: time, domain: domain, status: status, pid: f["pid"].flatMap { Int32($0) },
                uid: f["uid"].flatMap { UInt32($0) }, denials: f["denials"].flatMap { UInt64($0) }))
        default:
            return nil
        }
    }

    /// An AUDIT_SECCOMP record straight from the bytes the socket delivered: one
    /// pass, no strings (the reader sees every such record on the host, thousands a
    /// second in a flood). The fields it needs are plain numbers; `comm`/`exe` (the
    /// only strings, possibly hex or with `=` inside quotes) are skipped.
    public static func parseSeccomp(_ bytes: UnsafeRawBufferPointer) -> SeccompAuditRecord? {
        let n = bytes.count
        // audit(SECONDS.MS:SERIAL):
        guard n > 6, bytes[0] == 0x61, bytes[5] == 0x28 else { return nil }
        var i = 6
        func number(radix: UInt64) -> UInt64? {
            var v: UInt64 = 0, digits = 0
            while i < n {
                let c = bytes[i]
                let d: UInt64
                if c >= 0x30 && c <= 0x39 { d = UInt64(c - 0x30) }
                else if radix == 16 && (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 { d = UInt64((c | 0x20) - 0x61 + 10) }
                else { break }
                v = v &* radix &+ d; digits += 1; i += 1
            }
            return digits > 0 ? v : nil
        }
        guard let seconds = number(radix: 10), i < n, bytes[i] == 0x2e else { return nil }
        i += 1
        guard let ms = number(radix: 10) else { return nil }
        var uid: UInt64?, pid: UInt64?, arch: UInt64?, nr: UInt64?, code: UInt64?
        // Each field: a space, the key, '='. Keys are compared by length and bytes.
        while i < n {
            guard bytes[i] == 0x20 else { i += 1; continue }
            i += 1
            let keyStart = i
            while i < n && bytes[i] != 0x3d && bytes[i] != 0x20 { i += 1 }
            guard i < n, bytes[i] == 0x3d else { continue }
            let key = UnsafeRawBufferPointer(rebasing: bytes[keyStart..<i])
            i += 1
            func isKey(_ s: StaticString) -> Bool {
                s.utf8CodeUnitCount == key.count && memcmp(s.utf8Start, key.baseAddress!, key.count) == 0
            }
            if isKey("uid") { uid = number(radix: 10) }
            else if isKey("pid") { pid = number(radix: 10) }
            else if isKey("arch") { arch = number(radix: 16) }
            else if isKey("syscall") { nr = number(radix: 10) }
            else if isKey("code") {
                if i + 1 < n, bytes[i] == 0x30, bytes[i + 1] == 0x78 { i += 2 }
                code = number(radix: 16)
            } else if i < n, bytes[i] == 0x22 {
                // A quoted string may hold spaces and '=': skip to its closing quote.
                i += 1
                while i < n && bytes[i] != 0x22 { i += 1 }
            }
        }
        guard let uid, let pid, let arch, let nr, let code, uid <= UInt32.max, pid <= Int32.max,
              arch <= UInt32.max, nr <= Int32.max, code <= UInt32.max else { return nil }
        return SeccompAuditRecord(timeMs: seconds * 1000 + ms, uid: UInt32(uid), pid: Int32(pid), arch: UInt32(arch),
                                  syscall: Int32(nr), code: UInt32(code))
    }

    /// `audit(1796144584.384:260245): …` → 1796144584384.
    static func timeMs(_ text: Substring) -> UInt64? {
        guard text.hasPrefix("audit("), let dot = text.firstIndex(of: "."), let colon = text.firstIndex(of: ":"),
              dot < colon else { return nil }
        let open = text.index(text.startIndex, offsetBy: 6)
        guard let seconds = UInt64(text[open..<dot]), let ms = UInt64(text[text.index(after: dot)..<colon]) else { return nil }
        return seconds * 1000 + ms
    }

    /// The `key=value` pairs after the `audit(…):` stamp, values as written (a quoted
    /// value keeps its quotes: ``untrusted(_:)`` tells quoted from hex). A value has no
    /// space: the kernel hex-encodes any string that has one.
    static func fields(_ text: Substring) -> [String: String] {
        var out: [String: String] = [:]
        let body = text.firstIndex(of: ")").map { text[text.index(after: $0)...] } ?? text
        for word in body.split(separator: " ") {
            guard let eq = word.firstIndex(of: "=") else { continue }
            out[String(word[..<eq])] = String(word[word.index(after: eq)...])
        }
        return out
    }

    /// An untrusted string: `"quoted"` as it is; unquoted hex decoded (an abstract
    /// unix socket name's leading NUL shown as `@`, other control bytes as `\xNN`).
    static func untrusted(_ value: String) -> String {
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { return String(value.dropFirst().dropLast()) }
        let digits = Array(value.utf8)
        guard digits.count % 2 == 0, !digits.isEmpty, digits.allSatisfy({ isHex($0) }) else { return value }
        var bytes: [UInt8] = []
        var i = 0
        while i < digits.count {
            bytes.append(hexValue(digits[i]) << 4 | hexValue(digits[i + 1]))
            i += 2
        }
        var prefix = ""
        if bytes.first == 0 { prefix = "@"; bytes.removeFirst() }
        var text = ""
        var run: [UInt8] = []
        for b in bytes {
            if b < 0x20 || b == 0x7f {
                text += String(decoding: run, as: UTF8.self); run = []
                text += "\\x" + (b < 0x10 ? "0" : "") + String(b, radix: 16)
            } else { run.append(b) }
        }
        return prefix + text + String(decoding: run, as: UTF8.self)
    }

    static func hex(_ s: String) -> UInt32? {
        UInt32(s.hasPrefix("0x") ? String(s.dropFirst(2)) : s, radix: 16)
    }
    private static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }
    private static func hexValue(_ c: UInt8) -> UInt8 {
        c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10
    }
}

/// Which run a record belongs to. Seccomp records name the caller's uid: a run's own
/// leased uid (`process.host_uid = "own"`) is held by no other process on the host.
/// Landlock access records name only a domain; the domain's `allocated` record,
/// which the kernel writes right AFTER the first access record of that domain,
/// names the uid that created it, so access records of a domain not seen yet wait
/// (bounded) for it.
public struct AuditDemux: Sendable {
    /// The uids of the runs being accounted.
    public private(set) var uids: Set<UInt32> = []
    /// Domain → the uid that created it, for domains of subscribed uids.
    private var domains: [String: UInt32] = [:]
    /// Access records of domains with no `allocated` record yet, oldest first.
    private var pending: [LandlockAccessRecord] = []
    /// At most this many access records wait for their domain (a domain of another
    /// process on the host never gets one of ours; the oldest make room).
    public static let maxPending = 1024
    /// This process's pid and the marker's syscall: a marker record (``AuditReader``).
    public let markerPid: Int32
    public let markerSyscall: Int32
    public let nativeArch: UInt32

    public enum Routed: Sendable, Equatable {
        case seccomp(uid: UInt32, SeccompAuditRecord)
        case landlock(uid: UInt32, LandlockAccessRecord)
        /// A deallocated domain of a run: the kernel's exact count of its denials.
        case landlockTotal(uid: UInt32, domain: String, denials: UInt64)
        case marker(token: UInt16)
    }

    public init(markerPid: Int32, markerSyscall: Int32, nativeArch: UInt32) {
        self.markerPid = markerPid; self.markerSyscall = markerSyscall; self.nativeArch = nativeArch
    }

    public mutating func subscribe(_ uid: UInt32) { uids.insert(uid) }

    public mutating func unsubscribe(_ uid: UInt32) {
        uids.remove(uid)
        domains = domains.filter { $0.value != uid }
    }

    /// Where `event` goes (nothing, one run, or several access records released by a
    /// domain's first appearance).
    public mutating func route(_ event: AuditEvent) -> [Routed] {
        switch event {
        case .seccomp(let r):
            if r.pid == markerPid, r.syscall == markerSyscall, r.arch == nativeArch,
               r.action == SeccompAuditRecord.errnoAction {
                return [.marker(token: UInt16(r.errno))]
            }
            return uids.contains(r.uid) ? [.seccomp(uid: r.uid, r)] : []
        case .landlockAccess(let r):
            if let uid = domains[r.domain] { return [.landlock(uid: uid, r)] }
            if pending.count >= Self.maxPending { pending.removeFirst(pending.count - Self.maxPending + 1) }
            pending.append(r)
            return []
        case .landlockDomain(let d):
            if d.status == "allocated" {
                let waiting = pending.filter { $0.domain == d.domain }
                pending.removeAll { $0.domain == d.domain }
                guard let uid = d.uid, uids.contains(uid) else { return [] }
                domains[d.domain] = uid
                return waiting.map { .landlock(uid: uid, $0) }
            }
            if d.status == "deallocated", let uid = domains.removeValue(forKey: d.domain), let n = d.denials {
                return [.landlockTotal(uid: uid, domain: d.domain, denials: n)]
            }
            return []
        }
    }
}
