//! Flux's duplicate-event limiter: one event per key per
//! `--rate-limit-interval`.
//!
//! Flux's store (go-limiter's memory store with one token per interval)
//! starts a key's windows when it first sees the key: the first event is
//! let through, and every identical one until the window ends is refused;
//! the next window opens a whole number of intervals after the first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many keys are kept before expired ones are swept.
const SWEEP_AT: usize = 4096;

/// The limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let through; the window ends at this instant.
    Allowed {
        /// When the key's current window ends.
        reset: Instant,
    },
    /// A duplicate within the window.
    Limited {
        /// When the key's current window ends.
        reset: Instant,
    },
}

/// Windows of keys, one event per key per window.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the key was first seen: windows start at whole intervals after.
    start: Instant,
    /// The window (counted from `start`) the last allowed event fell in.
    used: u64,
}

impl RateLimiter {
    /// A limiter of one event per key per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Takes the key's token at `now`, if it is still there.
    pub fn take(&self, key: &str, now: Instant) -> Verdict {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= SWEEP_AT {
            let interval = self.interval;
            // A window that ended lets the next event through anyway.
            windows.retain(|_, w| {
                let ends = interval.saturating_mul(u32::try_from(w.used + 1).unwrap_or(u32::MAX));
                now.saturating_duration_since(w.start) < ends
            });
        }
        let Some(window) = windows.get_mut(key) else {
            windows.insert(
                key.to_string(),
                Window {
                    start: now,
                    used: 0,
                },
            );
            return Verdict::Allowed {
                reset: now + self.interval,
            };
        };
        let elapsed = now.saturating_duration_since(window.start);
        let tick = (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64;
        let reset = window.start
            + self
                .interval
                .saturating_mul(u32::try_from(tick + 1).unwrap_or(u32::MAX));
        if tick > window.used {
            window.used = tick;
            Verdict::Allowed { reset }
        } else {
            Verdict::Limited { reset }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_key_per_window() {
        let limiter = RateLimiter::new(Duration::from_secs(300));
        let t0 = Instant::now();
        assert_eq!(
            limiter.take("a", t0),
            Verdict::Allowed {
                reset: t0 + Duration::from_secs(300)
            }
        );
        assert_eq!(
            limiter.take("a", t0 + Duration::from_secs(60)),
            Verdict::Limited {
                reset: t0 + Duration::from_secs(300)
            }
        );
        // Other keys are independent.
        assert!(matches!(
            limiter.take("b", t0 + Duration::from_secs(60)),
            Verdict::Allowed { .. }
        ));
        // The next window starts a whole interval after the first sight.
        assert_eq!(
            limiter.take("a", t0 + Duration::from_secs(301)),
            Verdict::Allowed {
                reset: t0 + Duration::from_secs(600)
            }
        );
        assert!(matches!(
            limiter.take("a", t0 + Duration::from_secs(599)),
            Verdict::Limited { .. }
        ));
        assert!(matches!(
            limiter.take("a", t0 + Duration::from_secs(1000)),
            Verdict::Allowed { .. }
        ));
    }

    #[test]
    fn many_keys_are_swept() {
        let limiter = RateLimiter::new(Duration::from_millis(10));
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            limiter.take(&i.to_string(), t0);
        }
        limiter.take("late", t0 + Duration::from_secs(1));
        let kept = limiter.windows.lock().unwrap().len();
        assert_eq!(kept, 1, "expired windows are dropped");
    }
}
