//! Waitlist positions without counting the waitlist.
//!
//! In SQL a waiting user's position is a count over the `seats_order` index of everyone ahead:
//! its cost grows with the position (166,667 waiting at a million users made the seat check
//! a few hundred microseconds of counting). [`RankCache`] keeps, per license with a long
//! waitlist, a sorted copy of the waitlist's order keys read from one snapshot, tagged with the
//! license's `waitlist_gen` (bumped by every seat write that touches a waiting seat,
//! `seats::TxSeats`). A position read in a snapshot of the same generation is a binary search.
//!
//! A copy of another generation is never used. Rebuilding one costs a scan of the waitlist, so
//! while a license's waitlist keeps changing it is rebuilt at most once per eight times its last
//! build took, and the seat check counts in between (as it does for short waitlists). Only read
//! paths use the cache: a write job sees its own uncommitted changes, which must never be copied.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::engine::sql::{params, Db, OptionalExtension};

use crate::alloc::LicenseKey;
use crate::store::Result;

/// Waitlists shorter than this are counted: a count over a few thousand index entries costs
/// about what the lookup does.
pub const MIN_CACHED_WAITLIST: usize = 2048;
/// At most this many order keys (24 bytes each) are kept over all licenses, least recently used
/// copies dropped first.
const MAX_KEYS: usize = 2 << 20;
/// A stale copy is rebuilt only after this many times its last build's duration has passed.
const REBUILD_FACTOR: u32 = 8;

/// A waitlist entry's place in the order: (`entitled_at`, user id as a number, high and low
/// halves: 24 bytes where a `u128` would pad to 32). The user ids seatkeeper gives out are
/// lowercase hyphenated UUIDs, whose numeric order is their text order.
type Key = (i64, u64, u64);

fn key(entitled_at: i64, id: u128) -> Key {
    (entitled_at, (id >> 64) as u64, id as u64)
}

/// The waitlist order of one license at one generation.
struct Ranks {
    license_id: String,
    gen: i64,
    /// `None` when the waitlist holds an id that is not a canonical UUID: counted instead.
    keys: Option<Keys>,
    built: Instant,
    cost: Duration,
    used: AtomicU64,
}

struct Keys {
    /// Pinned entries come first (`pinned DESC`), each part in key order.
    pinned: usize,
    keys: Vec<Key>,
}

impl Keys {
    fn position(&self, pinned: bool, key: Key) -> Option<i64> {
        let start = if pinned { 0 } else { self.pinned };
        let part = if pinned {
            &self.keys[..self.pinned]
        } else {
            &self.keys[self.pinned..]
        };
        let i = part.partition_point(|k| *k < key);
        (part.get(i) == Some(&key)).then_some((start + i + 1) as i64)
    }
}

/// What a position lookup needs of the license: its id, its waitlist's generation
/// (`licenses.waitlist_gen`) and how many wait (`licenses.blocked`).
pub struct Stamp {
    pub license_id: String,
    pub gen: i64,
    pub waiting: i64,
}

/// How a waiting user's position is found ([`RankCache::position`]).
#[derive(Debug, PartialEq)]
pub enum Lookup {
    /// Read from the current copy of the waitlist order.
    At(i64),
    /// Count the seats ahead: the waitlist is short, or no current copy is to be had now.
    Count,
    /// Only a scan of a long waitlist can answer, and the caller may not scan.
    Defer,
}

enum Next {
    Use(Arc<Ranks>),
    Count,
    Build,
}

#[derive(Default)]
struct State {
    lists: HashMap<LicenseKey, Arc<Ranks>>,
    building: HashSet<LicenseKey>,
    keys: usize,
}

/// Per-license copies of waitlist orders, shared by every reader of the process.
pub struct RankCache {
    state: Mutex<State>,
    min_waiting: AtomicUsize,
    clock: AtomicU64,
}

impl Default for RankCache {
    fn default() -> Self {
        RankCache {
            state: Mutex::default(),
            min_waiting: AtomicUsize::new(MIN_CACHED_WAITLIST),
            clock: AtomicU64::new(0),
        }
    }
}

/// The numeric form of a lowercase hyphenated UUID; `None` for any other text.
fn canonical_uuid(id: &str) -> Option<u128> {
    let u = uuid::Uuid::try_parse(id).ok()?;
    let mut buf = uuid::Uuid::encode_buffer();
    (u.hyphenated().encode_lower(&mut buf) == id).then_some(u.as_u128())
}

impl RankCache {
    /// Waitlists of at least `n` entries are served from copies (tests set it low).
    pub fn set_min_waiting(&self, n: usize) {
        self.min_waiting.store(n, Ordering::Relaxed);
    }

    /// How to find the 1-based position of a waiting seat (`pinned`, `entitled_at`, `user`) in
    /// license `l`'s waitlist. `c` must be in a read transaction that also read the seat, so the
    /// generation read here is the seat's. Unless `may_scan`, nothing here scans a long waitlist
    /// (building a copy) and [`Lookup::Defer`] stands for every answer that would need it.
    pub fn position(
        &self,
        c: &Db,
        l: LicenseKey,
        pinned: bool,
        entitled_at: i64,
        user: &str,
        may_scan: bool,
    ) -> Result<Lookup> {
        let Some(stamp) = c
            .prepare_cached("SELECT id, waitlist_gen, blocked FROM licenses WHERE rk = ?")?
            .query_row([l], |r| {
                Ok(Stamp {
                    license_id: r.get(0)?,
                    gen: r.get(1)?,
                    waiting: r.get(2)?,
                })
            })
            .optional()?
        else {
            return Ok(Lookup::Count);
        };
        self.position_at(Some(c), l, stamp, pinned, entitled_at, user, may_scan)
    }

    /// [`RankCache::position`] with the license's [`Stamp`] already read, in the statement
    /// (or the read transaction) that read the seat.
    #[allow(clippy::too_many_arguments)]
    pub fn position_at(
        &self,
        c: Option<&Db>,
        l: LicenseKey,
        stamp: Stamp,
        pinned: bool,
        entitled_at: i64,
        user: &str,
        may_scan: bool,
    ) -> Result<Lookup> {
        let scan = if may_scan {
            Lookup::Count
        } else {
            Lookup::Defer
        };
        let Stamp {
            license_id,
            gen,
            waiting,
        } = stamp;
        if (waiting as usize) < self.min_waiting.load(Ordering::Relaxed) {
            return Ok(Lookup::Count);
        }
        let Some(id) = canonical_uuid(user) else {
            return Ok(scan);
        };
        let ranks = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let next = match st.lists.get(&l) {
                Some(r) if r.gen == gen && r.license_id == license_id => Next::Use(r.clone()),
                // Stale: rebuilt at most once per REBUILD_FACTOR times its last build took.
                Some(r) if r.built.elapsed() < r.cost * REBUILD_FACTOR => Next::Count,
                _ if st.building.contains(&l) => Next::Count,
                _ => Next::Build,
            };
            match next {
                Next::Use(r) => r,
                Next::Count => return Ok(scan),
                Next::Build if !may_scan => return Ok(Lookup::Defer),
                Next::Build => {
                    let Some(c) = c else {
                        return Ok(Lookup::Defer);
                    };
                    st.building.insert(l);
                    drop(st);
                    let built = self.build(c, l, license_id, gen, waiting as usize);
                    let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.building.remove(&l);
                    let r = Arc::new(built?);
                    self.insert(&mut st, l, r.clone());
                    r
                }
            }
        };
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        ranks.used.store(tick, Ordering::Relaxed);
        Ok(ranks
            .keys
            .as_ref()
            .and_then(|k| k.position(pinned, key(entitled_at, id)))
            .map_or(scan, Lookup::At))
    }

    /// Reads license `l`'s waitlist order in `c`'s snapshot.
    fn build(
        &self,
        c: &Db,
        l: LicenseKey,
        license_id: String,
        gen: i64,
        waiting: usize,
    ) -> Result<Ranks> {
        let start = Instant::now();
        let mut st = c.prepare_cached(
            "SELECT pinned, entitled_at, user_id FROM seats WHERE license_rk = ? AND state = 'blocked'
             ORDER BY pinned DESC, entitled_at, user_id",
        )?;
        let rows = st.query_map(params![l], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                r.get::<_, i64>(1)?,
                r.with_str(2, canonical_uuid)?,
            ))
        })?;
        let mut keys = Vec::with_capacity(waiting);
        let mut pinned = 0;
        let mut canonical = true;
        for row in rows {
            let (is_pinned, entitled_at, id) = row?;
            let Some(id) = id else {
                canonical = false;
                break;
            };
            if is_pinned {
                pinned += 1;
            }
            keys.push(key(entitled_at, id));
        }
        debug_assert!(keys[..pinned].is_sorted() && keys[pinned..].is_sorted());
        let keys = canonical.then(|| {
            keys.shrink_to_fit();
            Keys { pinned, keys }
        });
        Ok(Ranks {
            license_id,
            gen,
            keys,
            built: Instant::now(),
            cost: start.elapsed(),
            used: AtomicU64::new(self.clock.load(Ordering::Relaxed)),
        })
    }

    fn insert(&self, st: &mut State, l: LicenseKey, r: Arc<Ranks>) {
        let len = |r: &Ranks| r.keys.as_ref().map_or(0, |k| k.keys.len());
        st.keys += len(&r);
        if let Some(old) = st.lists.insert(l, r) {
            st.keys -= len(&old);
        }
        while st.keys > MAX_KEYS {
            let Some(victim) = st
                .lists
                .iter()
                .filter(|(k, _)| **k != l)
                .min_by_key(|(_, r)| r.used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
            else {
                break;
            };
            let Some(old) = st.lists.remove(&victim) else {
                break;
            };
            st.keys -= len(&old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_numbers_sort_as_their_text() {
        let mut ids: Vec<String> = (0..500)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .chain((0..500).map(|_| uuid::Uuid::now_v7().to_string()))
            .collect();
        ids.sort();
        let keys: Vec<Key> = ids
            .iter()
            .map(|s| key(0, canonical_uuid(s).unwrap()))
            .collect();
        assert!(keys.is_sorted());
        assert_eq!(canonical_uuid("not-a-uuid"), None);
        let upper = uuid::Uuid::new_v4().to_string().to_uppercase();
        assert_eq!(canonical_uuid(&upper), None, "uppercase sorts differently");
        assert_eq!(
            canonical_uuid(&uuid::Uuid::new_v4().simple().to_string()),
            None
        );
    }

    #[test]
    fn positions_count_pinned_first_then_key_order() {
        let k = Keys {
            pinned: 2,
            keys: vec![key(5, 1), key(9, 0), key(1, 7), key(1, 1 << 64), key(3, 0)],
        };
        assert_eq!(k.position(true, key(5, 1)), Some(1));
        assert_eq!(k.position(true, key(9, 0)), Some(2));
        assert_eq!(k.position(false, key(1, 7)), Some(3));
        assert_eq!(k.position(false, key(1, 1 << 64)), Some(4));
        assert_eq!(k.position(false, key(3, 0)), Some(5));
        assert_eq!(
            k.position(false, key(5, 1)),
            None,
            "pinned key asked as unpinned"
        );
        assert_eq!(k.position(false, key(2, 0)), None, "not waiting");
    }
}
