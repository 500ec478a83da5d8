"""Surprising-but-real conntrack 1.4.7 parsing behaviour for the commands ctl
implements (-L/-C/-S/-F, -o, -f, tables).  Kept apart from the main tables so
that a failure here is easy to triage: each case documents what the oracle
does (see the comments)."""

import pytest

from conftest import compare


def _id(args):
    return " ".join(args)


QUIRKS = [
    # -o values: case-insensitive prefixes of
    # xml,extended,timestamp,id,ktimestamp,labels,userspace,save
    ["-L", "-o", "EXTENDED"],
    ["-L", "-o", "ext"],
    ["-L", "-o", "e"],
    ["-L", "-o", "i"],
    ["-L", "-o", "ID"],
    ["-L", "-o", "Id,eXt"],
    ["-L", "-o", "k"],
    ["-L", "-o", "kt,ext"],
    ["-L", "-o", "l"],
    ["-L", "-o", "la,i"],
    # accepted, but without visible effect on a listing
    ["-L", "-o", "userspace"],
    ["-L", "-o", "u"],
    ["-L", "-o", "timestamp"],
    ["-L", "-o", "t"],
    ["-L", "-o", "ti,extended"],
    # any case-insensitive prefix of SRC_NAT / DST_NAT (checked before the
    # real names, so "s" is *not* "save"): a WARNING on stderr, else ignored
    ["-L", "-o", "s"],
    ["-L", "-o", "S"],
    ["-L", "-o", "src_nat"],
    ["-L", "-o", "d"],
    ["-L", "-o", "dst_nat,id"],
    ["-L", "-o", "id,s"],
    ["-L", "-o", "s,s"],
    ["-L", "-o", "s,extended,id"],
    ["-L", "-o", "s,foo"],          # warning, then Bad parameter `foo' (exit 2)
    ["-L", "-o", "src_natx"],       # Bad parameter
    ["-L", "-o", "sx"],
    # -L/-C/-F take an *optional* table argument; an attached one ("-Lfoo")
    # is ignored entirely, only a separate next word is checked
    ["-LC"],
    ["-Lfoo"],
    ["-Lexpect"],
    ["-Lo", "extended"],            # "o" ignored, "extended" a stray word
    ["-Lfipv6"],                    # NOT -L -f ipv6: lists both families
    ["-Cfoo"],
    ["-Co"],
    # ... but -S has NO optional argument: "-Sfoo" is "-S -f oo" (`oo'
    # unsupported protocol) and "-Sexpect" is "-S -e xpect" (Bad parameter)
    ["-Sfoo"],
    ["-Sexpect"],
    # -h / -V with anything attached: unknown option `-hx' (whole word)
    ["-hx"],
    ["-Vx"],
    ["--dump=foo"],
    ["--count=foo"],
    # stray extra words after the table / options are ignored
    ["-L", "conntrack", "extra"],
    ["-L", "conntrack", "conntrack"],
    ["-L", "-o", "extended", "foo"],
    ["-L", "-f", "ipv4", "foo"],
    ["-L", "--", "foo"],
    ["-L", "-"],
    # table names are case-sensitive prefixes
    ["-L", "c"],
    ["-L", "conn"],
    ["-C", "c"],
    ["-S", "c"],
    # deprecated -a: warning, otherwise ignored
    ["-L", "-a", "1.1.1.1"],
    ["-C", "-a", "1.1.1.1"],
    # repeated options
    ["-L", "-f", "ipv6", "-f", "ipv6"],
    ["-L", "-o", "ktimestamp", "-o", "id"],
]


@pytest.mark.parametrize("args", QUIRKS, ids=_id)
def test_quirk(popns, args):
    mode = "listing"
    if args[0].startswith(("-C", "--count")):
        mode = "exact"
    elif args[0].startswith("-S"):
        mode = "stats"
    compare(popns, args, stdout_mode=mode)


# table prefixes that select a table a later milestone may implement
LATER_QUIRKS = [
    ["-L", ""],          # the empty string selects the *expect* table
    ["-L", "e"],
    ["-L", "exp"],
    ["-L", "d"],         # dying
    ["-L", "dy"],
    ["-L", "u"],         # unconfirmed
    ["-C", ""],
    ["-C", "e"],
    ["-S", ""],
    ["-S", "e"],
    ["-L", "-o", "x"],   # xml
    ["-L", "-o", "X,e"],
    ["-L", "-o", "sa"],  # save (needs at least "sa")
]


@pytest.mark.parametrize("args", LATER_QUIRKS, ids=_id)
def test_quirk_later(popns, args):
    mode = "listing"
    if args[0] == "-C":
        mode = "exact"
    elif args[0] == "-S":
        mode = "stats"
    compare(popns, args, stdout_mode=mode)
