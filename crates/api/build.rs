//! Points the embedded UI at `web/dist` when it has been built, or at a small page that says how
//! to build it, so `cargo build` works on a fresh checkout either way.
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );
    let dir = if dist.join("index.html").is_file() {
        dist.canonicalize().unwrap_or(dist)
    } else {
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("web-fallback");
        let _ = std::fs::create_dir_all(&out);
        let _ = std::fs::write(
            out.join("index.html"),
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lunora</title></head>\
             <body><h1>Lunora</h1><p>The web interface was not built into this binary. \
             Run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code> and rebuild, \
             or use the README's first command.</p></body></html>",
        );
        out
    };
    println!("cargo:rustc-env=LUNORA_WEB_DIST={}", dir.display());
}
