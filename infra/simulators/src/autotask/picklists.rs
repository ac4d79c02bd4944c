//! The simulated tenant's picklists and the entity-information answers built from them
//! (`GET /V1.0/{Entity}/entityInformation`, `/entityInformation/fields`,
//! `/entityInformation/userDefinedFields`).
//!
//! Picklist values are tenant-specific in Autotask; these are realistic defaults (status
//! 1 New and 5 Complete match common tenants, unconfirmed). Each list has at least one inactive
//! value so tests can show that inactive values are refused.
//!
//! | field | values |
//! |---|---|
//! | `status` | 1 New (default), 5 Complete, 7 Waiting Customer, 8 In Progress, 9 Waiting Materials, 10 Dispatched, 11 Escalate, 12 Waiting Vendor, 13 Waiting Approval, 14 On Hold (inactive) |
//! | `priority` | 1 High, 2 Medium (default), 3 Low, 4 Critical, 5 Planning (inactive) |
//! | `queueID` | 8 Level I Support, 9 Level II Support, 29682833 Client Portal, 29683354 Monitoring Alert, 29683481 Security Operations, 29683482 Post Sale (inactive) |
//! | `source` | -2 Insourced, -1 Client Portal, 1 Other, 2 Phone, 4 Email, 8 Monitoring Alert, 11 Web Service, 12 Fax (inactive) |
//! | `issueType` | 7 Security, 9 Hardware, 14 Software, 15 Legacy (inactive) |
//! | `subIssueType` (parent `issueType`) | 101 Suspicious Sign-in, 102 Mailbox Rule, 103 Privilege Change (7); 201 Laptop (9); 301 Microsoft 365, 302 Line-of-business App (14); 104 Virus (7, inactive) |
//! | `ticketType` | 1 Service Request (default), 2 Incident, 3 Problem, 4 Change Request, 5 Alert |
//! | `ticketCategory` | 2 Standard (default), 3 AEM Alert, 4 Security Incident, 6 Change Management (inactive) |
//! | `serviceLevelAgreementID` | 1 Standard SLA, 2 Premium SLA |
//! | `monitorTypeID` | 1 Online Status Monitor, 2 Threshold Monitor |
//! | TicketNote `noteType` | 1 Task Detail, 2 Task Summary, 3 Task Notes (default), 13 Workflow Rule Action Note (system), 18 Legacy Note (inactive) |
//! | TicketNote `publish` | 1 All Autotask Users (default), 2 Internal Only, 3 Internal & Co-Managed |
//! | Company `companyType` | 1 Customer, 2 Lead, 3 Prospect, 5 Dead, 7 Vendor, 8 Partner |

use serde_json::{Value, json};

use super::model::{Entity, EntitySpec};

/// One picklist value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickValue {
    /// The integer stored in the field.
    pub value: i64,
    /// Display label.
    pub label: &'static str,
    /// Whether the UI preselects it.
    pub is_default: bool,
    /// The parent field's value (sub-issue types), if any.
    pub parent: Option<i64>,
    /// Whether it may be used.
    pub is_active: bool,
    /// Whether it is built into Autotask (cannot be deleted).
    pub is_system: bool,
}

/// A picklist of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picklist {
    /// The field (camelCase).
    pub field: &'static str,
    /// The values, in sort order.
    pub values: &'static [PickValue],
    /// The field whose value a value's `parent` refers to (`issueType` for `subIssueType`).
    pub parent_field: Option<&'static str>,
}

impl Picklist {
    /// The value `n`, active or not.
    pub fn get(&self, n: i64) -> Option<&PickValue> {
        self.values.iter().find(|v| v.value == n)
    }

    /// Whether `n` is an active value.
    pub fn is_active(&self, n: i64) -> bool {
        self.get(n).is_some_and(|v| v.is_active)
    }
}

const fn v(value: i64, label: &'static str) -> PickValue {
    PickValue { value, label, is_default: false, parent: None, is_active: true, is_system: false }
}

const fn default(value: i64, label: &'static str) -> PickValue {
    PickValue { is_default: true, ..v(value, label) }
}

const fn system(value: i64, label: &'static str) -> PickValue {
    PickValue { is_system: true, ..v(value, label) }
}

const fn inactive(value: i64, label: &'static str) -> PickValue {
    PickValue { is_active: false, ..v(value, label) }
}

const fn child(value: i64, label: &'static str, parent: i64) -> PickValue {
    PickValue { parent: Some(parent), ..v(value, label) }
}

/// Ticket status "New".
pub const STATUS_NEW: i64 = 1;
/// Ticket status "Complete".
pub const STATUS_COMPLETE: i64 = 5;
/// Ticket note type the simulator uses for its own notes (merge records): "Task Notes".
pub const NOTE_TYPE_TASK_NOTES: i64 = 3;
/// Note publish value "Internal Only".
pub const PUBLISH_INTERNAL: i64 = 2;

/// Ticket `status`.
pub const STATUS: Picklist = Picklist {
    field: "status",
    values: &[
        PickValue { is_system: true, ..default(STATUS_NEW, "New") },
        system(STATUS_COMPLETE, "Complete"),
        v(7, "Waiting Customer"),
        system(8, "In Progress"),
        v(9, "Waiting Materials"),
        v(10, "Dispatched"),
        v(11, "Escalate"),
        v(12, "Waiting Vendor"),
        v(13, "Waiting Approval"),
        inactive(14, "On Hold"),
    ],
    parent_field: None,
};

/// Ticket `priority`.
pub const PRIORITY: Picklist = Picklist {
    field: "priority",
    values: &[v(4, "Critical"), v(1, "High"), default(2, "Medium"), v(3, "Low"), inactive(5, "Planning")],
    parent_field: None,
};

/// Ticket `queueID`.
pub const QUEUE: Picklist = Picklist {
    field: "queueID",
    values: &[
        v(8, "Level I Support"),
        v(9, "Level II Support"),
        v(29682833, "Client Portal"),
        v(29683354, "Monitoring Alert"),
        v(29683481, "Security Operations"),
        inactive(29683482, "Post Sale"),
    ],
    parent_field: None,
};

/// Ticket `source`.
pub const SOURCE: Picklist = Picklist {
    field: "source",
    values: &[
        system(-2, "Insourced"),
        system(-1, "Client Portal"),
        v(1, "Other"),
        v(2, "Phone"),
        v(4, "Email"),
        v(8, "Monitoring Alert"),
        v(11, "Web Service"),
        inactive(12, "Fax"),
    ],
    parent_field: None,
};

/// Ticket `issueType`.
pub const ISSUE_TYPE: Picklist = Picklist {
    field: "issueType",
    values: &[v(7, "Security"), v(9, "Hardware"), v(14, "Software"), inactive(15, "Legacy")],
    parent_field: None,
};

/// Ticket `subIssueType`, children of `issueType`.
pub const SUB_ISSUE_TYPE: Picklist = Picklist {
    field: "subIssueType",
    values: &[
        child(101, "Suspicious Sign-in", 7),
        child(102, "Mailbox Rule", 7),
        child(103, "Privilege Change", 7),
        PickValue { is_active: false, ..child(104, "Virus", 7) },
        child(201, "Laptop", 9),
        child(301, "Microsoft 365", 14),
        child(302, "Line-of-business App", 14),
    ],
    parent_field: Some("issueType"),
};

/// Ticket `ticketType`.
pub const TICKET_TYPE: Picklist = Picklist {
    field: "ticketType",
    values: &[default(1, "Service Request"), v(2, "Incident"), v(3, "Problem"), v(4, "Change Request"), system(5, "Alert")],
    parent_field: None,
};

/// Ticket `ticketCategory`.
pub const TICKET_CATEGORY: Picklist = Picklist {
    field: "ticketCategory",
    values: &[default(2, "Standard"), system(3, "AEM Alert"), v(4, "Security Incident"), inactive(6, "Change Management")],
    parent_field: None,
};

/// Ticket `serviceLevelAgreementID`.
pub const SLA: Picklist =
    Picklist { field: "serviceLevelAgreementID", values: &[v(1, "Standard SLA"), v(2, "Premium SLA")], parent_field: None };

/// Ticket `monitorTypeID`.
pub const MONITOR_TYPE: Picklist =
    Picklist { field: "monitorTypeID", values: &[v(1, "Online Status Monitor"), v(2, "Threshold Monitor")], parent_field: None };

/// TicketNote `noteType`.
pub const NOTE_TYPE: Picklist = Picklist {
    field: "noteType",
    values: &[
        v(1, "Task Detail"),
        v(2, "Task Summary"),
        default(NOTE_TYPE_TASK_NOTES, "Task Notes"),
        system(13, "Workflow Rule Action Note"),
        inactive(18, "Legacy Note"),
    ],
    parent_field: None,
};

/// TicketNote `publish`.
pub const PUBLISH: Picklist = Picklist {
    field: "publish",
    values: &[default(1, "All Autotask Users"), v(PUBLISH_INTERNAL, "Internal Only"), v(3, "Internal & Co-Managed")],
    parent_field: None,
};

/// Company `companyType`.
pub const COMPANY_TYPE: Picklist = Picklist {
    field: "companyType",
    values: &[default(1, "Customer"), v(2, "Lead"), v(3, "Prospect"), v(5, "Dead"), v(7, "Vendor"), v(8, "Partner")],
    parent_field: None,
};

/// The picklist of an entity's field, if it is one.
pub(crate) fn for_field(entity: Entity, field: &str) -> Option<&'static Picklist> {
    let lists: &[&'static Picklist] = match entity {
        Entity::Tickets => {
            &[&STATUS, &PRIORITY, &QUEUE, &SOURCE, &ISSUE_TYPE, &SUB_ISSUE_TYPE, &TICKET_TYPE, &TICKET_CATEGORY, &SLA, &MONITOR_TYPE]
        }
        Entity::TicketNotes => &[&NOTE_TYPE, &PUBLISH],
        Entity::Companies => &[&COMPANY_TYPE],
        Entity::Contacts => &[],
    };
    lists.iter().copied().find(|l| l.field == field)
}

/// `GET /{Entity}/entityInformation/fields`.
pub(crate) fn fields_information(spec: &EntitySpec) -> Value {
    let fields: Vec<Value> = spec
        .fields
        .iter()
        .filter(|f| f.name != "userDefinedFields")
        .map(|f| {
            let picklist_values = f.picklist.map(|list| {
                list.values
                    .iter()
                    .enumerate()
                    .map(|(i, pv)| {
                        json!({
                            "value": pv.value.to_string(),
                            "label": pv.label,
                            "isDefaultValue": pv.is_default,
                            "sortOrder": i,
                            "parentValue": pv.parent.map(|p| p.to_string()).unwrap_or_default(),
                            "isActive": pv.is_active,
                            "isSystem": pv.is_system,
                        })
                    })
                    .collect::<Vec<_>>()
            });
            json!({
                "name": f.name,
                "dataType": f.kind.data_type(),
                "length": f.max_length.unwrap_or(0),
                "isRequired": f.required,
                "isReadOnly": f.read_only,
                "isQueryable": true,
                "isReference": f.reference.is_some(),
                "referenceEntityType": f.reference.unwrap_or(""),
                "isPickList": f.picklist.is_some(),
                "picklistValues": picklist_values,
                "picklistParentValueField": f.picklist.and_then(|l| l.parent_field).unwrap_or(""),
                "isSupportedWebhookField": false,
            })
        })
        .collect();
    json!({"fields": fields})
}

/// `GET /{Entity}/entityInformation`: what the API user may do with the entity.
pub(crate) fn entity_information(entity: Entity) -> Value {
    let (create, update, delete) = match entity {
        Entity::Tickets => (true, true, false),
        Entity::TicketNotes => (true, true, false),
        Entity::Companies | Entity::Contacts => (false, false, false),
    };
    json!({
        "info": {
            "name": entity.singular(),
            "canCreate": create,
            "canDelete": delete,
            "canQuery": true,
            "canUpdate": update,
            "userAccessForCreate": if create { "All" } else { "None" },
            "userAccessForDelete": "None",
            "userAccessForQuery": "All",
            "userAccessForUpdate": if update { "All" } else { "None" },
            "hasUserDefinedFields": entity != Entity::TicketNotes,
            "supportsWebhookCallouts": entity == Entity::Tickets || entity == Entity::Companies || entity == Entity::Contacts,
        }
    })
}
