//! Time as the model sees it: an injected clock, so that deletion windows, version retention
//! and rotation dates can be tested by moving time forward instead of waiting.

use serde::{Serialize, Serializer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in milliseconds since the Unix epoch.
///
/// On the wire it is written as epoch *seconds* (a JSON number, fractional when needed), which
/// is how the awsJson1.1 protocol encodes timestamps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// One day, the unit of `LastAccessedDate`, recovery windows and rotation rules.
    pub const DAY: Duration = Duration::from_secs(86_400);

    /// The timestamp `d` later.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }

    /// Midnight (UTC) of this timestamp's day: AWS reports `LastAccessedDate` at day precision.
    pub fn start_of_day(self) -> Timestamp {
        let day = Self::DAY.as_millis() as u64;
        Timestamp(self.0 / day * day)
    }

    /// Seconds since the epoch, as written on the wire.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_u64(self.0 / 1000)
        } else {
            s.serialize_f64(self.as_secs_f64())
        }
    }
}

/// Where the model reads the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// A clock shared between the model and whoever moves it.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's wall clock, used by `rotcheck serve`.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_millis() as u64)
    }
}

/// A clock that only moves when told to, so a test run is a function of its inputs.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock { millis: AtomicU64::new(start.0) })
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.millis.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.millis.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.millis.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_serialize_as_epoch_seconds() {
        assert_eq!(serde_json::to_string(&Timestamp(1_700_000_000_000)).unwrap(), "1700000000");
        assert_eq!(serde_json::to_string(&Timestamp(1_700_000_000_250)).unwrap(), "1700000000.25");
    }

    #[test]
    fn start_of_day_truncates() {
        let t = Timestamp(86_400_000 * 3 + 5_000);
        assert_eq!(t.start_of_day(), Timestamp(86_400_000 * 3));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(10));
        assert_eq!(c.now(), Timestamp(10));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Timestamp(1010));
    }
}
