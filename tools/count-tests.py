#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Counts the test cases of one meson build's last `meson test` run.

Reads BUILD/meson-logs/testlog.json (one object per meson test) and
BUILD/meson-logs/testlog.junit.xml (which holds, for tests declared with
protocol 'gtest', every GoogleTest case).  A case counts as failed when it
has a <failure> or <error>, skipped when it has <skipped>, passed
otherwise.  A meson test that failed (crash, timeout, a failure outside any
case) without any failed case in the XML adds one failed case, so a suite
that dies before writing its XML is never counted as passing; a passing
meson test with no case in the XML (not a gtest) counts as one case.

Prints "PASSED FAILED SKIPPED" on one line; with --list also one line per
failed case on stderr.  A missing log counts as one failure.
Usage: tools/count-tests.py BUILD_DIR [--list]
"""
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def main():
    build = sys.argv[1]
    listing = "--list" in sys.argv[2:]
    logs = os.path.join(build, "meson-logs")
    try:
        with open(os.path.join(logs, "testlog.json"), encoding="utf-8") as fh:
            results = [json.loads(line) for line in fh if line.strip()]
    except OSError as e:
        print("count-tests: %s" % e, file=sys.stderr)
        print("0 1 0")
        return 0
    cases = {}  # meson test name -> [passed, failed, skipped]
    try:
        with open(os.path.join(logs, "testlog.junit.xml"), "rb") as fh:
            raw = fh.read()
        # meson copies a test's raw output into <system-out>; terminal escape
        # codes (a gtest run under mpirun colours its output) are not legal
        # XML 1.0 characters, so they are dropped before parsing
        raw = re.sub(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", b"", raw)
        root = ET.fromstring(raw)
    except (OSError, ET.ParseError) as e:
        print("count-tests: %s: %s (counting one case per meson test)" % (logs, e),
              file=sys.stderr)
        root = None
    names = sorted((r["name"] for r in results), key=len, reverse=True)
    if root is not None:
        for suite in root.iter("testsuite"):
            sname = suite.get("name", "")
            # "<project>.<meson test>.<gtest suite>"
            rest = sname.split(".", 1)[1] if "." in sname else sname
            owner = next((n for n in names if rest.startswith(n + ".")), None)
            if owner is None:
                continue
            c = cases.setdefault(owner, [0, 0, 0])
            for case in suite.iter("testcase"):
                if case.find("failure") is not None or case.find("error") is not None:
                    c[1] += 1
                    if listing:
                        print("FAILED %s.%s" % (rest, case.get("name")), file=sys.stderr)
                elif case.find("skipped") is not None:
                    c[2] += 1
                else:
                    c[0] += 1
    passed = failed = skipped = 0
    for r in results:
        p, f, s = cases.get(r["name"], [0, 0, 0])
        ok = r.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        if not ok and f == 0:
            f = 1
            if listing:
                print("FAILED %s (%s, no failed case recorded)" % (r["name"], r.get("result")),
                      file=sys.stderr)
        if ok and p + f + s == 0:
            if r.get("result") == "SKIP":
                s = 1
            else:
                p = 1
        passed += p
        failed += f
        skipped += s
    print("%d %d %d" % (passed, failed, skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
