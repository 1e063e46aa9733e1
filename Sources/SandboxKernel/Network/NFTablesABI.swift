/// The nfnetlink and nf_tables numbers the kernel layer speaks on a
/// NETLINK_NETFILTER socket (<linux/netfilter/nfnetlink.h>,
/// <linux/netfilter/nf_tables.h>), written once for the three that use them: the
/// ruleset generation query (`RouteSocket.nftGeneration`), the refusal sets'
/// dumps (`RefusalSets`) and the DNS stub's element batches (`NameSets`).
enum NFTables {
    // nfnetlink: a message's type is its subsystem << 8 | the subsystem's message.
    static let NFNL_SUBSYS_NFTABLES: UInt8 = 10
    static let NFNL_MSG_BATCH_BEGIN: UInt16 = 16   // NLMSG_MIN_TYPE
    static let NFNL_MSG_BATCH_END: UInt16 = 17
    static func message(_ m: UInt16) -> UInt16 { UInt16(NFNL_SUBSYS_NFTABLES) << 8 | m }

    // enum nf_tables_msg_types
    static let NFT_MSG_NEWSETELEM = message(12)
    static let NFT_MSG_GETSETELEM = message(13)
    static let NFT_MSG_DELSETELEM = message(14)
    static let NFT_MSG_NEWGEN = message(15)
    static let NFT_MSG_GETGEN = message(16)

    // struct nfgenmsg { u8 nfgen_family; u8 version; __be16 res_id; }
    static let NFPROTO_INET: UInt8 = 1
    static let NFNETLINK_V0: UInt8 = 0

    // enum nft_gen_attributes
    static let NFTA_GEN_ID: UInt16 = 1
    // enum nft_set_elem_list_attributes
    static let NFTA_SET_ELEM_LIST_TABLE: UInt16 = 1
    static let NFTA_SET_ELEM_LIST_SET: UInt16 = 2
    static let NFTA_SET_ELEM_LIST_ELEMENTS: UInt16 = 3
    // enum nft_list_attributes
    static let NFTA_LIST_ELEM: UInt16 = 1
    // enum nft_set_elem_attributes
    static let NFTA_SET_ELEM_KEY: UInt16 = 1
    static let NFTA_SET_ELEM_TIMEOUT: UInt16 = 4
    static let NFTA_SET_ELEM_EXPR: UInt16 = 7
    static let NFTA_SET_ELEM_EXPRESSIONS: UInt16 = 11
    // enum nft_data_attributes, nft_expr_attributes, nft_counter_attributes
    static let NFTA_DATA_VALUE: UInt16 = 1
    static let NFTA_EXPR_NAME: UInt16 = 1
    static let NFTA_EXPR_DATA: UInt16 = 2
    static let NFTA_COUNTER_PACKETS: UInt16 = 2

    /// An attribute that holds attributes (<linux/netlink.h>).
    static let NLA_F_NESTED: UInt16 = 0x8000
}
