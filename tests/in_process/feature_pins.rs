//! The build `cargo test` makes and the one `cargo run` (so `cargo lambda watch`) makes must be the
//! same build: a crate both use, with features only a dev-dependency turns on, is compiled twice, and
//! everything above it with it. Cargo.toml's feature pins keep the two equal; this says which to add.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Each package's features as `cargo tree` resolves them, with or without the dev-dependencies.
fn resolved_features(with_dev_dependencies: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut command = Command::new(env!("CARGO"));
    command.args(["tree", "--offline", "--prefix", "none", "--format", "{p}|{f}"]);
    if !with_dev_dependencies {
        command.args(["--edges", "no-dev"]);
    }
    let output = command.current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree: {}", String::from_utf8_lossy(&output.stderr));
    let mut features = BTreeMap::<String, BTreeSet<String>>::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((package, list)) = line.trim_end_matches(" (*)").split_once('|') else { continue };
        let entry = features.entry(package.trim().to_owned()).or_default();
        entry.extend(list.split(',').filter(|f| !f.is_empty()).map(str::to_owned));
    }
    features
}

#[test]
fn cargo_run_builds_every_shared_crate_with_the_features_cargo_test_does() {
    let without_dev = resolved_features(false);
    let with_dev = resolved_features(true);
    let differing: Vec<String> = without_dev
        .iter()
        .filter_map(|(package, features)| {
            let in_tests = with_dev.get(package)?;
            let extra: Vec<&str> = in_tests.difference(features).map(String::as_str).collect();
            (!extra.is_empty()).then(|| format!("{package}: {}", extra.join(", ")))
        })
        .collect();
    assert!(
        differing.is_empty(),
        "the dev-dependencies turn on features `cargo run` builds without, so `cargo lambda watch` \
         recompiles these and all above them; pin them in Cargo.toml's [dependencies]:\n{}",
        differing.join("\n")
    );
    assert!(without_dev.keys().any(|p| p.starts_with("tokio v")), "cargo tree listed the dependencies");
}
