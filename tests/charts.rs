//! The Helm chart in charts/inlet and the Dockerfile, checked the way
//! `scripts/check-charts.sh` checks them: rendered by a real helm, validated
//! against the Kubernetes and prometheus-operator schemas, linted; and the
//! rendered ingest configuration accepted by this build's `inlet validate`.
//! The script installs its tools on first use (into ~/.cache/inlet/tools).

use std::path::Path;
use std::process::Command;

#[test]
fn chart_renders_and_validates() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(repo.join("scripts/check-charts.sh"))
        .env("INLET_BIN", env!("CARGO_BIN_EXE_inlet"))
        .output()
        .expect("run scripts/check-charts.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts/check-charts.sh failed ({}):\n{stdout}\n{stderr}", out.status);
    // The summary line proves the validation ran and says what it covered.
    eprintln!("{stdout}{stderr}");
}
