// Copies the API protos from the repository into the package (npm pack runs
// this as "prepack"), so that the published package is self-contained. In a
// checkout the plugin finds them in ../../proto without this step.
'use strict'

const fs = require('node:fs')
const path = require('node:path')

const FILES = ['rcptguard/v1/validation.proto']

const pkg = path.resolve(__dirname, '..')
const from = path.resolve(pkg, '..', '..', 'proto')
const to = path.join(pkg, 'proto')
for (const f of FILES) {
  const src = path.join(from, f)
  if (!fs.existsSync(src)) {
    if (fs.existsSync(path.join(to, f))) continue // packing a package again
    throw new Error(`prepack: ${src} not found (run from a rcptguard checkout)`)
  }
  fs.mkdirSync(path.dirname(path.join(to, f)), { recursive: true })
  fs.copyFileSync(src, path.join(to, f))
}
