import ArgumentParser
import FoundationEssentials
import Glibc
import SandboxExecutor
import SandboxKernel
import SandboxPlan
import SandboxPolicy

/// `sandbox doctor [--json]`: every feature with its state and what a missing one
/// disables (`Diagnosis.features`), then each shipped policy compiled for this host
/// and invoker and checked against what was found (`Diagnosis.verdict`). Exit 0
/// when every shipped policy can run here, 1 when one cannot (named, with the key
/// and why) or none was found.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report what this host supports, what each missing feature disables, and which shipped policies can run here.",
        discussion: "Exit status: 0 when every shipped policy can run on this host as this user; 1 when one cannot (each is named with the key at fault and why) or no shipped policy was found.")

    @Flag(name: .long, help: "Print the report as JSON (stable field names: DoctorReport).")
    var json = false

    func run() throws {
        let probe = HostProbe.probe()
        let features = HostFeatures.probe()
        let idmapPaths = probe.uid == 0 ? Set([probe.cwd, "/tmp", probe.home]).sorted() : []
        // Every policy a name selects: the built-in ones, or what overrides them.
        var verdicts = PolicyCatalog().entries.map { verdict($0.source, probe: probe, features: features) }
        verdicts.sort { $0.name < $1.name }
        let report = DoctorReport(
            kernel: probe.kernelRelease, arch: probe.arch, invokerUID: probe.uid, rootless: probe.uid != 0,
            features: Diagnosis.features(features, idmapPaths: idmapPaths, idmap: MountSources.idmapProblem(at:),
                                         networkNotes: probe.uid == 0 ? EgressNetwork.probe() : []),
            policies: verdicts, policyDirectory: DataDirectory.locate()?.policies)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(text(report, cwd: probe.cwd))
        }
        Glibc.exit(report.ok ? 0 : 1)
    }

    /// Load, compile for this host (the planner's refusals are blockers), then the
    /// plan against the features.
    func verdict(_ path: String, probe: HostProbe, features: HostFeatures) -> DoctorReport.PolicyVerdict {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let loader = PolicyLoader(searchPath: PolicyLoader.defaultSearchPath())
        let policy: Policy
        do { policy = try loader.load(path: path) } catch let e as PolicyError {
            return .init(name: name, source: path, blockers: e.diagnostics.map { .init(key: $0.keyPath ?? "policy", reason: "\($0)") }, without: [])
        } catch {
            return .init(name: name, source: path, blockers: [.init(key: "policy", reason: "\(error)")], without: [])
        }
        do {
            let plan = try PlanCompiler(host: hostFacts(probe)).compile(policy, argv: ["/bin/sh"], runId: "doctor", digest: false)
            let (blockers, without) = Diagnosis.verdict(plan, on: features, idmap: MountSources.idmapProblem(at:))
            return .init(name: policy.name, source: path, blockers: blockers, without: without)
        } catch let e as PlanError {
            return .init(name: policy.name, source: path, blockers: [.init(key: e.key, reason: e.message)], without: [])
        } catch {
            return .init(name: policy.name, source: path, blockers: [.init(key: "plan", reason: "\(error)")], without: [])
        }
    }

    func text(_ r: DoctorReport, cwd: String) -> String {
        var out = ["kernel: \(r.kernel) (\(r.arch))",
                   "invoker: uid \(r.invokerUID)" + (r.rootless ? " (rootless: user namespace)" : " (root)"), "", "features:"]
        let width = (r.features.map(\.name.count).max() ?? 0) + 2
        for f in r.features {
            out.append("  " + f.name.padding(width) + f.state.rawValue.padding(16) + f.detail)
            for d in f.disables { out.append("      disables: \(d)") }
            for u in f.unreported { out.append("      not reported: \(u)") }
            for n in f.notes { out.append("      \(n)") }
        }
        out.append("")
        out.append("policies (sandbox policies lists them), compiled for a run from \(cwd) as uid \(r.invokerUID):")
        if r.policies.isEmpty { out.append("  none found") }
        let nameWidth = max(12, (r.policies.map(\.name.count).max() ?? 0) + 2)
        for p in r.policies {
            out.append("  " + p.name.padding(nameWidth) + (p.runs ? "runs" : "cannot run here"))
            if !BuiltIn.isBuiltIn(p.source) { out.append("      from \(p.source)") }
            for b in p.blockers { out.append("      \(b.key): \(b.reason)") }
            for w in p.without { out.append("      runs without: \(w)") }
        }
        let blocked = r.policies.filter { !$0.runs }
        if !blocked.isEmpty {
            out.append("")
            out.append("cannot run on this host as uid \(r.invokerUID): "
                       + blocked.map { "\($0.name) (\($0.blockers.map(\.key).joinedText(separator: ", ")))" }.joinedText(separator: "; "))
        }
        return out.joinedText(separator: "\n")
    }
}
