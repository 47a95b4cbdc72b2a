// A real OAuth 2.1 / OIDC authorization server for the test suite, built on
// oidc-provider 9 (panva). Binds 127.0.0.1 only; state lives in memory.
//
// Run:  PORT=0 node provider.mjs      (Node 22: node_modules/.bin/node)
// Prints exactly one stdout line when listening:  READY http://127.0.0.1:<port>
//
// Environment:
//   PORT              port to bind; 0 (default) picks a free one. Issuer is
//                     http://127.0.0.1:<port>.
//   RESOURCE_PREFIX   resource indicators (RFC 8707) accepted must start with
//                     this (default "http://127.0.0.1:"); others: invalid_target.
//   RESOURCE_SCOPES   scopes of every accepted resource (default "mcp:tools").
//   ACCESS_TOKEN_TTL  access token lifetime in seconds (default 120).
//   ROTATE_REFRESH    "true" (default): every refresh issues a new refresh
//                     token and the old one is consumed (reuse -> invalid_grant
//                     and the whole grant is revoked). "false": never rotate.
//   REQUIRE_OFFLINE_ACCESS  "false" (default): a refresh token is issued
//                     whenever the client registered the refresh_token grant
//                     type. "true": oidc-provider's stock policy, i.e. also
//                     require the offline_access scope to be granted.
//   INTERACTIVE       "auto" (default): login (account "test-user") and
//                     consent are approved without any page.
//                     "form": plain HTML pages (no JS) for a browser:
//                       login   #username #password #login   (test-user / test-password)
//                       consent #allow #deny  (Deny -> redirect_uri?error=access_denied)
//
// Features: open dynamic client registration at /reg; PKCE (S256) required
// for every client; resource indicators with JWT access tokens (typ at+jwt,
// aud = resource); scopes openid offline_access + RESOURCE_SCOPES; refresh
// tokens; revocation (/token/revocation); introspection (/token/introspection);
// RFC 9207 `iss` on authorization responses; JWKS at /jwks.
//
// Test hooks (no auth; the server only listens on loopback):
//   POST /__test__/revoke-all  drop every grant, token and authorization code
//                              (clients and login sessions stay), so refresh
//                              fails with invalid_grant and the next
//                              authorization asks for consent again.
//                              Answers {"revoked": <number of records>}.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

const env = process.env;
const PORT = Number(env.PORT || 0);
const RESOURCE_PREFIX = env.RESOURCE_PREFIX || 'http://127.0.0.1:';
const RESOURCE_SCOPES = (env.RESOURCE_SCOPES || 'mcp:tools').split(/\s+/).filter(Boolean);
const ACCESS_TOKEN_TTL = Number(env.ACCESS_TOKEN_TTL || 120);
const ROTATE_REFRESH = (env.ROTATE_REFRESH || 'true').toLowerCase() !== 'false';
const REQUIRE_OFFLINE_ACCESS = (env.REQUIRE_OFFLINE_ACCESS || 'false').toLowerCase() === 'true';
const INTERACTIVE = env.INTERACTIVE || 'auto';
const TEST_USER = 'test-user';
const TEST_PASSWORD = 'test-password';

if (!['auto', 'form'].includes(INTERACTIVE)) {
  console.error(`INTERACTIVE must be "auto" or "form", not ${JSON.stringify(INTERACTIVE)}`);
  process.exit(2);
}

// --- storage: a plain in-memory adapter we can clear ------------------------

const store = new Map(); // `${model}:${id}` -> { payload, expiresAt }
const GRANT_MODELS = new Set(['Grant', 'AccessToken', 'RefreshToken', 'AuthorizationCode']);

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { model: this.model, payload: structuredClone(payload), expiresAt });
  }

  get(key) {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  }

  async find(id) {
    const entry = this.get(this.key(id));
    return entry && structuredClone(entry.payload);
  }

  findBy(field, value) {
    for (const [key, entry] of store) {
      if (entry.model === this.model && entry.payload[field] === value && this.get(key)) {
        return structuredClone(entry.payload);
      }
    }
    return undefined;
  }

  async findByUid(uid) {
    return this.findBy('uid', uid);
  }

  async findByUserCode(userCode) {
    return this.findBy('userCode', userCode);
  }

  async consume(id) {
    const entry = this.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [key, entry] of store) {
      if (entry.payload.grantId === grantId) store.delete(key);
    }
  }
}

function revokeAll() {
  let revoked = 0;
  for (const [key, entry] of store) {
    if (GRANT_MODELS.has(entry.model)) {
      store.delete(key);
      revoked += 1;
    }
  }
  return revoked;
}

// --- the provider -----------------------------------------------------------

const signingKey = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: randomUUID(),
  alg: 'RS256',
  use: 'sig',
};

const httpServer = http.createServer();
await new Promise((resolve, reject) => {
  httpServer.once('error', reject);
  httpServer.listen(PORT, '127.0.0.1', resolve);
});
const ISSUER = `http://127.0.0.1:${httpServer.address().port}`;

const provider = new Provider(ISSUER, {
  adapter: MemoryAdapter,
  jwks: { keys: [signingKey] },
  clients: [],
  scopes: ['openid', 'offline_access', ...RESOURCE_SCOPES],
  responseTypes: ['code'],
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true }, // open DCR: no initial access token
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (!resource.startsWith(RESOURCE_PREFIX)) {
          throw new errors.InvalidTarget(`resource must start with ${RESOURCE_PREFIX}`);
        }
        return {
          scope: RESOURCE_SCOPES.join(' '),
          audience: resource,
          accessTokenTTL: ACCESS_TOKEN_TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // oidc-provider's stock policy needs the refresh_token grant type AND the
  // offline_access scope (which it silently drops unless there is no `prompt`
  // parameter or prompt includes `consent`). MCP clients rarely ask for
  // offline_access, so by default the grant type alone is enough here.
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed('refresh_token')
    && (!REQUIRE_OFFLINE_ACCESS || code.scopes.has('offline_access')),
  rotateRefreshToken: ROTATE_REFRESH,
  pkce: { required: () => true }, // v9 only supports S256
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    Grant: 14 * 24 * 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['test-only-cookie-key-not-secret'] },
  clientBasedCORS: () => true,
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page(
      'Authorization error',
      `<h1>Authorization error</h1><p id="error">${escape(out.error)}: ${escape(out.error_description || '')}</p>`,
    );
  },
});

// --- interactions -----------------------------------------------------------

function escape(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body>${body}</body></html>`;
}

async function readForm(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function consentGrant(details) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

async function finish(ctx, result, merge) {
  const location = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: merge,
  });
  ctx.status = 303;
  ctx.redirect(location);
}

function loginPage(uid, client, error) {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p>Sign in to continue to <strong id="client-name">${escape(client)}</strong>.</p>
${error ? `<p id="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label for="username">Username</label>
  <input id="username" name="username" autocomplete="username" required>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button id="login" type="submit">Sign in</button>
</form>`,
  );
}

function consentPage(uid, client, details) {
  const missing = details.prompt.details;
  const scopes = new Set([...(missing.missingOIDCScope || [])]);
  const resources = Object.entries(missing.missingResourceScopes || {});
  for (const [, resourceScopes] of resources) resourceScopes.forEach((s) => scopes.add(s));
  return page(
    'Authorize access',
    `<h1>Authorize access</h1>
<p><strong id="client-name">${escape(client)}</strong> wants to access your account
(<span id="account">${escape(details.session?.accountId)}</span>).</p>
<p>Scopes:</p>
<ul id="scopes">${[...scopes].map((s) => `<li>${escape(s)}</li>`).join('')}</ul>
<p>Resources:</p>
<ul id="resources">${resources.map(([r]) => `<li>${escape(r)}</li>`).join('')}</ul>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button id="allow" type="submit">Allow</button>
</form>
<form method="post" action="/interaction/${escape(uid)}/abort">
  <button id="deny" type="submit">Deny</button>
</form>`,
  );
}

const INTERACTION = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/;

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/__test__/revoke-all') {
    ctx.body = { revoked: revokeAll() };
    return undefined;
  }

  const match = INTERACTION.exec(ctx.path);
  if (!match) return next();
  const [, uid, action] = match;
  ctx.set('Cache-Control', 'no-store');

  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (error) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Interaction error', `<h1>Interaction error</h1><p id="error">${escape(error.message)}</p>`);
    return undefined;
  }
  const { prompt } = details;

  if (INTERACTIVE === 'auto') {
    if (prompt.name === 'login') {
      return finish(ctx, { login: { accountId: TEST_USER } }, false);
    }
    return finish(ctx, { consent: { grantId: await consentGrant(details) } }, true);
  }

  const client = await provider.Client.find(details.params.client_id);
  const clientName = client?.clientName || details.params.client_id;

  if (!action && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = prompt.name === 'login'
      ? loginPage(uid, clientName)
      : consentPage(uid, clientName, details);
    return undefined;
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return undefined;
  }
  if (action === 'login' && prompt.name === 'login') {
    const form = await readForm(ctx);
    if (form.get('username') !== TEST_USER || form.get('password') !== TEST_PASSWORD) {
      ctx.type = 'html';
      ctx.body = loginPage(uid, clientName, 'Invalid username or password.');
      return undefined;
    }
    return finish(ctx, { login: { accountId: TEST_USER } }, false);
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    return finish(ctx, { consent: { grantId: await consentGrant(details) } }, true);
  }
  if (action === 'abort') {
    return finish(
      ctx,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      false,
    );
  }
  ctx.status = 400;
  ctx.body = `unexpected ${action} during the ${prompt.name} prompt`;
  return undefined;
});

httpServer.on('request', provider.callback());
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
console.log(`READY ${ISSUER}`);
