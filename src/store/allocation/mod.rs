//! Allocation: licenses and their group selection (`licenses`, `selection`), the allocator's
//! [`crate::alloc::SeatStore`] over a write transaction (`tx_seats`) and the entry points that
//! run it after every write (`runs`), seat operations of admins (`seat_admin`), why a person is where they are (`seat_reason`), circuit-breaker
//! holds (`holds`), idle reclaim (`reclaim`), the daily history (`history`), previews
//! (`preview`), the reconciler (`reconciler`), waitlist positions (`waitlist_ranks`) and the
//! webhook events a run queues (`seat_webhooks`), shadow mode's carried-over seat holders and
//! its report (`shadow`).

pub(crate) mod history;
pub(crate) mod hold_moves;
pub(crate) mod holds;
pub(crate) mod license_view;
pub(crate) mod licenses;
pub(crate) mod preview;
pub(crate) mod reclaim;
pub(crate) mod reconciler;
pub(crate) mod runs;
pub(crate) mod seat_admin;
pub(crate) mod seat_reason;
pub(crate) mod seat_webhooks;
pub(crate) mod selection;
pub(crate) mod shadow;
pub mod tx_seats;
pub(crate) mod waitlist_ranks;
