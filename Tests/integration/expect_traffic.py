#!/usr/bin/env python3
"""Loopback traffic that makes conntrack helpers create expectations, for
test_expect.py.

Run *inside* a test network namespace configured by test_expect.py
(``ip netns exec ctltest-XXXX python3 expect_traffic.py CASE...``; without
CASE every case runs).  Every client binds a fixed source port, so two
namespaces fed the same cases hold the same master tuples and the same
expectations.  Prints ``READY`` once every case is done (an expectation is
created while the packet that announces it is sent, so it exists by then)
and keeps all sockets open until stdin reaches EOF.  Any failure ends the
script with a message on stderr and exit status 1.

Cases (helper assigned by test_expect.py's nftables ruleset):
  ftp4      127.0.0.1:40201 -> 127.0.0.1:2121, "227 ... (127,0,0,1,156,65)"
            -> expectation for dport 40001
  ftpzone   127.0.0.1:40202 -> 127.0.0.1:2122 in ct zone 7, PASV port 40002
  ftpdnat   10.99.0.1:40203 -> 10.99.0.1:2123, DNAT to 10.99.0.2:2121,
            "227 ... (10,99,0,2,156,67)" -> port 40003 (nat helper involved)
  ftp6      [::1]:40204 -> [::1]:2121, "229 ... (|||40004|)" -> port 40004
  ftpport   127.0.0.1:40205 -> 127.0.0.1:2121, active mode "PORT
            127,0,0,1,156,69" -> expectation for the server's data
            connection to 127.0.0.1:40005
  sip       udp 127.0.0.1:5062 -> 127.0.0.1:5060, REGISTER + 200 OK with
            Contact ...:5070 -> a PERMANENT expectation for dport 5070
  sipreg    udp 127.0.0.1:5064 -> 127.0.0.1:5060, a REGISTER nobody answers
            (Contact ...:5072) -> a PERMANENT,INACTIVE expectation
  sipinvite udp 127.0.0.1:5066 -> 127.0.0.1:5060, INVITE with SDP for audio
            40010 and video 40020 -> rtp/rtcp expectations 40010/40011
            (class 1) and 40020/40021 (class 2)
  tftp      udp 127.0.0.1:40100 -> 127.0.0.1:69 read request
"""

import os
import socket
import sys

KEEP = []

FTP_CASES = {
    # name: (family, server addr, connect addr, connect port, client addr,
    #        client port, zone-routed port, server reply / client command)
    "ftp4": (socket.AF_INET, "127.0.0.1", "127.0.0.1", 2121, "127.0.0.1", 40201,
             b"PASV\r\n", b"227 Entering Passive Mode (127,0,0,1,156,65).\r\n"),
    "ftpzone": (socket.AF_INET, "127.0.0.1", "127.0.0.1", 2122, "127.0.0.1", 40202,
                b"PASV\r\n", b"227 Entering Passive Mode (127,0,0,1,156,66).\r\n"),
    "ftpdnat": (socket.AF_INET, "10.99.0.2", "10.99.0.1", 2123, "10.99.0.1", 40203,
                b"PASV\r\n", b"227 Entering Passive Mode (10,99,0,2,156,67).\r\n"),
    "ftp6": (socket.AF_INET6, "::1", "::1", 2121, "::1", 40204,
             b"EPSV\r\n", b"229 Entering Extended Passive Mode (|||40004|)\r\n"),
    "ftpport": (socket.AF_INET, "127.0.0.1", "127.0.0.1", 2121, "127.0.0.1", 40205,
                b"PORT 127,0,0,1,156,69\r\n", b"200 PORT command successful.\r\n"),
}

# the server listening sockets, one per (family, addr, port)
_LISTENERS = {}


def listener(family, addr, port, kind=socket.SOCK_STREAM):
    key = (family, addr, port, kind)
    if key not in _LISTENERS:
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        KEEP.append(s)
        _LISTENERS[key] = s
    return _LISTENERS[key]


def _recv_line(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = s.recv(200)
        if not chunk:
            raise RuntimeError("connection closed early (got %r)" % buf)
        buf += chunk
    return buf


def ftp(name):
    family, srv_addr, dst_addr, dst_port, cli_addr, cli_port, cmd, reply = FTP_CASES[name]
    srv = listener(family, srv_addr, 2121 if name == "ftpdnat" else dst_port)
    srv.settimeout(5)
    c = socket.socket(family, socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.settimeout(5)
    c.bind((cli_addr, cli_port))
    c.connect((dst_addr, dst_port))
    a, _ = srv.accept()
    a.settimeout(5)
    KEEP.extend([c, a])
    a.sendall(b"220 hi\r\n")
    _recv_line(c)
    # the helper reads a packet only when it follows a line end seen in the
    # same direction: the client's command must not be its first line
    c.sendall(b"USER a\r\n")
    _recv_line(a)
    a.sendall(b"331 ok\r\n")
    _recv_line(c)
    c.sendall(cmd)
    _recv_line(a)
    a.sendall(reply)
    _recv_line(c)


SIP_HEADERS = ("Via: SIP/2.0/UDP 127.0.0.1:5062\r\n"
               "From: <sip:a@127.0.0.1>\r\n"
               "To: <sip:a@127.0.0.1>\r\n"
               "Call-ID: 1@127.0.0.1\r\n"
               "CSeq: 1 REGISTER\r\n")


def sip():
    srv = listener(socket.AF_INET, "127.0.0.1", 5060, socket.SOCK_DGRAM)
    srv.settimeout(5)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    c.bind(("127.0.0.1", 5062))
    KEEP.append(c)
    c.sendto(("REGISTER sip:127.0.0.1 SIP/2.0\r\n" + SIP_HEADERS +
              "Contact: <sip:a@127.0.0.1:5070>\r\n"
              "Expires: 3600\r\n"
              "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", 5060))
    _, peer = srv.recvfrom(2000)
    srv.sendto(("SIP/2.0 200 OK\r\n" + SIP_HEADERS +
                "Contact: <sip:a@127.0.0.1:5070>;expires=3600\r\n"
                "Content-Length: 0\r\n\r\n").encode(), peer)
    c.recvfrom(2000)


def _sip_headers(port, call_id, method):
    return ("Via: SIP/2.0/UDP 127.0.0.1:%d\r\n"
            "From: <sip:a@127.0.0.1>\r\n"
            "To: <sip:b@127.0.0.1>\r\n"
            "Call-ID: %s@127.0.0.1\r\n"
            "CSeq: 1 %s\r\n" % (port, call_id, method))


def _sip_send(port, message):
    srv = listener(socket.AF_INET, "127.0.0.1", 5060, socket.SOCK_DGRAM)
    srv.settimeout(5)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", port))
    KEEP.append(c)
    c.sendto(message.encode(), ("127.0.0.1", 5060))
    srv.recvfrom(4000)


def sipreg():
    _sip_send(5064, "REGISTER sip:127.0.0.1 SIP/2.0\r\n" + _sip_headers(5064, "2", "REGISTER") +
              "Contact: <sip:a@127.0.0.1:5072>\r\n"
              "Expires: 3600\r\n"
              "Content-Length: 0\r\n\r\n")


def sipinvite():
    sdp = ("v=0\r\n"
           "o=a 1 1 IN IP4 127.0.0.1\r\n"
           "s=-\r\n"
           "c=IN IP4 127.0.0.1\r\n"
           "t=0 0\r\n"
           "m=audio 40010 RTP/AVP 0\r\n"
           "m=video 40020 RTP/AVP 31\r\n")
    _sip_send(5066, "INVITE sip:b@127.0.0.1 SIP/2.0\r\n" + _sip_headers(5066, "3", "INVITE") +
              "Contact: <sip:a@127.0.0.1:5066>\r\n"
              "Content-Type: application/sdp\r\n"
              "Content-Length: %d\r\n\r\n%s" % (len(sdp), sdp))


def tftp():
    srv = listener(socket.AF_INET, "127.0.0.1", 69, socket.SOCK_DGRAM)
    srv.settimeout(5)
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.bind(("127.0.0.1", 40100))
    KEEP.append(c)
    c.sendto(b"\x00\x01file\x00octet\x00", ("127.0.0.1", 69))
    srv.recvfrom(2000)


CASES = dict({n: (lambda n=n: ftp(n)) for n in FTP_CASES}, sip=sip, sipreg=sipreg,
             sipinvite=sipinvite, tftp=tftp)


def main():
    names = sys.argv[1:] or list(CASES)
    for n in names:
        try:
            CASES[n]()
        except Exception as e:
            sys.stderr.write("expect_traffic.py: case %s failed: %r\n" % (n, e))
            sys.stderr.flush()
            os._exit(1)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    try:
        while sys.stdin.read(4096):
            pass
    except Exception:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
