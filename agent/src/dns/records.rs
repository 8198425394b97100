//! The live record set: inputs (config, placements, leases, IPAM
//! allocations), the zones built
//! from them and the compiled catalog the server answers from.
//!
//! Every change runs the same steps under one lock, so changes are ordered
//! and serials strictly increase:
//! 1. copy the inputs and apply the change;
//! 2. rebuild the zones; if nothing changed, stop (no new serial);
//! 3. in one store write: the change's own rows, the outbox event, and the
//!    new serial with the digest of the zones it stands for;
//! 4. only after that commit, swap the compiled catalog in (an `Arc` swap,
//!    so queries in flight finish on the old one) and wake the NOTIFY task.
//!
//! A reader therefore never sees a serial that a restart could take back.

use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use dv_protocol::{
    Actor, DnsName, DnsRecord, DnsRecordData, DnsRecordId, Event, EventBody, Message, SiteName,
};
use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::{Mutex, watch};

use super::DnsError;
use super::catalog::Catalog;
use super::serial;
use super::zones::{Inputs, ZoneSet, build};
use crate::config::Config;
use crate::store::{Store, StoreError, dns as db, ipam, outbox};

/// A handle to the live records; cheap to clone. The DHCP server calls
/// [`Records::lease_bound`] and [`Records::lease_gone`] after it commits a
/// lease; the API calls [`Records::move_service`].
#[derive(Clone, Debug)]
pub struct Records {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    site: SiteName,
    inputs: Mutex<Inputs>,
    catalog: RwLock<Arc<Catalog>>,
    changed: watch::Sender<u32>,
}

/// A service as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ServiceView {
    /// The service label.
    pub name: String,
    /// Its fully qualified name.
    pub fqdn: String,
    /// The host or identity label it points at now.
    pub host: String,
    /// The CNAME target.
    pub target: String,
    /// The host in agent.toml.
    pub configured_host: String,
}

/// What a move did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Moved {
    /// The service after the move.
    pub service: ServiceView,
    /// The serial the zones carry now.
    pub serial: u32,
    /// False when the service already pointed there (nothing changed).
    pub changed: bool,
}

impl Records {
    /// Builds the records from `config` and the store's placements; issues a
    /// new serial if the records differ from those the stored serial was
    /// issued for.
    pub async fn load(config: &Config, store: &Store) -> Result<Records, DnsError> {
        let mut inputs = Inputs::from_config(config);
        let (placements, state) = store
            .read(|c| Ok((db::placements(c)?, db::zone_state(c)?)))
            .await?;
        // Bound leases that carry a host name are records too (RFC 2131
        // option 12 or the reservation's name); read them with the rest so
        // a restart keeps its serial when nothing changed.
        let bound = store.read(crate::dhcp::store::bound_hostnames).await?;
        for (hostname, ip) in bound {
            if let Some(label) = lease_label(&hostname) {
                inputs.leases.insert(ip, label);
            }
        }
        // IPAM: named allocations publish A + PTR, and every IPv4 network
        // prefix gets its reverse zone (issue 8).
        let (named, networks) = store
            .read(|c| Ok((ipam::named_v4(c)?, ipam::networks(c)?)))
            .await?;
        for (hostname, ip) in named {
            inputs.allocations.insert(ip, hostname);
        }
        for n in networks {
            if let ipnet::IpNet::V4(v4) = n.spec.prefix {
                inputs.ipam_prefixes.push(v4);
            }
        }
        for p in placements {
            if inputs.service_target(&p.service).is_none() {
                tracing::warn!(service = %p.service, host = %p.host, "stored placement of a service no longer in agent.toml; ignored");
            } else if let Err(why) = inputs.valid_target(&p.host) {
                tracing::warn!(service = %p.service, host = %p.host, %why, "stored placement no longer valid; agent.toml's target used");
            } else {
                inputs.placements.insert(p.service, p.host);
            }
        }
        let probe = build(&inputs, 0);
        let hash = probe.content_hash();
        let serial = match state {
            Some((serial, stored)) if stored == hash => serial,
            Some((previous, _)) => serial::next(previous, serial::now_unix()),
            None => serial::next(0, serial::now_unix()),
        };
        if state != Some((serial, hash)) {
            store
                .write(move |c| db::set_zone_state(c, serial, hash))
                .await?;
            tracing::info!(serial, "dns zones changed since the last run; new serial");
        }
        let zones = Arc::new(build(&inputs, serial));
        let catalog = Arc::new(Catalog::compile(zones));
        metrics::gauge!("dv_dns_zone_serial").set(f64::from(serial));
        let (changed, _) = watch::channel(serial);
        Ok(Records {
            inner: Arc::new(Shared {
                store: store.clone(),
                site: config.site.name.clone(),
                inputs: Mutex::new(inputs),
                catalog: RwLock::new(catalog),
                changed,
            }),
        })
    }

    /// The catalog to answer from now.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.inner.catalog.read() {
            Ok(c) => c.clone(),
            // A writer panicked mid-swap; the Arc inside is still whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The zones now.
    pub fn zones(&self) -> Arc<ZoneSet> {
        self.catalog().source.clone()
    }

    /// Wakes on every new serial.
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.inner.changed.subscribe()
    }

    /// Every service and where it points.
    pub async fn services(&self) -> Vec<ServiceView> {
        let inputs = self.inner.inputs.lock().await;
        (inputs.services.iter())
            .filter_map(|(name, _)| view(&inputs, name))
            .collect()
    }

    /// Points `service` at `host` (a host or interface identity): one CNAME
    /// changes, the serial moves, a `DnsRecordUpserted` event is recorded in
    /// the same transaction, secondaries are notified.
    pub async fn move_service(
        &self,
        service: &str,
        host: &str,
        actor: Actor,
    ) -> Result<Moved, DnsError> {
        let service = service.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let mut inputs = self.inner.inputs.lock().await;
        if inputs.service_target(&service).is_none() {
            return Err(DnsError::UnknownService { service });
        }
        inputs
            .valid_target(&host)
            .map_err(|reason| DnsError::BadTarget {
                service: service.clone(),
                host: host.clone(),
                reason,
            })?;
        let mut next = inputs.clone();
        next.placements.insert(service.clone(), host.clone());
        let site = self.inner.site.clone();
        let fqdn = format!("{service}.{}", next.mgmt_zone);
        let target = format!("{host}.{}", next.mgmt_zone);
        let ttl = next.ttl;
        let (svc, h) = (service.clone(), host.clone());
        let serial = self
            .commit(&mut inputs, next, move |c| {
                let id = db::place(c, &svc, &h, &DnsRecordId::new().to_string())?;
                let record_id = id.parse::<DnsRecordId>().map_err(|e| StoreError::Corrupt {
                    what: "dns_placement",
                    key: svc.clone(),
                    detail: e.to_string(),
                })?;
                let name = DnsName::new(&fqdn).map_err(|e| bad_name(&fqdn, &e))?;
                let target = DnsName::new(&target).map_err(|e| bad_name(&target, &e))?;
                let message = Message::from_event(
                    site.clone(),
                    actor,
                    Event::new(EventBody::DnsRecordUpserted {
                        record: DnsRecord {
                            id: record_id,
                            site,
                            data: DnsRecordData::Service { name, target, ttl },
                        },
                    }),
                );
                outbox::record(c, &message)?;
                Ok(())
            })
            .await?;
        let service_view = view(&inputs, &service).ok_or(DnsError::UnknownService {
            service: service.clone(),
        })?;
        tracing::info!(service = %service, host = %host, serial = ?serial, "service moved");
        Ok(Moved {
            service: service_view,
            serial: serial.unwrap_or_else(|| self.catalog().serial),
            changed: serial.is_some(),
        })
    }

    /// A DHCP lease for `hostname` was committed at `ip`: publish
    /// `<hostname>.<site zone>` A and its PTR. A hostname that is not a valid
    /// label (clients choose it) is ignored.
    pub async fn lease_bound(&self, hostname: &str, ip: Ipv4Addr) -> Result<(), DnsError> {
        let Some(label) = lease_label(hostname) else {
            tracing::debug!(hostname, %ip, "lease hostname is not a DNS label; no record");
            return Ok(());
        };
        let mut inputs = self.inner.inputs.lock().await;
        let mut next = inputs.clone();
        if next.leases.get(&ip) == Some(&label) {
            return Ok(());
        }
        next.leases.insert(ip, label);
        self.commit(&mut inputs, next, |_| Ok(())).await.map(|_| ())
    }

    /// The lease at `ip` ended (released, expired, declined): its records go.
    pub async fn lease_gone(&self, ip: Ipv4Addr) -> Result<(), DnsError> {
        let mut inputs = self.inner.inputs.lock().await;
        let mut next = inputs.clone();
        if next.leases.remove(&ip).is_none() {
            return Ok(());
        }
        self.commit(&mut inputs, next, |_| Ok(())).await.map(|_| ())
    }

    /// Runs `f` in one store transaction with a copy of the inputs it may
    /// change (IPAM: an allocation and its A/PTR records). The zones are
    /// rebuilt from the changed copy inside the same transaction and the new
    /// serial is stored with it, so the rows `f` writes, its events and the
    /// records commit together; if `f` (or anything after it) fails, nothing
    /// is stored and the served zones stay as they were.
    pub async fn change<T, F>(&self, f: F) -> Result<T, DnsError>
    where
        F: FnOnce(&Connection, &mut Inputs) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let mut inputs = self.inner.inputs.lock().await;
        let current = self.catalog();
        let mut next = inputs.clone();
        let base = current.serial;
        let source = current.source.clone();
        let (value, next, serial) = self
            .inner
            .store
            .write(move |c| {
                let value = f(c, &mut next)?;
                let probe = build(&next, base);
                if probe == *source {
                    return Ok((value, next, None));
                }
                let serial = serial::next(base, serial::now_unix());
                db::set_zone_state(c, serial, probe.content_hash())?;
                Ok((value, next, Some(serial)))
            })
            .await?;
        if let Some(serial) = serial {
            self.install(&next, serial);
        }
        *inputs = next;
        Ok(value)
    }

    /// Swaps in the catalog of `next` at `serial` (already committed).
    fn install(&self, next: &Inputs, serial: u32) {
        let zones = Arc::new(build(next, serial));
        let catalog = Arc::new(Catalog::compile(zones));
        match self.inner.catalog.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
        metrics::gauge!("dv_dns_zone_serial").set(f64::from(serial));
        metrics::counter!("dv_dns_zone_changes_total").increment(1);
        self.inner.changed.send_replace(serial);
    }

    /// Steps 2-4 of the module doc. Returns the new serial, or `None` when the
    /// zones did not change.
    async fn commit<F>(
        &self,
        inputs: &mut Inputs,
        next: Inputs,
        extra: F,
    ) -> Result<Option<u32>, DnsError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let current = self.catalog();
        let probe = build(&next, current.serial);
        if probe == *current.source {
            *inputs = next;
            return Ok(None);
        }
        let serial = serial::next(current.serial, serial::now_unix());
        let hash = probe.content_hash();
        self.inner
            .store
            .write(move |c| {
                extra(c)?;
                db::set_zone_state(c, serial, hash)
            })
            .await?;
        self.install(&next, serial);
        *inputs = next;
        Ok(Some(serial))
    }
}

fn view(inputs: &Inputs, service: &str) -> Option<ServiceView> {
    let configured = inputs.services.iter().find(|(s, _)| s == service)?;
    let host = inputs.service_target(service)?.to_owned();
    Some(ServiceView {
        name: service.to_owned(),
        fqdn: format!("{service}.{}", inputs.mgmt_zone),
        target: format!("{host}.{}", inputs.mgmt_zone),
        host,
        configured_host: configured.1.clone(),
    })
}

fn bad_name(name: &str, e: &dv_protocol::DnsNameError) -> StoreError {
    StoreError::Corrupt {
        what: "dns name",
        key: name.to_owned(),
        detail: e.to_string(),
    }
}

/// The DNS label a lease's host name publishes under: its first label, lower
/// case; `None` when clients sent something that is not a valid label.
fn lease_label(hostname: &str) -> Option<String> {
    let lower = hostname.trim_end_matches('.').to_ascii_lowercase();
    let label = lower.split('.').next().unwrap_or_default();
    dv_protocol::validate_token("lease hostname", label)
        .ok()
        .map(|()| label.to_owned())
}
