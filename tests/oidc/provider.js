// An OpenID Connect provider for dlab's tests: oidc-provider with its development sign-in pages
// (any login and password sign in, as that login), one confidential client (the class server),
// and the claims an institution sends. Settings come from the environment the test gives.
import Provider from "oidc-provider";

const { ISSUER, PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI } = process.env;

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  // The account is the login typed on the sign-in page: "Ola.Nordmann" signs in as ola.nordmann@uni.
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, preferred_username: id, email: `${id.toLowerCase()}@uni.example`, name: id }),
  }),
  claims: { openid: ["sub"], profile: ["preferred_username", "name"], email: ["email"] },
  features: { devInteractions: { enabled: true } },
});
provider.listen(Number(PORT), () => console.log(`oidc provider ${ISSUER} on port ${PORT}`));
