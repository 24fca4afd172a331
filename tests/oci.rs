//! `./build.sh oci` output: the OCI image layout in `dist/oci`, read back with skopeo (the tool
//! the README pushes it with) and checked layer by layer against `dist/aml_auth_filter.wasm`.
//!
//! `./build.sh test` packages the layout before `cargo test`; run `./build.sh oci` first when
//! running this file alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const TAG: &str = env!("CARGO_PKG_VERSION");

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn layout() -> PathBuf {
    let dir = repo_root().join("dist/oci");
    assert!(
        dir.join("index.json").is_file(),
        "no OCI layout at {} (run ./build.sh oci)",
        dir.display()
    );
    dir
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} ({e}); ./build.sh installs skopeo"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn skopeo_inspect(reference: &str, raw: bool) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect");
    if raw {
        cmd.arg("--raw");
    }
    run(cmd.arg(reference))
}

fn reference(dir: &Path) -> String {
    format!("oci:{}:{TAG}", dir.display())
}

/// A blob of the layout, checked against its descriptor's digest and size.
fn blob(dir: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().unwrap();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(
        sha256_hex(&bytes),
        hex,
        "blob {digest} does not hash to its name"
    );
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "size of {digest}"
    );
    bytes
}

#[test]
fn skopeo_reads_the_tagged_compat_image() {
    let dir = layout();
    let inspect: Value = serde_json::from_slice(&skopeo_inspect(&reference(&dir), false)).unwrap();
    let raw = skopeo_inspect(&reference(&dir), true);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();

    // The digest skopeo reports (and a registry will serve) is the manifest's own SHA-256: the
    // value WasmPlugin.sha256 pins for an oci:// URL.
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(format!("sha256:{}", sha256_hex(&raw)).as_str())
    );
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"], "compat",
        "the compat spec requires the variant annotation on tar+gzip layers"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        TAG
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "compat variant: exactly one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        inspect["Layers"],
        Value::from(vec![layers[0]["digest"].clone()])
    );

    // The index tags exactly this manifest with the crate version.
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let tagged = index["manifests"].as_array().unwrap();
    assert_eq!(tagged.len(), 1);
    assert_eq!(
        tagged[0]["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    assert_eq!(blob(&dir, &tagged[0]), raw);

    // Config: its rootfs names the uncompressed layer.
    let config: Value = serde_json::from_slice(&blob(&dir, &manifest["config"])).unwrap();
    let layer = blob(&dir, &layers[0]);
    let scratch = scratch_dir("oci");
    let gz = scratch.join("layer.tar.gz");
    std::fs::write(&gz, &layer).unwrap();
    let tar = run(Command::new("gzip").arg("-dc").arg(&gz));
    assert_eq!(
        config["rootfs"]["diff_ids"],
        Value::from(vec![format!("sha256:{}", sha256_hex(&tar))])
    );

    // The layer holds plugin.wasm and nothing else, byte-identical to the built filter.
    let listing = run(Command::new("tar").arg("-tzf").arg(&gz));
    assert_eq!(String::from_utf8(listing).unwrap().trim(), "plugin.wasm");
    let out = scratch.join("x");
    std::fs::create_dir_all(&out).unwrap();
    run(Command::new("tar").arg("-xzf").arg(&gz).arg("-C").arg(&out));
    let plugin = std::fs::read(out.join("plugin.wasm")).unwrap();
    let built = std::fs::read(wasm_path()).unwrap();
    assert_eq!(plugin.get(..4), Some(&b"\0asm"[..]), "not a Wasm module");
    assert_eq!(sha256_hex(&plugin), sha256_hex(&built));
    assert_eq!(plugin.len(), built.len());
}

#[test]
fn skopeo_copy_keeps_the_digest() {
    // `skopeo copy` is how the README pushes to ACR; copying to another layout must keep the
    // manifest byte for byte, or the sha256 pinned in the WasmPlugin would no longer match.
    let dir = layout();
    let before: Value = serde_json::from_slice(&skopeo_inspect(&reference(&dir), false)).unwrap();
    let copy = scratch_dir("oci-copy").join("layout");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--quiet")
        .arg(reference(&dir))
        .arg(reference(&copy)));
    let after: Value = serde_json::from_slice(&skopeo_inspect(&reference(&copy), false)).unwrap();
    assert!(before["Digest"].as_str().is_some_and(|d| d.len() == 71));
    assert_eq!(before["Digest"], after["Digest"]);
}
