// A standard js-libp2p node (TCP, Noise, yamux, identify) with @chainsafe/libp2p-gossipsub,
// used by meshnode's interop test (tests/meshnode/test_interop_js.py) and by hand.
//
//   node peer.mjs --topic chat [--listen /ip4/127.0.0.1/tcp/0] [--dial MULTIADDR ...]
//
// Output: one JSON object per line on stdout:
//   {"event":"ready","peer_id":...,"addrs":[...]}            once listening
//   {"event":"connected","peer_id":...}                        a libp2p connection opened
//   {"event":"subscribed","peer_id":...,"topics":[...]}        a peer's SUBSCRIBE arrived
//   {"event":"message","topic":...,"from":...,"seqno_hex":...,"text":...,"data_b64":...}
//   {"event":"published","topic":...,"recipients":[...]}       answer to a publish command
//   {"event":"error","error":...}
// Input: one JSON command per line on stdin:
//   {"publish": "text", "topic": "chat"}     publish (topic defaults to --topic)
//   {"exit": true}                           stop the node and exit 0 (so does EOF on stdin)
// Every wait is bounded: --max-seconds (default 120) stops the process whatever happens.

import './node20.mjs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const { values } = parseArgs({
  options: {
    topic: { type: 'string', default: 'chat' },
    listen: { type: 'string', default: '/ip4/127.0.0.1/tcp/0' },
    dial: { type: 'string', multiple: true, default: [] },
    'max-seconds': { type: 'string', default: '120' }
  }
})

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const topic = values.topic

const node = await createLibp2p({
  addresses: { listen: [values.listen] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({
      emitSelf: false,
      allowPublishToZeroTopicPeers: true,
      // The defaults otherwise: StrictSign, flood publish, D=6, heartbeat 1 s.
    })
  }
})

let stopping = false
async function stop (code) {
  if (stopping) return
  stopping = true
  try {
    await node.stop()
  } finally {
    process.exit(code)
  }
}

const limit = setTimeout(() => {
  emit({ event: 'error', error: `--max-seconds ${values['max-seconds']} elapsed` })
  stop(3)
}, Number(values['max-seconds']) * 1000)
limit.unref()
process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))

const pubsub = node.services.pubsub

node.addEventListener('peer:connect', (evt) => {
  emit({ event: 'connected', peer_id: evt.detail.toString() })
})

pubsub.addEventListener('subscription-change', (evt) => {
  emit({
    event: 'subscribed',
    peer_id: evt.detail.peerId.toString(),
    topics: evt.detail.subscriptions.filter((s) => s.subscribe).map((s) => s.topic)
  })
})

pubsub.addEventListener('message', (evt) => {
  const msg = evt.detail
  const data = Buffer.from(msg.data)
  emit({
    event: 'message',
    topic: msg.topic,
    type: msg.type,
    from: msg.type === 'signed' ? msg.from.toString() : null,
    seqno_hex: msg.type === 'signed' ? msg.sequenceNumber.toString(16).padStart(16, '0') : null,
    text: data.toString('utf8'),
    data_b64: data.toString('base64')
  })
})

pubsub.subscribe(topic)

emit({
  event: 'ready',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map((a) => a.toString())
})

for (const addr of values.dial) {
  try {
    await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })
  } catch (err) {
    emit({ event: 'error', error: `dial ${addr}: ${err.message}` })
  }
}

const lines = createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (err) {
    emit({ event: 'error', error: `bad command: ${err.message}` })
    return
  }
  if (cmd.exit) {
    await stop(0)
    return
  }
  if (typeof cmd.publish === 'string') {
    const t = cmd.topic ?? topic
    try {
      const result = await pubsub.publish(t, new TextEncoder().encode(cmd.publish))
      emit({ event: 'published', topic: t, recipients: result.recipients.map((p) => p.toString()) })
    } catch (err) {
      emit({ event: 'error', error: `publish: ${err.message}` })
    }
    return
  }
  emit({ event: 'error', error: `unknown command: ${line}` })
})
lines.on('close', () => stop(0))
