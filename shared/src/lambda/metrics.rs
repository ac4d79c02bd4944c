//! CloudWatch metrics in Embedded Metric Format (EMF): one JSON document per flush, written to
//! stdout, which Lambda forwards to CloudWatch Logs where the metrics are extracted. Dimensions
//! are bounded (`Service`, and `ErrorClass` from a closed enum); never tenant ids or free text.
//! Outside Lambda (`AWS_LAMBDA_FUNCTION_NAME` unset: tests, the local stack) nothing is written.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The CloudWatch namespace of every Vigil metric.
pub const NAMESPACE: &str = "Vigil";

/// Counters for one invocation, flushed as EMF documents.
#[derive(Debug)]
pub struct MetricSet {
    service: &'static str,
    counts: Mutex<BTreeMap<(&'static str, Option<&'static str>), f64>>,
}

impl MetricSet {
    /// Counters for `service` (a function name).
    #[must_use]
    pub fn new(service: &'static str) -> Self {
        Self { service, counts: Mutex::new(BTreeMap::new()) }
    }

    /// Adds to a counter, optionally under an error class.
    pub fn count(&self, metric: &'static str, error_class: Option<&'static str>, value: f64) {
        *self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry((metric, error_class)).or_default() += value;
    }

    /// The EMF documents for the counters so far, and resets them.
    #[must_use]
    pub fn take_documents(&self, timestamp_millis: i64) -> Vec<Value> {
        let counts = std::mem::take(&mut *self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut grouped: BTreeMap<Option<&'static str>, Vec<(&'static str, f64)>> = BTreeMap::new();
        for ((metric, class), value) in counts {
            grouped.entry(class).or_default().push((metric, value));
        }
        grouped
            .into_iter()
            .map(|(class, metrics)| {
                let mut dimensions = vec!["Service"];
                let mut document = Map::new();
                document.insert("Service".into(), json!(self.service));
                if let Some(class) = class {
                    dimensions.push("ErrorClass");
                    document.insert("ErrorClass".into(), json!(class));
                }
                let definitions: Vec<Value> = metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect();
                for (name, value) in metrics {
                    document.insert(name.into(), json!(value));
                }
                document.insert(
                    "_aws".into(),
                    json!({"Timestamp": timestamp_millis, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": definitions}]}),
                );
                Value::Object(document)
            })
            .collect()
    }

    /// Writes the documents to stdout when running in Lambda; drops them elsewhere.
    pub fn flush(&self) {
        let documents = self.take_documents(chrono::Utc::now().timestamp_millis());
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
            for document in documents {
                println!("{document}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_emf_and_keep_dimensions_bounded() {
        let metrics = MetricSet::new("ticket-dispatcher");
        metrics.count("TicketsCreated", None, 1.0);
        metrics.count("TicketsCreated", None, 1.0);
        metrics.count("MessagesFailed", Some("transient"), 1.0);
        let documents = metrics.take_documents(1_700_000_000_000);
        assert_eq!(documents.len(), 2);
        let plain = &documents[0];
        assert_eq!(plain["TicketsCreated"], 2.0);
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Vigil");
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service"]]));
        let failed = &documents[1];
        assert_eq!(failed["ErrorClass"], "transient");
        assert_eq!(failed["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Service", "ErrorClass"]]));
        assert!(metrics.take_documents(0).is_empty(), "flushing resets the counters");
    }
}
