//! Microsoft's own alerts: Security & Compliance alerts (RecordType 40) and automated
//! investigations (RecordType 64).

use super::fields::{Fields, Malformed};
use super::{COMMON_FIELDS, Entity, EntityList};
use crate::alert::Severity;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A Security & Compliance alert event (RecordType 40): `AlertTriggered`,
/// `AlertEntityGenerated`, `AlertUpdated`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplianceAlert {
    /// `AlertId`: correlates the triggered, entity and updated events of one alert.
    pub alert_id: Option<String>,
    /// `AlertType`: `System` or `Custom`.
    pub alert_type: Option<String>,
    /// `Name`: the alert name.
    pub name: Option<String>,
    pub policy_id: Option<String>,
    /// `Status`: `Active`, `Investigating`, `Resolved`, `Dismissed`.
    pub status: Option<String>,
    /// `Severity` as received: `Low`, `Medium`, `High`, maybe `Informational`.
    pub severity: Option<String>,
    pub category: Option<String>,
    pub source: Option<String>,
    pub comments: Option<String>,
    /// `Data`: the JSON document Microsoft sends encoded in a string, decoded.
    pub data: Option<Value>,
    /// `AlertEntityId` (only on `AlertEntityGenerated`).
    pub alert_entity_id: Option<String>,
    /// `EntityType`: `User`, `Recipients`, `Sender`, `MalwareFamily`.
    pub entity_type: Option<String>,
    /// `AlertLinks[].AlertLinkHref`.
    pub alert_links: Vec<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ComplianceAlert {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            alert_id: f.string("AlertId")?,
            alert_type: f.string("AlertType")?,
            name: f.string("Name")?,
            policy_id: f.string("PolicyId")?,
            status: f.string("Status")?,
            severity: f.string("Severity")?,
            category: f.string("Category")?,
            source: f.string("Source")?,
            comments: f.string("Comments")?,
            data: f.json("Data")?,
            alert_entity_id: f.string("AlertEntityId")?,
            entity_type: f.string("EntityType")?,
            alert_links: f.objects("AlertLinks", |f| f.string("AlertLinkHref"))?.into_iter().flatten().collect(),
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// The severity as a Vigil severity (`None` when absent or unknown).
    #[must_use]
    pub fn vigil_severity(&self) -> Option<Severity> {
        match self.severity.as_deref()?.trim().to_ascii_lowercase().as_str() {
            "high" => Some(Severity::High),
            "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "informational" => Some(Severity::Informational),
            _ => None,
        }
    }

    /// One string value of the decoded `Data` (`f3u`, `op`, `wl`, …).
    #[must_use]
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.as_ref()?.get(key)?.as_str()
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        for key in ["f3u", "suid"] {
            if let Some(user) = self.data_str(key) {
                out.user(user);
            }
        }
        if let (Some(id), Some(kind)) = (&self.alert_entity_id, &self.entity_type) {
            match kind.to_ascii_lowercase().as_str() {
                "user" => out.user(id),
                "recipients" | "sender" => out.mailbox(id),
                _ => {}
            }
        }
    }
}

/// An automated investigation status change (RecordType 64, Defender for Office 365 Plan 2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AirInvestigation {
    pub investigation_id: Option<String>,
    pub investigation_name: Option<String>,
    /// `InvestigationType`, e.g. `User-Reported Messages`, `Zapped Phish`.
    pub investigation_type: Option<String>,
    /// `Status`, e.g. `Pending Action`, `Threats Found`, `Remediated`.
    pub status: Option<String>,
    pub start_time_utc: Option<DateTime<Utc>>,
    pub last_update_time_utc: Option<DateTime<Utc>>,
    pub deeplink_url: Option<String>,
    /// `Actions`: objects, or strings holding JSON (decoded when they do).
    pub actions: Vec<Value>,
    /// `Data`: entities and related alerts, decoded from its JSON string.
    pub data: Option<Value>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AirInvestigation {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        let actions = match f.value("Actions") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().map(|item| crate::audit::json_in_string(item).unwrap_or_else(|| item.clone())).collect()
            }
            Some(other) => vec![crate::audit::json_in_string(other).unwrap_or_else(|| other.clone())],
        };
        Ok(Self {
            investigation_id: f.string("InvestigationId")?,
            investigation_name: f.string("InvestigationName")?,
            investigation_type: f.string("InvestigationType")?,
            status: f.string("Status")?,
            start_time_utc: f.time("StartTimeUtc")?,
            last_update_time_utc: f.time("LastUpdateTimeUtc")?,
            deeplink_url: f.string("DeeplinkURL")?,
            actions,
            data: f.json("Data")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// The entities listed in `Data` (`Entities[]` with a `Type`).
    pub fn data_entities(&self) -> impl Iterator<Item = &Map<String, Value>> {
        let entities = self.data.as_ref().and_then(|data| data.get("Entities")).and_then(Value::as_array);
        entities.into_iter().flatten().filter_map(Value::as_object)
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        for entity in self.data_entities() {
            let text = |key: &str| entity.get(key).and_then(Value::as_str);
            match text("Type").unwrap_or_default().to_ascii_lowercase().as_str() {
                "mailbox" => {
                    if let Some(address) = text("MailboxPrimaryAddress").or_else(|| text("Upn")) {
                        out.mailbox(address);
                    }
                }
                "ip" => {
                    if let Some(address) = text("Address") {
                        out.ip(address);
                    }
                }
                "url" => {
                    if let Some(url) = text("Url") {
                        out.push(Entity::Url(url.to_owned()));
                    }
                }
                "file" => {
                    if let Some(name) = text("Name").or_else(|| text("FileName")) {
                        let sha256 = text("Sha256").or_else(|| text("SHA256")).map(str::to_owned);
                        out.push(Entity::File { name: name.to_owned(), path: text("Directory").map(str::to_owned), sha256 });
                    }
                }
                _ => {}
            }
        }
    }
}
