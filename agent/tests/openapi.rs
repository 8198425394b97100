//! The checked-in OpenAPI document (`docs/api/agent-openapi.json`) is what
//! the code generates: a route, handler annotation or body type that
//! changes without the document fails here, with the command that brings
//! the document up to date. The `/v1` routes are declared through
//! utoipa-axum's `routes!`, so each one is in the document by
//! construction; the list below pins which ones there are, and that the
//! firmware's `/boot` and `/artifacts` stay out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const DOCUMENT: &str = "docs/api/agent-openapi.json";

fn generated() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dv-agent"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dv-agent openapi failed: {}",
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
             cargo run -p dv-agent -- openapi > {DOCUMENT}\n\nand commit it with the change"
        );
    }
}

#[test]
fn the_document_describes_every_api_route_and_no_firmware_route() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut operations: Vec<String> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations.sort();
    let mut expected = vec![
        "GET /metrics",
        "GET /v1/health",
        "GET /v1/leases",
        "GET /v1/inventory",
        "POST /v1/inventory",
        "GET /v1/machines",
        "GET /v1/machines/{key}",
        "POST /v1/machines/{key}/approve",
        "GET /v1/machines/{key}/power",
        "POST /v1/machines/{key}/power",
        "POST /v1/machines/{key}/boot",
        "POST /v1/machines/{key}/bmc/repin",
        "POST /v1/machines/{key}/provision",
        "POST /v1/machines/{key}/deprovision",
        "GET /v1/tasks",
        "GET /v1/tasks/{id}",
        "POST /v1/tasks/{id}/retry",
        "GET /v1/dns/services",
        "PUT /v1/dns/services/{name}",
        "GET /v1/dns/zones/{zone}",
        "GET /v1/dns/export/{format}",
        "GET /v1/networks",
        "POST /v1/networks",
        "GET /v1/networks/{name}",
        "DELETE /v1/networks/{name}",
        "GET /v1/networks/{name}/addresses",
        "POST /v1/networks/{name}/addresses",
        "DELETE /v1/networks/{name}/addresses/{ip}",
        "GET /v1/intent",
        "GET /v1/port-profiles",
        "PUT /v1/port-profiles/{name}",
        "DELETE /v1/port-profiles/{name}",
        "GET /v1/switches",
        "GET /v1/switches/{switch}/ports",
        "PUT /v1/switches/{switch}/ports/{port}",
        "DELETE /v1/switches/{switch}/ports/{port}",
        "PUT /v1/switches/{switch}/lags/{name}",
        "DELETE /v1/switches/{switch}/lags/{name}",
        "GET /v1/switches/{switch}/plan",
        "POST /v1/switches/{switch}/apply",
        "GET /v1/switches/{switch}/drift",
        "GET /v1/switches/{switch}/config/{vendor}",
    ];
    expected.sort_unstable();
    assert_eq!(operations, expected);
    // Every operation that can fail says how, with the shared error body.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    assert!(
                        response["content"]["application/json"].is_object(),
                        "{method} {path} {status} has no JSON body"
                    );
                }
            }
        }
    }
    // The API returns the protocol's own types.
    for schema in ["Machine", "Task", "TaskDetail", "NetworkSpec", "ErrorBody"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "no {schema} schema"
        );
    }
}
