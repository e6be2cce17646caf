#!/usr/bin/env bash
# Makes the operator's audit key pair with gpg, non-interactively.
#
#   scripts/audit-keygen.sh [DIR] [NAME-EMAIL]
#
# DIR (default resources/keys) receives:
#   llm-router-auditor-pub.asc  the public key: point LLM_ROUTER_AUDIT_PUBLIC_KEY at it (the
#                               default path); the router needs only this file.
#   gnupg/                      a GNUPGHOME holding the secret key, for scripts/audit-decrypt.sh.
#                               Move it off the router's machine: whoever holds it reads the audit.
# The secret key has no passphrase unless AUDIT_KEY_PASSPHRASE is set.
set -euo pipefail
dir="${1:-resources/keys}"
email="${2:-llm-router-auditor@localhost}"
command -v gpg >/dev/null || { echo "audit-keygen: gpg is not installed (apt-get install gnupg)" >&2; exit 1; }
mkdir -p "$dir/gnupg"
chmod 700 "$dir/gnupg"
export GNUPGHOME="$dir/gnupg"
if [ -e "$dir/llm-router-auditor-pub.asc" ]; then
    echo "audit-keygen: $dir/llm-router-auditor-pub.asc exists; refusing to overwrite it" >&2
    exit 1
fi
if [ -n "${AUDIT_KEY_PASSPHRASE:-}" ]; then
    protection="Passphrase: $AUDIT_KEY_PASSPHRASE"
else
    protection="%no-protection"
fi
gpg --batch --quiet --gen-key <<SPEC
Key-Type: RSA
Key-Length: 3072
Key-Usage: sign
Subkey-Type: RSA
Subkey-Length: 3072
Subkey-Usage: encrypt
Name-Real: llm-router auditor
Name-Email: $email
Expire-Date: 0
$protection
%commit
SPEC
gpg --batch --armor --export "$email" > "$dir/llm-router-auditor-pub.asc"
echo "public key: $dir/llm-router-auditor-pub.asc (set LLM_ROUTER_AUDIT_PUBLIC_KEY to it)"
echo "secret key: GNUPGHOME=$dir/gnupg (keep it away from the router)"
