// Loads rcptguard's API (validation.proto) with @grpc/proto-loader, and the
// enum values by name from the loaded definition.
//
// Haraka runs plugins in a vm context, where protobufjs' conversion options
// `enums: String` and `longs: String` are silently ignored (they are
// compared with the host realm's String constructor): enums always arrive
// as numbers and uint64 as Long objects or numbers. So nothing here relies
// on those options: enum numbers are looked up by name in the loaded
// definition, and longs go through toNumber().
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const protoLoader = require('@grpc/proto-loader')
const protobuf = require('protobufjs')

const FILE = 'rcptguard/v1/validation.proto'

// The folder holding rcptguard/v1/validation.proto: in a rcptguard checkout
// (clients/haraka) the repository's, else the package's own copy (made by
// `npm pack`).
function protoDir(override) {
  const candidates = []
  if (override) candidates.push(override)
  const pkg = path.resolve(__dirname, '..')
  if (path.basename(path.dirname(pkg)) === 'clients') {
    candidates.push(path.resolve(pkg, '..', '..', 'proto'))
  }
  candidates.push(path.join(pkg, 'proto'))
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, FILE))) return dir
  }
  throw new Error(`rcptguard: ${FILE} not found in ${candidates.join(', ')}`)
}

// { NAME: number } for the enum `fullName` of a proto-loader definition.
function enumValues(definition, fullName) {
  const e = definition[fullName]
  if (!e || !e.type || !Array.isArray(e.type.value)) {
    throw new Error(`rcptguard: enum ${fullName} not in the loaded proto`)
  }
  const out = {}
  for (const v of e.type.value) out[v.name] = v.number
  return out
}

// The lookup path's messages go through protobufjs' encode and decode
// directly: requests are built with the right types already (Buffers for
// bytes, numbers), and answers are read as decoded messages (unset fields
// read their defaults from the prototype), which skips proto-loader's
// fromObject/toObject conversions (a third of the client's CPU per lookup).
function fastCodec(service, dir) {
  const root = new protobuf.Root()
  root.resolvePath = (origin, target) =>
    target.startsWith('google/protobuf/') ? target : path.join(dir, target)
  root.loadSync(FILE, { keepCase: true })
  const type = (name) => root.lookupType(`rcptguard.v1.${name}`)
  const codec = (method, request, response) => {
    const rq = type(request)
    const rs = type(response)
    return Object.assign({}, service[method], {
      requestSerialize: (o) => rq.encode(o).finish(),
      responseDeserialize: (b) => rs.decode(b),
    })
  }
  return Object.assign({}, service, {
    Validate: codec('Validate', 'ValidateRequest', 'ValidateResponse'),
    ValidateStream: codec('ValidateStream', 'ValidateRequest', 'ValidateResponse'),
    ValidateBatchStream: codec('ValidateBatchStream', 'ValidateBatchRequest', 'ValidateBatchResponse'),
  })
}

function load(override) {
  const dir = protoDir(override)
  const definition = protoLoader.loadSync(FILE, {
    keepCase: true,
    defaults: true,
    oneofs: false,
    includeDirs: [dir],
  })
  const service = definition['rcptguard.v1.RecipientValidation']
  return {
    dir,
    definition,
    // For servers (tests) and GetServedDomains: proto-loader's plain objects.
    service,
    // For the client: the fast codec on the lookup methods.
    clientService: fastCodec(service, dir),
    RecipientStatus: enumValues(definition, 'rcptguard.v1.RecipientStatus'),
    ClientAction: enumValues(definition, 'rcptguard.v1.ClientAction'),
    HarvestSkip: enumValues(definition, 'rcptguard.v1.HarvestSkip'),
  }
}

// A uint64 as decoded in or out of a vm context: number, string or Long.
function toNumber(v) {
  if (v === undefined || v === null) return 0
  if (typeof v === 'number') return v
  if (typeof v === 'string') return Number(v)
  if (typeof v.toNumber === 'function') return v.toNumber()
  if (typeof v.low === 'number' && typeof v.high === 'number') {
    return (v.high >>> 0) * 4294967296 + (v.low >>> 0)
  }
  return Number(v)
}

module.exports = { load, enumValues, toNumber, protoDir, FILE }
