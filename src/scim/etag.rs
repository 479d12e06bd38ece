//! Resource versions as entity tags (RFC 7644 §3.14): `W/"<version>"`, and the preconditions
//! `If-Match` (a write goes ahead only on the version the client read) and `If-None-Match`
//! (a read answers 304 when the client has the version).

/// The weak entity tag of a version.
pub fn of(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// True when an `If-Match` or `If-None-Match` header value names `version`: `*`, or a list of
/// (weak or strong) entity tags one of which names it.
pub fn matches(header: &str, version: i64) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == version.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_matches_star_or_a_listed_tag_weak_or_strong() {
        assert!(matches("*", 7));
        assert!(matches(&of(7), 7));
        assert!(matches("\"7\"", 7));
        assert!(matches("W/\"3\", W/\"7\"", 7));
        assert!(!matches("W/\"3\"", 7));
        assert!(!matches("W/\"70\"", 7));
        assert!(!matches("", 7));
    }
}
