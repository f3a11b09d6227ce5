// Verify keygate's X-Keygate-Identity token in Node with jose (npm install jose).
// Usage: KEYGATE_SIGNING_SECRET=… node verify.mjs <token> <audience> <method> <path-and-query>
import { jwtVerify } from "jose";

export async function verifyKeygateIdentity(token, { secret, audience, method, pathAndQuery }) {
  const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
    algorithms: ["HS256"], // never "none" or another algorithm
    issuer: "keygate",
    audience, // this origin's URL, normalised: lowercase scheme://host[:port]
    requiredClaims: ["sub", "iat", "exp", "htm", "htu"],
    maxTokenAge: 60, // also refuses an iat in the future
    clockTolerance: 30, // seconds of clock skew
  });
  // The token is bound to one request: its method, and its raw path and query as received.
  if (payload.htm !== method.toUpperCase() || payload.htu !== pathAndQuery) {
    throw new Error("the token was made for another request");
  }
  return payload; // sub = key id; project, env, scope (space-separated)
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const [token, audience, method, pathAndQuery] = process.argv.slice(2);
  const secret = process.env.KEYGATE_SIGNING_SECRET;
  try {
    console.log(JSON.stringify(await verifyKeygateIdentity(token, { secret, audience, method, pathAndQuery })));
  } catch (error) {
    console.error(`refused: ${error.code ?? error.name}: ${error.message}`);
    process.exit(1);
  }
}
