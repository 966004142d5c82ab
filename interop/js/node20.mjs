// Node.js 20 lacks Promise.withResolvers (ES2024, Node.js >= 22), which js-libp2p 2.x's
// dependencies (mortice through it-queue) call. peer.mjs imports this module first.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}
