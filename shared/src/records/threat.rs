//! Defender for Office 365 (Threat Intelligence): e-mail detections (RecordType 28), Safe Links
//! clicks (RecordType 41) and file detections in SharePoint/OneDrive/Teams (RecordType 47).

use super::fields::{Fields, Malformed, NameValues, coded_enum};
use super::{COMMON_FIELDS, Entity, EntityList};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

coded_enum! {
    /// `FileVerdict` of an attachment or file.
    pub enum FileVerdict {
        Good(0),
        Bad(1, "Malicious"),
        Error(-1),
        Timeout(-2),
        Pending(-3),
    }
}

coded_enum! {
    /// `Policy`: the policy that acted on a message. Documented as numbers, observed as names
    /// (`"SafeAttachements"`, sic).
    pub enum ThreatPolicy {
        HighConfidenceSpam(1, "HSPM"),
        Spam(2, "SPM"),
        Bulk(3, "BULK"),
        Phish(4, "PHSH"),
        DomainImpersonation(5, "DIMP"),
        UserImpersonation(6, "UIMP"),
        Spoof(7, "SPOOF"),
        MailboxIntelligenceImpersonation(8, "GIMP"),
        AntiMalware(9, "AMP"),
        SafeAttachment(10, "SAP", "SafeAttachements", "SafeAttachments"),
        TransportRule(11, "ETR"),
        MalwareZap(12, "ZAPM"),
        PhishZap(13, "ZAPP"),
        SpamZap(14, "ZAPS"),
        HighConfidencePhish(15, "HPHISH"),
        OutboundSpam(17, "OSPM"),
    }
}

coded_enum! {
    /// `PolicyAction`: the action the policy was configured to take. Documented as numbers,
    /// observed as names (`"Quarantine"`).
    pub enum PolicyAction {
        MoveToJmf(0, "MoveToJunkMailFolder"),
        AddXHeader(1),
        ModifySubject(2),
        Redirect(3),
        Delete(4),
        Quarantine(5),
        NoAction(6),
        BccMessage(7),
        ReplaceAttachment(8),
    }
}

coded_enum! {
    /// `UrlClickAction` (docs: `URLClickAction`): numbers in some tenants, strings in others.
    pub enum UrlClickAction {
        BlockPage(2),
        PendingDetonationPage(3),
        BlockPageOverride(4),
        PendingDetonationPageOverride(5),
    }
}

impl UrlClickAction {
    /// The user clicked through a warning page.
    #[must_use]
    pub fn is_override(&self) -> bool {
        matches!(self, Self::BlockPageOverride | Self::PendingDetonationPageOverride)
    }
}

coded_enum! {
    /// `SourceWorkload` of a file detection.
    pub enum SourceWorkload {
        SharePoint(0),
        OneDrive(1),
        MicrosoftTeams(2, "Teams"),
    }
}

/// One entry of `AttachmentData`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    pub file_name: Option<String>,
    /// `FileType`, e.g. `exe;zip`.
    pub file_type: Option<String>,
    pub file_verdict: Option<FileVerdict>,
    /// `MalwareFamily` (may be the literal `Malicious Payload`).
    pub malware_family: Option<String>,
    /// `SHA256`: usually hex, kept as received.
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Attachment {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            file_name: f.string("FileName")?,
            file_type: f.string("FileType")?,
            file_verdict: f.coded("FileVerdict")?,
            malware_family: f.string("MalwareFamily")?,
            sha256: f.string("SHA256")?,
            extra: f.extra(&[]),
        })
    }
}

/// One entry of `SystemOverrides` (tenant allow/block list, transport rule, safe sender, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemOverride {
    pub details: Option<String>,
    pub final_override: Option<String>,
    pub result: Option<String>,
    pub source: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SystemOverride {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            details: f.string("Details")?,
            final_override: f.string("FinalOverride")?,
            result: f.string("Result")?,
            source: f.string("Source")?,
            extra: f.extra(&[]),
        })
    }
}

/// An e-mail detection (RecordType 28 ThreatIntelligence, `TIMailData`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmailThreat {
    pub network_message_id: Option<String>,
    pub internet_message_id: Option<String>,
    /// `P1Sender`: the envelope sender (may be SRS/BATV encoded).
    pub p1_sender: Option<String>,
    /// `P2Sender`: the header From.
    pub p2_sender: Option<String>,
    pub recipients: Vec<String>,
    pub sender_ip: Option<String>,
    pub subject: Option<String>,
    pub message_time: Option<DateTime<Utc>>,
    /// `Verdict`, e.g. `Malware`, `Phish`, `Spam`.
    pub verdict: Option<String>,
    /// `DetectionType`: `Inline`, `Delayed`, `ZAP`.
    pub detection_type: Option<String>,
    pub detection_method: Option<String>,
    pub threats_and_detection_tech: Vec<String>,
    pub additional_actions_and_results: Vec<String>,
    pub policy: Option<ThreatPolicy>,
    pub policy_action: Option<PolicyAction>,
    pub delivery_action: Option<String>,
    pub original_delivery_location: Option<String>,
    pub latest_delivery_location: Option<String>,
    pub directionality: Option<String>,
    pub phish_confidence_level: Option<String>,
    pub attachments: Vec<Attachment>,
    /// `AuthDetails`: `SPF`, `DKIM`, `DMARC`, `Comp Auth`.
    pub auth_details: NameValues,
    pub system_overrides: Vec<SystemOverride>,
    pub connectors: Option<String>,
    pub campaign_id: Option<String>,
    pub event_deep_link: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl EmailThreat {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            network_message_id: f.string("NetworkMessageId")?,
            internet_message_id: f.string("InternetMessageId")?,
            p1_sender: f.string("P1Sender")?,
            p2_sender: f.string("P2Sender")?,
            recipients: f.strings("Recipients")?,
            sender_ip: f.string("SenderIp")?,
            subject: f.string("Subject")?,
            message_time: f.time("MessageTime")?,
            verdict: f.string("Verdict")?,
            detection_type: f.string("DetectionType")?,
            detection_method: f.string("DetectionMethod")?,
            threats_and_detection_tech: f.strings("ThreatsAndDetectionTech")?,
            additional_actions_and_results: f.strings("AdditionalActionsAndResults")?,
            policy: f.coded("Policy")?,
            policy_action: f.coded("PolicyAction")?,
            delivery_action: f.string("DeliveryAction")?,
            original_delivery_location: f.string("OriginalDeliveryLocation")?,
            latest_delivery_location: f.string("LatestDeliveryLocation")?,
            directionality: f.string("Directionality")?,
            phish_confidence_level: f.string("PhishConfidenceLevel")?,
            attachments: f.objects("AttachmentData", Attachment::read)?,
            auth_details: f.name_values("AuthDetails")?,
            system_overrides: f.objects("SystemOverrides", SystemOverride::read)?,
            connectors: f.string("Connectors")?,
            campaign_id: f.string("CampaignId")?,
            event_deep_link: f.string("EventDeepLink")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// Attachments with a `Bad` verdict.
    pub fn malicious_attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.attachments.iter().filter(|attachment| attachment.file_verdict == Some(FileVerdict::Bad))
    }

    /// The message reached a mailbox (`LatestDeliveryLocation` is neither quarantine, junk, nor
    /// blocked/dropped), so a user may have seen it.
    #[must_use]
    pub fn reached_mailbox(&self) -> bool {
        let location = self
            .latest_delivery_location
            .as_deref()
            .or(self.original_delivery_location.as_deref())
            .unwrap_or_default()
            .to_ascii_lowercase();
        !location.is_empty()
            && !["quarantine", "junk", "blocked", "dropped", "failed", "deleted"].iter().any(|word| location.contains(word))
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        for recipient in &self.recipients {
            out.mailbox(recipient);
        }
        for sender in [&self.p2_sender, &self.p1_sender].into_iter().flatten() {
            out.mailbox(sender);
        }
        if let Some(ip) = &self.sender_ip {
            out.ip(ip);
        }
        for attachment in &self.attachments {
            if let Some(name) = &attachment.file_name {
                out.push(Entity::File { name: name.clone(), path: None, sha256: attachment.sha256.clone() });
            }
        }
    }
}

/// A Safe Links time-of-click event (RecordType 41, `TIUrlClickData`). The clicker is the
/// record's `UserId`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UrlClick {
    /// `Url` (docs: `URL`).
    pub url: Option<String>,
    pub url_click_action: Option<UrlClickAction>,
    /// `UserIp`: the clicker's address.
    pub user_ip: Option<String>,
    pub time_of_click: Option<DateTime<Utc>>,
    /// `AppName`, e.g. `Mail`, `Teams`, `Word`.
    pub app_name: Option<String>,
    pub app_version: Option<String>,
    /// `SourceId`: for e-mail, the `NetworkMessageId` of the message that carried the link.
    pub source_id: Option<String>,
    pub event_deep_link: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl UrlClick {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            url: f.string("Url")?,
            url_click_action: f.coded("UrlClickAction")?,
            user_ip: f.string("UserIp")?,
            time_of_click: f.time("TimeOfClick")?,
            app_name: f.string("AppName")?,
            app_version: f.string("AppVersion")?,
            source_id: f.string("SourceId")?,
            event_deep_link: f.string("EventDeepLink")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        if let Some(url) = &self.url {
            out.push(Entity::Url(url.clone()));
        }
        if let Some(ip) = &self.user_ip {
            out.ip(ip);
        }
    }
}

/// `FileData` of a file detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileData {
    pub document_id: Option<String>,
    pub file_name: Option<String>,
    pub file_path: Option<String>,
    pub file_verdict: Option<FileVerdict>,
    pub malware_family: Option<String>,
    /// `SHA256`: hex or base64, kept as received.
    pub sha256: Option<String>,
    /// `FileSize` in bytes (a string on the wire).
    pub file_size: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl FileData {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            document_id: f.string("DocumentId")?,
            file_name: f.string("FileName")?,
            file_path: f.string("FilePath")?,
            file_verdict: f.coded("FileVerdict")?,
            malware_family: f.string("MalwareFamily")?,
            sha256: f.string("SHA256")?,
            file_size: f.int("FileSize")?,
            extra: f.extra(&[]),
        })
    }
}

/// A malicious file found in SharePoint, OneDrive or Teams (RecordType 47, `AtpDetection`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtpContent {
    /// `ObjectId`: the file's URL.
    pub object_id: Option<String>,
    pub file_data: Option<FileData>,
    pub source_workload: Option<SourceWorkload>,
    pub detection_method: Option<String>,
    pub last_modified_by: Option<String>,
    pub last_modified_date: Option<DateTime<Utc>>,
    pub event_deep_link: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AtpContent {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            object_id: f.string("ObjectId")?,
            file_data: f.object("FileData", FileData::read)?,
            source_workload: f.coded("SourceWorkload")?,
            detection_method: f.string("DetectionMethod")?,
            last_modified_by: f.string("LastModifiedBy")?,
            last_modified_date: f.time("LastModifiedDate")?,
            event_deep_link: f.string("EventDeepLink")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        let data = self.file_data.as_ref();
        let path = data.and_then(|d| d.file_path.clone()).or_else(|| self.object_id.clone());
        let name = data.and_then(|d| d.file_name.clone()).or_else(|| path.as_deref().and_then(|p| p.rsplit('/').next()).map(str::to_owned));
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            out.push(Entity::File { name, path, sha256: data.and_then(|d| d.sha256.clone()) });
        }
        if let Some(user) = &self.last_modified_by {
            out.user(user);
        }
    }
}
