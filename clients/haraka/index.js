// haraka-plugin-rcptguard: asks rcptguard at RCPT TO whether the recipient
// exists and whether the client is harvesting addresses, and answers with
// rcptguard's reply (docs/edges.md in the rcptguard repository is the
// contract this follows; README.md here is the operator's guide).
'use strict'

const fs = require('node:fs')
const protos = require('./lib/protos')
const policy = require('./lib/policy')
const { RcptguardClient, messagesInFlight, DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT } = require('./lib/client')

// Haraka puts its return codes on the global object for packaged plugins;
// the numbers are haraka-constants' (for tests outside Haraka).
function code(name, fallback) {
  return typeof global[name] === 'number' ? global[name] : fallback
}
const K = {
  get CONT() { return code('CONT', 900) },
  get DENY() { return code('DENY', 902) },
  get DENYSOFT() { return code('DENYSOFT', 903) },
  get OK() { return code('OK', 906) },
}

// Haraka's connection.respond() takes an object whose constructor is named
// DSN as a whole reply: its own code and "X.Y.Z text".
class DSN {
  constructor(replyCode, enhanced, text) {
    this.code = replyCode
    this.reply = enhanced ? `${enhanced} ${text}` : text
  }
}

const OUTCOMES = [
  'valid', 'unknown', 'unknown_deferred', 'monitor', 'accept_all', 'not_served',
  'malformed', 'tarpit', 'tempfail', 'reject', 'fail_open', 'fail_tempfail',
  'fail_not_served', 'relaying_skipped', 'harvest_skipped', 'errors', 'other',
]

exports.register = function () {
  this.load_rcptguard_ini()
  this.counters = Object.fromEntries(OUTCOMES.map((k) => [k, 0]))
  this.served = null // Set of served domains and aliases, null: unknown
  this.served_source = 'none'
  this.load_static_served()
  try {
    this.protos = protos.load(this.cfg.main.proto_dir || undefined)
    this.client = new RcptguardClient({
      servers: this.cfg.servers,
      protos: this.protos,
      transport: this.cfg.main.transport,
      batch: this.cfg.main.batch,
      messages_in_flight: this.cfg.main.messages_in_flight,
      timeout_ms: this.cfg.main.timeout_ms,
      retry_ms: this.cfg.main.retry_ms,
      tls: this.cfg.tls,
    })
  } catch (err) {
    this.logcrit(`rcptguard: ${err.message}`)
    throw err
  }
  this.refresh_served()
  this.timers = []
  const refresh = this.cfg.main.served_domains_refresh_s * 1000
  if (refresh > 0) this.timers.push(setInterval(() => this.refresh_served(), refresh))
  const stats = this.cfg.main.stats_interval_s * 1000
  if (stats > 0) this.timers.push(setInterval(() => this.log_stats(), stats))
  for (const t of this.timers) if (t.unref) t.unref()
  this.register_hook('rcpt', 'check_rcpt')
}

exports.load_rcptguard_ini = function () {
  const cfg = this.config.get(
    'rcptguard.ini',
    {
      booleans: ['-main.dry_run', '+main.skip_relaying', '+main.batch', '-tls.enabled'],
    },
    () => this.load_rcptguard_ini(),
  )
  const m = cfg.main || {}
  const num = (v, d) => (v === undefined || v === '' || isNaN(Number(v)) ? d : Number(v))
  m.transport = m.transport === 'unary' ? 'unary' : 'stream'
  // Defaults also when the booleans option did not apply them.
  m.skip_relaying = m.skip_relaying !== false && m.skip_relaying !== 'false'
  m.batch = m.batch !== false && m.batch !== 'false'
  m.dry_run = m.dry_run === true || m.dry_run === 'true'
  m.failure_policy = m.failure_policy === 'tempfail' ? 'tempfail' : 'fail_open'
  const inFlight = messagesInFlight(m.messages_in_flight)
  if (inFlight === null && m.messages_in_flight !== undefined && m.messages_in_flight !== '') {
    this.logwarn(
      `rcptguard: main.messages_in_flight=${m.messages_in_flight} is not 1..${MAX_IN_FLIGHT}; using ${DEFAULT_IN_FLIGHT}`,
    )
  }
  m.messages_in_flight = inFlight ?? DEFAULT_IN_FLIGHT
  m.timeout_ms = num(m.timeout_ms, 1000)
  m.retry_ms = num(m.retry_ms, 5000)
  m.tarpit_max_ms = num(m.tarpit_max_ms, 0)
  m.served_domains_refresh_s = num(m.served_domains_refresh_s, 300)
  m.stats_interval_s = num(m.stats_interval_s, 60)
  m.edge_id = m.edge_id || 'haraka'
  cfg.main = m
  cfg.tls = cfg.tls || {}
  cfg.servers = String(m.servers || '127.0.0.1:50051')
    .split(/[\s,]+/)
    .filter(Boolean)
  this.cfg = cfg
}

// The hook timeout Haraka gives this plugin (rcptguard.timeout, else
// plugin_timeout, else 30 s) sets the longest tarpit.
exports.tarpit_cap_ms = function () {
  const hookTimeout = Number(this.timeout) > 0 ? Number(this.timeout) : 30
  return policy.tarpitCapMs(this.cfg.main.tarpit_max_ms, hookTimeout, this.cfg.main.timeout_ms)
}

// Served domains known before the server first answers: the last list saved
// (served_domains_cache), else the configured one (served_domains).
exports.load_static_served = function () {
  const file = this.cfg.main.served_domains_cache
  if (file) {
    try {
      const list = JSON.parse(fs.readFileSync(file, 'utf8'))
      if (Array.isArray(list)) {
        this.served = new Set(list.map(policy.asciiDomain))
        this.served_source = 'cache'
        return
      }
    } catch (ignore) {
      // no cache yet
    }
  }
  const configured = String(this.cfg.main.served_domains || '')
    .split(/[\s,]+/)
    .filter(Boolean)
  if (configured.length > 0) {
    this.served = new Set(configured.map(policy.asciiDomain))
    this.served_source = 'config'
  }
}

exports.refresh_served = function () {
  if (!this.client) return Promise.resolve()
  return this.client.servedDomains().then(
    (answer) => {
      const set = policy.servedSet(answer)
      if (set.size === 0) return // keep what we had: an empty list helps no one
      this.served = set
      this.served_source = 'server'
      const file = this.cfg.main.served_domains_cache
      if (file) {
        try {
          fs.writeFileSync(`${file}.tmp`, JSON.stringify([...set]))
          fs.renameSync(`${file}.tmp`, file)
        } catch (err) {
          this.logwarn(`rcptguard: cannot write ${file}: ${err.message}`)
        }
      }
    },
    (err) => this.logwarn(`rcptguard: served domains not refreshed: ${err.message}`),
  )
}

exports.log_stats = function () {
  const c = this.counters
  const parts = OUTCOMES.filter((k) => c[k] > 0).map((k) => `${k}=${c[k]}`)
  const e = this.client ? this.client.events : {}
  this.loginfo(
    `rcptguard stats ${parts.join(' ') || 'idle'} streams_opened=${e.stream_opened || 0} ` +
      `batches=${e.batches || 0} batched_lookups=${e.batched_requests || 0} ` +
      `stream_failures=${e.stream_failed || 0} deadlines=${e.deadline || 0} ` +
      `served_domains=${this.served ? this.served.size : 'unknown'}(${this.served_source})`,
  )
}

// Answers next() with a decision of lib/policy.js.
function reply(plugin, next, d) {
  plugin.counters[d.outcome] = (plugin.counters[d.outcome] || 0) + 1
  const answer = () => {
    if (d.kind === 'ok') return next(K.OK, new DSN(d.code, d.enhanced, d.text))
    const rc = d.kind === 'deny' ? K.DENY : K.DENYSOFT
    return next(rc, new DSN(d.code, d.enhanced, d.text))
  }
  if (d.delayMs > 0) {
    plugin.counters.tarpit++
    setTimeout(answer, d.delayMs)
  } else {
    answer()
  }
}

function asBuffer(v) {
  if (v === undefined || v === null) return Buffer.alloc(0)
  return Buffer.from(String(v), 'utf8')
}

exports.check_rcpt = function (next, connection, params) {
  const rcpt = params && params[0]
  const txn = connection.transaction
  if (!rcpt || !txn) return next()
  const domain = policy.asciiDomain(rcpt.host)
  // Clients allowed to relay (authenticated, or trusted networks) may send
  // anywhere: only recipients in our own domains are checked for them.
  if (connection.relaying && this.cfg.main.skip_relaying && this.served && !this.served.has(domain)) {
    this.counters.relaying_skipped++
    return next()
  }
  const from = txn.mail_from
  const request = {
    context: {
      client_ip: connection.remote ? connection.remote.ip || '' : '',
      helo: asBuffer(connection.hello ? connection.hello.host : ''),
      mail_from: asBuffer(from ? from.original || (from.isNull && from.isNull() ? '<>' : `<${from.address()}>`) : ''),
      session_id: txn.uuid || '',
      edge_id: this.cfg.main.edge_id,
      authenticated: Boolean(connection.notes && connection.notes.auth_user) || Boolean(connection.relaying),
    },
    recipients: [asBuffer(rcpt.original || `<${rcpt.address()}>`)],
    dry_run: Boolean(this.cfg.main.dry_run),
    max_delay_ms: this.tarpit_cap_ms(),
  }
  const failed = (err) => {
    this.counters.errors++
    connection.logwarn(this, `rcptguard: no answer (${err.message}): ${this.cfg.main.failure_policy}`)
    reply(this, next, policy.onFailure(domain, this.served, this.cfg.main.failure_policy))
  }
  this.client.validate(request).then((response) => {
    const d = policy.fromResponse(response, this.protos, this.tarpit_cap_ms())
    if (d === null) return failed(new Error('answer without a verdict'))
    const skip = response.client ? response.client.harvest_skipped : 0
    if (skip) {
      this.counters.harvest_skipped++
      const name = Object.keys(this.protos.HarvestSkip).find((k) => this.protos.HarvestSkip[k] === skip)
      connection.logwarn(this, `rcptguard: harvest defence skipped (${name || skip})`)
    }
    // Haraka's results cost more than the lookup: only what is not plain.
    if (d.outcome !== 'valid') connection.results.add(this, { msg: `${d.outcome} ${d.code}` })
    reply(this, next, d)
  }, failed)
}

exports.shutdown = function () {
  for (const t of this.timers || []) clearInterval(t)
  if (this.client) this.client.close()
  this.log_stats()
}
