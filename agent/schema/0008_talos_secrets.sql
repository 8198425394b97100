-- 0008: Talos cluster secrets. One row per cluster (talos.cluster_name),
-- created the first time a machine of that cluster needs its config and
-- never regenerated: every machine of the cluster shares its CAs and
-- tokens. The bundle (JSON) is sealed under the site key with the row's
-- seal name ("talos-cluster/<name>") as associated data
-- (agent/src/inventory/site_key.rs), so this file never holds a CA key or
-- token in clear.
CREATE TABLE talos_cluster (
    name           TEXT PRIMARY KEY NOT NULL,  -- the cluster name
    sealed_secrets BLOB NOT NULL,              -- nonce || XChaCha20-Poly1305(bundle JSON)
    created_at     INTEGER NOT NULL            -- unix nanoseconds
) STRICT;
