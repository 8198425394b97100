// A real OpenID Connect issuer for Dataverket's tests (panva's
// oidc-provider, OpenID Certified), on loopback only.
//
//   node issuer.mjs PORT
//
// One public client `dv-cli` (no secret) that may use the device
// authorization grant (RFC 8628) and refresh tokens. Users need no password:
// the login page takes an email address and that is the account (its `sub`,
// `email`, `email_verified`). Consent for the first-party CLI is given on
// the user's behalf, so a test approves a user code by driving the
// provider's own device verification pages over HTTP
// (`/device?user_code=...`, the xsrf confirmation, this login page), the
// same path a browser takes. The signing key (RS256) is generated at start.
//
// Prints `oidc-issuer ready <issuer URL>` on stdout once it listens, and
// exits when its standard input closes, so a test runner that dies does not
// leave it behind.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number.parseInt(process.argv[2] ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node issuer.mjs PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'dv-cli',
    client_name: 'Dataverket CLI',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_CODE, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // The CLI sends the ID token as its bearer, so it must carry the claims
  // the servers map to a subject (email), not only `sub`.
  conformIdTokenClaims: false,
  features: {
    deviceFlow: { enabled: true },
    devInteractions: { enabled: false },
    revocation: { enabled: true },
  },
  // Short lifetimes: tests exercise refresh, and the ADR asks for them.
  ttl: {
    AccessToken: 120,
    IdToken: 120,
    DeviceCode: 300,
    RefreshToken: 3600,
    Grant: 3600,
    Interaction: 300,
    Session: 3600,
  },
  issueRefreshToken: async (ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: id, email_verified: true, name: id.split('@')[0] };
      },
    };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><html><body><h1>oops</h1><pre>${escape(JSON.stringify(out))}</pre></body></html>`;
  },
});

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign-in</title></head>
<body>
<h1>Sign-in</h1>
${message ? `<p class="red">${escape(message)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escape(uid)}/login">
<input type="email" name="login" placeholder="you@example.com" autofocus>
<button type="submit">Sign-in</button>
</form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The interaction routes: a login page, and consent granted on the user's
// behalf (the CLI is the platform's own client).
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { uid, prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    if (ctx.method !== 'POST' || !m[2]) {
      ctx.type = 'html';
      ctx.body = loginPage(uid);
      return;
    }
    const login = (await readForm(ctx.req)).get('login') ?? '';
    if (!/^[^\s@]+@[^\s@]+$/.test(login)) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = loginPage(uid, 'enter an email address');
      return;
    }
    result = { login: { accountId: login } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    ctx.status = 400;
    ctx.body = `unexpected prompt ${prompt.name}`;
    return;
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
  ctx.status = 303;
  ctx.redirect(to);
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-issuer ready ${issuer}`);
});
process.stdin.resume();
process.stdin.on('end', () => {
  server.close();
  process.exit(0);
});
