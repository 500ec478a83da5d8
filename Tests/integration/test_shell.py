"""The manual, -h, the shell completions and make install/uninstall.

* man/ctl.8 lints clean (mandoc -T lint, groff -ww), renders with man -l at
  80 columns, and names every option the parser knows (read from
  Sources/CTCommands/Arguments.swift, so a new option without documentation fails
  here), every value list, and the sections -h shows.
* completions/ctl.bash, _ctl and ctl.fish are run in the real shells:
  bash and zsh interactive on a pseudo-terminal (python's pty), a TAB typed
  after each partial line, the matches and the line afterwards written to a
  file by a hook (bash: a wrapper around the registered completion function
  and a bind -x key; zsh: a compadd wrapper and a widget around
  complete-word); fish through `complete -C`.
* make install DESTDIR=... PREFIX=... BIN=$CTL puts each file where the
  shells (and man) look for it; make uninstall removes them again.
"""

import os
import pty
import re
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CTL, LABELMAP_CONTENT, REPO, Netns

# ctl-only behaviour: skipped when CTL is conntrack itself.
pytestmark = pytest.mark.oracle_differs

MAN = REPO / "man" / "ctl.8"
ARGUMENTS = REPO / "Sources" / "CTCommands" / "Arguments.swift"
NAMES = REPO / "Sources" / "CTCore" / "Format" / "Names.swift"
GROUP = REPO / "Sources" / "CTCommands" / "Group.swift"
COMPLETIONS = REPO / "completions"
BASH_COMPLETION = COMPLETIONS / "ctl.bash"
ZSH_COMPLETION = COMPLETIONS / "_ctl"
FISH_COMPLETION = COMPLETIONS / "ctl.fish"
BASH_COMPLETION_LIB = Path("/usr/share/bash-completion/bash_completion")

# Accepted by the parser but obsolete (a warning, nothing else): the manual
# and -h name them, the completions do not offer them.
OBSOLETE = {"nat-range"}
# ctl's own options that conntrack's parser never sees (Program.swift takes
# --netns and the others out of argv first), so Arguments.swift does not
# list them.
OUTSIDE_PARSER = {"netns", "interval", "labelmap", "group-by", "top", "all-netns"}

LABELS = ["ctl-zero", "ctl-one", "ctl-five", "ctl-last"]
LABEL_FILE_TEXT = """\
# labels for the completion tests
0 ctl-zero
1   ctl-one
  # 2 commented-out
5 ctl-five # a comment
127\tctl-last
9 bad#name
"""


def need(*programs):
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        pytest.fail("missing %s: run scripts/deps.sh (or make test) first"
                    % ", ".join(missing))


# ---------------------------------------------------------------- the parser

def _swift_block(text, start, end):
    i = text.index(start)
    return text[i:text.index(end, i)]


def parser_long_options():
    """Every long option the parser knows: the base table, the protocol
    options -p adds, -R's --load-file (read before getopt runs)."""
    src = ARGUMENTS.read_text()
    base = re.findall(r'\.init\("([a-z0-9-]+)", [012]',
                      _swift_block(src, "private let baseOptions", "]\n"))
    proto = re.findall(r'"([a-z0-9-]+)"',
                       _swift_block(src, "private func protocolOptions", "\n}\n"))
    names = set(base) | set(proto) | {"load-file"} | OUTSIDE_PARSER
    assert {"dump", "src", "sport", "state", "icmpv6-id", "tuple-key-dst",
            "label-del", "reply-zone"} <= names, names
    return names


def parser_short_options():
    src = ARGUMENTS.read_text()
    short = re.search(r'private let shortOptions = "([^"]*)"', src).group(1)
    letters = {c for c in short if c.isalnum()}
    letters.add("R")
    assert {"L", "p", "o", "j", "w", "l"} <= letters
    return letters


def _names_list(block):
    return re.findall(r'\("([A-Za-z_]+)",', block)


def value_lists():
    """The words the options take, from the sources."""
    src = ARGUMENTS.read_text()
    formats = [n for n in _names_list(_swift_block(src, "private let outputNames", "]\n"))
               if n not in ("SRC_NAT", "DST_NAT")]
    formats = sorted(set(formats) | {"json"})
    statuses = [n for n in _names_list(_swift_block(src, "private let statusNames", "]\n"))
                if n not in ("SRC_NAT", "DST_NAT")]
    events = re.findall(r'"([A-Z]+)"', _swift_block(src, "private let eventNameList", "\n"))
    protocols = re.findall(r'\("([a-z0-9]+)", IPProto',
                           _swift_block(src, "private let knownProtocols", "]\n"))
    tables = re.findall(r'case (.*)', _swift_block(src, "enum Table", "}"))[0]
    tables = [t.strip() for t in tables.split(",")]
    names = NAMES.read_text()

    def states(var):
        return re.findall(r'"([A-Z_0-9]+)"',
                          _swift_block(names, "static let %s" % var, "]\n"))
    keys = []
    for line in _swift_block(GROUP.read_text(), "enum GroupKey", "\n\n").splitlines():
        if line.strip().startswith("case "):
            for item in line.strip()[5:].split(","):
                m = re.search(r'"([a-z-]+)"', item)
                keys.append(m.group(1) if m else item.strip())
    lists = {
        "group-by keys": keys,
        "formats": formats, "statuses": statuses, "events": events,
        "protocols": protocols, "tables": tables,
        "tcp states": states("tcpStates"), "sctp states": states("sctpStates"),
        "dccp states": states("dccpStates"), "families": ["ipv4", "ipv6"],
    }
    assert {"family", "reply-sport", "netns", "helper"} <= set(keys) and len(keys) == 17, keys
    assert "xml" in formats and "ASSURED" in statuses and "NEW" in events
    assert "icmpv6" in protocols and tables == ["conntrack", "expect", "dying", "unconfirmed"]
    assert "ESTABLISHED" in lists["tcp states"] and "COOKIE_WAIT" in lists["sctp states"]
    return lists


def mentions_option(text, name):
    return re.search(r"(?<![\w-])--%s(?![\w-])" % re.escape(name), text) is not None


# ---------------------------------------------------------------- the manual

@pytest.fixture(scope="module")
def man_text():
    need("man")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    p = subprocess.run(["man", "-l", str(MAN)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    # Hyphens and minus signs as ASCII.
    return p.stdout.replace("\u2010", "-").replace("\u2212", "-")


def test_man_mandoc_lint():
    need("mandoc")
    p = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(MAN)],
                       capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", ""), p.stdout + p.stderr


def test_man_groff_warnings():
    need("groff")
    p = subprocess.run(["groff", "-ww", "-z", "-man", str(MAN)],
                       capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", ""), p.stderr


def test_man_renders_in_80_columns(man_text):
    lines = man_text.splitlines()
    assert len(lines) > 300
    wide = [l for l in lines if len(l) > 80]
    assert not wide, wide
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "TABLES",
                    "OUTPUT FORMATS", "SELECTORS AND PARAMETERS",
                    "EXPECTATION PARAMETERS", "EVENT OPTIONS", "OTHER OPTIONS",
                    "EXIT STATUS", "ENVIRONMENT", "FILES",
                    "DIFFERENCES FROM CONNTRACK", "EXAMPLES", "SEE ALSO"):
        assert section in lines, section


def test_man_names_every_option(man_text):
    missing = sorted(n for n in parser_long_options() if not mentions_option(man_text, n))
    assert not missing, "options the manual does not name: %s" % missing
    shorts = sorted(c for c in parser_short_options()
                    if not re.search(r"(?<![\w-])-%s(?![\w-])" % c, man_text))
    assert not shorts, "short options the manual does not name: %s" % shorts


def test_man_names_every_value(man_text):
    for what, words in value_lists().items():
        missing = [w for w in words if not re.search(r"(?<![\w-])%s(?![\w-])" % w, man_text)]
        assert not missing, "%s the manual does not name: %s" % (what, missing)


def test_man_covers_json_netns_exit_codes_and_examples(man_text):
    assert "-o json" in man_text and "NDJSON" in man_text and "README" in man_text
    assert "--netns NAME|PATH" in man_text and "/run/netns/NAME" in man_text
    exit_section = man_text.split("\nEXIT STATUS\n")[1].split("\nENVIRONMENT\n")[0]
    for code in ("0", "1", "2"):
        assert re.search(r"^ {7}%s {6}" % code, exit_section, re.M), code
    examples = man_text.split("\nEXAMPLES\n")[1]
    for example in ("ctl -L -s ", "ctl -D -r ", "ctl -E -e NEW", "-o save |",
                    "ctl -R -", "-o json | jq"):
        assert example in examples, example


# ------------------------------------------------------------------------ -h

@pytest.fixture(scope="module")
def help_text():
    p = subprocess.run([CTL, "-h"], capture_output=True, text=True, timeout=20)
    assert (p.returncode, p.stderr) == (0, "")
    return p.stdout


def test_help_names_every_option(help_text):
    missing = sorted(n for n in parser_long_options() if not mentions_option(help_text, n))
    assert not missing, "options -h does not name: %s" % missing
    shorts = sorted(c for c in parser_short_options()
                    if not re.search(r"(?<![\w-])-%s(?![\w-])" % c, help_text))
    assert not shorts, "short options -h does not name: %s" % shorts
    assert max(len(l) for l in help_text.splitlines()) <= 80


def test_help_groups_as_the_manual(help_text, man_text):
    """-h's headings (lines at the left margin) are the manual's option
    sections, in the same order."""
    headings = [m.group(1).upper() for m in
                (re.match(r"([A-Z][a-z]+(?: [a-z]+)*)(?: \(.*\))?:", l)
                 for l in help_text.splitlines()) if m and m.group(1) != "Usage"]
    assert headings == ["COMMANDS", "TABLES", "OUTPUT FORMATS", "SELECTORS AND PARAMETERS",
                        "EXPECTATION PARAMETERS", "EVENT OPTIONS", "OTHER", "GROUPED COUNTS",
                        "ALL NAMESPACES", "EXIT STATUS"]
    sections = [l for l in man_text.splitlines() if re.fullmatch(r"[A-Z][A-Z ]+", l)]
    in_man = [next(s for s in sections if s.startswith(h)) for h in headings]
    assert in_man == sorted(in_man, key=sections.index)


# -------------------------------------------------------------- completions

def test_completions_know_every_option_and_value():
    options = parser_long_options() - OBSOLETE
    values = value_lists()
    for path in (BASH_COMPLETION, ZSH_COMPLETION, FISH_COMPLETION):
        text = path.read_text()
        if path == FISH_COMPLETION:
            missing = sorted(n for n in options
                             if not re.search(r"-l %s(?![\w-])" % re.escape(n), text))
        else:
            missing = sorted(n for n in options if not mentions_option(text, n))
        assert not missing, "%s does not complete %s" % (path.name, missing)
        for what, words in values.items():
            gone = [w for w in words if not re.search(r"(?<![\w-])%s(?![\w-])" % w, text)]
            assert not gone, "%s does not know the %s %s" % (path.name, what, gone)
        assert "/etc/xtables/connlabel.conf" in text and "CTL_CONNLABEL_CONF" in text
        assert "/run/netns" in text


def _pty_session(argv, env, line, out, cwd, timeout=20):
    """Starts an interactive shell on a pseudo-terminal, waits for its
    prompt (READY>), types `line` and a TAB (then, for bash, the key that
    writes the line), and waits until the hooks have written DONE to
    `out`. Returns the hooks' lines."""
    pid, fd = pty.fork()
    if pid == 0:  # the child
        try:
            os.chdir(cwd)
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    seen = b""

    def wait_for(done):
        nonlocal seen
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                return False
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    return done()
        return True

    def finished():
        try:
            return out.read_text().endswith("DONE\n")
        except FileNotFoundError:
            return False
    try:
        assert wait_for(lambda: b"READY>" in seen), "no prompt from %s: %r" % (argv, seen[-800:])
        os.write(fd, line.encode() + b"\t" + b"\x18\x0f")  # TAB, then C-x C-o (bash)
        assert wait_for(finished), "%s: no completion for %r: %r" % (argv[0], line, seen[-800:])
        return out.read_text().splitlines()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


BASHRC = r"""
PS1='READY>'
bind 'set bell-style none'
source {lib}
source {script}
# The function ctl's completion registered, wrapped to report its answer.
__ctltest_spec=$(complete -p ctl)
__ctltest_fn=$(sed -n 's/.*-F \([^ ]*\).*/\1/p' <<< "$__ctltest_spec")
_ctltest_wrapper() {{
    "$__ctltest_fn" "$@"
    local m
    for m in "${{COMPREPLY[@]}}"; do printf 'M:%s\n' "$m"; done >> "$CTLTEST_OUT"
}}
eval "${{__ctltest_spec/-F $__ctltest_fn/-F _ctltest_wrapper}}"
bind -x '"\C-x\C-o": printf "LINE:%s\nDONE\n" "$READLINE_LINE" >> "$CTLTEST_OUT"'
"""

ZSHRC = r"""
PS1='READY>'
fpath=({completions} $fpath)
autoload -Uz compinit && compinit -u -D
# Every match added, but not the calls that only compute (-O, -A, -D).
compadd() {{
  if (( ${{@[(I)-[OAD]*]}} )); then builtin compadd "$@"; return; fi
  local -a __m
  builtin compadd -O __m "$@"
  (( $#__m )) && print -rl -- M:${{^__m}} >> $CTLTEST_OUT
  builtin compadd "$@"
}}
_ctltest_complete() {{
  zle complete-word
  print -r -- "LINE:$BUFFER" >> $CTLTEST_OUT
  print DONE >> $CTLTEST_OUT
}}
zle -N _ctltest_complete
bindkey '^I' _ctltest_complete
"""


def _hook_result(lines):
    matches = [l[2:] for l in lines if l.startswith("M:")]
    line = [l[5:] for l in lines if l.startswith("LINE:")]
    return matches, line[-1] if line else None


def complete_bash(line, env, tmp):
    need("bash")
    assert BASH_COMPLETION_LIB.exists(), "install bash-completion (scripts/deps.sh)"
    rc = tmp / "bashrc"
    rc.write_text(BASHRC.format(lib=BASH_COMPLETION_LIB, script=BASH_COMPLETION))
    out = tmp / "bash.out"
    out.unlink(missing_ok=True)
    env = dict(env, CTLTEST_OUT=str(out), TERM="dumb", INPUTRC="/dev/null")
    lines = _pty_session(["bash", "--noprofile", "--rcfile", str(rc), "-i"], env, line, out, tmp)
    return _hook_result(lines)


def complete_zsh(line, env, tmp):
    need("zsh")
    zdot = tmp / "zdot"
    zdot.mkdir(exist_ok=True)
    (zdot / ".zshrc").write_text(ZSHRC.format(completions=COMPLETIONS))
    out = tmp / "zsh.out"
    out.unlink(missing_ok=True)
    env = dict(env, CTLTEST_OUT=str(out), TERM="dumb", ZDOTDIR=str(zdot))
    # -d: not /etc/zsh/zshrc (the user's setup), only ours.
    lines = _pty_session(["zsh", "-d", "-i"], env, line, out, tmp)
    return _hook_result(lines)


def complete_fish(line, env, tmp):
    need("fish")
    env = dict(env, CTLTEST_LINE=line, HOME=str(tmp))
    p = subprocess.run(["fish", "--no-config", "-c",
                        'source $argv[1]; complete -C"$CTLTEST_LINE"', str(FISH_COMPLETION)],
                       env=env, cwd=tmp, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return [l.split("\t")[0] for l in p.stdout.splitlines()], None


SHELLS = {"bash": complete_bash, "zsh": complete_zsh, "fish": complete_fish}


def _last_item(line, match):
    """A match as the item being completed: zsh reports the item after the
    list's commas, bash and fish the whole word (fish also with --opt=)."""
    word = line.split(" ")[-1]
    if word.startswith("--") and "=" in word and match.startswith(word.split("=")[0] + "="):
        match = match.split("=", 1)[1]
    return match.rsplit(",", 1)[-1]


ALL_COMMANDS = {"-L", "-G", "-D", "-I", "-A", "-U", "-E", "-F", "-C", "-S", "-R",
                "-h", "-V", "--dump", "--get", "--delete", "--create", "--add",
                "--update", "--event", "--flush", "--counter", "--stats",
                "--load-file", "--help", "--version"}

# (partial line, the matches exactly or (at least, none of), the line after TAB
# where the match is unique (bash and zsh)).
CASES = [
    ("ctl -", ("superset", ALL_COMMANDS | {"-p", "-o", "-s", "--output", "--netns", "--zone"}, set()),
     None),
    ("ctl -L --", ("superset", {"--output", "--src", "--protonum", "--netns", "--label-del"},
                   {"--dump", "--update", "--sport"}), None),
    ("ctl -L -p tcp --", ("superset", {"--sport", "--dport", "--state", "--reply-port-src"},
                          {"--icmp-type", "--role"}), None),
    ("ctl -R lo", {"load-me.txt"}, "ctl -R load-me.txt"),
    ("ctl -L ex", {"expect"}, "ctl -L expect"),
    ("ctl -L ", {"conntrack", "expect", "dying", "unconfirmed"}, None),
    ("ctl -p t", {"tcp"}, "ctl -p tcp"),
    ("ctl -L -p tcp --state ES", {"ESTABLISHED"}, "ctl -L -p tcp --state ESTABLISHED"),
    ("ctl -L -p tcp --state CL", {"CLOSE", "CLOSE_WAIT"}, None),
    ("ctl -L -p sctp --state COOKIE_", {"COOKIE_WAIT", "COOKIE_ECHOED"}, None),
    ("ctl -L -p 33 --state RE", {"REQUEST", "RESPOND"}, None),
    ("ctl -L -p tcp --sp", {"--sport"}, "ctl -L -p tcp --sport"),
    ("ctl -E -p icmp --icmp-", {"--icmp-type", "--icmp-code", "--icmp-id"}, None),
    ("ctl -L -p 6 --sta", {"--state", "--status"}, None),
    ("ctl -I -p dccp --role s", {"server"}, "ctl -I -p dccp --role server"),
    ("ctl -o x", {"xml"}, "ctl -o xml"),
    ("ctl -L -o j", {"json"}, "ctl -L -o json"),
    ("ctl -L -o extended,x", {"xml"}, "ctl -L -o extended,xml"),
    ("ctl -L --output=extended,i", {"id"}, "ctl -L --output=extended,id"),
    ("ctl -L -f ipv", {"ipv4", "ipv6"}, None),
    ("ctl -u AS", {"ASSURED"}, "ctl -u ASSURED"),
    ("ctl -L -u ASSURED,SE", {"SEEN_REPLY"}, "ctl -L -u ASSURED,SEEN_REPLY"),
    ("ctl -e N", {"NEW"}, "ctl -e NEW"),
    ("ctl -E -e NEW,D", {"DESTROY"}, "ctl -E -e NEW,DESTROY"),
    ("ctl -L -l ", set(LABELS), None),
    ("ctl -L -l ctl-o", {"ctl-one"}, "ctl -L -l ctl-one"),
    ("ctl -U --label-add ctl-zero,ctl-f", {"ctl-five"}, "ctl -U --label-add ctl-zero,ctl-five"),
    ("ctl -U --label-del ctl-l", {"ctl-last"}, "ctl -U --label-del ctl-last"),
    ("ctl -S -o m", {"metrics"}, "ctl -S -o metrics"),
    ("ctl -S --inte", {"--interval"}, "ctl -S --interval"),
    ("ctl -L --labelm", {"--labelmap"}, "ctl -L --labelmap"),
    ("ctl -L --labelmap lo", {"load-me.txt"}, "ctl -L --labelmap load-me.txt"),
]


@pytest.fixture(scope="module")
def label_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("labels") / "connlabel.conf"
    path.write_text(LABEL_FILE_TEXT)
    return path


def _check(shell, line, expected, after, env, tmp):
    matches, typed = SHELLS[shell](line, env, tmp)
    got = {_last_item(line, m) for m in matches}
    if isinstance(expected, tuple):
        _, at_least, none_of = expected
        assert at_least <= got, "%s %r: missing %s in %s" % (shell, line, at_least - got, sorted(got))
        assert not (got & none_of), "%s %r: unexpected %s" % (shell, line, got & none_of)
    else:
        assert got == expected, "%s %r: %s" % (shell, line, sorted(got))
    if after is not None and typed is not None:
        assert typed.rstrip() == after, "%s %r became %r" % (shell, line, typed)


@pytest.mark.parametrize("shell", sorted(SHELLS))
@pytest.mark.parametrize("line,expected,after", CASES, ids=[c[0] for c in CASES])
def test_completion(shell, line, expected, after, label_file, tmp_path):
    env = dict(os.environ, CTL_CONNLABEL_CONF=str(label_file))
    (tmp_path / "load-me.txt").write_text("-F\n")  # for -R
    _check(shell, line, expected, after, env, tmp_path)


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_labels_from_connlabel_conf(shell, labelmap, tmp_path):
    """Without CTL_CONNLABEL_CONF the names come from
    /etc/xtables/connlabel.conf (the suite's label map; only read here, so
    the same content put there by a concurrent run will do)."""
    try:
        content = labelmap.path.read_text()
    except OSError:
        content = None
    if content != LABELMAP_CONTENT:
        labelmap.skip_unless_intact()
    names = set(re.findall(r"^\d+ (\S+)$", LABELMAP_CONTENT, re.M))
    env = dict(os.environ)
    env.pop("CTL_CONNLABEL_CONF", None)
    _check(shell, "ctl -L -l ctl-", names, None, env, tmp_path)


@pytest.mark.parametrize("shell", sorted(SHELLS))
@pytest.mark.parametrize("spelling", ["--labelmap %s", "--labelmap=%s"])
def test_completion_labels_from_labelmap(shell, spelling, label_file, tmp_path):
    """--labelmap FILE on the line: the names come from FILE (before
    CTL_CONNLABEL_CONF's)."""
    other = tmp_path / "other.conf"
    other.write_text("3 lm-three\n4 lm-four\n# 5 lm-five\n")
    env = dict(os.environ, CTL_CONNLABEL_CONF=str(label_file))
    line = "ctl " + spelling % other + " -L -l lm-"
    _check(shell, line, {"lm-three", "lm-four"}, None, env, tmp_path)
    _check(shell, "ctl -L -l ctl-o", {"ctl-one"}, None, env, tmp_path)


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_completion_netns_names(shell, tmp_path):
    ns = Netns("completion")
    try:
        prefix = ns.name[:-3]
        matches, _ = SHELLS[shell]("ctl --netns %s" % prefix, dict(os.environ), tmp_path)
        assert ns.name in matches, (shell, matches)
        assert all(m.startswith(prefix) for m in matches), matches
    finally:
        ns.destroy()


# ------------------------------------------------------ install / uninstall

def _make(target, destdir, prefix=None):
    need("make")
    args = ["make", "--no-print-directory", "-C", str(REPO), target,
            "DESTDIR=%s" % destdir, "BIN=%s" % CTL]
    if prefix:
        args.append("PREFIX=%s" % prefix)
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def _files(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode)
            for p in Path(root).rglob("*") if p.is_file()}


@pytest.mark.parametrize("prefix,zsh_dir", [
    ("/usr", "share/zsh/vendor-completions"),
    (None, "share/zsh/site-functions"),  # the default, /usr/local
])
def test_install_uninstall(prefix, zsh_dir, tmp_path):
    dest = tmp_path / "dest"
    _make("install", dest, prefix)
    root = (prefix or "/usr/local").lstrip("/")
    expected = {
        root + "/sbin/ctl": 0o755,
        root + "/share/man/man8/ctl.8": 0o644,
        root + "/share/bash-completion/completions/ctl": 0o644,
        root + "/" + zsh_dir + "/_ctl": 0o644,
        root + "/share/fish/vendor_completions.d/ctl.fish": 0o644,
    }
    assert _files(dest) == expected
    assert (dest / root / "sbin/ctl").read_bytes() == Path(CTL).read_bytes()
    assert (dest / root / "share/man/man8/ctl.8").read_text() == MAN.read_text()
    assert (dest / root / "share/bash-completion/completions/ctl").read_text() == \
        BASH_COMPLETION.read_text()
    assert (dest / root / zsh_dir / "_ctl").read_text() == ZSH_COMPLETION.read_text()

    # Each is where its program looks by default (DESTDIR in front).
    env = dict(os.environ, MANPATH=str(dest / root / "share/man"))
    p = subprocess.run(["man", "-w", "ctl"], env=env, capture_output=True, text=True)
    assert p.stdout.strip() == str(dest / root / "share/man/man8/ctl.8"), p.stdout + p.stderr
    # bash-completion's on-demand loader: the directories of XDG_DATA_DIRS
    # (default /usr/local/share:/usr/share), here under DESTDIR.
    env = dict(os.environ, XDG_DATA_DIRS="%s/usr/local/share:%s/usr/share" % (dest, dest))
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c",
                        'source %s; __load_completion ctl; complete -p ctl' % BASH_COMPLETION_LIB],
                       env=env, capture_output=True, text=True, timeout=60)
    assert "-F _ctl ctl" in p.stdout, p.stdout + p.stderr
    # zsh: this zsh's own default $fpath, every directory under DESTDIR.
    p = subprocess.run(["zsh", "-f", "-c",
                        'fpath=(%s${^fpath} $fpath); autoload -Uz compinit; compinit -u -D; '
                        'print -r -- $_comps[ctl]' % dest],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "_ctl", p.stdout + p.stderr
    # fish: the vendor directory of each XDG data directory (fish loads
    # completions only for a command it finds).
    env = dict(os.environ, XDG_DATA_DIRS=str(dest / root / "share"), HOME=str(tmp_path),
               PATH="%s:%s" % (dest / root / "sbin", os.environ.get("PATH", "")))
    p = subprocess.run(["fish", "-c", 'complete -C"ctl -p ud"'],
                       env=env, capture_output=True, text=True, timeout=60)
    assert [l.split("\t")[0] for l in p.stdout.splitlines()] == ["udp", "udplite"], \
        p.stdout + p.stderr

    _make("uninstall", dest, prefix)
    assert _files(dest) == {}
