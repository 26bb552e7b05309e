#!/usr/bin/env python3
"""SMTP load for the edge benchmarks (postfix_bench.sh, haraka_bench.sh).

    smtp_driver.py PORT SECONDS SESSIONS VALID_FILE [valid|mixed]

Keeps SESSIONS SMTP sessions busy against 127.0.0.1:PORT for SECONDS
(bounded: every session stops at the deadline), each sending EHLO, MAIL
FROM and up to 300 RCPTs per transaction, one command at a time:

  valid  every recipient is a valid address of VALID_FILE, each session
         starting at its own place in the list (Haraka: every reply is 250)
  mixed  one in three recipients is one of the first 50 valid addresses,
         the others unknown addresses never asked twice (the default)

Prints one line: RCPT count, how many were not answered 250, and the
count per reply code as a Python dict (no spaces).
"""
import asyncio
import sys
import time


def main():
    if len(sys.argv) < 5 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help") else 2)
    port, secs, sessions = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    valid = [l.strip() for l in open(sys.argv[4]) if l.strip()]
    pattern = sys.argv[5] if len(sys.argv) > 5 else "mixed"
    if pattern not in ("valid", "mixed"):
        sys.exit(f"smtp_driver.py: pattern must be valid or mixed, not {pattern}")
    if pattern == "mixed":
        valid = valid[:50]
    counts = {}

    def recipient(i, n):
        if pattern == "valid":
            return valid[(i * 7 + n) % len(valid)]
        return valid[n % len(valid)] if n % 3 == 0 else f"nobody{i}x{n}@example.com"

    async def reply(r):
        while True:
            line = await r.readline()
            if not line:
                raise ConnectionError("closed")
            if line[3:4] != b"-":
                return int(line[:3])

    async def session(i, stop):
        n = 0
        while time.monotonic() < stop:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            await reply(r)
            for cmd in (b"EHLO bench.example.net", b"MAIL FROM:<s@example.net>"):
                w.write(cmd + b"\r\n")
                await reply(r)
            for _ in range(300):
                if time.monotonic() >= stop:
                    break
                w.write(b"RCPT TO:<" + recipient(i, n).encode() + b">\r\n")
                code = await reply(r)
                counts[code] = counts.get(code, 0) + 1
                n += 1
            w.write(b"QUIT\r\n")
            w.close()

    async def run():
        stop = time.monotonic() + secs
        await asyncio.gather(*(session(i, stop) for i in range(sessions)))

    asyncio.run(run())
    total = sum(counts.values())
    not_250 = total - counts.get(250, 0)
    print(total, not_250, str(dict(sorted(counts.items()))).replace(" ", ""))


if __name__ == "__main__":
    main()
