/// Writes flows in conntrack's save syntax (`-o save`): one command line per
/// entry that `-R` can load again, e.g.
/// `-A -t 99 -u SEEN_REPLY,ASSURED -w 3 -s 1.1.1.1 -d 2.2.2.2 -r 2.2.2.2 -q 1.1.1.1 -p tcp --sport 10 ...`.
/// Like conntrack it leaves out what a create cannot set or need not
/// carry: mark, secmark, labels, helper, counters, use, id and timestamps.
package struct SaveFormatter {
    /// The command word each line starts with: "-A", or "-D" for deleted entries.
    package var command: StaticString

    package init(command: StaticString = "-A") {
        self.command = command
    }

    /// The status bits the save syntax carries, in bit order.
    private static let savedStatus: [(Status, StaticString)] = [
        (.expected, "EXPECTED"), (.seenReply, "SEEN_REPLY"), (.assured, "ASSURED"), (.fixedTimeout, "FIXED_TIMEOUT"),
    ]

    package func write(_ flow: Flow, to out: OutputBuffer) {
        out.append(command)
        out.append(" -t "); out.append(decimal: UInt64(flow.timeout ?? 0))
        out.append(" -u ")
        let status = flow.status ?? []
        var any = false
        for (bit, name) in Self.savedStatus where status.contains(bit) {
            if any { out.append(UInt8(ascii: ",")) }
            out.append(name)
            any = true
        }
        if !any { out.append("UNSET") }
        if let zone = flow.zone, zone != 0 {
            out.append(" -w "); out.append(decimal: UInt64(zone))
        } else if let zone = flow.orig?.zone, zone != 0 {
            out.append(" --orig-zone "); out.append(decimal: UInt64(zone))
        } else if let zone = flow.reply?.zone, zone != 0 {
            out.append(" --reply-zone "); out.append(decimal: UInt64(zone))
        }
        let orig = flow.orig ?? Tuple()
        let reply = flow.reply ?? Tuple()
        if let a = orig.src { out.append(" -s "); out.append(address: a) }
        if let a = orig.dst { out.append(" -d "); out.append(address: a) }
        // A NAT-ed direction is written as the NAT option, so that -R asks
        // the kernel for the same translation.
        if let a = reply.src {
            out.append(status.contains(.dstNat) && a != orig.dst ? " -g " : " -r ")
            out.append(address: a)
        }
        if let a = reply.dst {
            out.append(status.contains(.srcNat) && a != orig.src ? " -n " : " -q ")
            out.append(address: a)
        }
        let proto = flow.proto ?? 0
        out.append(" -p ")
        switch proto {
        case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp,
             IPProto.gre, IPProto.icmp, IPProto.icmpv6:
            out.append(Names.proto(proto))
        default:
            out.append(decimal: UInt64(proto))
        }
        switch proto {
        case IPProto.tcp, IPProto.udp, IPProto.udplite, IPProto.sctp, IPProto.dccp:
            option(" --sport ", orig.srcPort, out)
            option(" --dport ", orig.dstPort, out)
            option(" --reply-port-src ", reply.srcPort, out)
            option(" --reply-port-dst ", reply.dstPort, out)
        case IPProto.gre:
            option(" --srckey ", orig.srcPort, out)
            option(" --dstkey ", orig.dstPort, out)
            option(" --reply-key-src ", reply.srcPort, out)
            option(" --reply-key-dst ", reply.dstPort, out)
        case IPProto.icmp:
            option(" --icmp-type ", orig.icmpType, out)
            option(" --icmp-code ", orig.icmpCode, out)
            option(" --icmp-id ", orig.icmpID, out)
        case IPProto.icmpv6:
            option(" --icmpv6-type ", orig.icmpType, out)
            option(" --icmpv6-code ", orig.icmpCode, out)
            option(" --icmpv6-id ", orig.icmpID, out)
        default:
            break
        }
        if let info = flow.protoInfo, let state = Names.state(info) {
            out.append(" --state "); out.append(state)
        }
        if case .sctp(let sctp)? = flow.protoInfo {
            option(" --orig-vtag ", sctp.vtagOriginal, out)
            option(" --reply-vtag ", sctp.vtagReply, out)
        }
        // A tracked DCCP entry's role (CT_DCCP_ROLE_CLIENT 0, _SERVER 1),
        // which -I needs beside --state.
        if case .dccp(let dccp)? = flow.protoInfo, let role = dccp.role {
            switch role {
            case 0: out.append(" --role client")
            case 1: out.append(" --role server")
            default: break
            }
        }
        out.append(UInt8(ascii: "\n"))
    }

    private func option<T: BinaryInteger>(_ name: StaticString, _ value: T?, _ out: OutputBuffer) {
        guard let value else { return }
        out.append(name)
        out.append(decimal: UInt64(value))
    }
}
