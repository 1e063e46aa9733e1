import FoundationEssentials
import SandboxVocabulary

// Loading of seccomp profiles in the OCI runtime-spec `linux.seccomp` JSON format and
// the Docker / containerd / Podman dialects of it (`archMap`, `names`/`name`,
// `includes`/`excludes`, Podman's `errno`/`defaultErrno` names).
//
// Every problem is collected with the key path and line where it was found, and
// thrown once as a `PolicyError`. Unknown keys are errors, as everywhere in a policy.

extension SeccompProfile {
    /// Reads and validates the profile at `path`. Only a regular file of at most
    /// `PolicyLimits.maxProfileBytes` is read (a FIFO or a device is refused unopened).
    public static func load(path: String) throws -> SeccompProfile {
        switch loadCounted(path: path) {
        case .success(let profile): return profile
        case .failure(let failure): throw PolicyError(PolicyLimits.capped(failure.diagnostics, extra: failure.omitted, file: path))
        }
    }

    /// Validates a profile held in memory. `source` becomes `SeccompProfile.source`;
    /// `file` (default: `source`) names it in diagnostics.
    public static func load(data: Data, source: String, file: String? = nil) throws -> SeccompProfile {
        let file = file ?? source
        switch loadCounted(bytes: Array(data), source: source, file: file) {
        case .success(let profile): return profile
        case .failure(let failure): throw PolicyError(PolicyLimits.capped(failure.diagnostics, extra: failure.omitted, file: file))
        }
    }

    /// Why a profile was refused: at most `PolicyLimits.maxDiagnostics` diagnostics,
    /// and how many more there were.
    struct LoadFailure: Error {
        var diagnostics: [PolicyDiagnostic]
        var omitted = 0
    }

    static func loadCounted(path: String) -> Result<SeccompProfile, LoadFailure> {
        let bytes: [UInt8]
        switch PolicyFile.read(path, limit: PolicyLimits.maxProfileBytes) {
        case .success(let b):
            bytes = b
        case .failure(.missing):
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: path, message: "seccomp profile not found")]))
        case .failure(.notRegular("a directory")):
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: path, message: "seccomp profile is a directory, not a JSON file")]))
        case .failure(.tooLarge):
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: path, message: tooLarge)]))
        case .failure(let why):
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: path, message: "cannot read seccomp profile: \(why.reason)")]))
        }
        let absolute = Paths.absolute(path)
        return loadCounted(bytes: bytes, source: absolute, file: path)
    }

    private static var tooLarge: String {
        "profile size limit exceeded: the seccomp profile is larger than \(PolicyLimits.bytes(PolicyLimits.maxProfileBytes)) (\(PolicyLimits.maxProfileBytes) bytes)"
    }

    static func loadCounted(bytes: [UInt8], source: String, file: String) -> Result<SeccompProfile, LoadFailure> {
        guard bytes.count <= PolicyLimits.maxProfileBytes else {
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: file, message: tooLarge)]))
        }
        let root: JSONNode
        do {
            var parser = JSONNodeParser(bytes)
            root = try parser.parseDocument()
        } catch let error as JSONNodeParser.SyntaxError {
            let message = error.isLimit ? error.message : "invalid JSON: \(error.message)"
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: file, line: error.line, column: error.column,
                                                                       message: message)]))
        } catch {
            return .failure(LoadFailure(diagnostics: [PolicyDiagnostic(file: file, message: "invalid JSON: \(error)")]))
        }
        var reader = SeccompProfileReader(file: file)
        var profile = reader.profile(root, source: source)
        profile?.sha256 = Digest.sha256Hex(bytes)
        if let profile, reader.diagnostics.isEmpty { return .success(profile) }
        return .failure(LoadFailure(diagnostics: reader.diagnostics, omitted: reader.omitted))
    }

    /// Errno names accepted by Podman's `errno`/`defaultErrno` keys (Linux numbers,
    /// identical on x86_64 and aarch64).
    public static let errnoNames: [String: UInt32] = SeccompProfileReader.errnoNames
}

/// Walks the parsed JSON and builds the model, recording every problem.
struct SeccompProfileReader {

    static let topKeys = ["defaultAction", "defaultErrnoRet", "defaultErrno", "architectures", "archMap",
                          "flags", "syscalls", "listenerPath", "listenerMetadata"]
    static let archMapKeys = ["architecture", "subArchitectures"]
    static let ruleKeys = ["names", "name", "action", "errnoRet", "errno", "args", "comment", "includes", "excludes"]
    static let argKeys = ["index", "value", "valueTwo", "op"]
    static let conditionKeys = ["caps", "arches", "minKernel"]

    /// libseccomp's architecture names.
    static let architectures = [
        "SCMP_ARCH_NATIVE", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS",
        "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64",
        "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC",
        "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390",
        "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
    ]

    /// The filter flags of the runtime spec.
    static let filterFlags = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                              "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]

    static let errnoNames: [String: UInt32] = [
        "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6, "E2BIG": 7, "ENOEXEC": 8,
        "EBADF": 9, "ECHILD": 10, "EAGAIN": 11, "EWOULDBLOCK": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14,
        "ENOTBLK": 15, "EBUSY": 16, "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21,
        "EINVAL": 22, "ENFILE": 23, "EMFILE": 24, "ENOTTY": 25, "ETXTBSY": 26, "EFBIG": 27, "ENOSPC": 28,
        "ESPIPE": 29, "EROFS": 30, "EMLINK": 31, "EPIPE": 32, "EDOM": 33, "ERANGE": 34, "EDEADLK": 35,
        "EDEADLOCK": 35, "ENAMETOOLONG": 36, "ENOLCK": 37, "ENOSYS": 38, "ENOTEMPTY": 39, "ELOOP": 40,
        "ENOMSG": 42, "EIDRM": 43, "ECHRNG": 44, "EL2NSYNC": 45, "EL3HLT": 46, "EL3RST": 47, "ELNRNG": 48,
        "EUNATCH": 49, "ENOCSI": 50, "EL2HLT": 51, "EBADE": 52, "EBADR": 53, "EXFULL": 54, "ENOANO": 55,
        "EBADRQC": 56, "EBADSLT": 57, "EBFONT": 59, "ENOSTR": 60, "ENODATA": 61, "ETIME": 62, "ENOSR": 63,
        "ENONET": 64, "ENOPKG": 65, "EREMOTE": 66, "ENOLINK": 67, "EADV": 68, "ESRMNT": 69, "ECOMM": 70,
        "EPROTO": 71, "EMULTIHOP": 72, "EDOTDOT": 73, "EBADMSG": 74, "EOVERFLOW": 75, "ENOTUNIQ": 76,
        "EBADFD": 77, "EREMCHG": 78, "ELIBACC": 79, "ELIBBAD": 80, "ELIBSCN": 81, "ELIBMAX": 82,
        "ELIBEXEC": 83, "EILSEQ": 84, "ERESTART": 85, "ESTRPIPE": 86, "EUSERS": 87, "ENOTSOCK": 88,
        "EDESTADDRREQ": 89, "EMSGSIZE": 90, "EPROTOTYPE": 91, "ENOPROTOOPT": 92, "EPROTONOSUPPORT": 93,
        "ESOCKTNOSUPPORT": 94, "EOPNOTSUPP": 95, "ENOTSUP": 95, "EPFNOSUPPORT": 96, "EAFNOSUPPORT": 97,
        "EADDRINUSE": 98, "EADDRNOTAVAIL": 99, "ENETDOWN": 100, "ENETUNREACH": 101, "ENETRESET": 102,
        "ECONNABORTED": 103, "ECONNRESET": 104, "ENOBUFS": 105, "EISCONN": 106, "ENOTCONN": 107,
        "ESHUTDOWN": 108, "ETOOMANYREFS": 109, "ETIMEDOUT": 110, "ECONNREFUSED": 111, "EHOSTDOWN": 112,
        "EHOSTUNREACH": 113, "EALREADY": 114, "EINPROGRESS": 115, "ESTALE": 116, "EUCLEAN": 117,
        "ENOTNAM": 118, "ENAVAIL": 119, "EISNAM": 120, "EREMOTEIO": 121, "EDQUOT": 122, "ENOMEDIUM": 123,
        "EMEDIUMTYPE": 124, "ECANCELED": 125, "ENOKEY": 126, "EKEYEXPIRED": 127, "EKEYREVOKED": 128,
        "EKEYREJECTED": 129, "EOWNERDEAD": 130, "ENOTRECOVERABLE": 131, "ERFKILL": 132, "EHWPOISON": 133,
    ]

    /// Largest errno the kernel returns for SECCOMP_RET_ERRNO (MAX_ERRNO).
    static let maxErrno: UInt64 = 4095

    let file: String
    var diagnostics: [PolicyDiagnostic] = []
    /// Diagnostics past `PolicyLimits.maxDiagnostics`: counted, not kept.
    var omitted = 0

    init(file: String) { self.file = file }

    mutating func error(_ node: JSONNode, _ keyPath: String, _ message: String) {
        guard diagnostics.count < PolicyLimits.maxDiagnostics else { omitted += 1; return }
        diagnostics.append(PolicyDiagnostic(file: file, keyPath: keyPath.isEmpty ? nil : keyPath,
                                            line: node.line, column: node.column, message: message))
    }

    private static func allowed(_ list: [String]) -> String { list.joinedText(separator: ", ") }

    private static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    // MARK: typed accessors (nil + diagnostic on a wrong type; JSON null counts as absent)

    /// The members of an object, after reporting unknown and duplicate keys.
    mutating func members(_ node: JSONNode, _ path: @autoclosure () -> String, allowedKeys: [String]) -> [String: JSONNode]? {
        guard case .object(let list) = node.kind else {
            error(node, path(), "expected an object, found \(node.typeName)")
            return nil
        }
        var result: [String: JSONNode] = [:]
        var seen = Set<String>()
        for member in list {
            // Key paths are built only for a diagnostic: a profile names hundreds of
            // syscalls, and building each one's path cost a cold run 0.2 ms.
            if !allowedKeys.contains(member.key) {
                error(member.keyNode, Self.join(path(), member.key), "unknown key \"\(member.key)\"; allowed: \(Self.allowed(allowedKeys))")
            } else if !seen.insert(member.key).inserted {
                error(member.keyNode, Self.join(path(), member.key), "duplicate key \"\(member.key)\"")
            } else if case .null = member.value.kind {
                continue
            } else {
                result[member.key] = member.value
            }
        }
        return result
    }

    mutating func string(_ node: JSONNode, _ path: @autoclosure () -> String) -> String? {
        guard case .string(let s) = node.kind else {
            error(node, path(), "expected a string, found \(node.typeName)")
            return nil
        }
        return s
    }

    mutating func array(_ node: JSONNode, _ path: @autoclosure () -> String) -> [JSONNode]? {
        guard case .array(let items) = node.kind else {
            error(node, path(), "expected an array, found \(node.typeName)")
            return nil
        }
        return items
    }

    mutating func strings(_ node: JSONNode, _ path: @autoclosure () -> String) -> [String]? {
        guard let items = array(node, path()) else { return nil }
        var result: [String] = []
        var ok = true
        for (i, item) in items.enumerated() {
            if let s = string(item, "\(path())[\(i)]") { result.append(s) } else { ok = false }
        }
        return ok ? result : nil
    }

    mutating func unsigned(_ node: JSONNode, _ path: @autoclosure () -> String, max: UInt64 = .max, what: String = "a non-negative integer") -> UInt64? {
        guard case .number(let text) = node.kind else {
            error(node, path(), "expected \(what), found \(node.typeName)")
            return nil
        }
        if text.hasPrefix("-") {
            error(node, path(), "\(text) is negative; expected \(what)")
            return nil
        }
        guard text.allSatisfy(\.isASCIIDigit) else {
            error(node, path(), "\(text) is not an integer; expected \(what)")
            return nil
        }
        guard let value = UInt64(text), value <= max else {
            error(node, path(), "\(text) is out of range; expected \(what) ≤ \(max)")
            return nil
        }
        return value
    }

    // MARK: the profile

    mutating func profile(_ root: JSONNode, source: String) -> SeccompProfile? {
        guard let top = members(root, "", allowedKeys: Self.topKeys) else { return nil }

        for key in ["listenerPath", "listenerMetadata"] {
            guard let node = top[key] else { continue }
            if case .string(let s) = node.kind, s.isEmpty { continue }
            error(node, key, "not supported: sandbox runs its own seccomp notify listener (use on_violation = \"notify\" in the policy)")
        }

        var defaultAction: SeccompAction?
        if let node = top["defaultAction"] {
            defaultAction = action(node, "defaultAction")
        } else {
            error(root, "defaultAction", "missing; required, one of: \(Self.allowed(SeccompAction.allCases.map(\.rawValue)))")
        }
        let defaultErrno = errno(number: top["defaultErrnoRet"], numberPath: "defaultErrnoRet",
                                 name: top["defaultErrno"], namePath: "defaultErrno", action: defaultAction)

        var architectures: [String] = []
        func addArch(_ a: String) { if !architectures.contains(a) { architectures.append(a) } }
        if let node = top["architectures"], let list = strings(node, "architectures") {
            for (i, name) in list.enumerated() where checkArch(name, node: arrayItem(node, i), "architectures[\(i)]") {
                addArch(name)
            }
        }
        if let node = top["archMap"], let items = array(node, "archMap") {
            for (i, item) in items.enumerated() {
                let path = "archMap[\(i)]"
                guard let m = members(item, path, allowedKeys: Self.archMapKeys) else { continue }
                if let a = m["architecture"] {
                    if let name = string(a, path + ".architecture"), checkArch(name, node: a, path + ".architecture") {
                        addArch(name)
                    }
                } else {
                    error(item, path + ".architecture", "missing; required in an archMap entry")
                }
                if let sub = m["subArchitectures"], let list = strings(sub, path + ".subArchitectures") {
                    for (j, name) in list.enumerated() {
                        _ = checkArch(name, node: arrayItem(sub, j), path + ".subArchitectures[\(j)]")
                    }
                }
            }
        }

        var flags: [String] = []
        if let node = top["flags"], let list = strings(node, "flags") {
            for (i, flag) in list.enumerated() {
                if Self.filterFlags.contains(flag) {
                    if !flags.contains(flag) { flags.append(flag) }
                } else {
                    error(arrayItem(node, i), "flags[\(i)]", "unknown flag \"\(flag)\"; allowed: \(Self.allowed(Self.filterFlags))")
                }
            }
        }

        var rules: [SeccompRule] = []
        if let node = top["syscalls"], let items = array(node, "syscalls") {
            for (i, item) in items.enumerated() {
                if let r = rule(item, "syscalls[\(i)]") { rules.append(r) }
            }
        }

        guard let defaultAction, diagnostics.isEmpty else { return nil }
        return SeccompProfile(source: source, defaultAction: defaultAction, defaultErrnoRet: defaultErrno,
                              architectures: architectures, syscalls: rules, flags: flags)
    }

    private func arrayItem(_ node: JSONNode, _ i: Int) -> JSONNode {
        if case .array(let items) = node.kind, items.indices.contains(i) { return items[i] }
        return node
    }

    mutating func checkArch(_ name: String, node: JSONNode, _ path: @autoclosure () -> String) -> Bool {
        if Self.architectures.contains(name) { return true }
        error(node, path(), "unknown architecture \"\(name)\"; allowed: \(Self.allowed(Self.architectures))")
        return false
    }

    mutating func action(_ node: JSONNode, _ path: @autoclosure () -> String) -> SeccompAction? {
        guard let s = string(node, path()) else { return nil }
        if let a = SeccompAction(rawValue: s) { return a }
        error(node, path(), "unknown action \"\(s)\"; allowed: \(Self.allowed(SeccompAction.allCases.map(\.rawValue)))")
        return nil
    }

    /// `errnoRet` (number) and Podman's `errno` (name) for an action; they must agree.
    mutating func errno(number: JSONNode?, numberPath: @autoclosure () -> String, name: JSONNode?, namePath: @autoclosure () -> String,
                        action: SeccompAction?) -> UInt32? {
        guard number != nil || name != nil else { return nil }
        // SCMP_ACT_TRACE carries a 16-bit message for the tracer instead of an errno.
        let limit: UInt64 = action == .trace ? 0xffff : Self.maxErrno
        var fromNumber: UInt32?
        if let number, let v = unsigned(number, numberPath(), max: limit,
                                        what: action == .trace ? "a trace message number" : "an errno number") {
            fromNumber = UInt32(v)
        }
        var fromName: UInt32?
        if let name, let s = string(name, namePath()) {
            if let v = Self.errnoNames[s] {
                fromName = v
            } else {
                error(name, namePath(), "unknown errno name \"\(s)\"; expected a name such as EPERM, EACCES, ENOSYS")
            }
        }
        if let action, action != .errno, action != .trace {
            let node = number ?? name!
            error(node, number != nil ? numberPath() : namePath(),
                  "only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not \(action.rawValue)")
            return nil
        }
        if let a = fromNumber, let b = fromName, a != b {
            error(name!, namePath(), "errno \(b) does not match \(numberPath()) \(a)")
            return nil
        }
        return fromNumber ?? fromName
    }

    mutating func rule(_ node: JSONNode, _ path: @autoclosure () -> String) -> SeccompRule? {
        guard let m = members(node, path(), allowedKeys: Self.ruleKeys) else { return nil }
        let before = diagnostics.count

        var names: [String] = []
        switch (m["name"], m["names"]) {
        case (let single?, let list?):
            error(single, path() + ".name", "both \"name\" and \"names\" are given; use \"names\"")
            _ = list
        case (let single?, nil):
            if let s = string(single, path() + ".name"), checkSyscallName(s, node: single, path() + ".name") {
                names = [s]
            }
        case (nil, let list?):
            if let items = strings(list, path() + ".names") {
                if items.isEmpty { error(list, path() + ".names", "empty; a rule needs at least one syscall name") }
                for (i, s) in items.enumerated() {
                    if checkSyscallName(s, node: arrayItem(list, i), path() + ".names[\(i)]") { names.append(s) }
                }
            }
        case (nil, nil):
            error(node, path() + ".names", "missing; a rule needs \"names\" (or the older \"name\")")
        }

        var action: SeccompAction?
        if let a = m["action"] {
            action = self.action(a, path() + ".action")
        } else {
            error(node, path() + ".action", "missing; required, one of: \(Self.allowed(SeccompAction.allCases.map(\.rawValue)))")
        }
        let errnoRet = errno(number: m["errnoRet"], numberPath: path() + ".errnoRet",
                             name: m["errno"], namePath: path() + ".errno", action: action)

        var args: [SeccompArg] = []
        if let a = m["args"], let items = array(a, path() + ".args") {
            for (i, item) in items.enumerated() {
                if let arg = argument(item, path() + ".args[\(i)]") { args.append(arg) }
            }
        }
        if let c = m["comment"] { _ = string(c, path() + ".comment") }
        let includes = m["includes"].flatMap { condition($0, path() + ".includes") } ?? SeccompCondition()
        let excludes = m["excludes"].flatMap { condition($0, path() + ".excludes") } ?? SeccompCondition()

        guard let action, diagnostics.count == before else { return nil }
        return SeccompRule(names: names, action: action, errnoRet: errnoRet, args: args,
                           includes: includes, excludes: excludes)
    }

    /// Names are kept as written (other architectures' names are legitimate), but
    /// must look like a syscall name.
    mutating func checkSyscallName(_ s: String, node: JSONNode, _ path: @autoclosure () -> String) -> Bool {
        let ok = !s.isEmpty && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
        if !ok { error(node, path(), "\"\(s)\" is not a syscall name (lower-case letters, digits and _)") }
        return ok
    }

    mutating func argument(_ node: JSONNode, _ path: @autoclosure () -> String) -> SeccompArg? {
        guard let m = members(node, path(), allowedKeys: Self.argKeys) else { return nil }
        let before = diagnostics.count
        var index: UInt64?
        if let n = m["index"] {
            index = unsigned(n, path() + ".index", max: 5, what: "an argument index 0…5")
        } else {
            error(node, path() + ".index", "missing; required, 0…5")
        }
        var value: UInt64?
        if let n = m["value"] {
            value = unsigned(n, path() + ".value", what: "an unsigned 64-bit integer")
        } else {
            error(node, path() + ".value", "missing; required")
        }
        let valueTwo = m["valueTwo"].flatMap { unsigned($0, path() + ".valueTwo", what: "an unsigned 64-bit integer") } ?? 0
        var op: SeccompOperator?
        if let n = m["op"] {
            if let s = string(n, path() + ".op") {
                op = SeccompOperator(rawValue: s)
                if op == nil {
                    error(n, path() + ".op", "unknown operator \"\(s)\"; allowed: \(Self.allowed(SeccompOperator.allCases.map(\.rawValue)))")
                }
            }
        } else {
            error(node, path() + ".op", "missing; required, one of: \(Self.allowed(SeccompOperator.allCases.map(\.rawValue)))")
        }
        guard let index, let value, let op, diagnostics.count == before else { return nil }
        return SeccompArg(index: UInt32(index), value: value, valueTwo: valueTwo, op: op)
    }

    mutating func condition(_ node: JSONNode, _ path: @autoclosure () -> String) -> SeccompCondition? {
        guard let m = members(node, path(), allowedKeys: Self.conditionKeys) else { return nil }
        var result = SeccompCondition()
        if let n = m["caps"], let caps = strings(n, path() + ".caps") {
            for (i, cap) in caps.enumerated() {
                if let canonical = CapabilityTable.canonicalName(cap) {
                    // Normalized, so `cap_sys_admin` and `CAP_SYS_ADMIN` mean the same.
                    result.caps.append("CAP_" + canonical.uppercased())
                } else {
                    error(arrayItem(n, i), path() + ".caps[\(i)]",
                          "unknown capability \"\(cap)\"; expected a name such as CAP_SYS_ADMIN (CAP_CHOWN … CAP_CHECKPOINT_RESTORE)")
                }
            }
        }
        if let n = m["arches"], let arches = strings(n, path() + ".arches") {
            for (i, arch) in arches.enumerated() where arch.isEmpty {
                error(arrayItem(n, i), path() + ".arches[\(i)]", "empty architecture name")
            }
            result.arches = arches.filter { !$0.isEmpty }
        }
        if let n = m["minKernel"], let s = string(n, path() + ".minKernel") {
            if !s.isEmpty {   // Docker treats "" as no minimum
                if let v = Self.kernelVersion(s) {
                    result.minKernel = v
                } else {
                    error(n, path() + ".minKernel", "invalid kernel version \"\(s)\"; expected \"<kernel>.<major>\", e.g. \"4.8\"")
                }
            }
        }
        return result
    }

    /// Docker's `minKernel` syntax: exactly "<kernel>.<major>", each 0…255, not 0.0.
    static func kernelVersion(_ s: String) -> String? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
              let kernel = UInt8(parts[0]), let major = UInt8(parts[1]),
              kernel != 0 || major != 0 else { return nil }
        return "\(kernel).\(major)"
    }
}

// MARK: - JSON with positions

/// A JSON value with the line and column (1-based, in bytes) where it starts, so a
/// diagnostic can point into the file. Object members keep their order.
struct JSONNode {
    struct Member {
        var key: String
        var keyNode: JSONNode   // a `.string` node at the key's position
        var value: JSONNode
    }
    indirect enum Kind {
        case object([Member])
        case array([JSONNode])
        case string(String)
        case number(String)   // the literal text, converted by the reader
        case bool(Bool)
        case null
    }
    var kind: Kind
    var line: Int
    var column: Int

    var typeName: String {
        switch kind {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// A strict RFC 8259 parser (no comments, no trailing commas) that records positions.
struct JSONNodeParser {
    struct SyntaxError: Error {
        var line: Int
        var column: Int
        var message: String
        /// A bound of `PolicyLimits` was exceeded (the text may be valid JSON).
        var isLimit = false
    }

    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0
    private var values = 0
    private static let maxDepth = PolicyLimits.maxProfileDepth

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3; lineStart = 3 }   // UTF-8 BOM
    }

    mutating func parseDocument() throws -> JSONNode {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if index < bytes.count { throw failure("unexpected \(describe(bytes[index])) after the JSON value") }
        return value
    }

    private var column: Int { index - lineStart + 1 }

    private func failure(_ message: String) -> SyntaxError {
        SyntaxError(line: line, column: column, message: message)
    }

    private func limit(_ message: String) -> SyntaxError {
        SyntaxError(line: line, column: column, message: message, isLimit: true)
    }

    private func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7f { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: index += 1
            case 0x0A: index += 1; line += 1; lineStart = index
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws -> JSONNode {
        guard depth < Self.maxDepth else {
            throw limit("JSON depth limit exceeded: arrays and objects nested more than \(Self.maxDepth) levels deep")
        }
        guard index < bytes.count else { throw failure("unexpected end of file, expected a value") }
        values += 1
        guard values <= PolicyLimits.maxProfileValues else {
            throw limit("JSON value count limit exceeded: the profile has more than \(PolicyLimits.maxProfileValues) values")
        }
        let startLine = line, startColumn = column
        func node(_ kind: JSONNode.Kind) -> JSONNode { JSONNode(kind: kind, line: startLine, column: startColumn) }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var members: [JSONNode.Member] = []
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "}") { index += 1; return node(.object(members)) }
            while true {
                skipWhitespace()
                guard index < bytes.count else { throw failure("unexpected end of file in an object") }
                guard bytes[index] == UInt8(ascii: "\"") else {
                    throw failure("expected a key in double quotes, found \(describe(bytes[index]))")
                }
                let keyLine = line, keyColumn = column
                let key = try parseString()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                    throw failure("expected ':' after key \"\(key)\"")
                }
                index += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(.init(key: key, keyNode: JSONNode(kind: .string(key), line: keyLine, column: keyColumn), value: value))
                skipWhitespace()
                guard index < bytes.count else { throw failure("unexpected end of file in an object") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return node(.object(members)) }
                throw failure("expected ',' or '}' in an object, found \(describe(bytes[index]))")
            }
        case UInt8(ascii: "["):
            index += 1
            var items: [JSONNode] = []
            skipWhitespace()
            if index < bytes.count && bytes[index] == UInt8(ascii: "]") { index += 1; return node(.array(items)) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw failure("unexpected end of file in an array") }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return node(.array(items)) }
                throw failure("expected ',' or ']' in an array, found \(describe(bytes[index]))")
            }
        case UInt8(ascii: "\""):
            return node(.string(try parseString()))
        case UInt8(ascii: "t"):
            try literal("true"); return node(.bool(true))
        case UInt8(ascii: "f"):
            try literal("false"); return node(.bool(false))
        case UInt8(ascii: "n"):
            try literal("null"); return node(.null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return node(.number(try parseNumber()))
        default:
            throw failure("unexpected \(describe(bytes[index])), expected a value")
        }
    }

    private mutating func literal(_ word: String) throws {
        let w = Array(word.utf8)
        guard bytes.count - index >= w.count, Array(bytes[index..<index + w.count]) == w else {
            throw failure("invalid literal, expected \(word)")
        }
        index += w.count
    }

    private mutating func parseNumber() throws -> String {
        let start = index
        func digits() -> Int {
            let s = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            return index - s
        }
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 else { throw failure("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { throw failure("numbers must not have leading zeros") }
        } else {
            _ = digits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw failure("invalid number: digits expected after '.'") }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw failure("invalid number: digits expected in the exponent") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseString() throws -> String {
        index += 1   // opening quote
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw failure("unterminated string") }
            let b = bytes[index]
            switch b {
            case UInt8(ascii: "\""):
                index += 1
                guard let s = String(utf8Text: out) else { throw failure("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw failure("unterminated string") }
                let e = bytes[index]
                index += 1
                if let b = JSONEscape.byte(for: e) { out.append(b); continue }
                switch e {
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes.count - index >= 6, bytes[index] == 0x5C, bytes[index + 1] == UInt8(ascii: "u") else {
                            throw failure("unpaired surrogate in \\u escape")
                        }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw failure("unpaired surrogate in \\u escape")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default:
                    index -= 1
                    throw failure("invalid escape \\\(Character(Unicode.Scalar(e)))")
                }
            case 0x00..<0x20:
                throw failure(b == 0x0A ? "unterminated string (newline inside)" : "control character in a string must be escaped")
            default:
                out.append(b)
                index += 1
            }
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw failure("invalid \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw failure("invalid \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }
}
