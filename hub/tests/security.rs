//! The hub's security baseline (ADR 0012) against real nats-server
//! processes: a hub node from `dv-hub nats-config` with `[tls]` (keys from
//! `dv-hub pki init`) and a site leaf node from `dv-agent nats-config`'s
//! renderer, connected as the site's least-privilege user.
//!
//! Every server binds loopback on free ports and is killed when its guard
//! drops; every wait is bounded. Without the venv's nats-server each test
//! says so loudly and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use dv_hub::config::HubConfig;
use dv_hub::pki::Layout;
use dv_protocol::SiteName;
use dv_tests::nats::{NatsServer, check_config, nats_server_bin};
use dv_tests::process::Guarded;
use dv_tests::sushy::free_port;
use futures::StreamExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

const DV_HUB: &str = env!("CARGO_BIN_EXE_dv-hub");
const TOKEN: &str = "s3cret-operator-token";
/// The longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(30);

/// A hub.toml with one node (or three), one replica, sites `osl-1` and
/// `other`, and `[tls]` on the PKI in `dir/pki`.
struct HubFiles {
    dir: tempfile::TempDir,
    toml: PathBuf,
    client: u16,
    leaf: u16,
    api: u16,
}

impl HubFiles {
    fn new(nodes: usize) -> HubFiles {
        let dir = tempfile::tempdir().unwrap();
        let (client, leaf, api) = (free_port(), free_port(), free_port());
        let mut text = format!(
            "[hub]\ndata_dir = \"{}\"\ntoken_file = \"{}\"\n\n",
            dir.path().join("data").display(),
            dir.path().join("token").display()
        );
        for i in 0..nodes {
            let (c, l) = if i == 0 {
                (client, leaf)
            } else {
                (free_port(), free_port())
            };
            text.push_str(&format!(
                "[[nats]]\nname = \"hub-{}\"\nclient = \"127.0.0.1:{c}\"\ncluster = \"127.0.0.1:{}\"\nleaf = \"127.0.0.1:{l}\"\n\n",
                i + 1,
                free_port()
            ));
        }
        text.push_str(&format!(
            "[[replicas]]\nname = \"r1\"\nlisten = \"127.0.0.1:{api}\"\n\n\
             [[sites]]\nname = \"osl-1\"\n[[sites]]\nname = \"other\"\n\n[tls]\ndir = \"pki\"\n\n[limits]\nrequests_per_second = 100000\nburst = 100000\n"
        ));
        let toml = dir.path().join("hub.toml");
        std::fs::write(&toml, text).unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        HubFiles {
            dir,
            toml,
            client,
            leaf,
            api,
        }
    }

    fn config(&self) -> HubConfig {
        HubConfig::from_file(&self.toml).unwrap()
    }

    fn layout(&self) -> Layout {
        Layout::new(self.dir.path().join("pki"))
    }

    /// `dv-hub <args> --config hub.toml`: (exit code, stdout, stderr).
    fn dv_hub(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(DV_HUB)
            .args(args)
            .arg("--config")
            .arg(&self.toml)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn pki_init(&self) {
        let out = self.dir.path().join("pki");
        let (code, _, err) = self.dv_hub(&["pki", "init", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 0, "dv-hub pki init: {err}");
    }

    /// Writes node `name`'s config from `dv-hub nats-config`.
    fn node_conf(&self, name: &str) -> PathBuf {
        let (code, text, err) = self.dv_hub(&["nats-config", "--node", name]);
        assert_eq!(code, 0, "dv-hub nats-config: {err}");
        let file = self.dir.path().join(format!("{name}.conf"));
        std::fs::write(&file, text).unwrap();
        file
    }
}

/// A site's agent config, federated with the hub at `leaf` over TLS as
/// its pki user; its leaf-node config as `dv-agent nats-config` renders it.
fn site_conf(dir: &Path, layout: &Layout, site: &str, port: u16, leaf: u16) -> PathBuf {
    let name = SiteName::new(site).unwrap();
    let text = format!(
        "[site]\nname = \"{site}\"\ndomain = \"dataverket.test\"\nauthority = \"production\"\ndata_dir = \"{data}\"\n\n\
         [management]\nsegment = \"lab\"\ninterface = \"lo\"\nprefix = \"10.77.0.0/24\"\n\
         gateway = \"10.77.0.1\"\nproduction_address = \"10.77.0.5\"\nhost = \"p-01\"\n\n\
         [[dns.hosts]]\nname = \"p-01\"\ninterfaces = [{{ segment = \"lab\", address = \"10.77.0.1\" }}]\n\n\
         [nats]\nurl = \"nats://127.0.0.1:{port}\"\nhub = [\"nats-leaf://127.0.0.1:{leaf}\"]\n\
         hub_password_file = \"{password}\"\nhub_ca = \"{ca}\"\nhub_cert = \"{cert}\"\nhub_key = \"{key}\"\n",
        data = dir.join(site).display(),
        password = layout.site_password(&name).display(),
        ca = layout.site_ca(&name).display(),
        cert = layout.site_cert(&name).display(),
        key = layout.site_key(&name).display(),
    );
    let config = dv_agent::config::Config::parse(&text, &dir.join("agent.toml")).unwrap();
    let nats = config.nats.as_ref().unwrap();
    let rendered = dv_agent::federation::leaf_config::render(&config, nats, &[]).unwrap();
    let file = dir.join(format!("{site}-leaf.conf"));
    std::fs::write(&file, rendered).unwrap();
    file
}

async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn messages(js: &jetstream::Context, stream: &str) -> Option<u64> {
    let mut s = js.get_stream(stream).await.ok()?;
    Some(s.info().await.ok()?.state.messages)
}

/// One line of a NATS protocol stream, `None` on EOF or after `limit`.
async fn line<R: AsyncRead + Unpin>(r: &mut BufReader<R>, limit: Duration) -> Option<String> {
    let mut text = String::new();
    match tokio::time::timeout(limit, r.read_line(&mut text)).await {
        Ok(Ok(n)) if n > 0 => Some(text.trim_end().to_owned()),
        _ => None,
    }
}

/// Every line until EOF or `quiet` without one (at most [`WAIT`]).
async fn lines_until_quiet<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    quiet: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match line(r, quiet).await {
            Some(l) => out.push(l),
            None => break,
        }
    }
    out
}

/// A TLS client stream to `port` after reading the server's plain INFO
/// line, trusting only `ca`: how a NATS peer upgrades.
async fn tls_after_info(
    port: u16,
    ca: &Path,
) -> (
    String,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut plain = BufReader::new(tcp);
    let info = line(&mut plain, WAIT).await.expect("INFO");
    let tcp = plain.into_inner();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    (info, tls)
}

/// A request from `client` with the reply subject `$JSC.R.probe` (which
/// `replies` listens on); the reply's payload, `None` after 2 s or when the
/// site's server says no one listens (status 503).
async fn ask(
    client: &async_nats::Client,
    replies: &mut async_nats::Subscriber,
    subject: &'static str,
    body: &str,
) -> Option<String> {
    client
        .publish_with_reply(subject, "$JSC.R.probe", body.to_owned().into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), replies.next())
        .await
        .ok()
        .flatten()
        .filter(|m| m.status != Some(async_nats::StatusCode::NO_RESPONDERS))
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, text: &str) {
    w.write_all(text.as_bytes()).await.unwrap();
    w.flush().await.unwrap();
}

/// The whole path of a site's data through a TLS hub, and each thing the
/// site's user must not do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_hub_federates_a_site_through_its_least_privilege_user() {
    let Some(bin) = nats_server_bin("a_tls_hub_federates_a_site_through_its_least_privilege_user")
    else {
        return;
    };
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let files = HubFiles::new(1);
    files.pki_init();
    // A second init must not replace the CA.
    let (code, _, err) = files.dv_hub(&[
        "pki",
        "init",
        "--out",
        files.dir.path().join("pki").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");

    let config = files.config();
    let layout = files.layout();
    let node_conf = files.node_conf("hub-1");
    let hub_node = NatsServer::start_file(&bin, &node_conf, files.client);
    let site_port = free_port();
    let site_conf = site_conf(files.dir.path(), &layout, "osl-1", site_port, files.leaf);
    let (ok, said) = check_config(&bin, &site_conf);
    assert!(ok, "{said}");
    let site = NatsServer::start_file(&bin, &site_conf, site_port);
    eventually("the site's leaf connection", || {
        let leafz = hub_node.monitor("/leafz");
        async move { leafz.contains("\"leafnodes\": 1").then_some(()) }
    })
    .await;

    // The replicas' way in: TLS, the CA, user dv-hub.
    let hub = dv_hub::serve::connect(&config, "security-test")
        .await
        .unwrap();
    let hub_js = dv_hub::serve::jetstream(hub.clone());
    eventually("the hub streams", || {
        let (js, c) = (hub_js.clone(), config.clone());
        async move { dv_hub::streams::ensure(&js, &c).await.ok() }
    })
    .await;
    // As the agent connects: replies under the site's own subjects.
    let site_client = async_nats::ConnectOptions::new()
        .custom_inbox_prefix("dv.osl-1.inbox")
        .connect(site.url())
        .await
        .unwrap();
    let site_js = jetstream::with_domain(site_client.clone(), "osl-1");
    let osl = SiteName::new("osl-1").unwrap();
    site_js
        .create_or_update_stream(dv_agent::federation::streams::event_stream_config(&osl))
        .await
        .unwrap();

    // Up: the site's event reaches DV_HUB_EVT.
    site_js
        .publish("dv.osl-1.maskin.evt.machine.discovered", "m-1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    eventually("the event in DV_HUB_EVT", || {
        let js = hub_js.clone();
        async move { (messages(&js, "DV_HUB_EVT").await? == 1).then_some(()) }
    })
    .await;
    let stored = hub_js
        .get_stream("DV_HUB_EVT")
        .await
        .unwrap()
        .get_raw_message(1)
        .await
        .unwrap();
    assert_eq!(
        stored.subject.as_str(),
        "dv.osl-1.maskin.evt.machine.discovered"
    );

    // Down: the site's agent reads its command from DV_HUB_CMD with its
    // durable consumer at the hub, and acknowledges it.
    hub_js
        .publish("dv.osl-1.maskin.cmd.provision", "c-1".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let site_hub = jetstream::with_domain(site_client.clone(), "hub");
    let consumer = eventually("the site's consumer on DV_HUB_CMD", || {
        let js = site_hub.clone();
        let osl = osl.clone();
        async move {
            js.create_consumer_on_stream(
                dv_agent::federation::streams::hub_command_consumer_config(&osl),
                "DV_HUB_CMD",
            )
            .await
            .ok()
        }
    })
    .await;
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let command = batch.next().await.unwrap().unwrap();
    assert_eq!(command.subject.as_str(), "dv.osl-1.maskin.cmd.provision");
    command.double_ack().await.unwrap();
    let mut at_hub = hub_js
        .get_stream("DV_HUB_CMD")
        .await
        .unwrap()
        .get_consumer::<jetstream::consumer::pull::Config>("dv-agent-osl-1")
        .await
        .unwrap();
    let info = at_hub.info().await.unwrap();
    assert_eq!(info.ack_floor.stream_sequence, 1, "{info:?}");

    // Another site's subjects from the genuine site server: refused there
    // (the hub sent it the permissions), never seen on the hub.
    let mut seen = hub.subscribe("dv.>").await.unwrap();
    hub.flush().await.unwrap();
    // The hub's interest reaches the site asynchronously: until a probe of
    // the site's own arrives, a publish might just find no interest.
    let deadline = Instant::now() + WAIT;
    loop {
        site_client
            .publish("dv.osl-1.maskin.evt.probe.ready", "".into())
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), seen.next()).await;
        if got.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub's interest never reached the site"
        );
    }
    let refused = site_js
        .publish("dv.other.maskin.cmd.provision", "forged".into())
        .await
        .unwrap()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    site_client
        .publish("dv.other.maskin.evt.machine.discovered", "forged".into())
        .await
        .unwrap();
    site_client
        .publish("dv.other.maskin.cmd.provision", "forged".into())
        .await
        .unwrap();
    // A marker on the site's own subjects: the link keeps order, so
    // whatever crossed before it has arrived once it has.
    site_client
        .publish("dv.osl-1.maskin.evt.probe.done", "marker".into())
        .await
        .unwrap();
    site_client.flush().await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let next = tokio::time::timeout(deadline - Instant::now(), seen.next())
            .await
            .expect("the marker never reached the hub")
            .unwrap();
        assert!(
            !next.subject.starts_with("dv.other."),
            "{} crossed the leaf link",
            next.subject
        );
        if next.subject.as_str() == "dv.osl-1.maskin.evt.probe.done" {
            break;
        }
    }
    assert_eq!(messages(&hub_js, "DV_HUB_CMD").await, Some(1));

    // Requests from the site. A site client's `_INBOX` is not among what
    // the site may receive, so replies come back only on `$JSC.R.*`, the
    // servers' own reply subjects: the probes use one of those.
    let mut replies = site_client.subscribe("$JSC.R.probe").await.unwrap();
    site_client.flush().await.unwrap();
    // Something on the hub answers for `other`'s JetStream (as `other`'s
    // leaf node would) and on a subject of the site's own.
    let responder = hub.clone();
    let mut asked = hub.subscribe("$JS.other.API.>").await.unwrap();
    let mut asked_own = hub.subscribe("dv.osl-1.maskin.probe").await.unwrap();
    hub.flush().await.unwrap();
    tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                Some(m) = asked.next() => m,
                Some(m) = asked_own.next() => m,
                else => return,
            };
            if let Some(reply) = m.reply {
                let _ = responder.publish(reply, "answered".into()).await;
            }
        }
    });
    // The positive control, retried until the hub's interest (sent after
    // that in `$JS.other.API.>`, over the same ordered link) is there.
    let deadline = Instant::now() + WAIT;
    while ask(&site_client, &mut replies, "dv.osl-1.maskin.probe", "")
        .await
        .as_deref()
        != Some("answered")
    {
        assert!(
            Instant::now() < deadline,
            "the own-subject probe was never answered"
        );
    }
    // Another site's JetStream through the hub, and the hub's JetStream
    // beyond the site's own command source: unanswered.
    for subject in [
        "$JS.other.API.INFO",
        "$JS.other.API.STREAM.INFO.DV_EVT_OTHER",
        "$JS.hub.API.INFO",
        "$JS.hub.API.STREAM.INFO.DV_HUB_AUDIT",
        "$JS.hub.API.STREAM.PURGE.DV_HUB_CMD",
        "$JS.hub.API.CONSUMER.CREATE.DV_HUB_EVT",
    ] {
        let reply = ask(&site_client, &mut replies, subject, "").await;
        assert_eq!(reply, None, "{subject} answered");
    }
    // A consumer on DV_HUB_CMD whose filter is not the site's own: the
    // subject passes the permission, the server refuses the mismatch.
    for filter in [
        r#""filter_subject":"dv.other.>""#,
        r#""filter_subjects":["dv.other.>"]"#,
    ] {
        let body = format!(
            r#"{{"stream_name":"DV_HUB_CMD","config":{{"name":"evil","deliver_subject":"dv.osl-1.evil",{filter},"ack_policy":"none"}}}}"#
        );
        let text = ask(
            &site_client,
            &mut replies,
            "$JS.hub.API.CONSUMER.CREATE.DV_HUB_CMD.evil.dv.osl-1.*.cmd.>",
            &body,
        )
        .await
        .expect("no reply to the consumer create");
        assert!(text.contains("\"error\""), "{filter}: {text}");
    }

    // A modified site server ignores the permissions it is sent: the hub
    // enforces them itself. A raw leaf connection as site-osl-1:
    let password = dv_hub::pki::read_secret(&layout.site_password(&osl)).unwrap();
    let (info, tls) = tls_after_info(files.leaf, &layout.ca_cert()).await;
    assert!(info.contains("\"tls_required\":true"), "{info}");
    let mut evil = BufReader::new(tls);
    send(
        evil.get_mut(),
        &format!(
            "CONNECT {{\"user\":\"site-osl-1\",\"pass\":\"{}\",\"name\":\"evil\",\"headers\":true}}\r\nPING\r\n",
            password.expose()
        ),
    )
    .await;
    // Its interest in another site's subjects and JetStream API is not
    // honoured: the hub's own requests to `other` (it sources
    // DV_EVT_OTHER, retrying) and these publishes never arrive.
    send(
        evil.get_mut(),
        "LS+ $JS.other.API.>\r\nLS+ dv.other.>\r\nLS+ dv.osl-1.probe.>\r\nPING\r\n",
    )
    .await;
    // Interest travels asynchronously: wait for the PONG first.
    let got = lines_until_quiet(&mut evil, Duration::from_secs(1)).await;
    assert!(got.iter().any(|l| l == "PONG"), "{got:?}");
    hub.publish("dv.other.maskin.cmd.provision", "secret".into())
        .await
        .unwrap();
    hub.publish("$JS.other.API.INFO", "".into()).await.unwrap();
    // The positive control: its own subjects do arrive.
    hub.publish("dv.osl-1.probe.hello", "hi".into())
        .await
        .unwrap();
    hub.flush().await.unwrap();
    let got = lines_until_quiet(&mut evil, Duration::from_secs(2)).await;
    assert!(
        got.iter()
            .any(|l| l.starts_with("LMSG dv.osl-1.probe.hello")),
        "{got:?}"
    );
    assert!(
        !got.iter()
            .any(|l| l.contains("dv.other.") || l.contains("$JS.other.")),
        "{got:?}"
    );
    // (The hub's own command for `other` is in DV_HUB_CMD now.)
    let commands = messages(&hub_js, "DV_HUB_CMD").await;
    assert_eq!(commands, Some(2));
    // Publishing there is a violation: refused, logged, disconnected.
    send(
        evil.get_mut(),
        "LMSG dv.other.maskin.cmd.provision 6\r\nforged\r\nPING\r\n",
    )
    .await;
    let got = lines_until_quiet(&mut evil, Duration::from_secs(2)).await;
    assert!(
        got.iter().any(|l| l
            .contains("Permissions Violation for Publish to \"dv.other.maskin.cmd.provision\"")),
        "{got:?}"
    );
    let log = std::fs::read_to_string(&hub_node.log).unwrap_or_default();
    assert!(
        log.contains("Publish Violation on \"dv.other.maskin.cmd.provision\""),
        "{log}"
    );
    assert_eq!(messages(&hub_js, "DV_HUB_CMD").await, commands);

    // A wrong password is no leaf node.
    let (_, tls) = tls_after_info(files.leaf, &layout.ca_cert()).await;
    let mut wrong = BufReader::new(tls);
    send(
        wrong.get_mut(),
        "CONNECT {\"user\":\"site-osl-1\",\"pass\":\"guess\"}\r\nPING\r\n",
    )
    .await;
    let got = lines_until_quiet(&mut wrong, Duration::from_secs(2)).await;
    assert!(
        got.iter().any(|l| l.contains("Authorization Violation")),
        "{got:?}"
    );

    // The client port speaks only TLS: a plain client, even with the right
    // password, never gets a PONG.
    let hub_password = dv_hub::pki::read_secret(&layout.hub_password()).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", files.client))
        .await
        .unwrap();
    let mut plain = BufReader::new(tcp);
    let info = line(&mut plain, WAIT).await.unwrap();
    assert!(info.contains("\"tls_required\":true"), "{info}");
    let _ = plain
        .get_mut()
        .write_all(
            format!(
                "CONNECT {{\"user\":\"dv-hub\",\"pass\":\"{}\"}}\r\nPING\r\n",
                hub_password.expose()
            )
            .as_bytes(),
        )
        .await;
    let got = lines_until_quiet(&mut plain, Duration::from_secs(2)).await;
    assert!(!got.iter().any(|l| l == "PONG"), "{got:?}");
    // And async-nats without the hub CA cannot verify the node.
    let untrusting = async_nats::ConnectOptions::with_user_and_password(
        "dv-hub".into(),
        hub_password.expose().into(),
    )
    .require_tls(true)
    .connection_timeout(Duration::from_secs(3))
    .connect(format!("nats://127.0.0.1:{}", files.client))
    .await;
    assert!(untrusting.is_err());

    drop(site_client);
    drop(hub);
    site.kill();
    hub_node.kill();
}

/// `dv-hub serve` with `[tls]`: HTTPS with the replica's certificate, the
/// token still required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_api_answers_health_and_wants_the_token() {
    let Some(bin) = nats_server_bin("the_https_api_answers_health_and_wants_the_token") else {
        return;
    };
    let files = HubFiles::new(1);
    files.pki_init();
    let node = NatsServer::start_file(&bin, &files.node_conf("hub-1"), files.client);
    let mut serve = Guarded::spawn(
        Command::new(DV_HUB)
            .args(["serve", "--replica", "r1", "--config"])
            .arg(&files.toml)
            .env("DV_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(files.dir.path().join("serve.log")).unwrap()),
    )
    .unwrap();
    let ca = std::fs::read(files.layout().ca_cert()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", files.api);
    let health = eventually("the HTTPS API", || {
        let (http, url) = (http.clone(), format!("{base}/v1/health"));
        async move {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        }
    })
    .await;
    assert_eq!(health.status(), 200);
    let sites = http.get(format!("{base}/v1/sites")).send().await.unwrap();
    assert_eq!(sites.status(), 401);
    let sites = http
        .get(format!("{base}/v1/sites"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(sites.status(), 200);
    // Plain HTTP gets no answer from the TLS listener.
    let plain = dv_tests::http::get(([127, 0, 0, 1], files.api).into(), "/v1/health");
    assert!(plain.map(|r| r.status != 200).unwrap_or(true));

    let _ = serve.signal(libc::SIGTERM);
    let stopped = serve.wait_timeout(Duration::from_secs(10));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "dv-hub serve did not stop cleanly: {}",
        std::fs::read_to_string(files.dir.path().join("serve.log")).unwrap_or_default()
    );
    node.kill();
}

/// Every rendered config of a three-node TLS hub, and a site's leaf node
/// with a client certificate, is accepted by `nats-server -t`.
#[test]
fn every_rendered_tls_config_passes_nats_server_t() {
    let Some(bin) = nats_server_bin("every_rendered_tls_config_passes_nats_server_t") else {
        return;
    };
    let files = HubFiles::new(3);
    files.pki_init();
    for node in ["hub-1", "hub-2", "hub-3"] {
        let conf = files.node_conf(node);
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_eq!(text.matches("tls {").count(), 3, "{text}");
        let (ok, said) = check_config(&bin, &conf);
        assert!(ok, "{node}: {said}\n{text}");
    }
    let leaf = site_conf(
        files.dir.path(),
        &files.layout(),
        "other",
        free_port(),
        files.leaf,
    );
    let (ok, said) = check_config(&bin, &leaf);
    assert!(ok, "{said}");
}
