import ArgumentParser
import SandboxKit

/// `sandbox policies`: every policy a name selects, from where, and what it is.
struct Policies: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policies",
        abstract: "List the policies --policy NAME can select: name, source, extends, description.",
        discussion: """
            Searched in order: each directory of $SANDBOX_POLICY_PATH, the data directory's \
            Policies/, then the policies built into this binary (sources builtin:Policies/…). \
            The first file of a name is the one used; the later ones it overrides are listed under it.
            """)

    func run() throws {
        let catalog = PolicyCatalog()
        print(Policies.table(catalog))
    }

    static func table(_ catalog: PolicyCatalog) -> String {
        let rows = catalog.entries.map { e in
            [e.name, e.source, e.extends.isEmpty ? "-" : e.extends.joinedText(separator: ","), e.description]
        }
        let header = ["NAME", "SOURCE", "EXTENDS", "DESCRIPTION"]
        let widths = (0..<3).map { i in ([header] + rows).map { RunRecord.printable($0[i]).count }.max()! }
        func line(_ cells: [String]) -> String {
            (0..<3).map { RunRecord.printable(cells[$0]).padding(widths[$0] + 2) }.joined() + RunRecord.printable(cells[3])
        }
        var out = [line(header)]
        for (e, row) in zip(catalog.entries, rows) {
            out.append(line(row))
            for o in e.overrides { out.append("    overrides \(RunRecord.printable(o))") }
        }
        return out.joinedText(separator: "\n")
    }
}
