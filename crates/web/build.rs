//! Builds the dashboard (`web/`, React + Vite) with npm when its sources changed, and
//! embeds the result. Cargo reruns this script when anything under `web/` that the build
//! reads changes, so the assets are never stale. `MORNINGAI_WEB_DIST` names an
//! already-built folder instead (the Dockerfile builds it in a Node stage); where neither
//! is available (no Node.js), the binary builds without a dashboard and `/` says how to get
//! one.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    println!("cargo::rerun-if-env-changed=MORNINGAI_WEB_DIST");
    for input in [
        "src",
        "public",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo::rerun-if-changed={}", web.join(input).display());
    }
    let dist = match std::env::var_os("MORNINGAI_WEB_DIST") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => build(&web, &out.join("dist")),
    };
    let mut files = Vec::new();
    if let Some(dist) = &dist {
        collect(dist, dist, &mut files);
        assert!(
            files.iter().any(|(name, _)| name == "index.html"),
            "{} holds no index.html",
            dist.display()
        );
    }
    files.sort();
    write_table(&out, &files);
}

/// `npm ci` when `node_modules` is missing or older than the lock, then `vite build` into
/// `dist`. None when Node.js is not installed; a failing build fails the crate.
fn build(web: &Path, dist: &Path) -> Option<PathBuf> {
    if Command::new("npm").arg("--version").output().is_err() {
        println!(
            "cargo::warning=npm not found: building without the dashboard (install Node.js >= 20.19 and npm, then rebuild)"
        );
        return None;
    }
    let installed = web.join("node_modules/.package-lock.json");
    let fresh = modified(&installed)
        .zip(modified(&web.join("package-lock.json")))
        .is_some_and(|(installed, lock)| installed >= lock);
    if !fresh {
        run(web, &["ci", "--no-audit", "--no-fund"]);
    }
    run(
        web,
        &[
            "exec",
            "--",
            "vite",
            "build",
            "--emptyOutDir",
            "--outDir",
            dist.to_str().expect("a UTF-8 OUT_DIR"),
        ],
    );
    Some(dist.to_owned())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn run(web: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| panic!("npm {}: {e}", args.join(" ")));
    assert!(status.success(), "npm {} failed: {status}", args.join(" "));
}

/// Every file under `dir` as (path relative to `root` with `/` separators, absolute path).
fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let rel = path.strip_prefix(root).expect("under the root");
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
}

/// `assets.rs`: one entry per file, with a gzip copy where it is at least 10 % smaller.
fn write_table(out: &Path, files: &[(String, PathBuf)]) {
    let mut table = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, (name, path)) in files.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).expect("gzip in memory");
        let gz = gz.finish().expect("gzip in memory");
        let gzip = if gz.len() * 10 < bytes.len() * 9 {
            let gz_path = out.join(format!("asset-{i}.gz"));
            std::fs::write(&gz_path, gz).expect("write a gzip copy");
            format!("Some(include_bytes!({:?}))", gz_path.display().to_string())
        } else {
            "None".to_owned()
        };
        writeln!(
            table,
            "    Asset {{ path: {name:?}, body: include_bytes!({:?}), gzip: {gzip} }},",
            path.display().to_string()
        )
        .expect("write to a String");
    }
    table.push_str("];\n");
    std::fs::write(out.join("assets.rs"), table).expect("write assets.rs");
}
