//! The dashboard's built files (`web/`), embedded at compile time by `build.rs`.

/// One built file.
pub struct Asset {
    /// Its path under the site root, without the leading `/` (`index.html`, `assets/…`).
    pub path: &'static str,
    pub body: &'static [u8],
    /// The same bytes gzipped, when that saves at least a tenth.
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path` (no leading `/`).
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|a| a.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// Whether this binary was built with the dashboard.
pub fn built() -> bool {
    get("index.html").is_some()
}
