import CNftables
import Foundation
import Glibc

/// libnftables, in the network namespace of the calling thread: a context is
/// created, used and freed within one call, so its netlink socket belongs to the
/// namespace the thread is in (a namespace thread from `Netns.run`, or the
/// supervisor's own thread for the host table). Never nft(8): no exec, no PATH, and
/// the error text comes back to us.
enum Nftables {
    /// libnftables keeps some process-wide state (symbol tables, the parser's
    /// scanner setup); contexts are used one at a time.
    private static let lock = NSLock()

    /// Runs `commands` (nft syntax, one transaction per call) and returns what nft
    /// printed (JSON when `json`). Throws with nft's own error text.
    static func run(_ commands: String, json: Bool = false, operation: String, subject: String) throws(KernelError) -> String {
        lock.lock()
        defer { lock.unlock() }
        guard let ctx = nft_ctx_new(0) else {
            throw KernelError(operation: operation, subject: subject, errno: ENOMEM, detail: "nft_ctx_new failed")
        }
        defer { nft_ctx_free(ctx) }
        if json { nft_ctx_output_set_flags(ctx, UInt32(NFT_CTX_OUTPUT_JSON)) }
        _ = nft_ctx_buffer_output(ctx)
        _ = nft_ctx_buffer_error(ctx)
        errno = 0
        let r = nft_run_cmd_from_buffer(ctx, commands)
        let savedErrno = errno
        if r != 0 {
            let text = nft_ctx_get_error_buffer(ctx).map { String(cString: $0) } ?? ""
            let message = text.trimmed
            throw KernelError(operation: operation, subject: subject,
                               detail: message.isEmpty ? "libnftables failed (errno \(savedErrno))" : message)
        }
        return nft_ctx_get_output_buffer(ctx).map { String(cString: $0) } ?? ""
    }
}
