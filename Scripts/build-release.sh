#!/usr/bin/env bash
# The release build, as the README installs it and every benchmark measures it:
# the Swift runtime linked in (--static-swift-stdlib), the C++ runtime too
# (SANDBOX_STATIC_CXX, Package.swift), and every target — the dependencies
# (ArgumentParser, TOMLKit and its C++ TOML parser) as well as ours — compiled with
# one section per function, so that Linking/text-order.txt can lay out the functions
# a cold run calls together. Package.swift can set that flag for our targets only;
# the dependencies' functions stayed where their object files put them, each call
# into one mapping 64 KiB of text around it (Docs/benchmarks.md, session 38). And
# every target reaches concrete generic metadata by accessor, not by mangled name, as
# Package.swift asks of ours: the linker keeps one copy of each shared generic
# specialisation, often a dependency's, whose first call demangled its types and
# searched the conformance records (a sixteenth of a refused start).
#
# An incremental build can be wrong: after a change to one module's struct layout,
# SwiftPM rebuilt that module but not SandboxServe, whose optimised code kept the old
# layout (session 47: a serve that corrupted its heap on its first request). Before
# measuring a changed tree, build from a clean .build, or touch the dependents'
# sources (Sources/SandboxKit, SandboxServe, sandbox).
#
#   Scripts/build-release.sh                      # .build/release/sandbox
#   Scripts/build-release.sh --scratch-path DIR   # extra arguments go to swift build
set -euo pipefail
cd "$(dirname "$0")/.."
SANDBOX_STATIC_CXX=1 exec swift build -c release --static-swift-stdlib --disable-local-rpath \
    -Xswiftc -Xfrontend -Xswiftc -function-sections \
    -Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors \
    -Xcc -ffunction-sections -Xcxx -ffunction-sections "$@"
