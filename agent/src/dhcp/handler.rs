//! The DHCP protocol without sockets: one checked request and the lease
//! index in, an [`Outcome`] out. RFC 2131 §4.3 is the reference for every
//! branch; the section is named where it decides something.
//!
//! The handler changes only the in-memory index. A change that must be
//! durable before the client hears of it comes back as
//! [`Outcome::Commit`]: the server writes it, then sends the reply, and on a
//! failed write puts the index back with [`super::leases::LeaseIndex::restore`].
//!
//! The agent is the single DHCP authority of its segments (it refuses to
//! serve next to another server, see [`super::probe`]), so it answers like an
//! authoritative server: a client asking for an address it may have gets an
//! ACK even if the agent has no record of it, and a NAK when it may not.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use dhcproto::v4::{self, MessageType};
use dv_protocol::{LeaseId, LeaseState};
use time::OffsetDateTime;

use super::boot::{self, Boot, BootOptions};
use super::classify::{ClientKey, Request};
use super::leases::{Entry, LeaseIndex};
use super::options::{self, Reply};
use super::reservations::{Reservations, SubnetReservations};
use crate::config::{self, Reservation, Subnet};

/// How long an offer holds its address for the client's REQUEST.
pub const OFFER_HOLD: Duration = Duration::from_secs(30);

/// What to do with a request.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing to send; `reason` goes to the log.
    Drop {
        /// Why.
        reason: &'static str,
    },
    /// Send `reply` now (OFFER, NAK, INFORM's ACK): nothing durable changed.
    Reply {
        /// The reply.
        reply: Box<v4::Message>,
        /// Why, for NAKs.
        reason: &'static str,
    },
    /// Commit `change`, then send `reply` if any (ACK); RELEASE and DECLINE
    /// have none.
    Commit {
        /// The lease change.
        change: Box<Change>,
        /// Sent only after the commit.
        reply: Option<Box<v4::Message>>,
    },
}

/// A lease change to make durable.
#[derive(Debug, Clone)]
pub struct Change {
    /// The entry as it is now in the index.
    pub entry: Entry,
    /// What it replaced, to restore if the commit fails.
    pub previous: Option<Entry>,
}

/// Where a packet came in and how to find our own address.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The interface it arrived on.
    pub interface: &'a str,
}

/// Our source address toward a destination (the kernel's route choice);
/// the server identifier a client or relay can reach us at.
pub trait LocalAddr {
    /// Our address toward `target`, or `None` when there is no route.
    fn local_addr(&self, interface: &str, target: Ipv4Addr) -> Option<Ipv4Addr>;
}

impl<F: Fn(&str, Ipv4Addr) -> Option<Ipv4Addr>> LocalAddr for F {
    fn local_addr(&self, interface: &str, target: Ipv4Addr) -> Option<Ipv4Addr> {
        self(interface, target)
    }
}

/// The protocol state that does not change per packet: subnets,
/// reservations and boot options; plus the live IPAM reservations, read
/// once per packet from their in-memory index.
#[derive(Debug, Clone)]
pub struct Handler {
    subnets: Vec<Subnet>,
    reserved: HashSet<Ipv4Addr>,
    by_key: HashMap<config::ClientKey, Reservation>,
    boot: BootOptions,
    ipam: Option<Reservations>,
}

fn drop(reason: &'static str) -> Outcome {
    Outcome::Drop { reason }
}

impl Handler {
    /// A handler for `subnets`.
    pub fn new(subnets: Vec<Subnet>, boot: BootOptions) -> Handler {
        let mut reserved = HashSet::new();
        let mut by_key = HashMap::new();
        for s in &subnets {
            for r in &s.reservations {
                reserved.insert(r.ip);
                by_key.insert(r.client.clone(), r.clone());
            }
        }
        Handler {
            subnets,
            reserved,
            by_key,
            boot,
            ipam: None,
        }
    }

    /// Also serves IPAM's reservations (after agent.toml's, which win).
    #[must_use]
    pub fn with_ipam(mut self, ipam: Reservations) -> Handler {
        self.ipam = Some(ipam);
        self
    }

    /// The subnets served.
    pub fn subnets(&self) -> &[Subnet] {
        &self.subnets
    }

    /// The subnet a request belongs to (RFC 2131 §4.3.1): the one holding
    /// giaddr for a relayed request, else one attached to the arrival
    /// interface, preferring the one holding the client's address.
    pub fn subnet_for(&self, req: &Request, interface: &str) -> Option<&Subnet> {
        if let Some(g) = req.giaddr() {
            return self.subnets.iter().find(|s| s.prefix.contains(&g));
        }
        let mut direct = self
            .subnets
            .iter()
            .filter(|s| s.interface.as_deref() == Some(interface));
        let hint = req.ciaddr().or(req.requested_ip);
        let first = direct.clone().next();
        hint.and_then(|ip| direct.find(|s| s.prefix.contains(&ip)))
            .or(first)
    }

    /// The agent.toml reservation for this client, by client id first, then
    /// MAC.
    pub fn reservation(&self, req: &Request) -> Option<&Reservation> {
        req.client_id
            .as_ref()
            .and_then(|id| self.by_key.get(&config::ClientKey::ClientId(id.clone())))
            .or_else(|| self.by_key.get(&config::ClientKey::Mac(req.mac)))
    }

    /// Our server identifier for `subnet`: our address toward the relay, or
    /// toward a host of a directly attached subnet.
    fn server_id(
        &self,
        req: &Request,
        subnet: &Subnet,
        arrival: Arrival<'_>,
        local: &dyn LocalAddr,
    ) -> Option<Ipv4Addr> {
        let target = match req.giaddr() {
            Some(g) => g,
            None => Ipv4Addr::from(u32::from(subnet.prefix.broadcast()).saturating_sub(1)),
        };
        local.local_addr(arrival.interface, target)
    }

    /// Handles one request at `now`.
    pub fn handle(
        &self,
        index: &mut LeaseIndex,
        req: &Request,
        arrival: Arrival<'_>,
        local: &dyn LocalAddr,
        now: OffsetDateTime,
    ) -> Outcome {
        let Some(subnet) = self.subnet_for(req, arrival.interface) else {
            return drop("no subnet for this interface or relay address");
        };
        let Some(server_id) = self.server_id(req, subnet, arrival, local) else {
            return drop("no local address toward the client's subnet or relay");
        };
        // One snapshot per packet: a refresh swapping the index meanwhile
        // does not change the answer halfway.
        let ipam = self.ipam.as_ref().map(Reservations::current);
        let ctx = Ctx {
            h: self,
            req,
            subnet,
            server_id,
            now,
            key: req.key(),
            ipam: ipam.as_deref().and_then(|i| i.subnet(subnet.prefix)),
        };
        match req.kind {
            MessageType::Discover => ctx.discover(index),
            MessageType::Request => ctx.request(index),
            MessageType::Decline => ctx.decline(index),
            MessageType::Release => ctx.release(index),
            MessageType::Inform => ctx.inform(),
            _ => drop("message type a server does not answer"),
        }
    }
}

/// One request's working set.
struct Ctx<'a> {
    h: &'a Handler,
    req: &'a Request,
    subnet: &'a Subnet,
    server_id: Ipv4Addr,
    now: OffsetDateTime,
    key: ClientKey,
    /// IPAM's reservations in this subnet.
    ipam: Option<&'a SubnetReservations>,
}

impl Ctx<'_> {
    fn in_pool(&self, ip: Ipv4Addr) -> bool {
        self.subnet.pools.iter().any(|p| p.contains(ip))
    }

    /// The client's reservation in this subnet: agent.toml's first (it wins
    /// on conflict), else IPAM's by MAC.
    fn reservation(&self) -> Option<&Reservation> {
        self.h
            .reservation(self.req)
            .filter(|r| self.subnet.prefix.contains(&r.ip))
            .or_else(|| self.ipam.and_then(|i| i.get(self.req.mac)))
    }

    /// Whether `ip` is reserved for some client (so never a pool address).
    fn reserved(&self, ip: Ipv4Addr) -> bool {
        self.h.reserved.contains(&ip) || self.ipam.is_some_and(|i| i.holds(ip))
    }

    fn boot(&self) -> Boot {
        if !self.subnet.pxe {
            return Boot::None {
                reason: "PXE is off for this subnet",
            };
        }
        boot::decide(
            &self.h.boot,
            self.req.firmware,
            self.req.mac,
            self.h.reservation(self.req).is_some(),
        )
    }

    fn reply(&self, kind: MessageType, yiaddr: Ipv4Addr, with_lease: bool) -> v4::Message {
        let boot = self.boot();
        let hostname = self.reservation().and_then(|r| r.hostname.as_deref());
        options::build(
            self.req,
            &Reply {
                kind,
                yiaddr,
                server_id: self.server_id,
                subnet: Some(self.subnet),
                with_lease,
                hostname,
                boot: &boot,
                message: None,
            },
        )
    }

    fn nak(&self, reason: &'static str) -> Outcome {
        let boot = Boot::None { reason };
        let mut msg = options::build(
            self.req,
            &Reply {
                kind: MessageType::Nak,
                yiaddr: Ipv4Addr::UNSPECIFIED,
                server_id: self.server_id,
                subnet: None,
                with_lease: false,
                hostname: None,
                boot: &boot,
                message: Some(reason),
            },
        );
        // RFC 2131 §4.3.2: a NAK through a relay asks it to broadcast.
        if self.req.giaddr().is_some() {
            msg.set_flags(msg.flags().set_broadcast());
        }
        Outcome::Reply {
            reply: Box::new(msg),
            reason,
        }
    }

    /// RFC 2131 §4.3.1: reservation, else the client's current or previous
    /// address, else the requested one, else a free one.
    fn discover(&self, index: &mut LeaseIndex) -> Outcome {
        let ip = if let Some(r) = self.reservation() {
            if !index.available_to(r.ip, &self.key, self.now) {
                return drop("reserved address is held by another client");
            }
            r.ip
        } else {
            let usable = |ip: Ipv4Addr| {
                self.in_pool(ip)
                    && !self.reserved(ip)
                    && index.available_to(ip, &self.key, self.now)
            };
            let current = index
                .of_client(&self.key)
                .map(|e| e.ip)
                .filter(|ip| usable(*ip));
            let requested = self.req.requested_ip.filter(|ip| usable(*ip));
            match current.or(requested).or_else(|| {
                index.allocate(
                    &self.subnet.pools,
                    |ip| self.reserved(ip),
                    &self.key,
                    self.now,
                )
            }) {
                Some(ip) => ip,
                None => return drop("no free address in the subnet's pools"),
            }
        };
        let keep_binding = index.get(ip).is_some_and(|e| {
            e.key == self.key && e.state == LeaseState::Bound && e.holds(self.now)
        });
        if !keep_binding {
            let hold = time::Duration::try_from(OFFER_HOLD).unwrap_or(time::Duration::SECOND);
            let entry = self.entry(index, ip, LeaseState::Offered, self.now + hold);
            index.insert(entry);
        }
        Outcome::Reply {
            reply: Box::new(self.reply(MessageType::Offer, ip, true)),
            reason: "offer",
        }
    }

    /// A new entry for `ip` held by this client; keeps the lease id when the
    /// client already held this address, and the relay information when a
    /// renewal (sent straight to us) carries none.
    fn entry(
        &self,
        index: &LeaseIndex,
        ip: Ipv4Addr,
        state: LeaseState,
        expires: OffsetDateTime,
    ) -> Entry {
        let prev = index.get(ip).filter(|e| e.key == self.key);
        Entry {
            id: prev.map_or_else(LeaseId::new, |e| e.id),
            ip,
            prefix: self.subnet.prefix,
            key: self.key.clone(),
            mac: self.req.mac,
            client_id: self.req.client_id.clone(),
            hostname: self
                .reservation()
                .and_then(|r| r.hostname.clone())
                .or_else(|| self.req.hostname.clone()),
            state,
            starts: self.now,
            expires,
            relay_info: self
                .req
                .relay_info
                .clone()
                .or_else(|| prev.and_then(|e| e.relay_info.clone())),
        }
    }

    /// RFC 2131 §4.3.2: SELECTING (server id), INIT-REBOOT (requested
    /// address, no ciaddr), RENEWING/REBINDING (ciaddr).
    fn request(&self, index: &mut LeaseIndex) -> Outcome {
        let ip = match (self.req.server_id, self.req.requested_ip, self.req.ciaddr()) {
            (Some(sid), requested, _) => {
                if sid != self.server_id {
                    if let Some(ip) = requested {
                        index.withdraw_offer(ip, &self.key);
                    }
                    return drop("client selected another server");
                }
                match requested.or(self.req.ciaddr()) {
                    Some(ip) => ip,
                    None => return drop("SELECTING request without a requested address"),
                }
            }
            (None, Some(ip), None) => ip,
            (None, _, Some(ip)) => ip,
            (None, None, None) => return drop("request names no address"),
        };
        if !self.subnet.prefix.contains(&ip) {
            return self.nak("requested address is not on the client's network");
        }
        match self.reservation() {
            Some(r) if r.ip != ip => return self.nak("client has a different reserved address"),
            Some(_) => {}
            None if self.reserved(ip) => {
                return self.nak("address is reserved for another client");
            }
            None if !self.in_pool(ip) => return self.nak("address is not in a pool"),
            None => {}
        }
        if !index.available_to(ip, &self.key, self.now) {
            return self.nak("address is leased to another client");
        }
        let lease =
            time::Duration::try_from(self.subnet.lease_time).unwrap_or(time::Duration::HOUR);
        let entry = self.entry(index, ip, LeaseState::Bound, self.now + lease);
        let previous = index.insert(entry.clone());
        Outcome::Commit {
            change: Box::new(Change { entry, previous }),
            reply: Some(Box::new(self.reply(MessageType::Ack, ip, true))),
        }
    }

    /// RFC 2131 §4.3.3: the address is in use elsewhere; quarantine it for
    /// a lease time so nobody gets it meanwhile.
    fn decline(&self, index: &mut LeaseIndex) -> Outcome {
        let Some(ip) = self.req.requested_ip else {
            return drop("DECLINE without a requested address");
        };
        if self.req.server_id.is_some_and(|s| s != self.server_id) {
            return drop("DECLINE addressed to another server");
        }
        let held = index.get(ip).is_some_and(|e| {
            e.key == self.key && e.holds(self.now) && e.state != LeaseState::Declined
        });
        if !held {
            return drop("DECLINE for an address not held by this client");
        }
        let quarantine =
            time::Duration::try_from(self.subnet.lease_time).unwrap_or(time::Duration::HOUR);
        let entry = self.entry(index, ip, LeaseState::Declined, self.now + quarantine);
        let previous = index.insert(entry.clone());
        Outcome::Commit {
            change: Box::new(Change { entry, previous }),
            reply: None,
        }
    }

    /// RFC 2131 §4.3.4: the client gives its address back.
    fn release(&self, index: &mut LeaseIndex) -> Outcome {
        let Some(ip) = self.req.ciaddr() else {
            return drop("RELEASE without ciaddr");
        };
        let bound = index
            .get(ip)
            .is_some_and(|e| e.key == self.key && e.state == LeaseState::Bound);
        if !bound {
            return drop("RELEASE for an address not bound to this client");
        }
        let entry = self.entry(index, ip, LeaseState::Released, self.now);
        let previous = index.insert(entry.clone());
        Outcome::Commit {
            change: Box::new(Change { entry, previous }),
            reply: None,
        }
    }

    /// RFC 2131 §4.3.5: configuration only; no address, no lease time.
    fn inform(&self) -> Outcome {
        if self.req.ciaddr().is_none() {
            return drop("INFORM without ciaddr");
        }
        Outcome::Reply {
            reply: Box::new(self.reply(MessageType::Ack, Ipv4Addr::UNSPECIFIED, false)),
            reason: "inform",
        }
    }
}
