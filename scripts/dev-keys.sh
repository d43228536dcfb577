#!/usr/bin/env bash
# dev-keys.sh DIR — development key rings for reconciliation, made once:
#   DIR/pan.keys   HMAC key ring for card tokens (reconciliation/pan.h)
#   DIR/seal.keys  AES-256-GCM key ring for reports at rest (reconciliation/sealed.h)
# Mode 0600 (the loaders refuse group/world-readable key files). Production keys
# come from your key management, never from this script.
set -euo pipefail
dir=${1:?usage: dev-keys.sh DIR}
mkdir -p "$dir"
umask 077
for ring in pan seal; do
    f="$dir/$ring.keys"
    [[ -s "$f" ]] && continue
    printf '# %s key ring (dev): "<key_id> <64 hex>", the first key is active\n%s-dev-1 %s\n' \
        "$ring" "$ring" "$(openssl rand -hex 32)" >"$f"
done
