# Least-privilege policy for agent-rerun's vault: backend (OpenBao and HashiCorp Vault).
# A CI identity with it can sign with the Transit key "rerun-ci" and read its public
# keys, nothing else: it cannot create, rotate, export or delete keys.
# For another key or mount, replace "transit" and "rerun-ci" below (docs/vault.md).
path "transit/sign/rerun-ci" {
  capabilities = ["update"]
}

path "transit/keys/rerun-ci" {
  capabilities = ["read"]
}
