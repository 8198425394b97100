//! The boot and artifact routes through `tower::ServiceExt::oneshot`:
//! scripts per state, MAC errors, callbacks, Range, HEAD, ETag, 416, 404 and
//! traversal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use dv_protocol::{Actor, Event, EventBody, MacAddr, Message, SiteName, codec};
use tower::ServiceExt as _;

use super::boot::{BootCtx, BootHttp, routes};
use crate::boot::{BootState, MachineBoot};
use crate::store::{Store, boot as boot_store, outbox};

struct Bed {
    _dir: tempfile::TempDir,
    store: Store,
    app: Router,
    big: Vec<u8>,
}

async fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(artifacts.join("discovery")).unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(artifacts.join("discovery/vmlinuz"), &big).unwrap();
    std::fs::write(dir.path().join("secret"), b"secret").unwrap();
    std::fs::create_dir_all(dir.path().join("fw")).unwrap();
    std::fs::write(dir.path().join("fw/ipxe.efi"), b"MZ efi").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret"), artifacts.join("leak")).unwrap();
    let store = Store::open(&dir.path().join("data")).unwrap();
    let config = crate::config::Boot {
        http_url: "http://10.77.0.1:8680".into(),
        firmware_dir: dir.path().join("fw"),
        artifacts_dir: artifacts,
        default_state: BootState::Discover,
    };
    let ctx = BootCtx {
        boot: BootHttp::new(&config).unwrap(),
        store: store.clone(),
        site: SiteName::new("lab").unwrap(),
    };
    Bed {
        _dir: dir,
        store,
        app: routes().with_state(ctx),
        big,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn scripts_follow_the_machine_state() {
    let b = bed().await;
    let (status, headers, body) = call(&b.app, get("/boot/52:54:00:00:77:01.ipxe")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains("discovery/vmlinuz"),
        "unknown MAC discovers: {body}"
    );

    let mac: MacAddr = "52:54:00:00:77:01".parse().unwrap();
    b.store
        .write(move |c| {
            let site = SiteName::new("lab").unwrap();
            boot_store::set(
                c,
                &site,
                &Actor::agent(&site),
                &MachineBoot::unknown(mac, BootState::Local),
            )
        })
        .await
        .unwrap();
    // The hyphen form names the same machine.
    let (_, _, body) = call(&b.app, get("/boot/52-54-00-00-77-01.ipxe")).await;
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains("sanboot --no-describe --drive 0x80"),
        "{body}"
    );

    let (_, _, body) = call(&b.app, get("/boot/discover.ipxe")).await;
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("/boot/${net0/mac}.ipxe")
    );
}

#[tokio::test]
async fn malformed_macs_and_names_are_clear_errors() {
    let b = bed().await;
    let (status, _, body) = call(&b.app, get("/boot/not-a-mac.ipxe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("is not a MAC address")
    );
    let (status, _, _) = call(&b.app, get("/boot/01:00:5e:00:00:01.ipxe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(&b.app, get("/boot/52:54:00:00:77:01.sh")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn callbacks_are_recorded_as_events_and_bad_ones_change_nothing() {
    let b = bed().await;
    let req = Request::post("/boot/52:54:00:00:77:01/callback")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(
            "stage=discovered&ip=10.77.0.150&cpus=4&disks=vda:1073741824",
        ))
        .unwrap();
    let (status, _, _) = call(&b.app, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &b.app,
        get("/boot/52:54:00:00:77:01/callback?stage=local-boot-failed"),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for bad in [
        "/boot/52:54:00:00:77:01/callback",
        "/boot/52:54:00:00:77:01/callback?stage=Bad%20Stage",
        "/boot/52:54:00:00:77:01/callback?stage=x&ip=nowhere",
        "/boot/zz/callback?stage=x",
    ] {
        let (status, _, body) = call(&b.app, get(bad)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The discovery report, the machine it put in the inventory, and the
    // local-boot failure; nothing from the bad requests.
    let rows = b.store.read(|c| outbox::pending(c, 10)).await.unwrap();
    let subjects: Vec<&str> = rows.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(rows.len(), 3, "{subjects:?}");
    assert!(subjects[1].ends_with("machine.discovered"), "{subjects:?}");
    let msg: Message<Event> = codec::decode(&rows[0].payload).unwrap();
    let EventBody::MachineBootReported {
        mac,
        ip,
        stage,
        detail,
    } = msg.body.body
    else {
        panic!("{msg:?}")
    };
    assert_eq!(mac.to_string(), "52:54:00:00:77:01");
    assert_eq!(ip, Some("10.77.0.150".parse().unwrap()));
    assert_eq!(stage, "discovered");
    assert_eq!(detail, "cpus=4&disks=vda:1073741824");
}

#[tokio::test]
async fn artifacts_support_range_head_etag_and_digests() {
    let b = bed().await;
    let (status, headers, body) = call(&b.app, get("/artifacts/discovery/vmlinuz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b.big);
    let sha = crate::boot::digest::file_sha256(&b._dir.path().join("artifacts/discovery/vmlinuz"))
        .unwrap();
    assert_eq!(headers["x-checksum-sha256"], sha.as_str());
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{sha}\""));

    let req = Request::get("/artifacts/discovery/vmlinuz")
        .header(header::RANGE, "bytes=100-199")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&b.app, req).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes 100-199/100000");
    assert_eq!(body, &b.big[100..200]);

    let req = Request::get("/artifacts/discovery/vmlinuz")
        .header(header::RANGE, "bytes=200000-")
        .body(Body::empty())
        .unwrap();
    let (status, _, _) = call(&b.app, req).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);

    let req = Request::builder()
        .method(Method::HEAD)
        .uri("/artifacts/discovery/vmlinuz")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&b.app, req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_LENGTH], "100000");
    assert!(body.is_empty());

    let req = Request::get("/artifacts/discovery/vmlinuz")
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&b.app, req).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (status, _, body) = call(&b.app, get("/artifacts/discovery/vmlinuz.sha256")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("{sha}  vmlinuz\n")
    );
}

#[tokio::test]
async fn artifacts_never_leave_their_directory() {
    let b = bed().await;
    let (status, _, _) = call(&b.app, get("/artifacts/missing")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(&b.app, get("/artifacts/leak")).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    for uri in [
        "/artifacts/%2e%2e/secret",
        "/artifacts/discovery/..%2f..%2fsecret",
        "/artifacts/a%00b",
    ] {
        let (status, _, body) = call(&b.app, get(uri)).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST,
            "{uri}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!String::from_utf8_lossy(&body).contains("secret\n"));
    }
}

#[tokio::test]
async fn uefi_http_boot_gets_the_firmware_and_unknown_machines_the_entry_script() {
    let b = bed().await;
    let (status, headers, body) = call(&b.app, get("/boot/ipxe.efi")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"MZ efi");
    assert!(headers.contains_key("x-checksum-sha256"));
    let (status, _, _) = call(&b.app, get("/boot/..%2fsecret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = call(&b.app, get("/boot/discover.ipxe")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("${net0/mac}.ipxe")
    );
}
