//! What a failing SCIM request most likely means, in the words of the person who fixes the
//! identity provider's side: the customer's admin reading the provisioning page or the warning
//! email. Pure: the request's method and route, the answer's status, `scimType` and detail in,
//! a sentence out.

/// The likely cause of a failed request, and what to do about it.
pub fn likely_cause(
    method: &str,
    route: &str,
    status: u16,
    scim_type: Option<&str>,
    detail: &str,
) -> String {
    let groups = route.contains("/Groups");
    let what = if groups { "group" } else { "user" };
    let one = route.ends_with('}');
    let d = detail.to_ascii_lowercase();
    match (status, scim_type.unwrap_or("")) {
        (409, _) if method == "POST" && groups => "The provider tried to create a group whose name (or externalId) another group here already has: two groups of the same name in the directory, or a group the provider created before and lost track of. Rename one of them in the directory, or turn off unique group names if the directory really holds same-named groups.".into(),
        (409, _) if method == "POST" => "The provider tried to create a user whose userName (or externalId) seatkeeper already has: it lost track of a user it created before (a restored app, a second provisioning job, a user deleted and re-created in the directory). Match users on userName or externalId in the app's attribute mappings, or remove the twin here.".into(),
        (409, _) => format!("A change would give this {what} a name (userName, displayName or externalId) another {what} here already has. Fix the duplicate in the directory."),
        (400, "invalidFilter") => format!("The provider searched with a filter seatkeeper does not understand ({detail}). This usually comes from a matching attribute in the app's attribute mappings that is not a SCIM attribute: match on userName, externalId or emails."),
        (400, "invalidValue" | "invalidPath" | "noTarget") if groups && d.contains("member") => "A group PATCH named a member seatkeeper cannot use (not the id of a user or group it was given): the member was never provisioned, or the provider sent its own directory id instead of the id seatkeeper returned. Provision the member first (assign them to the app), then the group's change succeeds on the provider's next cycle.".into(),
        (400, "invalidPath" | "noTarget") => format!("The provider changed an attribute seatkeeper does not have or cannot find ({detail}): remove or correct that attribute mapping."),
        (400, "mutability") => format!("The provider tried to change an attribute that cannot be changed ({detail}): remove that mapping or make it apply on create only."),
        (400, "invalidSyntax" | "invalidValue") => format!("A value the attribute mappings send is not valid ({detail}): correct the mapping or the directory entry it comes from."),
        (400, "tooMany") | (413, _) => "The request was larger than seatkeeper accepts: the provider splits large changes by itself; if this repeats, ask the operator about the size limits.".into(),
        (404, _) if one && method == "DELETE" => format!("The provider deleted a {what} seatkeeper does not have (deleted here already): harmless, it stops once the provider knows."),
        (404, _) if one => format!("The provider changed a {what} seatkeeper does not have (deleted here, or provisioned to another tenant or app). It usually re-creates the {what} on its next cycle; if this repeats, restart provisioning for that {what}."),
        (412, _) => format!("The provider sent a change based on an outdated copy of the {what} (If-Match): it reads the {what} again and retries by itself."),
        (429, _) => "seatkeeper asked the provider to slow down (rate limit): it retries by itself. Many of these slow the sync down; ask the operator whether this tenant's limit fits its directory.".into(),
        (503, _) => "seatkeeper or its database was briefly unavailable and asked the provider to retry: it does by itself. If this repeats, tell whoever runs seatkeeper.".into(),
        (s, _) if s >= 500 => "A fault in seatkeeper: tell whoever runs it (the request is in its log).".into(),
        _ if detail.is_empty() => format!("The request was refused ({status}): see the provider's provisioning logs for it."),
        _ => format!("The request was refused: {detail}"),
    }
}

/// Whether a failed request counts against the identity provider's health: every 5xx, and
/// every 4xx but a 404 on a read (a provider looking a user up before creating it).
pub fn counts(method: &str, status: u16) -> bool {
    status >= 500 || (status >= 400 && !(status == 404 && method == "GET"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_common_failure_has_its_cause() {
        let duplicate = likely_cause(
            "POST",
            "/scim/v2/Users",
            409,
            Some("uniqueness"),
            "userName taken",
        );
        assert!(
            duplicate.contains("userName (or externalId) seatkeeper already has"),
            "{duplicate}"
        );
        let filter = likely_cause(
            "GET",
            "/scim/v2/Users",
            400,
            Some("invalidFilter"),
            "unknown attribute 'mail'",
        );
        assert!(
            filter.contains("filter seatkeeper does not understand (unknown attribute 'mail')"),
            "{filter}"
        );
        let member = likely_cause(
            "PATCH",
            "/scim/v2/Groups/{id}",
            400,
            Some("invalidValue"),
            "member value \"x\" is not an id",
        );
        assert!(
            member.starts_with("A group PATCH named a member"),
            "{member}"
        );
        let gone = likely_cause("PATCH", "/scim/v2/Users/{id}", 404, None, "");
        assert!(
            gone.contains("changed a user seatkeeper does not have"),
            "{gone}"
        );
        assert!(
            likely_cause("GET", "/scim/v2/Users", 500, None, "").contains("tell whoever runs it")
        );
        assert!(
            !counts("GET", 404) && counts("PATCH", 404) && counts("GET", 400) && counts("GET", 503)
        );
        assert!(!counts("GET", 200));
    }
}
