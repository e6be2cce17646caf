#!/usr/bin/env bash
# Decrypts every audit record (*.audit) of DIR with gpg and prints them, one JSON document each,
# in file-name order (which is time order per event type).
#
#   scripts/audit-decrypt.sh DIR [GNUPGHOME]
#
# GNUPGHOME defaults to the environment's, else resources/keys/gnupg (scripts/audit-keygen.sh).
set -euo pipefail
dir="${1:?usage: scripts/audit-decrypt.sh DIR [GNUPGHOME]}"
export GNUPGHOME="${2:-${GNUPGHOME:-resources/keys/gnupg}}"
command -v gpg >/dev/null || { echo "audit-decrypt: gpg is not installed (apt-get install gnupg)" >&2; exit 1; }
shopt -s nullglob
files=("$dir"/*.audit)
if [ ${#files[@]} -eq 0 ]; then
    echo "audit-decrypt: no *.audit files in $dir" >&2
    exit 1
fi
failed=0
for f in "${files[@]}"; do
    echo "== $f"
    if ! gpg --batch --quiet --decrypt "$f"; then
        echo "audit-decrypt: cannot decrypt $f" >&2
        failed=1
    fi
    echo
done
exit "$failed"
