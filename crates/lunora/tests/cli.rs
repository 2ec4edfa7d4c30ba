//! `lunora version` and `lunora config check` as a user runs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn lunora() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lunora"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

#[test]
fn version_prints_the_version() {
    let out = lunora().arg("version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("lunora {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_check_prints_effective_values_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lunora.toml");
    std::fs::write(&file, "[http]\naddr = \"127.0.0.1:9000\"\n").unwrap();
    let out = lunora()
        .args(["config", "check", "--config"])
        .arg(&file)
        .args(["--rtmp-addr", "127.0.0.1:1936"])
        .env("LUNORA_HTTP_ADDR", "127.0.0.1:9001")
        .env("LUNORA_ADMIN_PASSWORD", "Very-Secret-Admin-9")
        .env(
            "LUNORA_DATABASE_URL",
            "postgres://lunora:db-password-1@db.internal/lunora",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("http.addr = \"127.0.0.1:9001\"  # env"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rtmp.addr = \"127.0.0.1:1936\"  # flag"),
        "{stdout}"
    );
    assert!(
        stdout.contains("srt.addr = \"0.0.0.0:9998\"  # default"),
        "{stdout}"
    );
    assert!(!stdout.contains("Very-Secret-Admin-9"), "{stdout}");
    assert!(!stdout.contains("db-password-1"), "{stdout}");
    assert!(
        stdout.contains("postgres://lunora:****@db.internal/lunora"),
        "{stdout}"
    );
}

#[test]
fn config_check_names_the_bad_key_and_fails() {
    let out = lunora()
        .args(["config", "check"])
        .env("LUNORA_SRT_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`srt.addr`"), "{stderr}");
    assert!(stderr.contains("from env"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lunora.toml");
    std::fs::write(&file, "[htp]\naddr = \"127.0.0.1:9000\"\n").unwrap();
    let out = lunora()
        .args(["config", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`htp.addr`"));
}

#[test]
fn serve_refuses_an_invalid_configuration_before_starting() {
    let out = lunora()
        .arg("serve")
        .env("LUNORA_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`log.format`"));
}
