// index.js as Haraka drives it: a plugin object with Haraka's config and
// log methods, a connection, next().
'use strict'

const test = require('node:test')
const assert = require('node:assert')
const plugin = require('../index')
const { startFake, verdict } = require('./fake_server')

const RS = { VALID: 1, UNKNOWN: 2, NOT_SERVED: 3 }

function makePlugin(main) {
  const p = Object.create(plugin)
  p.timeout = 30
  p.config = { get: () => ({ main: Object.assign({ stats_interval_s: '0' }, main), tls: {} }) }
  for (const level of ['loginfo', 'logwarn', 'logcrit', 'logdebug']) p[level] = () => {}
  p.register_hook = () => {}
  return p
}

function connection(relaying = false) {
  return {
    remote: { ip: '192.0.2.1' },
    hello: { host: 'client.example.net' },
    relaying,
    notes: {},
    transaction: { uuid: 'T1', mail_from: { original: '<s@example.net>' } },
    results: { add() {} },
    logwarn() {},
  }
}

function rcpt(address) {
  const [user, host] = address.split('@')
  return { user, host, original: `<${address}>`, address: () => address }
}

// Runs the hook; resolves with [code, dsn].
function ask(p, address, conn = connection()) {
  return new Promise((resolve) => p.check_rcpt((c, m) => resolve([c, m]), conn, [rcpt(address)]))
}

test('replies are the server replies, with Haraka codes', async () => {
  const fake = await startFake((req) => {
    const r = req.recipients[0].toString()
    if (r.includes('alice')) return verdict(RS.VALID, 250, '2.1.5', 'Recipient OK')
    if (r.includes('example.com')) return verdict(RS.UNKNOWN, 550, '5.1.1', 'User unknown')
    return verdict(RS.NOT_SERVED, 554, '5.7.1', 'Relay access denied')
  }, { domains: [{ name: 'example.com' }] })
  const p = makePlugin({ servers: fake.target })
  p.register()
  try {
    const [okCode, okMsg] = await ask(p, 'alice@example.com')
    assert.strictEqual(okCode, 906)
    assert.deepStrictEqual([okMsg.constructor.name, okMsg.code, okMsg.reply], ['DSN', 250, '2.1.5 Recipient OK'])
    const [denyCode, denyMsg] = await ask(p, 'nobody@example.com')
    assert.deepStrictEqual([denyCode, denyMsg.code, denyMsg.reply], [902, 550, '5.1.1 User unknown'])
    const [relayCode, relayMsg] = await ask(p, 'x@elsewhere.net')
    assert.deepStrictEqual([relayCode, relayMsg.code], [902, 554])
    // The context went along.
    const sent = fake.state.requests[0]
    assert.strictEqual(sent.context.client_ip, '192.0.2.1')
    assert.strictEqual(sent.context.session_id, 'T1')
    assert.strictEqual(sent.context.mail_from.toString(), '<s@example.net>')
    assert.strictEqual(sent.max_delay_ms, 27000)
    assert.strictEqual(p.counters.valid, 1)
    assert.strictEqual(p.counters.unknown, 1)
    assert.strictEqual(p.counters.not_served, 1)
  } finally {
    p.shutdown()
    fake.stop()
  }
})

test('server gone: open for served domains only, 451 for the rest', async () => {
  const fake = await startFake(() => verdict(RS.VALID, 250, '2.1.5', 'OK'), {
    domains: [{ name: 'example.com', aliases: ['mail.example.com'] }],
  })
  const p = makePlugin({ servers: fake.target, timeout_ms: '300' })
  p.register()
  try {
    await p.refresh_served()
    assert.ok(p.served.has('mail.example.com'))
    fake.stop()
    const [open] = await ask(p, 'anyone@mail.example.com')
    assert.strictEqual(open, 906)
    const [relay, msg] = await ask(p, 'x@elsewhere.net')
    assert.deepStrictEqual([relay, msg.code, msg.reply.slice(0, 5)], [903, 451, '4.3.0'])
    assert.strictEqual(p.counters.fail_open, 1)
    assert.strictEqual(p.counters.fail_not_served, 1)
  } finally {
    p.shutdown()
  }
})

test('relaying clients sending elsewhere are not asked about', async () => {
  const fake = await startFake(() => verdict(RS.NOT_SERVED, 554, '5.7.1', 'no'), {
    domains: [{ name: 'example.com' }],
  })
  const p = makePlugin({ servers: fake.target })
  p.register()
  try {
    await p.refresh_served()
    const [code] = await ask(p, 'friend@elsewhere.net', connection(true))
    assert.strictEqual(code, undefined) // next(): Haraka decides (relaying: OK)
    assert.strictEqual(fake.state.requests.length, 0)
  } finally {
    p.shutdown()
    fake.stop()
  }
})

test('messages_in_flight from rcptguard.ini: used when 1..16, else warned and 2', () => {
  const warnings = []
  const good = makePlugin({ servers: '127.0.0.1:1', messages_in_flight: '4' })
  good.load_rcptguard_ini()
  assert.strictEqual(good.cfg.main.messages_in_flight, 4)
  for (const bad of ['0', '17', '2.5', 'many']) {
    const p = makePlugin({ servers: '127.0.0.1:1', messages_in_flight: bad })
    p.logwarn = (m) => warnings.push(m)
    p.load_rcptguard_ini()
    assert.strictEqual(p.cfg.main.messages_in_flight, 2, bad)
  }
  assert.strictEqual(warnings.length, 4)
  assert.match(warnings[0], /messages_in_flight=0 is not 1\.\.16; using 2/)
  assert.match(warnings[3], /messages_in_flight=many is not/)
  const unset = makePlugin({ servers: '127.0.0.1:1' })
  unset.logwarn = (m) => warnings.push(m)
  unset.load_rcptguard_ini()
  assert.strictEqual(unset.cfg.main.messages_in_flight, 2)
  assert.strictEqual(warnings.length, 4)
})
