import Glibc
import SandboxKernel
import SandboxPlan
import SandboxPolicy

private func join(_ dir: String, _ name: String) -> String {
    dir.utf8.last == 0x2F ? dir + name : dir + "/" + name
}

/// What `[binary]` checked: the executable (and a script's interpreter), by the path
/// the sandbox sees after its symlinks, with the SHA-256 of the bytes that run. In
/// the result (`binary`) and the audit log's `run_start`, also when a rule refused it.
public struct CheckedBinary: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        /// The path inside the sandbox, symlinks resolved (`/usr/bin/python3.11`).
        public var path: String
        /// The path the command named it by, when a symlink differs (`/usr/bin/python3`).
        public var foundAs: String?
        public var sha256: String
        /// What keeps the bytes that run the hashed ones: `lease` or `copy`.
        public var fence: ExecutableFile.Fence?
    }
    public var path: String
    public var foundAs: String?
    public var sha256: String
    /// `lease` (the file itself runs, under a read lease) or `copy` (a sealed memfd
    /// copy of the checked bytes runs: a `#!` script always, an ELF where no lease).
    public var fence: ExecutableFile.Fence?
    /// A `#!` script's interpreter, checked by the same rules.
    public var interpreter: File?
}

/// `[binary]` (Docs/binary.md): find the command as the sandbox would — its `PATH`,
/// its working directory, its mount table (which host object backs a sandbox path),
/// its symlinks — open it once from the bind source the child will mount, run every
/// rule on that descriptor, and hand the descriptor to the child, which
/// `execveat`s it. A refusal is 126 naming the rule and the path; 127 when there is
/// nothing to run.
struct BinaryCheck {
    let plan: RunPlan
    let sources: [Int: OpenedSource]
    /// What this run and every other recorded run can write (``writablePlaces``):
    /// `require_root_owned` refuses a file there.
    var writable: [WritablePlace] = []

    /// The opened files the child execs; closed by their owners (the undo and after
    /// clone3).
    struct Opened {
        var command: ExecutableFile.Opened
        var interpreter: ExecutableFile.Opened?
        var record: CheckedBinary
        /// The child's argv for `execveat`.
        var argv: [String]
        func closeFiles() { command.close(); interpreter?.close() }

        /// The sandbox path the child reopens and execs in place of the host
        /// descriptor (`CheckedExec.view`): the file that runs is then the sandbox's
        /// mount of it, so its `/proc/self/exe` obeys the bind's read-only flag. A
        /// sealed copy runs itself (nothing reaches the host file through it).
        var view: String? {
            let runs = interpreter ?? command
            if runs.fence == .copy || TestHooks.execHostFD { return nil }
            return interpreter == nil ? record.path : record.interpreter?.path
        }

        /// Right before clone3: each file's stamp again. A changed `ctime` is not
        /// always a changed file (a rename over its old name, a new hard link move it
        /// too), so the bytes are hashed again: the same → the new stamp is what the
        /// child compares; different → refused, naming both hashes.
        mutating func confirm() throws(ExecError) {
            command = try Self.confirm(command, path: record.path, sha256: record.sha256)
            if let i = interpreter, let r = record.interpreter {
                interpreter = try Self.confirm(i, path: r.path, sha256: r.sha256)
            }
        }

        private static func confirm(_ f: ExecutableFile.Opened, path: String, sha256: String) throws(ExecError)
            -> ExecutableFile.Opened {
            var f = f
            let now: ExecutableFile.Stamp
            do { now = try f.currentStamp() } catch {
                throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path, errno: error.errno,
                                message: "[binary] \(error); not run", exitCode: 126)
            }
            guard f.leaseIntact else {
                throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path,
                                message: "[binary] \(path) was opened for writing after its check (its read lease was broken); not run",
                                exitCode: 126)
            }
            guard now != f.stamp else { return f }
            let again = try BinaryCheck.sha256(f)
            guard again == sha256 else {
                throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path,
                                message: "[binary] \(path) was written to after its check (sha256 was \(sha256), is now \(again)); not run",
                                exitCode: 126)
            }
            f.stamp = now
            return f
        }
    }

    /// A sandbox path found on a bind: the mount step, the path beneath its source,
    /// and the sandbox paths the command was named by (for pins).
    struct Located {
        var path: String
        var foundAs: String
        var bind: Int
        var relative: String
        /// The symlinks on binds the lookup followed to get here: each is a choice of
        /// file its directory's writers made, so the rules look at them too.
        var links: [Hop] = []
    }

    /// A place on a bind, by the mount step and the path beneath its source.
    struct Hop: Equatable {
        var path: String
        var bind: Int
        var relative: String
    }

    enum Lookup {
        case found(Located, mode: UInt32)
        case missing
        case notOnBind(String, MountKind)
        case notAFile(String)
        case loop
    }

    /// Runs the check. `record` is filled as soon as something was opened and hashed,
    /// so a refusal still reports what was found.
    func run(record: inout CheckedBinary?) throws(ExecError) -> Opened {
        let argv0 = plan.process.argv.first ?? ""
        let command = try find(argv0)
        var opened: [ExecutableFile.Opened] = []
        var done = false
        defer { if !done { for f in opened { f.close() } } }
        let original = try open(command)
        opened.append(original)
        // Every rule that needs no bytes first, on the opened file: a refused or
        // oversized file is never copied or hashed (red-team finding: a 2 GiB sparse
        // script cost 20 s and 2 GiB of shmem before its refusal).
        try checkMetadata(original, command, role: "")
        let isScript = Shebang(original.head()) != nil
        // Fenced before the hash, so the bytes hashed are the bytes that run.
        let file = try fence(original, path: command.path, script: isScript)
        opened.append(file)
        let hash = try Self.sha256(file)
        record = CheckedBinary(path: command.path, foundAs: command.foundAs == command.path ? nil : command.foundAs,
                               sha256: hash, fence: file.fence, interpreter: nil)
        try checkPin(original, command, hash: hash, role: "")

        var interpreter: ExecutableFile.Opened?
        var argv = plan.process.argv
        if isScript {
            // The copy's own #! line: the one the hash covers.
            guard let shebang = Shebang(file.head()) else {
                throw refusal(command.path, "\(command.path) was written to while it was checked (no longer a #! script)")
            }
            let located = try locate(shebang.interpreter, for: "the interpreter of \(command.path)")
            let raw = try open(located)
            opened.append(raw)
            let role = "interpreter of \(command.path): "
            try checkMetadata(raw, located, role: role)
            let interp = try fence(raw, path: located.path, script: false)
            opened.append(interp)
            let h = try Self.sha256(interp)
            record?.interpreter = .init(path: located.path, foundAs: located.foundAs == located.path ? nil : located.foundAs,
                                        sha256: h, fence: interp.fence)
            try checkPin(raw, located, hash: h, role: role)
            if Shebang(interp.head()) != nil {
                throw refusal(located.path, "the interpreter of \(command.path), \(located.path), is itself a #! script; [binary] runs one level of interpreter")
            }
            guard plan.mounts.contains(where: { $0.kind == .proc && $0.destination == "/proc" }),
                  plan.mounts.contains(where: { $0.kind == .dev && $0.destination == "/dev" }) else {
                throw refusal(command.path, "\(command.path) is a #! script, which runs from its checked descriptor as /dev/fd/N: the sandbox needs /proc and /dev for that")
            }
            // As the kernel runs a script from a descriptor: the interpreter (named as
            // in the #! line), its one argument, the script as /dev/fd/N.
            argv = [shebang.interpreter] + (shebang.argument.map { [$0] } ?? [])
                + ["/dev/fd/\(file.fd)"] + plan.process.argv.dropFirst()
            interpreter = interp
        }
        done = true
        return Opened(command: file, interpreter: interpreter, record: record!, argv: argv)
    }

    /// The opened file fenced (``ExecutableFile/Opened/fenced(lease:)``), `f` closed if
    /// it was copied. A `#!` script is always copied: its interpreter reads it line by
    /// line while it runs, long after any check, and the kernel never refuses a
    /// script's writers (it is not exec'd), so a lease could be broken mid-run.
    private func fence(_ f: ExecutableFile.Opened, path: String, script: Bool) throws(ExecError) -> ExecutableFile.Opened {
        // Debug builds only: the control of the shared-mapping test runs an ELF unfenced.
        if !script && TestHooks.execFence == "none" { return f }
        do { return try f.fenced(lease: !script && TestHooks.execFence != "copy") } catch {
            throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path, errno: error.errno,
                            message: "[binary] \(path): no lease and no sealed copy: \(error); not run", exitCode: 126)
        }
    }

    // MARK: - Finding the file as the sandbox sees it

    /// argv[0] as execvp inside would find it: a name without `/` through the plan's
    /// `PATH` (empty and relative entries from the working directory), else from the
    /// working directory.
    private func find(_ argv0: String) throws(ExecError) -> Located {
        // A slash byte, as execvp asks: `contains("/")` looks for a `Character`, and a
        // slash followed by a combining mark (or after a prepend mark) is none.
        if argv0.utf8.contains(0x2F) { return try locate(argv0, for: argv0) }
        var sawNotExecutable: String?
        var sawNotOnBind: (String, MountKind)?
        for dir in plan.process.searchPath.split(separator: ":", omittingEmptySubsequences: false) {
            let path = join(absolute(String(dir)), argv0)
            switch lookup(path) {
            case .found(let l, let mode):
                if mode & 0o111 == 0 { sawNotExecutable = sawNotExecutable ?? l.path; continue }
                return l
            case .notOnBind(let p, let k): sawNotOnBind = sawNotOnBind ?? (p, k)
            case .notAFile, .missing, .loop: continue
            }
        }
        if let p = sawNotExecutable { throw refusal(p, "\(p): not executable (no x bit)") }
        if let (p, k) = sawNotOnBind { throw notOnBind(p, k) }
        throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: argv0,
                        message: "\(argv0): not found in the sandbox's PATH (\(plan.process.searchPath))", exitCode: 127)
    }

    /// A path (absolute or from the working directory) that must name a file on a bind.
    private func locate(_ path: String, for what: String) throws(ExecError) -> Located {
        switch lookup(absolute(path)) {
        case .found(let l, _): return l
        case .missing: throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path,
                                       message: "\(what): \(path): not found in the sandbox", exitCode: 127)
        case .notOnBind(let p, let k): throw notOnBind(p, k)
        case .notAFile(let p): throw refusal(p, "\(what): \(p): not a regular file")
        case .loop: throw refusal(path, "\(what): \(path): too many levels of symbolic links")
        }
    }

    private func absolute(_ path: String) -> String {
        PathText.isAbsolute(path) ? path : join(plan.process.workdir, path)
    }

    /// Resolves `path` one component at a time in the sandbox's view: a symlink the
    /// plan makes (merged-usr `/bin`) or one on a bind (`python3 -> python3.11`) is
    /// followed the way the kernel inside would (absolute targets from the sandbox's
    /// root), up to 40 links. Only finds: the open checks again, without following.
    func lookup(_ path: String) -> Lookup {
        // Split at slash bytes, as the kernel does (PathText): a slash and a combining
        // mark are one `Character`, which `split(separator: "/")` does not cut.
        var pending = PathText.components(path)
        var resolved: [String] = []
        var links = 0
        var hops: [Hop] = []
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if PathText.same(name, ".") { continue }
            if PathText.same(name, "..") { if !resolved.isEmpty { resolved.removeLast() }; continue }
            let candidate = "/" + (resolved + [name]).joinedText(separator: "/")
            var target: String?
            switch cover(candidate) {
            case .symlink(let t): target = t
            case .bind(let i, let relative):
                switch ExecutableFile.lookup(beneath: sources[i]!.fd, relative) {
                case .missing: return .missing
                case .symlink(let t):
                    target = t
                    hops.append(Hop(path: candidate, bind: i, relative: relative))
                case .directory, .file: break
                case .other: return .notAFile(candidate)
                }
            case .other(let kind): if pending.isEmpty { return .notOnBind(candidate, kind) }
            case .none: if pending.isEmpty { return .missing }
            }
            if let target {
                links += 1
                if links > 40 { return .loop }
                pending = PathText.components(target) + pending
                if PathText.isAbsolute(target) { resolved = [] }
                continue
            }
            resolved.append(name)
        }
        let final = "/" + resolved.joinedText(separator: "/")
        guard case .bind(let i, let relative) = cover(final) else { return .missing }
        switch ExecutableFile.lookup(beneath: sources[i]!.fd, relative) {
        case .file(let mode):
            return .found(Located(path: final, foundAs: path, bind: i, relative: relative, links: hops), mode: mode)
        case .missing: return .missing
        default: return .notAFile(final)
        }
    }

    enum Cover { case bind(Int, relative: String), symlink(String), other(MountKind), none }

    /// Which of the plan's mount steps shows `path` inside: the last one at or above
    /// it (steps are ordered outermost first). `protect` and `pin` change no content;
    /// an optional bind whose source is absent was skipped.
    func cover(_ path: String) -> Cover {
        var found = Cover.none
        for (i, m) in plan.mounts.enumerated() {
            let d = m.destination
            guard PathText.isBeneath(path, d) else { continue }
            switch m.kind {
            case .protect, .pin: continue
            case .bind:
                guard sources[i] != nil else { continue }
                found = .bind(i, relative: PathText.remainder(of: path, under: d))
            case .symlink:
                // A symlink the root holds at d: followed only when d itself is reached.
                found = PathText.same(path, d) ? .symlink(m.source ?? "") : .none
            default: found = .other(m.kind)
            }
        }
        return found
    }

    // MARK: - Opening and the rules

    /// Opens the located file from `/` along the bind source's host path, checking
    /// that the walk passes through the very source the child mounts.
    private func open(_ l: Located) throws(ExecError) -> ExecutableFile.Opened {
        let (host, depth, anchor) = hostPlace(bind: l.bind, relative: l.relative)
        do { return try ExecutableFile.open(hostPath: host, anchorDepth: depth, anchor: anchor) } catch {
            throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: l.path, errno: error.errno,
                            message: "[binary] \(l.path): \(error); not run", exitCode: 126)
        }
    }

    /// A symlink the lookup followed, reached again by the same walk as the file.
    private func inspect(_ hop: Hop) throws(ExecError) -> ExecutableFile.Link {
        let (host, depth, anchor) = hostPlace(bind: hop.bind, relative: hop.relative)
        do { return try ExecutableFile.link(hostPath: host, anchorDepth: depth, anchor: anchor) } catch {
            throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: hop.path, errno: error.errno,
                            message: "[binary] symlink \(hop.path): \(error); not run", exitCode: 126)
        }
    }

    /// The host path of a place on a bind, the depth of the bind's source in it and
    /// the source's identity (what the walk must pass through).
    private func hostPlace(bind: Int, relative: String) -> (String, Int, (device: UInt64, inode: UInt64)) {
        let base = plan.mounts[bind].source ?? "/"
        let source = sources[bind]!
        return (relative.isEmpty ? base : join(base, relative), PathText.components(base).count,
                (device: source.device, inode: source.inode))
    }

    static func sha256(_ f: ExecutableFile.Opened) throws(ExecError) -> String {
        let stream = Digest.SHA256Stream()
        do { try f.read { stream.update($0) } } catch {
            throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: f.hostPath, errno: error.errno,
                            message: "[binary] \(error); not run", exitCode: 126)
        }
        return stream.finalHex()
    }

    /// Every rule but the pin, on the opened file and the directories the walk passed
    /// (the host's: those a writer could have used before the open), and the size
    /// cap: all before a byte is copied or hashed.
    private func checkMetadata(_ f: ExecutableFile.Opened, _ l: Located, role: String) throws(ExecError) {
        let b = plan.binary
        let invoker = plan.host.invokerUID
        let name = role + l.path
        if b.requireRootOwned {
            if f.uid != 0 && f.uid != invoker {
                throw refusal(l.path, "require_root_owned: \(name) is owned by uid \(f.uid), not root or the invoker (uid \(invoker))")
            }
            if let d = f.directories.first(where: { $0.uid != 0 && $0.uid != invoker }) {
                throw refusal(l.path, "require_root_owned: \(name): directory \(d.path) above it is owned by uid \(d.uid), not root or the invoker (uid \(invoker))")
            }
        }
        if b.rejectWritable {
            if f.mode & 0o022 != 0 {
                throw refusal(l.path, "reject_writable: \(name) is \(Self.writable(f.mode)) (mode \(Self.octal(f.mode)), host \(f.hostPath))")
            }
            if let d = f.directories.first(where: { $0.mode & 0o022 != 0 }) {
                throw refusal(l.path, "reject_writable: \(name): directory \(d.path) above it is \(Self.writable(d.mode)) (mode \(Self.octal(d.mode)))")
            }
        }
        if b.requireRootOwned, let w = writablePlace(holding: f) {
            throw refusal(l.path, "require_root_owned: \(name) lies in \(w.path), which \(w.writer) can write; a file a run can write is not one only root or the invoker wrote")
        }
        // Another name of the same inode may lie in a writable place: hard links stay
        // on one filesystem, so a file that is not root's with more than one link is
        // refused when a place a run can write is on its filesystem (its other names
        // cannot be found without a scan). Root's files are left alone: system
        // binaries have several links, and runs write as the invoker.
        if b.requireRootOwned, f.uid != 0, f.linkCount > 1, let w = writablePlace(reachingDevice: f.device) {
            throw refusal(l.path, "require_root_owned: \(name) (uid \(f.uid)) has \(f.linkCount) hard links and \(w.path), which \(w.writer) can write, reaches its filesystem: another of its names may lie there")
        }
        if b.rejectSetuid && f.mode & 0o6000 != 0 {
            let what = f.mode & 0o4000 != 0 ? "setuid" : "setgid"
            throw refusal(l.path, "reject_setuid: \(name) is \(what) (mode \(Self.octal(f.mode)))")
        }
        if b.rejectSetuid && f.hasFileCapabilities {
            throw refusal(l.path, "reject_setuid: \(name) has file capabilities (security.capability)")
        }
        if b.requireRootOwned || b.rejectWritable {
            for hop in l.links { try checkLink(try inspect(hop), hop, to: name) }
        }
        if f.stamp.size > ExecutableFile.maxSize {
            throw refusal(l.path, "max size: \(name) is \(f.stamp.size) bytes, over the \(ExecutableFile.maxSize >> 20) MiB [binary] copies or hashes at most")
        }
    }

    /// A symlink the lookup followed decides which file runs, so whoever can replace
    /// it could choose (red-team finding: run A planted `WS/bin/tool -> /usr/bin/bash`
    /// and run B ran bash under the name it trusted). The same rules as for the
    /// file's place: its owner and its directories' owners root or the invoker, not in
    /// a place a run can write (`require_root_owned`); no group- or world-writable
    /// directory above it (`reject_writable`). The plan's own symlinks (`/bin ->
    /// usr/bin`) are the policy's, not on a bind: nothing to check.
    private func checkLink(_ link: ExecutableFile.Link, _ hop: Hop, to name: String) throws(ExecError) {
        let invoker = plan.host.invokerUID
        let what = "symlink \(hop.path) on the way to \(name)"
        if plan.binary.requireRootOwned {
            if link.uid != 0 && link.uid != invoker {
                throw refusal(hop.path, "require_root_owned: \(what) is owned by uid \(link.uid), not root or the invoker (uid \(invoker))")
            }
            if let d = link.directories.first(where: { $0.uid != 0 && $0.uid != invoker }) {
                throw refusal(hop.path, "require_root_owned: \(what): directory \(d.path) above it is owned by uid \(d.uid), not root or the invoker (uid \(invoker))")
            }
            // Its directory's place (realpath of the link itself would follow it).
            let holder = link.directories.last?.path ?? "/"
            let holderID = link.directories.last.map { ($0.device, $0.inode) } ?? (0, 0)
            if let w = writablePlace(chain: link.directories.map { ($0.device, $0.inode) } + [(link.device, link.inode)],
                                     hostPath: holder, object: holderID) {
                throw refusal(hop.path, "require_root_owned: \(what) lies in \(w.path), which \(w.writer) can write")
            }
        }
        if plan.binary.rejectWritable, let d = link.directories.first(where: { $0.mode & 0o022 != 0 }) {
            throw refusal(hop.path, "reject_writable: \(what): directory \(d.path) above it is \(Self.writable(d.mode)) (mode \(Self.octal(d.mode)))")
        }
    }

    /// The pins on the hash of the fenced bytes: every pin whose key names this file,
    /// however spelled (``pins(naming:_:)``).
    private func checkPin(_ f: ExecutableFile.Opened, _ l: Located, hash: String, role: String) throws(ExecError) {
        for (key, want) in pins(naming: f, l) {
            if want.lowercased() != "sha256:" + hash {
                throw refusal(l.path, "pin: \(role)\(key): its sha256 is \(hash), the policy pins \(want.dropFirst("sha256:".count))")
            }
        }
    }

    /// The pins that name the opened file `f` (found as `l`): a key spelled as the
    /// command was found or as its final path; else a key that the same lookup
    /// resolves to that path (`/bin/python3`, `/usr/bin//python3`,
    /// `/usr/bin/./python3`) or to the same inode (a hard link). A red-team finding:
    /// pins matched only the exact string, so another spelling ran unpinned.
    func pins(naming f: ExecutableFile.Opened, _ l: Located) -> [(key: String, want: String)] {
        plan.binary.pin.sorted { $0.key < $1.key }.filter { key, _ in
            if key == l.foundAs || key == l.path { return true }
            guard case .found(let k, _) = lookup(absolute(key)) else { return false }
            if k.path == l.path { return true }
            guard let id = ExecutableFile.identity(beneath: sources[k.bind]!.fd, k.relative) else { return false }
            return id.device == f.device && id.inode == f.inode
        }.map { (key: $0.key, want: $0.value) }
    }

    private static func writable(_ mode: UInt32) -> String {
        let sticky = mode & 0o1000 != 0 ? " (sticky)" : ""
        return (mode & 0o002 != 0 ? "world-writable" : "group-writable") + sticky
    }

    private static func octal(_ mode: UInt32) -> String { String(mode, radix: 8) }

    private func refusal(_ path: String, _ why: String) -> ExecError {
        ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: path,
                  message: "[binary] \(why); not run", exitCode: 126)
    }

    private func notOnBind(_ path: String, _ kind: MountKind) -> ExecError {
        refusal(path, "\(path) is on the sandbox's own \(kind.rawValue), not on a bind of a host path: [binary] checks only files the plan binds in")
    }
}

/// A `#!` line as the kernel reads it (binfmt_script): the interpreter path, then
/// at most one argument, the rest of the line with surrounding blanks cut.
struct Shebang: Equatable {
    var interpreter: String
    var argument: String?

    init?(_ head: [UInt8]) {
        guard head.count > 2, head[0] == UInt8(ascii: "#"), head[1] == UInt8(ascii: "!") else { return nil }
        // The line ends at a newline or at a NUL, as for the kernel, which reads the
        // interpreter and its argument as C strings.
        let line = head[2...].prefix { $0 != UInt8(ascii: "\n") && $0 != 0 }
        let text = String(decoding: line, as: UTF8.self)
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let trimmed = text.drop(while: blank)
        let interp = trimmed.prefix { !blank($0) }
        guard !interp.isEmpty else { return nil }
        interpreter = String(interp)
        var rest = Substring(trimmed.dropFirst(interp.count)).drop(while: blank)
        while let last = rest.last, blank(last) || last == "\r" { rest = rest.dropLast() }
        argument = rest.isEmpty ? nil : String(rest)
    }
}

/// A place a run can write: the source of a writable bind (`rw`, `unix_sockets`) of
/// this run's plan or of a run recorded under the run base, by path and identity.
/// Runs write there as the invoker (rootless, or through an idmapped bind), so a file
/// in it owned by the invoker may be one a run planted.
struct WritablePlace: Equatable {
    var path: String
    var device: UInt64
    var inode: UInt64
    /// Who can write it, as a refusal names it: "this run", "run 2a9f…".
    var writer: String
}

extension BinaryCheck {
    /// This plan's writable binds and those every run directory under `runBase`
    /// records (live or left for `gc`: a stale record only refuses more). The records
    /// are the supervisors' (a run cannot write the run base: no bind may show it), so
    /// the base must be the supervisor's own and writable by no one else, or nothing
    /// it lists can be trusted to be complete: then refused.
    static func writablePlaces(plan: RunPlan, sources: [Int: OpenedSource], runBase: String) throws(ExecError) -> [WritablePlace] {
        var out = RunRecord.writableSources(plan, sources).map {
            WritablePlace(path: $0.path, device: $0.device, inode: $0.inode, writer: "this run")
        }
        var st = stat()
        guard lstat(runBase, &st) == 0 else { return out }   // no run base: no other run
        let me = geteuid()
        guard st.st_mode & S_IFMT == S_IFDIR, st.st_uid == me || st.st_uid == 0, st.st_mode & 0o022 == 0 else {
            throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: runBase,
                            message: "[binary] require_root_owned: the run base \(runBase) (uid \(st.st_uid), mode \(String(st.st_mode & 0o7777, radix: 8))) is not the supervisor's own, so the other runs' records in it cannot be trusted to name every place a run can write; not run",
                            exitCode: 126)
        }
        for entry in RunDirectory.list(base: runBase) where entry.id != plan.runId {
            let record: RunRecord
            switch RunRecord.load(runDirectory: entry.path) {
            case .none: continue   // being created: nothing of it can write yet
            case .record(let r): record = r
            case .unreadable(let why):
                // Fail closed: a record that cannot be read could name the place a
                // file was planted in.
                throw ExecError(kind: .exec, step: SetupStep.binary.rawValue, subject: entry.path,
                                message: "[binary] require_root_owned: the record of run \(entry.id) cannot be read (\(why)), so the places it can write are unknown; not run",
                                exitCode: 126)
            }
            out += (record.writable ?? []).map {
                WritablePlace(path: $0.path, device: $0.device, inode: $0.inode, writer: "run \(record.runId)")
            }
        }
        return out
    }

    /// The writable place `f` lies in, if any: one of the directories the open walked
    /// through (or the file itself) is a writable source (device and inode, whatever
    /// names them), or the file's place on its filesystem lies beneath the source's
    /// (a bind-mount alias of a subdirectory shares no inode on the walk).
    func writablePlace(holding f: ExecutableFile.Opened) -> WritablePlace? {
        writablePlace(chain: f.directories.map { ($0.device, $0.inode) } + [(f.device, f.inode)], hostPath: f.hostPath,
                      object: (f.device, f.inode), opened: f.fd)
    }

    /// The same for any object: the identities the walk passed (its own last), the
    /// host path of `object` (the file, or the directory holding a symlink), and its
    /// descriptor when it has one. Its place on its filesystem comes from the
    /// kernel's name for the descriptor (else from `hostPath`), resolved, and counts
    /// only if that name still leads to `object` itself: a name is looked up again
    /// by `realpath`, and a run that writes there could swap it, plant a symlink
    /// where the kernel's name for a removed file points (`tool (deleted)`), or move
    /// the file out of an aliased directory (red team, session 45). A place that
    /// cannot be found, or a name that leads elsewhere, counts as writable.
    func writablePlace(chain: [(UInt64, UInt64)], hostPath: String, object: (device: UInt64, inode: UInt64),
                       opened fd: Int32? = nil) -> WritablePlace? {
        guard !writable.isEmpty else { return nil }
        if let w = writable.first(where: { w in chain.contains { $0 == (w.device, w.inode) } }) { return w }
        let unknown = WritablePlace(path: hostPath, device: 0, inode: 0,
                                    writer: "possibly a run (its place on its filesystem could not be found, so sandbox cannot rule that out)")
        guard let resolved = Self.resolved(fd.map { "/proc/self/fd/\($0)" } ?? hostPath, leadingTo: object) else { return unknown }
        let table = FileSystemLocation.table()
        guard let here = FileSystemLocation.of(resolved: resolved, in: table) else { return unknown }
        // A place whose recorded path no longer leads to it (renamed or removed since)
        // cannot be located from here, and is passed over: counting every file on its
        // filesystem as in it refused /usr/bin/true whenever a live run's directory
        // was renamed (red team, session 46). Docs/binary.md, known gaps.
        return writable.first { w in reach(of: w, in: table)?.contains { $0.contains(here) } == true }
    }

    /// A writable place through which a run could write a file on `device`: one on
    /// that filesystem, one beneath which a filesystem on it is mounted read-write (a
    /// partial bind of it included: a second name of a file may lie in the part
    /// shown). For hard links, which stay on one filesystem but may lie in any part
    /// of it.
    func writablePlace(reachingDevice device: UInt64) -> WritablePlace? {
        if let w = writable.first(where: { $0.device == device }) { return w }
        let table = FileSystemLocation.table()
        let text = FileSystemLocation.device(device)
        return writable.first { w in reach(of: w, in: table)?.contains { $0.device == text } == true }
    }

    /// Where on their filesystems a run can write through `w`: its own place and those
    /// of the filesystems mounted read-write beneath it (a bind clones the whole tree:
    /// red team, session 45, a tmpfs at ws/sub bound again at alias/ passed as outside
    /// the writable ws). Nil when its recorded path no longer leads to it (renamed or
    /// removed since it was recorded, by the host or by a run that can write its
    /// parent): then where it is cannot be known from here, and a directory made at
    /// that path since is not it.
    private func reach(of w: WritablePlace, in table: FileSystemLocation.Table) -> [FileSystemLocation]? {
        guard let place = Self.resolved(w.path, leadingTo: (w.device, w.inode)),
              let own = FileSystemLocation.of(resolved: place, in: table) else { return nil }
        return [own] + table.locations(mountedWritableBeneath: place)
    }

    /// `path` resolved (realpath), if that name leads to `object` now: a name is
    /// looked up again, and what it leads to may have been swapped or renamed since.
    private static func resolved(_ path: String, leadingTo object: (device: UInt64, inode: UInt64)) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        // Checked on its bytes, not their text (a name that is not UTF-8 decodes lossily).
        var st = stat()
        guard stat(real, &st) == 0, UInt64(st.st_dev) == object.device, UInt64(st.st_ino) == object.inode else { return nil }
        return String(cString: real)
    }
}
