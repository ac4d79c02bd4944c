//! Entity field specifications, read once from the embedded swagger subset
//! (`infra/schemas/autotask-ticketing-subset.json`: field names and types) and the derived
//! constraints (`infra/schemas/autotask-field-constraints.derived.json`: required fields and max
//! lengths), plus the simulator's read-only lists and picklists; and body validation against
//! them (property names case-insensitive on input, camelCase on output).

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::picklists::{self, Picklist};

const SWAGGER_JSON: &str = include_str!("../../../schemas/autotask-ticketing-subset.json");
const CONSTRAINTS_JSON: &str = include_str!("../../../schemas/autotask-field-constraints.derived.json");

/// The entities the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Tickets,
    TicketNotes,
    Companies,
    Contacts,
}

impl Entity {
    pub(crate) const ALL: [Entity; 4] = [Entity::Tickets, Entity::TicketNotes, Entity::Companies, Entity::Contacts];

    /// The URL segment (`Tickets`), as emitted in page URLs.
    pub(crate) fn url_name(self) -> &'static str {
        match self {
            Entity::Tickets => "Tickets",
            Entity::TicketNotes => "TicketNotes",
            Entity::Companies => "Companies",
            Entity::Contacts => "Contacts",
        }
    }

    /// The entity's singular name, as used in messages and entity information (`Ticket`).
    pub(crate) fn singular(self) -> &'static str {
        match self {
            Entity::Tickets => "Ticket",
            Entity::TicketNotes => "TicketNote",
            Entity::Companies => "Company",
            Entity::Contacts => "Contact",
        }
    }

    pub(crate) fn from_segment(segment: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.url_name().eq_ignore_ascii_case(segment))
    }

    fn model(self) -> &'static str {
        match self {
            Entity::Tickets => "TicketModel",
            Entity::TicketNotes => "TicketNoteModel",
            Entity::Companies => "CompanyModel",
            Entity::Contacts => "ContactModel",
        }
    }

    /// Fields the server maintains: ignored when sent in a body.
    fn read_only(self) -> &'static [&'static str] {
        match self {
            Entity::Tickets => &[
                "id",
                "apiVendorID",
                "completedByResourceID",
                "completedDate",
                "createDate",
                "creatorResourceID",
                "creatorType",
                "currentServiceThermometerRating",
                "firstResponseAssignedResourceID",
                "firstResponseDateTime",
                "firstResponseInitiatingResourceID",
                "impersonatorCreatorResourceID",
                "lastActivityDate",
                "lastActivityPersonType",
                "lastActivityResourceID",
                "lastCustomerNotificationDateTime",
                "lastCustomerVisibleActivityDateTime",
                "lastTrackedModificationDateTime",
                "previousServiceThermometerRating",
                "serviceLevelAgreementHasBeenMet",
                "serviceLevelAgreementPausedNextEventHours",
                "serviceThermometerTemperature",
                "ticketNumber",
            ],
            Entity::TicketNotes => &[
                "id",
                "createDateTime",
                "creatorResourceID",
                "impersonatorCreatorResourceID",
                "impersonatorUpdaterResourceID",
                "lastActivityDate",
            ],
            Entity::Companies => &["id", "createDate", "createdByResourceID", "lastActivityDate", "lastTrackedModifiedDateTime"],
            Entity::Contacts => &["id", "createDate", "lastActivityDate", "lastModifiedDate"],
        }
    }

    /// Required fields the constraints file does not list: the simulator's strict choices.
    fn extra_required(self) -> &'static [&'static str] {
        match self {
            Entity::Tickets => &["dueDateTime"],
            _ => &[],
        }
    }
}

/// A field's wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Integer,
    Long,
    Double,
    String,
    DateTime,
    Boolean,
    /// `userDefinedFields`: `[{"name": "...", "value": "..."}]`.
    Udfs,
}

impl Kind {
    /// The `dataType` entity information reports.
    pub(crate) fn data_type(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Long => "long",
            Kind::Double => "double",
            Kind::String => "string",
            Kind::DateTime => "datetime",
            Kind::Boolean => "boolean",
            Kind::Udfs => "userDefinedFields",
        }
    }
}

/// One field of an entity.
#[derive(Debug, Clone)]
pub(crate) struct FieldSpec {
    /// camelCase name (`companyID`).
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) max_length: Option<usize>,
    pub(crate) required: bool,
    pub(crate) read_only: bool,
    pub(crate) picklist: Option<&'static Picklist>,
    /// Entity an id field refers to (`Company` for `companyID`).
    pub(crate) reference: Option<&'static str>,
}

/// The fields of one entity, in swagger order (`id` first).
#[derive(Debug)]
pub(crate) struct EntitySpec {
    pub(crate) entity: Entity,
    pub(crate) fields: Vec<FieldSpec>,
}

impl EntitySpec {
    /// The field named `name`, compared case-insensitively.
    pub(crate) fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The field named `name`, or the Autotask-style error naming it.
    pub(crate) fn known_field(&self, name: &str) -> Result<&FieldSpec, String> {
        self.field(name).ok_or_else(|| format!("Unable to find field '{name}' in the {} entity.", self.entity.singular()))
    }
}

/// All entity specs.
#[derive(Debug)]
pub(crate) struct Specs {
    specs: Vec<EntitySpec>,
}

impl Specs {
    pub(crate) fn of(&self, entity: Entity) -> &EntitySpec {
        // Built for every entity in `Entity::ALL`, in that order.
        &self.specs[Entity::ALL.iter().position(|e| *e == entity).unwrap_or(0)]
    }
}

/// Newtonsoft-style camelCase: lower-case the leading run of capitals, leaving the last one
/// when it starts a word (`RMMAlertID` → `rmmAlertID`, `CompanyID` → `companyID`, `Id` → `id`).
pub(crate) fn camel_case(pascal: &str) -> String {
    let chars: Vec<char> = pascal.chars().collect();
    let mut out = String::with_capacity(pascal.len());
    for (i, c) in chars.iter().enumerate() {
        let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if !c.is_uppercase() || (i > 0 && next_is_lower) {
            out.extend(chars[i..].iter());
            return out;
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn reference_of(entity: Entity, name: &str) -> Option<&'static str> {
    match name {
        "companyID" | "parentCompanyID" => Some("Company"),
        "contactID" => Some("Contact"),
        "ticketID" if entity == Entity::TicketNotes => Some("Ticket"),
        "contractID" => Some("Contract"),
        "projectID" => Some("Project"),
        "opportunityID" => Some("Opportunity"),
        "configurationItemID" => Some("ConfigurationItem"),
        "companyLocationID" => Some("CompanyLocation"),
        n if n.ends_with("ResourceID") => Some("Resource"),
        _ => None,
    }
}

fn build() -> Result<Specs, String> {
    let swagger: Value = serde_json::from_str(SWAGGER_JSON).map_err(|e| format!("embedded Autotask swagger: {e}"))?;
    let constraints: Value = serde_json::from_str(CONSTRAINTS_JSON).map_err(|e| format!("embedded Autotask constraints: {e}"))?;
    let mut specs = Vec::new();
    for entity in Entity::ALL {
        let props = swagger
            .pointer(&format!("/definitions/{}/properties", entity.model()))
            .and_then(Value::as_object)
            .ok_or_else(|| format!("swagger subset has no {}", entity.model()))?;
        let limits = constraints.pointer(&format!("/entities/{}", entity.url_name())).and_then(Value::as_object);
        let mut fields = Vec::new();
        for (pascal, schema) in props {
            if schema.get("$ref").is_some() {
                continue; // SoapParentPropertyId: an internal expression, not a field.
            }
            let name = camel_case(pascal);
            let kind = match (schema.get("type").and_then(Value::as_str), schema.get("format").and_then(Value::as_str)) {
                (Some("integer"), Some("int64")) => Kind::Long,
                (Some("integer"), _) => Kind::Integer,
                (Some("number"), _) => Kind::Double,
                (Some("string"), Some("date-time")) => Kind::DateTime,
                (Some("string"), _) => Kind::String,
                (Some("boolean"), _) => Kind::Boolean,
                (Some("array"), _) => Kind::Udfs,
                other => return Err(format!("{}.{pascal}: unsupported swagger type {other:?}", entity.model())),
            };
            let limit = limits.and_then(|l| l.iter().find(|(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v));
            let required = limit.and_then(|l| l.get("required")).and_then(Value::as_bool).unwrap_or(false)
                || entity.extra_required().contains(&name.as_str());
            let max_length = limit.and_then(|l| l.get("maxLength")).and_then(Value::as_u64).and_then(|n| usize::try_from(n).ok());
            let read_only = entity.read_only().contains(&name.as_str());
            let picklist = picklists::for_field(entity, &name);
            let reference = reference_of(entity, &name);
            fields.push(FieldSpec { name, kind, max_length, required, read_only, picklist, reference });
        }
        specs.push(EntitySpec { entity, fields });
    }
    Ok(Specs { specs })
}

/// The specs, built once.
pub(crate) fn specs() -> Result<&'static Specs, String> {
    static SPECS: OnceLock<Result<Specs, String>> = OnceLock::new();
    SPECS.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// Parses an Autotask date-time (`2026-11-23T00:00:00Z`, with offset or fraction, or without
/// a zone: taken as UTC).
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"].iter().find_map(|fmt| {
        NaiveDateTime::parse_from_str(text, fmt)
            .ok()
            .or_else(|| chrono::NaiveDate::parse_from_str(text, fmt).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|n| n.and_utc())
    })
}

/// How the simulator emits date-times: `2026-11-23T00:00:00.123Z`.
pub(crate) fn format_datetime(dt: DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Checks one value against its field: type, max length, active picklist value. Returns the
/// value as stored (date-times normalised).
pub(crate) fn check_value(field: &FieldSpec, value: &Value) -> Result<Value, String> {
    let name = &field.name;
    if value.is_null() {
        return if field.required { Err(format!("{name}: a value is required.")) } else { Ok(Value::Null) };
    }
    match field.kind {
        Kind::Integer | Kind::Long => {
            let n = value.as_i64().ok_or_else(|| format!("{name}: expected an integer, got {value}."))?;
            if field.kind == Kind::Integer && i32::try_from(n).is_err() {
                return Err(format!("{name}: {n} is out of range for an int32 field."));
            }
            if let Some(list) = field.picklist
                && !list.is_active(n)
            {
                // The real API's wording for a bad picklist value or reference, plus detail.
                return Err(format!(
                    "Value does not reference an existing entity for {name} . {n} is not an active {name} picklist value."
                ));
            }
            Ok(value.clone())
        }
        Kind::Double => value.as_f64().map(|_| value.clone()).ok_or_else(|| format!("{name}: expected a number, got {value}.")),
        Kind::Boolean => value.as_bool().map(|_| value.clone()).ok_or_else(|| format!("{name}: expected true or false, got {value}.")),
        Kind::String => {
            let s = value.as_str().ok_or_else(|| format!("{name}: expected a string, got {value}."))?;
            let len = s.chars().count();
            match field.max_length {
                Some(max) if len > max => {
                    Err(format!("String value exceeds maximum length (field:{name}). The maximum is {max} characters; {len} were sent."))
                }
                _ => Ok(value.clone()),
            }
        }
        Kind::DateTime => {
            let s = value.as_str().ok_or_else(|| format!("{name}: expected a date-time string, got {value}."))?;
            parse_datetime(s).map(|dt| Value::String(format_datetime(dt))).ok_or_else(|| format!("{name}: '{s}' is not a valid date-time."))
        }
        Kind::Udfs => {
            let items = value.as_array().ok_or_else(|| format!("{name}: expected an array of {{name, value}}."))?;
            for item in items {
                if item.get("name").and_then(Value::as_str).is_none() {
                    return Err(format!("{name}: every user-defined field needs a name."));
                }
            }
            Ok(value.clone())
        }
    }
}

/// Validates a request body against an entity's fields: a JSON object whose members name known
/// fields (case-insensitively) with valid values. Read-only members are dropped silently, as the
/// real API ignores them. Returns the writable members under their camelCase names, or every
/// problem found.
pub(crate) fn validate_members(spec: &EntitySpec, body: &Value) -> Result<Map<String, Value>, Vec<String>> {
    let object = body.as_object().ok_or_else(|| vec![format!("The request body must be a {} object.", spec.entity.singular())])?;
    let mut out = Map::new();
    let mut errors = Vec::new();
    for (key, value) in object {
        let Some(field) = spec.field(key) else {
            errors.push(format!("Unable to find property '{key}' on the {} entity.", spec.entity.singular()));
            continue;
        };
        if field.read_only {
            continue;
        }
        if out.contains_key(&field.name) {
            errors.push(format!("{}: the property is sent more than once.", field.name));
            continue;
        }
        match check_value(field, value) {
            Ok(v) => {
                out.insert(field.name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// The full API shape of a stored entity: every known field (camelCase, `null` when unset),
/// `userDefinedFields` an array.
pub(crate) fn full_item(spec: &EntitySpec, stored: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for field in &spec.fields {
        let value = stored.get(&field.name).cloned().unwrap_or(match field.kind {
            Kind::Udfs => Value::Array(Vec::new()),
            _ => Value::Null,
        });
        out.insert(field.name.clone(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_follows_newtonsoft() {
        assert_eq!(camel_case("Id"), "id");
        assert_eq!(camel_case("CompanyID"), "companyID");
        assert_eq!(camel_case("RMMAlertID"), "rmmAlertID");
        assert_eq!(camel_case("SICCode"), "sicCode");
        assert_eq!(camel_case("ProblemTicketId"), "problemTicketId");
    }
}
