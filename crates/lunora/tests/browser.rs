//! The web UI in Debian's Chromium, served by the real binary: `web/e2e/smoke.mjs` drives it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use lunora_testkit::{require, DbKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ui_loads_in_chromium_from_the_real_binary() {
    require("node", "nodejs").unwrap();
    require("chromium", "chromium").unwrap();
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in web/ first (scripts/test.sh does it)"
    );
    let server = common::start(DbKind::Sqlite).await;
    let shots = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let url = format!("http://{}", server.http);
        let shots = shots.path().to_path_buf();
        move || {
            Command::new("node")
                .arg(web.join("e2e/smoke.mjs"))
                .env("LUNORA_URL", url)
                .env("LUNORA_SCREENSHOT_DIR", shots)
                .env("LUNORA_SMOKE_EMAIL", common::ADMIN_EMAIL)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser smoke test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
