// A real OpenID Connect provider (node-oidc-provider) for QPI's OAuth2 login tests.
//
// Listens on an inherited, already bound socket (OIDC_FD) so the test knows the issuer
// URL before anything starts and no port is ever guessed. Its development interactions
// accept any login name: "alice@example.com" signs in with a verified e-mail,
// "unverified+bob@example.com" with an unverified one. Test use only.
import http from 'node:http';
import Provider from 'oidc-provider';

const { OIDC_FD, OIDC_ISSUER, OIDC_REDIRECT_URIS, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET } = process.env;

const UNVERIFIED = 'unverified+';

function account(id) {
  const email = id.startsWith(UNVERIFIED) ? id.slice(UNVERIFIED.length) : id;
  return {
    accountId: id,
    async claims() {
      return {
        sub: `subject-${id}`,
        email,
        email_verified: !id.startsWith(UNVERIFIED),
        name: `Test ${email.split('@')[0]}`,
      };
    },
  };
}

const provider = new Provider(OIDC_ISSUER, {
  clients: [
    {
      client_id: OIDC_CLIENT_ID,
      client_secret: OIDC_CLIENT_SECRET,
      redirect_uris: OIDC_REDIRECT_URIS.split(','),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Put the e-mail claims into the ID token itself (not only userinfo).
  conformIdTokenClaims: false,
  cookies: { keys: ['qpi-test-oidc-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  findAccount: (ctx, id) => account(id),
});

const server = http.createServer(provider.callback());
server.listen({ fd: Number(OIDC_FD) }, () => {
  process.stdout.write('READY\n');
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
