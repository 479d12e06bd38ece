//! A real webhook receiver for the tests: `tests/webhooks/receiver.py` on a free local port,
//! verifying every delivery with the Standard Webhooks reference library (`standardwebhooks`
//! from PyPI, in a virtualenv under target/) and recording what it got.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

pub struct Receiver {
    pub port: u16,
    child: Child,
    client: reqwest::Client,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (port, child) = tokio::task::spawn_blocking(|| {
            let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks");
            let python = super::python::venv("webhooks-venv", &here.join("requirements.txt"));
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new(python)
                .arg(here.join("receiver.py"))
                .arg(port.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the webhook receiver starts");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready", "the webhook receiver did not start");
            (port, child)
        })
        .await
        .unwrap();
        Receiver {
            port,
            child,
            client: reqwest::Client::new(),
        }
    }

    /// The URL of endpoint `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sets what the receiver knows and answers (merged into its settings).
    pub async fn control(&self, settings: Value) {
        let r = self
            .client
            .post(self.url("/_control"))
            .json(&settings)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }

    /// Verifies deliveries to `path` with `secrets` (a rotated endpoint signs with several).
    pub async fn trust(&self, path: &str, secrets: &[&str]) {
        self.control(json!({"secrets": {path: secrets}})).await;
    }

    /// Every delivery so far, in the order received.
    pub async fn received(&self) -> Vec<Value> {
        self.client
            .get(self.url("/_received"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
