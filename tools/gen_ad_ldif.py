#!/usr/bin/env python3
"""Generates an Active Directory / Exchange style LDIF export for tests,
demos and benchmarks.

The output looks like `ldifde -f out.ldif` (or `ldapsearch -LLL` against AD)
for a small organisation whose accepted domains are example.com and
example.org, with mail.example.com as an alias domain: a `version: 1`
header, comments, lines folded at 76 bytes, and base64 (`::`) for values
that are not plain ASCII. The mix of entries:

  * mailbox users (SMTP: primary, smtp: secondaries, X500:, SIP:), some
    hidden from address lists (still recipients), some with UTF-8 names and
    an SMTPUTF8 secondary address;
  * former employees on disabled accounts (userAccountControl 514,
    msExchRecipientTypeDetails 1): excluded;
  * shared (4), room (16), equipment (32) and linked (2) mailboxes on
    disabled accounts (514): included, as Exchange delivers to them;
  * mail users (128) whose targetAddress points outside: the targetAddress
    is never a recipient address;
  * mail contacts with an external mail/targetAddress (the mapping passes
    the external address on; the directory later skips it as not served);
  * distribution groups, dynamic distribution groups, mail-enabled public
    folders, security groups and plain users without mail, organizational
    units, and computer objects (one of them, a scan-to-mail printer, with
    a mail attribute: computers are never recipients).

The first entries are fixed demo recipients, documented in
deploy/examples/README.md:
  alice@example.com, bob@example.com       mailbox users: valid
  info@example.com                          shared mailbox, disabled account: valid
  conf-room-1@example.com                   room mailbox, disabled account: valid
  carol.former@example.com                  former employee, disabled: excluded

Output is a pure function of --entries and --seed. With --expect-out, a
JSON file records what the `ad` mapping preset must produce: the counts
LoadLdif reports, every address handed to the sink (included_addresses),
those in served domains (valid_addresses), and addresses that must never be
accepted (excluded_addresses: disabled accounts, computers, targetAddress,
userPrincipalName, X500/SIP values).

Usage:
  tools/gen_ad_ldif.py --entries 300 --seed 1 -o deploy/examples/sample.ldif \\
      --expect-out deploy/examples/sample.expected.json
  tools/gen_ad_ldif.py --entries 1000000 -o /tmp/big.ldif     # ~1M entries for benchmarks

Python 3 standard library only.
"""

import argparse
import base64
import json
import random
import sys

SERVED_DOMAINS = ["example.com", "example.org", "mail.example.com"]
PRIMARY_DOMAINS = ["example.com", "example.org"]
ALIAS_DOMAIN = "mail.example.com"  # alias of example.com
BASE_DN = "DC=corp,DC=example,DC=com"

FIRST_NAMES = [
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra",
    "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle",
    "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah",
    "Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia",
    "Jacob", "Kathleen", "Gary", "Amy", "Nicholas", "Angela", "Eric", "Shirley", "Jonathan", "Anna",
    "Stephen", "Brenda", "Larry", "Pamela", "Justin", "Emma", "Scott", "Nicole", "Brandon", "Helen",
    "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Alexander", "Debra", "Frank",
    "Rachel", "Patrick", "Carolyn", "Raymond", "Janet", "Jack", "Catherine", "Dennis", "Maria", "Jerry",
    "Heather", "Tyler", "Diane", "Aaron", "Ruth", "Jose", "Julie", "Adam", "Olivia", "Nathan", "Joyce",
    "Henry", "Virginia", "Douglas", "Victoria", "Zachary", "Kelly", "Peter", "Lauren", "Kyle", "Christina",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green",
    "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez",
    "Phillips", "Evans", "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart",
    "Morris", "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson", "Brooks",
    "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price", "Alvarez",
    "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
]
# Names with non-ASCII letters: (display first, display last, ascii first, ascii last).
UTF8_NAMES = [
    ("Jürgen", "Müller", "juergen", "mueller"),
    ("Zoë", "Ångström", "zoe", "angstrom"),
    ("José", "Peña", "jose", "pena"),
    ("François", "Lefèvre", "francois", "lefevre"),
    ("Søren", "Kierkegård", "soren", "kierkegard"),
    ("Łukasz", "Wróbel", "lukasz", "wrobel"),
    ("Ștefan", "Țăran", "stefan", "taran"),
    ("Ødegaard", "Brønn", "odegaard", "bronn"),
]
DEPARTMENTS = ["Sales", "Engineering", "Finance", "Support", "Marketing", "Legal", "Operations", "HR"]
PARTNER_DOMAINS = ["fabrikam.example.net", "contoso.example.net", "tailspin.example.net", "adatum.example.net"]

UAC_NORMAL = 512
UAC_NORMAL_NO_EXPIRE = 66048  # NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
UAC_DISABLED = 514            # NORMAL_ACCOUNT | ACCOUNTDISABLE
UAC_WORKSTATION = 4096        # WORKSTATION_TRUST_ACCOUNT

TYPE_USER_MAILBOX = 1
TYPE_LINKED = 2
TYPE_SHARED = 4
TYPE_ROOM = 16
TYPE_EQUIPMENT = 32
TYPE_MAIL_CONTACT = 64
TYPE_MAIL_USER = 128
TYPE_MAIL_UNIVERSAL_DG = 256
TYPE_DYNAMIC_DG = 2048
TYPE_PUBLIC_FOLDER = 4096

PERSON_CLASSES = ["top", "person", "organizationalPerson", "user"]

# Outcomes as LoadLdif counts them.
INCLUDED, NO_ADDRESSES, WRONG_OBJECT_CLASS, DISABLED = "included", "no_addresses", "wrong_object_class", "disabled"


def is_safe_string(value):
    """RFC 2849 SAFE-STRING, plus no trailing space (SHOULD be base64)."""
    if not value:
        return True
    return (value.isascii() and value[0] not in " :<" and value[-1] != " " and "\n" not in value
            and "\r" not in value and "\0" not in value)


def fold(line, out):
    """Appends `line` folded at 76 bytes, as ldifde and ldapsearch do."""
    if len(line) <= 76:
        out.append(line)
        return
    out.append(line[:76])
    rest = line[76:]
    while rest:
        out.append(" " + rest[:75])
        rest = rest[75:]


def attr_line(name, value, out):
    if is_safe_string(value):
        fold(f"{name}: {value}", out)
    else:
        encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
        fold(f"{name}:: {encoded}", out)


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.used_locals = {}
        self.used_sams = {}
        self.counts = {"records": 0, "included": 0, "no_addresses": 0, "wrong_object_class": 0,
                       "disabled": 0, "addresses": 0}
        self.included = []
        self.excluded = []
        self.guid_counter = 0

    # -- unique names -------------------------------------------------------

    def unique(self, table, base):
        n = table.get(base, 0)
        table[base] = n + 1
        return base if n == 0 else f"{base}{n + 1}"

    def x500(self, cn):
        self.guid_counter += 1
        # Legacy Exchange DN, long enough to need folding.
        return (f"X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/"
                f"cn={self.guid_counter:032x}-{cn.replace(' ', '')[:20]}")

    # -- entry output -------------------------------------------------------

    def emit(self, out, dn, attrs, outcome, addresses, never=()):
        """Writes one record. `addresses`: what the ad preset hands to the
        sink for this entry if included (or drops if disabled). `never`:
        values that must never be taken as addresses (UPN, targetAddress,
        X500 and SIP values)."""
        attr_line("dn", dn, out)
        append = out.append
        for name, value in attrs:
            # attr_line, inlined for the common case: it dominates run time.
            if value and value.isascii() and value[0] not in " :<" and value[-1] != " " and "\n" not in value \
                    and "\r" not in value and "\0" not in value:
                line = name + ": " + value
                if len(line) <= 76:
                    append(line)
                else:
                    fold(line, out)
            else:
                attr_line(name, value, out)
        append("")
        self.counts["records"] += 1
        self.counts[outcome] += 1
        if outcome == INCLUDED:
            self.counts["addresses"] += len(addresses)
            self.included.extend(addresses)
        else:
            self.excluded.extend(addresses)
        self.excluded.extend(never)

    def person_attrs(self, first, last, sam, upn, extra_classes=()):
        attrs = [("objectClass", c) for c in PERSON_CLASSES]
        attrs += [("objectClass", c) for c in extra_classes]
        cn = f"{first} {last}"
        attrs += [("cn", cn), ("sn", last), ("givenName", first), ("displayName", cn),
                  ("sAMAccountName", sam), ("userPrincipalName", upn)]
        return attrs

    def mailbox(self, out, first, last, local, sam, domain, uac, rtype, ou="Users", extra_smtp=(), sip_differs=False,
                hidden=False, outcome=INCLUDED, utf8_local=None):
        cn = f"{first} {last}"
        dn = f"CN={cn},OU={ou},{BASE_DN}"
        upn = f"{sam}@{domain}"
        primary = f"{local}@{domain}"
        attrs = self.person_attrs(first, last, sam, upn)
        attrs.append(("department", self.rng.choice(DEPARTMENTS)))
        attrs.append(("mail", primary))
        addresses = [primary]
        proxies = [f"SMTP:{primary}"]
        if domain == "example.com":
            alias = f"{local}@{ALIAS_DOMAIN}"
            proxies.append(f"smtp:{alias}")
            addresses.append(alias)
        for extra in extra_smtp:
            proxies.append(f"smtp:{extra}")
            addresses.append(extra)
        if utf8_local is not None:
            utf8 = f"{utf8_local}@{domain}"
            proxies.append(f"smtp:{utf8}")
            addresses.append(utf8)
        x500 = self.x500(cn)
        proxies.append(x500)
        never = [upn, x500[len("X500:"):]]
        if sip_differs:
            sip = f"{local}.lync@{domain}"
            proxies.append(f"SIP:{sip}")
            never.append(sip)
        else:
            proxies.append(f"SIP:{primary}")
        self.rng.shuffle(proxies)  # AD returns multi-valued attributes in no particular order
        attrs += [("proxyAddresses", p) for p in proxies]
        attrs.append(("userAccountControl", str(uac)))
        attrs.append(("msExchRecipientTypeDetails", str(rtype)))
        if hidden:
            attrs.append(("msExchHideFromAddressLists", "TRUE"))
        self.emit(out, dn, attrs, outcome, addresses, never)
        return addresses

    def resource(self, out, local, display, rtype, domain="example.com"):
        sam = self.unique(self.used_sams, "res-" + local[:12])
        primary = f"{local}@{domain}"
        dn = f"CN={display},OU=Resources,{BASE_DN}"
        upn = f"{sam}@corp.example.com"
        attrs = [("objectClass", c) for c in PERSON_CLASSES]
        attrs += [("cn", display), ("displayName", display), ("sAMAccountName", sam),
                  ("userPrincipalName", upn), ("mail", primary)]
        x500 = self.x500(display)
        proxies = [f"SMTP:{primary}", x500]
        addresses = [primary]
        if domain == "example.com":
            proxies.insert(1, f"smtp:{local}@{ALIAS_DOMAIN}")
            addresses.append(f"{local}@{ALIAS_DOMAIN}")
        attrs += [("proxyAddresses", p) for p in proxies]
        attrs.append(("userAccountControl", str(UAC_DISABLED)))
        attrs.append(("msExchRecipientTypeDetails", str(rtype)))
        self.emit(out, dn, attrs, INCLUDED, addresses, [upn, x500[len("X500:"):]])

    def group(self, out, local, display, domain, dynamic=False):
        primary = f"{local}@{domain}"
        if dynamic:
            dn = f"CN={display},OU=Groups,{BASE_DN}"
            attrs = [("objectClass", "top"), ("objectClass", "msExchDynamicDistributionList"),
                     ("cn", display), ("displayName", display), ("mail", primary),
                     ("proxyAddresses", f"SMTP:{primary}"),
                     ("msExchDynamicDLFilter", "(&(objectClass=user)(department=Sales))"),
                     ("msExchRecipientTypeDetails", str(TYPE_DYNAMIC_DG))]
        else:
            dn = f"CN={display},OU=Groups,{BASE_DN}"
            attrs = [("objectClass", "top"), ("objectClass", "group"), ("cn", display),
                     ("sAMAccountName", local), ("groupType", "8"), ("mail", primary),
                     ("proxyAddresses", f"SMTP:{primary}"),
                     ("msExchRecipientTypeDetails", str(TYPE_MAIL_UNIVERSAL_DG))]
        self.emit(out, dn, attrs, INCLUDED, [primary])

    # -- the organisation ---------------------------------------------------

    def demo(self, out):
        out.append("# Demo recipients: see deploy/examples/README.md.")
        # Mailbox users.
        self.used_locals.update({"alice": 1, "bob": 1, "info": 1, "conf-room-1": 1, "carol.former": 1})
        self.used_sams.update({"alice": 1, "bob": 1, "carol.former": 1})
        self.mailbox(out, "Alice", "Example", "alice", "alice", "example.com", UAC_NORMAL, TYPE_USER_MAILBOX)
        self.mailbox(out, "Bob", "Example", "bob", "bob", "example.com", UAC_NORMAL_NO_EXPIRE, TYPE_USER_MAILBOX,
                     extra_smtp=["robert@example.com"])
        self.used_locals["robert"] = 1
        # Shared mailbox on a disabled account: Exchange delivers to it.
        self.resource(out, "info", "Info Shared Mailbox", TYPE_SHARED)
        # Room mailbox on a disabled account.
        self.resource(out, "conf-room-1", "Conference Room 1", TYPE_ROOM)
        # Former employee: disabled account, user mailbox type: excluded.
        out.append("# A former employee: the account is disabled (514) and the mailbox is a")
        out.append(" n ordinary user mailbox (1), so the address is no longer valid.")
        self.mailbox(out, "Carol", "Former", "carol.former", "carol.former", "example.com", UAC_DISABLED,
                     TYPE_USER_MAILBOX, ou="Disabled", outcome=DISABLED)

    def header(self, out, entries, seed):
        out.append("version: 1")
        out.append("")
        out.append(f"# Generated by tools/gen_ad_ldif.py --entries {entries} --seed {seed}.")
        out.append("# Synthetic Active Directory / Exchange export; every name and address is")
        out.append("  fictitious. Accepted domains: example.com, example.org; alias domain")
        out.append("  mail.example.com.")
        out.append("")
        attrs = [("objectClass", "top"), ("objectClass", "domain"), ("objectClass", "domainDNS"),
                 ("dc", "corp"), ("name", "corp")]
        self.emit(out, BASE_DN, attrs, WRONG_OBJECT_CLASS, [])
        for ou in ("Users", "Disabled", "Resources", "Groups", "Contacts", "Computers"):
            attrs = [("objectClass", "top"), ("objectClass", "organizationalUnit"), ("ou", ou)]
            self.emit(out, f"OU={ou},{BASE_DN}", attrs, WRONG_OBJECT_CLASS, [])

    def random_person(self):
        first = self.rng.choice(FIRST_NAMES)
        last = self.rng.choice(LAST_NAMES)
        local = self.unique(self.used_locals, f"{first}.{last}".lower())
        sam = self.unique(self.used_sams, (first[0] + last).lower()[:18])
        return first, last, local, sam

    def random_entry(self, out, i):
        r = self.rng.random()
        if r < 0.55:
            first, last, local, sam = self.random_person()
            domain = "example.com" if self.rng.random() < 0.8 else "example.org"
            extra = []
            if self.rng.random() < 0.3:
                # "j.smith": the dot keeps it apart from sAMAccountNames (and so UPNs).
                nick = self.unique(self.used_locals, f"{first[0]}.{last}".lower())
                extra.append(f"{nick}@{domain}")
            self.mailbox(out, first, last, local, sam, domain,
                         self.rng.choice([UAC_NORMAL, UAC_NORMAL_NO_EXPIRE]), TYPE_USER_MAILBOX,
                         extra_smtp=extra, sip_differs=self.rng.random() < 0.2, hidden=self.rng.random() < 0.05)
        elif r < 0.58:
            first, last, asc_first, asc_last = self.rng.choice(UTF8_NAMES)
            local = self.unique(self.used_locals, f"{asc_first}.{asc_last}")
            sam = self.unique(self.used_sams, (asc_first[0] + asc_last)[:18])
            utf8_local = self.unique(self.used_locals, f"{first}.{last}".lower())
            self.mailbox(out, first, last, local, sam, "example.com", UAC_NORMAL, TYPE_USER_MAILBOX,
                         utf8_local=utf8_local)
        elif r < 0.66:
            first, last, local, sam = self.random_person()
            self.mailbox(out, first, last, local, sam, "example.com", UAC_DISABLED, TYPE_USER_MAILBOX,
                         ou="Disabled", outcome=DISABLED)
        elif r < 0.70:
            kind = self.rng.random()
            if kind < 0.45:
                rtype, prefix, display = TYPE_SHARED, "shared", "Shared Mailbox"
            elif kind < 0.75:
                rtype, prefix, display = TYPE_ROOM, "room", "Meeting Room"
            elif kind < 0.9:
                rtype, prefix, display = TYPE_EQUIPMENT, "equipment", "Equipment"
            else:
                rtype, prefix, display = TYPE_LINKED, "linked", "Linked Mailbox"
            local = self.unique(self.used_locals, f"{prefix}-{i}")
            self.resource(out, local, f"{display} {i}", rtype,
                          domain=self.rng.choice(PRIMARY_DOMAINS))
        elif r < 0.75:
            # Mail contact: external address in mail, proxyAddresses and targetAddress.
            first, last, _, _ = self.random_person()
            external = f"{first}.{last}{i}@{self.rng.choice(PARTNER_DOMAINS)}".lower()
            cn = f"{first} {last} (external {i})"
            attrs = [("objectClass", "top"), ("objectClass", "person"), ("objectClass", "organizationalPerson"),
                     ("objectClass", "contact"), ("cn", cn), ("displayName", cn), ("mail", external),
                     ("targetAddress", f"SMTP:{external}"), ("proxyAddresses", f"SMTP:{external}"),
                     ("msExchRecipientTypeDetails", str(TYPE_MAIL_CONTACT))]
            self.emit(out, f"CN={cn},OU=Contacts,{BASE_DN}", attrs, INCLUDED, [external])
        elif r < 0.78:
            # Mail user: our address, delivered to an external mailbox.
            first, last, local, sam = self.random_person()
            primary = f"{local}@example.com"
            external = f"{sam}{i}@{self.rng.choice(PARTNER_DOMAINS)}"
            upn = f"{sam}@example.com"
            attrs = self.person_attrs(first, last, sam, upn)
            attrs += [("mail", primary), ("targetAddress", f"SMTP:{external}"),
                      ("proxyAddresses", f"SMTP:{primary}"),
                      ("userAccountControl", str(UAC_NORMAL)),
                      ("msExchRecipientTypeDetails", str(TYPE_MAIL_USER))]
            self.emit(out, f"CN={first} {last},OU=Users,{BASE_DN}", attrs, INCLUDED, [primary],
                      [external, upn])
        elif r < 0.82:
            local = self.unique(self.used_locals, f"{self.rng.choice(DEPARTMENTS).lower()}-team")
            self.group(out, local, f"{local} group", self.rng.choice(PRIMARY_DOMAINS))
        elif r < 0.83:
            local = self.unique(self.used_locals, f"all-{self.rng.choice(DEPARTMENTS).lower()}")
            self.group(out, local, f"{local} dynamic", "example.com", dynamic=True)
        elif r < 0.84:
            local = self.unique(self.used_locals, f"pf-{self.rng.choice(DEPARTMENTS).lower()}")
            primary = f"{local}@example.com"
            attrs = [("objectClass", "top"), ("objectClass", "publicFolder"), ("cn", local),
                     ("displayName", local), ("mail", primary), ("proxyAddresses", f"SMTP:{primary}"),
                     ("msExchRecipientTypeDetails", str(TYPE_PUBLIC_FOLDER))]
            self.emit(out, f"CN={local},CN=Microsoft Exchange System Objects,{BASE_DN}", attrs, INCLUDED,
                      [primary])
        elif r < 0.88:
            # Security group without mail.
            name = self.unique(self.used_sams, f"sg-{self.rng.choice(DEPARTMENTS).lower()}")
            attrs = [("objectClass", "top"), ("objectClass", "group"), ("cn", name),
                     ("sAMAccountName", name), ("groupType", "-2147483646")]
            self.emit(out, f"CN={name},OU=Groups,{BASE_DN}", attrs, NO_ADDRESSES, [])
        elif r < 0.96:
            # User without a mailbox: only a UPN, which is not an address.
            first, last, _, sam = self.random_person()
            upn = f"{sam}@example.com"
            attrs = self.person_attrs(first, last, sam, upn)
            attrs.append(("userAccountControl", str(UAC_NORMAL)))
            self.emit(out, f"CN={first} {last},OU=Users,{BASE_DN}", attrs, NO_ADDRESSES, [], [upn])
        else:
            # Workstation: objectClass user too, never a recipient.
            name = self.unique(self.used_sams, f"ws-{i:06d}")
            attrs = [("objectClass", c) for c in PERSON_CLASSES + ["computer"]]
            attrs += [("cn", name.upper()), ("sAMAccountName", name.upper() + "$"),
                      ("userAccountControl", str(UAC_WORKSTATION)),
                      ("dNSHostName", f"{name}.corp.example.com")]
            self.emit(out, f"CN={name.upper()},OU=Computers,{BASE_DN}", attrs, WRONG_OBJECT_CLASS, [])

    def scanner(self, out):
        # A scan-to-mail printer's computer object with a mail attribute:
        # still not a recipient.
        mail = "scanner-01@example.com"
        self.used_locals["scanner-01"] = 1
        attrs = [("objectClass", c) for c in PERSON_CLASSES + ["computer"]]
        attrs += [("cn", "SCANNER-01"), ("sAMAccountName", "SCANNER-01$"), ("mail", mail),
                  ("userAccountControl", str(UAC_WORKSTATION))]
        self.emit(out, f"CN=SCANNER-01,OU=Computers,{BASE_DN}", attrs, WRONG_OBJECT_CLASS, [mail])

    def generate(self, entries, seed, sink):
        out = []
        self.header(out, entries, seed)
        self.demo(out)
        self.scanner(out)
        i = 0
        # entries counts every record, fixed ones included.
        while self.counts["records"] < entries:
            i += 1
            if i % 50 == 0:
                out.append(f"# --- batch {i // 50} ---")
            self.random_entry(out, i)
            if len(out) > 65536:
                sink("\n".join(out) + "\n")
                out.clear()
        # No newline after the last record's blank line separator: the file
        # ends with exactly one "\n".
        while out and out[-1] == "":
            out.pop()
        sink("\n".join(out) + "\n")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=300, help="number of LDIF records (at least 13)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", default="-", help="LDIF output file (default stdout)")
    parser.add_argument("--expect-out", help="write the ad preset's expected results as JSON here")
    args = parser.parse_args(argv)
    if args.entries < 13:
        parser.error("--entries must be at least 13 (the fixed header and demo entries)")

    gen = Generator(args.seed)
    if args.output == "-":
        gen.generate(args.entries, args.seed, sys.stdout.write)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            gen.generate(args.entries, args.seed, f.write)

    if args.expect_out:
        def served(address):
            return address.rsplit("@", 1)[-1] in SERVED_DOMAINS
        included_set = set(gen.included)
        expected = {
            "generator": "tools/gen_ad_ldif.py",
            "entries": args.entries,
            "seed": args.seed,
            "preset": "ad",
            "served_domains": SERVED_DOMAINS,
            "counts": gen.counts,
            "demo": {
                "valid": ["alice@example.com", "bob@example.com", "info@example.com", "conf-room-1@example.com"],
                "excluded": ["carol.former@example.com"],
            },
            "included_addresses": gen.included,
            "valid_addresses": [a for a in gen.included if served(a)],
            # A UPN may equal a valid address of the same user (alice's does):
            # such a value is valid through mail/proxyAddresses, not excluded.
            "excluded_addresses": [a for a in dict.fromkeys(gen.excluded) if a not in included_set],
        }
        with open(args.expect_out, "w", encoding="utf-8", newline="\n") as f:
            json.dump(expected, f, ensure_ascii=False, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
