//! The checked-in OpenAPI document (`docs/api/hub-openapi.json`) is what
//! the code generates: a route, handler annotation or protocol type that
//! changes without the document fails here, with the command that brings
//! the document up to date.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const DOCUMENT: &str = "docs/api/hub-openapi.json";

fn generated() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dv-hub"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dv-hub openapi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_checked_in_openapi_document_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(DOCUMENT);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = generated();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "at the end".to_owned(),
                |n| format!("from line {}", n + 1),
            );
        panic!(
            "{DOCUMENT} is out of date ({line}); regenerate it with\n\n    \
             cargo run -p dv-hub -- openapi > {DOCUMENT}\n\nand commit it with the change"
        );
    }
}

#[test]
fn every_endpoint_but_health_metrics_and_oidc_needs_the_token_and_writes_need_if_match() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let open = op.get("security") == Some(&serde_json::json!([{}]));
            assert_eq!(
                open,
                path == "/v1/health" || path == "/metrics" || path == "/v1/identity/oidc",
                "{method} {path}: security {:?}",
                op.get("security")
            );
            // Tenancy records are versioned; a project's machines and
            // offering switches are not (claims and sets, not documents).
            let versioned = path.starts_with("/v1/tenants")
                && !path.contains("/machines")
                && !path.contains("/offerings");
            if versioned && (method == "put" || method == "delete") {
                for status in ["412", "428"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
    // The API returns the protocol's own types.
    for schema in [
        "Machine",
        "Task",
        "TaskState",
        "Tenant",
        "Project",
        "Environment",
        "Quota",
        "Principal",
        "Grant",
        "ServiceTokenCreated",
    ] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "no {schema} schema"
        );
    }
}
