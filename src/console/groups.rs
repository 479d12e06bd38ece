//! The license page's "Selected groups" card: the groups in selector order (a member of
//! several counts against the first), each with its reserve and ceiling, its use against them
//! when the license has any, a form to change them, and the button that unselects it.

use maud::{html, Markup};

use super::license_pages::{selector_kind, selector_text};
use super::session::Session;
use crate::store::{LicenseView, PreviewView};

/// New limits of one selected group, as the form sent them, with what they would do.
pub(crate) struct LimitsPreview {
    pub kind: String,
    pub value: String,
    pub reserve: String,
    pub max: String,
    pub view: PreviewView,
}

/// The effect of proposed limits, with the form that saves them.
fn proposal(s: &Session, base: &str, p: &LimitsPreview) -> Markup {
    let v = &p.view;
    let names = |list: &[String]| {
        let mut shown = list.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
        if list.len() > 10 {
            shown.push_str(", …");
        }
        shown
    };
    html! {
        div.notice.warn role="status" #limits-preview {
            strong { "With a reserve of " (if p.reserve.is_empty() { "0" } else { &p.reserve })
                " and " (if p.max.is_empty() { "no ceiling".to_owned() } else { format!("a ceiling of {}", p.max) })
                " for " (p.value) ":" }
            ul {
                li { (v.granted.len() + v.promoted.len()) " would get a seat"
                    @if !v.promoted.is_empty() { " (" (names(&v.promoted)) ")" } }
                li { (v.blocked.len()) " would be moved to the waitlist"
                    @if !v.blocked.is_empty() { " (" (names(&v.blocked)) ")" } }
                li { (v.released.len() + v.releasing.len()) " would lose a seat" }
                @for g in &v.groups {
                    li { (g.group_name.as_deref().unwrap_or(&g.group_id)) ": "
                        (use_line(g.in_use, g.waiting, g.reserve, g.max)) }
                }
            }
            form method="post" action={ (base) "/groups" } {
                (super::pages::csrf(s))
                input type="hidden" name="action" value="limits";
                input type="hidden" name="kind" value=(p.kind);
                input type="hidden" name="value" value=(p.value);
                input type="hidden" name="reserve" value=(p.reserve);
                input type="hidden" name="max" value=(p.max);
                button type="submit" { "Save limits" }
                " " a href=(base) { "Cancel" }
            }
        }
    }
}

/// "6 in use of a reserve of 4 and a ceiling of 8; 3 waiting".
fn use_line(in_use: i64, waiting: i64, reserve: i64, max: Option<i64>) -> String {
    let mut limits = Vec::new();
    if reserve > 0 {
        limits.push(format!("a reserve of {reserve}"));
    }
    if let Some(m) = max {
        limits.push(format!("a ceiling of {m}"));
    }
    let mut line = format!("{in_use} in use");
    if !limits.is_empty() {
        line.push_str(&format!(" against {}", limits.join(" and ")));
    }
    if waiting > 0 {
        line.push_str(&format!("; {waiting} waiting"));
    }
    line
}

pub(super) fn card(
    s: &Session,
    base: &str,
    l: &LicenseView,
    preview: Option<&LimitsPreview>,
) -> Markup {
    let limited = l.groups.iter().any(|g| g.in_use.is_some());
    html! {
        section.card aria-labelledby="groups" {
            h2 #groups { "Selected groups" }
            @if let Some(p) = preview { (proposal(s, base, p)) }
            @if l.groups.is_empty() { p.muted { "No group selected: nobody is entitled." } }
            @if l.groups.len() > 1 {
                p.small.muted { "A member of several selected groups counts against the first of them in this list." }
            }
            ul.groups {
                @for g in &l.groups {
                    @let (kind, value) = selector_text(&g.selector);
                    li {
                        @match (&g.group_name, kind.as_str()) {
                            (Some(name), "displayName") => {
                                strong { (name) } " "
                                @if let Some(id) = &g.group_id {
                                    span.small.muted.resolved { "(by name: the group " code { (id) } ")" } " "
                                }
                            }
                            (Some(name), _) => {
                                strong { (name) } " "
                                span.small.muted { "(selected by " (selector_kind(&kind)) " " code { (value) } ")" } " "
                            }
                            (None, _) => {
                                (value) " "
                                @if kind != "displayName" { span.small.muted { "(" (selector_kind(&kind)) ")" } " " }
                            }
                        }
                        @if g.ambiguous {
                            span.badge.blocked title="Several groups have this name (or externalId): the selector selects none of them until one is picked by id" { "ambiguous" }
                            " " span.small { "Several groups match; select one of them by id to entitle its members." }
                        } @else if g.pending { span.badge.pending title="No group with this name has arrived from the provider yet" { "pending" } }
                        @if limited {
                            br;
                            span.small.pool { (use_line(g.in_use.unwrap_or(0), g.waiting.unwrap_or(0), g.reserve, g.max)) }
                        }
                        form.inline method="post" action={ (base) "/groups" } {
                            (super::pages::csrf(s))
                            input type="hidden" name="action" value="remove";
                            input type="hidden" name="kind" value=(kind);
                            input type="hidden" name="value" value=(value);
                            " " button.secondary type="submit" aria-label={ "Unselect " (value) } { "Remove" }
                        }
                        details.limits {
                            summary { "Reserve and ceiling" }
                            form method="post" action={ (base) "/groups" } {
                                (super::pages::csrf(s))
                                input type="hidden" name="action" value="limits";
                                input type="hidden" name="kind" value=(kind);
                                input type="hidden" name="value" value=(value);
                                div.row {
                                    label { "Reserve " input type="number" name="reserve" min="0" value=(g.reserve) aria-label={ "Seats kept for " (value) }; }
                                    label { "Ceiling " input type="number" name="max" min="0" value=[g.max] placeholder="none" aria-label={ "Most seats for " (value) }; }
                                }
                                p.small.muted { "The reserve keeps seats free for this group's members; the ceiling caps how many they hold. Reserves add up to at most the seat count." }
                                button type="submit" name="step" value="preview" { "Preview" }
                                " " button.secondary type="submit" name="step" value="save" { "Save limits" }
                            }
                        }
                    }
                }
            }
            a.button href={ (base) "?pick=1" } data-open="#picker" { "Select groups…" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::use_line;

    #[test]
    fn the_use_line_names_the_limits_set() {
        assert_eq!(
            use_line(6, 3, 4, Some(8)),
            "6 in use against a reserve of 4 and a ceiling of 8; 3 waiting"
        );
        assert_eq!(use_line(2, 0, 0, None), "2 in use");
        assert_eq!(
            use_line(0, 0, 0, Some(0)),
            "0 in use against a ceiling of 0"
        );
    }
}
