//! The reference docs and the example configuration stay true to the code.

use std::path::PathBuf;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn configuration_reference_is_current() {
    let on_disk = std::fs::read_to_string(repo("docs/configuration.md")).expect("docs/configuration.md");
    let generated = inlet_config::reference::markdown();
    assert!(
        on_disk == generated,
        "docs/configuration.md is stale: regenerate it with `cargo run --bin inlet -- config reference > docs/configuration.md`"
    );
}

#[test]
fn example_configs_are_valid() {
    for entry in std::fs::read_dir(repo("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = inlet_config::parse(&path.display().to_string(), &text, &|_| None) {
                panic!("{e}");
            }
        }
    }
}
