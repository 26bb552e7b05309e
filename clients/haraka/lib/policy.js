// How an answer of rcptguard becomes the SMTP reply to one RCPT, and what
// to answer when there is no answer (docs/edges.md). Pure functions.
//
// The reply code decides, not the status: UNKNOWN comes with 250 in a
// MONITOR domain (and under an accept-all harvest rule) and with 450 4.1.1
// while the directory is stale. While a client is blocked (TEMPFAIL,
// REJECT) the server has already rewritten every verdict's reply to the
// block's reply. A TARPIT delays the reply by delay_ms, capped here below
// the plugin's own timeout.
'use strict'

const url = require('node:url')

// A decision: `kind` "ok" (accept), "denysoft" (4xx) or "deny" (5xx), the
// reply (code, enhanced status, text), the delay before replying, and the
// outcome counted.
function decision(kind, code, enhanced, text, outcome, delayMs = 0) {
  return { kind, code, enhanced, text, outcome, delayMs }
}

// Replies may hold only printable ASCII on one line (RFC 5321); the server's
// texts come from its config, but never trust a byte that ends a line.
function clean(text) {
  return String(text || '')
    .replace(/[^\x20-\x7e]/g, ' ')
    .slice(0, 400)
}

// The SMTP reply for verdict 0 of `response` (one RCPT per request).
// `enums`: { RecipientStatus, ClientAction } from the loaded proto.
// `maxDelayMs`: the tarpit cap.
function fromResponse(response, enums, maxDelayMs) {
  const v = response.verdicts && response.verdicts[0]
  const client = response.client || {}
  const RS = enums.RecipientStatus
  const CA = enums.ClientAction
  if (!v || !v.reply || !v.reply.code) return null // not an answer we can use
  const code = v.reply.code
  const enhanced = v.reply.enhanced_status || ''
  const text = clean(v.reply.text)
  let outcome
  if (client.action === CA.CLIENT_ACTION_TEMPFAIL) outcome = 'tempfail'
  else if (client.action === CA.CLIENT_ACTION_REJECT) outcome = 'reject'
  else if (v.status === RS.RECIPIENT_STATUS_VALID) outcome = 'valid'
  else if (v.status === RS.RECIPIENT_STATUS_NOT_SERVED) outcome = 'not_served'
  else if (v.status === RS.RECIPIENT_STATUS_MALFORMED) outcome = 'malformed'
  else if (v.status === RS.RECIPIENT_STATUS_UNKNOWN) {
    if (code < 300) outcome = client.rule ? 'accept_all' : 'monitor'
    else if (code < 500) outcome = 'unknown_deferred'
    else outcome = 'unknown'
  } else outcome = 'other'
  let delayMs = 0
  if (client.action === CA.CLIENT_ACTION_TARPIT) {
    delayMs = Math.max(0, Math.min(Number(client.delay_ms) || 0, maxDelayMs))
  }
  let kind
  if (code < 300) kind = 'ok'
  else if (code < 500) kind = 'denysoft'
  else kind = 'deny'
  return decision(kind, code, enhanced, text, outcome, delayMs)
}

// A domain as rcptguard lists it: lower case, A-label (punycode) form.
function asciiDomain(host) {
  const h = String(host || '')
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
  const a = url.domainToASCII(h)
  return a || h
}

// The served-domain set from a ServedDomains answer (names and aliases).
function servedSet(served) {
  const set = new Set()
  for (const d of (served && served.domains) || []) {
    if (d.name) set.add(asciiDomain(d.name))
    for (const a of d.aliases || []) set.add(asciiDomain(a))
  }
  return set
}

// No answer: fail open (accept) only for served domains, and defer the
// rest, whatever the policy (accepting them would make an open relay).
// `served` is null while the list is unknown: everything is deferred.
function onFailure(domain, served, failurePolicy) {
  const isServed = served !== null && served.has(domain)
  if (failurePolicy === 'fail_open' && isServed) {
    return decision('ok', 250, '2.1.5', 'Recipient OK', 'fail_open')
  }
  return decision(
    'denysoft',
    451,
    '4.3.0',
    'Recipient verification temporarily unavailable, try again later',
    isServed ? 'fail_tempfail' : 'fail_not_served',
  )
}

// The longest tarpit the plugin applies: below the hook timeout, with room
// for the lookup itself and a margin. `configured` 0: derived.
function tarpitCapMs(configured, hookTimeoutS, lookupTimeoutMs) {
  const derived = Math.max(0, hookTimeoutS * 1000 - lookupTimeoutMs - 2000)
  if (!(configured > 0)) return derived
  return Math.min(configured, derived)
}

module.exports = { fromResponse, onFailure, asciiDomain, servedSet, tarpitCapMs, clean }
