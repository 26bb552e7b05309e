// The plugin's connection to one or more rcptguardd servers.
//
// - Servers are used round robin, one lookup each; a server that fails (an
//   error, or no answer within the deadline) is skipped for `retry_ms`, and
//   the lookups it held fail at once (the caller applies its failure
//   policy). When every server is being skipped, lookups fail at once.
// - Transport "stream" (default): one long-lived ValidateStream per server,
//   shared by every SMTP connection of this worker. Requests carry a
//   request_id; answers are matched by it. Each request has its own
//   deadline (`timeout_ms`): a request unanswered by then means the server
//   is stuck (e.g. frozen), so the stream is cancelled and everything it
//   held fails. A stream that ends or breaks is reopened at the next lookup.
//   An answer with `draining` set (the server is shutting down) retires the
//   stream: new lookups go to a new stream (another server when there is
//   one), the old one is closed once its answers are in.
// - Group commit (`batch`, on by default): the stream is a
//   ValidateBatchStream. The lookups of all connections that arrive in one
//   turn of the event loop go out as one message at its end; while
//   `messages_in_flight` messages (2 by default) are unanswered, later
//   lookups queue and go out together when one is answered (at most 1000
//   per message). So batches grow with load, and an idle worker adds no
//   delay. Two in flight rather than one: a lookup that arrives just after
//   a message left goes in the next at once instead of waiting a whole
//   round trip (through Haraka, 0.65-0.70x of no check against 0.63-0.68x
//   with one; BENCHMARKS.md). A server without ValidateBatchStream answers
//   UNIMPLEMENTED; the client then uses ValidateStream with it.
// - Transport "unary": one Validate call per lookup, with the same
//   deadline. Simpler, and about ten times the client CPU per lookup.
//
// Not thread-safe in the Node sense: one event loop per worker process.
'use strict'

const fs = require('node:fs')
const grpc = require('@grpc/grpc-js')
const { toNumber } = require('./protos')

class LookupError extends Error {
  constructor(message, code) {
    super(message)
    this.code = code
  }
}

function readFileOrThrow(what, file) {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    throw new Error(`rcptguard: tls.${what} ${file}: ${err.message}`)
  }
}

// Channel credentials from the [tls] options (plaintext when not enabled).
function credentials(tls) {
  if (!tls || !tls.enabled) return grpc.credentials.createInsecure()
  const ca = tls.ca ? readFileOrThrow('ca', tls.ca) : null
  const key = tls.key ? readFileOrThrow('key', tls.key) : null
  const cert = tls.cert ? readFileOrThrow('cert', tls.cert) : null
  if ((key === null) !== (cert === null)) {
    throw new Error('rcptguard: tls.key and tls.cert go together (mutual TLS)')
  }
  return grpc.credentials.createSsl(ca, key, cert)
}

const MAX_BATCH = 1000
const DEFAULT_IN_FLIGHT = 2
const MAX_IN_FLIGHT = 16

// `v` as a number of messages in flight (an integer 1..MAX_IN_FLIGHT, also
// given as a string), or null.
function messagesInFlight(v) {
  const n = typeof v === 'string' && v.trim() === '' ? NaN : Number(v)
  return Number.isInteger(n) && n >= 1 && n <= MAX_IN_FLIGHT ? n : null
}

class Stream {
  constructor(server, call, batch) {
    this.server = server
    this.call = call
    this.batch = batch
    this.pending = new Map() // request_id -> {resolve, reject, timer}
    this.queue = [] // batch: requests waiting for the message in flight
    this.inflight = 0 // batch: messages sent and not yet answered
    this.scheduled = false // batch: a flush is due at the end of this turn
    this.nextBatchId = 0 // batch: batch_id of the last message sent
    this.sent = new Map() // batch: batch_id -> request_ids, in message order
    this.retired = false
    this.dead = false
  }
}

class Server {
  constructor(target, Client, creds, channelOptions) {
    this.target = target
    this.client = new Client(target, creds, channelOptions)
    this.stream = null // the current Stream
    this.downUntil = 0
    this.batch = true // until the server says it has no ValidateBatchStream
  }
}

class RcptguardClient {
  // options: servers (["host:port", ...]), protos (lib/protos.js load()),
  // transport ("stream" | "unary"), batch, messages_in_flight (1..16),
  // timeout_ms, retry_ms, tls ({enabled, ca, cert, key, server_name}), now
  // (a clock, for tests).
  constructor(options) {
    if (!options.servers || options.servers.length === 0) {
      throw new Error('rcptguard: no servers configured (main.servers)')
    }
    this.protos = options.protos
    this.transport = options.transport === 'unary' ? 'unary' : 'stream'
    this.timeoutMs = options.timeout_ms > 0 ? options.timeout_ms : 1000
    this.retryMs = options.retry_ms >= 0 ? options.retry_ms : 5000
    this.batch = options.batch !== false
    this.maxInFlight = messagesInFlight(options.messages_in_flight) ?? DEFAULT_IN_FLIGHT
    this.now = options.now || Date.now
    const Client = grpc.makeGenericClientConstructor(
      this.protos.clientService || this.protos.service,
      'RecipientValidation',
    )
    const creds = credentials(options.tls)
    const channelOptions = {
      'grpc.keepalive_time_ms': 30000,
      'grpc.keepalive_timeout_ms': 10000,
      'grpc.keepalive_permit_without_calls': 0,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5000,
    }
    if (options.tls && options.tls.server_name) {
      channelOptions['grpc.ssl_target_name_override'] = options.tls.server_name
      channelOptions['grpc.default_authority'] = options.tls.server_name
    }
    this.servers = options.servers.map((t) => new Server(t, Client, creds, channelOptions))
    this.next = 0
    this.nextId = 1
    this.closed = false
    this.events = {
      stream_opened: 0,
      stream_failed: 0,
      stream_retired: 0,
      deadline: 0,
      batches: 0,
      batched_requests: 0,
    }
  }

  // The next server not being skipped, round robin; null when all are.
  pick() {
    const n = this.servers.length
    const now = this.now()
    for (let i = 0; i < n; i++) {
      const s = this.servers[(this.next + i) % n]
      if (s.downUntil <= now) {
        this.next = (this.next + i + 1) % n
        return s
      }
    }
    return null
  }

  markDown(server) {
    server.downUntil = this.now() + this.retryMs
  }

  // Validates one request (a plain object: context, recipients as Buffers,
  // dry_run, max_delay_ms). Resolves with the ValidateResponse; rejects
  // with a LookupError when no server answers in time.
  // A lookup that fails for a broken connection (not for its deadline:
  // that time is spent) is tried once more on another server, when one is
  // up.
  validate(request, retries = 1) {
    if (this.closed) return Promise.reject(new LookupError('client closed', 'closed'))
    const server = this.pick()
    if (server === null) {
      return Promise.reject(new LookupError('every server failed recently', 'down'))
    }
    request.request_id = this.nextId++
    if (this.nextId > Number.MAX_SAFE_INTEGER) this.nextId = 1
    const attempt =
      this.transport === 'unary'
        ? this.validateUnary(server, request)
        : this.validateStream(server, request)
    return attempt.catch((err) => {
      // An older server without ValidateBatchStream: ValidateStream then.
      if (err.code === grpc.status.UNIMPLEMENTED && !server.batch && !request.fell_back) {
        request.fell_back = true
        return this.validateStream(server, request)
      }
      if (retries <= 0 || this.servers.length < 2) throw err
      if (err.code === 'deadline' || err.code === 'closed' || err.code === grpc.status.DEADLINE_EXCEEDED ||
          err.code === grpc.status.INVALID_ARGUMENT) {
        throw err
      }
      return this.validate(request, retries - 1)
    })
  }

  validateUnary(server, request) {
    return new Promise((resolve, reject) => {
      const deadline = new Date(this.now() + this.timeoutMs)
      server.client.Validate(request, { deadline }, (err, response) => {
        if (err) {
          if (err.code !== grpc.status.INVALID_ARGUMENT) this.markDown(server)
          reject(new LookupError(`${server.target}: ${err.message}`, err.code))
          return
        }
        if (response.draining) this.markDown(server)
        resolve(response)
      })
    })
  }

  openStream(server) {
    const batch = this.batch && server.batch
    const call = batch ? server.client.ValidateBatchStream() : server.client.ValidateStream()
    const stream = new Stream(server, call, batch)
    this.events.stream_opened++
    if (batch) {
      call.on('data', (answer) => this.onBatchAnswer(stream, answer))
    } else {
      call.on('data', (response) => this.onAnswer(stream, response))
    }
    call.on('error', (err) => this.failStream(stream, err.message, err.code))
    call.on('end', () => this.failStream(stream, 'stream ended', 'ended'))
    // 'status' comes after 'end' or 'error'; nothing more to do.
    server.stream = stream
    return stream
  }

  // One ValidateBatchResponse: a result per request of the message it
  // answers, in its order. A request the server refused (its own error:
  // what a unary Validate of it would have failed with) fails alone; the
  // stream and the other requests go on.
  onBatchAnswer(stream, answer) {
    stream.inflight--
    const batchId = toNumber(answer.batch_id)
    const ids = stream.sent.get(batchId) || []
    stream.sent.delete(batchId)
    const results = answer.results || []
    for (let i = 0; i < results.length; i++) {
      const result = results[i]
      if (result.error) {
        const p = stream.pending.get(ids[i])
        if (p === undefined) continue
        stream.pending.delete(ids[i])
        clearTimeout(p.timer)
        p.reject(new LookupError(`${stream.server.target}: ${result.error.message}`, result.error.code))
      } else if (result.response) {
        this.onAnswer(stream, result.response)
      }
    }
    this.flush(stream)
  }

  // Sends the queued lookups as one message unless `maxInFlight` are.
  flush(stream) {
    if (stream.dead || stream.inflight >= this.maxInFlight || stream.queue.length === 0) return
    const requests = stream.queue.length <= MAX_BATCH ? stream.queue : stream.queue.slice(0, MAX_BATCH)
    stream.queue = stream.queue.length <= MAX_BATCH ? [] : stream.queue.slice(MAX_BATCH)
    stream.inflight++
    this.events.batches++
    this.events.batched_requests += requests.length
    const batchId = ++stream.nextBatchId
    stream.sent.set(batchId, requests.map((r) => r.request_id))
    stream.call.write({ batch_id: batchId, requests })
  }

  onAnswer(stream, response) {
    const id = toNumber(response.request_id)
    const p = stream.pending.get(id)
    if (p === undefined) return // answered after its deadline: dropped
    stream.pending.delete(id)
    clearTimeout(p.timer)
    if (response.draining && !stream.retired) this.retire(stream)
    p.resolve(response)
    if (stream.retired && stream.pending.size === 0 && stream.queue.length === 0 && !stream.dead) {
      stream.dead = true
      stream.call.end()
    }
  }

  // The server is shutting down: no new requests on this stream.
  retire(stream) {
    stream.retired = true
    this.events.stream_retired++
    if (stream.server.stream === stream) stream.server.stream = null
    // Prefer the other servers while this one drains.
    if (this.servers.length > 1) this.markDown(stream.server)
  }

  // Ends `stream` and fails what it holds.
  failStream(stream, why, code) {
    if (stream.server.stream === stream) stream.server.stream = null
    if (code === grpc.status.UNIMPLEMENTED && stream.batch) {
      stream.server.batch = false // an older server; not a failure
      stream.dead = true
      stream.queue = []
      const pending = stream.pending
      stream.pending = new Map()
      for (const p of pending.values()) {
        clearTimeout(p.timer)
        p.reject(new LookupError(`${stream.server.target}: ${why}`, code))
      }
      return
    }
    stream.queue = []
    // One request refused (INVALID_ARGUMENT "request_id N: ..."): that
    // request's problem only. The others on the stream are asked again on
    // a new stream; the server is not marked down.
    const refused = code === grpc.status.INVALID_ARGUMENT && /request_id (\d+):/.exec(String(why))
    if (refused && !stream.dead) {
      stream.dead = true
      const pending = stream.pending
      stream.pending = new Map()
      for (const [id, p] of pending) {
        clearTimeout(p.timer)
        if (id === Number(refused[1]) || p.request.resent) {
          p.reject(new LookupError(`${stream.server.target}: ${why}`, code))
        } else {
          p.request.resent = true
          this.validateStream(stream.server, p.request).then(p.resolve, p.reject)
        }
      }
      return
    }
    const hadPending = stream.pending.size > 0
    if (!stream.dead) {
      stream.dead = true
      if (code !== 'ended' || hadPending) {
        this.events.stream_failed++
        if (!stream.retired) this.markDown(stream.server)
      }
    }
    if (!hadPending) return
    const pending = stream.pending
    stream.pending = new Map()
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(new LookupError(`${stream.server.target}: ${why}`, code))
    }
  }

  validateStream(server, request) {
    let stream = server.stream
    if (stream === null || stream.dead || stream.retired) stream = this.openStream(server)
    return new Promise((resolve, reject) => {
      const id = request.request_id
      const timer = setTimeout(() => {
        // No answer in time: the server is stuck; nothing on this stream
        // will be answered in time either.
        this.events.deadline++
        this.failStream(stream, `no answer within ${this.timeoutMs} ms`, 'deadline')
        stream.call.cancel()
      }, this.timeoutMs)
      stream.pending.set(id, { resolve, reject, timer, request })
      if (stream.batch) {
        stream.queue.push(request)
        // Sent at the end of this turn of the event loop, with the lookups
        // of the other connections whose commands arrived in the same turn
        // (or, while maxInFlight messages are, when one is answered).
        if (!stream.scheduled && stream.inflight < this.maxInFlight) {
          stream.scheduled = true
          setImmediate(() => {
            stream.scheduled = false
            this.flush(stream)
          })
        }
      } else {
        stream.call.write(request)
      }
    })
  }

  // The served domains (GetServedDomains) from the next server up.
  servedDomains() {
    const server = this.pick()
    if (server === null) {
      return Promise.reject(new LookupError('every server failed recently', 'down'))
    }
    return new Promise((resolve, reject) => {
      const deadline = new Date(this.now() + Math.max(this.timeoutMs, 5000))
      server.client.GetServedDomains({}, { deadline }, (err, response) => {
        if (err) reject(new LookupError(`${server.target}: ${err.message}`, err.code))
        else resolve(response)
      })
    })
  }

  close() {
    this.closed = true
    for (const s of this.servers) {
      if (s.stream) this.failStream(s.stream, 'client closed', 'closed')
      s.client.close()
    }
  }
}

module.exports = { RcptguardClient, LookupError, credentials, messagesInFlight, DEFAULT_IN_FLIGHT, MAX_IN_FLIGHT }
