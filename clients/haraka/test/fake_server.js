// A fake rcptguardd in grpc-js for the plugin's tests: answers from a
// function, can hold answers back (a frozen server) and mark them draining.
'use strict'

const grpc = require('@grpc/grpc-js')
const protos = require('../lib/protos')

async function startFake(answer, options = {}) {
  const p = protos.load()
  const server = new grpc.Server()
  const state = {
    requests: [],
    batches: [],
    streams: 0,
    frozen: false,
    draining: false,
    delayMs: 0,
    domains: options.domains,
  }
  const respond = (req) => {
    state.requests.push(req)
    const r = answer(req)
    r.request_id = req.request_id
    if (state.draining) r.draining = true
    return r
  }
  const handlers = {
    Validate: (call, cb) => {
      if (state.frozen) return
      cb(null, respond(call.request))
    },
    ValidateStream: (call) => {
      state.streams++
      call.on('data', (req) => {
        if (!state.frozen) call.write(respond(req))
      })
      call.on('end', () => call.end())
      call.on('error', () => {})
    },
    ValidateBatchStream: (call) => {
      state.streams++
      call.on('data', (batch) => {
        state.batches.push(batch.requests.length)
        if (state.frozen) return
        // As the server: a refused request gets its own error, the others
        // their answers.
        const results = batch.requests.map((r) =>
          state.refuse && state.refuse(r)
            ? { error: { code: grpc.status.INVALID_ARGUMENT, message: `request_id ${r.request_id}: recipients[0]: too long` } }
            : { response: respond(r) })
        const answer = { batch_id: batch.batch_id, results }
        if (state.delayMs > 0) setTimeout(() => call.write(answer), state.delayMs)
        else call.write(answer)
      })
      call.on('end', () => call.end())
      call.on('error', () => {})
    },
    GetServedDomains: (call, cb) => {
      if (!state.domains) return cb({ code: grpc.status.UNAVAILABLE, details: 'no directory' })
      cb(null, { domains: state.domains, directory_version: 'v1' })
    },
  }
  // An older server: no ValidateBatchStream (grpc-js answers UNIMPLEMENTED).
  if (options.batch === false) delete handlers.ValidateBatchStream
  server.addService(p.service, handlers)
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  )
  return { server, port, state, target: `127.0.0.1:${port}`, stop: () => server.forceShutdown() }
}

// An answer as rcptguardd gives it for one recipient.
function verdict(status, code, enhanced, text, client = {}) {
  return {
    verdicts: [{ status, reply: { code, enhanced_status: enhanced, text } }],
    client: Object.assign({ action: 1 }, client),
  }
}

module.exports = { startFake, verdict }
