//! A license's capacity planning in the console: the run-out forecast in words (the usage
//! chart draws its projection), the agreed overage, and the true-up over a period with its CSV.
//! The same store calls as the admin API's `/forecast` and `/true-up`.

use maud::html;

use super::*;
use crate::capacity::{day_name, Forecast};
use crate::store::LicenseTrueUp;

/// The period a true-up form asks for: the given days, else this month so far.
pub(super) fn period(
    from: Option<&str>,
    to: Option<&str>,
    now: crate::alloc::Millis,
) -> (String, String) {
    let today = day_name(crate::capacity::day_of(now));
    let from = from
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}01", &today[..8]));
    let to = to
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .unwrap_or(today);
    (from, to)
}

/// The chart's projection of a forecast.
pub(super) fn projection(f: &Forecast, now: crate::alloc::Millis) -> Option<chart::Projection> {
    let run_out = f
        .run_out_at
        .as_deref()
        .and_then(crate::capacity::parse_day)
        .map(|d| d * 86_400_000);
    let until = run_out
        .unwrap_or(now + 30 * 86_400_000)
        .max(now + 86_400_000);
    (f.fitted_days >= 3).then_some(chart::Projection {
        per_day: f.demand_per_day,
        until,
        run_out,
    })
}

/// The "Capacity planning" card of a license page.
pub(super) fn section(
    base: &str,
    l: &store::LicenseView,
    f: &Forecast,
    true_up: &LicenseTrueUp,
) -> Markup {
    let t = &true_up.true_up;
    html! {
        section.card #planning aria-labelledby="planning-title" {
            h2 #planning-title { "Capacity planning" }
            p #forecast {
                @match &f.run_out_at.as_deref().map(|d| crate::notify::when::day_start(d, "UTC").map_or_else(|| d.to_owned(), |ms| crate::notify::when::format_day(ms, "UTC"))) {
                    Some(d) if f.in_use + f.waiting > f.capacity => {
                        "Seats have run out (" (d) "): " (f.in_use) " of " (f.capacity) " in use, " (f.waiting) " waiting."
                    }
                    Some(d) => {
                        "At the present rate " (l.name) " runs out of seats around " strong { (d) } "; demand grows by about " (f.demand_per_day) " a day"
                        @if f.waiting > 0 { ", and " (f.waiting) " already waiting" } "."
                    }
                    None if f.demand_per_day > 0.0 => {
                        "Demand grows by about " (f.demand_per_day) " a day: no run-out within 90 days."
                    }
                    None if f.fitted_days < 3 => { "Not enough history for a forecast yet." }
                    None => { "Demand is steady or shrinking: no run-out in sight." }
                }
                " " span.small.muted { "(confidence " (f.confidence) ", trend over the last " (f.fitted_days) " days since the last large change)" }
            }
            p {
                @if l.overage_seats > 0 {
                    "Agreed overage: up to " (l.overage_seats) " seats beyond the " (l.seats) "; use above " (l.seats) " is billed at the true-up."
                } @else {
                    "No agreed overage: nobody is granted a seat beyond the " (l.seats) "."
                }
            }
            form.row method="get" action={ (base) "#planning" } {
                div { label for="tu-from" { "True-up from" } input #tu-from type="date" name="from" value=(t.from); }
                div { label for="tu-to" { "to" } input #tu-to type="date" name="to" value=(t.to); }
                div { button.secondary type="submit" { "Show" } }
            }
            p #true-up-summary {
                "Peak use " strong { (t.peak_in_use) } @if let Some(d) = &t.peak_day { " (" (d) ")" } "; "
                strong { (t.days_over) } " days over the seat count; " strong { (t.seat_days_over) } " seat-days over. "
                a href={ (base) "/true-up.csv?from=" (t.from) "&to=" (t.to) } { "CSV" }
            }
            @if t.days_over > 0 {
                table #true-up {
                    caption { "Days over the seat count" }
                    thead { tr { th scope="col" { "Day" } th scope="col" { "Seats" } th scope="col" { "Peak in use" } th scope="col" { "Over" } } }
                    tbody {
                        @for d in t.days.iter().filter(|d| d.over > 0) {
                            tr { td { (d.day) } td { (d.seats) } td { (d.peak_in_use) } td { (d.over) } }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Period {
    from: Option<String>,
    to: Option<String>,
}

/// The true-up as CSV.
pub(super) async fn true_up_csv(
    v: Visit,
    p: web::Path<super::licenses::OfLicense>,
    q: web::Query<Period>,
) -> Result<HttpResponse> {
    let lk = p.into_inner().l;
    let Visit { state, t, .. } = v;
    let (from, to) = period(q.from.as_deref(), q.to.as_deref(), state.store.now_ms());
    let r = state.store.true_up(t.key, lk, from, to).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            format!(
                "attachment; filename=\"true-up-{}-{}.csv\"",
                r.true_up.from, r.true_up.to
            ),
        ))
        .body(crate::capacity::true_up_csv(&r.true_up)))
}
