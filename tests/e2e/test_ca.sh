#!/usr/bin/env bash
# meshctl ca: the mesh CA and workload certificates, checked by an
# independent implementation (the openssl CLI): the chain verifies to the
# root, the leaf carries exactly one SPIFFE URI SAN and both EKUs, the key
# is private, an existing CA is never replaced silently, bad names and a
# foreign root are refused; a node CA's leaves carry the chain to the root.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/e2e/lib/assert.sh
CTL=$(realpath "${MESHD_BUILD:-build}/meshctl")
dir=$(mktemp -d /tmp/meshd-ca.XXXXXX)
other=$(mktemp -d /tmp/meshd-ca.XXXXXX)
trap 'rm -rf "$dir" "$other"' EXIT

t_begin "init"
t_expect_contains "$("$CTL" ca init "$dir/ca" --trust-domain mesh.test)" "trust domain mesh.test" "created"
t_expect_eq "$(stat -c %a "$dir/ca/ca-key.pem")" 600 "key is private"
out=$("$CTL" ca init "$dir/ca" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 1 "an existing CA is not replaced"
t_expect_contains "$out" "refusing" "with a clear message"
t_expect_eq "$(openssl x509 -in "$dir/ca/root-cert.pem" -noout -ext basicConstraints | tail -1 | tr -d ' ')" "CA:TRUE" "root is a CA"

t_begin "issue"
"$CTL" ca issue "$dir/ca" --trust-domain mesh.test --ns payments --sa v1 --out "$dir/v1" >/dev/null
t_expect_eq "$(openssl verify -CAfile "$dir/ca/root-cert.pem" "$dir/v1.pem" | awk '{print $2}')" OK "chain verifies (openssl)"
t_expect_eq "$(openssl x509 -in "$dir/v1.pem" -noout -ext subjectAltName | tail -1 | tr -d ' ')" \
    "URI:spiffe://mesh.test/ns/payments/sa/v1" "exactly the SPIFFE id"
t_expect_contains "$(openssl x509 -in "$dir/v1.pem" -noout -ext extendedKeyUsage)" "Client Authentication" "client auth"
t_expect_contains "$(openssl x509 -in "$dir/v1.pem" -noout -text)" "prime256v1" "ECDSA P-256"
t_expect_eq "$(stat -c %a "$dir/v1-key.pem")" 600 "leaf key is private"
out=$("$CTL" ca issue "$dir/ca" --ns Payments --sa v1 --out "$dir/x" 2>&1) && rc=0 || rc=$?
t_expect_eq "$rc" 1 "a non-Kubernetes name is refused ($out)"

t_begin "node CA: issue sends the chain"
"$CTL" ca node node-a --ca-dir "$dir/ca" --trust-domain mesh.test "$dir/node-a" >/dev/null
"$CTL" ca issue "$dir/node-a" --trust-domain mesh.test --ns payments --sa v1 --out "$dir/n1" >/dev/null
t_expect_eq "$(grep -c 'BEGIN CERTIFICATE' "$dir/n1.pem")" 2 "leaf + node CA in PREFIX.pem"
t_expect_eq "$(openssl verify -CAfile "$dir/ca/root-cert.pem" -untrusted "$dir/n1.pem" "$dir/n1.pem" | awk '{print $2}')" OK \
    "chain verifies through the node CA (openssl)"
openssl verify -CAfile "$dir/ca/root-cert.pem" "$dir/n1.pem" >/dev/null 2>&1 && rc=0 || rc=$?
t_expect_eq "$rc" 2 "not without the node CA"

t_begin "a foreign root does not verify"
"$CTL" ca init "$other/ca" --trust-domain mesh.test >/dev/null
"$CTL" ca issue "$other/ca" --trust-domain mesh.test --ns payments --sa v1 --out "$other/v1" >/dev/null
openssl verify -CAfile "$dir/ca/root-cert.pem" "$other/v1.pem" >/dev/null 2>&1 && rc=0 || rc=$?
t_expect_eq "$rc" 2 "same name, other root: refused"

t_summary
