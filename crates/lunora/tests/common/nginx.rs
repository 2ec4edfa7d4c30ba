//! nginx with the RTMP module as a real destination server, optionally behind a TLS endpoint
//! (nginx's stream module) with a self-signed CA, started on free loopback ports.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub rtmp: SocketAddr,
    pub rtmps: Option<SocketAddr>,
    pub stat: SocketAddr,
    /// PEM of the CA that signed the TLS endpoint's certificate.
    pub ca_pem: Option<PathBuf>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn module(name: &str) -> String {
    let path = format!("/usr/lib/nginx/modules/{name}");
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: apt-get install libnginx-mod-rtmp libnginx-mod-stream (scripts/test.sh does it)"
    );
    format!("load_module {path};\n")
}

impl Nginx {
    /// nginx-rtmp on a free port with application `live`; with `tls`, also an RTMPS endpoint.
    pub fn start(tls: bool) -> Nginx {
        lunora_testkit::require("nginx", "nginx").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let rtmp: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let stat: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut conf = module("ngx_rtmp_module.so");
        let mut rtmps = None;
        let mut ca_pem = None;
        if tls {
            conf.push_str(&module("ngx_stream_module.so"));
            let (ca, cert, key) = make_certs(dir.path());
            let port: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            conf.push_str(&format!(
                "stream {{ server {{ listen {port} ssl; ssl_certificate {}; ssl_certificate_key {}; proxy_pass {rtmp}; }} }}\n",
                cert.display(),
                key.display()
            ));
            rtmps = Some(port);
            ca_pem = Some(ca);
        }
        let p = dir.path().display();
        conf.push_str(&format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {p}/nginx.pid;\nerror_log {p}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen {rtmp}; chunk_size 4096; application live {{ live on; record off; }} }} }}\n\
             http {{ access_log off; client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};\n\
             server {{ listen {stat}; location /stat {{ rtmp_stat all; }} }} }}\n"
        ));
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let mut n = Nginx {
            child: None,
            dir,
            rtmp,
            rtmps,
            stat,
            ca_pem,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let child = Command::new("nginx")
            .arg("-p")
            .arg(self.dir.path())
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.rtmp).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("rtmp://{}/live", self.rtmp)
    }

    /// The RTMPS URL, by host name `localhost` so the certificate's name matches.
    pub fn rtmps_url(&self) -> Option<String> {
        self.rtmps
            .map(|a| format!("rtmps://localhost:{}/live", a.port()))
    }

    /// nginx-rtmp's statistics page (XML).
    pub async fn stat(&self) -> String {
        reqwest::get(format!("http://{}/stat", self.stat))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a `localhost` certificate signed by it, with openssl.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    lunora_testkit::require("openssl", "openssl").unwrap();
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.pem");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.pem");
    let ext = dir.join("ext.cnf");
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &PathBuf| p.display().to_string();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-days",
        "2",
        "-subj",
        "/CN=Lunora Test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "2",
        "-extfile",
        &s(&ext),
    ]);
    (ca, cert, key)
}
