//! Trigger state: what a threshold or an unusual-activity policy remembers per group key
//! between messages. Pure logic; [`crate::ports::TriggerStateStore`] keeps it (DynamoDB, TTL).
//!
//! **Threshold** — the matches of a key within the sliding window, each with its record id (so
//! a redelivered record is never counted twice) and, for distinct counts, the counted value.
//! When a match brings the count (or the number of distinct values) within
//! `(t − window, t]` to `count`, that match *fires*: every not-yet-reported match in its window
//! becomes a hit of the alert of the firing match's aggregation window, and so does each later
//! match while the count stays at or above `count`. Kept entries are bounded (`2 × count`
//! latest, or the latest per distinct value).
//!
//! **Unusual activity** — hourly match counts over the last 8 days, per key. An hour is unusual
//! when the key has at least 7 days of history before it (the warm-up: no alerts before) and
//! its count is at least `min_count` and greater than `μ + 3·max(σ, 1)`, where μ and σ are the
//! mean and standard deviation of the key's 168 hourly counts before that hour (hours without
//! matches count as 0). `max(σ, 1)` keeps a perfectly flat baseline from firing on one extra
//! event. Increments are applied once per message (the message's id is remembered).

use crate::ids::RecordId;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hours of history an unusual-activity baseline needs before it may fire.
pub const BASELINE_HOURS: i64 = 168;
/// How many message ids a baseline remembers to apply each message once.
const APPLIED_KEPT: usize = 64;

/// One match of a threshold or unusual-activity policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub record_id: RecordId,
    pub at: DateTime<Utc>,
    /// The value a distinct-count threshold counts.
    pub distinct: Option<String>,
}

/// A threshold crossed: these records are hits of the alert whose window contains `anchor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// The match that crossed (or stayed above) the threshold.
    pub anchor: RecordId,
    pub anchor_time: DateTime<Utc>,
    pub records: Vec<(RecordId, DateTime<Utc>)>,
    /// The count (or distinct count) at the firing match.
    pub measured: u32,
}

/// A remembered match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdEntry {
    pub id: RecordId,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Already a hit of an alert.
    #[serde(default)]
    pub reported: bool,
}

/// The state of one threshold key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdState {
    pub entries: Vec<ThresholdEntry>,
}

impl ThresholdState {
    /// Adds observations (any order) and returns the firings, oldest first.
    pub fn observe(&mut self, observations: &[Observation], count: u32, window: Duration, distinct: bool) -> Vec<Firing> {
        let mut sorted: Vec<&Observation> = observations.iter().collect();
        sorted.sort_by_key(|o| o.at);
        let mut firings = Vec::new();
        for observation in sorted {
            if !self.entries.iter().any(|e| e.id == observation.record_id) {
                self.entries.push(ThresholdEntry {
                    id: observation.record_id.clone(),
                    at: observation.at,
                    value: observation.distinct.clone(),
                    reported: false,
                });
            }
            let from = observation.at - window;
            let in_window = |e: &ThresholdEntry| e.at > from && e.at <= observation.at;
            let measured = if distinct {
                let mut values: Vec<&str> = self.entries.iter().filter(|e| in_window(e)).filter_map(|e| e.value.as_deref()).collect();
                values.sort_unstable();
                values.dedup();
                values.len()
            } else {
                self.entries.iter().filter(|e| in_window(e)).count()
            };
            let measured = u32::try_from(measured).unwrap_or(u32::MAX);
            if measured >= count {
                let mut records = Vec::new();
                for entry in self.entries.iter_mut().filter(|e| e.at > from && e.at <= observation.at) {
                    if !entry.reported || entry.id == observation.record_id {
                        entry.reported = true;
                        records.push((entry.id.clone(), entry.at));
                    }
                }
                firings.push(Firing { anchor: observation.record_id.clone(), anchor_time: observation.at, records, measured });
            }
            if self.entries.len() > 4 * (count as usize).max(1) {
                self.prune(count, window, distinct);
            }
        }
        self.prune(count, window, distinct);
        firings
    }

    fn prune(&mut self, count: u32, window: Duration, distinct: bool) {
        let Some(newest) = self.entries.iter().map(|e| e.at).max() else { return };
        self.entries.retain(|e| e.at > newest - window);
        self.entries.sort_by_key(|e| e.at);
        if distinct {
            // The latest entry of each value is enough to count values.
            let mut seen = std::collections::HashSet::new();
            let mut kept: Vec<ThresholdEntry> = self.entries.drain(..).rev().filter(|e| seen.insert(e.value.clone())).collect();
            kept.reverse();
            self.entries = kept;
        }
        let cap = (count as usize).saturating_mul(2).max(2);
        if self.entries.len() > cap {
            self.entries.drain(..self.entries.len() - cap);
        }
    }

    /// When the state may be forgotten: a window after its newest entry.
    #[must_use]
    pub fn expires(&self, window: Duration) -> DateTime<Utc> {
        self.entries.iter().map(|e| e.at).max().unwrap_or_else(Utc::now) + window + Duration::hours(1)
    }
}

/// What an unusual hour looked like against its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unusual {
    pub hour_start: DateTime<Utc>,
    pub count: u32,
    pub mean: f64,
    pub stddev: f64,
}

impl Unusual {
    /// The alert's "Trigger" fact: the hour's count against its baseline.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} matches in the hour from {} UTC; 7-day baseline {:.1} per hour (standard deviation {:.1})",
            self.count,
            self.hour_start.format("%Y-%m-%d %H:%M"),
            self.mean,
            self.stddev
        )
    }
}

/// The hourly history of one unusual-activity key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineState {
    /// The first hour (hours since the epoch) the key was seen: the warm-up starts there.
    pub first_hour: Option<i64>,
    /// Match counts by hour since the epoch (the last 8 days). Stored as a JSON object, whose
    /// keys are text: read back through [`hours_from_text_keys`], since the tagged
    /// [`TriggerState`] buffers its content and then no longer turns text keys into numbers.
    #[serde(deserialize_with = "hours_from_text_keys")]
    pub hours: BTreeMap<i64, u32>,
    /// Messages already applied, newest last.
    pub applied: Vec<String>,
}

/// Reads hourly counts whose hour keys are text (as JSON object keys always are) or numbers.
fn hours_from_text_keys<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<i64, u32>, D::Error> {
    #[derive(Deserialize, PartialEq, Eq, PartialOrd, Ord)]
    #[serde(untagged)]
    enum HourKey {
        Number(i64),
        Text(String),
    }
    let raw = BTreeMap::<HourKey, u32>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, count)| match key {
            HourKey::Number(hour) => Ok((hour, count)),
            HourKey::Text(text) => text.parse().map(|hour| (hour, count)).map_err(serde::de::Error::custom),
        })
        .collect()
}

/// Hours since the epoch.
#[must_use]
pub fn hour_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(3600)
}

impl BaselineState {
    /// Counts a message's matches once per `message_id`; returns whether they were new.
    pub fn apply(&mut self, message_id: &str, times: &[DateTime<Utc>]) -> bool {
        if self.applied.iter().any(|m| m == message_id) {
            return false;
        }
        for at in times {
            let hour = hour_of(*at);
            *self.hours.entry(hour).or_default() += 1;
            self.first_hour = Some(self.first_hour.map_or(hour, |first| first.min(hour)));
        }
        self.applied.push(message_id.to_owned());
        if self.applied.len() > APPLIED_KEPT {
            self.applied.remove(0);
        }
        if let Some(newest) = self.hours.keys().next_back().copied() {
            self.hours.retain(|hour, _| *hour > newest - BASELINE_HOURS - 24);
        }
        true
    }

    /// Whether the hour containing `at` is unusual (see the module docs).
    #[must_use]
    pub fn unusual_at(&self, at: DateTime<Utc>, min_count: u32) -> Option<Unusual> {
        let hour = hour_of(at);
        let first = self.first_hour?;
        if first > hour - BASELINE_HOURS {
            return None;
        }
        let count = self.hours.get(&hour).copied().unwrap_or(0);
        let history: Vec<f64> = (hour - BASELINE_HOURS..hour).map(|h| f64::from(self.hours.get(&h).copied().unwrap_or(0))).collect();
        let mean = history.iter().sum::<f64>() / history.len() as f64;
        let variance = history.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / history.len() as f64;
        let stddev = variance.sqrt();
        let margin = mean + 3.0 * stddev.max(1.0);
        (count >= min_count && f64::from(count) > margin).then(|| Unusual {
            hour_start: DateTime::from_timestamp(hour * 3600, 0).unwrap_or(at),
            count,
            mean,
            stddev,
        })
    }

    /// When the state may be forgotten: 8 days after its newest hour.
    #[must_use]
    pub fn expires(&self) -> DateTime<Utc> {
        let newest = self.hours.keys().next_back().copied().unwrap_or_else(|| hour_of(Utc::now()));
        DateTime::from_timestamp((newest + BASELINE_HOURS + 24) * 3600, 0).unwrap_or_else(Utc::now)
    }
}

/// The stored state of one trigger key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerState {
    Threshold(ThresholdState),
    Baseline(BaselineState),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_600_000 + minute * 60, 0).unwrap()
    }

    fn obs(id: &str, minute: i64) -> Observation {
        Observation { record_id: RecordId::parse(id).unwrap(), at: at(minute), distinct: None }
    }

    fn distinct(id: &str, minute: i64, value: &str) -> Observation {
        Observation { distinct: Some(value.to_owned()), ..obs(id, minute) }
    }

    #[test]
    fn n_minus_one_matches_in_the_window_do_not_fire_and_the_nth_does() {
        let mut state = ThresholdState::default();
        let window = Duration::minutes(10);
        assert!(state.observe(&[obs("a", 0), obs("b", 3), obs("c", 6), obs("d", 8)], 5, window, false).is_empty());
        let firings = state.observe(&[obs("e", 9)], 5, window, false);
        assert_eq!(firings.len(), 1);
        assert_eq!(firings[0].records.len(), 5, "all five matches become hits");
        assert_eq!(firings[0].measured, 5);
        let later = state.observe(&[obs("f", 9)], 5, window, false);
        assert_eq!(later[0].records.len(), 1, "a later match adds only itself");
    }

    #[test]
    fn the_window_is_half_open_at_its_start() {
        let window = Duration::minutes(10);
        let mut state = ThresholdState::default();
        // a at 0 is exactly one window before d at 10: outside (t − window, t].
        assert!(state.observe(&[obs("a", 0), obs("b", 4), obs("c", 7), obs("d", 10)], 4, window, false).is_empty());
        let mut state = ThresholdState::default();
        assert_eq!(state.observe(&[obs("a", 1), obs("b", 4), obs("c", 7), obs("d", 10)], 4, window, false).len(), 1);
    }

    #[test]
    fn a_redelivered_match_is_not_counted_twice() {
        let mut state = ThresholdState::default();
        let window = Duration::minutes(10);
        assert!(state.observe(&[obs("a", 0), obs("b", 1)], 3, window, false).is_empty());
        assert!(state.observe(&[obs("a", 0), obs("b", 1)], 3, window, false).is_empty(), "same records again");
        assert_eq!(state.observe(&[obs("c", 2)], 3, window, false).len(), 1);
    }

    #[test]
    fn distinct_counts_count_values_not_matches() {
        let mut state = ThresholdState::default();
        let window = Duration::minutes(10);
        let same_user = [distinct("a", 0, "u1"), distinct("b", 1, "u1"), distinct("c", 2, "u1"), distinct("d", 3, "u2")];
        assert!(state.observe(&same_user, 3, window, true).is_empty(), "two distinct users");
        let firings = state.observe(&[distinct("e", 4, "U3".to_lowercase().as_str())], 3, window, true);
        assert_eq!(firings.len(), 1);
        assert_eq!(firings[0].measured, 3);
    }

    #[test]
    fn state_stays_bounded_under_a_storm() {
        let mut state = ThresholdState::default();
        let storm: Vec<Observation> = (0..10_000).map(|i| obs(&format!("r{i}"), i % 10)).collect();
        let firings = state.observe(&storm, 10, Duration::minutes(15), false);
        let hits: usize = firings.iter().map(|f| f.records.len()).sum();
        assert_eq!(hits, 10_000, "every match of the storm is a hit exactly once");
        assert!(state.entries.len() <= 20);
    }

    fn hourly(state: &mut BaselineState, from_hour: i64, hours: i64, per_hour: u32) {
        for h in from_hour..from_hour + hours {
            let times: Vec<DateTime<Utc>> = (0..per_hour).map(|_| DateTime::from_timestamp(h * 3600 + 60, 0).unwrap()).collect();
            state.apply(&format!("m{h}"), &times);
        }
    }

    #[test]
    fn a_baseline_survives_the_json_it_is_stored_as() {
        let mut state = BaselineState::default();
        hourly(&mut state, 490_000, 30, 3);
        let stored = TriggerState::Baseline(state);
        let text = serde_json::to_string(&stored).unwrap();
        assert_eq!(serde_json::from_str::<TriggerState>(&text).unwrap(), stored, "{text}");
    }

    #[test]
    fn unusual_activity_stays_silent_during_the_seven_day_warm_up() {
        let mut state = BaselineState::default();
        let start = 490_000;
        hourly(&mut state, start, 100, 2);
        state.apply("burst", &vec![DateTime::from_timestamp((start + 100) * 3600, 0).unwrap(); 500]);
        assert_eq!(state.unusual_at(DateTime::from_timestamp((start + 100) * 3600, 0).unwrap(), 10), None);
    }

    #[test]
    fn unusual_activity_fires_above_the_learned_baseline_and_not_within_it() {
        let mut state = BaselineState::default();
        let start = 490_000;
        // Two a hour, with one busy hour of 6 a day: μ ≈ 2.2, σ ≈ 0.8, margin = μ + 3 ≈ 5.2.
        for h in start..start + BASELINE_HOURS {
            let n = if h % 24 == 10 { 6 } else { 2 };
            state.apply(&format!("m{h}"), &vec![DateTime::from_timestamp(h * 3600 + 5, 0).unwrap(); n]);
        }
        let now_hour = start + BASELINE_HOURS;
        let t = DateTime::from_timestamp(now_hour * 3600 + 30, 0).unwrap();
        state.apply("normal", &[t; 5]);
        assert_eq!(state.unusual_at(t, 3), None, "5 is within the margin");
        state.apply("burst", &vec![t; 40]);
        let unusual = state.unusual_at(t, 3).expect("45 in an hour is unusual");
        assert_eq!(unusual.count, 45);
        assert!(unusual.mean > 2.0 && unusual.mean < 2.5, "{unusual:?}");
        assert!(!state.apply("burst", &[t]), "a message is applied once");
        assert_eq!(state.unusual_at(t, 100), None, "min_count holds back small tenants");
    }
}
