//! Zone serials that only ever increase (RFC 1982 arithmetic), across changes
//! and across restarts.
//!
//! Policy: the next serial is the current unix time in seconds, unless that
//! is not after the previous serial (several changes in one second, or a clock
//! set back), in which case it is the previous serial plus one. The last
//! serial and a digest of the zone contents are stored (`dns_zone_state`), so
//! a restart with unchanged data keeps its serial and a restart with changed
//! config moves forward. Time-based values also keep a freshly restored or
//! re-created database ahead of what secondaries already hold.

use super::answer::serial_lt;

/// The serial after `previous`, given the time `now_unix` (seconds).
pub fn next(previous: u32, now_unix: u64) -> u32 {
    // Truncation is the point: serials are 32-bit and compared mod 2^32.
    let now = now_unix as u32;
    if serial_lt(previous, now) {
        now
    } else {
        previous.wrapping_add(1)
    }
}

/// Now, in unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_clock_when_it_is_ahead() {
        assert_eq!(next(1_000, 2_000), 2_000);
    }

    #[test]
    fn counts_up_within_a_second_and_when_the_clock_goes_back() {
        assert_eq!(next(2_000, 2_000), 2_001);
        assert_eq!(next(2_001, 2_000), 2_002);
        assert_eq!(next(5_000, 10), 5_001);
    }

    #[test]
    fn wraps_as_rfc_1982_says() {
        assert_eq!(next(u32::MAX, 3), 3);
        assert!(serial_lt(u32::MAX, next(u32::MAX, 0)));
    }

    proptest::proptest! {
        #[test]
        fn always_increases(prev: u32, now: u64) {
            proptest::prop_assert!(serial_lt(prev, next(prev, now)));
        }
    }
}
