//! Signed webhooks, following the Standard Webhooks specification (standardwebhooks.com).
//!
//! This module is pure: the event types, the secrets (`whsec_` + base64 of 32 random bytes), the
//! signature (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by the decoded
//! secret), which addresses an endpoint may not resolve to, and the retry schedule.
//! [`dispatcher`] is the background task that delivers what the store's webhook outbox holds
//! (`store::webhooks`, rows written in the transaction of the change they announce).

/// Most deliveries of one endpoint taken at once (each the next of its subject there); an
/// endpoint with any in flight is not offered more until they end.
pub const PER_ENDPOINT: usize = 4;

pub mod vet;

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use rand::Rng;

use crate::alloc::{EventKind, Millis, SeatState};

/// What a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    SeatGranted,
    SeatBlocked,
    SeatReleasing,
    SeatReleased,
    LicenseUpdated,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::SeatGranted,
        EventType::SeatBlocked,
        EventType::SeatReleasing,
        EventType::SeatReleased,
        EventType::LicenseUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SeatGranted => "seat.granted",
            EventType::SeatBlocked => "seat.blocked",
            EventType::SeatReleasing => "seat.releasing",
            EventType::SeatReleased => "seat.released",
            EventType::LicenseUpdated => "license.updated",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The type announcing a seat event (a promotion is a grant whose `previous` is `blocked`).
    pub fn of_seat(kind: EventKind) -> Option<EventType> {
        match kind {
            EventKind::Granted | EventKind::Promoted => Some(EventType::SeatGranted),
            EventKind::Blocked => Some(EventType::SeatBlocked),
            EventKind::Releasing => Some(EventType::SeatReleasing),
            EventKind::Released => Some(EventType::SeatReleased),
            // The seat stays granted: nothing changes for the product.
            EventKind::Held => None,
        }
    }

    /// The seat's state after an event of `kind`.
    pub fn state_after(kind: EventKind) -> &'static str {
        match kind {
            EventKind::Granted | EventKind::Promoted | EventKind::Held => {
                SeatState::Granted.as_str()
            }
            EventKind::Blocked => SeatState::Blocked.as_str(),
            EventKind::Releasing => SeatState::Releasing.as_str(),
            EventKind::Released => "none",
        }
    }
}

/// A subscription: a set of event types, as a bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u8);

impl Events {
    pub fn contains(self, t: EventType) -> bool {
        self.0 & Self::bit(t) != 0
    }

    fn bit(t: EventType) -> u8 {
        1 << EventType::ALL.iter().position(|x| *x == t).unwrap_or(0)
    }

    /// The types named in `names`; an empty list subscribes to every type.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Events, String> {
        if names.is_empty() {
            return Ok(Events::all());
        }
        let mut e = Events(0);
        for n in names {
            let t = EventType::parse(n.as_ref()).ok_or_else(|| {
                format!(
                    "unknown event type {:?}: one of {}",
                    n.as_ref(),
                    EventType::ALL.map(EventType::as_str).join(", ")
                )
            })?;
            e.0 |= Self::bit(t);
        }
        Ok(e)
    }

    pub fn all() -> Events {
        Events((1 << EventType::ALL.len()) - 1)
    }

    pub fn names(self) -> Vec<&'static str> {
        EventType::ALL
            .into_iter()
            .filter(|t| self.contains(*t))
            .map(EventType::as_str)
            .collect()
    }
}

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The signing key of a secret (the base64 after `whsec_`).
fn key_of(secret: &str) -> Option<Vec<u8>> {
    BASE64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// The `webhook-signature` header for a message: one `v1,<signature>` per secret, separated by
/// spaces (a rotated endpoint is signed with its new and, for a while, its previous secret).
pub fn signature(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| key_of(s))
        .map(|key| {
            // HMAC takes keys of any length.
            let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&key) {
                Ok(m) => m,
                Err(_) => return String::new(),
            };
            mac.update(msg_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an endpoint may not be reached at `ip` unless `webhook_allow_private_addresses`:
/// loopback, private, link-local (cloud metadata services live there), shared (CGNAT),
/// unspecified, multicast, broadcast, documentation or otherwise reserved addresses.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (where cloud metadata services answer)")
            } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("an unspecified address")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("a multicast, broadcast or reserved address")
            } else if v4.is_documentation() || (o[0] == 198 && (o[1] & 0xfe) == 18) {
                Some("a documentation or benchmarking address")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("an IETF protocol address")
            } else if o == [168, 63, 129, 16] {
                Some("a cloud platform's host address (Azure's wire server)")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("a private (unique local) address")
            } else if (s[0] & 0xffc0) == 0xfec0 {
                Some("a site-local address")
            } else if s[..6] == [0, 0, 0, 0, 0, 0] {
                // ::/96, IPv4-compatible: the last 32 bits are an IPv4 address.
                Some("an IPv4-compatible address")
            } else if s[0] == 0x2002 {
                // 6to4 embeds an IPv4 address in bits 16 to 48.
                let v4 = std::net::Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                );
                forbidden(IpAddr::V4(v4)).or(Some("a 6to4 address"))
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("a documentation address")
            } else if s[0] == 0x64 && s[1] == 0xff9b {
                // NAT64 embeds an IPv4 address in the last 32 bits.
                let v4 = std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                );
                forbidden(IpAddr::V4(v4))
            } else {
                None
            }
        }
    }
}

/// Checks an endpoint URL's form: absolute, `https` (or `http` when `allow_http`), with a host,
/// no fragment. Addresses are checked separately, after DNS ([`forbidden`]).
pub fn check_url(url: &str, allow_http: bool) -> Result<url::Url, String> {
    let u = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(
                "url: webhooks are delivered over https only (the operator can allow http with webhook_allow_http)"
                    .into(),
            )
        }
        s => return Err(format!("url: the scheme must be https, not {s:?}")),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("url: no host".into());
    }
    if u.fragment().is_some() {
        return Err("url: a fragment is never sent; remove it".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "url: credentials in the URL (user:password@) are refused; the signature authenticates each delivery".into(),
        );
    }
    if url.len() > 2048 {
        return Err("url: at most 2048 characters".into());
    }
    Ok(u)
}

/// The delay before attempt `attempts + 1` after a failure: 5 s, 30 s, 2 min, 10 min, 30 min,
/// 1 h, then every 2 h, ±10 % jitter.
pub fn backoff(attempts: i64) -> Millis {
    const STEPS: [Millis; 7] = [
        5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
    ];
    let base = STEPS[(attempts.max(1) as usize - 1).min(STEPS.len() - 1)];
    let jitter = rand::thread_rng().gen_range(-0.1..=0.1);
    base + (base as f64 * jitter) as Millis
}

/// A `Retry-After` header's delay in milliseconds (delta-seconds or an HTTP date), at most a day.
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Millis> {
    const DAY: Millis = 86_400_000;
    let v = value.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some((s.min(86_400) as Millis) * 1000);
    }
    let when = httpdate(v)?;
    let ms = when
        .duration_since(now)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0);
    Some(ms.min(DAY))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP dates take.
fn httpdate(v: &str) -> Option<std::time::SystemTime> {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let t = time::PrimitiveDateTime::parse(v, &f).ok()?.assume_utc();
    Some(
        std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(t.unix_timestamp().try_into().ok()?),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // The example of the Standard Webhooks specification.
        let sig = signature(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotated_endpoint_is_signed_with_both_secrets() {
        let a = new_secret();
        let b = new_secret();
        assert!(a.starts_with("whsec_") && a.len() == 6 + 44);
        let both = signature(&[&a, &b], "msg_1", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&[&a], "msg_1", 1, b"{}"));
        assert_eq!(parts[1], signature(&[&b], "msg_1", 1, b"{}"));
    }

    #[test]
    fn refuses_internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(forbidden(a.parse().unwrap()).is_some(), "{a}");
        }
        for a in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(forbidden(a.parse().unwrap()).is_none(), "{a}");
        }
    }

    #[test]
    fn urls_are_https_unless_allowed() {
        assert!(check_url("https://example.com/hook", false).is_ok());
        assert!(check_url("http://example.com/hook", false).is_err());
        assert!(check_url("http://example.com/hook", true).is_ok());
        assert!(check_url("ftp://example.com/hook", true).is_err());
        assert!(check_url("https://example.com/hook#x", false).is_err());
        assert!(check_url("not a url", true).is_err());
    }

    #[test]
    fn event_lists_parse_and_name() {
        assert_eq!(Events::parse::<&str>(&[]).unwrap(), Events::all());
        let e = Events::parse(&["seat.granted", "license.updated"]).unwrap();
        assert!(e.contains(EventType::SeatGranted) && !e.contains(EventType::SeatBlocked));
        assert_eq!(e.names(), ["seat.granted", "license.updated"]);
        assert!(Events::parse(&["seat.eaten"]).is_err());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(784111777);
        assert_eq!(retry_after("120", now), Some(120_000));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(10_000)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("999999999", now), Some(86_400_000));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!((4_500..=5_500).contains(&backoff(1)));
        assert!((6_480_000..=7_920_000).contains(&backoff(40)));
    }
}
