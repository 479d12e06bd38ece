//! Which engine a configured `database` names: a `postgres://` or `postgresql://` URL is a
//! PostgreSQL database, anything else a SQLite file; and how it is shown in logs and errors
//! (never with its password).

/// True when `database` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// `database` as it may be shown in a log, an error or the CLI's output: a PostgreSQL URL with
/// its password (in the userinfo or a `password=` parameter) replaced by `***`; a SQLite path
/// as it is.
pub fn shown(database: &std::path::Path) -> String {
    let text = database.to_string_lossy();
    if !is_url(&text) {
        return text.into_owned();
    }
    let Ok(mut u) = url::Url::parse(&text) else {
        return "postgres://(a URL that does not parse; not shown)".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// The database's file, when it is one (a SQLite file; a PostgreSQL URL names none).
pub fn file(database: &std::path::Path) -> Option<&std::path::Path> {
    match database.to_str() {
        Some(text) if is_url(text) => None,
        _ => Some(database),
    }
}
