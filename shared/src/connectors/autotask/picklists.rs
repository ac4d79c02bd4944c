//! An entity's fields and picklists, read once per client from `GET
//! {Entity}/entityInformation/fields` and kept for the client's life (the provider rebuilds
//! clients every few minutes, so a change in Autotask shows up then).
//!
//! Picklist values are tenant-specific. Vigil's settings name them by `value` (the integer as
//! text); defaults come from `isDefaultValue`; the completion status is the status labelled
//! "Complete" (Autotask's built-in completed status, 5 on most tenants) unless the routing
//! names another.

use super::client::AutotaskClient;
use crate::error::SinkError;
use serde_json::Value;
use std::sync::Arc;

/// The label of Autotask's completion status.
pub const COMPLETE_LABEL: &str = "Complete";

/// One picklist value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickValue {
    /// The stored value (an integer, as text).
    pub value: String,
    pub label: String,
    pub is_default: bool,
    pub is_active: bool,
    /// The parent field's value (sub-issue types), if any.
    pub parent: Option<String>,
}

/// One field of an entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub is_required: bool,
    pub is_read_only: bool,
    pub values: Vec<PickValue>,
}

/// An entity's fields, as `entityInformation/fields` describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityFields {
    pub fields: Vec<Field>,
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl EntityFields {
    /// Reads the answer of `entityInformation/fields` (unknown members ignored).
    #[must_use]
    pub fn parse(body: &Value) -> Self {
        let fields = body
            .get("fields")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|field| {
                let values = field
                    .get("picklistValues")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| {
                        Some(PickValue {
                            value: text(v.get("value"))?,
                            label: v.get("label").and_then(Value::as_str).unwrap_or_default().to_owned(),
                            is_default: v.get("isDefaultValue").and_then(Value::as_bool).unwrap_or(false),
                            is_active: v.get("isActive").and_then(Value::as_bool).unwrap_or(true),
                            parent: text(v.get("parentValue")),
                        })
                    })
                    .collect();
                Some(Field {
                    name: field.get("name")?.as_str()?.to_owned(),
                    is_required: field.get("isRequired").and_then(Value::as_bool).unwrap_or(false),
                    is_read_only: field.get("isReadOnly").and_then(Value::as_bool).unwrap_or(false),
                    values,
                })
            })
            .collect();
        Self { fields }
    }

    /// The field called `name` (case-insensitively).
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// Whether the entity has the field.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.field(name).is_some()
    }

    /// The picklist of `name` (empty when it has none).
    #[must_use]
    pub fn picklist(&self, name: &str) -> &[PickValue] {
        self.field(name).map(|f| f.values.as_slice()).unwrap_or_default()
    }

    /// The value `value` of `name`'s picklist, active or not.
    #[must_use]
    pub fn value(&self, name: &str, value: &str) -> Option<&PickValue> {
        self.picklist(name).iter().find(|v| v.value == value.trim())
    }

    /// The default active value of `name`'s picklist.
    #[must_use]
    pub fn default_of(&self, name: &str) -> Option<&str> {
        self.picklist(name).iter().find(|v| v.is_default && v.is_active).map(|v| v.value.as_str())
    }

    /// The label of `value` in `name`'s picklist.
    #[must_use]
    pub fn label(&self, name: &str, value: &str) -> Option<&str> {
        self.value(name, value).map(|v| v.label.as_str())
    }

    /// The completion status: `overridden`, else the status labelled [`COMPLETE_LABEL`].
    #[must_use]
    pub fn complete_status(&self, overridden: Option<&str>) -> Option<String> {
        overridden
            .map(|s| s.trim().to_owned())
            .or_else(|| self.picklist("status").iter().find(|v| v.label.eq_ignore_ascii_case(COMPLETE_LABEL)).map(|v| v.value.clone()))
    }

    /// The statuses that mean a ticket is closed: Autotask's Complete (whatever closed it) and
    /// the routing's closing status, if it names another.
    #[must_use]
    pub fn closing_statuses(&self, overridden: Option<&str>) -> Vec<String> {
        let mut closing: Vec<String> = self.complete_status(None).into_iter().collect();
        if let Some(overridden) = overridden.map(str::trim).filter(|s| !s.is_empty())
            && !closing.iter().any(|c| c == overridden)
        {
            closing.push(overridden.to_owned());
        }
        closing
    }

    /// Why `value` cannot be used in `name` (unknown or inactive), if it cannot.
    #[must_use]
    pub fn problem(&self, name: &str, value: &str) -> Option<String> {
        match self.value(name, value) {
            None => Some(format!("{name} {value} does not exist in Autotask")),
            Some(v) if !v.is_active => Some(format!("{name} {value} ({}) is inactive in Autotask", v.label)),
            Some(_) => None,
        }
    }
}

impl AutotaskClient {
    async fn fields_of(&self, entity: &str, cache: &tokio::sync::Mutex<Option<Arc<EntityFields>>>) -> Result<Arc<EntityFields>, SinkError> {
        let mut cached = cache.lock().await;
        if let Some(fields) = cached.as_ref() {
            return Ok(Arc::clone(fields));
        }
        let body = self.get(&format!("{entity}/entityInformation/fields"), "read picklists").await?;
        let fields = Arc::new(EntityFields::parse(&body));
        *cached = Some(Arc::clone(&fields));
        Ok(fields)
    }

    /// The ticket fields (read once per client).
    pub(super) async fn ticket_fields(&self) -> Result<Arc<EntityFields>, SinkError> {
        self.fields_of("Tickets", &self.ticket_fields).await
    }

    /// The ticket note fields (read once per client).
    pub(super) async fn note_fields(&self) -> Result<Arc<EntityFields>, SinkError> {
        self.fields_of("TicketNotes", &self.note_fields).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> EntityFields {
        EntityFields::parse(&json!({"fields": [
            {"name": "status", "isRequired": true, "isPickList": true, "picklistValues": [
                {"value": "1", "label": "New", "isDefaultValue": true, "isActive": true},
                {"value": "5", "label": "Complete", "isDefaultValue": false, "isActive": true},
                {"value": "14", "label": "On Hold", "isDefaultValue": false, "isActive": false}]},
            {"name": "subIssueType", "isPickList": true, "picklistValues": [
                {"value": "101", "label": "Suspicious Sign-in", "parentValue": "7", "isActive": true}]},
            {"name": "resolution", "isPickList": false, "picklistValues": null}
        ]}))
    }

    #[test]
    fn picklists_give_defaults_labels_and_the_complete_status() {
        let fields = fields();
        assert_eq!(fields.default_of("Status"), Some("1"));
        assert_eq!(fields.label("status", "5"), Some("Complete"));
        assert_eq!(fields.complete_status(None).as_deref(), Some("5"));
        assert_eq!(fields.complete_status(Some("12")).as_deref(), Some("12"), "the routing's override wins");
        assert_eq!(fields.closing_statuses(Some("12")), ["5", "12"], "Complete still means closed");
        assert_eq!(fields.closing_statuses(Some("5")), ["5"]);
        assert_eq!(fields.closing_statuses(None), ["5"]);
        assert_eq!(fields.value("subIssueType", "101").unwrap().parent.as_deref(), Some("7"));
        assert!(fields.has("resolution") && !fields.has("bogus"));
        assert!(fields.picklist("resolution").is_empty());
    }

    #[test]
    fn unknown_and_inactive_values_are_problems() {
        let fields = fields();
        assert_eq!(fields.problem("status", "1"), None);
        assert!(fields.problem("status", "14").unwrap().contains("inactive"));
        assert!(fields.problem("status", "99").unwrap().contains("does not exist"));
    }
}
