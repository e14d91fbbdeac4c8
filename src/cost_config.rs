//! `platform.cost_late_event_window`: how old a cost event may be when it is
//! inserted. A superuser-only setting (`ALTER DATABASE ... SET` or
//! postgresql.conf), so an application cannot widen it for itself; read by the
//! cost triggers through `platform_late_event_window()`, which also makes sure
//! this library (and so the setting) is loaded in the backend.

use pgrx::datum::Interval;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;

const MINUTES_PER_DAY: i32 = 24 * 60;

/// In minutes (so `'35d'`, `'36h'` and `'90min'` all work); 0 turns the window off.
static LATE_EVENT_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(35 * MINUTES_PER_DAY);

pub fn register_settings() {
    GucRegistry::define_int_guc(
        c"platform.cost_late_event_window",
        c"How old a cost event may be when it is inserted (0 = no limit).",
        c"INSERTs into cost_events older than now() minus this window are refused, so closed \
          months stay as reported. Sessions with row_security = off (restores, backfills) are exempt.",
        &LATE_EVENT_WINDOW,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MIN,
    );
}

/// The window as days and minutes, or `None` when it is off.
fn window_parts(minutes: i32) -> Option<(i32, i64)> {
    (minutes > 0).then(|| {
        (
            minutes / MINUTES_PER_DAY,
            i64::from(minutes % MINUTES_PER_DAY) * 60 * 1_000_000,
        )
    })
}

/// The late-event window, NULL when it is off.
#[pg_extern(stable, parallel_safe)]
fn platform_late_event_window() -> Option<Interval> {
    window_parts(LATE_EVENT_WINDOW.get()).map(|(days, micros)| {
        Interval::new(0, days, micros).expect("days and minutes of an i32 fit an interval")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_turns_the_window_off() {
        assert_eq!(window_parts(0), None);
    }

    #[test]
    fn whole_days_and_the_remaining_minutes() {
        assert_eq!(window_parts(35 * MINUTES_PER_DAY), Some((35, 0)));
        assert_eq!(
            window_parts(MINUTES_PER_DAY + 90),
            Some((1, 90 * 60 * 1_000_000))
        );
    }
}
