#!/usr/bin/env python3
"""Writes the Debian changelog of the ctl package from CHANGELOG.md.

Each "## VERSION — YYYY-MM-DD" section becomes one Debian entry (ctl is a
native package: the version has no Debian revision), its lines the entry's
text. A section may give the time too ("## VERSION — YYYY-MM-DD HH:MM UTC"):
Debian wants each entry later than the one before, so two versions of one
day need it. The maintainer is the package's (MAINTAINER, as in its control
file).

Usage: deb-changelog.py CHANGELOG.md "Name <address>"      (to stdout)
"""
import datetime
import re
import sys
import textwrap

HEADING = re.compile(r"^## (\S+) \S+ (\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?)(?: UTC)?$")


def sections(text):
    """(version, date, [paragraph lines]) for each version, newest first."""
    out = []
    for line in text.splitlines():
        m = HEADING.match(line)
        if m:
            out.append((m.group(1), m.group(2), []))
        elif out:
            out[-1][2].append(line)
    return out


def entry(version, date, lines, maintainer):
    # Items ("- ...") and plain paragraphs, each as one "  * " item.
    items, cur = [], []
    for line in lines + [""]:
        if line.startswith("- ") or not line.strip():
            if cur:
                items.append(" ".join(cur))
            cur = [line[2:].strip()] if line.startswith("- ") else []
        else:
            cur.append(line.strip())
    body = []
    for item in items:
        item = item.replace("`", "")
        body += textwrap.wrap(item, width=76, initial_indent="  * ", subsequent_indent="    ",
                              break_on_hyphens=False)
    form = "%Y-%m-%d %H:%M" if " " in date else "%Y-%m-%d"
    when = datetime.datetime.strptime(date, form).replace(tzinfo=datetime.timezone.utc)
    return "ctl (%s) unstable; urgency=medium\n\n%s\n\n -- %s  %s\n" % (
        version, "\n".join(body), maintainer, when.strftime("%a, %d %b %Y %H:%M:%S +0000"))


def main():
    path, maintainer = sys.argv[1], sys.argv[2]
    found = sections(open(path, encoding="utf-8").read())
    if not found:
        sys.exit("deb-changelog: no '## VERSION — DATE' section in %s" % path)
    sys.stdout.write("\n".join(entry(v, d, l, maintainer) for v, d, l in found))


if __name__ == "__main__":
    main()
