#include "tests/testutil/ad_entries.h"

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace rcptguard::testing {
namespace {

using Attributes = std::vector<std::pair<std::string, std::string>>;

class Writer {
 public:
  explicit Writer(AdDirectory* d) : d_(d) {}

  void Entry(const std::string& dn, const Attributes& attributes) {
    absl::StrAppend(&d_->ldif, "dn: ", dn, "\n");
    for (const auto& [name, value] : attributes) {
      absl::StrAppend(&d_->ldif, name, ": ", value, "\n");
    }
    d_->ldif += "\n";
    ++d_->entries;
  }

  // Records the verdict a served address must get. `included` addresses in a
  // served domain are valid; the others in a served domain are unknown.
  void Address(const std::string& address, bool included) {
    (included ? d_->mapped : d_->not_mapped).insert(address);
    const std::string lower = absl::AsciiStrToLower(address);
    const std::string domain = lower.substr(lower.find('@') + 1);
    std::string target;
    if (domain == "example.com" || domain == "mail.example.com") {
      target = "example.com";
    } else if (domain == "example.org") {
      target = "example.org";
    }
    if (target.empty()) {
      d_->not_served.push_back(address);
      return;
    }
    if (!included) {
      d_->unknown.push_back(address);
      return;
    }
    d_->valid.push_back(address);
    const std::string normalized =
        absl::StrCat(lower.substr(0, lower.find('@')), "@", target);
    if (distinct_.insert(normalized).second) ++d_->domain_counts[target];
  }

 private:
  AdDirectory* d_;
  std::set<std::string> distinct_;
};

}  // namespace

AdDirectory MakeAdDirectory(const AdDirectoryOptions& options) {
  AdDirectory d;
  d.domain_counts["example.com"] = 0;
  d.domain_counts["example.org"] = 0;
  d.ldif = "version: 1\n\n";
  Writer w(&d);
  const std::string suffix = kAdSuffix;
  w.Entry(suffix, {{"objectClass", "domain"}, {"dc", "example"}});
  for (const char* ou :
       {"People", "Contacts", "Groups", "Resources", "Computers", "Service"}) {
    w.Entry(absl::StrCat("ou=", ou, ",", suffix),
            {{"objectClass", "organizationalUnit"}, {"ou", ou}});
  }
  // The account exports bind as: a user without mail, not a recipient.
  w.Entry(kAdServiceDn,
          {{"objectClass", "user"},
           {"cn", "svc-rcptguard"},
           {"userPassword", options.service_password},
           {"userAccountControl", "66048"},
           {"userPrincipalName", "svc-rcptguard@upn.example.local"}});
  w.Address("svc-rcptguard@upn.example.local", false);

  for (int i = 0; i < options.users; ++i) {
    const std::string n = absl::StrCat(i);
    const std::string primary = absl::StrCat("User", n, "@Example.com");
    const std::string alias = absl::StrCat("first.last", n, "@example.com");
    const std::string alias_domain =
        absl::StrCat("user", n, "@mail.example.com");
    const std::string org = absl::StrCat("u", n, "@example.org");
    const std::string external = absl::StrCat("user", n, "@corp.example.net");
    const std::string upn = absl::StrCat("user", n, "@upn.example.local");
    const bool disabled = i % 10 == 3;
    const bool hidden = i % 10 == 5;  // hidden from address lists: still valid
    const bool has_org = i % 4 == 1;
    Attributes a = {
        {"objectClass", "top"},
        {"objectClass", "user"},
        {"cn", absl::StrCat("user", n)},
        {"sAMAccountName", absl::StrCat("user", n)},
        {"mail", primary},
        {"proxyAddresses", absl::StrCat("SMTP:", primary)},
        {"proxyAddresses", absl::StrCat("smtp:", alias)},
    };
    if (options.alias_domain_addresses) {
      a.push_back({"proxyAddresses", absl::StrCat("smtp:", alias_domain)});
    }
    const std::string x500 =
        absl::StrCat("/o=Example/ou=Exchange/cn=Recipients/cn=user", n);
    a.push_back({"proxyAddresses", absl::StrCat("smtp:", external)});
    a.push_back({"proxyAddresses", absl::StrCat("X500:", x500)});
    // All values of one attribute together: slapadd -q would store a second
    // run as a second attribute, which no real server sends.
    if (has_org) a.push_back({"proxyAddresses", absl::StrCat("smtp:", org)});
    a.push_back({"userPrincipalName", upn});
    a.push_back({"userAccountControl", disabled ? "514" : "512"});
    a.push_back({"msExchRecipientTypeDetails", "1"});
    if (hidden) a.push_back({"msExchHideFromAddressLists", "TRUE"});
    w.Entry(absl::StrCat("cn=user", n, ",ou=People,", suffix), a);
    ++d.matching_entries;
    if (disabled) {
      ++d.disabled_entries;
    } else {
      ++d.included_entries;
    }
    std::vector<std::string> addresses = {primary, alias};
    if (options.alias_domain_addresses) addresses.push_back(alias_domain);
    addresses.push_back(external);
    for (const std::string& s : addresses) w.Address(s, !disabled);
    if (has_org) w.Address(org, !disabled);
    w.Address(upn, false);
    d.not_mapped.insert(x500);
  }

  // Shared (4), room (16), equipment (32) and linked (2) mailboxes sit on
  // disabled accounts by design and receive mail.
  const std::pair<const char*, int> kinds[] = {
      {"shared", 4}, {"room", 16}, {"equipment", 32}, {"linked", 2}};
  for (const auto& [kind, type] : kinds) {
    for (int i = 0; i < options.resources_per_kind; ++i) {
      const std::string cn = absl::StrCat(kind, i);
      const std::string mail = absl::StrCat(cn, "@example.com");
      w.Entry(absl::StrCat("cn=", cn, ",ou=Resources,", suffix),
              {{"objectClass", "user"},
               {"cn", cn},
               {"mail", mail},
               {"proxyAddresses", absl::StrCat("SMTP:", mail)},
               {"userPrincipalName", absl::StrCat(cn, "@example.org")},
               {"userAccountControl", "514"},
               {"msExchRecipientTypeDetails", absl::StrCat(type)}});
      ++d.matching_entries;
      ++d.included_entries;
      w.Address(mail, true);
      // A UPN in a served domain is a logon name, not an address.
      w.Address(absl::StrCat(cn, "@example.org"), false);
    }
  }

  // Mail users (128): an internal address forwarding to an external
  // targetAddress, which must never become an address.
  for (int i = 0; i < options.mail_users; ++i) {
    const std::string cn = absl::StrCat("mailuser", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    const std::string target = absl::StrCat(cn, "@cloud.example.net");
    w.Entry(absl::StrCat("cn=", cn, ",ou=People,", suffix),
            {{"objectClass", "user"},
             {"cn", cn},
             {"mail", mail},
             {"proxyAddresses", absl::StrCat("SMTP:", mail)},
             {"targetAddress", absl::StrCat("SMTP:", target)},
             {"userAccountControl", "512"},
             {"msExchRecipientTypeDetails", "128"}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
    w.Address(target, false);
  }

  // Mail contacts (64) with an address in our domain forwarding outside, and
  // external contacts whose only address is outside (included by the
  // mapping, skipped by the builder as not served).
  for (int i = 0; i < options.mail_contacts; ++i) {
    const std::string cn = absl::StrCat("contact", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    const std::string target =
        absl::StrCat("partner", i, "@partner.example.net");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Contacts,", suffix),
            {{"objectClass", "contact"},
             {"cn", cn},
             {"mail", mail},
             {"proxyAddresses", absl::StrCat("SMTP:", mail)},
             {"targetAddress", absl::StrCat("SMTP:", target)},
             {"msExchRecipientTypeDetails", "64"}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
    w.Address(target, false);
  }
  for (int i = 0; i < options.external_contacts; ++i) {
    const std::string cn = absl::StrCat("external", i);
    const std::string mail = absl::StrCat(cn, "@partner.example.net");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Contacts,", suffix),
            {{"objectClass", "contact"},
             {"cn", cn},
             {"mail", mail},
             {"targetAddress", absl::StrCat("SMTP:", mail)},
             {"msExchRecipientTypeDetails", "64"}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
  }

  // Distribution groups, dynamic groups, public folders.
  for (int i = 0; i < options.groups; ++i) {
    const std::string cn = absl::StrCat("group", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    const std::string list = absl::StrCat(cn, "-list@example.org");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Groups,", suffix),
            {{"objectClass", "group"},
             {"cn", cn},
             {"mail", mail},
             {"proxyAddresses", absl::StrCat("SMTP:", mail)},
             {"proxyAddresses", absl::StrCat("smtp:", list)}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
    w.Address(list, true);
  }
  for (int i = 0; i < options.dynamic_groups; ++i) {
    const std::string cn = absl::StrCat("dyn", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Groups,", suffix),
            {{"objectClass", "msExchDynamicDistributionList"},
             {"cn", cn},
             {"mail", mail}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
  }
  for (int i = 0; i < options.public_folders; ++i) {
    const std::string cn = absl::StrCat("pf", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Groups,", suffix),
            {{"objectClass", "publicFolder"},
             {"cn", cn},
             {"proxyAddresses", absl::StrCat("SMTP:", mail)}});
    ++d.matching_entries;
    ++d.included_entries;
    w.Address(mail, true);
  }
  // A security group without mail: not a recipient, not selected.
  w.Entry(absl::StrCat("cn=sec-admins,ou=Groups,", suffix),
          {{"objectClass", "group"}, {"cn", "sec-admins"}});

  // Computers are users too in AD; even with a mail value they are never
  // recipients (and the filter does not select them).
  for (int i = 0; i < options.computers; ++i) {
    const std::string cn = absl::StrCat("ws", i);
    const std::string mail = absl::StrCat(cn, "@example.com");
    w.Entry(absl::StrCat("cn=", cn, ",ou=Computers,", suffix),
            {{"objectClass", "user"},
             {"objectClass", "computer"},
             {"cn", cn},
             {"mail", mail},
             {"proxyAddresses", absl::StrCat("SMTP:", mail)},
             {"userAccountControl", "4096"}});
    w.Address(mail, false);
  }
  // Users that are not mail-enabled: a logon name in our domain only.
  for (int i = 0; i < options.users_without_mail; ++i) {
    const std::string cn = absl::StrCat("nomail", i);
    const std::string upn = absl::StrCat(cn, "@example.com");
    w.Entry(absl::StrCat("cn=", cn, ",ou=People,", suffix),
            {{"objectClass", "user"},
             {"cn", cn},
             {"userPrincipalName", upn},
             {"userAccountControl", "512"}});
    w.Address(upn, false);
  }
  return d;
}

std::string BulkAdLdif(int users, const std::string& prefix) {
  std::string text = "version: 1\n\n";
  for (int i = 0; i < users; ++i) {
    absl::StrAppend(&text, "dn: CN=", prefix, i, ",DC=example,DC=com\n",
                    "objectClass: user\nuserAccountControl: 512\n",
                    "proxyAddresses: SMTP:", prefix, i, "@example.com\n",
                    "proxyAddresses: smtp:", prefix, i, ".alt@example.com\n\n");
  }
  return text;
}

}  // namespace rcptguard::testing
