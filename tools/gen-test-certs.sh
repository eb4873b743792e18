#!/bin/sh
# Regenerates the committed TLS test fixtures in test/fixtures/tls/ (QEMU x509 credential
# directory layout). Needs openssl; tests never run this, they use the committed files.
#
#   good/          ca-cert.pem (test CA), server-cert.pem + server-key.pem (localhost, 127.0.0.1, ::1),
#                  client-cert.pem + client-key.pem (subject O=e2k-migrate, CN=client.example)
#   rogue-client/  ca-cert.pem (the good CA, so the server is trusted) + a client certificate with
#                  the same subject, signed by the untrusted CA
#   rogue-server/  ca-cert.pem (the good CA) + a server certificate for localhost/127.0.0.1 signed by
#                  the untrusted CA
#   untrusted-ca/  ca-cert.pem of the second, untrusted CA
#
# Certificates are valid for ~100 years. CA private keys are thrown away.
set -eu
out="$(cd "$(dirname "$0")/.." && pwd)/test/fixtures/tls"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
days=36500

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; }

ca() { # name subject
  key "$work/$1.key"
  openssl req -x509 -new -key "$work/$1.key" -sha256 -days "$days" -subj "$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/$1.pem"
}

leaf() { # ca-name out-cert out-key subject extfile-lines
  key "$3"
  openssl req -new -key "$3" -subj "$4" -out "$work/leaf.csr"
  printf '%s\n' "$5" > "$work/leaf.ext"
  openssl x509 -req -in "$work/leaf.csr" -CA "$work/$1.pem" -CAkey "$work/$1.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$work/leaf.ext" -out "$2" 2>/dev/null
  chmod 0644 "$3"
}

server_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'
client_ext='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth'

ca goodca "/O=e2k-migrate/CN=e2k-migrate test CA"
ca badca "/O=e2k-migrate rogue/CN=untrusted test CA"

rm -rf "$out/good" "$out/rogue-client" "$out/rogue-server" "$out/untrusted-ca"
mkdir -p "$out/good" "$out/rogue-client" "$out/rogue-server" "$out/untrusted-ca"

cp "$work/goodca.pem" "$out/good/ca-cert.pem"
leaf goodca "$out/good/server-cert.pem" "$out/good/server-key.pem" "/O=e2k-migrate/CN=localhost" "$server_ext"
leaf goodca "$out/good/client-cert.pem" "$out/good/client-key.pem" "/O=e2k-migrate/CN=client.example" "$client_ext"

cp "$work/goodca.pem" "$out/rogue-client/ca-cert.pem"
leaf badca "$out/rogue-client/client-cert.pem" "$out/rogue-client/client-key.pem" "/O=e2k-migrate/CN=client.example" "$client_ext"

cp "$work/goodca.pem" "$out/rogue-server/ca-cert.pem"
leaf badca "$out/rogue-server/server-cert.pem" "$out/rogue-server/server-key.pem" "/O=e2k-migrate/CN=localhost" "$server_ext"

cp "$work/badca.pem" "$out/untrusted-ca/ca-cert.pem"
echo "wrote $out"
