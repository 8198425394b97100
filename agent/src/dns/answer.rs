//! The query path without sockets: bytes in, what to send back out.
//!
//! [`handle`] decodes a message and decides: an authoritative answer from the
//! [`Catalog`] (RFC 1034 section 4.3.2), a zone transfer (RFC 5936, and
//! RFC 1995 answered with a full transfer), a referral to the forwarder, an
//! error, or silence. The fuzz target drives exactly this function.
//!
//! Decisions that matter:
//! - fewer than 12 bytes, or a message with QR set, is dropped: there is no
//!   header to answer, and answering responses invites reflection loops;
//! - anything else that does not decode gets FORMERR with the id echoed;
//! - QDCOUNT other than 1 is FORMERR (RFC 9619); an unassigned QCLASS is
//!   FORMERR, CHAOS/HESIOD are REFUSED (we serve only IN);
//! - EDNS version above 0 is BADVERS (RFC 6891 section 6.1.3); the UDP size
//!   we use is the smaller of the client's and 1232 (the DNS flag day 2020
//!   value, no IP fragmentation), at least 512;
//! - an answer too large for UDP is sent with TC set and only the question,
//!   so the client retries over TCP (RFC 7766, RFC 2181 section 9);
//! - CNAMEs are followed across every zone served here, at most
//!   [`MAX_CHAIN`] links (RFC 1034 section 3.6.2); NXDOMAIN and NODATA both
//!   carry the SOA of the zone that holds the last name, with the TTL capped
//!   by its MINIMUM (RFC 2308 sections 3 and 5);
//! - names compare case-insensitively (RFC 4343); the first answer's owner is
//!   spelled as the client asked.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};

use super::catalog::{Catalog, Found, Zone};

/// Longest CNAME chain followed before answering with what we have.
pub const MAX_CHAIN: usize = 8;
/// The EDNS UDP payload size we offer and accept at most.
pub const UDP_PAYLOAD: u16 = 1232;
/// The classic limit without EDNS (RFC 1035 section 4.2.1).
const UDP_CLASSIC: usize = 512;
/// Records per AXFR message; small zones fit in one.
const AXFR_CHUNK: usize = 200;

/// How the query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagram, size-limited.
    Udp,
    /// Stream, up to 65535 bytes per message.
    Tcp,
}

/// Facts about the client the answer depends on.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// Its address.
    pub ip: IpAddr,
    /// How it asked.
    pub transport: Transport,
    /// Whether it may transfer zones.
    pub may_transfer: bool,
    /// Whether names outside our zones may be forwarded.
    pub forwarding: bool,
}

/// What to do with a message.
#[derive(Debug)]
pub enum Outcome {
    /// Send this reply.
    Reply(Vec<u8>, Kind),
    /// Send these messages in order (a zone transfer over TCP).
    Stream(Vec<Vec<u8>>),
    /// Resolve upstream, then [`forwarded`] builds the reply.
    Forward(Box<Message>),
    /// Send nothing.
    Drop(&'static str),
}

/// What kind of reply, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// From our zones.
    Authoritative,
    /// A zone transfer's answer (it depends on who asks: never cached).
    Transfer,
    /// A protocol error (FORMERR, NOTIMP, REFUSED, BADVERS).
    Error,
}

/// Handles one message.
pub fn handle(catalog: &Catalog, bytes: &[u8], client: &Client) -> Outcome {
    if bytes.len() < 12 {
        return Outcome::Drop("shorter than a header");
    }
    if bytes[2] & 0x80 != 0 {
        return Outcome::Drop("a response, not a query");
    }
    let Ok(request) = Message::from_vec(bytes) else {
        return Outcome::Reply(formerr_raw(bytes), Kind::Error);
    };
    if request.metadata.op_code != OpCode::Query {
        return error(&request, ResponseCode::NotImp, client);
    }
    let [query] = request.queries.as_slice() else {
        return error(&request, ResponseCode::FormErr, client);
    };
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return error(&request, ResponseCode::BADVERS, client);
    }
    match query.query_class() {
        DNSClass::IN => {}
        DNSClass::CH | DNSClass::HS | DNSClass::NONE | DNSClass::ANY => {
            return error(&request, ResponseCode::Refused, client);
        }
        DNSClass::OPT(_) | DNSClass::Unknown(_) => {
            return error(&request, ResponseCode::FormErr, client);
        }
    }
    let qtype = query.query_type();
    let name = LowerName::new(query.name());
    match qtype {
        RecordType::AXFR | RecordType::IXFR => return transfer(catalog, &request, &name, client),
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            return error(&request, ResponseCode::FormErr, client);
        }
        _ => {}
    }
    match catalog.zone_for(&name) {
        Some(zone) => {
            let msg = authoritative(catalog, zone, &request, query, client);
            Outcome::Reply(encode(msg, &request, client.transport), Kind::Authoritative)
        }
        None if client.forwarding && request.metadata.recursion_desired => {
            Outcome::Forward(Box::new(request))
        }
        None => error(&request, ResponseCode::Refused, client),
    }
}

/// A response skeleton: id, opcode, RD and question echoed; EDNS answered
/// with ours when the client used it.
fn response(request: &Message, client: &Client) -> Message {
    let mut msg = Message::response(request.metadata.id, request.metadata.op_code);
    msg.metadata.recursion_desired = request.metadata.recursion_desired;
    msg.metadata.recursion_available = client.forwarding;
    msg.metadata.checking_disabled = request.metadata.checking_disabled;
    msg.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        msg.set_edns(edns);
    }
    msg
}

fn error(request: &Message, code: ResponseCode, client: &Client) -> Outcome {
    let mut msg = response(request, client);
    msg.metadata.response_code = code;
    if code == ResponseCode::BADVERS && msg.edns.is_none() {
        // BADVERS lives in the OPT record's extended RCODE; it needs one.
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        msg.set_edns(edns);
    }
    Outcome::Reply(encode(msg, request, client.transport), Kind::Error)
}

/// FORMERR for bytes that did not decode: header only, id, opcode and RD
/// echoed, nothing else trusted.
fn formerr_raw(bytes: &[u8]) -> Vec<u8> {
    let opcode_rd = bytes[2] & 0x79; // opcode bits and RD
    vec![
        bytes[0],
        bytes[1],
        0x80 | opcode_rd,
        0x01,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

/// The negative-answer SOA: TTL is min(SOA TTL, MINIMUM) (RFC 2308 section 3).
fn negative_soa(zone: &Zone) -> Record {
    let mut soa = zone.soa.clone();
    if let RData::SOA(s) = &soa.data {
        soa.ttl = soa.ttl.min(s.minimum);
    }
    soa
}

fn authoritative(
    catalog: &Catalog,
    first: &Zone,
    request: &Message,
    query: &Query,
    client: &Client,
) -> Message {
    let mut msg = response(request, client);
    msg.metadata.authoritative = true;
    let qtype = query.query_type();
    let mut zone = first;
    let mut name = LowerName::new(query.name());
    for link in 0..=MAX_CHAIN {
        match zone.find(&name) {
            Found::Records(records) => {
                let hits: Vec<&Record> = (records.iter())
                    .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                    .collect();
                if !hits.is_empty() {
                    for r in hits {
                        let mut r = r.clone();
                        if link == 0 {
                            r.name = query.name().clone();
                        }
                        msg.add_answer(r);
                    }
                    if qtype == RecordType::NS {
                        glue(catalog, &mut msg);
                    }
                    return msg;
                }
                let cname = records.iter().find_map(|r| match &r.data {
                    RData::CNAME(c) => Some((r, c.0.clone())),
                    _ => None,
                });
                let Some((record, target)) = cname else {
                    msg.add_authority(negative_soa(zone));
                    return msg;
                };
                let mut record = record.clone();
                if link == 0 {
                    record.name = query.name().clone();
                }
                msg.add_answer(record);
                let target = LowerName::new(&target);
                match catalog.zone_for(&target) {
                    Some(next) => {
                        zone = next;
                        name = target;
                    }
                    // Outside our zones: the client's resolver follows it.
                    None => return msg,
                }
            }
            Found::EmptyNonTerminal => {
                msg.add_authority(negative_soa(zone));
                return msg;
            }
            Found::NxDomain => {
                msg.metadata.response_code = ResponseCode::NXDomain;
                msg.add_authority(negative_soa(zone));
                return msg;
            }
        }
    }
    // Longer than MAX_CHAIN: config validation makes this impossible, but a
    // loop must still end; the client gets the chain so far.
    tracing::warn!(name = %query.name(), "CNAME chain longer than {MAX_CHAIN}; answer cut");
    msg
}

/// Addresses of NS targets we hold, in the additional section.
fn glue(catalog: &Catalog, msg: &mut Message) {
    let targets: Vec<LowerName> = (msg.answers.iter())
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(LowerName::new(&ns.0)),
            _ => None,
        })
        .collect();
    for t in targets {
        if let Some(zone) = catalog.zone_for(&t)
            && let Found::Records(rs) = zone.find(&t)
        {
            let addrs = rs
                .iter()
                .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA));
            msg.add_additionals(addrs.cloned());
        }
    }
}

/// AXFR (RFC 5936) and IXFR (RFC 1995, answered with the whole zone, which
/// section 4 allows; an up-to-date client gets just the SOA).
fn transfer(catalog: &Catalog, request: &Message, name: &LowerName, client: &Client) -> Outcome {
    let qtype = request.queries.first().map(Query::query_type);
    if !client.may_transfer {
        tracing::info!(client = %client.ip, zone = %name, "zone transfer refused");
        metrics::counter!("dv_dns_transfers_total", "result" => "refused").increment(1);
        return error(request, ResponseCode::Refused, client);
    }
    let Some(zone) = catalog.zone_at(name) else {
        return error(request, ResponseCode::NotAuth, client);
    };
    let mut head = response(request, client);
    head.metadata.authoritative = true;
    let client_serial = request.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    });
    let up_to_date = qtype == Some(RecordType::IXFR)
        && client_serial.is_some_and(|c| !serial_lt(c, catalog.serial));
    if client.transport == Transport::Udp || up_to_date {
        if qtype == Some(RecordType::AXFR) && client.transport == Transport::Udp {
            // RFC 5936 section 4.2: AXFR is a TCP-only exchange.
            return error(request, ResponseCode::FormErr, client);
        }
        // IXFR over UDP (RFC 1995 section 2): the SOA alone tells the client
        // whether to come back over TCP.
        head.add_answer(zone.soa.clone());
        return Outcome::Reply(encode(head, request, client.transport), Kind::Transfer);
    }
    metrics::counter!("dv_dns_transfers_total", "result" => "sent").increment(1);
    tracing::info!(client = %client.ip, zone = %name, serial = catalog.serial, records = zone.all.len(), "zone transfer");
    let mut records: Vec<Record> = zone.all.clone();
    records.push(zone.soa.clone());
    let mut out = Vec::new();
    for (i, chunk) in records.chunks(AXFR_CHUNK).enumerate() {
        let mut msg = head.clone();
        if i > 0 {
            // RFC 5936 section 2.2: later messages may omit the question.
            msg.queries.clear();
        }
        msg.add_answers(chunk.iter().cloned());
        out.push(encode(msg, request, Transport::Tcp));
    }
    Outcome::Stream(out)
}

/// RFC 1982 serial comparison: is `a` before `b`?
pub fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < (1 << 31)
}

/// The largest reply this client accepts over `transport`.
fn limit(request: &Message, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match &request.edns {
            Some(e) => usize::from(e.max_payload().clamp(512, UDP_PAYLOAD)),
            None => UDP_CLASSIC,
        },
    }
}

/// Encodes `msg`; if it does not fit, the truncated form (RFC 2181 section
/// 9: TC set, no partial RRsets). An encoding failure becomes SERVFAIL.
pub fn encode(msg: Message, request: &Message, transport: Transport) -> Vec<u8> {
    let max = limit(request, transport);
    match msg.to_vec() {
        Ok(bytes) if bytes.len() <= max => bytes,
        Ok(_) => {
            metrics::counter!("dv_dns_truncated_total").increment(1);
            msg.truncate()
                .to_vec()
                .unwrap_or_else(|_| servfail(request))
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a DNS response");
            servfail(request)
        }
    }
}

fn servfail(request: &Message) -> Vec<u8> {
    let mut header = [0u8; 12];
    header[..2].copy_from_slice(&request.metadata.id.to_be_bytes());
    header[2] = 0x80
        | (u8::from(request.metadata.op_code) << 3)
        | u8::from(request.metadata.recursion_desired);
    header[3] = 0x02;
    header.to_vec()
}

/// What the forwarder found.
#[derive(Debug)]
pub enum Upstream {
    /// Records answering the question (with any CNAMEs on the way).
    Answer(Vec<Record>),
    /// NXDOMAIN or NODATA, with the upstream's SOA when it sent one.
    Negative(ResponseCode, Option<Box<Record>>),
    /// No usable answer (timeout, refused, no upstream).
    Failed,
}

/// The reply to a forwarded query.
pub fn forwarded(request: &Message, upstream: Upstream, client: &Client) -> Vec<u8> {
    let mut msg = response(request, client);
    match upstream {
        Upstream::Answer(records) => {
            msg.add_answers(records);
        }
        Upstream::Negative(code, soa) => {
            msg.metadata.response_code = code;
            msg.add_authorities(soa.map(|s| *s));
        }
        Upstream::Failed => msg.metadata.response_code = ResponseCode::ServFail,
    }
    encode(msg, request, client.transport)
}

/// A generic SOA record from a typed one (the resolver hands those back).
pub fn soa_record(r: &Record<SOA>) -> Record {
    Record::from_rdata(r.name.clone(), r.ttl, RData::SOA(r.data.clone()))
}

/// Whether a decoded message is a query we would answer (used by tests).
pub fn is_query(msg: &Message) -> bool {
    msg.metadata.message_type == MessageType::Query
}
