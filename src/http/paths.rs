//! Forgiving request paths, rewritten to their canonical form before routing.
//!
//! Identity providers' admins paste Tenant URLs with a trailing slash (Microsoft's own docs show
//! `https://api.contoso.com/scim/v2/`), so clients send `/scim/v2/Users/`, `/scim/v2//Users`, and
//! some route case-insensitively and send `/scim/v2/users`. Under `/scim/v2` empty segments (a
//! trailing slash, repeated slashes) are dropped and endpoint names (`Users`, `Groups`, `Bulk`,
//! `.search`, `ServiceProviderConfig`, `ResourceTypes`, `Schemas`, and `.search` after `Users` or
//! `Groups`) are matched case-insensitively; resource ids stay exactly as sent. Under `/admin/v1`
//! and `/product/v1` only trailing slashes go: an empty segment in the middle could name an empty
//! path parameter, and dropping it would change which resource is meant.
//!
//! Pure: [`canonical`] maps a path to its canonical form; the middleware in `http::app` applies
//! it to the request's URI (query string kept), so handlers, `meta.location` and metrics only
//! ever see canonical paths.

/// SCIM endpoint names as routed, matched case-insensitively in the first segment after `/scim/v2`.
const SCIM_ENDPOINTS: [&str; 7] = [
    "Users",
    "Groups",
    "Bulk",
    ".search",
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
];

/// Prefixes whose paths only lose trailing slashes.
const TRIMMED: [&str; 2] = ["/admin/v1/", "/product/v1/"];

/// The canonical form of `path`, or `None` when it is canonical already (the common case).
pub fn canonical(path: &str) -> Option<String> {
    if let Some(p) = scim(path) {
        return (p != path).then_some(p);
    }
    if TRIMMED.iter().any(|t| path.starts_with(t)) && path.ends_with('/') {
        return Some(path.trim_end_matches('/').to_owned());
    }
    None
}

/// The canonical SCIM path, when `path` is under `/scim/v2` (in any case, with any slashes).
fn scim(path: &str) -> Option<String> {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    if !segments.next()?.eq_ignore_ascii_case("scim")
        || !segments.next()?.eq_ignore_ascii_case("v2")
    {
        return None;
    }
    let mut out = String::with_capacity(path.len());
    out.push_str("/scim/v2");
    let mut endpoint: Option<&str> = None;
    for (i, segment) in segments.enumerate() {
        let name = match i {
            0 => SCIM_ENDPOINTS
                .iter()
                .copied()
                .find(|e| e.eq_ignore_ascii_case(segment)),
            1 if matches!(endpoint, Some("Users" | "Groups"))
                && segment.eq_ignore_ascii_case(".search") =>
            {
                Some(".search")
            }
            _ => None,
        };
        if i == 0 {
            endpoint = name;
        }
        out.push('/');
        out.push_str(name.unwrap_or(segment));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn canonical_paths_are_left_alone() {
        for p in [
            "/scim/v2/Users",
            "/scim/v2/Users/2f1c-AbC",
            "/scim/v2/Groups/.search",
            "/scim/v2/ServiceProviderConfig",
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            "/scim/v2",
            "/admin/v1/tenants",
            "/healthz",
            "/console/",
            "/",
        ] {
            assert_eq!(canonical(p), None, "{p}");
        }
    }

    #[test]
    fn slashes_and_case_are_forgiven_under_scim() {
        let cases = [
            ("/scim/v2/Users/", "/scim/v2/Users"),
            ("/scim/v2//Users", "/scim/v2/Users"),
            ("//scim//v2///Users//", "/scim/v2/Users"),
            ("/scim/v2/users", "/scim/v2/Users"),
            ("/SCIM/V2/USERS", "/scim/v2/Users"),
            ("/scim/v2/groups/.SEARCH", "/scim/v2/Groups/.search"),
            ("/scim/v2/users/AbC-123/", "/scim/v2/Users/AbC-123"),
            ("/scim/v2/bulk", "/scim/v2/Bulk"),
            ("/scim/v2/.Search/", "/scim/v2/.search"),
            (
                "/scim/v2/serviceproviderconfig",
                "/scim/v2/ServiceProviderConfig",
            ),
            ("/scim/v2/resourcetypes/User", "/scim/v2/ResourceTypes/User"),
            ("/scim/v2/schemas/", "/scim/v2/Schemas"),
            ("/scim/v2/", "/scim/v2"),
        ];
        for (given, want) in cases {
            assert_eq!(canonical(given).as_deref(), Some(want), "{given}");
        }
    }

    #[test]
    fn ids_and_unknown_endpoints_keep_their_case() {
        // An id that spells an endpoint name is still an id.
        assert_eq!(
            canonical("/scim/v2/users/Groups").as_deref(),
            Some("/scim/v2/Users/Groups")
        );
        assert_eq!(
            canonical("/scim/v2/Users/.SEARCH").as_deref(),
            Some("/scim/v2/Users/.search")
        );
        assert_eq!(canonical("/scim/v2/Bulk/.search"), None);
        assert_eq!(
            canonical("/scim/v2/Widgets/"),
            Some("/scim/v2/Widgets".into())
        );
        assert_eq!(canonical("/scimx/v2/Users/"), None);
    }

    #[test]
    fn admin_and_product_paths_lose_only_trailing_slashes() {
        assert_eq!(
            canonical("/admin/v1/tenants/").as_deref(),
            Some("/admin/v1/tenants")
        );
        assert_eq!(
            canonical("/product/v1/events//").as_deref(),
            Some("/product/v1/events")
        );
        assert_eq!(canonical("/admin/v1/tenants//tokens"), None);
        assert_eq!(canonical("/admin/v1/Tenants"), None);
    }
}
