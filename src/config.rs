//! One typed [`Config`], read from embedded defaults, then an optional TOML file, then
//! `SEATKEEPER_*` environment variables (each key `some_key` as `SEATKEEPER_SOME_KEY`), and
//! validated before anything starts. A bad value stops start-up with a message naming the key.
//! `deploy/seatkeeper.example.toml` documents every key.
//!
//! (Over 700 lines with its unit tests; the code is under 600: one struct of every key, its
//! defaults and its checks, kept together so that a key is added in one place.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown config key `{0}` (see deploy/seatkeeper.example.toml)")]
    UnknownKey(String),
    #[error("invalid value for `{key}` ({source_name}): {message}")]
    Invalid {
        key: &'static str,
        source_name: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// The database: a SQLite file's path, or a `postgres://` / `postgresql://` URL (its
    /// password better in `database_password_file`).
    pub database: PathBuf,
    /// Bearer token of the admin API; `None` turns the admin API off.
    pub admin_token: Option<Secret>,
    /// The external base URL clients reach the daemon at (for `meta.location`); derived from each
    /// request's Host header when unset.
    pub public_url: Option<String>,
    pub log_level: String,
    pub log_format: LogFormat,
    /// HTTP worker threads.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest page a list returns (and the default page size).
    pub max_results: usize,
    /// Seconds between two reconciler passes over every tenant.
    pub reconcile_interval_seconds: u64,
    /// Sustained SCIM requests per second per tenant (0: unlimited); bursts up to `scim_burst`.
    pub scim_requests_per_second: u32,
    pub scim_burst: u32,
    /// Failed authentications per minute per client address before that address is refused
    /// (429) for a while (0: unlimited).
    pub auth_failures_per_minute: u32,
    /// Admin API requests per second per admin token (the operator's, each tenant admin
    /// token's own bucket; 0: unlimited).
    pub admin_requests_per_second: u32,
    /// Requests per second per client address for requests without a credential, on every
    /// route but health (0: unlimited); bursts up to twice that. Credentialed requests are
    /// limited by their tenant or admin token (see `http::limits`).
    pub client_requests_per_second: u32,
    /// Bearer token `/metrics` asks for. Unset: `metrics_listen` serves metrics openly (bind it
    /// to loopback or the monitoring network) and the main listener asks for the operator's
    /// admin token.
    pub metrics_token: Option<Secret>,
    /// A second listener for `/metrics`, `/healthz` and `/readyz` (metrics then leave the main one).
    pub metrics_listen: Option<SocketAddr>,
    /// Certificate chain (PEM) for HTTPS on `listen`; with `tls_key_file`. Unset: plain HTTP
    /// (run behind a TLS-terminating reverse proxy).
    pub tls_cert_file: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Whether the admin API answers clients other than loopback (default: loopback only).
    pub admin_remote: bool,
    /// Most open connections per worker.
    pub max_connections: usize,
    /// Header holding the client address when behind a reverse proxy (e.g. X-Forwarded-For);
    /// unset: the TCP peer address. Read only from a peer in `trusted_proxies`.
    pub client_ip_header: Option<String>,
    /// Proxies whose `client_ip_header` is believed (addresses or CIDR ranges; default
    /// loopback, the documented same-host proxy). The client is the right-most address in
    /// the header that is not a trusted proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// SMTP server in lettre's URL form (`smtp://user:pass@host:587?tls=required`,
    /// `smtps://host:465`, `smtp://host:25`); unset: mail goes to the log and the `mail/` folder
    /// beside the database.
    pub smtp_url: Option<Secret>,
    /// Extra root certificate (PEM) trusted for the SMTP server's TLS, e.g. a private CA.
    pub smtp_ca_file: Option<PathBuf>,
    /// Where mail goes without `smtp_url`; unset: `mail/` beside the SQLite database, or in the
    /// working directory with PostgreSQL.
    pub mail_dir: Option<PathBuf>,
    /// The From of notification emails.
    pub mail_from: String,
    /// Events of one kind for one tenant are collected this long into one email.
    pub digest_window_seconds: u64,
    /// This many failing SCIM requests of one tenant within `scim_failure_window_seconds`
    /// notify its admins (0: never).
    pub scim_failure_threshold: u32,
    pub scim_failure_window_seconds: u64,
    /// What a PATCH of a Group answers without `attributes`/`excludedAttributes`.
    pub group_patch_response: GroupPatchResponse,
    /// The operator's copies of chosen kinds of email, across tenants (with ids and admin API
    /// and CLI hints). Empty: none.
    pub operator_notify: Vec<crate::notify::Recipient>,
    /// Webhook endpoints may be plain `http://` URLs (tests, a trusted network). Default false.
    pub webhook_allow_http: bool,
    /// Webhook endpoints may resolve to loopback, private, link-local or metadata addresses.
    /// Default false: such URLs are refused at registration and again at delivery, after DNS.
    pub webhook_allow_private_addresses: bool,
    /// One webhook attempt (connect, send, answer) may take this long.
    pub webhook_timeout_seconds: u64,
    /// An endpoint failing for this long (since its last success) is disabled and the tenant's
    /// recipients are told.
    pub webhook_disable_after_seconds: u64,
    /// Most webhook endpoints one tenant may register (400 past it).
    pub webhook_max_endpoints_per_tenant: u32,
    /// A proxy every webhook goes through (`http://host:port`). Unset: none; the environment's
    /// proxy variables are never used. The proxy resolves endpoint names, so the internal
    /// address guard does not see what they resolve to: the proxy must refuse internal
    /// addresses itself.
    pub webhook_proxy: Option<Secret>,
    /// Product API requests per second per product token (0: unlimited); bursts up to twice
    /// that. A batch of N checks or usage events counts N.
    pub product_requests_per_second: u32,
    /// A file holding the PostgreSQL password, so that it stays out of the `database` URL (and
    /// so out of process listings and logs). libpq's `PGPASSWORD` and `PGPASSFILE` (or
    /// `~/.pgpass`) are read too when neither the URL nor this gives one.
    pub database_password_file: Option<PathBuf>,
    /// A file holding a secret key (at least 32 bytes) for the audit log: entries are then
    /// chained with HMAC-SHA-256 under it, so that someone who can write the database but not
    /// read this file cannot recompute the chain.
    pub audit_key_file: Option<PathBuf>,
    /// A closed (offboarded) tenant's data is kept this many days, during which it can be
    /// exported and reopened, then purged.
    pub tenant_retention_days: u32,
    /// Seat events are kept this many days (0: forever).
    pub seat_events_retention_days: u32,
    /// Finished webhook deliveries (and events no delivery needs) are kept this many days.
    pub webhook_retention_days: u32,
    /// Finished notification emails are kept this many days (failed ones stay until retried or
    /// dismissed).
    pub mail_retention_days: u32,
    /// Audit entries are kept this many days (0, the default: forever); an entry is pruned only
    /// once a whole export of its chain (`audit export`, or the audit API's `format=jsonl`
    /// without filters) has held it.
    pub audit_retention_days: u32,
}

impl Config {
    /// The database to open: `database`, with the password of `database_password_file` put in
    /// a PostgreSQL URL that has none (in memory only; [`Config::database_shown`] is what logs
    /// and messages print).
    pub fn database_to_open(&self) -> Result<PathBuf, Error> {
        let (Some(file), Some(url)) = (
            &self.database_password_file,
            self.database
                .to_str()
                .filter(|u| crate::store::engine::address::is_url(u)),
        ) else {
            return Ok(self.database.clone());
        };
        let password = std::fs::read_to_string(file).map_err(|e| Error::Invalid {
            key: "database_password_file",
            source_name: file.display().to_string(),
            message: format!("cannot read it: {}", e.kind()),
        })?;
        let password = password.trim_end_matches(['\r', '\n']);
        let mut u = url::Url::parse(url).map_err(|_| Error::Invalid {
            key: "database",
            source_name: "the configuration".into(),
            message: "not a PostgreSQL URL".into(),
        })?;
        if u.password().is_none() {
            let _ = u.set_password(Some(password));
        }
        Ok(PathBuf::from(u.to_string()))
    }

    /// `database` as logs, errors and the CLI show it: never a password.
    pub fn database_shown(&self) -> String {
        crate::store::engine::address::shown(&self.database)
    }
}

/// RFC 7644 §3.5.2 lets a PATCH answer 200 with the whole resource or 204 No Content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPatchResponse {
    /// 200 with the whole group while it has at most [`GROUP_PATCH_RESOURCE_MAX`] members,
    /// 204 above: small groups read back what they wrote (as conformance checkers expect),
    /// and a member change to a large group costs the size of the change, not of the group.
    Auto,
    /// Always 200 with the whole group.
    Resource,
    /// Always 204 (what Entra's and Okta's documentation show).
    NoContent,
}

/// Largest member list a Group PATCH answers with under [`GroupPatchResponse::Auto`].
pub const GROUP_PATCH_RESOURCE_MAX: usize = 1000;

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database: PathBuf::from("seatkeeper.db"),
            admin_token: None,
            public_url: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_body_bytes: 4 * 1024 * 1024,
            max_results: 1000,
            reconcile_interval_seconds: 300,
            scim_requests_per_second: 200,
            scim_burst: 2000,
            auth_failures_per_minute: 60,
            admin_requests_per_second: 100,
            client_requests_per_second: 1000,
            metrics_token: None,
            client_ip_header: None,
            trusted_proxies: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                    std::net::Ipv4Addr::new(127, 0, 0, 0),
                    8,
                )),
                ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
                    std::net::Ipv6Addr::LOCALHOST,
                    128,
                )),
            ],
            max_connections: 10_000,
            admin_remote: false,
            metrics_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            smtp_url: None,
            smtp_ca_file: None,
            mail_dir: None,
            mail_from: "seatkeeper <seatkeeper@localhost>".into(),
            digest_window_seconds: 300,
            scim_failure_threshold: 20,
            scim_failure_window_seconds: 600,
            group_patch_response: GroupPatchResponse::Auto,
            operator_notify: Vec::new(),
            webhook_allow_http: false,
            webhook_allow_private_addresses: false,
            webhook_timeout_seconds: 15,
            webhook_disable_after_seconds: 5 * 86_400,
            webhook_max_endpoints_per_tenant: 10,
            webhook_proxy: None,
            product_requests_per_second: 1000,
            database_password_file: None,
            audit_key_file: None,
            tenant_retention_days: 30,
            seat_events_retention_days: 180,
            webhook_retention_days: 180,
            mail_retention_days: 90,
            audit_retention_days: 0,
        }
    }
}

/// Every key, for the unknown-key check and the environment overlay.
pub const KEYS: &[&str] = &[
    "listen",
    "database",
    "admin_token",
    "admin_token_file",
    "public_url",
    "log_level",
    "log_format",
    "workers",
    "max_body_bytes",
    "max_results",
    "reconcile_interval_seconds",
    "scim_requests_per_second",
    "scim_burst",
    "auth_failures_per_minute",
    "admin_requests_per_second",
    "client_requests_per_second",
    "metrics_token",
    "client_ip_header",
    "trusted_proxies",
    "max_connections",
    "admin_remote",
    "metrics_listen",
    "tls_cert_file",
    "tls_key_file",
    "smtp_url",
    "smtp_ca_file",
    "mail_dir",
    "mail_from",
    "digest_window_seconds",
    "scim_failure_threshold",
    "scim_failure_window_seconds",
    "group_patch_response",
    "operator_notify",
    "webhook_allow_http",
    "webhook_allow_private_addresses",
    "webhook_timeout_seconds",
    "webhook_disable_after_seconds",
    "webhook_max_endpoints_per_tenant",
    "webhook_proxy",
    "product_requests_per_second",
    "database_password_file",
    "audit_key_file",
    "tenant_retention_days",
    "seat_events_retention_days",
    "webhook_retention_days",
    "mail_retention_days",
    "audit_retention_days",
];

/// A raw value and where it came from.
struct Raw {
    value: toml::Value,
    source: String,
}

impl Raw {
    fn text(&self) -> Option<String> {
        match &self.value {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Boolean(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

fn env_name(key: &str) -> String {
    format!("SEATKEEPER_{}", key.to_ascii_uppercase())
}

impl Config {
    /// Loads the configuration: defaults, then `file`, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, Error> {
        Self::load_from(file, |k| std::env::var(k).ok())
    }

    /// As [`Config::load`], with the environment given as a lookup function (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let mut raw: std::collections::BTreeMap<&'static str, Raw> = Default::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.into(),
                source,
            })?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| Error::Syntax {
                path: path.into(),
                message: e.message().to_owned(),
            })?;
            for (k, v) in table {
                let key = KEYS
                    .iter()
                    .find(|known| **known == k)
                    .ok_or_else(|| Error::UnknownKey(k.clone()))?;
                raw.insert(
                    key,
                    Raw {
                        value: v,
                        source: format!("in {}", path.display()),
                    },
                );
            }
        }
        for key in KEYS {
            let name = env_name(key);
            if let Some(v) = env(&name) {
                raw.insert(
                    key,
                    Raw {
                        value: toml::Value::String(v),
                        source: name,
                    },
                );
            }
        }
        let mut c = Config::default();
        let invalid = |key: &'static str, r: &Raw, message: &str| Error::Invalid {
            key,
            source_name: r.source.clone(),
            message: message.to_owned(),
        };
        let text = |key: &'static str, r: &Raw| {
            r.text().ok_or_else(|| invalid(key, r, "expected a string"))
        };
        let number = |key: &'static str, r: &Raw, min: usize, max: usize| -> Result<usize, Error> {
            let t = text(key, r)?;
            let n: usize = t
                .trim()
                .parse()
                .map_err(|_| invalid(key, r, &format!("{t:?} is not a whole number")))?;
            if n < min || n > max {
                return Err(invalid(key, r, &format!("{n} is outside {min}..={max}")));
            }
            Ok(n)
        };
        let flag = |key: &'static str, r: &Raw| -> Result<bool, Error> {
            match text(key, r)?.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                other => Err(invalid(key, r, &format!("{other:?} is not true or false"))),
            }
        };
        for (key, r) in &raw {
            match *key {
                "listen" => {
                    let t = text(key, r)?;
                    c.listen = t.trim().parse().map_err(|_| {
                        invalid(
                            key,
                            r,
                            &format!("{t:?} is not an address such as 127.0.0.1:8080"),
                        )
                    })?;
                }
                "database" => {
                    let t = text(key, r)?;
                    if t.trim().is_empty() {
                        return Err(invalid(key, r, "must not be empty"));
                    }
                    c.database = PathBuf::from(t);
                }
                "admin_token" => {
                    let t = text(key, r)?;
                    c.admin_token = Some(Secret(
                        check_admin_token(&t).map_err(|m| invalid(key, r, m))?,
                    ));
                }
                "admin_token_file" => {
                    if raw.contains_key("admin_token") {
                        continue; // an explicit token wins over a file
                    }
                    let t = text(key, r)?;
                    let content = std::fs::read_to_string(&t)
                        .map_err(|e| invalid(key, r, &format!("cannot read {t}: {e}")))?;
                    c.admin_token = Some(Secret(
                        check_admin_token(content.trim()).map_err(|m| invalid(key, r, m))?,
                    ));
                }
                "public_url" => {
                    let t = text(key, r)?.trim().trim_end_matches('/').to_owned();
                    if !(t.starts_with("http://") || t.starts_with("https://")) {
                        return Err(invalid(key, r, "must start with http:// or https://"));
                    }
                    c.public_url = Some(t);
                }
                "log_level" => {
                    let t = text(key, r)?;
                    tracing_subscriber::EnvFilter::try_new(&t)
                        .map_err(|e| invalid(key, r, &e.to_string()))?;
                    c.log_level = t;
                }
                "log_format" => {
                    c.log_format = match text(key, r)?.to_ascii_lowercase().as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => return Err(invalid(key, r, "must be \"text\" or \"json\"")),
                    }
                }
                "workers" => c.workers = number(key, r, 1, 256)?,
                "max_body_bytes" => c.max_body_bytes = number(key, r, 1024, 256 * 1024 * 1024)?,
                "max_results" => c.max_results = number(key, r, 1, 100_000)?,
                "reconcile_interval_seconds" => {
                    c.reconcile_interval_seconds = number(key, r, 1, 86_400)? as u64
                }
                "scim_requests_per_second" => {
                    c.scim_requests_per_second = number(key, r, 0, 1_000_000)? as u32
                }
                "scim_burst" => c.scim_burst = number(key, r, 1, 10_000_000)? as u32,
                "auth_failures_per_minute" => {
                    c.auth_failures_per_minute = number(key, r, 0, 1_000_000)? as u32
                }
                "admin_requests_per_second" => {
                    c.admin_requests_per_second = number(key, r, 0, 1_000_000)? as u32
                }
                "client_requests_per_second" => {
                    c.client_requests_per_second = number(key, r, 0, 1_000_000)? as u32
                }
                "metrics_token" => {
                    let t = text(key, r)?;
                    c.metrics_token = Some(Secret(
                        check_admin_token(t.trim()).map_err(|m| invalid(key, r, m))?,
                    ));
                }
                "operator_notify" => {
                    let entries: Vec<crate::notify::Recipient> = match &r.value {
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|v| match v {
                                toml::Value::String(s) => crate::notify::Recipient::parse_line(s)
                                    .map_err(|e| invalid(key, r, &e)),
                                other => other
                                    .clone()
                                    .try_into()
                                    .map_err(|e| invalid(key, r, &e.to_string())),
                            })
                            .collect::<Result<_, _>>()?,
                        _ => text(key, r)?
                            .split(';')
                            .map(str::trim)
                            .filter(|e| !e.is_empty())
                            .map(|e| {
                                crate::notify::Recipient::parse_line(e)
                                    .map_err(|m| invalid(key, r, &m))
                            })
                            .collect::<Result<_, _>>()?,
                    };
                    crate::store::check_recipients(&entries)
                        .map_err(|e| invalid(key, r, &e.to_string()))?;
                    c.operator_notify = entries;
                }
                "trusted_proxies" => {
                    let items: Vec<String> = match &r.value {
                        toml::Value::Array(a) => a
                            .iter()
                            .map(|v| v.as_str().map(str::to_owned))
                            .collect::<Option<_>>()
                            .ok_or_else(|| invalid(key, r, "expected a list of strings"))?,
                        _ => text(key, r)?.split(',').map(str::to_owned).collect(),
                    };
                    c.trusted_proxies = items
                        .iter()
                        .map(|i| i.trim())
                        .filter(|i| !i.is_empty())
                        .map(|i| {
                            i.parse::<ipnet::IpNet>()
                                .or_else(|_| i.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                                .map_err(|_| {
                                    invalid(
                                        key,
                                        r,
                                        &format!("{i:?} is not an address or a CIDR range such as 10.0.0.0/8"),
                                    )
                                })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "max_connections" => c.max_connections = number(key, r, 1, 1_000_000)?,
                "metrics_listen" => {
                    let t = text(key, r)?;
                    c.metrics_listen = Some(t.trim().parse().map_err(|_| {
                        invalid(
                            key,
                            r,
                            &format!("{t:?} is not an address such as 127.0.0.1:9090"),
                        )
                    })?);
                }
                "admin_remote" => c.admin_remote = flag(key, r)?,
                "webhook_allow_http" => c.webhook_allow_http = flag(key, r)?,
                "webhook_allow_private_addresses" => {
                    c.webhook_allow_private_addresses = flag(key, r)?
                }
                "webhook_timeout_seconds" => {
                    // Below half the delivery lease (two minutes), so that a slow send is never
                    // taken again by another node while it is in flight.
                    c.webhook_timeout_seconds = number(key, r, 1, 55)? as u64
                }
                "webhook_max_endpoints_per_tenant" => {
                    c.webhook_max_endpoints_per_tenant = number(key, r, 1, 10_000)? as u32
                }
                "webhook_proxy" => {
                    let t = text(key, r)?.trim().to_owned();
                    if reqwest::Proxy::all(&t).is_err() || !t.contains("://") {
                        return Err(invalid(
                            key,
                            r,
                            "must be a proxy URL such as http://proxy:3128",
                        ));
                    }
                    c.webhook_proxy = Some(Secret(t));
                }
                "product_requests_per_second" => {
                    c.product_requests_per_second = number(key, r, 0, 1_000_000)? as u32
                }
                "seat_events_retention_days" => {
                    c.seat_events_retention_days = number(key, r, 0, 36_500)? as u32
                }
                "webhook_retention_days" => {
                    c.webhook_retention_days = number(key, r, 0, 36_500)? as u32
                }
                "mail_retention_days" => c.mail_retention_days = number(key, r, 0, 36_500)? as u32,
                "audit_retention_days" => {
                    c.audit_retention_days = number(key, r, 0, 36_500)? as u32
                }
                "tenant_retention_days" => {
                    c.tenant_retention_days = number(key, r, 0, 3650)? as u32
                }
                "database_password_file" => {
                    c.database_password_file = Some(PathBuf::from(text(key, r)?.trim()))
                }
                "audit_key_file" => {
                    let t = PathBuf::from(text(key, r)?.trim());
                    let key_bytes = std::fs::read(&t).map_err(|e| {
                        invalid(
                            key,
                            r,
                            &format!("cannot read {}: {}", t.display(), e.kind()),
                        )
                    })?;
                    if key_bytes.trim_ascii().len() < 32 {
                        return Err(invalid(key, r, "the key must be at least 32 bytes"));
                    }
                    c.audit_key_file = Some(t);
                }
                "webhook_disable_after_seconds" => {
                    c.webhook_disable_after_seconds = number(key, r, 60, 365 * 86_400)? as u64
                }
                "smtp_url" => {
                    let t = text(key, r)?.trim().to_owned();
                    if !(t.starts_with("smtp://") || t.starts_with("smtps://")) {
                        return Err(invalid(
                            key,
                            r,
                            "must be an smtp:// or smtps:// URL, e.g. smtp://user:pass@mail.example.com:587?tls=required",
                        ));
                    }
                    c.smtp_url = Some(Secret(t));
                }
                "tls_cert_file" => c.tls_cert_file = Some(PathBuf::from(text(key, r)?.trim())),
                "tls_key_file" => c.tls_key_file = Some(PathBuf::from(text(key, r)?.trim())),
                "smtp_ca_file" => c.smtp_ca_file = Some(PathBuf::from(text(key, r)?.trim())),
                "mail_dir" => c.mail_dir = Some(PathBuf::from(text(key, r)?.trim())),
                "mail_from" => {
                    let t = text(key, r)?.trim().to_owned();
                    if t.parse::<lettre::message::Mailbox>().is_err() {
                        return Err(invalid(
                            key,
                            r,
                            &format!("{t:?} is not an address such as \"seatkeeper <licensing@example.com>\""),
                        ));
                    }
                    c.mail_from = t;
                }
                "digest_window_seconds" => {
                    c.digest_window_seconds = number(key, r, 0, 86_400)? as u64
                }
                "scim_failure_threshold" => {
                    c.scim_failure_threshold = number(key, r, 0, 1_000_000)? as u32
                }
                "scim_failure_window_seconds" => {
                    c.scim_failure_window_seconds = number(key, r, 1, 86_400)? as u64
                }
                "group_patch_response" => {
                    c.group_patch_response = match text(key, r)?.trim() {
                        "auto" => GroupPatchResponse::Auto,
                        "resource" => GroupPatchResponse::Resource,
                        "no_content" => GroupPatchResponse::NoContent,
                        other => {
                            return Err(invalid(
                                key,
                                r,
                                &format!(
                                    "{other:?} is not \"auto\", \"resource\" or \"no_content\""
                                ),
                            ))
                        }
                    }
                }
                "client_ip_header" => {
                    let t = text(key, r)?.trim().to_owned();
                    if t.is_empty() || !t.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
                    {
                        return Err(invalid(
                            key,
                            r,
                            "must be an HTTP header name such as X-Forwarded-For",
                        ));
                    }
                    c.client_ip_header = Some(t);
                }
                _ => {}
            }
        }
        if c.tls_cert_file.is_some() != c.tls_key_file.is_some() {
            let (key, other) = if c.tls_cert_file.is_some() {
                ("tls_cert_file", "tls_key_file")
            } else {
                ("tls_key_file", "tls_cert_file")
            };
            return Err(Error::Invalid {
                key,
                source_name: raw[key].source.clone(),
                message: format!("HTTPS needs `{other}` too"),
            });
        }
        Ok(c)
    }
}

fn check_admin_token(t: &str) -> Result<String, &'static str> {
    if t.len() < 16 {
        return Err("the admin token must be at least 16 characters");
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the admin token must not contain spaces or control characters");
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |k| pairs.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = Config::load_from(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database, PathBuf::from("seatkeeper.db"));
        assert!(c.admin_token.is_none());
        assert!(c
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&std::net::IpAddr::from([127, 0, 0, 1]))));
    }

    #[test]
    fn trusted_proxies_take_a_list_or_commas() {
        let c = Config::load_from(
            None,
            env(&[("SEATKEEPER_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")]),
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(c.trusted_proxies[1].contains(&std::net::IpAddr::from([192, 0, 2, 7])));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "trusted_proxies = []\n").unwrap();
        assert!(Config::load_from(Some(&f), env(&[]))
            .unwrap()
            .trusted_proxies
            .is_empty());
        let e = Config::load_from(None, env(&[("SEATKEEPER_TRUSTED_PROXIES", "10.0.0.0/33")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`trusted_proxies`"), "{e}");
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "listen = \"0.0.0.0:9000\"\nmax_results = 50\ndatabase = \"/tmp/x.db\"\n",
        )
        .unwrap();
        let c =
            Config::load_from(Some(&f), env(&[("SEATKEEPER_LISTEN", "127.0.0.1:7000")])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.max_results, 50);
        assert_eq!(c.database, PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::load_from(None, env(&[("SEATKEEPER_LISTEN", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`listen`") && e.contains("SEATKEEPER_LISTEN"),
            "{e}"
        );
        let e = Config::load_from(None, env(&[("SEATKEEPER_ADMIN_TOKEN", "short")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`admin_token`"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "lisen = \"x\"\n").unwrap();
        assert!(Config::load_from(Some(&f), env(&[]))
            .unwrap_err()
            .to_string()
            .contains("`lisen`"));
        std::fs::write(&f, "workers = 0\n").unwrap();
        assert!(Config::load_from(Some(&f), env(&[]))
            .unwrap_err()
            .to_string()
            .contains("`workers`"));
    }

    /// The example file documents every key, and the keys it sets are known ones.
    #[test]
    fn the_example_file_documents_every_key() {
        let text = include_str!("../deploy/seatkeeper.example.toml");
        for key in KEYS {
            assert!(
                text.contains(key),
                "deploy/seatkeeper.example.toml lacks {key}"
            );
        }
        let parsed: toml::Table = text.parse().unwrap();
        for key in parsed.keys() {
            assert!(
                KEYS.contains(&key.as_str()),
                "unknown key {key} in the example"
            );
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::load_from(
            None,
            env(&[("SEATKEEPER_ADMIN_TOKEN", "0123456789abcdef0123")]),
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn mail_settings_are_checked_and_the_smtp_url_never_prints() {
        let c = Config::load_from(
            None,
            env(&[
                (
                    "SEATKEEPER_SMTP_URL",
                    "smtp://user:hunter2@mail.example.com:587?tls=required",
                ),
                ("SEATKEEPER_MAIL_FROM", "Licensing <licensing@example.com>"),
                ("SEATKEEPER_DIGEST_WINDOW_SECONDS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.digest_window_seconds, 60);
        assert!(!format!("{c:?}").contains("hunter2"));
        for (key, value) in [
            ("SEATKEEPER_SMTP_URL", "http://mail.example.com"),
            ("SEATKEEPER_MAIL_FROM", "not an address"),
            ("SEATKEEPER_DIGEST_WINDOW_SECONDS", "-1"),
            ("SEATKEEPER_SCIM_FAILURE_WINDOW_SECONDS", "0"),
        ] {
            let e = Config::load_from(None, env(&[(key, value)])).unwrap_err();
            let name = key.trim_start_matches("SEATKEEPER_").to_ascii_lowercase();
            assert!(e.to_string().contains(&name), "{e}");
        }
    }
}
