/* libnftables: the egress firewall is loaded and read with nft_run_cmd_from_buffer
 * (Sources/SandboxKernel/Network/Nftables.swift), never by running nft(8). */
#include <nftables/libnftables.h>
