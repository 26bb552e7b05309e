'use strict'

const test = require('node:test')
const assert = require('node:assert')
const protos = require('../lib/protos')
const policy = require('../lib/policy')
const { verdict } = require('./fake_server')

const p = protos.load()
const RS = p.RecipientStatus
const CA = p.ClientAction

test('enum values come from the loaded proto, by name', () => {
  assert.strictEqual(RS.RECIPIENT_STATUS_VALID, 1)
  assert.strictEqual(CA.CLIENT_ACTION_REJECT, 4)
  assert.strictEqual(p.HarvestSkip.HARVEST_SKIP_NO_CLIENT_IP, 1)
})

test('the reply code decides, not the status', () => {
  const valid = policy.fromResponse(verdict(RS.RECIPIENT_STATUS_VALID, 250, '2.1.5', 'OK'), p, 1000)
  assert.deepStrictEqual([valid.kind, valid.code, valid.outcome], ['ok', 250, 'valid'])
  const unknown = policy.fromResponse(verdict(RS.RECIPIENT_STATUS_UNKNOWN, 550, '5.1.1', 'User unknown'), p, 1000)
  assert.deepStrictEqual([unknown.kind, unknown.code, unknown.enhanced], ['deny', 550, '5.1.1'])
  const monitor = policy.fromResponse(verdict(RS.RECIPIENT_STATUS_UNKNOWN, 250, '2.1.5', 'OK'), p, 1000)
  assert.deepStrictEqual([monitor.kind, monitor.outcome], ['ok', 'monitor'])
  const stale = policy.fromResponse(verdict(RS.RECIPIENT_STATUS_UNKNOWN, 450, '4.1.1', 'later'), p, 1000)
  assert.deepStrictEqual([stale.kind, stale.outcome], ['denysoft', 'unknown_deferred'])
  const relay = policy.fromResponse(verdict(RS.RECIPIENT_STATUS_NOT_SERVED, 554, '5.7.1', 'Relay access denied'), p, 1000)
  assert.deepStrictEqual([relay.kind, relay.code, relay.outcome], ['deny', 554, 'not_served'])
  const acceptAll = policy.fromResponse(
    verdict(RS.RECIPIENT_STATUS_UNKNOWN, 250, '2.1.5', 'OK', { action: CA.CLIENT_ACTION_ACCEPT, rule: 'dsn' }),
    p,
    1000,
  )
  assert.strictEqual(acceptAll.outcome, 'accept_all')
})

test('harvest verdicts: the block reply, and a tarpit capped', () => {
  const tempfail = policy.fromResponse(
    verdict(RS.RECIPIENT_STATUS_VALID, 451, '4.7.1', 'Slow down', { action: CA.CLIENT_ACTION_TEMPFAIL }),
    p,
    1000,
  )
  assert.deepStrictEqual([tempfail.kind, tempfail.code, tempfail.outcome], ['denysoft', 451, 'tempfail'])
  const reject = policy.fromResponse(
    verdict(RS.RECIPIENT_STATUS_VALID, 550, '5.7.1', 'Go away', { action: CA.CLIENT_ACTION_REJECT }),
    p,
    1000,
  )
  assert.deepStrictEqual([reject.kind, reject.code, reject.outcome], ['deny', 550, 'reject'])
  const tarpit = policy.fromResponse(
    verdict(RS.RECIPIENT_STATUS_UNKNOWN, 550, '5.1.1', 'User unknown', {
      action: CA.CLIENT_ACTION_TARPIT,
      delay_ms: 60000,
    }),
    p,
    26000,
  )
  assert.deepStrictEqual([tarpit.kind, tarpit.delayMs], ['deny', 26000])
})

test('a reply text cannot break the SMTP line', () => {
  assert.strictEqual(policy.clean('a\r\n250 b\x00'), 'a  250 b ')
})

test('an answer without a verdict is no answer', () => {
  assert.strictEqual(policy.fromResponse({ verdicts: [], client: {} }, p, 1000), null)
})

test('failure policy: open for served domains only', () => {
  const served = new Set(['example.com'])
  assert.strictEqual(policy.onFailure('example.com', served, 'fail_open').kind, 'ok')
  const other = policy.onFailure('elsewhere.net', served, 'fail_open')
  assert.deepStrictEqual([other.kind, other.code, other.enhanced], ['denysoft', 451, '4.3.0'])
  assert.strictEqual(policy.onFailure('example.com', served, 'tempfail').kind, 'denysoft')
  assert.strictEqual(policy.onFailure('example.com', null, 'fail_open').kind, 'denysoft')
})

test('served set holds names and aliases in A-label form', () => {
  const set = policy.servedSet({
    domains: [{ name: 'example.com', aliases: ['mail.example.com'] }, { name: 'xn--bcher-kva.example' }],
  })
  assert.ok(set.has('mail.example.com'))
  assert.ok(set.has(policy.asciiDomain('BÜCHER.example')))
})

test('tarpit cap stays below the hook timeout', () => {
  assert.strictEqual(policy.tarpitCapMs(0, 30, 1000), 27000)
  assert.strictEqual(policy.tarpitCapMs(5000, 30, 1000), 5000)
  assert.strictEqual(policy.tarpitCapMs(60000, 30, 1000), 27000)
})
