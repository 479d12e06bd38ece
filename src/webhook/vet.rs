//! Where a webhook may go: a URL is vetted at registration (https unless allowed, no internal
//! address after DNS), and the delivery client resolves names through [`GuardedResolver`], which
//! drops loopback, private, link-local and metadata addresses (unless
//! `webhook_allow_private_addresses`), so the check holds at delivery time too.

use std::net::{IpAddr, SocketAddr};

use super::{check_url, forbidden};

/// How long connecting to an endpoint may take (vetting and delivery).
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What the operator allows endpoints to be.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// `webhook_allow_http`.
    pub allow_http: bool,
    /// `webhook_allow_private_addresses`.
    pub allow_private: bool,
}

impl Policy {
    /// The operator's settings (`webhook_allow_http`, `webhook_allow_private_addresses`).
    pub fn of(config: &crate::config::Config) -> Policy {
        Policy {
            allow_http: config.webhook_allow_http,
            allow_private: config.webhook_allow_private_addresses,
        }
    }
}

/// Why an endpoint URL is refused at registration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks an endpoint URL before it is registered: its form ([`check_url`]), and every address
/// its host resolves to now ([`forbidden`]).
pub async fn vet(url: &str, policy: Policy) -> Result<(), Refused> {
    let u = check_url(url, policy.allow_http).map_err(Refused)?;
    if policy.allow_private {
        return Ok(());
    }
    let port = u.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match u.host() {
        Some(url::Host::Ipv4(a)) => vec![IpAddr::V4(a)],
        Some(url::Host::Ipv6(a)) => vec![IpAddr::V6(a)],
        Some(url::Host::Domain(d)) => {
            let lookup = tokio::net::lookup_host((d, port));
            // Neither the resolver's text nor an address is told: what an internal name
            // resolves to is not for a tenant to learn.
            match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                Ok(Ok(it)) => it.map(|s| s.ip()).collect(),
                Ok(Err(_)) | Err(_) => {
                    return Err(Refused("url: the host cannot be resolved".into()))
                }
            }
        }
        None => return Err(Refused("url: no host".into())),
    };
    if addrs.is_empty() {
        return Err(Refused("url: the host cannot be resolved".into()));
    }
    if addrs.into_iter().any(|a| forbidden(a).is_some()) {
        return Err(Refused(INTERNAL.into()));
    }
    Ok(())
}

/// What a tenant is told of an endpoint whose host is internal (never the address).
const INTERNAL: &str = "url: the host resolves to an internal address; webhooks are not sent to internal addresses (the operator can allow them with webhook_allow_private_addresses)";

/// The error of a name that resolved only to forbidden addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ForbiddenAddress(String);

/// Resolves names with the system resolver and keeps only addresses an endpoint may have.
pub(crate) struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| forbidden(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = if all.is_empty() {
                    "refused: the host cannot be resolved"
                } else {
                    "refused: the host resolves to an internal address"
                };
                return Err(Box::new(ForbiddenAddress(why.to_owned()))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal in `e`'s chain of causes, if an address check refused the connection.
pub(crate) fn refusal(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(f) = err.downcast_ref::<ForbiddenAddress>() {
            return Some(f.0.clone());
        }
        cur = err.source();
    }
    None
}
