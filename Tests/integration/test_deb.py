"""make deb: the Debian package, built, inspected, installed with apt, used
from its installed path, and purged.

* The version has one source, `version` in Sources/CTCommands/Messages.swift:
  `ctl -V`, the manual's .TH line, the README's "Version:" line,
  CHANGELOG.md's newest section, the package's Version field and its Debian
  changelog must all name it.
* The package (built once per module with BIN=$CTL into a temporary
  directory; make deb also runs lintian and fails on a warning or error)
  holds exactly the expected files, owned by root, with their modes; the
  binary is $CTL stripped, the manual and completions are the repository's,
  md5sums match, Depends names libc6 and libmnl0 (from dpkg-shlibdeps).
* `apt-get install ./ctl_VERSION_amd64.deb` on this machine: /usr/sbin/ctl
  -V, and -L in a namespace the test fills, against conntrack; man -w finds
  the manual; bash-completion, zsh's compinit and fish load the completions
  from where the package put them; `apt-get purge ctl` then leaves none of
  the package's files, directories or dpkg records behind. The test refuses
  to run (fails) if a ctl package or /usr/sbin/ctl is already there, and
  purges the package on the way out whatever happens.
"""

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import CONNTRACK, CTL, IP, REPO, Netns, normalize_listing, run

MESSAGES = REPO / "Sources" / "CTCommands" / "Messages.swift"
INSTALLED = Path("/usr/sbin/ctl")
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends"]

# path in the package -> mode (every file; directories are checked apart)
EXPECTED_FILES = {
    "usr/sbin/ctl": 0o755,
    "usr/share/man/man8/ctl.8.gz": 0o644,
    "usr/share/bash-completion/completions/ctl": 0o644,
    "usr/share/zsh/vendor-completions/_ctl": 0o644,
    "usr/share/fish/vendor_completions.d/ctl.fish": 0o644,
    "usr/share/doc/ctl/copyright": 0o644,
    "usr/share/doc/ctl/changelog.gz": 0o644,
}
SAME_AS_REPO = {
    "usr/share/bash-completion/completions/ctl": "completions/ctl.bash",
    "usr/share/zsh/vendor-completions/_ctl": "completions/_ctl",
    "usr/share/fish/vendor_completions.d/ctl.fish": "completions/ctl.fish",
    "usr/share/doc/ctl/copyright": "packaging/copyright",
}


def need(*programs):
    missing = [p for p in programs if not shutil.which(p)]
    assert not missing, "install %s (scripts/deps.sh lists them)" % " ".join(missing)


def source_version():
    m = re.search(r'^let version = "([^"]+)"$', MESSAGES.read_text(), re.M)
    assert m, "no `let version = \"...\"` in %s" % MESSAGES
    return m.group(1)


VERSION = source_version()


def sh(argv, **kw):
    kw.setdefault("timeout", 300)
    return subprocess.run(argv, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    need("make", "dpkg-deb", "dpkg-shlibdeps", "lintian", "strip")
    out = tmp_path_factory.mktemp("deb")
    p = sh(["make", "--no-print-directory", "-C", str(REPO), "deb", "BIN=%s" % CTL,
            "DEB_DIR=%s" % out], timeout=900)
    assert p.returncode == 0, "make deb failed:\n" + p.stdout[-4000:] + p.stderr[-4000:]
    assert re.search(r"^lintian .*--fail-on warning,error", p.stdout, re.M), \
        "make deb did not run lintian:\n" + p.stdout
    path = out / ("ctl_%s_amd64.deb" % VERSION)
    assert path.is_file(), "make deb made no %s: %s" % (path.name, sorted(os.listdir(out)))
    return path


def members(deb_path):
    """{path: TarInfo} of the package's data archive (dpkg-deb --fsys-tarfile)."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb_path)],
                          capture_output=True, check=True).stdout
    tar = tarfile.open(fileobj=io.BytesIO(data))
    return {m.name[2:] if m.name.startswith("./") else m.name: (m, tar) for m in tar.getmembers()}


def field(deb_path, name):
    return sh(["dpkg-deb", "-f", str(deb_path), name], check=True).stdout.strip()


def test_version_has_one_source(deb):
    v = VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", v), v
    out = sh([CTL, "-V"]).stdout
    assert out == "ctl v%s (conntrack 1.4.7 compatible)\n" % v
    th = [l for l in (REPO / "man" / "ctl.8").read_text().splitlines() if l.startswith(".TH ")]
    assert len(th) == 1 and re.match(r'\.TH CTL 8 \S+ "ctl %s" ' % re.escape(v), th[0]), th
    readme = re.findall(r"^Version: (\S+)", (REPO / "README.md").read_text(), re.M)
    assert readme == [v]
    changelog = re.findall(r"^## (\S+) \S+ (\d{4}-\d{2}-\d{2})(?: \d{2}:\d{2} UTC)?$",
                           (REPO / "CHANGELOG.md").read_text(), re.M)
    assert changelog and changelog[0][0] == v, changelog
    assert field(deb, "Version") == v
    m = members(deb)
    member, tar = m["usr/share/doc/ctl/changelog.gz"]
    debian_changelog = gzip.decompress(tar.extractfile(member).read()).decode()
    assert debian_changelog.startswith("ctl (%s) unstable; urgency=medium\n" % v), debian_changelog
    # one Debian entry for each CHANGELOG.md section, in the same order
    assert re.findall(r"^ctl \((\S+)\)", debian_changelog, re.M) == [c[0] for c in changelog]
    # and the version check make deb runs fails on a disagreeing manual
    p = sh(["make", "--no-print-directory", "-C", str(REPO), "version-check",
            "VERSION=%s.1" % v])
    assert p.returncode != 0 and "man/ctl.8" in p.stderr, p.stdout + p.stderr


def test_deb_contents(deb, tmp_path):
    assert field(deb, "Package") == "ctl"
    assert field(deb, "Architecture") == "amd64"
    assert field(deb, "Section") and field(deb, "Priority") == "optional"
    depends = [d.strip() for d in field(deb, "Depends").split(",")]
    names = {d.split()[0] for d in depends}
    assert names == {"libc6", "libmnl0"}, depends
    assert all(re.fullmatch(r"\S+ \(>= \S+\)", d) for d in depends), depends

    m = members(deb)
    files = {p: mt.mode for p, (mt, _) in m.items() if mt.isfile()}
    assert files == EXPECTED_FILES
    assert all(mt.uname == "root" and mt.gname == "root" and mt.uid == 0 and mt.gid == 0
               for mt, _ in m.values())
    assert not [p for p, (mt, _) in m.items() if not (mt.isfile() or mt.isdir())]

    def content(path):
        member, tar = m[path]
        return tar.extractfile(member).read()

    for inside, repo_file in SAME_AS_REPO.items():
        assert content(inside) == (REPO / repo_file).read_bytes(), inside
    assert gzip.decompress(content("usr/share/man/man8/ctl.8.gz")) == \
        (REPO / "man" / "ctl.8").read_bytes()
    # gzip -n: no name or time stamp in the header (reproducible)
    assert content("usr/share/man/man8/ctl.8.gz")[4:8] == b"\0\0\0\0"
    copyright_text = content("usr/share/doc/ctl/copyright").decode()
    assert copyright_text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")

    # The binary: $CTL stripped, runs, and needs only libc, libm and libmnl.
    binary = tmp_path / "ctl"
    binary.write_bytes(content("usr/sbin/ctl"))
    binary.chmod(0o755)
    assert binary.stat().st_size < Path(CTL).stat().st_size
    assert sh([str(binary), "-V"]).stdout == sh([CTL, "-V"]).stdout
    symtab = sh(["readelf", "-S", "-W", str(binary)]).stdout
    assert ".symtab" not in symtab and ".comment" not in symtab, symtab
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]",
                        sh(["readelf", "-d", str(binary)]).stdout)
    assert set(needed) <= {"libc.so.6", "libm.so.6", "libmnl.so.0", "ld-linux-x86-64.so.2"} \
        and "libmnl.so.0" in needed, needed
    assert "RPATH" not in sh(["readelf", "-d", str(binary)]).stdout
    # Depends' libc6 version covers every glibc version the binary needs,
    # GLIBC_ABI_DT_RELR (2.36, packed relocations) included.
    verneeds = set(re.findall(r"Name: (GLIBC_\S+)", sh(["readelf", "-V", str(binary)]).stdout))
    needs = ["2.36" if v == "GLIBC_ABI_DT_RELR" else v[len("GLIBC_"):] for v in verneeds
             if v == "GLIBC_ABI_DT_RELR" or re.fullmatch(r"GLIBC_[\d.]+", v)]
    libc6 = [d for d in depends if d.startswith("libc6 ")][0]
    have = re.fullmatch(r"libc6 \(>= (\S+)\)", libc6).group(1)
    for v in needs:
        assert subprocess.run(["dpkg", "--compare-versions", have, "ge", v]).returncode == 0, \
            "Depends: %s, but the binary needs glibc %s" % (libc6, v)
    assert "RUNPATH" not in sh(["readelf", "-d", str(binary)]).stdout

    # md5sums: every file, right sums
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    sums = dict(reversed(l.split("  ", 1)) for l in (control / "md5sums").read_text().splitlines())
    assert set(sums) == set(EXPECTED_FILES)
    for path, digest in sums.items():
        assert hashlib.md5(content(path)).hexdigest() == digest, path
    installed_size = int(field(deb, "Installed-Size"))
    total = sum(mt.size for mt, _ in m.values() if mt.isfile())
    assert total // 1024 <= installed_size <= total // 1024 + 64, (installed_size, total)


def dpkg_status(package="ctl"):
    p = sh(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package])
    return p.stdout.strip() if p.returncode == 0 else ""


def installed_dirs(deb_path):
    return sorted((p for p, (mt, _) in members(deb_path).items() if mt.isdir() and p not in ("", ".")),
                  key=len, reverse=True)


def test_install_run_purge(deb, tmp_path):
    need("apt-get", "dpkg-query", "man", "bash", "zsh", "fish")
    status = dpkg_status()
    assert status in ("", "un"), "a ctl package is already on this machine (%s): " \
        "purge it before running this test" % status
    assert not INSTALLED.exists(), "%s exists and is not from a package: remove it " \
        "before running this test" % INSTALLED
    # directories that were there before (shared ones stay after the purge)
    existed = {d for d in installed_dirs(deb) if Path("/", d).is_dir()}
    ns = None
    try:
        p = sh(APT + ["install", "./" + deb.name], cwd=deb.parent, timeout=600,
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert dpkg_status() == "ii"
        assert sh(["dpkg-query", "-W", "-f=${Version}", "ctl"]).stdout == VERSION
        listed = set(sh(["dpkg", "-L", "ctl"]).stdout.split())
        assert {"/" + f for f in EXPECTED_FILES} <= listed

        # The installed binary, by its installed path.
        assert sh([str(INSTALLED), "-V"]).stdout == "ctl v%s (conntrack 1.4.7 compatible)\n" % VERSION
        ns = Netns("deb")
        ns.exec([IP, "link", "set", "lo", "up"])
        for i in range(1, 6):
            ns.exec([CONNTRACK, "-I", "-p", "tcp", "-s", "10.9.0.%d" % i, "-d", "10.9.1.1",
                     "--sport", str(40000 + i), "--dport", "443", "--state", "ESTABLISHED",
                     "-u", "ASSURED", "-t", "300"])
        ns.exec([CONNTRACK, "-I", "-p", "udp", "-s", "10.9.0.9", "-d", "10.9.1.2",
                 "--sport", "5353", "--dport", "53", "-t", "60"])
        o = run(ns, CONNTRACK, ["-L"])
        c = run(ns, str(INSTALLED), ["-L"])
        assert o.rc == c.rc == 0, (o, c)
        assert len(c.stdout.splitlines()) == 6, c.stdout
        assert sorted(l for l, _ in normalize_listing(c.stdout)) == \
            sorted(l for l, _ in normalize_listing(o.stdout)), (o.stdout, c.stdout)
        assert c.stderr.replace("ctl v%s: " % VERSION, "") == \
            o.stderr.replace("conntrack v1.4.7 (conntrack-tools): ", ""), (o.stderr, c.stderr)

        # The manual and the completions, where each program looks by default.
        env = {k: v for k, v in os.environ.items() if k not in ("MANPATH", "XDG_DATA_DIRS")}
        env["HOME"] = str(tmp_path)
        p = sh(["man", "-w", "ctl"], env=env)
        assert p.stdout.strip() == "/usr/share/man/man8/ctl.8.gz", p.stdout + p.stderr
        p = sh(["man", "-P", "cat", "ctl"], env=dict(env, MANWIDTH="80"))
        assert p.returncode == 0 and "show and change the kernel's connection tracking" \
            in p.stdout, p.stdout[:500] + p.stderr
        p = sh(["bash", "--norc", "--noprofile", "-c",
                "source /usr/share/bash-completion/bash_completion; __load_completion ctl; "
                "complete -p ctl"], env=env)
        assert "-F _ctl ctl" in p.stdout, p.stdout + p.stderr
        p = sh(["zsh", "-f", "-c", "autoload -Uz compinit; compinit -u -D; "
                "print -r -- $_comps[ctl] ${^fpath}/_ctl(N)"], env=env)
        assert p.stdout.split() == ["_ctl", "/usr/share/zsh/vendor-completions/_ctl"], \
            p.stdout + p.stderr
        p = sh(["fish", "-c", 'complete -C"ctl -p ud"'], env=env)
        assert [l.split("\t")[0] for l in p.stdout.splitlines()] == ["udp", "udplite"], \
            p.stdout + p.stderr
    finally:
        if ns is not None:
            ns.destroy()
        purge = sh(APT + ["purge", "ctl"], timeout=600,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert purge.returncode == 0, purge.stdout[-3000:] + purge.stderr[-3000:]

    # Nothing left: files, the package's own directories, dpkg's records.
    assert dpkg_status() in ("", "un")
    left = [f for f in EXPECTED_FILES if os.path.lexists("/" + f)]
    assert not left, left
    dirs_left = [d for d in installed_dirs(deb) if d not in existed and Path("/", d).exists()]
    assert not dirs_left, dirs_left
    assert not Path("/usr/share/doc/ctl").exists()
    records = [f for f in os.listdir("/var/lib/dpkg/info") if f.startswith("ctl.")]
    assert not records, records
