#!/usr/bin/env bash
# Captures ctnetlink messages from this kernel as the decoder's byte fixtures.
# Each fixture is made in a private network namespace that holds exactly the
# entries it describes; beside each NAME-N.bin, NAME.conntrack.txt keeps what
# conntrack 1.4.7 printed for the same entries (-o extended,id,labels,ktimestamp;
# NAME.default.txt plain -L, NAME.save.txt -o save, NAME.xml.txt -o xml,labels,ktimestamp)
# Usage: capture-fixtures.sh CTL_CAPTURE_BINARY OUTPUT_DIR   (as root)
set -euo pipefail
capture=$1
out=$2
mkdir -p "$out"
ns="ctlcap-$$"
labelconf=/etc/xtables/connlabel.conf
made_labelconf=0
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    if [ "$made_labelconf" = 1 ]; then rm -f "$labelconf"; rmdir /etc/xtables 2>/dev/null || true; fi
}
trap cleanup EXIT
if [ ! -e "$labelconf" ]; then
    mkdir -p /etc/xtables
    printf '# ctl fixtures\n0 zero\n3 three\n70 seventy\n127 last\n' > "$labelconf"
    made_labelconf=1
fi
cp "$labelconf" "$out/connlabel.conf"

fixture() {
    local name=$1; shift
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1
    ip netns exec "$ns" bash -c "$*" 2>/dev/null
    rm -f "$out/$name"-*.bin
    ip netns exec "$ns" "$capture" "$out/$name" >/dev/null
    ip netns exec "$ns" conntrack -L -o extended,id,labels,ktimestamp > "$out/$name.conntrack.txt" 2>/dev/null
    ip netns exec "$ns" conntrack -L > "$out/$name.default.txt" 2>/dev/null
    ip netns exec "$ns" conntrack -L -o save > "$out/$name.save.txt" 2>/dev/null
    ip netns exec "$ns" conntrack -L -o xml,labels,ktimestamp > "$out/$name.xml.txt" 2>/dev/null
    ip netns del "$ns"
    echo "fixture $name: $(ls "$out/$name"-*.bin | wc -l) message(s)"
}

T="-t 3000"
fixture tcp "conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1234 --dport 80 --state ESTABLISHED -u SEEN_REPLY,ASSURED -m 7 $T"
fixture tcp-syn-sent "conntrack -I -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 1 --dport 65535 --state SYN_SENT $T"
fixture udp "conntrack -I -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 53 --dport 5353 $T"
fixture udplite "conntrack -I -p udplite -s 10.0.0.1 -d 10.0.0.2 --sport 7 --dport 8 $T"
fixture sctp "conntrack -I -p sctp -s 10.0.0.1 -d 10.0.0.2 --sport 9 --dport 10 --state ESTABLISHED --orig-vtag 305419896 --reply-vtag 4 $T"
fixture dccp "conntrack -I -p dccp -s 10.0.0.1 -d 10.0.0.2 --sport 11 --dport 12 --state OPEN --role client $T"
fixture gre "conntrack -I -p gre -s 10.0.0.1 -d 10.0.0.2 --srckey 5 --dstkey 65535 $T"
fixture icmp "conntrack -I -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 4660 $T"
fixture icmpv6 "conntrack -I -p icmpv6 -s 2001:db8::1 -d ::ffff:10.1.2.3 --icmpv6-type 128 --icmpv6-code 0 --icmpv6-id 77 $T"
fixture unknown "conntrack -I -p 200 -s 10.0.0.1 -d 10.0.0.2 -m 4294967295 $T"
fixture tcp6-zone "conntrack -I -p tcp -s fe80::1 -d 2001:db8:0:0:1:0:0:1 --sport 40000 --dport 443 --state TIME_WAIT -w 65535 $T"
# Real traffic: counters, timestamps, a mark and labels set by nftables,
# replied UDP and an ICMP echo.
fixture traffic "nft -f - <<'NFT'
table inet t {
    chain o {
        type filter hook output priority 0;
        ct label set 3
        ct label set 70
        ct label set 127
        ct mark set 0x2a
    }
}
NFT
python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 9999))
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); c.bind(('127.0.0.1', 40001))
c.sendto(b'hello', ('127.0.0.1', 9999)); data, addr = s.recvfrom(100); s.sendto(b'world!', addr); c.recv(100)
PY
ping -c1 -W1 127.0.0.1 >/dev/null"

# Expectations: real ones from the kernel's helpers (ftp over IPv4, IPv6
# and DNAT, which adds CTA_EXPECT_NAT and CTA_EXPECT_FN; sip with the
# PERMANENT and INACTIVE flags; tftp) in one namespace, written to
# expect/exp-N.bin, with conntrack's -L expect (IPv4, then -f ipv6) in
# expect/expect.default.txt and its -o xml in expect/expect.xml.txt.
mkdir -p "$out/expect"
rm -f "$out/expect"/exp-*.bin
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" ip addr add 10.99.0.1/32 dev lo
ip netns exec "$ns" ip addr add 10.99.0.2/32 dev lo
ip netns exec "$ns" nft -f - <<'NFT'
table inet helpers {
    ct helper ftp-x { type "ftp" protocol tcp; l3proto inet; }
    ct helper sip-x { type "sip" protocol udp; l3proto inet; }
    ct helper tftp-x { type "tftp" protocol udp; l3proto inet; }
    chain o {
        type filter hook output priority filter;
        ct state new tcp dport 2121 ct helper set "ftp-x"
        ct state new udp dport 5060 ct helper set "sip-x"
        ct state new udp dport 69 ct helper set "tftp-x"
    }
}
table ip nat {
    chain o { type nat hook output priority -100; ip daddr 10.99.0.1 tcp dport 2123 dnat to 10.99.0.2:2121; }
    chain p { type nat hook postrouting priority srcnat; }
}
NFT
ip netns exec "$ns" python3 - <<'PY'
import socket, threading
keep = []
def ftp(family, host, port, reply, connect=None):
    srv = socket.socket(family, socket.SOCK_STREAM); srv.bind((host, port)); srv.listen(1); keep.append(srv)
    def serve():
        a, _ = srv.accept(); keep.append(a); a.sendall(b"220 hi\r\n"); a.recv(100); a.sendall(reply + b"\r\n")
    t = threading.Thread(target=serve); t.start()
    c = socket.create_connection(connect or (host, port), timeout=5); keep.append(c)
    c.recv(100); c.sendall(b"PASV\r\n"); c.recv(200); t.join()
ftp(socket.AF_INET, "127.0.0.1", 2121, b"227 Entering Passive Mode (127,0,0,1,156,65).")
ftp(socket.AF_INET6, "::1", 2121, b"229 Entering Extended Passive Mode (|||40004|)")
ftp(socket.AF_INET, "10.99.0.2", 2121, b"227 Entering Passive Mode (10,99,0,2,156,67).", connect=("10.99.0.1", 2123))
def register(sport, contact, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", sport)); keep.append(s)
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0)); keep.append(r)
    head = ("Via: SIP/2.0/UDP 127.0.0.1:%d\r\nFrom: <sip:a@127.0.0.1>\r\nTo: <sip:a@127.0.0.1>\r\n"
            "Call-ID: %d@127.0.0.1\r\nCSeq: 1 REGISTER\r\n" % (sport, sport))
    s.sendto(("REGISTER sip:127.0.0.1 SIP/2.0\r\n" + head + "Contact: <sip:a@127.0.0.1:%d>\r\n"
              "Expires: 3600\r\nContent-Length: 0\r\n\r\n" % contact).encode(), ("127.0.0.1", 5060))
    if answer:
        l = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # the answer comes from the REGISTER's destination
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind(("127.0.0.1", 5060)); keep.append(l)
        l.sendto(("SIP/2.0 200 OK\r\n" + head + "Contact: <sip:a@127.0.0.1:%d>;expires=3600\r\n"
                  "Content-Length: 0\r\n\r\n" % contact).encode(), ("127.0.0.1", sport))
register(5062, 5070, True)
register(5064, 5072, False)
t = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); t.bind(("127.0.0.1", 40100)); keep.append(t)
t.sendto(b"\x00\x01file\x00octet\x00", ("127.0.0.1", 69))
PY
ip netns exec "$ns" "$capture" "$out/expect/exp" expect >/dev/null
{ ip netns exec "$ns" conntrack -L expect; ip netns exec "$ns" conntrack -L expect -f ipv6; } > "$out/expect/expect.default.txt" 2>/dev/null
{ ip netns exec "$ns" conntrack -L expect -o xml; ip netns exec "$ns" conntrack -L expect -f ipv6 -o xml; } > "$out/expect/expect.xml.txt" 2>/dev/null
ip netns del "$ns"
echo "fixture expect: $(ls "$out/expect"/exp-*.bin | wc -l) message(s)"
