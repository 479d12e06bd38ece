//! How the store writes times: RFC 3339 in UTC with milliseconds (text columns on both engines),
//! and milliseconds since the epoch for arithmetic.

use crate::alloc::Millis;

/// Milliseconds since the epoch of an RFC 3339 timestamp (0 when unparsable).
pub fn millis_of(ts: &str) -> Millis {
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as Millis)
        .unwrap_or(0)
}

/// RFC 3339 of milliseconds since the epoch, always with three decimals and `Z`.
pub fn rfc3339(ms: Millis) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}
