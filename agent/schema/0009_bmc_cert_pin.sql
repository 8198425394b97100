-- 0009: BMC TLS certificates pinned on first use. A Redfish BMC on https
-- presents a self-signed certificate as a rule, so the agent trusts the
-- first certificate it sees (its SHA-256, lower-case hex, of the DER) and
-- from then on only that one (agent/src/bmc/redfish.rs). NULL: not pinned
-- yet (or re-pin asked: POST /v1/machines/{key}/bmc/repin).
ALTER TABLE bmc ADD COLUMN cert_sha256 TEXT;
ALTER TABLE bmc ADD COLUMN cert_pinned_at INTEGER;  -- unix nanoseconds
