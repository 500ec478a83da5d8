#!/usr/bin/env python3
"""Loopback traffic generator for the ctl integration tests.

Run *inside* a test network namespace (``ip netns exec ctltest-XXXX python3
traffic.py``).  It creates a fixed set of real connections so that the
kernel's conntrack table of that namespace contains "real" entries, prints a
single line ``READY`` on stdout, and then keeps every long-lived socket open
until its stdin reaches EOF or it is killed (the test fixture kills it by pid
at teardown).

All traffic stays on the loopback device of the namespace.  Addresses used
(configured on ``lo`` by the fixture):

  127.0.0.1, ::1, 10.99.0.1-3, fd00::1-3

Port plan (see the nftables ruleset in conftest.py for what the rules do):

  5001  tcp  v4  established, kept open
  5002  tcp  v4  closed by the client -> TIME_WAIT
  5999  tcp  v4  nothing listens -> RST (kernel drops the entry at once)
  5998  tcp  v4  established then aborted by the client (RST) -> CLOSE
  5003  tcp  v4  established, ct mark 0x2a
  5004  tcp  v4  established, ct labels 1 and 5
  5005  tcp  v4  established, ct label 100 (usually unnamed)
  5006  tcp  v4  established, ct label 127
  5007  tcp  v4  established, ct mark 0xffffffff
  5300  udp  v4  replied
  5399  udp  v4  unreplied
  5301  udp  v4  replied, ct zone 7
  5302  tcp  v4  established, ct zone 7
  2121  tcp  v4  fake FTP control connection with helper "ftp-x" (PASV)
  8080  tcp  v4  10.99.0.1:8080 DNAT -> 10.99.0.2:8081
  9000  tcp  v4  10.99.0.1 -> 10.99.0.2:9000 SNAT to 10.99.0.3
  6001  tcp  v6  established ::1
  6002  tcp  v6  TIME_WAIT ::1
  6300  udp  v6  replied ::1
  6399  udp  v6  unreplied ::1
  8080  tcp  v6  [fd00::1]:8080 DNAT -> [fd00::2]:8081
  9001  udp  v6  fd00::1 -> [fd00::2]:9001 SNAT to fd00::3
  icmp echo 127.0.0.1, icmpv6 echo ::1 (raw sockets)
"""

import os
import socket
import struct
import sys
import threading
import time

KEEP = []  # sockets that must stay open for the whole session


def log(msg):
    sys.stderr.write("traffic.py: %s\n" % msg)
    sys.stderr.flush()


def listener(family, addr, port, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(16)
    KEEP.append(s)
    return s


def _connected(family, srv, dst, data, src_addr=None):
    """Connect to `srv` at `dst`, send `data` and read it on the accepted
    side; returns (client, accepted)."""
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(5)
    if src_addr is not None:
        c.bind((src_addr, 0))
    c.connect(dst)
    a, _ = srv.accept()
    c.sendall(data)
    a.recv(100)
    return c, a


def _short_listener(family, addr, port):
    """A listener closed again by its caller (not kept)."""
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(1)
    return srv


def tcp_established(family, listen_addr, port, connect_addr=None,
                    connect_port=None, data=b"hello"):
    """Open a TCP connection and keep both ends open."""
    srv = listener(family, listen_addr, port)
    c, a = _connected(family, srv, (connect_addr or listen_addr, connect_port or port), data)
    a.sendall(data + b"-reply")
    c.recv(100)
    KEEP.extend([c, a])


def tcp_established_snat(family, src_addr, dst_addr, port):
    srv = listener(family, dst_addr, port)
    KEEP.extend(_connected(family, srv, (dst_addr, port), b"snat", src_addr=src_addr))


def tcp_time_wait(family, addr, port):
    """Client closes first -> client side TIME_WAIT, conntrack TIME_WAIT."""
    srv = _short_listener(family, addr, port)
    c, a = _connected(family, srv, (addr, port), b"bye")
    c.close()            # FIN from client
    a.recv(100)          # EOF
    a.close()            # FIN from server
    srv.close()
    time.sleep(0.05)


def tcp_reset(family, addr, port):
    """Established, then the client aborts (RST) -> conntrack state CLOSE."""
    srv = _short_listener(family, addr, port)
    c, a = _connected(family, srv, (addr, port), b"abort")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    KEEP.append(a)
    srv.close()
    time.sleep(0.05)


def tcp_refused(family, addr, port):
    """Connect to a closed port.  NOTE: on Linux 6.x the kernel destroys the
    conntrack entry as soon as the RST answers the SYN, so this normally
    leaves no entry behind (tcp_reset() provides a CLOSE entry instead)."""
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect((addr, port))
    except OSError:
        pass
    c.close()


def udp_replied(family, addr, port, src=None, payload=b"ping"):
    srv = listener(family, addr, port, socket.SOCK_DGRAM)
    c = socket.socket(family, socket.SOCK_DGRAM)
    c.settimeout(5)
    if src:
        c.bind((src, 0))
    c.sendto(payload, (addr, port))
    data, peer = srv.recvfrom(100)
    srv.sendto(data + b"-pong", peer)
    c.recvfrom(100)
    KEEP.append(c)


def udp_unreplied(family, addr, port):
    c = socket.socket(family, socket.SOCK_DGRAM)
    c.sendto(b"nobody-home", (addr, port))
    KEEP.append(c)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


def icmp_echo(ident=0x4242, seq=1):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(5)
    payload = b"ctltest-icmp"
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, seq) + payload
    s.sendto(pkt, ("127.0.0.1", 0))
    deadline = time.time() + 5
    while time.time() < deadline:
        data = s.recv(1500)
        ihl = (data[0] & 0x0F) * 4
        typ = data[ihl]
        if typ == 0:
            break
    s.close()


def icmpv6_echo(ident=0x4343, seq=1):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.settimeout(5)
    payload = b"ctltest-icmpv6"
    # the kernel computes the ICMPv6 checksum for raw ICMPv6 sockets
    pkt = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    s.sendto(pkt, ("::1", 0))
    deadline = time.time() + 5
    while time.time() < deadline:
        data = s.recv(1500)
        if data and data[0] == 129:
            break
    s.close()


def ftp_pasv(addr, port, pasv_port):
    """Fake FTP server + client; the 227 reply makes the ftp helper create
    an expectation for pasv_port."""
    srv = listener(socket.AF_INET, addr, port)
    ready = threading.Event()

    def serve():
        a, _ = srv.accept()
        KEEP.append(a)
        a.sendall(b"220 ctltest fake ftp\r\n")
        buf = b""
        while b"\r\n" not in buf:
            chunk = a.recv(100)
            if not chunk:
                return
            buf += chunk
        p1, p2 = pasv_port // 256, pasv_port % 256
        a.sendall(("227 Entering Passive Mode (127,0,0,1,%d,%d).\r\n" % (p1, p2)).encode())
        ready.set()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect((addr, port))
    c.recv(100)
    c.sendall(b"PASV\r\n")
    c.recv(200)
    ready.wait(5)
    KEEP.append(c)


def step(name, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception as e:  # keep going; the fixture logs what failed
        log("step %s failed: %r" % (name, e))


def main():
    v4, v6 = socket.AF_INET, socket.AF_INET6
    step("tcp-established", tcp_established, v4, "127.0.0.1", 5001)
    step("tcp-time-wait", tcp_time_wait, v4, "127.0.0.1", 5002)
    step("tcp-refused", tcp_refused, v4, "127.0.0.1", 5999)
    step("tcp-reset", tcp_reset, v4, "127.0.0.1", 5998)
    step("tcp-mark", tcp_established, v4, "127.0.0.1", 5003)
    step("tcp-labels", tcp_established, v4, "127.0.0.1", 5004)
    step("tcp-label-unnamed", tcp_established, v4, "127.0.0.1", 5005)
    step("tcp-label-127", tcp_established, v4, "127.0.0.1", 5006)
    step("tcp-mark-max", tcp_established, v4, "127.0.0.1", 5007)
    step("udp-replied", udp_replied, v4, "127.0.0.1", 5300)
    step("udp-unreplied", udp_unreplied, v4, "127.0.0.1", 5399)
    step("udp-zone", udp_replied, v4, "127.0.0.1", 5301)
    step("tcp-zone", tcp_established, v4, "127.0.0.1", 5302)
    step("ftp-helper", ftp_pasv, "127.0.0.1", 2121, 40000)
    step("dnat4", tcp_established, v4, "10.99.0.2", 8081,
         connect_addr="10.99.0.1", connect_port=8080)
    step("snat4", tcp_established_snat, v4, "10.99.0.1", "10.99.0.2", 9000)
    step("icmp", icmp_echo)
    step("tcp6-established", tcp_established, v6, "::1", 6001)
    step("tcp6-time-wait", tcp_time_wait, v6, "::1", 6002)
    step("udp6-replied", udp_replied, v6, "::1", 6300)
    step("udp6-unreplied", udp_unreplied, v6, "::1", 6399)
    step("dnat6", tcp_established, v6, "fd00::2", 8081,
         connect_addr="fd00::1", connect_port=8080)
    step("snat6", udp_replied, v6, "fd00::2", 9001, src="fd00::1")
    step("icmpv6", icmpv6_echo)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    # keep everything open until the fixture kills us or closes stdin
    try:
        while sys.stdin.read(4096):
            pass
    except Exception:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
