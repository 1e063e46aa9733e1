/// What `sandbox --version` prints: the release of this source tree and the git
/// revision the binary was built from (`BuildRevision`, written before each build by
/// the RecordRevision plugin; `unknown` outside a git checkout, `-dirty` when
/// tracked files differed from that commit).
enum SandboxVersion {
    static let release = "0.1.0"
    static var text: String { "sandbox \(release) (git \(BuildRevision.git))" }
}
