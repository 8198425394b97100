//! Forwarding for names outside the site's zones, through hickory-resolver
//! with its cache.
//!
//! The cache honours each answer's TTL and caches negative answers for the
//! SOA MINIMUM the upstream sent (RFC 2308 section 5), capped here so a
//! mistake upstream is not remembered for a day. TTLs in replies count down
//! with the cache: a client never sees a TTL longer than what remains.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Record;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as NetDnsError, NetError};

use super::DnsError;
use super::answer::{Upstream, soa_record};

/// Cached answers kept (entries, not bytes).
const CACHE_ENTRIES: u64 = 4096;
/// Longest time a negative answer is cached.
const NEGATIVE_MAX: Duration = Duration::from_secs(300);

/// The upstream resolvers with a shared cache.
#[derive(Clone)]
pub struct Forwarder {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder to `upstreams`; `None` when there are none.
    pub fn new(upstreams: &[SocketAddr]) -> Result<Option<Forwarder>, DnsError> {
        if upstreams.is_empty() {
            return Ok(None);
        }
        let servers = (upstreams.iter())
            .map(|u| {
                let mut ns = NameServerConfig::udp_and_tcp(u.ip());
                for c in &mut ns.connections {
                    c.port = u.port();
                }
                ns
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.cache_size = CACHE_ENTRIES;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        opts.recursion_desired = true;
        opts.preserve_intermediates = true;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.negative_max_ttl = Some(NEGATIVE_MAX);
        opts.edns_payload_len = super::answer::UDP_PAYLOAD;
        opts.ndots = 0;
        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| DnsError::Resolver(e.to_string()))?;
        Ok(Some(Forwarder { resolver }))
    }

    /// Resolves the request's question upstream (or from the cache).
    pub async fn resolve(&self, request: &Message) -> Upstream {
        let Some(query) = request.queries.first() else {
            return Upstream::Failed;
        };
        let mut name = query.name().clone();
        name.set_fqdn(true);
        let started = Instant::now();
        let result = self.resolver.lookup(name.clone(), query.query_type()).await;
        metrics::histogram!("dv_dns_forward_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(lookup) => {
                let left = lookup
                    .valid_until()
                    .saturating_duration_since(Instant::now())
                    .as_secs();
                let left = u32::try_from(left).unwrap_or(u32::MAX);
                let records: Vec<Record> = (lookup.answers().iter())
                    .map(|r| {
                        let mut r = r.clone();
                        r.ttl = r.ttl.min(left);
                        r
                    })
                    .collect();
                metrics::counter!("dv_dns_forwarded_total", "result" => "answer").increment(1);
                Upstream::Answer(records)
            }
            Err(NetError::Dns(NetDnsError::NoRecordsFound(no))) => {
                metrics::counter!("dv_dns_forwarded_total", "result" => "negative").increment(1);
                let soa = no.soa.as_deref().map(|s| Box::new(soa_record(s)));
                let code = match no.response_code {
                    ResponseCode::NXDomain => ResponseCode::NXDomain,
                    ResponseCode::NoError => ResponseCode::NoError,
                    // REFUSED, SERVFAIL and friends from upstream.
                    _ => ResponseCode::ServFail,
                };
                Upstream::Negative(code, soa)
            }
            Err(e) => {
                metrics::counter!("dv_dns_forwarded_total", "result" => "failed").increment(1);
                tracing::warn!(name = %name, error = %e, "forwarding failed");
                Upstream::Failed
            }
        }
    }
}
