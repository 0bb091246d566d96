/**
 * Jest (on Node 20) cannot `require()` an ES module, and light-my-request (Fastify's `inject`) requires cookie@2,
 * which is ESM only. This CommonJS stand-in gives it the one function it uses, built on cookie@0.7 (CommonJS, already
 * installed), and keeps 0.7's own API for anything else that requires `cookie` under Jest.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- CommonJS on purpose (see above)
const cookie = require('../../node_modules/cookie/index.js');

module.exports = {
  ...cookie,
  stringifySetCookie(c, options) {
    const { name, value, ...attributes } = c;
    return cookie.serialize(name, value, { ...attributes, ...options });
  },
};
