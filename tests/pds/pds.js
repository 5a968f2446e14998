'use strict'
// A reference Bluesky PDS and a PLC directory on loopback, for Storyloop's tests.
//
// Started by tests/pds/pdskit.py as `node pds.js DATA_DIR`. It starts the PLC (in memory) and the
// PDS (SQLite and blobs under DATA_DIR) from @atproto/dev-env on free ports, creates one account
// with an app password, prints one JSON line {service, plc, did, handle, password, ...} and runs
// until its standard input closes or it gets SIGTERM/SIGINT, then stops both servers and exits.
const path = require('node:path')
const fs = require('node:fs')
const { TestNetworkNoAppView } = require('@atproto/dev-env/dist/network-no-appview')

const HANDLE = 'cedarandclay.test'
const PASSWORD = 'correct-horse-battery-staple'

async function main() {
  const dataDir = process.argv[2]
  if (!dataDir) throw new Error('usage: node pds.js DATA_DIR')
  const started = Date.now()
  fs.mkdirSync(path.join(dataDir, 'data'), { recursive: true })
  const network = await TestNetworkNoAppView.create({
    pds: {
      dataDirectory: path.join(dataDir, 'data'),
      blobstoreDiskLocation: path.join(dataDir, 'blobs'),
    },
  })
  let stopping = false
  const stop = async (code) => {
    if (stopping) return
    stopping = true
    try {
      await network.close()
    } finally {
      process.exit(code)
    }
  }
  process.on('SIGTERM', () => stop(0))
  process.on('SIGINT', () => stop(0))
  process.stdin.on('end', () => stop(0))
  process.stdin.on('error', () => stop(0))
  process.stdin.resume()

  const agent = network.pds.getClient()
  await agent.createAccount({ email: 'shop@cedarandclay.test', handle: HANDLE, password: PASSWORD })
  const appPassword = await agent.com.atproto.server.createAppPassword({ name: 'storyloop' })
  const info = {
    service: `http://127.0.0.1:${network.pds.port}`,
    plc: `http://127.0.0.1:${network.plc.port}`,
    did: agent.session.did,
    handle: HANDLE,
    password: PASSWORD,
    app_password: appPassword.data.password,
    admin_password: 'admin-pass',
    startup_ms: Date.now() - started,
  }
  process.stdout.write(JSON.stringify(info) + '\n')
}

main().catch((err) => {
  process.stderr.write(`pds.js: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
