'use strict'

const test = require('node:test')
const assert = require('node:assert')
const protos = require('../lib/protos')
const { RcptguardClient } = require('../lib/client')
const { startFake, verdict } = require('./fake_server')

const p = protos.load()
const RS = p.RecipientStatus

function request(rcpt) {
  return {
    context: { client_ip: '192.0.2.1', session_id: 's1' },
    recipients: [Buffer.from(rcpt)],
  }
}

// Valid when the recipient starts with "ok", unknown otherwise.
function byName(req) {
  const r = req.recipients[0].toString()
  return r.startsWith('ok')
    ? verdict(RS.RECIPIENT_STATUS_VALID, 250, '2.1.5', `OK ${r}`)
    : verdict(RS.RECIPIENT_STATUS_UNKNOWN, 550, '5.1.1', `unknown ${r}`)
}

for (const transport of ['stream', 'unary']) {
  test(`${transport}: answers are matched to their requests`, async () => {
    const fake = await startFake(byName)
    const c = new RcptguardClient({ servers: [fake.target], protos: p, transport, timeout_ms: 2000 })
    try {
      const names = Array.from({ length: 50 }, (_, i) => (i % 3 ? `ok${i}` : `no${i}`))
      const answers = await Promise.all(names.map((n) => c.validate(request(n))))
      answers.forEach((a, i) => assert.strictEqual(a.verdicts[0].reply.text.split(' ')[1], names[i]))
      assert.strictEqual(answers[1].verdicts[0].status, RS.RECIPIENT_STATUS_VALID)
      assert.strictEqual(answers[0].verdicts[0].reply.code, 550)
      if (transport === 'stream') {
        assert.strictEqual(fake.state.streams, 1)
        assert.ok(fake.state.batches.length < names.length)
      }
    } finally {
      c.close()
      fake.stop()
    }
  })
}

// One lookup, then 50 more, each in a later turn of the event loop (while
// the first is still out); checks every answer against its request.
async function firstThenFiftyLater(c) {
  const first = c.validate(request('ok-first'))
  const later = []
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    later.push(c.validate(request(`ok-later${i}`)))
  }
  const answers = await Promise.all([first, ...later])
  answers.forEach((a, i) =>
    assert.strictEqual(a.verdicts[0].reply.text, i === 0 ? 'OK ok-first' : `OK ok-later${i - 1}`))
}

test('group commit: lookups queued while a message is in flight go out together', async () => {
  const fake = await startFake(byName)
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 2000, messages_in_flight: 1 })
  try {
    // Lookups of one turn of the event loop go out in one message.
    const names = Array.from({ length: 200 }, (_, i) => `ok${i}`)
    const answers = await Promise.all(names.map((n) => c.validate(request(n))))
    answers.forEach((a, i) => assert.strictEqual(a.verdicts[0].reply.text, `OK ${names[i]}`))
    assert.deepStrictEqual(fake.state.batches, [200])
    // While one message is in flight, later lookups wait and go together.
    fake.state.delayMs = 100
    await firstThenFiftyLater(c)
    assert.deepStrictEqual(fake.state.batches, [200, 1, 50])
    assert.strictEqual(c.events.batched_requests, 251)
  } finally {
    c.close()
    fake.stop()
  }
})

test('group commit, two in flight (the default): the next message leaves at once, then lookups queue', async () => {
  const fake = await startFake(byName)
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 2000 })
  try {
    assert.strictEqual(c.maxInFlight, 2)
    fake.state.delayMs = 100
    await firstThenFiftyLater(c)
    // ok-first; ok-later0 in a second message while the first is out; the
    // other 49 wait for an answer and go together.
    assert.deepStrictEqual(fake.state.batches, [1, 1, 49])
  } finally {
    c.close()
    fake.stop()
  }
})

test('messages_in_flight outside 1..16 falls back to the default', () => {
  for (const bad of [0, 17, 1.5, 'x', -1]) {
    const c = new RcptguardClient({ servers: ['127.0.0.1:1'], protos: p, messages_in_flight: bad })
    assert.strictEqual(c.maxInFlight, 2, String(bad))
    c.close()
  }
  const c = new RcptguardClient({ servers: ['127.0.0.1:1'], protos: p, messages_in_flight: 5 })
  assert.strictEqual(c.maxInFlight, 5)
  c.close()
})

test('a refused request fails alone; the others of its message are answered', async () => {
  const fake = await startFake(byName)
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 2000 })
  try {
    fake.state.refuse = (r) => r.recipients[0].toString() === 'bad'
    const results = await Promise.allSettled(['ok1', 'bad', 'ok3'].map((n) => c.validate(request(n))))
    assert.strictEqual(results[0].status, 'fulfilled')
    assert.strictEqual(results[1].status, 'rejected')
    assert.strictEqual(results[1].reason.code, 3) // INVALID_ARGUMENT
    assert.strictEqual(results[2].status, 'fulfilled')
    assert.strictEqual(results[2].value.verdicts[0].reply.text, 'OK ok3')
    assert.strictEqual(c.servers[0].downUntil, 0)
  } finally {
    c.close()
    fake.stop()
  }
})

test('a server without ValidateBatchStream is asked over ValidateStream', async () => {
  const fake = await startFake(byName, { batch: false })
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 2000 })
  try {
    const answers = await Promise.all(['ok1', 'no2', 'ok3'].map((n) => c.validate(request(n))))
    assert.deepStrictEqual(
      answers.map((a) => a.verdicts[0].reply.code),
      [250, 550, 250],
    )
    assert.strictEqual(c.servers[0].batch, false)
    await c.validate(request('ok4'))
  } finally {
    c.close()
    fake.stop()
  }
})

test('a frozen server fails its lookups at the deadline, then at once', async () => {
  const fake = await startFake(byName)
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 300, retry_ms: 60000 })
  try {
    await c.validate(request('ok1'))
    fake.state.frozen = true
    const start = Date.now()
    const results = await Promise.allSettled([c.validate(request('ok2')), c.validate(request('ok3'))])
    assert.ok(results.every((r) => r.status === 'rejected'))
    assert.strictEqual(results[0].reason.code, 'deadline')
    const took = Date.now() - start
    assert.ok(took >= 250 && took < 2000, `took ${took} ms`)
    const fast = Date.now()
    await assert.rejects(c.validate(request('ok4')), (e) => e.code === 'down')
    assert.ok(Date.now() - fast < 50)
  } finally {
    c.close()
    fake.stop()
  }
})

test('servers are used round robin, and a dead one is skipped', async () => {
  const a = await startFake(byName)
  const b = await startFake(byName)
  const c = new RcptguardClient({ servers: [a.target, b.target], protos: p, timeout_ms: 1000 })
  try {
    for (let i = 0; i < 10; i++) await c.validate(request(`ok${i}`))
    assert.strictEqual(a.state.requests.length, 5)
    assert.strictEqual(b.state.requests.length, 5)
    a.stop()
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => c.validate(request(`ok${i}`))))
    // Those sent to the dead server are tried again on the live one.
    const failed = results.filter((r) => r.status === 'rejected').length
    assert.strictEqual(failed, 0)
    for (let i = 0; i < 10; i++) await c.validate(request(`ok${i}`))
    assert.ok(b.state.requests.length >= 18)
  } finally {
    c.close()
    b.stop()
  }
})

test('a draining answer retires the stream: the next lookup opens a new one', async () => {
  const fake = await startFake(byName)
  const c = new RcptguardClient({ servers: [fake.target], protos: p, timeout_ms: 1000 })
  try {
    await c.validate(request('ok1'))
    fake.state.draining = true
    const a = await c.validate(request('ok2'))
    assert.strictEqual(a.draining, true)
    fake.state.draining = false
    await c.validate(request('ok3'))
    assert.strictEqual(fake.state.streams, 2)
    assert.strictEqual(c.events.stream_retired, 1)
  } finally {
    c.close()
    fake.stop()
  }
})

test('served domains come from GetServedDomains', async () => {
  const fake = await startFake(byName, { domains: [{ name: 'example.com', aliases: ['mail.example.com'], monitor: false }] })
  const c = new RcptguardClient({ servers: [fake.target], protos: p })
  try {
    const answer = await c.servedDomains()
    assert.strictEqual(answer.domains[0].name, 'example.com')
    assert.deepStrictEqual(answer.domains[0].aliases, ['mail.example.com'])
  } finally {
    c.close()
    fake.stop()
  }
})
