//! A tenant's webhook endpoints in the console: registered (the signing secret shown once),
//! rotated, disabled and enabled again, deleted. The same store calls and URL vetting as the
//! admin API; deliveries are listed by the API and the CLI.

use super::*;
use crate::store::events::webhooks::WebhookChange;
use crate::webhook::vet::{vet, Policy};
use crate::webhook::EventType;

/// Registers an endpoint from the form `csrf`, `url` and one `events` field per ticked type.
pub(super) async fn create_webhook(v: Visit, body: web::Bytes) -> Result<HttpResponse> {
    let mut csrf = String::new();
    let mut url = String::new();
    let mut events = Vec::new();
    for (k, value) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = value.into_owned(),
            "url" => url = value.trim().to_owned(),
            "events" if EventType::parse(&value).is_some() => events.push(value.into_owned()),
            _ => {}
        }
    }
    v.posted(&csrf)?;
    vet(&url, Policy::of(&v.state.config))
        .await
        .map_err(|e| Error::Invalid(e.0))?;
    let (t, actor) = (Some(v.t.key), v.s.actor());
    let w = v
        .store()
        .create_webhook(
            t,
            url,
            events,
            actor,
            v.state.config.webhook_max_endpoints_per_tenant,
        )
        .await?;
    shown_once(&v, pages::NewToken::Webhook(w.id, w.secret)).await
}

pub(super) async fn rotate_webhook(
    v: Visit,
    p: web::Path<OfId>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let (t, id) = (Some(v.t.key), p.into_inner().id);
    let w = v.store().rotate_webhook_secret(t, id, v.s.actor()).await?;
    shown_once(&v, pages::NewToken::Webhook(w.id, w.secret)).await
}

/// `enable`, `disable` or `delete` an endpoint.
pub(super) async fn change_webhook(
    v: Visit,
    p: web::Path<OfAction>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse> {
    v.posted(&form.csrf)?;
    let OfAction { id, action } = p.into_inner();
    let (t, actor) = (Some(v.t.key), v.s.actor());
    let on = |enabled: bool| WebhookChange {
        enabled: Some(enabled),
        ..WebhookChange::default()
    };
    let notice = match action.as_str() {
        "enable" => {
            v.store().update_webhook(t, id, on(true), actor).await?;
            "webhook-enabled"
        }
        "disable" => {
            v.store().update_webhook(t, id, on(false), actor).await?;
            "webhook-disabled"
        }
        "delete" => {
            v.store().delete_webhook(t, id, actor).await?;
            "webhook-deleted"
        }
        _ => return Err(Error::NotFound(format!("no action {action:?}"))),
    };
    see_other(&format!(
        "/console/tenants/{}?notice={notice}#webhooks",
        v.t.id
    ))
}
