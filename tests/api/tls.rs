//! HTTPS on the main listener (`tls_cert_file` + `tls_key_file`): a real rustls handshake with a
//! certificate made for the test, SCIM and admin calls over it, plain HTTP refused, and the
//! configuration errors an operator can make.

use std::sync::Arc;

use reqwest::StatusCode;
use seatkeeper::app::Application;
use seatkeeper::config::Config;
use serde_json::{json, Value};

use crate::helpers::*;

struct Pki {
    dir: tempfile::TempDir,
    cert_der: rustls::pki_types::CertificateDer<'static>,
}

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
    Pki {
        dir,
        cert_der: ck.cert.der().clone(),
    }
}

/// One HTTP/1.1 request over a fresh TLS connection that trusts only `cert`: the status and
/// the body, or the handshake error.
async fn https(
    port: u16,
    cert: &rustls::pki_types::CertificateDer<'static>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> std::io::Result<(u16, String, Value)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Bodies here are small JSON answers, sent whole or as one chunk.
    let json = rest
        .find('{')
        .and_then(|i| rest[i..].rfind('}').map(|j| &rest[i..=i + j]))
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((status, head.to_ascii_lowercase(), json))
}

#[tokio::test]
async fn https_serves_scim_and_admin_and_refuses_plain_http() {
    let pki = pki();
    let mut config = config(&pki.dir.path().join("seatkeeper.db"));
    config.tls_cert_file = Some(pki.dir.path().join("cert.pem"));
    config.tls_key_file = Some(pki.dir.path().join("key.pem"));
    let app = Application::build(config).await.expect("starts with TLS");
    let port = app.port();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    let cert = &pki.cert_der;

    let (s, _, _) = https(port, cert, "GET", "/healthz", None, None)
        .await
        .unwrap();
    assert_eq!(s, 200);

    // The admin API and SCIM work as over plain HTTP.
    let (s, _, tenant) = https(
        port,
        cert,
        "POST",
        "/admin/v1/tenants",
        Some(ADMIN_TOKEN),
        Some(json!({"name": "secure"})),
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{tenant}");
    let path = format!(
        "/admin/v1/tenants/{}/tokens",
        tenant["id"].as_str().unwrap()
    );
    let (s, _, token) = https(port, cert, "POST", &path, Some(ADMIN_TOKEN), None)
        .await
        .unwrap();
    assert_eq!(s, 201, "{token}");
    let user = json!({"schemas": [USER_SCHEMA], "userName": "tls@example.com"});
    let (s, head, u) = https(
        port,
        cert,
        "POST",
        "/scim/v2/Users",
        token["token"].as_str(),
        Some(user),
    )
    .await
    .unwrap();
    assert_eq!((s, u["userName"].as_str()), (201, Some("tls@example.com")));
    // Security headers are there over TLS too.
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // A client that does not trust the certificate fails the handshake.
    let stranger = self::pki().cert_der;
    assert!(https(port, &stranger, "GET", "/healthz", None, None)
        .await
        .is_err());
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.unwrap().status() != StatusCode::OK,
        "plain HTTP must not be served on the TLS listener"
    );

    handle.stop(true).await;
    let _ = task.await;
}

#[tokio::test]
async fn tls_configuration_errors_name_the_key() {
    let pki = pki();
    let dir = pki.dir.path();
    // One half of the pair.
    let e = Config::load_from(None, |k| {
        (k == "SEATKEEPER_TLS_CERT_FILE").then(|| dir.join("cert.pem").display().to_string())
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tls_cert_file") && e.contains("tls_key_file"),
        "{e}"
    );

    // A key that is not a key, a missing certificate file, a key of another certificate.
    std::fs::write(dir.join("junk.pem"), "not a key").unwrap();
    let other = self::pki();
    for (cert, key, want) in [
        (dir.join("cert.pem"), dir.join("junk.pem"), "tls_key_file"),
        (
            dir.join("missing.pem"),
            dir.join("key.pem"),
            "tls_cert_file",
        ),
        (
            dir.join("cert.pem"),
            other.dir.path().join("key.pem"),
            "does not fit",
        ),
    ] {
        let mut config = config(&dir.join("seatkeeper.db"));
        config.tls_cert_file = Some(cert);
        config.tls_key_file = Some(key);
        let e = match Application::build(config).await {
            Ok(_) => panic!("started with a bad TLS configuration"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{e}");
    }
}
