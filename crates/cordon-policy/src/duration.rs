//! Durations in policy files: `"7d"`, `"36h"`, `"90m"`, `"45s"`, or an integer of seconds.

use serde::Deserialize;

/// A duration as written in a policy file, before validation.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub(crate) enum RawDuration {
    Secs(i64),
    Text(String),
}

impl RawDuration {
    /// Whole seconds, at least 1.
    pub(crate) fn seconds(&self) -> Result<u64, String> {
        match self {
            RawDuration::Secs(n) if *n >= 1 => Ok(*n as u64),
            RawDuration::Secs(_) => Err("must be at least 1 second".into()),
            RawDuration::Text(t) => parse_duration(t),
        }
    }
}

/// Parses `N`, `Ns`, `Nm`, `Nh` or `Nd` into seconds (at least 1).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, "s"),
    };
    let bad =
        || format!("{text:?} is not a duration (use e.g. \"7d\", \"36h\", \"90m\" or seconds)");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if secs == 0 {
        return Err("must be at least 1 second".into());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn units() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("36h"), Ok(36 * 3600));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("45s"), Ok(45));
        assert_eq!(parse_duration("120"), Ok(120));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "d",
            "0",
            "0d",
            "7w",
            "-1",
            "1.5h",
            "99999999999999999999d",
            "7 d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
