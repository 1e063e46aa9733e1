import Testing
@testable import SandboxAudit
