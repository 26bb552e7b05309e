#!/usr/bin/env python3
"""Instructions per call of a function, from a callgrind output file.

Usage: callgrind_calls.py CALLGRIND_OUT REGEX

Sums, over every call edge into a function whose name matches REGEX, the
number of calls and their inclusive instruction count, and prints
"calls instructions instructions_per_call". Use with valgrind's
--tool=callgrind (instruction counts are exact, unlike wall-clock time on a
shared machine); see BENCHMARKS.md.
"""
import re
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    pattern = re.compile(sys.argv[2])
    names = {}
    callee = None
    calls = cost = 0
    with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3)
            if m.group(1) == "c":
                callee = names.get(m.group(2), "")
            continue
        if line.startswith("calls=") and callee and pattern.search(callee):
            calls += int(line.split("=")[1].split()[0])
            cost += int(lines[i + 1].split()[1])
    print(calls, cost, round(cost / calls, 1) if calls else 0)
    return 0 if calls else 1


if __name__ == "__main__":
    sys.exit(main())
