"""--labelmap FILE (conntrack 1.4.9's option): the connlabel.conf every
label-reading command uses instead of /etc/xtables/connlabel.conf.

conntrack 1.4.7 has no --labelmap, so the oracle reads the same names from
its default file: the session's own label map (conftest's labelmap), or,
for the missing and unusable cases, a default file arranged in a private
mount namespace (unshare -m: a tmpfs over /etc/xtables for that one
process), which ctl's --labelmap then names directly."""

import os
import re
import subprocess
import tempfile

import pytest

from conftest import (CONNTRACK, CTL, IP, LABELMAP_CONTENT, compare, normalize_listing,
                      normalize_stderr, run)

pytestmark = pytest.mark.oracle_differs

# The session's names, renamed: a file only --labelmap can bring in.
RENAMED = LABELMAP_CONTENT.replace("ctl-", "lm-")


@pytest.fixture(scope="module")
def renamed_map():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "labels.conf")
        with open(path, "w") as f:
            f.write(RENAMED)
        yield path


def _id(args):
    return " ".join(args)


def renamed(text):
    return text.replace("ctl-", "lm-")


@pytest.mark.parametrize("args", [["-L", "-o", "labels"], ["-L", "-o", "labels,extended"],
                                  ["-L", "-l", "ctl-one"], ["-L", "-l", "ctl-last", "-o", "id"],
                                  ["-L", "-o", "xml,labels"]], ids=_id)
def test_labelmap_names_the_labels(popns, labelmap, renamed_map, args):
    """ctl --labelmap RENAMED prints what conntrack prints with the default
    file, with the names renamed."""
    labelmap.skip_unless_intact()
    for _ in range(3):
        o = run(popns, CONNTRACK, args)
        c = run(popns, CTL, [renamed(a) for a in args] + ["--labelmap", renamed_map])
        if sorted(normalize_listing(renamed(o.stdout))) == sorted(normalize_listing(c.stdout)):
            break
    assert c.rc == o.rc == 0, c.show("ctl")
    same_listing(c.stdout, renamed(o.stdout))
    assert normalize_stderr(c.stderr) == normalize_stderr(o.stderr)
    assert "lm-" in c.stdout and "ctl-" not in c.stdout


def test_labelmap_names_json_labels(popns, labelmap, renamed_map):
    labelmap.skip_unless_intact()
    c = run(popns, CTL, ["-L", "-l", "lm-last", "-o", "json", "--labelmap", renamed_map])
    assert c.rc == 0 and c.stdout, c.show("ctl")
    assert "lm-last" in c.stdout and "ctl-" not in c.stdout, c.show("ctl")


@pytest.mark.parametrize("labels", ["ctl-one", "ctl-zero", "ctl-one,ctl-last"])
def test_labelmap_with_filtered_count(popns, labelmap, renamed_map, labels):
    labelmap.skip_unless_intact()
    expected = run(popns, CONNTRACK, ["-L", "-l", labels]).stdout.count("\n")
    assert expected > 0
    c = run(popns, CTL, ["-C", "-l", renamed(labels), "--labelmap", renamed_map])
    assert c.rc == 0 and c.stdout == "%d\n" % expected, c.show("ctl")


def test_labelmap_unknown_name_is_refused_as_conntrack_refuses(popns, labelmap, renamed_map):
    """The default file's names are not in --labelmap's file."""
    labelmap.skip_unless_intact()
    o = run(popns, CONNTRACK, ["-L", "-l", "lm-one"])
    c = run(popns, CTL, ["-L", "-l", "ctl-one", "--labelmap", renamed_map])
    assert o.rc == c.rc == 2
    assert normalize_stderr(renamed(o.stderr).replace("lm-one", "ctl-one")) == normalize_stderr(c.stderr)


def test_labelmap_for_writes(make_ns, labelmap, renamed_map):
    """-U --label-add and --label-del by --labelmap's names set the bits
    conntrack reads back by the default file's names."""
    labelmap.skip_unless_intact()
    ns = make_ns(traffic=False, inserts=False)
    run(ns, CONNTRACK, ["-I", "-p", "tcp", "-s", "10.77.0.1", "-d", "10.77.0.2", "--sport", "1", "--dport", "2",
                        "--state", "ESTABLISHED", "-t", "100"])
    c = run(ns, CTL, ["-U", "-s", "10.77.0.1", "--label-add", "lm-five,lm-last", "--labelmap", renamed_map])
    assert c.rc == 0, c.show("ctl")
    listed = run(ns, CONNTRACK, ["-L", "-o", "labels"]).stdout
    assert "labels=ctl-five,ctl-last" in listed, listed
    c = run(ns, CTL, ["-U", "-s", "10.77.0.1", "--label-del", "lm-five", "--labelmap", renamed_map])
    assert c.rc == 0, c.show("ctl")
    listed = run(ns, CONNTRACK, ["-L", "-o", "labels"]).stdout
    assert "labels=ctl-last" in listed and "ctl-five" not in listed, listed


def with_default_labelmap(ns, default, argv):
    """Runs argv in `ns` with /etc/xtables/connlabel.conf as `default` says
    (None: missing; "dir": a directory; else the file's text), in a private
    mount namespace of its own."""
    setup = "mkdir -p /etc/xtables && mount -t tmpfs ctltest /etc/xtables"
    if default == "dir":
        setup += " && mkdir /etc/xtables/connlabel.conf"
    elif default is not None:
        setup += " && cat > /etc/xtables/connlabel.conf"
    script = setup + ' && exec "$@"'
    p = subprocess.run([IP, "netns", "exec", ns.name, "unshare", "-m", "--propagation", "private",
                        "sh", "-c", script, "sh"] + argv, input=default if default not in (None, "dir") else "",
                       capture_output=True, text=True, timeout=20)
    return p


# A missing file, a directory, a file conntrack refuses as a whole (a name
# with '='), a file without any name.
UNUSABLE = [("missing", None), ("directory", "dir"), ("bad-name", "1 a=b\n"), ("no-names", "# nothing\n")]


@pytest.mark.parametrize("kind,content", UNUSABLE, ids=[k for k, _ in UNUSABLE])
@pytest.mark.parametrize("args", [["-L", "-o", "labels"], ["-L", "-l", "ctl-one"], ["-C", "-l", "ctl-one"],
                                  ["-U", "-s", "10.1.1.1", "--label-add", "ctl-one"]], ids=_id)
def test_unusable_labelmap_as_conntrack_takes_an_unusable_default(popns, scratch_ns, tmp_path, kind, content, args):
    """--labelmap naming a missing or unusable file: the warning and the
    answer conntrack gives when its default file is that file. (-C -l is
    ctl's own: it is held against conntrack's -L -l, whose line count is 0
    or which refuses the same way.) -U runs in the scratch namespace."""
    ns = scratch_ns if args[0] == "-U" else popns
    if content is None:
        path = str(tmp_path / "missing.conf")
    elif content == "dir":
        path = str(tmp_path)
    else:
        path = str(tmp_path / "labels.conf")
        with open(path, "w") as f:
            f.write(content)
    oracle_args = ["-L"] + args[1:] if args[0] == "-C" else args
    o = with_default_labelmap(ns, content, [CONNTRACK] + oracle_args)
    c = run(ns, CTL, args + ["--labelmap", path])
    assert c.rc == o.returncode, (o.stderr, c.show("ctl"))
    if args[0] == "-C":
        if o.returncode == 0:
            assert c.stdout == "%d\n" % o.stdout.count("\n")
            # the warning, without -L's summary
            assert normalize_stderr(c.stderr) == normalize_stderr(o.stderr)[:-1], (o.stderr, c.show("ctl"))
        else:
            assert normalize_stderr(c.stderr) == normalize_stderr(o.stderr), (o.stderr, c.show("ctl"))
        return
    assert normalize_stderr(c.stderr) == normalize_stderr(o.stderr), (o.stderr, c.show("ctl"))
    same_listing(c.stdout, o.stdout)


def same_listing(a, b, tolerance=2):
    """The same lines, their timeouts at most `tolerance` seconds apart
    (the two listings are taken one after the other)."""
    la, lb = sorted(normalize_listing(a)), sorted(normalize_listing(b))
    assert [line for line, _ in la] == [line for line, _ in lb], (a, b)
    for (_, ta), (_, tb) in zip(la, lb):
        assert all(abs(x - y) <= tolerance for x, y in zip(ta, tb)), (a, b)


def test_labelmap_value_needed(scratch_ns):
    for args in (["-L", "--labelmap"], ["-L", "--labelmap="]):
        c = run(scratch_ns, CTL, args)
        assert c.rc == 2 and "--labelmap" in c.stderr, c.show("ctl")


def test_metrics_label_values_are_escaped(popns, labelmap, tmp_path):
    """A label name with a quote and a backslash (connlabel.conf allows
    them) as -C's selector: the metrics stay valid and give it back."""
    labelmap.skip_unless_intact()
    path = tmp_path / "odd.conf"
    path.write_text('1 we"ird\\x\n')
    c = run(popns, CTL, ["-C", "-l", 'we"ird\\x', "-o", "metrics", "--labelmap", str(path)])
    assert c.rc == 0, c.show("ctl")
    assert 'selector="-l we\\"ird\\\\x"' in c.stdout, c.stdout
    p = subprocess.run(["promtool", "check", "metrics"], input=c.stdout, text=True, capture_output=True)
    assert p.returncode == 0, p.stdout + p.stderr
    from prometheus_client.parser import text_string_to_metric_families
    samples = [s for f in text_string_to_metric_families(c.stdout) for s in f.samples]
    expected = run(popns, CONNTRACK, ["-L", "-l", "ctl-one"]).stdout.count("\n")
    assert [(s.labels, s.value) for s in samples] == [({"selector": '-l we"ird\\x'}, expected)]
    assert expected > 0
