"""-L / --dump listings: ctl must print exactly what conntrack prints."""

import os
import warnings

import pytest

from conftest import (CONNTRACK, CTL, EXPECTED_FEATURES, compare,
                      run)

# features produced by real traffic / nft rules: the population is broken
# (and every comparison meaningless) without them
CORE_FEATURES = {
    "tcp established (real traffic)", "tcp TIME_WAIT (real)", "udp unreplied (real)",
    "ipv6 tcp (real)", "icmp (real)", "icmpv6 (real)", "ct mark 0x2a",
    "ct zone 7", "ftp helper", "dnat", "snat", "counters",
}


def test_population_sanity(popns):
    r = run(popns, CONNTRACK, ["-L", "-o", "extended,id"])
    assert r.rc == 0, r.show("conntrack")
    missing_core, missing_opt = [], []
    for name, needle in EXPECTED_FEATURES.items():
        if needle not in r.stdout:
            (missing_core if name in CORE_FEATURES else missing_opt).append(name)
    pop = popns.population
    info = ("failed inserts: %r\ntraffic log: %s\nnamespace log: %r"
            % (pop.failed_inserts, pop.traffic_log, popns.log))
    if missing_opt:
        warnings.warn("population lacks optional features %r (%s)" % (missing_opt, info))
    assert not missing_core, "population lacks %r\n%s\n%s" % (
        missing_core, info, r.stdout)
    n = len(r.stdout.splitlines())
    assert n >= 60, "suspiciously small population (%d entries)" % n


LIST_CASES = [
    ["-L"],
    ["-L", "conntrack"],
    ["--dump"],
    ["--dump", "conntrack"],
    ["--du"],
    ["-L", "-f", "ipv4"],
    ["-L", "-f", "ipv6"],
    ["-L", "--family", "ipv6"],
    ["-L", "--family=ipv4"],
    ["-L", "--fam", "ipv6"],
    ["-L", "-fipv6"],
    ["-f", "ipv6", "-L"],
    ["-o", "extended", "-L"],
    ["-L", "conntrack", "-f", "ipv4"],
    ["-L", "-f", "ipv4", "-f", "ipv4"],
    # every output option and combinations
    ["-L", "-o", "extended"],
    ["-L", "-o", "id"],
    ["-L", "-o", "labels"],
    ["-L", "-o", "ktimestamp"],
    ["-L", "-o", "extended,id"],
    ["-L", "-o", "id,extended"],
    ["-L", "-o", "extended,labels,id"],
    ["-L", "-o", "ktimestamp,extended"],
    ["-L", "-o", "id,ktimestamp,labels,extended"],
    ["-L", "-o", "labels,ktimestamp"],
    ["-L", "-o", "id,id"],
    ["-L", "-o", "id", "-o", "extended"],
    ["-L", "-o", "extended", "-f", "ipv6"],
    ["-L", "-f", "ipv4", "-o", "id,labels"],
    # long forms / abbreviations / attached arguments
    ["-L", "--output", "extended"],
    ["-L", "--output=extended,id"],
    ["--dump", "--output", "ktimestamp"],
    ["-L", "--out", "extended"],
    ["-L", "--ou", "id"],
    ["-L", "--outp=labels"],
    ["-L", "-oextended"],
    ["-L", "-oextended,id"],
    ["--dump", "-o", "id", "--family", "ipv6"],
    # save format (more in test_write.py)
    ["-L", "-o", "save"],
    ["-L", "-o", "save", "-f", "ipv6"],
]


def _id(args):
    return " ".join(args)


@pytest.mark.parametrize("args", LIST_CASES, ids=_id)
def test_list(popns, args):
    o, _ = compare(popns, args)
    assert o.rc == 0


def test_list_families_partition(popns):
    """Without -f both families are listed; -f ipv4 + -f ipv6 == all."""
    all_ = run(popns, CTL, ["-L"]).stdout.splitlines()
    v4 = run(popns, CTL, ["-L", "-f", "ipv4"]).stdout.splitlines()
    v6 = run(popns, CTL, ["-L", "-f", "ipv6"]).stdout.splitlines()
    assert v4 and v6
    assert len(all_) == len(v4) + len(v6)


def test_list_labels_format(popns, labelmap):
    """With our label map: names are printed comma separated, unnamed bits are
    dropped, and an entry whose bits are all unnamed prints a bare 'labels'."""
    labelmap.skip_unless_intact()
    r = run(popns, CONNTRACK, ["-L", "-o", "labels"])
    lines = r.stdout.splitlines()
    assert any(l.endswith(" labels=ctl-one,ctl-five") for l in lines), r.stdout
    assert any(l.endswith(" labels") for l in lines), r.stdout
    compare(popns, ["-L", "-o", "labels"])


def test_list_labels_without_map(popns, labelmap):
    """No label map file: '-o labels' prints 'nfct_labelmap_new: No such file
    or directory' on stderr and no labels at all."""
    labelmap.skip_unless_intact()
    hidden = labelmap.path.with_name(labelmap.path.name + ".ctltest-hidden")
    try:
        os.rename(labelmap.path, hidden)
    except FileNotFoundError:
        pytest.skip("%s vanished (removed by another process)" % labelmap.path)
    try:
        o, _ = compare(popns, ["-L", "-o", "labels,id"])
        assert "nfct_labelmap_new: No such file or directory" in o.stderr
        compare(popns, ["-L", "-o", "extended"])   # no label map needed
    finally:
        # put it back without clobbering a file someone else may have
        # created in the meantime
        try:
            os.link(hidden, labelmap.path)
        except FileExistsError:
            labelmap.created_file = False      # not ours any more
        os.unlink(hidden)


# ---- tables and output formats that may belong to later ctl milestones ----

LATER_LIST_CASES = [
    ["-L", "expect"],
    ["-L", "expect", "-o", "extended"],
    ["-L", "dying"],
    ["-L", "unconfirmed"],
    ["-L", "-o", "xml"],
    ["-L", "-o", "xml,ktimestamp,id"],
]


@pytest.mark.parametrize("args", LATER_LIST_CASES, ids=_id)
def test_list_later(popns, args):
    compare(popns, args)
