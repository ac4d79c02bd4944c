//! SharePoint and OneDrive: file operations (RecordType 6) and sharing (RecordType 14).

use super::fields::{Fields, Malformed, coded_enum};
use super::{COMMON_FIELDS, Entity, EntityList};
use serde::Serialize;
use serde_json::{Map, Value};

coded_enum! {
    /// `ItemType`: documented as numbers, observed as names (`"File"`).
    pub enum ItemType {
        Invalid(0),
        File(1),
        Folder(5),
        Web(6),
        Site(7),
        Tenant(8),
        DocumentLibrary(9),
        Page(11),
    }
}

coded_enum! {
    /// `EventSource`: documented as numbers, observed as names (`"SharePoint"`).
    pub enum EventSource {
        SharePoint(0),
        ObjectModel(1),
    }
}

/// The fields SharePoint and OneDrive records share.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharePointItem {
    /// `ObjectId`: the item's full URL.
    pub object_id: Option<String>,
    /// `Site`: the site GUID.
    pub site: Option<String>,
    pub site_url: Option<String>,
    pub source_relative_url: Option<String>,
    pub source_file_name: Option<String>,
    pub source_file_extension: Option<String>,
    pub item_type: Option<ItemType>,
    pub event_source: Option<EventSource>,
    pub source_name: Option<String>,
    pub user_agent: Option<String>,
    pub machine_domain_info: Option<String>,
    pub machine_id: Option<String>,
    pub list_id: Option<String>,
    pub list_item_unique_id: Option<String>,
    pub web_id: Option<String>,
    pub application_id: Option<String>,
    pub application_display_name: Option<String>,
    pub is_workflow: Option<bool>,
    pub correlation_id: Option<String>,
}

impl SharePointItem {
    fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            object_id: f.string("ObjectId")?,
            site: f.string("Site")?,
            site_url: f.string("SiteUrl")?,
            source_relative_url: f.string("SourceRelativeUrl")?,
            source_file_name: f.string("SourceFileName")?,
            source_file_extension: f.string("SourceFileExtension")?,
            item_type: f.coded("ItemType")?,
            event_source: f.coded("EventSource")?,
            source_name: f.string("SourceName")?,
            user_agent: f.string("UserAgent")?,
            machine_domain_info: f.string("MachineDomainInfo")?,
            machine_id: f.string("MachineId")?,
            list_id: f.string("ListId")?,
            list_item_unique_id: f.string("ListItemUniqueId")?,
            web_id: f.string("WebId")?,
            application_id: f.string("ApplicationId")?,
            application_display_name: f.string("ApplicationDisplayName")?,
            is_workflow: f.boolean("IsWorkflow")?,
            correlation_id: f.string("CorrelationId")?,
        })
    }

    /// The item's URL: `ObjectId`, else `SiteUrl` + `SourceRelativeUrl` + `SourceFileName`.
    #[must_use]
    pub fn url(&self) -> Option<String> {
        if let Some(object) = &self.object_id {
            return Some(object.clone());
        }
        let site = self.site_url.as_deref()?;
        let parts = [self.source_relative_url.as_deref(), self.source_file_name.as_deref()];
        Some(
            parts
                .into_iter()
                .flatten()
                .fold(site.trim_end_matches('/').to_owned(), |url, part| format!("{url}/{}", part.trim_matches('/'))),
        )
    }

    /// The item's name: `SourceFileName`, else the last segment of its URL.
    #[must_use]
    pub fn name(&self) -> Option<String> {
        self.source_file_name.clone().or_else(|| {
            self.url().and_then(|url| url.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_owned))
        })
    }

    fn collect_entities(&self, out: &mut EntityList) {
        if let Some(name) = self.name() {
            out.push(Entity::File { name, path: self.url(), sha256: None });
        }
    }
}

/// A file operation (RecordType 6; `Workload` `SharePoint` or `OneDrive`): accessed,
/// downloaded, uploaded, modified, deleted, moved, copied, …
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharePointFileOperation {
    #[serde(flatten)]
    pub item: SharePointItem,
    /// Copy/move destination.
    pub destination_relative_url: Option<String>,
    pub destination_file_name: Option<String>,
    pub destination_file_extension: Option<String>,
    pub user_shared_with: Option<String>,
    pub sharing_type: Option<String>,
    pub source_label: Option<String>,
    pub destination_label: Option<String>,
    pub sensitivity_label_owner_email: Option<String>,
    pub sensitivity_label_id: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SharePointFileOperation {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            item: SharePointItem::read(f)?,
            destination_relative_url: f.string("DestinationRelativeUrl")?,
            destination_file_name: f.string("DestinationFileName")?,
            destination_file_extension: f.string("DestinationFileExtension")?,
            user_shared_with: f.string("UserSharedWith")?,
            sharing_type: f.string("SharingType")?,
            source_label: f.string("SourceLabel")?,
            destination_label: f.string("DestinationLabel")?,
            sensitivity_label_owner_email: f.string("SensitivityLabelOwnerEmail")?,
            sensitivity_label_id: f.string("SensitivityLabelId")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        self.item.collect_entities(out);
        if let Some(user) = &self.user_shared_with {
            out.user(user);
        }
    }
}

/// A sharing operation (RecordType 14): links created, invitations, access granted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SharePointSharing {
    #[serde(flatten)]
    pub item: SharePointItem,
    /// Who the item was shared with.
    pub target_user_or_group_name: Option<String>,
    /// `Member`, `Guest`, `Group` or `Partner`.
    pub target_user_or_group_type: Option<String>,
    /// `EventData`: an XML fragment, kept as text.
    pub event_data: Option<String>,
    pub unique_sharing_id: Option<String>,
    /// Fields not modelled here nor in the common schema.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SharePointSharing {
    pub(crate) fn read(f: &mut Fields<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            item: SharePointItem::read(f)?,
            target_user_or_group_name: f.string("TargetUserOrGroupName")?,
            target_user_or_group_type: f.string("TargetUserOrGroupType")?,
            event_data: f.string("EventData")?,
            unique_sharing_id: f.string("UniqueSharingId")?,
            extra: f.extra(COMMON_FIELDS),
        })
    }

    /// Shared with a guest (someone outside the organisation).
    #[must_use]
    pub fn with_guest(&self) -> bool {
        self.target_user_or_group_type.as_deref().is_some_and(|kind| kind.eq_ignore_ascii_case("Guest"))
    }

    pub(crate) fn collect_entities(&self, out: &mut EntityList) {
        self.item.collect_entities(out);
        if let Some(target) = &self.target_user_or_group_name {
            out.user(target);
        }
    }
}
