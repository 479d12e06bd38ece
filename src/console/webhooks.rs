//! A tenant's webhook endpoints in the console: registered (the signing secret shown once),
//! rotated, disabled and enabled again, deleted. The same store calls and URL vetting as the
//! admin API; deliveries are listed by the API and the CLI.

use super::*;
use crate::store::webhooks::WebhookChange;
use crate::webhook::dispatcher::{vet, Policy};
use crate::webhook::EventType;

/// Registers an endpoint from the form `csrf`, `url` and one `events` field per ticked type.
pub(super) async fn create_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    let mut csrf = String::new();
    let mut url = String::new();
    let mut events = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = v.into_owned(),
            "url" => url = v.trim().to_owned(),
            "events" if EventType::parse(&v).is_some() => events.push(v.into_owned()),
            _ => {}
        }
    }
    let s = posted(&req, &state, &csrf).await?;
    let t = tenant_of(&state, &s, &path).await?;
    vet(&url, Policy::of(&state.config))
        .await
        .map_err(|e| Error::Invalid(e.0))?;
    let w = state
        .store
        .create_webhook(Some(t.key), url, events, s.actor())
        .await?;
    // Rendered, not redirected: the secret is shown this once.
    shown_once(
        &req,
        &state,
        &s,
        &t,
        pages::NewToken::Webhook(w.id, w.secret),
    )
    .await
}

pub(super) async fn rotate_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (key, id) = path.into_inner();
    let t = tenant_of(&state, &s, &key).await?;
    let w = state
        .store
        .rotate_webhook_secret(Some(t.key), id, s.actor())
        .await?;
    shown_once(
        &req,
        &state,
        &s,
        &t,
        pages::NewToken::Webhook(w.id, w.secret),
    )
    .await
}

/// `enable`, `disable` or `delete` an endpoint.
pub(super) async fn change_webhook(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    let s = posted(&req, &state, &form.csrf).await?;
    let (key, id, action) = path.into_inner();
    let t = tenant_of(&state, &s, &key).await?;
    let on = |enabled: bool| WebhookChange {
        enabled: Some(enabled),
        ..WebhookChange::default()
    };
    let notice = match action.as_str() {
        "enable" => {
            state
                .store
                .update_webhook(Some(t.key), id, on(true), s.actor())
                .await?;
            "webhook-enabled"
        }
        "disable" => {
            state
                .store
                .update_webhook(Some(t.key), id, on(false), s.actor())
                .await?;
            "webhook-disabled"
        }
        "delete" => {
            state
                .store
                .delete_webhook(Some(t.key), id, s.actor())
                .await?;
            "webhook-deleted"
        }
        _ => return Err(Error::NotFound(format!("no action {action:?}"))),
    };
    see_other(&format!(
        "/console/tenants/{}?notice={notice}#webhooks",
        t.id
    ))
}
