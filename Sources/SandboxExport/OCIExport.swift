import FoundationEssentials
import SandboxPlan
import SandboxVocabulary

/// A compiled plan as an OCI bundle (Docs/scale-out.md): `config.json`, an empty
/// `rootfs` holding only the plan's symlinks, the in-memory files' text, and the
/// entrypoint directory (the plan's Landlock part). Built from the plan, never the
/// policy, so the bundle says what `sandbox exec` would have done on this host.
///
/// The runtime spec has no Landlock field: with Landlock on, `process.args` starts
/// with the sandbox binary (bound read-only at ``entrypointBinary``) in its
/// `landlock-exec` mode, which builds the plan's ruleset with the executor's code,
/// restricts itself and execs the command.
public struct OCIBundle: Sendable, Equatable {
    public var spec: OCISpec
    /// Files to write, relative to the bundle.
    public var files: [(path: String, text: String)]
    /// Symlinks to make in `rootfs` (the plan's `symlink` steps).
    public var symlinks: [(path: String, target: String)]
    /// Directories to make in `rootfs` with their mode: the mount points of tmpfs
    /// steps. runc gives a tmpfs the mode of an existing mount point ahead of the
    /// config's `mode=`, so a mount point it made itself (0755) would turn a
    /// `mode=1777` /tmp into 0755 from the bundle's second run on.
    public var directories: [(path: String, mode: UInt16)] = []

    public static func == (a: OCIBundle, b: OCIBundle) -> Bool {
        a.spec == b.spec && a.files.map(\.path) == b.files.map(\.path) && a.files.map(\.text) == b.files.map(\.text)
            && a.symlinks.map(\.path) == b.symlinks.map(\.path) && a.symlinks.map(\.target) == b.symlinks.map(\.target)
            && a.directories.map(\.path) == b.directories.map(\.path) && a.directories.map(\.mode) == b.directories.map(\.mode)
    }

    /// Writes the bundle into `directory` (created; an existing `config.json` there is
    /// refused, so no bundle is overwritten by mistake).
    public func write(to directory: String) throws {
        let fm = FileManager.default
        let config = directory + "/config.json"
        if fm.fileExists(atPath: config) {
            throw ExportError("bundle \(directory): a config.json is already there; give an empty or new directory")
        }
        try fm.createDirectory(atPath: directory + "/rootfs", withIntermediateDirectories: true)
        for dir in directories {
            let path = directory + "/rootfs" + dir.path
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            // Set after creating: the umask would clear bits of a mode given to createDirectory.
            try fm.setAttributes([.posixPermissions: Int(dir.mode)], ofItemAtPath: path)
        }
        for link in symlinks {
            let path = directory + "/rootfs" + link.path
            try fm.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: path, withDestinationPath: link.target)
        }
        for file in files {
            let path = directory + "/" + file.path
            try fm.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            guard fm.createFile(atPath: path, contents: Data(file.text.utf8), attributes: [.posixPermissions: 0o644]) else {
                throw ExportError("bundle \(directory): cannot write \(file.path)")
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(spec) + Data("\n".utf8)).write(to: URL(fileURLWithPath: config))
    }
}

public struct ExportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum OCIExport {
    /// Where the entrypoint's files are inside the container.
    public static let entrypointDirectory = "/.sandbox"
    public static let entrypointBinary = entrypointDirectory + "/sandbox"
    public static let entrypointRules = entrypointDirectory + "/landlock.json"
    /// The sandbox subcommand the entrypoint runs.
    public static let entrypointCommand = "landlock-exec"

    /// The sandbox binary for the entrypoint: its path on the host and the
    /// directories of the shared libraries it loads that the plan binds nowhere
    /// (each bound read-only at its own path; the Landlock ruleset grants the
    /// command none of them).
    public struct Entrypoint: Sendable, Equatable {
        public var binary: String
        public var libraryDirectories: [String]
        public init(binary: String, libraryDirectories: [String]) {
            self.binary = binary; self.libraryDirectories = libraryDirectories
        }
    }

    public static func bundle(_ plan: RunPlan, entrypoint: Entrypoint) throws -> OCIBundle {
        var mounts: [OCISpec.Mount] = []
        var masked: [String] = []
        var readonly: [String] = []
        var symlinks: [(path: String, target: String)] = []
        var files: [(path: String, text: String)] = []
        var directories: [(path: String, mode: UInt16)] = []
        for step in plan.mounts {
            switch step.kind {
            case .bind:
                guard let source = step.source else { throw ExportError("\(step.summary): a bind without a source") }
                mounts.append(.init(destination: step.destination, type: "bind", source: source,
                                    options: ["rbind", step.readOnly ? "ro" : "rw", "nosuid", "nodev"]))
            case .tmpfs:
                var options = ["nosuid", "nodev"] + (step.options?.split(separator: ",").map(String.init) ?? [])
                if step.readOnly { options.append("ro") }
                mounts.append(.init(destination: step.destination, type: "tmpfs", source: "tmpfs", options: options))
                // Only a mount point in the root itself (one under another mount is made there).
                if hostSource(of: step.destination, in: plan.mounts) == nil,
                   !plan.mounts.contains(where: { $0.kind == .tmpfs && step.destination.hasPrefix($0.destination + "/") }) {
                    let mode = options.first { $0.hasPrefix("mode=") }.flatMap { UInt16($0.dropFirst(5), radix: 8) } ?? 0o1777
                    directories.append((step.destination, mode))
                }
            case .proc:
                mounts.append(.init(destination: step.destination, type: "proc", source: "proc",
                                    options: ["nosuid", "noexec", "nodev"]))
                // What the child does to its procfs (child.c, do_proc): knobs read-only,
                // host-wide kernel information hidden.
                readonly += procReadOnly.map { step.destination + "/" + $0 }
                masked += procMasked.map { step.destination + "/" + $0 }
            case .dev:
                let d = step.destination
                mounts.append(.init(destination: d, type: "tmpfs", source: "tmpfs",
                                    options: ["nosuid", "strictatime", "mode=755", "size=65536k"]))
                mounts.append(.init(destination: d + "/pts", type: "devpts", source: "devpts",
                                    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]))
                mounts.append(.init(destination: d + "/shm", type: "tmpfs", source: "shm",
                                    options: ["nosuid", "nodev", "mode=1777", "size=65536k"]))
            case .symlink:
                symlinks.append((step.destination, step.source ?? ""))
            case .protect:
                readonly.append(step.destination)
            case .mask:
                masked.append(step.destination)
            case .pin:
                // A mount point cannot be renamed away: the same host directory bound
                // onto itself, as the executor does.
                if let source = hostSource(of: step.destination, in: plan.mounts) {
                    mounts.append(.init(destination: step.destination, type: "bind", source: source,
                                        options: ["rbind", "rw", "nosuid", "nodev"]))
                }
            case .file:
                guard let file = step.inMemoryFile, let text = plan.network.text(of: file) else {
                    throw ExportError("\(step.summary): the plan has no text for it")
                }
                let path = "files" + file.destination
                files.append((path, text))
                mounts.append(.init(destination: step.destination, type: "bind", source: path,
                                    options: ["bind", "ro", "nosuid", "nodev", "noexec"]))
            }
        }

        var args = plan.process.argv
        let landlockOn = plan.landlock.mode != .off && plan.landlock.abi > 0
        if landlockOn {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let rules = String(decoding: try encoder.encode(plan.landlock), as: UTF8.self) + "\n"
            files.append(("entrypoint/landlock.json", rules))
            // The mount point of the binary's bind, inside the read-only entrypoint bind.
            files.append(("entrypoint/sandbox", ""))
            mounts.append(.init(destination: entrypointDirectory, type: "bind", source: "entrypoint",
                                options: ["rbind", "ro", "nosuid", "nodev"]))
            mounts.append(.init(destination: entrypointBinary, type: "bind", source: entrypoint.binary,
                                options: ["bind", "ro", "nosuid", "nodev"]))
            for dir in entrypoint.libraryDirectories where !isBound(dir, in: plan.mounts) {
                mounts.append(.init(destination: dir, type: "bind", source: dir, options: ["rbind", "ro", "nosuid", "nodev"]))
            }
            args = [entrypointBinary, entrypointCommand, "--rules", entrypointRules, "--"] + args
        }

        let caps = plan.capabilities.keep.map { $0.uppercased() }
        var namespaces = ["pid", "network", "ipc", "uts", "mount", "cgroup"].map { OCISpec.Namespace(type: $0) }
        namespaces.sort { $0.type < $1.type }
        let gaps = ExportGaps.of(plan, target: .oci)
        let spec = OCISpec(
            process: .init(user: .init(uid: plan.process.uid, gid: plan.process.gid), args: args,
                           env: plan.process.env, cwd: plan.process.workdir,
                           capabilities: .init(bounding: caps, effective: caps, inheritable: caps, permitted: caps, ambient: caps),
                           rlimits: plan.process.rlimits.map { .init(type: "RLIMIT_" + $0.name.uppercased(), hard: $0.hard, soft: $0.soft) }),
            root: .init(path: "rootfs", readonly: true),
            hostname: plan.process.hostname,
            mounts: mounts,
            linux: .init(namespaces: namespaces, resources: resources(plan.resources), seccomp: seccomp(plan.seccomp),
                         maskedPaths: masked, readonlyPaths: readonly),
            annotations: [ExportGaps.annotation: gaps.map(\.line).joinedText(separator: "\n"),
                          "sandbox/policy": plan.policy.name])
        return OCIBundle(spec: spec, files: files, symlinks: symlinks, directories: directories)
    }

    /// The kernel knobs `child.c` makes read-only and the files it hides in a procfs.
    static let procReadOnly = ["sys", "sysrq-trigger", "irq", "bus", "fs"]
    static let procMasked = [
        "kcore", "keys", "timer_list", "timer_stats", "sched_debug", "latency_stats", "interrupts",
        "acpi", "asound", "scsi", "kallsyms", "kpageflags", "kpagecount", "kpagecgroup", "slabinfo",
        "vmallocinfo", "iomem", "ioports", "buddyinfo", "pagetypeinfo", "zoneinfo", "kmsg", "config.gz", "cmdline",
    ]

    /// The host path under the innermost bind holding `destination`; nil when no bind does.
    static func hostSource(of destination: String, in mounts: [MountStep]) -> String? {
        var best: (length: Int, source: String)?
        for m in mounts where m.kind == .bind {
            guard let source = m.source else { continue }
            let d = m.destination
            let under = destination == d || destination.hasPrefix(d == "/" ? "/" : d + "/")
            guard under, d.count > (best?.length ?? -1) else { continue }
            best = (d.count, source + String(destination.dropFirst(d.count)))
        }
        return best?.source
    }

    /// Whether the plan already binds `dir` at its own path (then the libraries in it
    /// are there for the entrypoint).
    static func isBound(_ dir: String, in mounts: [MountStep]) -> Bool {
        mounts.contains { m in
            guard m.kind == .bind, let s = m.source, s == m.destination else { return false }
            return dir == s || dir.hasPrefix(s + "/")
        }
    }

    static func resources(_ r: ResourcePlan) -> OCISpec.Resources? {
        guard r.needsCgroup else { return nil }
        var out = OCISpec.Resources()
        if r.memoryBytes != nil || r.swapBytes != nil {
            let limit = r.memoryBytes.map { Int64(clamping: $0) }
            // The OCI swap is memory plus swap; without a memory limit there is nothing to add to.
            let swap = limit.flatMap { l in r.swapBytes.map { l + Int64(clamping: $0) } }
            out.memory = .init(limit: limit, swap: swap)
        }
        if let quota = r.cpuQuotaUs { out.cpu = .init(quota: Int64(clamping: quota), period: r.cpuPeriodUs) }
        if let pids = r.pids { out.pids = .init(limit: Int64(clamping: pids)) }
        // io.weight (1…10000) back to blkio's 10…1000, the inverse of runc's conversion.
        if let w = r.ioWeight { out.blockIO = .init(weight: UInt16(10 + (min(max(w, 1), 10000) - 1) * 990 / 9999)) }
        return out
    }

    /// Whether the filter's default action refuses (so what no rule allows is refused).
    static func defaultDenies(_ s: SeccompPlan) -> Bool {
        ![.allow, .log].contains(s.defaultAction)
    }

    /// The plan's seccomp rules as the runtime's profile: the same rules in the same
    /// order (runc compiles them with libseccomp, as the executor does). The planner's
    /// socket-family check becomes one allow rule per family on socket(2)'s first
    /// argument (the profile's unconditional allow of socket is left out), so other
    /// families meet the default action (EPERM rather than the executor's EAFNOSUPPORT).
    /// `SCMP_ACT_NOTIFY` needs the supervisor's listener: it becomes EPERM.
    static func seccomp(_ s: SeccompPlan) -> OCISpec.Seccomp? {
        guard s.enabled else { return nil }
        func action(_ a: SeccompAction, _ errno: UInt32?) -> (String, UInt32?) {
            a == .notify ? (SeccompAction.errno.rawValue, 1) : (a.rawValue, a == .errno ? errno : nil)
        }
        let families = defaultDenies(s) ? s.socketFamilies : nil
        var syscalls: [OCISpec.Syscall] = []
        for rule in s.rules {
            var names = rule.syscalls
            if families != nil, rule.action == .allow, rule.args.isEmpty { names.removeAll { $0 == "socket" } }
            if names.isEmpty { continue }
            let (a, e) = action(rule.action, rule.errno)
            syscalls.append(.init(names: names, action: a, errnoRet: e,
                                  args: rule.args.isEmpty ? nil : rule.args.map {
                                      .init(index: $0.index, value: $0.value, valueTwo: $0.valueTwo, op: $0.op.rawValue)
                                  }))
        }
        for family in families ?? [] {
            syscalls.append(.init(names: ["socket"], action: SeccompAction.allow.rawValue, errnoRet: nil,
                                  args: [.init(index: 0, value: UInt64(family.number), valueTwo: 0, op: SeccompOperator.equal.rawValue)]))
        }
        let (d, de) = action(s.defaultAction, s.defaultErrno)
        return .init(defaultAction: d, defaultErrnoRet: de, architectures: [architecture(s.arch)], syscalls: syscalls)
    }

    /// libseccomp's name for the plan's architecture.
    static func architecture(_ arch: String) -> String {
        switch arch {
        case "x86_64": "SCMP_ARCH_X86_64"
        case "aarch64": "SCMP_ARCH_AARCH64"
        default: "SCMP_ARCH_" + arch.uppercased()
        }
    }
}
