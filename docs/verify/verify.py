"""Verify keygate's X-Keygate-Identity token in Python with PyJWT (pip install PyJWT).

Usage: KEYGATE_SIGNING_SECRET=... python3 verify.py <token> <audience> <method> <path-and-query>
"""
import json
import os
import sys

import jwt  # PyJWT


def verify_keygate_identity(token, secret, audience, method, path_and_query):
    claims = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],  # never "none" or another algorithm
        issuer="keygate",
        audience=audience,  # this origin's URL, normalised: lowercase scheme://host[:port]
        leeway=30,  # seconds of clock skew; PyJWT also refuses an iat in the future
        options={"require": ["iss", "sub", "aud", "iat", "exp", "htm", "htu"]},
    )
    # The token is bound to one request: its method, and its raw path and query as received.
    if claims["htm"] != method.upper() or claims["htu"] != path_and_query:
        raise jwt.InvalidTokenError("the token was made for another request")
    return claims  # sub = key id; project, env, scope (space-separated)


if __name__ == "__main__":
    token, audience, method, path_and_query = sys.argv[1:5]
    try:
        claims = verify_keygate_identity(token, os.environ["KEYGATE_SIGNING_SECRET"], audience, method, path_and_query)
    except jwt.InvalidTokenError as error:
        print(f"refused: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(claims))
