#!/usr/bin/env bash
# LDIF-to-snapshot build rate of `rcptguard snapshot build --from_ldif`
# against OpenLDAP's `slapadd -q` importing the same LDIF into a throwaway
# back_mdb, in the same run on the same machine (issue 3, BENCHMARKS.md).
#
#   tests/bench/build_bench.sh [--entries N] [--cli PATH] [--workdir DIR] [--keep]
#
#   --entries N   generated AD entries (default 1000000)
#   --cli PATH    the rcptguard binary (default: build-rel/clients/rcptguard,
#                 or $RG_CLI); use a Release build
#   --workdir DIR where the LDIF, snapshot and mdb go (default: a fresh
#                 mktemp -d; removed at the end unless --keep)
#
# What is timed, and what is not:
#   * The LDIF is made by tools/gen_ad_ldif.py, then prepared once (not
#     timed): the leading `version: 1` line is dropped (slapadd refuses it)
#     and leaf DNs get a unique suffix on their first RDN, because the
#     generator repeats display names (about 30% of DNs collide) and a
#     directory server cannot hold two entries with one DN. Both tools read
#     this same prepared file.
#   * rcptguard: the whole `snapshot build` process, wall clock: read and map
#     every entry, normalize and fingerprint every address, build the
#     fingerprint set, write and fsync the snapshot.
#   * slapadd: the whole `slapadd -q -s` process, wall clock, into an empty
#     back_mdb with `index objectClass eq`, using core, cosine,
#     inetorgperson, tests/testdata/ldap/ad-lite.schema and a few attribute
#     types the generator uses that ad-lite lacks (written below). -s skips
#     schema checks, which ad-lite's minimal classes would fail (`user` is
#     not an organizationalPerson there); that is less work for slapadd.
#   * Page cache: each tool reads the prepared LDIF once untimed first, so
#     neither pays for cold reads.
#
# Every step is bounded with timeout(1); the script exits non-zero when any
# step fails. Needs python3, slapd (slapadd) and coreutils.
set -euo pipefail

ENTRIES=1000000
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
CLI="${RG_CLI:-$REPO/build-rel/clients/rcptguard}"
WORKDIR=""
KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entries) ENTRIES="$2"; shift 2 ;;
    --cli) CLI="$2"; shift 2 ;;
    --workdir) WORKDIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "build_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

SLAPADD=/usr/sbin/slapadd
[[ -x "$CLI" ]] || { echo "build_bench.sh: no rcptguard binary at $CLI (--cli)" >&2; exit 2; }
[[ -x "$SLAPADD" ]] || { echo "build_bench.sh: $SLAPADD missing (apt-get install slapd)" >&2; exit 2; }

if [[ -z "$WORKDIR" ]]; then
  WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/rg-build-bench-XXXXXX")"
else
  mkdir -p "$WORKDIR"
fi
cleanup() { [[ $KEEP -eq 1 ]] || rm -rf "$WORKDIR"; }
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }

echo "== generating $ENTRIES AD entries (tools/gen_ad_ldif.py)"
timeout 1800 python3 "$REPO/tools/gen_ad_ldif.py" --entries "$ENTRIES" --seed 1 \
  -o "$WORKDIR/generated.ldif"

echo "== preparing the LDIF both tools read"
timeout 1800 python3 - "$WORKDIR/generated.ldif" "$WORKDIR/bench.ldif" <<'PY'
import base64, sys

src, dst = sys.argv[1], sys.argv[2]


def first_rdn_end(dn):
    i = 0
    while i < len(dn):
        if dn[i] == "\\":
            i += 2
            continue
        if dn[i] == ",":
            return i
        i += 1
    return len(dn)


def logical_dns(path):
    """Yields (decoded dn, was base64) for every record, unfolding lines."""
    with open(path, encoding="utf-8", newline="\n") as f:
        dn_line = None
        for raw in f:
            line = raw.rstrip("\n")
            if dn_line is not None:
                if line.startswith(" "):
                    dn_line += line[1:]
                    continue
                yield dn_line
                dn_line = None
            if line.startswith("dn:"):
                dn_line = line
        if dn_line is not None:
            yield dn_line


def decode(logical):
    if logical.startswith("dn:: "):
        return base64.b64decode(logical[5:]).decode("utf-8")
    return logical[4:]


# Pass 1: DNs that have children keep their name; parents the file lacks
# (the generator names "CN=Microsoft Exchange System Objects" but never
# writes it) get a container entry before their first child.
parents = {}
present = set()
root = None  # the first record: the naming context (suffix)
for logical in logical_dns(src):
    dn = decode(logical)
    root = root or dn.lower()
    present.add(dn.lower())
    parent = dn[first_rdn_end(dn) + 1:]
    if parent:
        parents.setdefault(parent.lower(), parent)
missing = {k: v for k, v in parents.items()
           if k not in present and k.endswith("," + root)}
written = set()


def ensure_parent(out, dn):
    parent = dn[first_rdn_end(dn) + 1:]
    key = parent.lower()
    if key not in missing or key in written:
        return
    ensure_parent(out, parent)
    written.add(key)
    rdn = parent[:first_rdn_end(parent)]
    attr, _, value = rdn.partition("=")
    out.write("dn: %s\nobjectClass: top\nobjectClass: organizationalRole\n%s: %s\n\n"
              % (parent, attr, value))

counter = 0


def unique_dn(dn):
    """cn=Name,ou=... -> cn=Name e123,ou=... for leaf cn= entries."""
    global counter
    if dn[:3].lower() != "cn=" or dn.lower() in parents:
        return dn
    counter += 1
    i = first_rdn_end(dn)
    return "%s e%d%s" % (dn[:i], counter, dn[i:])


def emit_dn(out, logical):
    ensure_parent(out, decode(logical))
    dn = unique_dn(decode(logical))
    if logical.startswith("dn:: "):
        out.write("dn:: %s\n" % base64.b64encode(dn.encode("utf-8")).decode("ascii"))
    else:
        out.write("dn: %s\n" % dn)


# Pass 2: copy, renaming leaf DNs and dropping "version: 1".
with open(src, encoding="utf-8", newline="\n") as f, \
        open(dst, "w", encoding="utf-8", newline="\n") as out:
    first = True
    dn_line = None  # a dn line being unfolded
    for raw in f:
        line = raw.rstrip("\n")
        if first:
            first = False
            if line == "version: 1":
                continue
        if dn_line is not None:
            if line.startswith(" "):
                dn_line += line[1:]
                continue
            emit_dn(out, dn_line)
            dn_line = None
        if line.startswith("dn:"):
            dn_line = line
            continue
        out.write(line + "\n")
    if dn_line is not None:
        emit_dn(out, dn_line)
PY
rm -f "$WORKDIR/generated.ldif"
LDIF="$WORKDIR/bench.ldif"
RECORDS=$(grep -c '^dn:' "$LDIF" || true)
BYTES=$(stat -c %s "$LDIF")

echo "== rcptguard snapshot build"
"$CLI" snapshot keygen --out "$WORKDIR/fingerprint.key" >/dev/null
cat "$LDIF" >/dev/null
T0=$(now)
timeout 1800 "$CLI" snapshot build --from_ldif "$LDIF" --preset ad \
  --domains example.com,example.org,mail.example.com \
  --key "$WORKDIR/fingerprint.key" --out "$WORKDIR/bench.rgs" \
  | tee "$WORKDIR/build.out"
T1=$(now)
RG_S=$(elapsed "$T0" "$T1")
RG_ADDRESSES=$("$CLI" snapshot inspect "$WORKDIR/bench.rgs" --json | awk -F': ' '/^  "address_count"/ { sub(",", "", $2); print $2 }')
RG_SIZE=$(stat -c %s "$WORKDIR/bench.rgs")

echo "== slapadd -q -s into a fresh back_mdb"
mkdir -p "$WORKDIR/slapd/db"
cat > "$WORKDIR/slapd/bench-extras.schema" <<'EOF'
# Attributes and a class tools/gen_ad_ldif.py emits that ad-lite.schema does
# not define (benchmark only; OpenLDAP's experimental arc).
attributetype ( 1.3.6.1.4.1.4203.666.77.1.1 NAME 'dNSHostName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.4203.666.77.1.2 NAME 'department'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.3.6.1.4.1.4203.666.77.1.3 NAME 'groupType'
	EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 )
attributetype ( 1.3.6.1.4.1.4203.666.77.1.4 NAME 'msExchDynamicDLFilter'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.4203.666.77.2.1 NAME 'domainDNS'
	SUP top AUXILIARY MAY ( name ) )
EOF
MODULES=""
if [[ -r /usr/lib/ldap/back_mdb.so ]]; then
  MODULES=$'modulepath /usr/lib/ldap\nmoduleload back_mdb'
fi
cat > "$WORKDIR/slapd/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include $REPO/tests/testdata/ldap/ad-lite.schema
include $WORKDIR/slapd/bench-extras.schema
$MODULES
database mdb
maxsize 68719476736
suffix "DC=corp,DC=example,DC=com"
rootdn "CN=admin,DC=corp,DC=example,DC=com"
directory $WORKDIR/slapd/db
index objectClass eq
EOF
cat "$LDIF" >/dev/null
T0=$(now)
timeout 3600 "$SLAPADD" -q -s -f "$WORKDIR/slapd/slapd.conf" -l "$LDIF"
T1=$(now)
SA_S=$(elapsed "$T0" "$T1")
SA_ENTRIES=$(timeout 1800 /usr/sbin/slapcat -f "$WORKDIR/slapd/slapd.conf" 2>/dev/null | grep -c '^dn:' || true)
SA_SIZE=$(du -s -B1 "$WORKDIR/slapd/db" | cut -f1)  # allocated, not the sparse maxsize

RG_RATE=$(rate "$RECORDS" "$RG_S")
SA_RATE=$(rate "$RECORDS" "$SA_S")
RATIO=$(awk -v a="$RG_RATE" -v b="$SA_RATE" 'BEGIN { printf "%.1f", a / b }')
echo
echo "== results ($(nproc) CPUs, $(uname -r))"
printf '%-34s %s\n' "LDIF records" "$RECORDS ($(awk -v b="$BYTES" 'BEGIN { printf "%.0f MB", b / 1e6 }'))"
printf '%-34s %s s, %s entries/s (%s addresses, snapshot %s bytes)\n' \
  "rcptguard snapshot build" "$RG_S" "$RG_RATE" "$RG_ADDRESSES" "$RG_SIZE"
printf '%-34s %s s, %s entries/s (%s entries stored, mdb %s bytes)\n' \
  "slapadd -q -s (back_mdb)" "$SA_S" "$SA_RATE" "$SA_ENTRIES" "$SA_SIZE"
printf '%-34s %sx\n' "ratio (rcptguard / slapadd)" "$RATIO"
if [[ "$SA_ENTRIES" != "$RECORDS" ]]; then
  echo "build_bench.sh: slapadd stored $SA_ENTRIES of $RECORDS entries" >&2
  exit 1
fi
