/* libnftables: the egress firewall is loaded and read with nft_run_cmd_from_buffer
 * (Sources/SandboxKernel/Network/Nftables.swift), never by running nft(8). Only the
 * declarations: the library is opened with dlopen on first use, not linked. */
#include <nftables/libnftables.h>
