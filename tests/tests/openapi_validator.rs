//! Both checked-in OpenAPI documents (`docs/api/hub-openapi.json`,
//! `docs/api/agent-openapi.json`) pass a standard validator,
//! openapi-spec-validator (pinned in scripts/requirements-test.txt), so
//! any client generator or API tool reads them. The drift tests beside the
//! binaries (hub/tests/openapi.rs, agent/tests/openapi.rs) keep the
//! documents equal to what the code generates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::Duration;

use dv_tests::openapi::{document, run_tool, venv_tool};

fn validate(name: &str, test: &str) {
    let Some(validator) = venv_tool("openapi-spec-validator", test) else {
        return;
    };
    let doc = document(name);
    assert!(doc.exists(), "{} is missing", doc.display());
    let dir = tempfile::tempdir().unwrap();
    let run = run_tool(
        Command::new(validator).arg(&doc),
        dir.path(),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(
        run.success,
        "openapi-spec-validator rejects {}:\n{}",
        doc.display(),
        run.output
    );
    // It prints "<file>: OK" for a valid document; anything else is news.
    assert!(run.output.contains("OK"), "{}", run.output);
}

#[test]
fn the_hub_document_is_valid_openapi() {
    validate("hub-openapi.json", "the_hub_document_is_valid_openapi");
}

#[test]
fn the_agent_document_is_valid_openapi() {
    validate("agent-openapi.json", "the_agent_document_is_valid_openapi");
}
