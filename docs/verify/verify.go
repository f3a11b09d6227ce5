// Verify keygate's X-Keygate-Identity token in Go with golang-jwt v4
// (go get github.com/golang-jwt/jwt/v4).
// Usage: KEYGATE_SIGNING_SECRET=… go run verify.go <token> <audience> <method> <path-and-query>
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v4"
)

// KeygateClaims are the claims of keygate's identity token.
type KeygateClaims struct {
	Project string `json:"project"`
	Env     string `json:"env"`
	Scope   string `json:"scope"` // space-separated
	Htm     string `json:"htm"`
	Htu     string `json:"htu"`
	// Subject is the key id; also Issuer, Audience, IssuedAt, ExpiresAt.
	jwt.RegisteredClaims
}

const clockSkew = 30 * time.Second

func VerifyKeygateIdentity(token, secret, audience, method, pathAndQuery string) (*KeygateClaims, error) {
	claims := &KeygateClaims{}
	// Only HS256 (never "none"); the time claims are checked below, with the clock skew.
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
	key := func(*jwt.Token) (interface{}, error) { return []byte(secret), nil }
	if _, err := parser.ParseWithClaims(token, claims, key); err != nil {
		return nil, err
	}
	now := time.Now()
	switch {
	case !claims.VerifyIssuer("keygate", true) || claims.Subject == "":
		return nil, errors.New("not a keygate identity")
	case !claims.VerifyAudience(audience, true): // this origin's URL, normalised
		return nil, errors.New("the token was made for another origin")
	case !claims.VerifyExpiresAt(now.Add(-clockSkew), true):
		return nil, errors.New("the token has expired")
	case !claims.VerifyIssuedAt(now.Add(clockSkew), true):
		return nil, errors.New("the token was issued in the future")
	// The token is bound to one request: its method, and its raw path and query as received
	// (r.RequestURI in net/http).
	case claims.Htm != strings.ToUpper(method) || claims.Htu != pathAndQuery:
		return nil, errors.New("the token was made for another request")
	}
	return claims, nil
}

func main() {
	args := os.Args[1:]
	claims, err := VerifyKeygateIdentity(args[0], os.Getenv("KEYGATE_SIGNING_SECRET"), args[1], args[2], args[3])
	if err != nil {
		fmt.Fprintf(os.Stderr, "refused: %v\n", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(claims)
	fmt.Println(string(out))
}
