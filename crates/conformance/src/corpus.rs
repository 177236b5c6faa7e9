//! Real source trees nobody here wrote, for tests: the sources of crates in Cargo's
//! registry (present because the workspace depends on them; never copied into the repo).

use std::path::PathBuf;

/// The unpacked sources of `name-version` (e.g. `backon-1.6.0`) in Cargo's registry.
pub fn registry_crate(name_version: &str) -> PathBuf {
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    std::fs::read_dir(home.join("registry/src"))
        .expect("Cargo's registry sources (run cargo fetch)")
        .filter_map(|d| d.ok())
        .map(|d| d.path().join(name_version))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| panic!("{name_version} is not in Cargo's registry: run cargo fetch"))
}
