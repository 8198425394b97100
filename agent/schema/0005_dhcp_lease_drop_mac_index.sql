-- 0005: drop dhcp_lease_by_mac.
--
-- Nothing queries leases by MAC in SQL: the agent answers such lookups from
-- its in-memory lease index. The index cost every committed lease a write
-- of a random B-tree page (client MACs are random), a measurable share of
-- a lease's CPU and WAL bytes under load (scripts/bench-dhcp.sh).
DROP INDEX dhcp_lease_by_mac;
