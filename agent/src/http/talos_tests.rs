//! `GET /boot/<mac>/talos.yaml` through `tower::ServiceExt::oneshot`, with
//! the peer address set as the HTTP server sets it: the machine's own
//! lease gets its config, anyone else a refusal that says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use dv_protocol::{Actor, MachineState, SiteName};
use tower::ServiceExt as _;

use super::boot::{BootCtx, BootHttp, routes};
use crate::boot::BootState;
use crate::inventory::SiteKey;
use crate::inventory::file::InventoryFile;
use crate::store::{Store, inventory as db};
use crate::talos::{Talos, test_settings as settings};

const INVENTORY: &str = r#"
machines:
  - serial: SN-CP1
    macs: ["52:54:00:aa:00:01", "52:54:00:aa:01:01"]
    role: control_plane
  - serial: SN-W1
    macs: ["52:54:00:aa:00:02"]
    role: worker
  - serial: SN-S1
    macs: ["52:54:00:aa:00:03"]
    role: storage
"#;

struct Bed {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
}

fn lab() -> SiteName {
    SiteName::new("lab").unwrap()
}

async fn bed(with_talos: bool) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::open(&data).unwrap();
    let key = SiteKey::load_or_create(&data).unwrap();
    let file = InventoryFile::parse(INVENTORY).unwrap();
    let machines = file.check().unwrap();
    let k = key.clone();
    store
        .write(move |c| db::import(c, &lab(), &Actor::agent(&lab()), &k, &file, &machines))
        .await
        .unwrap();
    let talos = with_talos.then(|| {
        Talos::new(
            settings(),
            key,
            "lab.dataverket.test".into(),
            "http://10.77.0.1:8680",
            HashMap::new(),
        )
    });
    let config = crate::config::Boot {
        http_url: "http://10.77.0.1:8680".into(),
        firmware_dir: dir.path().join("fw"),
        artifacts_dir: dir.path().join("artifacts"),
        default_state: BootState::Discover,
    };
    let ctx = BootCtx {
        boot: BootHttp::with_talos(&config, talos).unwrap(),
        store: store.clone(),
        site: lab(),
    };
    Bed {
        _dir: dir,
        store,
        app: routes().with_state(ctx),
    }
}

impl Bed {
    /// A bound lease of `ip` to `mac`, expiring in an hour (or gone).
    async fn lease(&self, ip: &str, mac: &str, state: &str, expires_in_secs: i64) {
        let (ip, mac, state) = (ip.to_owned(), mac.to_owned(), state.to_owned());
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        let expires = now + expires_in_secs * 1_000_000_000;
        self.store
            .write(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO dhcp_lease (ip, id, prefix, mac, state, starts, expires, updated_at)
                     VALUES (?1, ?2, '10.77.0.0/24', ?3, ?4, ?5, ?6, ?5)",
                    rusqlite::params![ip, dv_protocol::LeaseId::new().to_string(), mac, state, now, expires],
                )?;
                Ok(())
            })
            .await
            .unwrap();
    }

    async fn state(&self, serial: &str, to: MachineState) {
        let serial = serial.to_owned();
        self.store
            .write(move |c| {
                let m = db::machine(c, &serial)?.unwrap();
                let from = [m.state];
                db::set_state(c, &lab(), &Actor::agent(&lab()), m.id, &from, to)?.unwrap();
                Ok(())
            })
            .await
            .unwrap();
    }

    async fn get(&self, mac: &str, peer: &str) -> (StatusCode, String) {
        let mut req = Request::get(format!("/boot/{mac}/talos.yaml"))
            .body(Body::empty())
            .unwrap();
        let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

#[tokio::test]
async fn only_the_machine_itself_gets_its_config_while_it_is_provisioned() {
    let b = bed(true).await;
    b.lease("10.77.0.31", "52:54:00:aa:01:01", "bound", 3600)
        .await;
    b.lease("10.77.0.32", "52:54:00:aa:00:02", "bound", 3600)
        .await;
    b.lease("10.77.0.33", "52:54:00:aa:00:03", "bound", 3600)
        .await;
    b.lease("10.77.0.34", "52:54:00:aa:00:01", "released", 3600)
        .await;

    // Available (not being provisioned): refused, saying so.
    let (status, body) = b.get("52:54:00:aa:00:01", "10.77.0.31").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("is available"), "{body}");

    b.state("SN-CP1", MachineState::Allocated).await;
    // From the lease of its second NIC: served.
    let (status, body) = b.get("52:54:00:aa:00:01", "10.77.0.31").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc: yaml_serde::Value = yaml_serde::from_str(&body).unwrap();
    assert_eq!(doc["machine"]["type"], "controlplane");
    assert_eq!(
        doc["machine"]["network"]["interfaces"][0]["deviceSelector"]["hardwareAddr"],
        "52:54:00:aa:00:01"
    );
    assert_eq!(doc["machine"]["network"]["hostname"], "node-sn-cp1");
    // The same MAC, asked with an IPv4-mapped IPv6 peer: the same answer.
    let (status, again) = b.get("52:54:00:aa:00:01", "[::ffff:10.77.0.31]").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, body, "one bundle per cluster, one config");
    // Each fetch is recorded as the machine's boot report.
    let (events, machine_stage) = b
        .store
        .read(|c| {
            let m = db::machine(c, "SN-CP1")?.unwrap();
            Ok((
                crate::store::outbox::pending(c, 100)?,
                db::last_stage(c, m.id)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        machine_stage.map(|(s, _)| s).as_deref(),
        Some(super::talos::CONFIG_SERVED)
    );
    let reports = events
        .iter()
        .filter(|e| e.subject.ends_with("machine.boot-reported"))
        .count();
    assert_eq!(reports, 2, "one report per fetch");

    // Another machine's address, a released lease, an unknown address: 403.
    for peer in ["10.77.0.32", "10.77.0.34", "10.77.0.99", "127.0.0.1"] {
        let (status, body) = b.get("52:54:00:aa:00:01", peer).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{peer}: {body}");
        assert!(body.contains("served only to the machine itself"), "{body}");
        assert!(!body.contains("PRIVATE"), "{body}");
    }
    // An expired lease is not the machine's any more.
    b.lease("10.77.0.35", "52:54:00:aa:00:01", "bound", -10)
        .await;
    let (status, _) = b.get("52:54:00:aa:00:01", "10.77.0.35").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A worker of the same cluster: same CA certificate, no CA key.
    b.state("SN-W1", MachineState::Allocated).await;
    let (status, worker) = b.get("52:54:00:aa:00:02", "10.77.0.32").await;
    assert_eq!(status, StatusCode::OK, "{worker}");
    let w: yaml_serde::Value = yaml_serde::from_str(&worker).unwrap();
    assert_eq!(w["machine"]["type"], "worker");
    assert_eq!(w["cluster"]["ca"]["crt"], doc["cluster"]["ca"]["crt"]);
    assert_eq!(w["machine"]["ca"]["crt"], doc["machine"]["ca"]["crt"]);
    assert!(w["cluster"]["ca"].get("key").is_none());
    assert!(w["cluster"].get("etcd").is_none());

    // A storage machine has no Talos config.
    b.state("SN-S1", MachineState::Allocated).await;
    let (status, body) = b.get("52:54:00:aa:00:03", "10.77.0.33").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("control_plane or worker"), "{body}");

    // Unknown and malformed MACs.
    let (status, body) = b.get("52:54:00:aa:00:99", "10.77.0.31").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("no machine"), "{body}");
    let (status, _) = b.get("not-a-mac", "10.77.0.31").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Installed: no longer served.
    b.state("SN-CP1", MachineState::Provisioning).await;
    assert_eq!(
        b.get("52:54:00:aa:00:01", "10.77.0.31").await.0,
        StatusCode::OK
    );
    b.state("SN-CP1", MachineState::Ready).await;
    let (status, body) = b.get("52:54:00:aa:00:01", "10.77.0.31").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("is ready"), "{body}");
}

#[tokio::test]
async fn an_agent_without_talos_says_so() {
    let b = bed(false).await;
    let (status, body) = b.get("52:54:00:aa:00:01", "10.77.0.31").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("[talos]"), "{body}");
}
