import CNftables
import CSandbox
import FoundationEssentials
import Glibc

/// libnftables, in the network namespace of the calling thread: a context is
/// created, used and freed within one call, so its netlink socket belongs to the
/// namespace the thread is in (a namespace thread from `Netns.run`, or the
/// supervisor's own thread for the host table). Never nft(8): no exec, no PATH, and
/// the error text comes back to us.
///
/// The library is opened on first use (`dlopen`), not linked: only egress runs and
/// the network probe need it, and loading it with the six libraries behind it
/// (libnftnl, libmnl, libxtables, libjansson, libgmp) cost every other run's start-up.
/// The header gives the constants (CNftables links nothing).
enum Nftables {
    /// libnftables keeps some process-wide state (symbol tables, the parser's
    /// scanner setup); contexts are used one at a time.
    private static let lock = Lock()

    /// Runs `commands` (nft syntax, one transaction per call) and returns what nft
    /// printed (JSON when `json`). Throws with nft's own error text.
    static func run(_ commands: String, json: Bool = false, operation: String, subject: String) throws(KernelError) -> String {
        lock.lock()
        defer { lock.unlock() }
        let nft: Library
        switch library {
        case .success(let l): nft = l
        case .failure(let why):
            throw KernelError(operation: operation, subject: subject, errno: ENOENT,
                              detail: "libnftables is needed for egress and cannot be loaded (\(why.text)); install it (Debian: apt-get install libnftables1)")
        }
        guard let ctx = nft.ctxNew(0) else {
            throw KernelError(operation: operation, subject: subject, errno: ENOMEM, detail: "nft_ctx_new failed")
        }
        defer { nft.ctxFree(ctx) }
        if json { nft.outputSetFlags(ctx, UInt32(NFT_CTX_OUTPUT_JSON)) }
        _ = nft.bufferOutput(ctx)
        _ = nft.bufferError(ctx)
        errno = 0
        let r = nft.runFromBuffer(ctx, commands)
        let savedErrno = errno
        if r != 0 {
            let text = nft.errorBuffer(ctx).map { String(cString: $0) } ?? ""
            let message = text.trimmed
            throw KernelError(operation: operation, subject: subject,
                               detail: message.isEmpty ? "libnftables failed (errno \(savedErrno))" : message)
        }
        return nft.outputBuffer(ctx).map { String(cString: $0) } ?? ""
    }

    /// The soname the -dev package's link name points to.
    static let soname = "libnftables.so.1"

    struct LoadError: Error { let text: String }

    /// The functions used, resolved from the opened library, typed as libnftables.h declares them.
    struct Library {
        let ctxNew: @convention(c) (UInt32) -> OpaquePointer?
        let ctxFree: @convention(c) (OpaquePointer?) -> Void
        let outputSetFlags: @convention(c) (OpaquePointer?, UInt32) -> Void
        let bufferOutput: @convention(c) (OpaquePointer?) -> Int32
        let bufferError: @convention(c) (OpaquePointer?) -> Int32
        let runFromBuffer: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> Int32
        let errorBuffer: @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?
        let outputBuffer: @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>?

        // The types above are libnftables.h's (a reference to the declarations
        // themselves would link the library again).
        private static func typed<T>(_ handle: UnsafeMutableRawPointer, _ name: String) throws(LoadError) -> T {
            guard let sym = dlsym(handle, name) else { throw LoadError(text: "\(name): \(lastDLError())") }
            return unsafeBitCast(sym, to: T.self)
        }

        init(_ h: UnsafeMutableRawPointer) throws(LoadError) {
            ctxNew = try Self.typed(h, "nft_ctx_new")
            ctxFree = try Self.typed(h, "nft_ctx_free")
            outputSetFlags = try Self.typed(h, "nft_ctx_output_set_flags")
            bufferOutput = try Self.typed(h, "nft_ctx_buffer_output")
            bufferError = try Self.typed(h, "nft_ctx_buffer_error")
            runFromBuffer = try Self.typed(h, "nft_run_cmd_from_buffer")
            errorBuffer = try Self.typed(h, "nft_ctx_get_error_buffer")
            outputBuffer = try Self.typed(h, "nft_ctx_get_output_buffer")
        }
    }

    /// Opened once per process, on first use; never closed (contexts may be in use).
    private static let library: Result<Library, LoadError> = {
        guard let handle = dlopen(soname, RTLD_NOW | RTLD_LOCAL) else {
            return .failure(LoadError(text: "\(soname): \(lastDLError())"))
        }
        // libnftables and the six libraries behind it, a page at a time like the rest
        // of the supervisor (sandbox_text_paging.h): an egress run's peak RSS 8.7 ->
        // 8.2 MiB (what they touch before this, loading, relocating and their
        // constructors, keeps the 64 KiB around each fault).
        _ = sbx_map_loaded_objects_page_by_page()
        do throws(LoadError) { return .success(try Library(handle)) } catch { return .failure(error) }
    }()

    private static func lastDLError() -> String {
        dlerror().map { String(cString: $0) } ?? "unknown dlerror"
    }
}
