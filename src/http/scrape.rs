//! The `/metrics` route: who may scrape (the metrics token, else the operator's admin token,
//! or anyone on the operations listener), and the page: the counters of `metrics` and each
//! license's gauges read now.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};

use crate::http::metrics::{esc, group_gauges};
use crate::http::state::AppState;

/// Marks the operations listener's app (`metrics_listen`).
pub struct OpsListener(pub bool);

/// `/metrics`. With `metrics_token` set, it asks for that bearer token on every listener;
/// without it, the operations listener (`metrics_listen`) serves it openly and the main
/// listener asks for the operator's admin token, so that tenant and license names never reach
/// a stranger (see [`crate::http::Surface`]).
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let ops_listener = req
        .app_data::<web::Data<OpsListener>>()
        .is_some_and(|l| l.0);
    let expected = match (&state.config.metrics_token, &state.config.admin_token) {
        (Some(t), _) => Some(t.0.as_str()),
        (None, _) if ops_listener => None,
        (None, Some(admin)) => Some(admin.0.as_str()),
        (None, None) => return HttpResponse::NotFound().json(serde_json::json!({
            "error": "not_found",
            "message": "metrics need metrics_token, admin_token or a metrics_listen of their own",
        })),
    };
    if let Some(expected) = expected {
        use sha2::Digest as _;
        use subtle::ConstantTimeEq as _;
        let given = crate::http::auth::bearer(&req).unwrap_or_default();
        let a = sha2::Sha256::digest(given.as_bytes());
        let b = sha2::Sha256::digest(expected.as_bytes());
        if !bool::from(a.ct_eq(&b)) {
            // Braked like every failed authentication: a wrong token costs its address.
            if let Some(d) = state.limits.failure(state.limits.client(&req)) {
                use actix_web::ResponseError as _;
                return crate::http::error::Throttled {
                    retry_after: crate::http::limits::retry_after(d),
                    admin: true,
                    detail: "too many failed authentications from this address",
                }
                .error_response();
            }
            return HttpResponse::Unauthorized()
                .insert_header(("WWW-Authenticate", "Bearer realm=\"metrics\""))
                .json(serde_json::json!({
                    "error": "unauthorized",
                    "message": "metrics ask for a bearer token (metrics_token, else the admin token)",
                }));
        }
    }
    {
        use actix_web::HttpMessage as _;
        req.extensions_mut().insert(crate::http::auth::Proven);
    }
    let mut out = String::new();
    state.metrics.render(&mut out);
    match state.store.license_gauges().await {
        Ok(rows) => {
            for (metric, help) in [
                ("seatkeeper_license_capacity", "Seat count of a license."),
                ("seatkeeper_license_granted", "Seats granted."),
                (
                    "seatkeeper_license_releasing",
                    "Seats releasing (inside the grace).",
                ),
                (
                    "seatkeeper_license_blocked",
                    "Entitled users waiting for a seat.",
                ),
                (
                    "seatkeeper_license_held",
                    "Granted seats whose loss the circuit breaker holds for an admin's decision.",
                ),
            ] {
                let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} gauge");
                for (tenant, license, values) in &rows {
                    let v = match metric {
                        "seatkeeper_license_capacity" => values[0],
                        "seatkeeper_license_granted" => values[1],
                        "seatkeeper_license_releasing" => values[2],
                        "seatkeeper_license_blocked" => values[3],
                        _ => values[4],
                    };
                    let _ = writeln!(
                        out,
                        "{metric}{{tenant=\"{}\",license=\"{}\"}} {v}",
                        esc(tenant),
                        esc(license)
                    );
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read license gauges"),
    }
    match state.store.group_gauges().await {
        Ok(rows) => group_gauges(&mut out, &rows),
        Err(e) => tracing::warn!(error = %e, "cannot read group gauges"),
    }
    let up = state.store.ping().await.is_ok();
    let _ = writeln!(out, "# HELP seatkeeper_database_up 1 when the database answers this node, 0 when it cannot be reached.\n# TYPE seatkeeper_database_up gauge\nseatkeeper_database_up {}", u8::from(up));
    let _ = writeln!(out, "# HELP seatkeeper_write_queue_jobs The longest tenant queue of write jobs waiting on this node (at {} writes are answered 503).\n# TYPE seatkeeper_write_queue_jobs gauge\nseatkeeper_write_queue_jobs {}", crate::store::WRITE_QUEUE_PER_TENANT, state.store.write_queue_depth());
    let _ = writeln!(out, "# HELP seatkeeper_write_retries_total Write jobs this node ran again after PostgreSQL gave them up for contention (a deadlock, a serialization failure).\n# TYPE seatkeeper_write_retries_total counter\nseatkeeper_write_retries_total {}", state.store.write_retries());
    {
        let p = state.store.pruned_rows();
        let _ = writeln!(out, "# HELP seatkeeper_pruned_rows_total History rows this process's pruning passes deleted, by table (retention settings).\n# TYPE seatkeeper_pruned_rows_total counter");
        for (table, n) in [
            ("seat_events", p.seat_events),
            ("webhook_deliveries", p.webhook_deliveries),
            ("webhook_events", p.webhook_events),
            ("audit", p.audit),
            ("outbox", p.outbox),
        ] {
            let _ = writeln!(out, "seatkeeper_pruned_rows_total{{table=\"{table}\"}} {n}");
        }
    }
    match state.store.provisioning_gauges().await {
        Ok(rows) => {
            let _ = writeln!(out, "# HELP seatkeeper_tenant_last_provider_call_timestamp_seconds When the tenant's identity provider last called (0: never).\n# TYPE seatkeeper_tenant_last_provider_call_timestamp_seconds gauge");
            for (tenant, last, _) in &rows {
                let _ = writeln!(
                    out,
                    "seatkeeper_tenant_last_provider_call_timestamp_seconds{{tenant=\"{}\"}} {}",
                    esc(tenant),
                    last / 1000
                );
            }
            let _ = writeln!(out, "# HELP seatkeeper_tenant_silent 1 while the tenant's provider has not called for longer than its expected_sync_seconds.\n# TYPE seatkeeper_tenant_silent gauge");
            for (tenant, _, silent) in &rows {
                let _ = writeln!(
                    out,
                    "seatkeeper_tenant_silent{{tenant=\"{}\"}} {}",
                    esc(tenant),
                    u8::from(*silent)
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read provisioning gauges"),
    }
    match state.store.webhook_endpoint_counts().await {
        Ok((enabled, disabled)) => {
            let _ = writeln!(out, "# HELP seatkeeper_webhook_endpoints Webhook endpoints by state (disabled: failing too long, or by an admin).\n# TYPE seatkeeper_webhook_endpoints gauge\nseatkeeper_webhook_endpoints{{state=\"enabled\"}} {enabled}\nseatkeeper_webhook_endpoints{{state=\"disabled\"}} {disabled}");
        }
        Err(e) => tracing::warn!(error = %e, "cannot count webhook endpoints"),
    }
    match state.store.outbox_counts().await {
        Ok(rows) => {
            let _ = writeln!(out, "# HELP seatkeeper_outbox_notifications Notifications in the outbox, by state (collecting, closing and pending are the backlog).\n# TYPE seatkeeper_outbox_notifications gauge");
            for s in crate::store::DigestState::ALL.map(crate::store::DigestState::as_str) {
                let n = rows.iter().find(|(k, _)| k == s).map(|r| r.1).unwrap_or(0);
                let _ = writeln!(out, "seatkeeper_outbox_notifications{{state=\"{s}\"}} {n}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox"),
    }
    for (name, help, v) in [
        (
            "seatkeeper_mail_sent_total",
            "Notification emails delivered (or written to the mail folder).",
            &state.mail_stats.sent,
        ),
        (
            "seatkeeper_mail_failed_total",
            "Notification emails rejected for good by the SMTP server.",
            &state.mail_stats.failed,
        ),
        (
            "seatkeeper_mail_retries_total",
            "Delivery attempts that failed transiently and will be retried.",
            &state.mail_stats.retried,
        ),
        (
            "seatkeeper_webhooks_delivered_total",
            "Webhook deliveries answered 2xx.",
            &state.webhook_stats.delivered,
        ),
        (
            "seatkeeper_webhooks_retries_total",
            "Webhook attempts that failed transiently and will be retried.",
            &state.webhook_stats.retried,
        ),
        (
            "seatkeeper_webhooks_refused_total",
            "Webhook deliveries refused for good (a 4xx answer, or a forbidden address).",
            &state.webhook_stats.failed,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}
