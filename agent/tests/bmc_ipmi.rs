//! The IPMI (RMCP+) driver against OpenIPMI's ipmi_sim on loopback, with
//! `ipmitool -I lanplus -C 3` reading the state back independently; and
//! against an in-process BMC on a UDP socket, for what ipmi_sim will not
//! do: lie about a boot override, refuse a command, speak cipher suite 17,
//! and send stray datagrams the driver must wait past.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dv_agent::bmc::ipmi::Ipmi;
use dv_agent::bmc::ipmi::commands::{self, device};
use dv_agent::bmc::ipmi::crypto::{CipherSuite, Handshake, SessionKeys, user_key};
use dv_agent::bmc::ipmi::rakp::{
    OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp3, Rakp4,
};
use dv_agent::bmc::ipmi::rmcp::{self, Message, Packet, V2Header, payload};
use dv_agent::bmc::{Bmc, BmcError, BootTarget, Limits, PowerAction, PowerState};
use dv_tests::ipmi::{GUID, IpmiSim, PASSWORD, USER, free_udp_port, ipmi_bins};

fn limits() -> Limits {
    Limits {
        request: Duration::from_secs(3),
        power_settle: Duration::from_secs(10),
        poll: Duration::from_millis(100),
        override_attempts: 3,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn ipmi_powers_a_system_and_sets_one_time_boot_on_ipmi_sim() {
    let test = "ipmi_powers_a_system_and_sets_one_time_boot_on_ipmi_sim";
    let Some(bins) = ipmi_bins(test) else {
        return;
    };
    let sim = IpmiSim::start(&bins);
    let bmc = Ipmi::new(&sim.endpoint, USER, PASSWORD, limits());
    runtime().block_on(async {
        let info = bmc.system_info().await.unwrap();
        assert_eq!(info.uuid.as_deref(), Some(GUID), "{info:?}");
        assert_eq!(info.id, GUID);
        assert_eq!(info.manufacturer.as_deref(), Some("MontaVista (OpenIPMI)"));
        assert!(
            info.model.as_deref().unwrap().contains("0x0f02"),
            "{info:?}"
        );
        assert_eq!(info.power, Some(PowerState::Off));
        assert_eq!(info.boot_targets, ["pxe", "disk"]);
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::Off);

        bmc.boot_once(BootTarget::Pxe).await.unwrap();
        assert_eq!(sim.boot_device(), "Force PXE");

        let t = Instant::now();
        bmc.set_power(PowerAction::On).await.unwrap();
        eprintln!("driver power on (incl. one poll): {:?}", t.elapsed());
        assert_eq!(sim.power(), "on");
        // Already on: nothing sent, not an error.
        let before = sim.events();
        bmc.set_power(PowerAction::On).await.unwrap();
        assert_eq!(sim.events(), before);

        bmc.set_power(PowerAction::ForceRestart).await.unwrap();
        assert_eq!(sim.power(), "on");
        let events = sim.events();
        assert_eq!(
            events.matches("set reset=1").count(),
            1,
            "exactly one reset: {events}"
        );

        bmc.boot_once(BootTarget::Hdd).await.unwrap();
        assert_eq!(sim.boot_device(), "Force Boot from default Hard-Drive");

        bmc.set_power(PowerAction::GracefulShutdown).await.unwrap();
        assert_eq!(sim.power(), "off");
        assert!(sim.events().contains("set shutdown=1"), "{}", sim.events());

        // A restart of a system that is off powers it up.
        bmc.set_power(PowerAction::ForceRestart).await.unwrap();
        assert_eq!(sim.power(), "on");
        assert_eq!(sim.events().matches("set reset=1").count(), 1);

        bmc.set_power(PowerAction::ForceOff).await.unwrap();
        assert_eq!(sim.power(), "off");

        let err = bmc.boot_once(BootTarget::UefiHttp).await.unwrap_err();
        match &err {
            BmcError::Unsupported {
                wanted, allowed, ..
            } => {
                assert!(wanted.contains("UEFI HTTP"), "{wanted}");
                assert!(
                    allowed.contains("PXE") && allowed.contains("disk"),
                    "{allowed}"
                );
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }

        // What one call costs, next to ipmitool doing the same.
        let t = Instant::now();
        for _ in 0..5 {
            bmc.power_state().await.unwrap();
        }
        let driver = t.elapsed() / 5;
        let t = Instant::now();
        for _ in 0..5 {
            sim.power();
        }
        let tool = t.elapsed() / 5;
        eprintln!("power status: driver {driver:?} per call, ipmitool {tool:?} per call");
    });
}

#[test]
fn a_wrong_password_is_an_auth_error_at_once_and_suite_17_is_refused_by_ipmi_sim() {
    let test = "a_wrong_password_is_an_auth_error_at_once_and_suite_17_is_refused_by_ipmi_sim";
    let Some(bins) = ipmi_bins(test) else {
        return;
    };
    let sim = IpmiSim::start(&bins);
    runtime().block_on(async {
        let bmc = Ipmi::new(&sim.endpoint, USER, "wrong", limits());
        let t = Instant::now();
        let err = bmc.power_state().await.unwrap_err();
        let took = t.elapsed();
        assert!(
            matches!(&err, BmcError::Auth { reason, .. } if reason.contains("wrong password")),
            "{err:?}"
        );
        assert!(err.to_string().contains("refused the credentials"), "{err}");
        assert!(took < Duration::from_secs(1), "took {took:?}");

        let bmc = Ipmi::new(&sim.endpoint, "nobody", PASSWORD, limits());
        let err = bmc.power_state().await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Auth { reason, .. } if reason.contains("unauthorized name")),
            "{err:?}"
        );

        // ipmi_sim has no HMAC-SHA256: suite 17 is refused at Open Session,
        // and said so.
        let bmc = Ipmi::new(&sim.endpoint, USER, PASSWORD, limits())
            .with_cipher_suite(CipherSuite::Suite17);
        let err = bmc.power_state().await.unwrap_err();
        assert!(
            matches!(&err, BmcError::Unsupported { wanted, .. } if wanted == "cipher suite 17"),
            "{err:?}"
        );
        eprintln!("suite 17 against ipmi_sim: {err}");
    });
    // ipmitool agrees the password is wrong.
    assert!(
        !sim.ipmitool_as("wrong", &["chassis", "power", "status"])
            .status
            .success()
    );
}

#[test]
fn an_unreachable_bmc_fails_within_the_request_timeout() {
    runtime().block_on(async {
        // Nothing on the port: the kernel answers ICMP port unreachable.
        let port = free_udp_port();
        let bmc = Ipmi::new(&format!("127.0.0.1:{port}"), USER, PASSWORD, limits());
        let t = Instant::now();
        let err = bmc.power_state().await.unwrap_err();
        assert!(matches!(err, BmcError::Unreachable { .. }), "{err:?}");
        assert!(t.elapsed() < limits().request, "{:?}", t.elapsed());

        // Something on the port that never answers: the whole budget, no more.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let fast = Limits {
            request: Duration::from_millis(900),
            ..limits()
        };
        let bmc = Ipmi::new(&addr.to_string(), USER, PASSWORD, fast);
        let t = Instant::now();
        let err = bmc.power_state().await.unwrap_err();
        let took = t.elapsed();
        assert!(matches!(err, BmcError::Unreachable { .. }), "{err:?}");
        let chain = format!("{:?}", std::error::Error::source(&err));
        assert!(chain.contains("3 transmission"), "{chain}");
        assert!(
            took >= Duration::from_millis(850) && took < Duration::from_millis(1500),
            "took {took:?}"
        );
        // It retransmitted: three copies of the pre-session request arrived.
        let mut buf = [0u8; 512];
        let mut copies = 0;
        while let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await
        {
            copies += 1;
        }
        assert_eq!(copies, 3);
    });
}

/// How the in-process BMC misbehaves.
#[derive(Debug, Clone, Copy, Default)]
struct Fake {
    /// Boot flags always read back as this device, whatever was set.
    stuck_device: u8,
    /// Chassis Control answers this completion code.
    chassis_control_cc: u8,
    /// The system starts powered on.
    power_on: bool,
    /// The first Chassis Control is carried out but its answer is lost.
    lose_first_chassis_answer: bool,
}

/// What the fake BMC was sent.
#[derive(Debug, Default)]
struct Seen {
    set_boot: AtomicU32,
    chassis_control: AtomicU32,
    closed: AtomicU32,
    /// (rqSeq, session sequence) of every Chassis Control.
    chassis_control_seqs: Mutex<Vec<(u8, u32)>>,
}

/// A BMC on a UDP socket that does the RMCP+ handshake properly (any
/// suite the driver speaks, user admin/password) and answers the chassis
/// commands per `fake`. Before every session answer it sends a datagram
/// that is not RMCP and a well-formed packet for another session: the
/// driver must wait past both.
async fn fake_bmc(socket: tokio::net::UdpSocket, fake: Fake, seen: Arc<Seen>) {
    let kuid = user_key(PASSWORD.as_bytes()).unwrap();
    let bmc_session_id = 0x5a5a_0001;
    let guid: [u8; 16] = core::array::from_fn(|i| i as u8 * 3);
    let mut suite = CipherSuite::Suite3;
    let mut hs: Option<Handshake> = None;
    let mut keys: Option<SessionKeys> = None;
    let mut out_seq = 1u32;
    let mut power_on = fake.power_on;
    let mut buf = [0u8; 1024];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            return;
        };
        let datagram = &buf[..n];
        let send = |bytes: Vec<u8>, to: SocketAddr| {
            let socket = &socket;
            async move {
                socket.send_to(&bytes, to).await.unwrap();
            }
        };
        match rmcp::decode(datagram).unwrap() {
            Packet::V15(p) => {
                let m = Message::decode(&p.payload).unwrap();
                assert_eq!(m.cmd, commands::GET_CHANNEL_AUTH_CAPS.cmd);
                let reply = reply_to(&m, vec![0, 1, 0x80, 0x00, 0x02, 0, 0, 0, 0]);
                send(rmcp::encode_v15(0, 0, &reply.encode()).unwrap(), from).await;
            }
            Packet::V20(p) if p.payload_type == payload::OPEN_SESSION_REQUEST => {
                let req = OpenSessionRequest::decode(&p.payload).unwrap();
                suite = if req.auth == 0x03 {
                    CipherSuite::Suite17
                } else {
                    CipherSuite::Suite3
                };
                let resp = OpenSessionResponse {
                    tag: req.tag,
                    status: 0,
                    max_privilege: 4,
                    console_session_id: req.console_session_id,
                    bmc_session_id,
                    auth: req.auth,
                    integrity: req.integrity,
                    confidentiality: req.confidentiality,
                };
                hs = Some(Handshake {
                    suite,
                    console_session_id: req.console_session_id,
                    bmc_session_id,
                    console_random: [0; 16],
                    bmc_random: [0x77; 16],
                    bmc_guid: guid,
                    role: 0,
                    username: vec![],
                });
                send(setup(payload::OPEN_SESSION_RESPONSE, &resp.encode()), from).await;
            }
            Packet::V20(p) if p.payload_type == payload::RAKP1 => {
                let r1 = Rakp1::decode(&p.payload).unwrap();
                let h = hs.as_mut().unwrap();
                h.console_random = r1.console_random;
                h.role = r1.role;
                h.username = r1.username;
                let r2 = Rakp2 {
                    tag: r1.tag,
                    status: 0,
                    console_session_id: h.console_session_id,
                    bmc_random: h.bmc_random,
                    bmc_guid: h.bmc_guid,
                    auth_code: h.rakp2_code(&kuid),
                };
                send(setup(payload::RAKP2, &r2.encode()), from).await;
            }
            Packet::V20(p) if p.payload_type == payload::RAKP3 => {
                let r3 = Rakp3::decode(&p.payload).unwrap();
                let h = hs.as_ref().unwrap();
                assert_eq!(r3.auth_code, h.rakp3_code(&kuid), "the console's proof");
                let sik = h.sik(&kuid);
                keys = Some(SessionKeys::derive(suite, &sik));
                let r4 = Rakp4 {
                    tag: r3.tag,
                    status: 0,
                    console_session_id: h.console_session_id,
                    icv: h.rakp4_icv(&sik),
                };
                send(setup(payload::RAKP4, &r4.encode()), from).await;
            }
            Packet::V20(p) => {
                let k = keys.as_ref().unwrap();
                let console = hs.as_ref().unwrap().console_session_id;
                assert_eq!(p.session_id, bmc_session_id);
                assert!(k.verify(&datagram[4..4 + p.signed_len], &p.auth_code));
                let m = Message::decode(&k.decrypt(&p.payload).unwrap()).unwrap();
                let body = match (m.netfn, m.cmd) {
                    (0x06, 0x3b) => vec![0, 4],
                    (0x06, 0x3c) => {
                        seen.closed.fetch_add(1, Ordering::SeqCst);
                        vec![0]
                    }
                    (0x00, 0x01) => vec![0, u8::from(power_on), 0x00, 0x00],
                    (0x00, 0x02) => {
                        let n = seen.chassis_control.fetch_add(1, Ordering::SeqCst);
                        seen.chassis_control_seqs
                            .lock()
                            .unwrap()
                            .push((m.rq_seq, p.seq));
                        if fake.chassis_control_cc == 0 {
                            // 0 down, 1 up, 3 reset (stays on), 5 soft off.
                            power_on = matches!(m.body.first(), Some(1 | 3));
                        }
                        if n == 0 && fake.lose_first_chassis_answer {
                            continue;
                        }
                        vec![fake.chassis_control_cc]
                    }
                    (0x00, 0x08) => {
                        seen.set_boot.fetch_add(1, Ordering::SeqCst);
                        vec![0]
                    }
                    (0x00, 0x09) => vec![0, 1, 5, 0x80, fake.stuck_device << 2, 0, 0, 0],
                    _ => vec![0xc1],
                };
                // Noise first: not RMCP at all, then another session's packet.
                send(b"not rmcp".to_vec(), from).await;
                let other = encode_reply(
                    k,
                    console.wrapping_add(1),
                    out_seq,
                    &reply_to(&m, vec![0xff]),
                );
                send(other, from).await;
                out_seq += 1;
                send(encode_reply(k, console, out_seq, &reply_to(&m, body)), from).await;
                out_seq += 1;
            }
        }
    }
}

fn reply_to(req: &Message, body: Vec<u8>) -> Message {
    Message {
        to_addr: req.from_addr,
        netfn: req.netfn + 1,
        to_lun: req.from_lun,
        from_addr: req.to_addr,
        rq_seq: req.rq_seq,
        from_lun: req.to_lun,
        cmd: req.cmd,
        body,
    }
}

fn setup(kind: u8, body: &[u8]) -> Vec<u8> {
    let header = V2Header {
        payload_type: kind,
        encrypted: false,
        session_id: 0,
        seq: 0,
    };
    rmcp::encode_v2(header, body, None).unwrap()
}

fn encode_reply(keys: &SessionKeys, session_id: u32, seq: u32, m: &Message) -> Vec<u8> {
    let header = V2Header {
        payload_type: payload::IPMI,
        encrypted: true,
        session_id,
        seq,
    };
    let sealed = keys.encrypt([9; 16], &m.encode());
    rmcp::encode_v2(header, &sealed, Some(&|b: &[u8]| keys.sign(b))).unwrap()
}

async fn start_fake(fake: Fake) -> (String, Arc<Seen>, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let task = tokio::spawn(fake_bmc(socket, fake, seen.clone()));
    (addr, seen, task)
}

#[test]
fn a_bmc_that_accepts_a_boot_override_but_reads_back_another_device_is_caught() {
    for suite in [CipherSuite::Suite3, CipherSuite::Suite17] {
        runtime().block_on(async {
            let (addr, seen, task) = start_fake(Fake {
                stuck_device: device::DISK,
                ..Fake::default()
            })
            .await;
            let bmc = Ipmi::new(&addr, USER, PASSWORD, limits()).with_cipher_suite(suite);
            let err = bmc.boot_once(BootTarget::Pxe).await.unwrap_err();
            match &err {
                BmcError::NotApplied {
                    asked,
                    found,
                    attempts,
                    ..
                } => {
                    assert_eq!(*attempts, 3);
                    assert!(asked.contains("Force PXE"), "{asked}");
                    assert!(
                        found.contains("Force Boot from default Hard-Drive"),
                        "{found}"
                    );
                }
                other => panic!("{suite:?}: expected NotApplied, got {other:?}"),
            }
            assert_eq!(seen.set_boot.load(Ordering::SeqCst), 3, "bounded retries");
            assert_eq!(
                seen.closed.load(Ordering::SeqCst),
                1,
                "the session is closed"
            );
            // The device it reports is the one asked for: done.
            bmc.boot_once(BootTarget::Hdd).await.unwrap();
            assert_eq!(seen.set_boot.load(Ordering::SeqCst), 4);
            task.abort();
        });
    }
}

#[test]
fn a_completion_code_names_the_command_and_its_meaning() {
    runtime().block_on(async {
        let (addr, seen, task) = start_fake(Fake {
            chassis_control_cc: 0xcc,
            ..Fake::default()
        })
        .await;
        let bmc = Ipmi::new(&addr, USER, PASSWORD, limits());
        let err = bmc.set_power(PowerAction::On).await.unwrap_err();
        assert!(
            matches!(err, BmcError::Completion { code: 0xcc, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(
                "Chassis Control answered completion code 0xcc (invalid data field in request)"
            ),
            "{err}"
        );
        assert_eq!(seen.chassis_control.load(Ordering::SeqCst), 1);
        task.abort();
    });
}

#[test]
fn a_lost_answer_is_made_up_for_by_resending_only_what_is_safe_to_repeat() {
    let fast = Limits {
        request: Duration::from_millis(600),
        ..limits()
    };
    runtime().block_on(async {
        // Power up is idempotent: resent with the same rqSeq and a new
        // session sequence number, then confirmed by reading back.
        let (addr, seen, task) = start_fake(Fake {
            lose_first_chassis_answer: true,
            ..Fake::default()
        })
        .await;
        let bmc = Ipmi::new(&addr, USER, PASSWORD, fast);
        bmc.set_power(PowerAction::On).await.unwrap();
        assert_eq!(bmc.power_state().await.unwrap(), PowerState::On);
        let seqs = seen.chassis_control_seqs.lock().unwrap().clone();
        assert_eq!(seqs.len(), 2, "{seqs:?}");
        assert_eq!(seqs[0].0, seqs[1].0, "same rqSeq: {seqs:?}");
        assert_ne!(seqs[0].1, seqs[1].1, "new session sequence: {seqs:?}");
        task.abort();

        // A hard reset is sent once: a lost answer is an error, not a
        // second reset.
        let (addr, seen, task) = start_fake(Fake {
            power_on: true,
            lose_first_chassis_answer: true,
            ..Fake::default()
        })
        .await;
        let bmc = Ipmi::new(&addr, USER, PASSWORD, fast);
        let err = bmc.set_power(PowerAction::ForceRestart).await.unwrap_err();
        assert!(matches!(err, BmcError::Unreachable { .. }), "{err:?}");
        let chain = format!("{:?}", std::error::Error::source(&err));
        assert!(
            chain.contains("Chassis Control") && chain.contains("1 transmission"),
            "{chain}"
        );
        assert_eq!(seen.chassis_control.load(Ordering::SeqCst), 1);
        task.abort();
    });
}
