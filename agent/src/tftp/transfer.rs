//! One read transfer: option negotiation, then DATA blocks sent a window at a
//! time (RFC 7440; a window of 1 is RFC 1350's lock-step), each window
//! retransmitted whole on timeout, a bounded number of times.
//!
//! The socket is the transfer's own (its port is the server's TID) and is
//! connected to the client, so the kernel drops datagrams from any other
//! address or port. A duplicate ACK never triggers a resend (that would be
//! the Sorcerer's Apprentice bug); only a timeout does.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Read-ahead for file sources.
pub const FILE_BUFFER: usize = 256 * 1024;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::packet::{self, DEFAULT_BLKSIZE, ErrorCode, Packet, Request};

/// What the server allows clients to negotiate.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest block size granted (a client asking for more gets this).
    pub max_blksize: u16,
    /// Largest window granted.
    pub max_windowsize: u16,
    /// Retransmission timeout when the client sets none.
    pub timeout: Duration,
    /// Retransmissions of one window before the transfer is abandoned.
    pub retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blksize: packet::MAX_BLKSIZE,
            max_windowsize: 64,
            timeout: Duration::from_secs(2),
            retries: 5,
        }
    }
}

/// Where the bytes come from.
#[derive(Debug)]
pub enum Source {
    /// A file in the firmware root. Buffered in large chunks: each
    /// `tokio::fs` read is a trip to the blocking pool, which per 512-byte
    /// block would halve throughput.
    File(tokio::io::BufReader<tokio::fs::File>),
    /// Bytes in memory (rendered scripts, netascii conversions).
    Memory {
        /// The content.
        bytes: bytes::Bytes,
        /// How much has been read.
        pos: usize,
    },
}

impl Source {
    /// Reads up to `want` bytes (fewer only at the end) onto `out`.
    async fn read_block(&mut self, out: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        match self {
            Source::File(file) => {
                let start = out.len();
                out.resize(start + want, 0);
                let mut got = 0;
                while got < want {
                    match file.read(&mut out[start + got..]).await? {
                        0 => break,
                        n => got += n,
                    }
                }
                out.truncate(start + got);
                Ok(got)
            }
            Source::Memory { bytes, pos } => {
                let end = (*pos + want).min(bytes.len());
                out.extend_from_slice(&bytes[*pos..end]);
                let got = end - *pos;
                *pos = end;
                Ok(got)
            }
        }
    }
}

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every block was acknowledged.
    Done {
        /// File bytes sent (retransmissions not counted).
        bytes: u64,
        /// Windows (or blocks) sent again after a timeout.
        retransmits: u64,
    },
    /// The client sent an ERROR (e.g. code 8 after a tsize probe).
    Aborted {
        /// Its code.
        code: u16,
        /// Its message.
        message: String,
    },
    /// The client stopped answering.
    TimedOut {
        /// Bytes sent until then.
        bytes: u64,
    },
    /// Reading the file or using the socket failed.
    Failed(io::Error),
    /// The agent is shutting down.
    Cancelled,
}

/// What was negotiated for a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// Block size.
    pub blksize: u16,
    /// Window size.
    pub windowsize: u16,
    /// Retransmission timeout.
    pub timeout: Duration,
}

/// Decides the options and builds the OACK (None when the client asked for
/// no option this server answers, so DATA 1 starts at once).
pub fn negotiate(req: &Request, len: u64, limits: &Limits) -> (Negotiated, Option<Vec<u8>>) {
    let o = req.options;
    let mut acked: Vec<(&str, u64)> = Vec::new();
    let blksize = o.blksize.map(|b| b.min(limits.max_blksize));
    if let Some(b) = blksize {
        acked.push(("blksize", u64::from(b)));
    }
    if o.tsize.is_some() {
        acked.push(("tsize", len));
    }
    if let Some(t) = o.timeout {
        acked.push(("timeout", u64::from(t)));
    }
    let windowsize = o.windowsize.map(|w| w.min(limits.max_windowsize));
    if let Some(w) = windowsize {
        acked.push(("windowsize", u64::from(w)));
    }
    let negotiated = Negotiated {
        blksize: blksize.unwrap_or(DEFAULT_BLKSIZE),
        windowsize: windowsize.unwrap_or(1),
        timeout: o
            .timeout
            .map_or(limits.timeout, |t| Duration::from_secs(u64::from(t))),
    };
    let oack = (!acked.is_empty()).then(|| packet::oack(&acked));
    (negotiated, oack)
}

/// Runs the transfer on `socket` (connected to the client).
pub async fn run(
    socket: &UdpSocket,
    negotiated: Negotiated,
    oack: Option<Vec<u8>>,
    mut source: Source,
    limits: &Limits,
    cancel: &CancellationToken,
) -> Outcome {
    let mut t = Transfer {
        socket,
        timeout: negotiated.timeout,
        retries: limits.retries,
        cancel,
        retransmits: 0,
        bytes: 0,
        buf: vec![0u8; 2048],
    };
    if let Some(oack) = oack {
        match t.send_and_wait(&[oack], 0).await {
            Ok(()) => {}
            Err(outcome) => return outcome,
        }
    }
    let blksize = usize::from(negotiated.blksize);
    let mut window: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut next: u64 = 1;
    let mut last_read = false;
    loop {
        while window.len() < usize::from(negotiated.windowsize) && !last_read {
            let mut data = Vec::with_capacity(4 + blksize);
            packet::data_header(&mut data, next as u16);
            let n = match source.read_block(&mut data, blksize).await {
                Ok(n) => n,
                Err(e) => return Outcome::Failed(e),
            };
            last_read = n < blksize;
            if let Err(e) = socket.send(&data).await {
                return Outcome::Failed(e);
            }
            t.bytes += n as u64;
            window.push_back((next, data));
            next += 1;
        }
        if window.is_empty() {
            return Outcome::Done {
                bytes: t.bytes,
                retransmits: t.retransmits,
            };
        }
        match t.wait_ack(&window).await {
            Ok(Some(acked)) => {
                while window.front().is_some_and(|(i, _)| *i <= acked) {
                    window.pop_front();
                }
                t.retries = limits.retries;
            }
            Ok(None) => {
                if let Err(outcome) = t.resend(&window).await {
                    return outcome;
                }
            }
            Err(outcome) => return outcome,
        }
    }
}

struct Transfer<'a> {
    socket: &'a UdpSocket,
    timeout: Duration,
    retries: u32,
    cancel: &'a CancellationToken,
    retransmits: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl Transfer<'_> {
    /// Sends `packets` and waits for ACK `block`, resending on timeout.
    async fn send_and_wait(&mut self, packets: &[Vec<u8>], block: u16) -> Result<(), Outcome> {
        for p in packets {
            self.socket.send(p).await.map_err(Outcome::Failed)?;
        }
        loop {
            match self.next_packet().await? {
                Some(Packet::Ack(n)) if n == block => return Ok(()),
                Some(_) => {}
                None => {
                    self.spend_retry()?;
                    for p in packets {
                        self.socket.send(p).await.map_err(Outcome::Failed)?;
                    }
                }
            }
        }
    }

    /// Waits for an ACK of a block in `window`: `Some(index)` of the block
    /// acknowledged, `None` on timeout. Other packets (duplicate ACKs of
    /// earlier blocks among them) are ignored.
    async fn wait_ack(
        &mut self,
        window: &VecDeque<(u64, Vec<u8>)>,
    ) -> Result<Option<u64>, Outcome> {
        loop {
            match self.next_packet().await? {
                Some(Packet::Ack(n)) => {
                    // Block numbers wrap at 65535; match by the low 16 bits
                    // within the window, which is at most 65535 blocks long.
                    if let Some((i, _)) = window.iter().rev().find(|(i, _)| *i as u16 == n) {
                        return Ok(Some(*i));
                    }
                }
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    async fn resend(&mut self, window: &VecDeque<(u64, Vec<u8>)>) -> Result<(), Outcome> {
        self.spend_retry()?;
        for (_, data) in window {
            self.socket.send(data).await.map_err(Outcome::Failed)?;
        }
        Ok(())
    }

    fn spend_retry(&mut self) -> Result<(), Outcome> {
        if self.retries == 0 {
            let error = packet::error(ErrorCode::Undefined, "timed out waiting for an ACK");
            // Best effort: the client is probably gone.
            let _ = self.socket.try_send(&error);
            return Err(Outcome::TimedOut { bytes: self.bytes });
        }
        self.retries -= 1;
        self.retransmits += 1;
        Ok(())
    }

    /// The next packet from the client; `None` after the timeout. A client
    /// ERROR ends the transfer.
    async fn next_packet(&mut self) -> Result<Option<Packet>, Outcome> {
        let received = tokio::select! {
            () = self.cancel.cancelled() => return Err(Outcome::Cancelled),
            r = tokio::time::timeout(self.timeout, self.socket.recv(&mut self.buf)) => r,
        };
        match received {
            Err(_) => Ok(None),
            // ICMP port unreachable on a connected socket: the client is gone.
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => Err(Outcome::Aborted {
                code: 0,
                message: "client port unreachable".into(),
            }),
            Ok(Err(e)) => Err(Outcome::Failed(e)),
            Ok(Ok(n)) => match packet::parse(&self.buf[..n]) {
                Ok(Packet::Error { code, message }) => Err(Outcome::Aborted { code, message }),
                Ok(p) => Ok(Some(p)),
                Err(_) => Ok(Some(Packet::Oack)),
            },
        }
    }
}

/// Converts text to netascii: LF becomes CR LF, a lone CR becomes CR NUL
/// (RFC 764), so the client's conversion back restores the file.
pub fn to_netascii(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        match b {
            b'\n' => out.extend_from_slice(b"\r\n"),
            b'\r' => out.extend_from_slice(b"\r\0"),
            b => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tftp::packet::{Mode, Options};

    fn req(options: Options) -> Request {
        Request {
            filename: "f".into(),
            mode: Mode::Octet,
            options,
        }
    }

    #[test]
    fn negotiation_grants_within_limits_and_answers_tsize() {
        let limits = Limits {
            max_blksize: 1468,
            max_windowsize: 16,
            ..Limits::default()
        };
        let (n, oack) = negotiate(
            &req(Options {
                blksize: Some(9000),
                tsize: Some(0),
                timeout: Some(3),
                windowsize: Some(64),
            }),
            4242,
            &limits,
        );
        assert_eq!(
            (n.blksize, n.windowsize, n.timeout.as_secs()),
            (1468, 16, 3)
        );
        assert_eq!(
            oack.unwrap(),
            b"\0\x06blksize\x001468\0tsize\x004242\0timeout\x003\0windowsize\x0016\0"
        );
        let (n, oack) = negotiate(&req(Options::default()), 1, &limits);
        assert_eq!((n.blksize, n.windowsize), (512, 1));
        assert!(oack.is_none());
    }

    #[test]
    fn netascii_round_trips_line_ends() {
        assert_eq!(to_netascii(b"a\nb\rc"), b"a\r\nb\r\0c");
    }
}
